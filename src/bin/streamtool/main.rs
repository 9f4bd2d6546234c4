//! The `streamtool` binary: parse, set up logging, run, map the outcome to an exit code.

mod cli;
mod cmd;
mod common;
mod exit_codes;
mod logwriter;
mod progress;
mod ui;

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use crate::cli::{Command, EventFormat};
use crate::exit_codes::{Exit, exit_for};
use crate::ui::{Ui, say};

/// The tokio runtime for `--threads`: 1 is a current-thread runtime, 0 one worker per core.
///
/// The default is one thread for every subcommand: the work of one connection is
/// sequential, and a second worker costs more than it gives there, because each accepted
/// connection is announced to the idle worker with a futex wake that then steals the task
/// or parks again. One thread takes serve's CPU per plain connection from 58 to 36 us and
/// per TLS handshake by 8-10%, and pipe's as a TLS terminator by about 20%, at the same
/// handshake rate (docs/performance.md, "What was tried").
/// `--threads 0` is for a relay of a few bulk transfers, whose event loop and copying
/// overlap on two threads (7% faster plain, 17% TLS-terminating in the same measurement).
/// Blocking work (stdin from a terminal, DNS) runs in tokio's blocking pool either way.
fn runtime(threads: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match threads.unwrap_or(1) {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if n > 1 {
                builder.worker_threads(usize::from(n));
            }
            builder
        }
    };
    builder.enable_all().build()
}

fn main() -> ExitCode {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version print and succeed; usage errors exit 2, with control
            // characters of the offending argument escaped (it is echoed in the message).
            if err.use_stderr() {
                // A proxy URL's credentials in the echoed argument are blanked.
                let line = streamtool::words::usage_line(&err, &cli::command(), std::env::args().skip(1));
                say(&streamtool::stack::proxy::redact_url(&line));
            } else {
                let _ = err.print();
            }
            return ExitCode::from(if err.use_stderr() { Exit::Usage.code() } else { Exit::Ok.code() });
        }
    };
    cli.init_tracing();
    let ui = Ui::new(cli.events == Some(EventFormat::Json), cli.quiet);
    let Some(command) = cli.command else {
        let _ = cli::command().print_help();
        return ExitCode::from(Exit::Usage.code());
    };
    let runtime = match runtime(cli.threads) {
        Ok(runtime) => runtime,
        Err(err) => {
            say(&format!("cannot start the runtime: {err}"));
            return ExitCode::from(Exit::Failure.code());
        }
    };
    let verbose = cli.verbose > 0;
    let result = runtime.block_on(async {
        match command {
            Command::Serve(args) => cmd::serve::run(args, ui.clone()).await,
            // Ctrl-C anywhere in connect (resolving, connecting, the handshake) exits 130;
            // serve handles SIGINT itself, to shut down gracefully.
            // SIGTERM ends it too, with a line and exit 143 (as documented), not silently.
            Command::Connect(args) => {
                let mut term = match streamtool::platform::term_signal() {
                    Ok(term) => term,
                    Err(err) => return Err(anyhow::Error::new(err).context("cannot watch SIGTERM")),
                };
                tokio::select! {
                    result = cmd::connect::run(args, ui.clone(), verbose) => result,
                    _ = tokio::signal::ctrl_c() => Err(exit_codes::Interrupted.into()),
                    _ = term.recv() => Err(exit_codes::Terminated.into()),
                }
            }
            Command::Pipe(mut args) => {
                args.verbose_summary = verbose;
                cmd::pipe::run(args, ui.clone()).await
            }
            Command::GenCert(args) => cmd::gen_cert::run(args, ui.clone()),
            Command::Completions(args) => cmd::completions::run(args),
        }
    });
    // A read of stdin may still be parked in a blocking thread; do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    let exit = match &result {
        Ok(()) => Exit::Ok,
        Err(err) => {
            let exit = exit_for(err);
            say(&one_line(err));
            if let Some(hint) = err.downcast_ref::<exit_codes::Hint>() {
                say(&format!("hint: {hint}"));
            } else if let Some(hint) = hint(err) {
                say(&format!("hint: {hint}"));
            }
            exit
        }
    };
    let dropped = logwriter::DROPPED.load(Ordering::Relaxed);
    if dropped > 0 {
        // Written only if stderr is back (a log collector that restarted).
        say(&format!("{dropped} log lines were dropped: stderr could not be written to"));
    }
    ui.emit(|| streamtool::event::Event::Exit { code: exit.code() });
    ExitCode::from(exit.code())
}

/// The error chain on one line, causes joined with ": ", repeats dropped.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut out = String::new();
    // A hint is printed on a line of its own.
    let hint = err.downcast_ref::<exit_codes::Hint>().map(ToString::to_string);
    for cause in err.chain() {
        let text = cause.to_string();
        if hint.as_ref() == Some(&text) {
            continue;
        }
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    streamtool::words::plain_words(&out)
}

/// Advice for the failures users meet most (`streamtool::words::tls_hint`), on a line of
/// its own after the error.
fn hint(err: &anyhow::Error) -> Option<&'static str> {
    streamtool::words::tls_hint(exit_codes::tls_error(err)?)
}
