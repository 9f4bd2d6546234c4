//! Issue 26, the hardening findings, each against the real binary on loopback with the
//! real tools another program plays (openssl signs and verifies forged certificates,
//! Python holds a live UNIX socket with a full accept queue): trust anchors that trust
//! only what they should, UNIX socket files, secret files, output a hostile certificate
//! cannot forge, `--cert` chains, the CA directory, a closed stderr or stdout, pipe's
//! listeners and idle limit, SIGHUP, and TLS records that are not a ClientHello.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use crate::support::certs::{openssl_verdict, seed_certificate};
use crate::support::cli::{Closed, Input, Proc, STEP, Server, closed_port, poll_until, s, streamtool};
use crate::support::run;

// ---- helpers ----

/// `streamtool gen-cert --self-signed [--client] NAME` into `dir`: (cert, key).
async fn self_signed(dir: &Path, name: &str, client: bool) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}-key.pem")));
    let mut args = vec!["gen-cert", "--self-signed", "--cert-file", s(&cert), "--key-file", s(&key)];
    if client {
        args.push("--client");
    }
    args.push(name);
    streamtool(&args, b"").await.assert_code(0);
    (cert, key)
}

/// A leaf for `subject` signed with `issuer_key` (issuer `issuer_cert`) by `openssl x509
/// -req`, with the extensions `ext` (openssl.cnf lines): what an attacker holding a listed
/// self-signed leaf's key can make. Returns (cert, key).
fn sign_with_openssl(
    dir: &Path,
    stem: &str,
    subject: &str,
    ext: &str,
    issuer_cert: &Path,
    issuer_key: &Path,
) -> (PathBuf, PathBuf) {
    let (cert, key, csr, cnf) = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}-key.pem")),
        dir.join(format!("{stem}.csr")),
        dir.join(format!("{stem}.cnf")),
    );
    std::fs::write(&cnf, ext).unwrap();
    let (ok, out) = openssl_verdict(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        s(&key),
        "-subj",
        subject,
        "-out",
        s(&csr),
    ]);
    assert!(ok, "openssl req: {out}");
    let (ok, out) = openssl_verdict(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-CA",
        s(issuer_cert),
        "-CAkey",
        s(issuer_key),
        "-set_serial",
        "4242",
        "-days",
        "30",
        "-extfile",
        s(&cnf),
        "-out",
        s(&cert),
    ]);
    assert!(ok, "openssl x509 -req: {out}");
    (cert, key)
}

/// Waits until something accepts TCP connections on `127.0.0.1:port` (for a process whose
/// stderr is closed, so that its `listening on` line cannot be read).
async fn wait_connectable(port: u16) {
    let ok = poll_until(STEP, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()).await;
    assert!(ok, "nothing listens on 127.0.0.1:{port}");
}

/// The stderr lines that are not hints.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.starts_with("streamtool: hint: ")).collect()
}

fn my_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// A uid that is not ours, and whether files can be given to it (we are root).
fn other_uid() -> Option<u32> {
    (my_uid() == 0).then_some(65534)
}

// ---- 1. trust anchors: a listed leaf is trusted as itself, never as an issuer ----

#[test]
fn a_self_signed_leaf_given_to_ca_does_not_vouch_for_a_leaf_signed_with_its_key() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let (a, a_key) = self_signed(dir.path(), "a.test", false).await;
        // The attacker holds a.test's key and signs a leaf for another name with it.
        let (forged, forged_key) = sign_with_openssl(
            dir.path(),
            "forged",
            "/CN=www.bank.test",
            "subjectAltName=DNS:www.bank.test\nextendedKeyUsage=serverAuth\n",
            &a,
            &a_key,
        );
        // The reference: OpenSSL refuses it ("invalid CA certificate").
        let (ok, verdict) = openssl_verdict(&["verify", "-CAfile", s(&a), s(&forged)]);
        assert!(!ok, "openssl verify accepted the forged leaf: {verdict}");

        let mut server = Server::start(&["--tls", "--cert", s(&forged), "--key", s(&forged_key), "0"]).await;
        // Its input ends at once: it ends its side (close_notify) when a client comes.
        server.proc.close_stdin();
        let client = streamtool(
            &[
                "connect",
                "--tls",
                "--on-eof",
                "half-close",
                "--ca",
                s(&a),
                "--sni",
                "www.bank.test",
                &server.addr(),
            ],
            b"secret\n",
        )
        .await;
        client.assert_code(4);
        assert_eq!(error_lines(&client.stderr).len(), 1, "one line: {}", client.stderr);
        assert!(server.proc.stdout().is_empty(), "nothing reached the forged server");

        // a.test itself, listed, is still trusted as itself (its dates and name checked).
        let mut server = Server::start(&["--tls", "--cert", s(&a), "--key", s(&a_key), "0"]).await;
        // Its input ends at once: it ends its side (close_notify) when a client comes.
        server.proc.close_stdin();
        let wrong_name = streamtool(
            &[
                "connect",
                "--tls",
                "--on-eof",
                "half-close",
                "--ca",
                s(&a),
                "--sni",
                "www.bank.test",
                &server.addr(),
            ],
            b"x",
        )
        .await;
        wrong_name.assert_code(4);
        let ok = streamtool(
            &["connect", "--tls", "--on-eof", "half-close", "--ca", s(&a), "--sni", "a.test", &server.addr()],
            b"hi\n",
        )
        .await;
        ok.assert_code(0);
        let server = server.proc.finish().await;
        server.assert_code(0);
        assert_eq!(server.stdout, b"hi\n");
    });
}

#[test]
fn a_real_ca_given_to_ca_still_issues_and_the_seed_certificate_still_works() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        // The seed's `openssl req -x509` certificate (CA:TRUE, no SAN), trusted as itself.
        let (cert, key) = seed_certificate(dir.path());
        let mut server = Server::start(&["--tls", "--cert", s(&cert), "--key", s(&key), "0"]).await;
        // Its input ends at once: it ends its side (close_notify) when a client comes.
        server.proc.close_stdin();
        streamtool(
            &["connect", "--tls", "--on-eof", "half-close", "--ca", s(&cert), &server.localhost()],
            b"seed\n",
        )
        .await
        .assert_code(0);
        assert_eq!(server.proc.finish().await.stdout, b"seed\n");
        // The same certificate as a CA (CA:TRUE, may sign) issues a leaf that verifies.
        let (leaf, leaf_key) = sign_with_openssl(
            dir.path(),
            "issued",
            "/CN=issued.test",
            "subjectAltName=DNS:issued.test\nextendedKeyUsage=serverAuth\n",
            &cert,
            &key,
        );
        let (ok, verdict) = openssl_verdict(&["verify", "-CAfile", s(&cert), s(&leaf)]);
        assert!(ok, "openssl verify refused a leaf of a real CA: {verdict}");
        let mut server = Server::start(&["--tls", "--cert", s(&leaf), "--key", s(&leaf_key), "0"]).await;
        // Its input ends at once: it ends its side (close_notify) when a client comes.
        server.proc.close_stdin();
        streamtool(
            &[
                "connect",
                "--tls",
                "--on-eof",
                "half-close",
                "--ca",
                s(&cert),
                "--sni",
                "issued.test",
                &server.addr(),
            ],
            b"ca\n",
        )
        .await
        .assert_code(0);
        assert_eq!(server.proc.finish().await.stdout, b"ca\n");

        // The same for client certificates: the CA's own certificate (as itself) and one
        // it issued both get in under --client-ca.
        let (client, client_key) = sign_with_openssl(
            dir.path(),
            "client",
            "/CN=client.test",
            "extendedKeyUsage=clientAuth\n",
            &cert,
            &key,
        );
        for (c, k) in [(&cert, &key), (&client, &client_key)] {
            let mut server =
                Server::start(&["--tls", "--client-ca", s(&cert), "--require-client-cert"]).await;
            // Its input ends at once: it ends its side (close_notify) when a client comes.
            server.proc.close_stdin();
            streamtool(
                &[
                    "connect",
                    "--tls",
                    "--on-eof",
                    "half-close",
                    "--insecure",
                    "--cert",
                    s(c),
                    "--key",
                    s(k),
                    &server.addr(),
                ],
                b"in\n",
            )
            .await
            .assert_code(0);
            assert_eq!(server.proc.finish().await.stdout, b"in\n", "{}", c.display());
        }
    });
}

#[test]
fn a_self_signed_client_certificate_given_to_client_ca_does_not_vouch_for_admin() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let (alice, alice_key) = self_signed(dir.path(), "alice.test", true).await;
        let (admin, admin_key) = sign_with_openssl(
            dir.path(),
            "admin",
            "/CN=admin",
            "extendedKeyUsage=clientAuth\n",
            &alice,
            &alice_key,
        );
        let (ok, verdict) = openssl_verdict(&["verify", "-CAfile", s(&alice), s(&admin)]);
        assert!(!ok, "openssl verify accepted admin: {verdict}");

        let mut server =
            Server::start(&["--tls", "--client-ca", s(&alice), "--require-client-cert", "--events", "json"])
                .await;
        // Its input ends at once: it ends its side (close_notify) when a client comes.
        server.proc.close_stdin();
        let forged = streamtool(
            &[
                "connect",
                "--tls",
                "--on-eof",
                "half-close",
                "--insecure",
                "--cert",
                s(&admin),
                "--key",
                s(&admin_key),
                &server.addr(),
            ],
            b"as admin\n",
        )
        .await;
        assert_ne!(forged.code, Some(0), "admin got in: {}", forged.stderr);
        assert!(server.proc.stdout().is_empty(), "nothing from admin reached the server");
        assert!(!server.proc.stderr().contains("CN=admin"), "{}", server.proc.stderr());
        // Alice herself (her exact certificate, listed) gets in.
        let alice_in = streamtool(
            &[
                "connect",
                "--tls",
                "--on-eof",
                "half-close",
                "--insecure",
                "--cert",
                s(&alice),
                "--key",
                s(&alice_key),
                &server.addr(),
            ],
            b"as alice\n",
        )
        .await;
        alice_in.assert_code(0);
        let server = server.proc.finish().await;
        server.assert_code(0);
        assert_eq!(server.stdout, b"as alice\n");
    });
}

// ---- 2. UNIX sockets: only a refused connection proves a socket stale ----

/// A Python server on `path` with a full accept queue: it prints `ready` and holds the
/// socket until its stdin closes.
const FULL_QUEUE_SERVER: &str = r#"
import socket, sys
path = sys.argv[1]
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(0)
held = []
while True:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.setblocking(False)
    try:
        c.connect(path)
    except BlockingIOError:
        break
    held.append(c)
print("ready", len(held), flush=True)
sys.stdin.read()
"#;

#[test]
fn unix_listen_does_not_take_a_live_servers_socket_whose_queue_is_full() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.sock");
        let python = Proc::spawn("python3", &["-c", FULL_QUEUE_SERVER, s(&path)], Input::Open);
        python.wait_stdout(b"ready").await;
        let inode = std::fs::symlink_metadata(&path).unwrap().ino();
        for args in [
            vec!["serve".to_string(), format!("unix:{}", path.display())],
            vec!["pipe".to_string(), format!("unix-listen:{}", path.display()), "stdio".to_string()],
        ] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = Proc::streamtool(&args, Input::Open).finish().await;
            out.assert_code(3);
            let lines = error_lines(&out.stderr);
            assert_eq!(lines.len(), 1, "one line: {}", out.stderr);
            assert!(lines[0].contains(s(&path)), "names the path: {}", out.stderr);
            assert_eq!(
                std::fs::symlink_metadata(&path).unwrap().ino(),
                inode,
                "the live socket is untouched"
            );
        }
    });
}

#[test]
fn on_exit_unix_listen_removes_only_its_own_socket() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let unix = format!("unix:{}", path.display());
        let listen = format!("unix-listen:{}", path.display());
        for args in [vec!["serve", "-k", unix.as_str()], vec!["pipe", listen.as_str(), "stdio"]] {
            // A regular file put in place of the socket survives the exit.
            let server = Server::listening(Proc::streamtool(&args, Input::Open)).await;
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&path, "precious").unwrap();
            server.proc.signal("TERM");
            server.proc.finish().await.assert_code(0);
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious", "{args:?}");
            std::fs::remove_file(&path).unwrap();
        }
        // Two instances on one path: the first to exit leaves the second's socket.
        let first = Server::listening(Proc::streamtool(&["serve", "-k", &unix], Input::Open)).await;
        std::fs::remove_file(&path).unwrap();
        let second = Server::listening(Proc::streamtool(&["serve", "-k", &unix], Input::Open)).await;
        first.proc.signal("TERM");
        first.proc.finish().await.assert_code(0);
        let mut client = UnixStream::connect(&path).await.expect("the second server's socket is still there");
        client.write_all(b"to the second\n").await.unwrap();
        second.proc.wait_stdout(b"to the second\n").await;
        drop(client);
        second.proc.signal("TERM");
        second.proc.finish().await.assert_code(0);
        assert!(!path.exists(), "the second removed its own socket");
    });
}

// ---- 3. the key log: no symbolic links, no one else's file, no loose mode ----

#[test]
fn the_key_log_refuses_a_symlink_a_loose_mode_and_another_users_file() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let loose = dir.path().join("loose.log");
        std::fs::write(&loose, "").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut refused = vec![(link.clone(), "symbolic link"), (loose.clone(), "0644")];
        let theirs = dir.path().join("theirs.log");
        if let Some(uid) = other_uid() {
            std::fs::write(&theirs, "").unwrap();
            std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o600)).unwrap();
            std::os::unix::fs::chown(&theirs, Some(uid), None).unwrap();
            refused.push((theirs.clone(), "owned by uid"));
        }
        for (path, why) in &refused {
            // --keylog, and SSLKEYLOGFILE (with env, as a user sets it).
            let flag = streamtool(&["serve", "--tls", "--keylog", s(path), "127.0.0.1:0"], b"").await;
            let env_var = format!("SSLKEYLOGFILE={}", path.display());
            let env = Proc::spawn(
                "env",
                &[&env_var, crate::support::cli::BIN, "serve", "--tls", "127.0.0.1:0"],
                Input::Open,
            )
            .finish()
            .await;
            for out in [flag, env] {
                assert_ne!(out.code, Some(0), "{}", out.stderr);
                let lines: Vec<&str> = out.stderr.lines().filter(|l| l.contains("key log")).collect();
                assert_eq!(lines.len(), 1, "one line naming the file: {}", out.stderr);
                assert!(lines[0].contains(s(path)) && lines[0].contains(why), "{}", out.stderr);
                assert!(!out.stderr.contains("listening on"), "refused before listening: {}", out.stderr);
            }
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"", "nothing went through the link");
        assert_eq!(std::fs::read(&loose).unwrap(), b"");

        // A file of our own with mode 0600 is appended to; a new one is made 0600.
        let fresh = dir.path().join("fresh.log");
        let mut server = Server::start(&["--tls", "--keylog", s(&fresh), "0"]).await;
        // Its input ends at once: it ends its side (close_notify) when a client comes.
        server.proc.close_stdin();
        streamtool(&["connect", "--tls", "--on-eof", "half-close", "--insecure", &server.addr()], b"x")
            .await
            .assert_code(0);
        server.proc.finish().await.assert_code(0);
        let meta = std::fs::metadata(&fresh).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert!(std::fs::read_to_string(&fresh).unwrap().contains("CLIENT_"), "secrets were logged");
    });
}

// ---- 4. output a peer controls is escaped ----

const EVIL_CN: &str = "evil\x1b[2J\x1b[31m\x1b]0;pwned\x07\x08\r\nstreamtool: verified OK";

/// A self-signed certificate for localhost whose CN is [`EVIL_CN`]: (cert, key).
fn evil_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    use rcgen::{CertificateParams, DnType, DnValue, KeyPair};
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, DnValue::Utf8String(EVIL_CN.into()));
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.join("evil.pem"), dir.join("evil-key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// No byte of `out` is a control character but newline, and no line is forged.
#[track_caller]
fn assert_no_raw_controls(what: &str, out: &[u8]) {
    let bad: Vec<u8> =
        out.iter().copied().filter(|b| (b.is_ascii_control() && *b != b'\n') || *b == 0x7f).collect();
    assert!(bad.is_empty(), "{what}: raw control bytes {bad:02x?} in {:?}", String::from_utf8_lossy(out));
    let text = String::from_utf8_lossy(out);
    assert!(
        !text.lines().any(|l| l.starts_with("streamtool: verified OK")),
        "{what}: a forged line: {text:?}"
    );
    assert!(text.contains("\\x1b[2J"), "{what}: the escape is shown escaped: {text:?}");
}

#[test]
fn certificate_names_and_command_line_hosts_cannot_write_to_the_terminal() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = evil_certificate(dir.path());
        // gen-cert --inspect: the text escapes, the JSON keeps the name (serde escapes it).
        let text = streamtool(&["gen-cert", "--inspect", s(&cert)], b"").await;
        text.assert_code(0);
        assert_no_raw_controls("gen-cert --inspect", &text.stdout);
        let json = streamtool(&["gen-cert", "--inspect", s(&cert), "--json"], b"").await;
        json.assert_code(0);
        let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap_or_else(|e| {
            panic!("--json output is JSON ({e}): {}", json.stdout_text());
        });
        assert!(value.to_string().contains("\\u001b[2J"), "JSON unchanged: {value}");

        // connect -z -k --show-cert against a server presenting it.
        let mut server = Server::start(&["--tls", "--cert", s(&cert), "--key", s(&key), "0"]).await;
        // Its input ends at once: it ends its side (close_notify) when a client comes.
        server.proc.close_stdin();
        let shown = streamtool(&["connect", "-z", "--tls", "-k", "--show-cert", &server.addr()], b"").await;
        shown.assert_code(0);
        assert_no_raw_controls("--show-cert", shown.stderr.as_bytes());
        assert!(shown.stderr.contains("\\x0astreamtool: verified OK"), "{:?}", shown.stderr);

        // A host with control characters, echoed in the error line.
        let host = "bad\x1b[2Jhost\x07.invalid:1";
        let out = streamtool(&["connect", host], b"").await;
        assert_ne!(out.code, Some(0));
        assert!(!out.stderr.bytes().any(|b| b == 0x1b || b == 0x07), "{:?}", out.stderr);
        assert!(out.stderr.contains("bad\\x1b[2Jhost\\x07.invalid"), "{:?}", out.stderr);
        // A usage error echoes the bad value: escaped too.
        let out = streamtool(&["connect", "--idle-timeout", "5\x1b[2J", "localhost:1"], b"").await;
        out.assert_code(2);
        assert!(!out.stderr.bytes().any(|b| b == 0x1b), "{:?}", out.stderr);
        assert!(out.stderr.contains("--idle-timeout"), "{:?}", out.stderr);
    });
}

// ---- 5. --cert chains: every block after the leaf is a certificate ----

#[test]
fn a_private_key_labelled_certificate_after_the_leaf_is_refused_naming_the_block() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "localhost", true).await;
        let relabelled = std::fs::read_to_string(&key).unwrap().replace("PRIVATE KEY", "CERTIFICATE");
        let chain = dir.path().join("chain.pem");
        std::fs::write(&chain, std::fs::read_to_string(&cert).unwrap() + &relabelled).unwrap();
        let target = format!("127.0.0.1:{}", closed_port());
        for args in [
            vec!["serve", "--tls", "--cert", s(&chain), "--key", s(&key), "127.0.0.1:0"],
            vec![
                "connect",
                "--tls",
                "--on-eof",
                "half-close",
                "-k",
                "--cert",
                s(&chain),
                "--key",
                s(&key),
                &target,
            ],
        ] {
            let out = Proc::streamtool(&args, Input::Open).finish().await;
            assert_ne!(out.code, Some(0), "{args:?}: {}", out.stderr);
            let lines = error_lines(&out.stderr);
            assert_eq!(lines.len(), 1, "one line: {}", out.stderr);
            assert!(lines[0].contains(s(&chain)) && lines[0].contains("block 2"), "{}", out.stderr);
        }
    });
}

// ---- 6. an existing CA directory must be ours and closed to others ----

#[test]
fn gen_cert_refuses_a_ca_directory_others_can_write_or_own_or_read_the_key_of() {
    run(async {
        let base = tempfile::tempdir().unwrap();
        let mut cases: Vec<(PathBuf, PathBuf, &str)> = Vec::new();
        let writable = make_ca(base.path(), "writable").await;
        std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o777)).unwrap();
        cases.push((writable.clone(), writable.clone(), "0777"));
        let readable = make_ca(base.path(), "readable-key").await;
        let key = readable.join("ca-key.pem");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o444)).unwrap();
        cases.push((readable.clone(), key, "0444"));
        if let Some(uid) = other_uid() {
            let theirs = make_ca(base.path(), "theirs").await;
            std::os::unix::fs::chown(&theirs, Some(uid), None).unwrap();
            cases.push((theirs.clone(), theirs.clone(), "owned by uid"));
        }
        for (dir, named, why) in cases {
            let cert = base.path().join("leaf.pem");
            let key = base.path().join("leaf-key.pem");
            let out = streamtool(
                &["gen-cert", "--ca-dir", s(&dir), "--cert-file", s(&cert), "--key-file", s(&key), "x.test"],
                b"",
            )
            .await;
            assert_ne!(out.code, Some(0), "{}: {}", dir.display(), out.stderr);
            let lines = error_lines(&out.stderr);
            assert_eq!(lines.len(), 1, "one line: {}", out.stderr);
            assert!(lines[0].contains(s(&named)) && lines[0].contains(why), "{}", out.stderr);
            assert!(!cert.exists() && !key.exists(), "nothing was signed");
        }
    });
}

/// A local CA made by `gen-cert --ca-only` in `base/name`.
async fn make_ca(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    streamtool(&["gen-cert", "--ca-only", "--ca-dir", s(&dir)], b"").await.assert_code(0);
    dir
}

// ---- 7. a closed stderr never crashes anything ----

#[test]
fn serve_k_verbose_with_stderr_closed_still_relays_and_stops_on_sigterm() {
    run(async {
        let port = closed_port();
        let addr = format!("127.0.0.1:{port}");
        let server = Proc::streamtool_closing(&["serve", "-k", "-v", &addr], Input::Open, Closed::Stderr);
        wait_connectable(port).await;
        let mut client = TcpStream::connect(&addr).await.unwrap();
        client.write_all(b"logged\n").await.unwrap();
        server.wait_stdout(b"logged\n").await;
        drop(client);
        server.signal("TERM");
        let out = server.finish().await;
        out.assert_code(0);
    });
}

#[test]
fn serve_k_max_conns_with_stderr_closed_refuses_the_extra_client_and_keeps_the_first() {
    run(async {
        let port = closed_port();
        let addr = format!("127.0.0.1:{port}");
        let mut server = Proc::streamtool_closing(
            &["serve", "-k", "--max-conns", "1", &addr],
            Input::Open,
            Closed::Stderr,
        );
        wait_connectable(port).await;
        // The probe's connection may still count: retry until one client fits.
        let fitting = async {
            loop {
                let mut c = TcpStream::connect(&addr).await.unwrap();
                let _ = c.write_all(b"one\n").await;
                if poll_until(Duration::from_secs(1), || server.stdout().ends_with(b"one\n")).await {
                    break c;
                }
            }
        };
        let mut first = tokio::time::timeout(STEP, fitting).await.expect("a client got in");
        // A second client is over the limit: a warning that cannot be written.
        let mut second = TcpStream::connect(&addr).await.unwrap();
        let mut buf = [0u8; 16];
        let _ = tokio::time::timeout(STEP, second.read(&mut buf)).await.expect("the extra client is closed");
        first.write_all(b"two\n").await.unwrap();
        server.wait_stdout(b"one\ntwo\n").await;
        assert!(!server.has_exited(), "serve ended");
        drop(first);
        server.signal("TERM");
        server.finish().await.assert_code(0);
    });
}

#[test]
fn one_shot_serve_tls_with_stderr_closed_survives_a_plain_http_client() {
    run(async {
        let port = closed_port();
        let addr = format!("127.0.0.1:{port}");
        let mut server = Proc::streamtool_closing(&["serve", "--tls", &addr], Input::Open, Closed::Stderr);
        server.close_stdin();
        wait_connectable(port).await;
        let mut http = TcpStream::connect(&addr).await.unwrap();
        http.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
        let mut buf = Vec::new();
        let _ =
            tokio::time::timeout(STEP, http.read_to_end(&mut buf)).await.expect("the HTTP client is closed");
        let client =
            streamtool(&["connect", "--tls", "--on-eof", "half-close", "--insecure", &addr], b"after http\n")
                .await;
        client.assert_code(0);
        let out = server.finish().await;
        out.assert_code(0);
        assert_eq!(out.stdout, b"after http\n");
    });
}

// ---- 8. serve -k with stdout gone stops, and its clients see a reset ----

#[test]
fn serve_k_stops_when_its_stdout_is_gone_and_resets_its_clients() {
    run(async {
        let server = Server::listening(Proc::streamtool_closing(
            &["serve", "-k", "127.0.0.1:0"],
            Input::Open,
            Closed::Stdout,
        ))
        .await;
        let addr = server.addr();
        let mut idle = TcpStream::connect(&addr).await.unwrap();
        let mut client = TcpStream::connect(&addr).await.unwrap();
        client.write_all(b"lost\n").await.unwrap();
        let mut buf = [0u8; 16];
        for (name, stream) in [("the sender", &mut client), ("an idle client", &mut idle)] {
            let read = tokio::time::timeout(STEP, stream.read(&mut buf)).await.expect("the connection ends");
            assert!(
                read.is_err(),
                "{name} saw a clean end ({read:?}), not a reset; stderr:\n{}",
                server.proc.stderr()
            );
        }
        let out = server.proc.finish().await;
        out.assert_code(0);
        assert!(out.stderr.contains("stdout is closed"), "{}", out.stderr);
        assert!(TcpStream::connect(&addr).await.is_err(), "new clients are refused");
    });
}

// ---- 9. pipe tls-listen without fork: handshakes side by side ----

#[test]
fn pipe_tls_listen_serves_a_real_client_while_a_silent_one_holds_its_handshake() {
    run(async {
        let mut pipe = Server::listening(Proc::streamtool(
            &["pipe", "--events", "json", "tls-listen:127.0.0.1:0,handshake-timeout=30s", "stdio"],
            Input::Open,
        ))
        .await;
        // The silent client is accepted (its accept event is out) before the real one comes.
        let _silent = TcpStream::connect(pipe.addr()).await.unwrap();
        pipe.proc.wait_stderr("\"event\":\"accept\"").await;
        let mut client = Proc::streamtool(
            &["connect", "--tls", "--on-eof", "half-close", "--insecure", &pipe.addr()],
            Input::Open,
        );
        client.write(b"not delayed\n").await;
        pipe.proc.wait_stdout(b"not delayed\n").await;
        client.close_stdin();
        pipe.proc.close_stdin();
        client.finish().await.assert_code(0);
        pipe.proc.finish().await.assert_code(0);
    });
}

// ---- 10. pipe's idle limit ----

#[test]
fn pipe_idle_timeout_flag_and_endpoint_option_end_a_silent_relay_with_exit_6() {
    run(async {
        for args in [
            vec!["pipe", "--idle-timeout", "300ms", "tcp-listen:127.0.0.1:0", "stdio"],
            vec!["pipe", "tls-listen:127.0.0.1:0,idle-timeout=300ms", "stdio"],
        ] {
            let tls = args.iter().any(|a| a.starts_with("tls-"));
            let pipe = Server::listening(Proc::streamtool(&args, Input::Open)).await;
            let client = if tls {
                Proc::streamtool(
                    &["connect", "--tls", "--on-eof", "half-close", "--insecure", &pipe.addr()],
                    Input::Open,
                )
            } else {
                Proc::streamtool(&["connect", &pipe.addr()], Input::Open)
            };
            let out = pipe.proc.finish().await;
            out.assert_code(6);
            assert!(out.stderr.contains("no data moved"), "{args:?}: {}", out.stderr);
            // The client's stdin (a pipe) still goes to its end: close it.
            let mut client = client;
            client.close_stdin();
            client.finish().await;
        }
    });
}

// ---- 11. SIGHUP is ignored; TLS records that are not a ClientHello are named ----

#[test]
fn sighup_is_ignored_by_serve_and_pipe_and_the_socket_file_goes_on_sigterm() {
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hup.sock");
        let unix = format!("unix:{}", path.display());
        let listen = format!("unix-listen:{}", path.display());
        for args in [vec!["serve", "-k", unix.as_str()], vec!["pipe", listen.as_str(), "stdio"]] {
            let mut server = Server::listening(Proc::streamtool(&args, Input::Open)).await;
            server.proc.signal("HUP");
            let mut client = UnixStream::connect(&path).await.expect("still listening after SIGHUP");
            client.write_all(b"after hup\n").await.unwrap();
            server.proc.wait_stdout(b"after hup\n").await;
            assert!(!server.proc.has_exited(), "{args:?} exited on SIGHUP");
            drop(client);
            if args[0] == "pipe" {
                server.proc.close_stdin();
            } else {
                server.proc.signal("TERM");
            }
            server.proc.finish().await.assert_code(0);
            assert!(!path.exists(), "{args:?} left its socket file");
        }
    });
}

#[test]
fn a_tls_alert_or_change_cipher_spec_first_is_named_as_such() {
    run(async {
        let mut server = Server::start(&["--tls", "0"]).await;
        // Its input ends at once: it ends its side (close_notify) when a client comes.
        server.proc.close_stdin();
        let alert: &[u8] = &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];
        let ccs: &[u8] = &[0x14, 0x03, 0x03, 0x00, 0x01, 0x01];
        for (bytes, expected) in [(alert, "TLS alert (fatal handshake_failure)"), (ccs, "ChangeCipherSpec")] {
            let mut raw = TcpStream::connect(server.addr()).await.unwrap();
            raw.write_all(bytes).await.unwrap();
            let stderr = server.proc.wait_stderr(expected).await;
            assert!(!stderr.contains("does not speak TLS"), "{stderr}");
        }
    });
}
