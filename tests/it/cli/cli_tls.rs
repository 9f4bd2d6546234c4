//! At the command line: what `connect --tls` says when it weakens or refuses (the
//! library's side of the same cases is in `lib::tls`): the `--insecure` warning line,
//! exactly and alone, with and without `-q`; a name or an address the certificate does not
//! cover: exit 4, the one-line reason and the hint.

use crate::support::certs::PemPki;
use crate::support::cli::{Server, assert_refused_for_name, s, streamtool};
use crate::support::run;

/// The line `--insecure` (`-k`) prints, `-q` or not (after the level, which is padded).
const INSECURE_WARNING: &str = "WARN --insecure: the server's certificate is NOT verified; anyone on the path \
                                can read and change the data";

// "Weakening is never silent": the library test `insecure_accepts_any_certificate` shows
// what --insecure accepts; this one that the command line says so, in its one line.
#[test]
fn insecure_warns_on_stderr_at_the_command_line() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let other = PemPki::new(&["localhost"]);
        let server = Server::tls_echo(&pki, &[]).await;
        // Verified, this client refuses the server: a CA it does not trust, reached by an
        // address the certificate does not name.
        let refused = streamtool(
            &["connect", "--tls", "--on-eof", "half-close", "--ca", s(&other.ca), &server.addr()],
            b"hi\n",
        )
        .await;
        refused.assert_code(4);
        for flag in ["--insecure", "-k"] {
            for quiet in [false, true] {
                let mut args = if quiet { vec!["-q"] } else { vec![] };
                let addr = server.addr();
                args.extend(["connect", "--tls", flag, "--on-eof", "half-close", &addr]);
                let done = streamtool(&args, b"hi\n").await;
                done.assert_code(0);
                assert_eq!(done.stdout, b"hi\n", "{args:?}");
                let lines: Vec<&str> = done.stderr.lines().map(str::trim_start).collect();
                assert_eq!(lines, [INSECURE_WARNING], "{args:?}: exactly the warning:\n{}", done.stderr);
            }
        }
        server.proc.signal("TERM");
        server.proc.finish().await.assert_code(0);
    });
}

#[test]
fn name_mismatch_exits_4_with_the_reason_in_one_line_and_a_hint() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let server = Server::tls_echo(&pki, &[]).await;
        let target = server.localhost();
        let done = streamtool(
            &[
                "connect",
                "--tls",
                "--on-eof",
                "half-close",
                "--ca",
                s(&pki.ca),
                "--sni",
                "wrong.example",
                &target,
            ],
            b"hi\n",
        )
        .await;
        assert_refused_for_name(&done, &target, "wrong.example");
        server.proc.signal("TERM");
        server.proc.finish().await.assert_code(0);
    });
}

#[test]
fn address_mismatch_exits_4_with_the_reason_in_one_line_and_a_hint() {
    run(async {
        // The certificate names localhost only, not the address connected to.
        let pki = PemPki::new(&["localhost"]);
        let server = Server::tls_echo(&pki, &[]).await;
        let target = server.addr();
        let done =
            streamtool(&["connect", "--tls", "--on-eof", "half-close", "--ca", s(&pki.ca), &target], b"hi\n")
                .await;
        assert_refused_for_name(&done, &target, "127.0.0.1");
        server.proc.signal("TERM");
        server.proc.finish().await.assert_code(0);
    });
}
