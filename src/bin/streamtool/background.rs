//! A background job's terminal: `serve ... &` typed into an interactive shell.
//!
//! A process that reads the terminal while it is not in the terminal's foreground process
//! group gets SIGTTIN and is stopped by the shell ("Stopped (tty input)"), and a stopped
//! server never answers: the README's Quick start would hang. So `serve` in stdio mode
//! checks first; a background job does not read the terminal at all, says so once, and
//! takes its input as empty: the end of its input half-closes each connection at once
//! (close_notify and FIN), as `serve ... </dev/null &` would.

use std::io::IsTerminal;

use anyhow::{Context, Result};

/// Whether stdin is a terminal of which this process is not in the foreground process
/// group (a background job).
pub fn stdin_is_background_terminal() -> bool {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return false;
    }
    // Only our controlling terminal stops a reader in the background (SIGTTIN); another
    // session's terminal is read as any file is.
    let ours = match (nix::sys::termios::tcgetsid(&stdin), nix::unistd::getsid(None)) {
        (Ok(terminal), Ok(session)) => terminal == session,
        _ => false,
    };
    match nix::unistd::tcgetpgrp(&stdin) {
        Ok(foreground) => ours && foreground != nix::unistd::getpgrp(),
        // No foreground group: nobody types into it.
        Err(_) => false,
    }
}

/// If stdin is a terminal of a background job, replaces it with `/dev/null` (an empty
/// input) and says so once. Returns whether it did.
pub fn detach_background_stdin(ui: &crate::ui::Ui) -> Result<bool> {
    if !stdin_is_background_terminal() {
        return Ok(false);
    }
    let null = std::fs::File::open("/dev/null").context("cannot open /dev/null")?;
    nix::unistd::dup2_stdin(&null).context("cannot replace stdin")?;
    ui.notice(
        "stdin is the terminal of a background job: not reading it (the shell would stop this \
         job); input is empty, so each connection is half-closed at once. Run in the \
         foreground to type to the client, or give input with < FILE or a pipe",
    );
    Ok(true)
}
