//! The `streamtool` binary: parse, set up logging, run, map the outcome to an exit code.

mod cli;
mod exit_codes;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::exit_codes::Exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version print and succeed; usage errors exit 2.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { Exit::Usage.code() } else { Exit::Ok.code() });
        }
    };
    cli.init_tracing();
    match cli.command {
        None => {
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            ExitCode::from(Exit::Usage.code())
        }
    }
}
