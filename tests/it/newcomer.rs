//! Issue 19, a newcomer's first hour: the README and the help as a person meets them, typed
//! into a real shell on a terminal (`script` gives one), with the bytes that arrive checked.

use std::path::Path;
use std::time::Duration;

use crate::cli_support::{BIN, Input, Proc, closed_port, poll_until};
use crate::support::run;

/// The fenced `sh` block under the README heading that starts with `heading`.
pub fn readme_block(heading: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("\n## ").find(|s| s.starts_with(heading)).expect("the README section");
    let block = section.split("```sh\n").nth(1).expect("a sh block").split("```").next().unwrap();
    block.to_string()
}

/// The directory of the binary under test, to put first on PATH.
pub fn bin_dir() -> String {
    Path::new(BIN).parent().unwrap().to_str().unwrap().to_string()
}

/// An interactive bash on a pseudo-terminal (job control on, as at a prompt), in `dir`,
/// with the binary under test on PATH; what is written to it is typed.
fn interactive_bash(dir: &Path) -> Proc {
    let command = format!(
        "cd '{}' && env PATH='{}':\"$PATH\" PS1='$ ' HISTFILE=/dev/null bash --norc --noprofile -i",
        dir.display(),
        bin_dir()
    );
    Proc::spawn("script", &["-qec", &command, "/dev/null"], Input::Open)
}

/// Item 1: the Quick start typed into a terminal. `serve ... &` is a background job: it
/// must not read the terminal (the shell would stop it, "Stopped (tty input)", and the
/// client would hang); it says so, takes its input as empty, and the client's line arrives
/// and both exit 0.
#[test]
fn quick_start_typed_into_a_terminal_completes() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let port = closed_port().to_string();
        let block = readme_block("Quick start");
        let lines: Vec<String> = block
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|l| l.replace("1234", &port))
            .collect();
        assert_eq!(lines.len(), 3, "the Quick start is: make a certificate, serve &, connect: {lines:?}");
        assert!(lines[1].contains("serve") && lines[1].contains(" & "), "{lines:?}");
        let mut shell = interactive_bash(dir.path());
        shell.write(format!("{}\n", lines[0]).as_bytes()).await;
        assert!(
            poll_until(Duration::from_secs(30), || dir.path().join("cert.pem").exists()
                && dir.path().join("key.pem").exists())
            .await
        );
        shell.write(format!("{}\n", lines[1]).as_bytes()).await;
        // A person sees the listening line before typing the client's command.
        shell.wait_stdout(b"listening on").await;
        shell.write(format!("{}; echo \"client exit: $?\"\n", lines[2]).as_bytes()).await;
        shell.wait_stdout(b"client exit: 0").await;
        shell.write(b"wait $!; echo \"server exit: $?\"\n").await;
        shell.wait_stdout(b"server exit: 0").await;
        shell.write(b"exit\n").await;
        let done = shell.finish_within(Duration::from_secs(10)).await;
        let out = done.stdout_text();
        assert!(!out.contains("Stopped"), "{out}");
        assert!(out.contains("background job"), "the server says why it does not read: {out}");
        // The server printed what the client sent, on the terminal.
        assert!(out.lines().any(|line| line.trim_end_matches('\r').ends_with("Client")), "{out}");
    });
}
