//! The flags of `serve` and `connect` that the other CLI tests do not reach: ALPN, address
//! families, --quiet, --no-sni, --keylog, the hidden ncat aliases, --grace.

use std::time::{Duration, Instant};

use crate::support::cli::{Input, Proc, STEP, Server, poll_until, streamtool};
use crate::support::run;

#[test]
fn alpn_is_negotiated_and_shown() {
    run(async {
        let server = Server::start(&["-k", "--echo", "--tls", "--alpn", "h2,http/1.1"]).await;
        let pin = server.printed_pin().await;
        let done = streamtool(
            &[
                "connect",
                "--tls",
                "--on-eof",
                "half-close",
                "--pin",
                &pin,
                "--alpn",
                "http/1.1",
                "--show-cert",
                &server.localhost(),
            ],
            b"x",
        )
        .await;
        done.assert_code(0);
        assert!(done.stderr.contains("ALPN protocol: http/1.1"), "{}", done.stderr);
    });
}

#[test]
fn address_family_flags_pick_ipv4_or_ipv6() {
    run(async {
        let server = Server::start(&["-k", "--echo"]).await;
        let port = server.port;
        let v4 = streamtool(&["connect", "-4", "--events", "json", &server.localhost()], b"hi").await;
        v4.assert_code(0);
        assert!(v4.stderr.contains("\"peer\":\"127.0.0.1:"), "{}", v4.stderr);
        let v6 = streamtool(&["connect", "-6", "--events", "json", &format!("[::1]:{port}")], b"hi").await;
        v6.assert_code(0);
        assert!(v6.stderr.contains("\"peer\":\"[::1]:"), "{}", v6.stderr);
        let wrong = streamtool(&["connect", "-6", &server.addr()], b"").await;
        wrong.assert_code(3);
        assert!(wrong.stderr.contains("no IPv6 address"), "{}", wrong.stderr);
    });
}

#[test]
fn quiet_keeps_stderr_empty_on_success() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quiet.sock");
        let address = format!("unix:{}", path.display());
        let server = Proc::streamtool(&["serve", "-q", "-k", "--echo", &address], Input::Open);
        // With -q there is no listening line: ready when the socket accepts (the file
        // appears at bind(2), before listen(2), when a connection is still refused).
        let listening = poll_until(STEP, || std::os::unix::net::UnixStream::connect(&path).is_ok()).await;
        assert!(listening, "the socket accepts connections");
        let done = streamtool(&["connect", "-q", &address], b"quiet").await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"quiet");
        assert_eq!(done.stderr, "", "connect -q");
        assert_eq!(server.stderr(), "", "serve -q says nothing, not even where it listens");
    });
}

#[test]
fn no_sni_sends_no_server_name_and_still_verifies() {
    run(async {
        let server = Server::start(&["-k", "--echo", "--tls", "--events", "json"]).await;
        let pin = server.printed_pin().await;
        let done = streamtool(
            &["connect", "--tls", "--on-eof", "half-close", "--pin", &pin, "--no-sni", &server.localhost()],
            b"x",
        )
        .await;
        done.assert_code(0);
        assert!(
            poll_until(STEP, || server.proc.stderr().contains("\"sni\":null")).await,
            "{}",
            server.proc.stderr()
        );
    });
}

#[test]
fn keylog_writes_the_secrets_to_a_private_file() {
    run(async {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let keylog = dir.path().join("keys.log");
        let server = Server::start(&["-k", "--echo", "--tls"]).await;
        let pin = server.printed_pin().await;
        let args = [
            "connect",
            "--tls",
            "--on-eof",
            "half-close",
            "--pin",
            &pin,
            "--keylog",
            keylog.to_str().unwrap(),
            &server.localhost(),
        ];
        let done = streamtool(&args, b"x").await;
        done.assert_code(0);
        assert!(done.stderr.contains("logging TLS secrets"), "the user is warned: {}", done.stderr);
        let text = std::fs::read_to_string(&keylog).unwrap();
        assert!(text.contains("CLIENT_TRAFFIC_SECRET_0 "), "{text}");
        assert_eq!(std::fs::metadata(&keylog).unwrap().permissions().mode() & 0o777, 0o600);
    });
}

#[test]
fn hidden_ncat_aliases_work() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = crate::support::certs::seed_certificate(dir.path());
        let server = Server::start(&[
            "-k",
            "--echo",
            "--ssl",
            "--ssl-cert",
            cert.to_str().unwrap(),
            "--ssl-key",
            key.to_str().unwrap(),
        ])
        .await;
        let done = streamtool(
            &[
                "connect",
                "--on-eof",
                "half-close",
                "--ssl",
                "--ssl-trustfile",
                cert.to_str().unwrap(),
                "--ssl-servername",
                "localhost",
                &server.addr(),
            ],
            b"ncat users",
        )
        .await;
        done.assert_code(0);
        assert_eq!(done.stdout, b"ncat users");
    });
}

#[test]
fn grace_bounds_how_long_open_connections_hold_a_shutdown() {
    run(async {
        let server = Server::start(&["-k", "--echo", "--grace", "300ms"]).await;
        // A client that never ends its side keeps its connection open.
        let client = Proc::streamtool(&["connect", "--events", "json", &server.addr()], Input::Open);
        assert!(poll_until(STEP, || client.stderr().contains("\"event\":\"connect\"")).await);
        let started = Instant::now();
        server.proc.signal("TERM");
        let done = server.proc.finish_within(STEP).await;
        done.assert_code(0);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(4), "the grace period ends the wait: {took:?}");
        drop(client);
    });
}

#[test]
fn send_only_uploads_everything_even_when_the_peer_ends_its_side_first() {
    run(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (port, server) =
            crate::support::cli::tcp_server(|mut stream: tokio::net::TcpStream| async move {
                // The server has nothing to say: it half-closes at once, then reads everything.
                stream.shutdown().await.unwrap();
                let mut got = Vec::new();
                stream.read_to_end(&mut got).await.unwrap();
                got
            })
            .await;
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let done = streamtool(&["connect", "--send-only", &format!("127.0.0.1:{port}")], &data).await;
        done.assert_code(0);
        assert!(server.await.unwrap() == data, "the server received every byte");
    });
}

#[test]
fn threads_past_the_bound_is_a_usage_error_not_a_panic() {
    run(async {
        let done = streamtool(&["--threads", "100000", "serve", "127.0.0.1:0"], b"").await;
        done.assert_code(2);
        assert!(done.stderr.contains("--threads"), "{}", done.stderr);
        assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    });
}

#[test]
fn a_listen_address_of_the_other_family_than_asked_is_refused() {
    run(async {
        for (flag, addr) in [("-4", "[::1]:0"), ("-6", "127.0.0.1:0")] {
            let done = streamtool(&["serve", flag, addr], b"").await;
            done.assert_code(3);
            assert!(done.stderr.contains(flag) && done.stderr.lines().count() == 1, "{}", done.stderr);
        }
    });
}

#[test]
fn max_conns_zero_is_a_usage_error() {
    run(async {
        streamtool(&["serve", "-k", "--max-conns", "0", "127.0.0.1:0"], b"").await.assert_code(2);
        streamtool(&["pipe", "--max-conns", "0", "tcp-listen:0,fork", "exec:cat"], b"").await.assert_code(2);
    });
}

/// No flag turns TLS on but --tls (issue 29): a TLS flag alone is a usage error that names
/// --tls, before anything listens, in serve and connect alike; serve's --ca (the client's
/// trust, never read by a server) points to --client-ca, with or without --tls.
#[test]
fn a_tls_flag_without_tls_is_a_usage_error_naming_tls() {
    run(async {
        let refused: [(&[&str], &[&str]); 9] = [
            (&["serve", "--ca", "/nonexistent", "--echo", "127.0.0.1:0"], &["--tls", "--client-ca"]),
            (&["serve", "--tls", "--ca", "/nonexistent", "--echo", "127.0.0.1:0"], &["--client-ca"]),
            (&["serve", "--cert", "/nonexistent", "--echo", "127.0.0.1:0"], &["--cert needs --tls"]),
            (
                &["serve", "--client-ca", "/nonexistent", "--echo", "127.0.0.1:0"],
                &["--client-ca needs --tls"],
            ),
            (&["serve", "--tls", "--sni", "x", "--echo", "127.0.0.1:0"], &["--sni"]),
            (&["serve", "--max-conns", "2", "--echo", "127.0.0.1:0"], &["--max-conns needs -k"]),
            (&["connect", "--ca", "/nonexistent", "127.0.0.1:1"], &["--ca needs --tls"]),
            (
                &["connect", "-z", "-k", "--show-cert", "127.0.0.1:1"],
                &["-k/--insecure, --show-cert need --tls"],
            ),
            (&["connect", "--ragged-eof", "warn", "127.0.0.1:1"], &["--ragged-eof needs --tls"]),
        ];
        for (args, expected) in refused {
            let done = Proc::streamtool(args, Input::Open).finish().await;
            done.assert_code(2);
            for needle in expected {
                assert!(done.stderr.contains(needle), "{args:?}: no {needle:?} in:\n{}", done.stderr);
            }
            assert!(!done.stderr.contains("listening on") && !done.stderr.contains("pin"), "{}", done.stderr);
        }
        // Flags that another one would silently ignore (or, for --recv-only --keep-sending,
        // that left connect waiting for ever once the peer ended).
        for args in [
            ["connect", "--recv-only", "--keep-sending", "127.0.0.1:1"],
            ["connect", "-z", "--send-only", "127.0.0.1:1"],
            ["connect", "-z", "--no-shutdown", "127.0.0.1:1"],
        ] {
            streamtool(&args, b"").await.assert_code(2);
        }
        let oversize = streamtool(&["connect", "--on-oversize", "skip", "127.0.0.1:1"], b"").await;
        oversize.assert_code(2);
        assert!(oversize.stderr.contains("--delimiter"), "{}", oversize.stderr);
    });
}

/// Every file a flag or endpoint option names is read and checked before the banner and
/// the listening line (issue 29): a missing one ends the command with exit 1 naming it,
/// and nothing is announced.
#[test]
fn every_file_a_flag_names_is_read_before_anything_listens() {
    run(async {
        let cases: [&[&str]; 5] = [
            &["serve", "--tls", "--cert", "/nonexistent/c.pem", "--echo", "127.0.0.1:0"],
            &["serve", "--tls", "--client-ca", "/nonexistent/c.pem", "--echo", "127.0.0.1:0"],
            &["serve", "--tls", "--keylog", "/nonexistent/c.pem", "--echo", "127.0.0.1:0"],
            &["pipe", "tcp-listen:127.0.0.1:0,fork", "tls:localhost:1,ca=/nonexistent/c.pem"],
            &["pipe", "tls-listen:127.0.0.1:0,cert=/nonexistent/c.pem", "tcp:127.0.0.1:1"],
        ];
        for args in cases {
            let done = Proc::streamtool(args, Input::Open).finish().await;
            done.assert_code(1);
            assert!(done.stderr.contains("/nonexistent/c.pem"), "{args:?}: {}", done.stderr);
            assert!(
                !done.stderr.contains("listening on") && !done.stderr.contains("pin"),
                "{args:?} announced before reading its files:\n{}",
                done.stderr
            );
        }
    });
}

/// Every value-taking flag of each subcommand at once, parsed by the real binary: a field
/// whose type clap reads differently from what its parser returns panics (exit 101) while
/// the command line is read, before anything runs. Each run here gets past parsing and
/// fails where it first touches the network, naming the address (exit 3).
#[test]
fn every_flag_parses_into_its_field() {
    run(async {
        let pki = crate::support::certs::PemPki::new(&["localhost"]);
        let dir = tempfile::tempdir().unwrap();
        let keylog = dir.path().join("k.log");
        let (ca, cert, key) =
            (pki.ca.to_str().unwrap(), pki.client_cert.to_str().unwrap(), pki.client_key.to_str().unwrap());
        let closed = format!("localhost:{}", crate::support::cli::closed_port());
        let pin = format!("sha256:{}", "0".repeat(64));
        let connect = [
            "connect",
            "--tls",
            "--cert",
            cert,
            "--key",
            key,
            "--ca",
            ca,
            "--pin",
            &pin,
            "--sni",
            "x",
            "--alpn",
            "h2,http/1.1",
            "--tls-min",
            "1.2",
            "--tls-max",
            "TLSv1.3",
            "--ragged-eof",
            "warn",
            "--keylog",
            keylog.to_str().unwrap(),
            "--delimiter",
            "\\r\\n",
            "--max-frame",
            "64KiB",
            "--on-oversize",
            "skip",
            "--encoding",
            "latin1",
            "--decode-errors",
            "replace",
            "--crlf",
            "-w",
            "5s",
            "--idle-timeout",
            "1m",
            "--handshake-timeout",
            "500ms",
            "-4",
            "--events",
            "json",
            "--no-shutdown",
            "--show-cert",
            &closed,
        ];
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = busy.local_addr().unwrap().port().to_string();
        let socket = dir.path().join("no-such-dir/x.sock");
        let unix = format!("unix:{}", socket.display());
        let serve = [
            "serve",
            "-k",
            "--broker",
            "--delimiter",
            "\\n",
            "--max-conns",
            "3",
            "--tls",
            "--cert",
            pki.server_cert.to_str().unwrap(),
            "--key",
            pki.server_key.to_str().unwrap(),
            "--client-ca",
            ca,
            "--require-client-cert",
            "--grace",
            "2s",
            &unix,
        ];
        let listen = format!("tcp-l:127.0.0.1:{busy}");
        let pipe = ["pipe", "--progress", "--idle-timeout", "none", "--max-conns", "2", "-k", &listen, "-"];
        for (args, names) in
            [(&connect[..], closed.as_str()), (&serve[..], unix.as_str()), (&pipe[..], busy.as_str())]
        {
            let out = streamtool(args, b"").await;
            assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
            out.assert_code(3);
            let names = names.trim_start_matches("unix:").trim_start_matches("localhost:");
            assert!(out.stderr.contains(names), "{args:?} should fail naming {names}: {}", out.stderr);
        }
    });
}
