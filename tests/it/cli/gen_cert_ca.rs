//! `gen-cert`'s CA features of issue 30 (docs/gen-cert.md, "Name constraints" and
//! "Signing a CSR"), through the real binary in temporary directories: name-constrained
//! CAs enforced by real clients (curl, `openssl s_client`, Python's `ssl`, `streamtool
//! connect`) against a leaf forged with the CA key by `openssl x509 -req`, gen-cert's own
//! refusal of a name outside the constraints, and CSRs made by `openssl req -new`, signed
//! and served by `openssl s_server`. HOME, XDG_DATA_HOME and the CA directory point into
//! the temporary directory; no trust store of the machine is read or changed (every client
//! is given the CA file).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

use crate::support::certs::openssl;
use crate::support::cli::{BIN, STEP, closed_port};
use crate::support::peers::need;

/// How long one client or one gen-cert run may take (`timeout` kills it after that).
const LIMIT: &str = "30";

/// A temporary `work/` (the current directory), `ca/` (the CA directory) and `home/`.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        Sandbox { dir }
    }

    fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.work().join(name)
    }

    fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    fn ca_cert(&self) -> PathBuf {
        self.ca_dir().join("ca.pem")
    }

    /// `timeout LIMIT PROGRAM ARGS` in `work/`, with the sandbox's HOME and CA directory.
    fn run(&self, program: &str, args: &[&str], input: &[u8]) -> Output {
        let home = self.dir.path().join("home");
        let mut child = Command::new("timeout")
            .arg(LIMIT)
            .arg(program)
            .args(args)
            .current_dir(self.work())
            .env("STREAMTOOL_CA_DIR", self.ca_dir())
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .env_remove("CURL_CA_BUNDLE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    fn gen_cert(&self, args: &[&str]) -> Output {
        let mut all = vec!["gen-cert"];
        all.extend_from_slice(args);
        self.run(BIN, &all, b"")
    }

    fn gen_ok(&self, args: &[&str]) -> String {
        let out = self.gen_cert(args);
        assert_eq!(out.status.code(), Some(0), "gen-cert {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// The files in `work/`, sorted.
    fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.work())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A key and a CSR for DNS:`name` made by `openssl req -new` in `work/`:
    /// (`NAME.csr`, `NAME-key.pem`).
    fn openssl_csr(&self, name: &str) -> (PathBuf, PathBuf) {
        let (csr, key) = (format!("{name}.csr"), format!("{name}-key.pem"));
        let san = format!("subjectAltName=DNS:{name}");
        let subject = format!("/CN={name}");
        openssl(
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-subj",
                &subject,
                "-addext",
                &san,
                "-out",
                &csr,
            ],
            &self.work(),
        );
        (self.file(&csr), self.file(&key))
    }

    /// A leaf for DNS:`name` signed with the local CA's key by `openssl x509 -req`,
    /// bypassing gen-cert: (certificate, key).
    fn forge(&self, name: &str) -> (PathBuf, PathBuf) {
        let (csr, key) = self.openssl_csr(name);
        let cert = self.file(&format!("{name}-forged.pem"));
        let (ca, ca_key) = (self.ca_cert(), self.ca_dir().join("ca-key.pem"));
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                s(&csr),
                "-CA",
                s(&ca),
                "-CAkey",
                s(&ca_key),
                "-copy_extensions",
                "copy",
                "-days",
                "10",
                "-out",
                s(&cert),
            ],
            &self.work(),
        );
        (cert, key)
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `openssl s_server -www` on 127.0.0.1 with `cert` and `key`, killed on drop.
struct SServer {
    child: Child,
    port: u16,
}

impl SServer {
    /// Starts it and waits (bounded by `STEP`) for its `ACCEPT` line.
    fn start(cert: &Path, key: &Path) -> SServer {
        let port = closed_port();
        let mut child = Command::new("openssl")
            .args([
                "s_server",
                "-www",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                s(cert),
                "-key",
                s(key),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("ACCEPT") {
                    let _ = tx.send(());
                }
            }
        });
        let mut server = SServer { child, port };
        if rx.recv_timeout(STEP).is_err() {
            let _ = server.child.kill();
            panic!("openssl s_server did not print ACCEPT within {STEP:?}");
        }
        server
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one client said about the server's certificate for `name`.
#[derive(Debug)]
struct Verdict {
    client: &'static str,
    code: Option<i32>,
    output: String,
}

const PYTHON_CLIENT: &str = r#"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
sock = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=10)
try:
    tls = ctx.wrap_socket(sock, server_hostname=sys.argv[3])
except ssl.SSLCertVerificationError as e:
    print("refused:", e.verify_message)
    sys.exit(3)
tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
print(tls.recv(15).decode())
"#;

/// curl, `openssl s_client`, Python's `ssl` and `streamtool connect`, each trusting only
/// `ca` and checking the name `name`, against the server on `port`.
fn four_clients(sandbox: &Sandbox, ca: &Path, port: u16, name: &str) -> Vec<Verdict> {
    let target = format!("127.0.0.1:{port}");
    let url = format!("https://{name}:{port}/");
    let resolve = format!("{name}:{port}:127.0.0.1");
    let request = b"GET / HTTP/1.0\r\n\r\n";
    let runs: [(&'static str, &str, Vec<&str>); 4] = [
        ("curl", "curl", vec!["-sS", "--max-time", "10", "--cacert", s(ca), "--resolve", &resolve, &url]),
        (
            "openssl s_client",
            "openssl",
            vec![
                "s_client",
                "-connect",
                &target,
                "-servername",
                name,
                "-verify_hostname",
                name,
                "-CAfile",
                s(ca),
                "-verify_return_error",
                "-brief",
            ],
        ),
        ("python ssl", "python3", vec!["-c", PYTHON_CLIENT, s(ca), &target[10..], name]),
        ("streamtool connect", BIN, vec!["connect", "--tls", "--ca", s(ca), "--sni", name, &target]),
    ];
    runs.into_iter()
        .map(|(client, program, args)| {
            let input: &[u8] = if client == "openssl s_client" { b"" } else { request };
            let out = sandbox.run(program, &args, input);
            Verdict {
                client,
                code: out.status.code(),
                output: format!("{}{}", text(&out.stdout), text(&out.stderr)),
            }
        })
        .collect()
}

/// docs/gen-cert.md, "Name constraints": a CA made with `--permit` carries a critical
/// NameConstraints extension, and a leaf that its key signs for another name (forged by
/// openssl, bypassing gen-cert) is refused by curl, OpenSSL, Python and streamtool with
/// the reason "permitted subtree violation" / "name constraint violation"; the same
/// forgery for a permitted name is accepted by each (so the name is the only difference).
#[test]
fn a_leaf_forged_outside_the_constraints_is_refused_by_curl_openssl_python_and_streamtool() {
    if !need(&["openssl", "curl", "python3"]) {
        return;
    }
    let sandbox = Sandbox::new();
    let shown = sandbox.gen_ok(&["--ca-only", "--permit", "localhost", "--permit", "127.0.0.0/8"]);
    assert!(shown.contains("Signs for:    only localhost, 127.0.0.0/8 (name constraints)"), "{shown}");
    let ext = openssl(
        &["x509", "-in", s(&sandbox.ca_cert()), "-noout", "-ext", "nameConstraints"],
        &sandbox.work(),
    );
    let ext = text(&ext.stdout);
    for expected in ["X509v3 Name Constraints: critical", "DNS:localhost", "IP:127.0.0.0/255.0.0.0"] {
        assert!(ext.contains(expected), "{expected:?} missing from:\n{ext}");
    }
    let ca = sandbox.ca_cert();

    let (cert, key) = sandbox.forge("example.com");
    let server = SServer::start(&cert, &key);
    let verdicts = four_clients(&sandbox, &ca, server.port, "example.com");
    assert_eq!(verdicts.len(), 4);
    for (verdict, (code, reason)) in verdicts.iter().zip([
        (60, "SSL certificate problem: permitted subtree violation"),
        (1, "verify error:num=47:permitted subtree violation"),
        (3, "refused: permitted subtree violation"),
        (4, "TLS handshake failed: invalid peer certificate: name constraint violation"),
    ]) {
        assert_eq!(verdict.code, Some(code), "{verdict:?}");
        assert!(
            verdict.output.contains(reason),
            "{}: {reason:?} missing from:\n{}",
            verdict.client,
            verdict.output
        );
    }
    drop(server);

    let (cert, key) = sandbox.forge("localhost");
    let server = SServer::start(&cert, &key);
    let verdicts = four_clients(&sandbox, &ca, server.port, "localhost");
    assert_eq!(verdicts.len(), 4);
    for (verdict, said) in
        verdicts.iter().zip(["s_server", "Verification: OK", "HTTP/1.0 200 ok", "HTTP/1.0 200 ok"])
    {
        assert_eq!(verdict.code, Some(0), "{verdict:?}");
        assert!(
            verdict.output.contains(said),
            "{}: {said:?} missing from:\n{}",
            verdict.client,
            verdict.output
        );
    }
}

/// docs/gen-cert.md, "Name constraints": a new CA is constrained by default (the
/// developer's names); gen-cert refuses a name outside the constraints with one line and
/// exit code 2 and writes nothing (not even the CA when it would be new); a name inside
/// is issued; `--any-name` makes a CA without the extension that signs for any name.
#[test]
fn gen_cert_refuses_a_name_outside_the_constraints_with_one_line_and_writes_nothing() {
    let expected = "streamtool: example.com is outside the names the local CA may sign for (localhost, .test, \
                    .internal, 127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, ::1/128, fc00::/7); make a \
                    CA for it with: streamtool gen-cert --ca-only --force --permit NAME (or --any-name)\n";
    // No CA yet: the implicit one would be constrained, so nothing is made at all.
    let sandbox = Sandbox::new();
    let out = sandbox.gen_cert(&["localhost", "example.com"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), expected);
    assert!(sandbox.listing().is_empty(), "{:?}", sandbox.listing());
    assert!(!sandbox.ca_dir().exists(), "the refused run made a CA");

    // With the default CA in place: the same refusal, then the names inside are issued.
    let shown = sandbox.gen_ok(&["--ca-only"]);
    assert!(shown.contains("Signs for:    only localhost, .test, .internal, 127.0.0.0/8"), "{shown}");
    for names in [&["example.com"][..], &["www.example.com"], &["app.test", "8.8.8.8"]] {
        let out = sandbox.gen_cert(names);
        assert_eq!(out.status.code(), Some(2), "{names:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr).lines().count(), 1, "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("is outside the names the local CA may sign for"));
        assert!(sandbox.listing().is_empty(), "{names:?} wrote {:?}", sandbox.listing());
    }
    sandbox.gen_ok(&[
        "localhost",
        "127.0.0.1",
        "::1",
        "app.test",
        "*.svc.internal",
        "10.1.2.3",
        "me@example.com",
    ]);
    assert_eq!(sandbox.listing(), ["localhost+6-key.pem", "localhost+6.pem"]);
    let verify = openssl(&["verify", "-CAfile", s(&sandbox.ca_cert()), "localhost+6.pem"], &sandbox.work());
    assert_eq!(text(&verify.stdout), "localhost+6.pem: OK\n");

    // --permit on an existing CA is refused rather than ignored.
    let out = sandbox.gen_cert(&["--ca-only", "--permit", "example.com"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--permit and --any-name apply only when it is made"),
        "{}",
        text(&out.stderr)
    );

    // --any-name: no extension, any name.
    let any = Sandbox::new();
    let shown = any.gen_ok(&["--ca-only", "--any-name"]);
    assert!(shown.contains("Signs for:    any name (no name constraints)"), "{shown}");
    let ext = openssl(&["x509", "-in", s(&any.ca_cert()), "-noout", "-text"], &any.work());
    assert!(text(&ext.stdout).contains("X509v3 Basic Constraints: critical"), "{}", text(&ext.stdout));
    assert!(!text(&ext.stdout).contains("Name Constraints"), "{}", text(&ext.stdout));
    any.gen_ok(&["example.com"]);
    assert_eq!(any.listing(), ["example.com-key.pem", "example.com.pem"]);

    // A --permit value that is no name or range is a usage error.
    let bad = Sandbox::new();
    let out = bad.gen_cert(&["--ca-only", "--permit", "10.0.0.1/8"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "streamtool: --permit \"10.0.0.1/8\": has host bits set (the range is 10.0.0.0/8)\n"
    );
    assert!(!bad.ca_dir().exists());
}

/// docs/gen-cert.md, "Signing a CSR": a request made by `openssl req -new` is signed by
/// the local CA; the certificate certifies the request's own key (nothing else is written),
/// `openssl s_server` serves it with that key, and `streamtool connect --tls --ca` verifies
/// it; `--bundle` appends the CA.
#[test]
fn a_csr_made_by_openssl_is_signed_and_served_by_openssl_s_server() {
    if !need(&["openssl"]) {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.gen_ok(&["--ca-only"]);
    let (csr, key) = sandbox.openssl_csr("web.test");
    let before = sandbox.listing();
    let stdout = sandbox.gen_ok(&["--csr", s(&csr), "--cert-file", "web.pem"]);
    assert!(stdout.contains("Names:        DNS:web.test"), "{stdout}");
    let mut after = before.clone();
    after.push("web.pem".into());
    after.sort();
    assert_eq!(sandbox.listing(), after, "only the certificate is written");
    let cert_key = openssl(&["x509", "-in", "web.pem", "-noout", "-pubkey"], &sandbox.work());
    let csr_key = openssl(&["pkey", "-in", s(&key), "-pubout"], &sandbox.work());
    assert_eq!(text(&cert_key.stdout), text(&csr_key.stdout), "the certificate is for the CSR's key");

    let server = SServer::start(&sandbox.file("web.pem"), &key);
    let target = format!("127.0.0.1:{}", server.port);
    let out = sandbox.run(
        BIN,
        &["connect", "--tls", "--ca", s(&sandbox.ca_cert()), "--sni", "web.test", &target],
        b"GET / HTTP/1.0\r\n\r\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("HTTP/1.0 200 ok"), "{}", text(&out.stdout));
    // Without the CA, the same server is refused: the CA is what verifies it.
    let out = sandbox.run(BIN, &["connect", "--tls", "--sni", "web.test", &target], b"");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));

    sandbox.gen_ok(&["--csr", s(&csr), "--cert-file", "chain.pem", "--bundle"]);
    let chain = std::fs::read_to_string(sandbox.file("chain.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(chain.ends_with(&std::fs::read_to_string(sandbox.ca_cert()).unwrap()));
}

/// docs/gen-cert.md, "Signing a CSR": a request whose signature does not verify (one byte
/// of it changed) and a request for a name outside the CA's constraints are refused with
/// one line, exit codes 1 and 2, and no file written.
#[test]
fn a_csr_with_a_broken_signature_or_a_name_outside_the_constraints_is_refused() {
    if !need(&["openssl"]) {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.gen_ok(&["--ca-only"]);
    let (csr, _) = sandbox.openssl_csr("api.test");
    // The last byte of the DER is the signature's: change it, write the PEM back.
    openssl(&["req", "-in", s(&csr), "-outform", "DER", "-out", "req.der"], &sandbox.work());
    let mut der = std::fs::read(sandbox.file("req.der")).unwrap();
    *der.last_mut().unwrap() ^= 0x01;
    std::fs::write(sandbox.file("req.der"), &der).unwrap();
    openssl(&["req", "-inform", "DER", "-in", "req.der", "-out", "broken.csr"], &sandbox.work());
    let (outside, _) = sandbox.openssl_csr("example.com");
    let before = sandbox.listing();

    let out = sandbox.gen_cert(&["--csr", "broken.csr"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "streamtool: broken.csr: the request's signature does not verify (it was changed after signing, or \
         signed by another key); not signed\n"
    );
    assert_eq!(sandbox.listing(), before);

    let out = sandbox.gen_cert(&["--csr", s(&outside)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("streamtool: example.com is outside the names the local CA may sign for"),
        "{stderr}"
    );
    assert_eq!(sandbox.listing(), before);
    // The unbroken request is signed: the refusal above was the changed byte.
    sandbox.gen_ok(&["--csr", s(&csr)]);
    assert!(sandbox.file("api.test.pem").exists());
}

/// docs/gen-cert.md, "The local CA": a CA that ends within 30 days is warned about on every
/// use (shown with `--ca-only` or signing a leaf), with the command that replaces it; one
/// with 31 days left is not.
#[test]
fn a_ca_that_ends_within_30_days_is_warned_about_on_every_use() {
    let sandbox = Sandbox::new();
    sandbox.gen_ok(&["--ca-only", "--days", "10"]);
    let warning = format!("streamtool: warning: the local CA in {} expires on ", sandbox.ca_dir().display());
    let tail = " (in 9 days); make a new one with: streamtool gen-cert --ca-only --force";
    for args in [&["--ca-only"][..], &["localhost", "--days", "5"]] {
        let out = sandbox.gen_cert(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
        let stderr = text(&out.stderr);
        let line =
            stderr.lines().find(|l| l.starts_with(&warning)).unwrap_or_else(|| panic!("{args:?}: {stderr}"));
        assert!(line.ends_with(tail), "{line}");
    }
    let later = Sandbox::new();
    later.gen_ok(&["--ca-only", "--days", "31"]);
    for args in [&["--ca-only"][..], &["localhost", "--days", "5"]] {
        let out = later.gen_cert(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "{args:?}");
    }
}
