//! The command line, as clap derive types. Doc comments are the help text; parsing only
//! validates, it never touches the network or the file system.

use clap::{ArgAction, Parser, Subcommand};

use crate::exit_codes::EXIT_CODES_HELP;

/// Byte streams for the shell: TCP, UNIX and TLS connections, relays and test
/// certificates, with safe defaults.
#[derive(Debug, Parser)]
#[command(name = "streamtool", version, about, long_about = None, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// More log output on stderr (-v: info, -vv: debug, -vvv: trace). RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands. `serve`, `connect`, `pipe` and `gen-cert` arrive with their issues.
#[derive(Debug, Subcommand)]
pub enum Command {}

impl Cli {
    /// Logs go to stderr, never stdout (data only there). `RUST_LOG` wins over `-v`/`-q`.
    pub fn init_tracing(&self) {
        use tracing_subscriber::EnvFilter;
        let default = match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, 2) => "debug",
            (false, _) => "trace",
        };
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
