//! `streamtool gen-cert` (being written).

use anyhow::Result;
use clap::Args;

use crate::events::Events;

/// Arguments of `gen-cert`.
#[derive(Debug, Args)]
pub struct GenCertArgs {
    /// Names (DNS names, IP addresses, *.wildcards, emails).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

pub fn run(args: GenCertArgs, events: Events) -> Result<()> {
    let _ = (args, events);
    anyhow::bail!("gen-cert is not implemented yet")
}
