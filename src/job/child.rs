//! A command run for a connection (`serve --exec`, `pipe exec:`): feeding it until it
//! exits, taking its stop of reading as its choice, and reaping it.

use std::time::Duration;

use crate::relay::{Flow, FlowEnd, Meter, Side};

use super::ends::is_broken_pipe;

/// A command that exits, or closes its stdin, while the peer still sends has stopped
/// reading: its choice, not a failure of the relay (its output still goes out).
pub fn command_stopped_reading(mut flow: Flow) -> Flow {
    if let FlowEnd::Failed(Side::Sink, err) = &flow.end
        && is_broken_pipe(err)
    {
        tracing::debug!("the command stopped reading its input");
        flow.end = FlowEnd::Eof;
    }
    flow
}

/// Feeds a command (`feed`) until it has taken all of its input or it exits, whichever
/// comes first: a command that has exited takes no more, and waiting for the peer to end
/// its side would wait for nothing (a client that waits for our end would wait forever).
pub async fn until_exit(
    child: &mut tokio::process::Child,
    feed: impl std::future::Future<Output = Flow>,
    meter: &Meter,
) -> Flow {
    tokio::select! {
        flow = feed => flow,
        _ = child.wait() => {
            tracing::debug!("the command exited before its input ended");
            let bytes = meter.get();
            Flow { bytes_in: bytes, bytes_out: bytes, frames: 0, frames_skipped: 0, end: FlowEnd::Eof }
        }
    }
}

/// Waits for a command run for a connection, and reaps it. After a failed relay
/// (`kill`), it is killed at once with its process group, before its stdin is closed,
/// so that it never takes a cut-short input for a complete one; otherwise it gets 5 s
/// to exit, then is killed. Returns its exit status, `None` if it had to be killed.
pub async fn reap_child(child: &mut tokio::process::Child, kill: bool) -> Option<std::process::ExitStatus> {
    if !kill && let Ok(status) = tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
        return status.ok();
    }
    if let Some(pid) = child.id() {
        // The command runs in a process group of its own (`ChildStream`): `sh -c 'a | b'`
        // goes whole.
        #[cfg(not(unix))]
        let _ = pid;
        #[cfg(unix)]
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    None
}
