//! The exit-code contract at the command line: every code that `streamtool --help`
//! documents has a scenario here that ends with it, and every one-shot `serve` mode ends
//! an idle timeout the same way (issue 29).

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::certs::PemPki;
use crate::support::cli::{Input, Proc, Server, closed_port, json_events, s, streamtool, tcp_server};
use crate::support::run;

/// The codes of the `Exit codes:` table at the end of `streamtool --help`.
async fn documented_codes() -> BTreeSet<i32> {
    let help = streamtool(&["--help"], b"").await;
    help.assert_code(0);
    let text = help.stdout_text();
    let table = text.split("Exit codes:").nth(1).expect("--help has an exit-code table");
    table.lines().filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect()
}

/// A one-shot `serve ARGS` and a client that connects and then holds the connection
/// without sending: the server's end, and the client's connection (kept open until then).
async fn idle_one_shot(args: &[&str]) -> crate::support::cli::Finished {
    let mut full = vec!["--events", "json", "--idle-timeout", "300ms"];
    full.extend_from_slice(args);
    let server = Server::start(&full).await;
    let client = TcpStream::connect(server.addr()).await.unwrap();
    let done = server.proc.finish().await;
    drop(client);
    done
}

/// Every documented exit code, each from a real scenario, checked against the table in
/// `--help` (so a code added there without a scenario, or a scenario that exits with
/// another code than documented, fails here).
#[test]
fn every_documented_exit_code_has_a_scenario_that_exits_with_it() {
    run(async {
        let mut seen = BTreeSet::new();
        let mut check = |code: i32, done: &crate::support::cli::Finished| {
            done.assert_code(code);
            seen.insert(code);
        };

        // 0: a round trip through an echo server.
        let echo = Server::start(&["-k", "--echo"]).await;
        let ok = streamtool(&["connect", &echo.addr()], b"hello").await;
        check(0, &ok);
        assert_eq!(ok.stdout, b"hello");

        // 1: a one-shot serve whose command fails.
        let failing = Server::start(&["--exec", "false"]).await;
        drop(TcpStream::connect(failing.addr()).await.unwrap());
        check(1, &failing.proc.finish().await);

        // 2: a usage error (a TLS flag without --tls).
        check(2, &streamtool(&["connect", "--ca", "ca.pem", "127.0.0.1:1"], b"").await);

        // 3: nothing listens.
        check(3, &streamtool(&["connect", &format!("127.0.0.1:{}", closed_port())], b"").await);

        // 4: a certificate the client does not trust (the system store, a self-signed one).
        let tls = Server::start(&["-k", "--echo", "--tls"]).await;
        check(4, &streamtool(&["connect", "-z", "--tls", &tls.localhost()], b"").await);

        // 5: a TLS peer that closes without close_notify, --ragged-eof strict.
        check(5, &crate::cli::cli_connect::connect_to_ragged_server("strict").await);

        // 6: an idle timeout, on both sides.
        check(6, &idle_one_shot(&["--echo"]).await);
        let (port, _silent) = tcp_server(|mut tcp| async move {
            let mut buf = Vec::new();
            let _ = tcp.read_to_end(&mut buf).await;
        })
        .await;
        let idle = Proc::streamtool(
            &["connect", "--idle-timeout", "300ms", &format!("127.0.0.1:{port}")],
            Input::Open,
        );
        check(6, &idle.finish().await);

        // 7: an oversized frame, on the client and on a one-shot server.
        let long =
            streamtool(&["connect", "--delimiter", "\\n", "--max-frame", "4", &echo.addr()], b"too long\n")
                .await;
        check(7, &long);
        let framed = Server::start(&["--echo", "--delimiter", "\\n", "--max-frame", "4"]).await;
        let mut client = TcpStream::connect(framed.addr()).await.unwrap();
        client.write_all(b"too long\n").await.unwrap();
        check(7, &framed.proc.finish().await);
        drop(client);

        // 130: SIGINT.
        let waiting = Proc::streamtool(&["connect", &echo.addr()], Input::Open);
        tokio::time::sleep(Duration::from_millis(300)).await;
        waiting.signal("INT");
        check(130, &waiting.finish().await);

        // 143: SIGTERM in connect.
        let waiting = Proc::streamtool(&["connect", &echo.addr()], Input::Open);
        tokio::time::sleep(Duration::from_millis(300)).await;
        waiting.signal("TERM");
        check(143, &waiting.finish().await);

        let documented = documented_codes().await;
        assert_eq!(seen, documented, "the scenarios cover exactly the documented codes");
        // The README's table lists the same codes.
        let readme =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
                .unwrap();
        let table = readme.split("## Exit codes").nth(1).unwrap().split("\n## ").next().unwrap();
        let in_readme: BTreeSet<i32> =
            table.lines().filter_map(|l| l.strip_prefix("| ")?.split(' ').next()?.parse().ok()).collect();
        assert_eq!(in_readme, documented, "README.md and --help list the same exit codes");
    });
}

/// Without -k, every mode ends an idle timeout alike (issue 29): exit 6, one line naming
/// the peer and the timeout, and a `close` event with the reason.
#[test]
fn one_shot_serve_ends_an_idle_timeout_with_exit_6_in_every_mode() {
    run(async {
        let modes: [&[&str]; 5] =
            [&[], &["--echo"], &["--exec", "cat"], &["--sh-exec", "cat"], &["--discard"]];
        for mode in modes {
            let done = idle_one_shot(mode).await;
            done.assert_code(6);
            let lines: Vec<&str> =
                done.stderr.lines().filter(|l| l.starts_with("streamtool: no data")).collect();
            assert_eq!(lines.len(), 1, "{mode:?}: one line:\n{}", done.stderr);
            assert!(
                lines[0].contains("no data moved to or from 127.0.0.1:") && lines[0].contains("300ms"),
                "{mode:?}: the line names the peer and the timeout: {}",
                lines[0]
            );
            let close = json_events(&done.stderr).into_iter().find(|e| e["event"] == "close");
            assert_eq!(
                close.as_ref().map(|e| e["reason"].clone()),
                Some(serde_json::json!("idle timeout")),
                "{mode:?}: a close event with the reason:\n{}",
                done.stderr
            );
            assert!(!done.stderr.contains("WARN"), "{mode:?}: {}", done.stderr);
        }
    });
}

/// `--help`, the man page and docs/cli.md say the same about one-shot idle timeouts.
#[test]
fn idle_timeout_help_man_page_and_docs_agree() {
    run(async {
        let help = streamtool(&["serve", "--help"], b"").await;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let man = std::fs::read_to_string(root.join("docs/man/streamtool-serve.1")).unwrap();
        let cli = std::fs::read_to_string(root.join("docs/cli.md")).unwrap();
        let flat = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ").replace("\\-", "-");
        for (what, text) in [("--help", help.stdout_text()), ("man page", man)] {
            assert!(
                flat(&text).contains("serve without -k in every mode, then exit 6"),
                "{what} says how serve ends an idle timeout"
            );
        }
        assert!(
            flat(&cli)
                .contains("without `-k`, every mode (stdio, `--echo`, `--exec`/`--sh-exec`, `--discard`)")
        );
        assert!(flat(&cli).contains("exit 6"));
    });
}

/// A probe that connects, handshakes and leaves is an ordinary end (issue 29): no WARN on
/// the server, plain or TLS, with -k or without.
#[test]
fn a_zero_io_probe_leaves_no_warning_on_the_server() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let tls_args = ["--tls", "--cert", s(&pki.server_cert), "--key", s(&pki.server_key)];
        for tls in [false, true] {
            let mut args = vec!["-k", "--echo"];
            if tls {
                args.extend(tls_args);
            }
            let server = Server::start(&args).await;
            for _ in 0..20 {
                let mut probe = vec!["connect", "-z"];
                if tls {
                    probe.extend(["--tls", "--ca", s(&pki.ca)]);
                }
                let target = server.localhost();
                probe.push(&target);
                streamtool(&probe, b"").await.assert_code(0);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            server.proc.signal("TERM");
            let done = server.proc.finish().await;
            done.assert_code(0);
            assert!(
                !done.stderr.contains("WARN"),
                "tls {tls}: a probe logged as a failure:\n{}",
                done.stderr
            );

            // Without -k the probe is the one client, and serve exits 0.
            let mut args = vec!["--echo"];
            if tls {
                args.extend(tls_args);
            }
            let one = Server::start(&args).await;
            let mut probe = vec!["connect", "-z"];
            if tls {
                probe.extend(["--tls", "--ca", s(&pki.ca)]);
            }
            let target = one.localhost();
            probe.push(&target);
            streamtool(&probe, b"").await.assert_code(0);
            let done = one.proc.finish().await;
            done.assert_code(0);
            assert!(!done.stderr.contains("WARN"), "tls {tls}, one-shot:\n{}", done.stderr);
        }
    });
}

/// The same through `pipe` with fork, as a TLS terminator and as a plain relay: a probe
/// is no warning (issue 29).
#[test]
fn a_zero_io_probe_through_a_forking_pipe_leaves_no_warning() {
    run(async {
        let backend = Server::start(&["-k", "--echo"]).await;
        let to_backend = format!("tcp:{}", backend.addr());
        for tls in [false, true] {
            let listen = if tls { "tls-listen:127.0.0.1:0,fork" } else { "tcp-listen:127.0.0.1:0,fork" };
            let pipe = Server::listening(Proc::streamtool(&["pipe", listen, &to_backend], Input::Open)).await;
            let pin = pipe
                .proc
                .stderr()
                .split("--pin ")
                .nth(1)
                .map(|r| r.split_whitespace().next().unwrap().to_string());
            for _ in 0..20 {
                let target = pipe.localhost();
                let mut probe = vec!["connect", "-z"];
                if let Some(pin) = &pin {
                    probe.extend(["--tls", "--pin", pin]);
                }
                probe.push(&target);
                streamtool(&probe, b"").await.assert_code(0);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            pipe.proc.signal("TERM");
            let done = pipe.proc.finish().await;
            done.assert_code(0);
            assert!(
                !done.stderr.contains("WARN"),
                "tls {tls}: a probe logged as a failure:\n{}",
                done.stderr
            );
        }
    });
}
