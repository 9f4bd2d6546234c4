//! Issue 19, a newcomer's first hour: the README and the help as a person meets them, typed
//! into a real shell on a terminal (`script` gives one), with the bytes that arrive checked.

use std::path::Path;
use std::time::Duration;

use crate::support::cli::{BIN, Input, Proc, closed_port, poll_until};
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

/// The example lines of a subcommand's `--help` (continuation lines joined).
fn help_examples(sub: &str) -> Vec<String> {
    let out = std::process::Command::new(BIN).args([sub, "--help"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let examples = text.split("Examples:\n").nth(1).unwrap_or_default();
    let examples = examples.split("\n\n").next().unwrap().replace("\\\n", " ");
    examples.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

/// Every command line of a document's `sh` blocks that runs streamtool (continuation
/// lines joined).
fn doc_commands(doc: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{}/{doc}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    text.split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .flat_map(|b| b.replace("\\\n", " ").lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| {
            let command = l.split(" #").next().unwrap();
            command.rsplit("| ").next().unwrap().trim_start().starts_with("streamtool ")
        })
        .collect()
}

/// Item 2: every example of `--help`, the README and the cookbook, run by a real shell (bash; zsh and
/// fish too if installed) with `streamtool` replaced by a recorder: the arguments that
/// arrive keep every backslash the example shows (an unquoted `\n` would arrive as `n`,
/// and `pipe` would split on the letter n: `banana` became `barnarna`).
#[test]
fn help_and_readme_examples_are_copy_paste_safe_in_real_shells() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = dir.path().join("streamtool");
    let log = dir.path().join("argv");
    std::fs::write(
        &recorder,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done >> '{}'\nprintf '\\n' >> '{}'\n",
            log.display(),
            log.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&recorder).status().unwrap();
    let mut examples: Vec<String> =
        ["serve", "connect", "pipe"].iter().flat_map(|s| help_examples(s)).collect();
    examples.extend(doc_commands("README.md"));
    examples.extend(doc_commands("docs/cookbook.md"));
    assert!(examples.len() > 15, "{examples:?}");
    assert!(
        examples.iter().any(|e| e.contains("delimiter=\\r\\n")),
        "the pipe example with escapes: {examples:?}"
    );
    let shells: Vec<&str> = ["bash", "zsh", "fish"]
        .into_iter()
        .filter(|sh| std::process::Command::new(sh).arg("-c").arg("true").status().is_ok_and(|s| s.success()))
        .collect();
    assert!(shells.contains(&"bash"));
    // CI installs zsh and fish: there, a missing one fails rather than going untested.
    if std::env::var_os("CI").is_some() {
        assert_eq!(shells, ["bash", "zsh", "fish"], "under CI every shell runs the examples");
    }
    for shell in shells {
        for example in &examples {
            // The streamtool command of a pipeline, without redirection or comment.
            let command = example.rsplit("| ").next().unwrap();
            let command = command.split(" #").next().unwrap();
            let command = command.split(" > ").next().unwrap().trim().trim_end_matches('&').trim();
            let _ = std::fs::remove_file(&log);
            let status = std::process::Command::new(shell)
                .arg("-c")
                .arg(command)
                .env("PATH", format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap()))
                .current_dir(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "{shell}: `{command}` failed");
            let argv = std::fs::read(&log).unwrap_or_default();
            let arrived = argv.iter().filter(|&&b| b == b'\\').count();
            let shown = command.matches('\\').count();
            assert_eq!(
                arrived,
                shown,
                "{shell}: `{command}` loses backslashes: {:?}",
                String::from_utf8_lossy(&argv)
            );
        }
    }
}

/// Item 4: `--progress` on a terminal ends showing the bytes moved (it showed `0 B`: the
/// bars kept the last tick's reading).
#[test]
fn progress_on_a_terminal_shows_the_true_totals() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mid.iso");
        std::fs::write(&file, vec![7u8; 20_000_000]).unwrap();
        let sink = crate::support::cli::Server::start(&["--discard"]).await;
        let command = format!("{BIN} pipe file:{} tcp:{} --progress", file.display(), sink.addr());
        let done =
            Proc::spawn("script", &["-qec", &command, "/dev/null"], Input::Bytes(Vec::new())).finish().await;
        done.assert_code(0);
        let screen = done.stdout_text();
        // 20,000,000 bytes is 19.07 MiB; the last drawing of the first bar shows it.
        let label = format!("file:{} ->", file.display());
        let last = screen.rsplit(&label).next().unwrap().split(" -> file:").next().unwrap();
        assert!(last.contains("19.07 MiB"), "{screen:?}");
    });
}

/// The lines of stderr a person is meant to read: errors, hints and warnings
/// (`streamtool: …`, ` WARN …`, `ERROR …`), not the debugging logs of `-v` and up.
pub fn messages(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| {
            l.starts_with("streamtool: ") || l.trim_start().starts_with("WARN ") || l.starts_with("ERROR ")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Whether `text` has something shaped like Rust's Debug output: `Name(` with a capital
/// (`Other(OtherError(..))`, `NomError(Eof)`, `IPAddress(7f:..)`, `InvalidCharacter(33)`),
/// or a struct's `{ field: `.
pub fn debug_shaped(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('(') {
        let start = text[..i].rfind(|c: char| !c.is_ascii_alphanumeric()).map_or(0, |p| p + 1);
        let word = &text[start..i];
        let camel = word.len() > 2
            && word.starts_with(|c: char| c.is_ascii_uppercase())
            && word.chars().skip(1).any(|c| c.is_ascii_lowercase())
            && word.chars().skip(1).any(|c| c.is_ascii_uppercase());
        if camel || word == "Some" || word == "Other" || word == "Eof" {
            return Some(text[start..(i + 20).min(bytes.len())].to_string());
        }
    }
    None
}

/// Items 6, 7 and 8: the failures a newcomer meets. Each is words on stderr, one
/// `streamtool:` line (and perhaps a hint line), never Debug text, with the exit code the
/// help documents.
#[test]
fn failure_messages_are_words_on_one_line() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = crate::support::certs::seed_certificate(dir.path());
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let (cert, key, garbage) = (cert.to_str().unwrap(), key.to_str().unwrap(), garbage.to_str().unwrap());
        let server =
            crate::support::cli::Server::start(&["-k", "--echo", "--tls", "--cert", cert, "--key", key])
                .await;
        let target = server.localhost();
        let long_alpn = "a".repeat(300);
        let long_alpn_endpoint = format!("tls:localhost:1,alpn={long_alpn}");
        let not_pem = dir.path().join("not.pem").to_str().unwrap().to_string();
        std::fs::write(&not_pem, "garbage\n").unwrap();
        let tls_listen = format!("tls-listen:0,client-ca={not_pem}");
        let zero_pin = format!("sha256:{}", "0".repeat(64));
        let cases: Vec<(Vec<&str>, i32, &str)> = vec![
            // The Quick start's certificate without --ca: a hint naming --ca.
            (vec!["connect", "--tls", &target], 4, "--ca"),
            (vec!["gen-cert", "--inspect", garbage], 1, "not a certificate"),
            (vec!["connect", "8080"], 2, "missing host"),
            (vec!["connect", "--tls", "--alpn", &long_alpn, &target], 2, "at most 255"),
            (vec!["connect", "--tls", "--alpn", "", &target], 2, "empty"),
            (vec!["connect", "--tls", "--alpn", ",,", &target], 2, "empty"),
            (vec!["connect", "--tls", "--sni", "", &target], 2, "--no-sni"),
            (vec!["pipe", "-", "tls:localhost:1,alpn=,,"], 2, "at least one protocol name"),
            (vec!["pipe", "-", &long_alpn_endpoint], 2, "at most 255"),
            (vec!["pipe", "-", "tls:localhost:1,sni=a b"], 2, "not a valid host name"),
            (vec!["connect", "--tls", "-k", "--pin", &zero_pin, &target], 2, "-k"),
            (vec!["connect", "--tls", "-k", "--ca", cert, &target], 2, "--ca"),
            (vec!["serve", "--tls", "--ca", cert], 2, "--client-ca"),
            (vec!["serve", "-w", "5s"], 2, "client option"),
            (vec!["serve", "--tls", "--pin", &zero_pin], 2, "client option"),
            (vec!["serve", "--bogus"], 2, "see `streamtool serve --help`"),
            (vec!["connect"], 2, "<ADDR>"),
            (vec!["gen-cert", "localhost", "-o", "x"], 2, "see `streamtool gen-cert --help`"),
            (vec!["connect", "--pin", "sha256:zz", "--tls", &target], 2, "32 bytes"),
            // A bad client-CA file is reported before any banner (no listening line, no pins).
            (vec!["serve", "--tls", "--client-ca", &not_pem], 1, "cannot use --client-ca"),
            (vec!["pipe", &tls_listen, "-"], 1, "cannot use client-ca="),
        ];
        for (args, code, needle) in cases {
            let done = Proc::streamtool(&args, Input::Bytes(Vec::new())).finish().await;
            done.assert_code(code);
            let lines: Vec<&str> = done.stderr.lines().filter(|l| !l.contains("hint:")).collect();
            assert_eq!(lines.len(), 1, "{args:?}: one line: {}", done.stderr);
            assert!(lines[0].starts_with("streamtool: "), "{args:?}: {}", done.stderr);
            assert!(done.stderr.contains(needle), "{args:?}: no {needle:?} in {}", done.stderr);
            assert_eq!(debug_shaped(&done.stderr), None, "{args:?}: Debug text in {}", done.stderr);
        }
        // --show-cert and the handshake event name addresses as people write them.
        let pki = crate::support::certs::PemPki::new(&["localhost", "127.0.0.1", "::1"]);
        let ip_server = crate::support::cli::Server::tls_echo(&pki, &[]).await;
        let done = Proc::streamtool(
            &[
                "connect",
                "-z",
                "--tls",
                "--ca",
                crate::support::cli::s(&pki.ca),
                "--show-cert",
                "--events",
                "json",
                &ip_server.addr(),
            ],
            Input::Bytes(Vec::new()),
        )
        .finish()
        .await;
        done.assert_code(0);
        assert!(
            done.stderr.contains("IP Address:127.0.0.1") && done.stderr.contains("IP Address:::1"),
            "{}",
            done.stderr
        );
        assert_eq!(debug_shaped(&done.stderr), None, "{}", done.stderr);
        // A name the certificate does not have: its names as people write them.
        let done = Proc::streamtool(
            &[
                "connect",
                "-z",
                "--tls",
                "--ca",
                crate::support::cli::s(&pki.ca),
                "--sni",
                "other.example",
                &ip_server.addr(),
            ],
            Input::Bytes(Vec::new()),
        )
        .finish()
        .await;
        done.assert_code(4);
        assert!(done.stderr.contains("localhost, 127.0.0.1 or ::1"), "{}", done.stderr);
        assert_eq!(debug_shaped(&done.stderr), None, "{}", done.stderr);
    });
}

/// Item 8: SIGTERM ends connect with a line and the documented 143.
#[test]
fn sigterm_in_connect_says_so_and_exits_143() {
    run(async {
        let server = crate::support::cli::Server::start(&["-k", "--echo"]).await;
        let mut client = Proc::streamtool(&["connect", &server.addr()], Input::Open);
        client.write(b"hi\n").await;
        client.wait_stdout(b"hi\n").await;
        client.signal("TERM");
        let done = client.finish().await;
        done.assert_code(143);
        assert!(done.stderr.contains("SIGTERM"), "{}", done.stderr);
        let help = std::process::Command::new(BIN).arg("--help").output().unwrap();
        assert!(String::from_utf8_lossy(&help.stdout).contains("143"), "documented in --help");
    });
}

/// Item 7: each subcommand's help lists only the flags that apply, global flags in their
/// own section; pipe's endpoint table fits 80 columns and names every endpoint option.
#[test]
fn help_lists_only_what_applies() {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(BIN).args(args).env("COLUMNS", "80").output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let serve = help(&["serve", "--help"]);
    for client_only in ["--pin", "--sni", "--no-sni", "--connect-timeout", "--ca ", "-w,"] {
        assert!(!serve.contains(client_only), "serve --help lists {client_only}");
    }
    assert!(serve.contains("--client-ca") && serve.contains("Global options:"), "{serve}");
    for sub in ["gen-cert", "completions"] {
        assert!(!help(&[sub, "--help"]).contains("--threads"), "{sub} --help lists --threads");
    }
    assert!(help(&["connect", "--help"]).contains("--threads"));
    let pipe = help(&["pipe", "--help"]);
    let table = pipe.split("Endpoints (").nth(1).expect("the endpoint table");
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "wider than 80 columns: {line:?}");
    }
    for option in ["require-client-cert", "on-eof=", "idle-timeout=", "client-ca=", "connect-timeout="] {
        assert!(table.contains(option), "the endpoint table lacks {option}");
    }
}

/// Item 8: `--on-oversize skip` reports what it drops: a warning per frame for the first
/// three, then a total.
#[test]
fn skipped_frames_are_reported() {
    run(async {
        let server = crate::support::cli::Server::listening(Proc::streamtool(
            &["serve", "--delimiter", "\\n", "--max-frame", "4", "--on-oversize", "skip"],
            Input::Bytes(Vec::new()),
        ))
        .await;
        let mut input = b"aaaaaaaaaa\nok\n".to_vec();
        for _ in 0..5 {
            input.extend_from_slice(b"bbbbbbbbbbbbbbb\n");
        }
        input.extend_from_slice(b"end\n");
        crate::support::cli::streamtool(&["connect", &server.addr()], &input).await.assert_code(0);
        let done = server.proc.finish().await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"ok\nend\n");
        let warnings = done.stderr.lines().filter(|l| l.contains("skipped an oversized frame")).count();
        assert_eq!(warnings, 3, "{}", done.stderr);
        assert!(done.stderr.contains("skipped 6 oversized frames in all"), "{}", done.stderr);
    });
}

/// Item 3: the README's completion commands work in a fresh home (the directories do not
/// exist yet), run as written by bash.
#[test]
fn readme_completion_commands_work_in_a_fresh_home() {
    let home = tempfile::tempdir().unwrap();
    let block = readme_block("Completions and man pages");
    // `man` may not be installed; the rest runs as written.
    let script: String = block.lines().filter(|l| !l.starts_with("man ")).map(|l| format!("{l}\n")).collect();
    assert!(script.contains("mkdir -p"), "{script}");
    let out = std::process::Command::new("bash")
        .args(["-euc", &script])
        .env("HOME", home.path())
        .env("PATH", format!("{}:{}", bin_dir(), std::env::var("PATH").unwrap()))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bash =
        std::fs::read_to_string(home.path().join(".local/share/bash-completion/completions/streamtool"))
            .unwrap();
    assert!(bash.contains("_streamtool"), "a bash completion script");
    let zsh = std::fs::read_to_string(home.path().join(".zfunc/_streamtool")).unwrap();
    assert!(zsh.starts_with("#compdef streamtool"), "a zsh completion function");
    // The README says how to put streamtool on PATH and what the tests need.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for needed in [
        "cargo install --path . --locked",
        "target/release/streamtool",
        "bsdutils",
        "nginx-light",
        "gnutls-bin",
    ] {
        assert!(readme.contains(needed), "the README does not mention {needed}");
    }
}

/// Item 2, with real bytes: `pipe --help`'s re-framing example, pasted into bash (ports and
/// the host replaced), turns `banana\n` into `banana\r\n`. Unquoted, the shell made the
/// delimiters `n` and `rn`, and `banana\r\n` arrived as `barnarna\r\n`.
#[test]
fn the_pipe_help_reframing_example_moves_the_right_bytes() {
    run(async {
        let example = help_examples("pipe")
            .into_iter()
            .find(|e| e.contains("delimiter=\\r\\n"))
            .expect("the re-framing example");
        let (legacy_port, legacy) = crate::support::cli::tcp_server(|mut tcp| async move {
            crate::support::cli::read_all(&mut tcp).await
        })
        .await;
        let listen_port = closed_port();
        let command = example
            .replace("tcp:legacy:7001", &format!("tcp:127.0.0.1:{legacy_port}"))
            .replace("tcp-l:7000", &format!("tcp-l:{listen_port}"))
            .replacen("streamtool", BIN, 1);
        assert!(!command.contains("7000") && !command.contains("legacy"), "{command}");
        let pipe = crate::support::cli::Server::listening(Proc::spawn(
            "bash",
            &["-c", &format!("exec {command}")],
            Input::Bytes(Vec::new()),
        ))
        .await;
        crate::support::cli::streamtool(&["connect", &format!("127.0.0.1:{listen_port}")], b"banana\n")
            .await
            .assert_code(0);
        assert_eq!(legacy.await.unwrap(), b"banana\r\n");
        pipe.proc.finish().await.assert_code(0);
    });
}

/// Item 1, the other side: in the foreground, `serve` reads its terminal as before (what
/// is typed goes to the client; Ctrl-D ends it), with no word about background jobs.
#[test]
fn serve_in_the_foreground_reads_its_terminal() {
    run(async {
        let command = format!("{BIN} serve 127.0.0.1:0");
        let mut terminal = Proc::spawn("script", &["-qec", &command, "/dev/null"], Input::Open);
        terminal.wait_stdout(b"listening on").await;
        let port =
            crate::support::cli::parse_port(&String::from_utf8_lossy(&terminal.stdout())).expect("the port");
        // The client's stdin stays open: a peer's end would stop a terminal's relay.
        let mut client = Proc::streamtool(&["connect", &format!("127.0.0.1:{port}")], Input::Open);
        client.write(b"hello\n").await;
        terminal.wait_stdout(b"hello").await;
        terminal.write(b"typed\n").await;
        client.wait_stdout(b"typed\n").await;
        // Ctrl-D at the start of a line: the end of the terminal's input, passed on as FIN.
        terminal.write(b"\x04").await;
        client.close_stdin();
        let done = client.finish().await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"typed\n");
        let screen = terminal.finish().await.stdout_text();
        assert!(!screen.contains("background job"), "{screen}");
    });
}
