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
pub(super) const LIMIT: &str = "30";

/// A temporary `work/` (the current directory), `ca/` (the CA directory) and `home/`.
pub(super) struct Sandbox {
    pub(super) dir: tempfile::TempDir,
}

impl Sandbox {
    pub(super) fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        Sandbox { dir }
    }

    pub(super) fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub(super) fn file(&self, name: &str) -> PathBuf {
        self.work().join(name)
    }

    pub(super) fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    pub(super) fn ca_cert(&self) -> PathBuf {
        self.ca_dir().join("ca.pem")
    }

    /// `timeout LIMIT PROGRAM ARGS` in `work/`, with the sandbox's HOME and CA directory.
    pub(super) fn run(&self, program: &str, args: &[&str], input: &[u8]) -> Output {
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

    pub(super) fn gen_cert(&self, args: &[&str]) -> Output {
        let mut all = vec!["gen-cert"];
        all.extend_from_slice(args);
        self.run(BIN, &all, b"")
    }

    pub(super) fn gen_ok(&self, args: &[&str]) -> String {
        let out = self.gen_cert(args);
        assert_eq!(out.status.code(), Some(0), "gen-cert {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// The files in `work/`, sorted.
    pub(super) fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.work())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A key and a CSR for DNS:`name` made by `openssl req -new` in `work/`:
    /// (`NAME.csr`, `NAME-key.pem`).
    pub(super) fn openssl_csr(&self, name: &str) -> (PathBuf, PathBuf) {
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

    /// The intermediate CA's certificate (the two-level layout).
    pub(super) fn intermediate(&self) -> PathBuf {
        self.ca_dir().join("ca-intermediate.pem")
    }

    /// A leaf for DNS:`name` signed with the local CA's key (`ca-key.pem`, the only key
    /// the CA directory holds: the intermediate's in the two-level layout) by `openssl
    /// x509 -req`, bypassing gen-cert: (certificate, key). The certificate file holds the
    /// intermediate after the leaf when there is one, as gen-cert's leaves do.
    pub(super) fn forge(&self, name: &str) -> (PathBuf, PathBuf) {
        let (csr, key) = self.openssl_csr(name);
        let cert = self.file(&format!("{name}-forged.pem"));
        let inter = self.intermediate();
        let two_level = inter.exists();
        let ca = if two_level { inter.clone() } else { self.ca_cert() };
        let ca_key = self.ca_dir().join("ca-key.pem");
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
        if two_level {
            let chain = std::fs::read_to_string(&cert).unwrap() + &std::fs::read_to_string(&inter).unwrap();
            std::fs::write(&cert, chain).unwrap();
        }
        (cert, key)
    }

    /// An old-layout CA (before the two-level one; a CA gen-cert did not make): one
    /// self-signed root made by `openssl req -x509`, CA:TRUE with path length 0 and a
    /// critical NameConstraints extension permitting `localhost`, `.test` and
    /// 127.0.0.0/8, and its key, written as `ca.pem` and `ca-key.pem` (0400) in the CA
    /// directory (0700).
    pub(super) fn old_single_root_ca(&self) {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.ca_dir();
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let (ca, key) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                s(&key),
                "-out",
                s(&ca),
                "-days",
                "30",
                "-subj",
                "/O=old single root/CN=old single root",
                "-addext",
                "basicConstraints=critical,CA:TRUE,pathlen:0",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
                "-addext",
                "nameConstraints=critical,permitted;DNS:localhost,permitted;DNS:test,permitted;IP:127.0.0.0/255.0.0.0",
            ],
            &self.work(),
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
    }
}

/// The certificates of a PEM file, each as its own PEM text, in order.
pub(super) fn pem_blocks(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let end = "-----END CERTIFICATE-----";
    text.split_inclusive(end)
        .filter_map(|part| part.find("-----BEGIN CERTIFICATE-----").map(|at| format!("{}\n", &part[at..])))
        .collect()
}

pub(super) fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `openssl s_server -www` on 127.0.0.1 with `cert` and `key`, killed on drop.
pub(super) struct SServer {
    child: Child,
    pub(super) port: u16,
}

impl SServer {
    /// Starts it and waits (bounded by `STEP`) for its `ACCEPT` line. The certificates
    /// after the first in `cert` (an intermediate) are sent too (`-cert_chain`).
    pub(super) fn start(cert: &Path, key: &Path) -> SServer {
        let port = closed_port();
        let mut command = Command::new("openssl");
        command.args([
            "s_server",
            "-www",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            s(cert),
            "-key",
            s(key),
        ]);
        let blocks = pem_blocks(cert);
        if blocks.len() > 1 {
            let chain = cert.with_extension("chain");
            std::fs::write(&chain, blocks[1..].concat()).unwrap();
            command.arg("-cert_chain").arg(&chain);
        }
        let mut child =
            command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
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
/// NameConstraints extension (on the root and on its intermediate), and a leaf that the
/// CA directory's key signs for another name (forged by openssl, bypassing gen-cert) is
/// refused by curl, OpenSSL, Python and streamtool with the reason "permitted subtree
/// violation" / "name constraint violation"; the same forgery for a permitted name is
/// accepted by each (so the name is the only difference). Run for the two-level layout
/// (the key is the intermediate's) and for an old single-root CA directory.
#[test]
fn a_leaf_forged_outside_the_constraints_is_refused_by_curl_openssl_python_and_streamtool() {
    if !need(&["openssl", "curl", "python3"]) {
        return;
    }
    for two_level in [true, false] {
        let sandbox = Sandbox::new();
        if two_level {
            let shown = sandbox.gen_ok(&["--ca-only", "--permit", "localhost", "--permit", "127.0.0.0/8"]);
            assert!(
                shown.contains("Signs for:    only localhost, 127.0.0.0/8 (name constraints)"),
                "{shown}"
            );
            for cert in [sandbox.ca_cert(), sandbox.intermediate()] {
                let ext =
                    openssl(&["x509", "-in", s(&cert), "-noout", "-ext", "nameConstraints"], &sandbox.work());
                let ext = text(&ext.stdout);
                for expected in
                    ["X509v3 Name Constraints: critical", "DNS:localhost", "IP:127.0.0.0/255.0.0.0"]
                {
                    assert!(ext.contains(expected), "{expected:?} missing from {}:\n{ext}", cert.display());
                }
            }
        } else {
            sandbox.old_single_root_ca();
        }
        forged_leaves_against_four_clients(&sandbox, two_level);
    }
}

/// The forgeries for `example.com` (refused) and `localhost` (accepted) against the four
/// clients, each trusting only `ca.pem`.
fn forged_leaves_against_four_clients(sandbox: &Sandbox, two_level: bool) {
    let ca = sandbox.ca_cert();
    let (cert, key) = sandbox.forge("example.com");
    assert_eq!(pem_blocks(&cert).len(), if two_level { 2 } else { 1 });
    let server = SServer::start(&cert, &key);
    let verdicts = four_clients(sandbox, &ca, server.port, "example.com");
    assert_eq!(verdicts.len(), 4);
    for (verdict, (code, reason)) in verdicts.iter().zip([
        (60, "SSL certificate problem: permitted subtree violation"),
        (1, "verify error:num=47:permitted subtree violation"),
        (3, "refused: permitted subtree violation"),
        (4, "TLS handshake failed: invalid peer certificate: name constraint violation"),
    ]) {
        assert_eq!(verdict.code, Some(code), "two-level {two_level}: {verdict:?}");
        assert!(
            verdict.output.contains(reason),
            "two-level {two_level}, {}: {reason:?} missing from:\n{}",
            verdict.client,
            verdict.output
        );
    }
    drop(server);

    let (cert, key) = sandbox.forge("localhost");
    let server = SServer::start(&cert, &key);
    let verdicts = four_clients(sandbox, &ca, server.port, "localhost");
    assert_eq!(verdicts.len(), 4);
    for (verdict, said) in
        verdicts.iter().zip(["s_server", "Verification: OK", "HTTP/1.0 200 ok", "HTTP/1.0 200 ok"])
    {
        assert_eq!(verdict.code, Some(0), "two-level {two_level}: {verdict:?}");
        assert!(
            verdict.output.contains(said),
            "two-level {two_level}, {}: {said:?} missing from:\n{}",
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
                    .internal, .local, .home.arpa, 127.0.0.0/8, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, ::1/128, fc00::/7); make a \
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
    assert!(
        shown.contains("Signs for:    only localhost, .test, .internal, .local, .home.arpa, 127.0.0.0/8"),
        "{shown}"
    );
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
    // The leaf file holds the intermediate after the leaf: openssl verify finds it there.
    let (ca, leaf) = (sandbox.ca_cert(), "localhost+6.pem");
    let verify = openssl(&["verify", "-CAfile", s(&ca), "-untrusted", leaf, leaf], &sandbox.work());
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

    // The certificate comes with the intermediate, with or without --bundle (the chain
    // a server sends; clients trust the root, ca.pem).
    let intermediate = std::fs::read_to_string(sandbox.intermediate()).unwrap();
    sandbox.gen_ok(&["--csr", s(&csr), "--cert-file", "chain.pem", "--bundle"]);
    for file in ["web.pem", "chain.pem"] {
        let chain = std::fs::read_to_string(sandbox.file(file)).unwrap();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "{file}");
        assert!(chain.ends_with(&intermediate), "{file}");
    }
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

/// The system-store test, run by `unshare --mount` as root: every place
/// update-ca-certificates writes is a private copy bind-mounted over the real one (and its
/// hooks in /etc/ca-certificates/update.d masked by a tmpfs: Debian's jks-keystore hook
/// runs dpkg, which would write the real dpkg state), checked to be a mount point before
/// anything runs. The store is normalised by one plain update-ca-certificates first (it
/// relinks files placed by hand), then snapshotted. $1 the test's directory, $2 the
/// binary, $3 a free port.
const SYSTEM_STORE_SCRIPT: &str = r#"
set -eu
T="$1"; ST="$2"; PORT="$3"
cp -a /etc/ssl/certs "$T/etc-ssl-certs"
cp -a /usr/local/share/ca-certificates "$T/local-cas"
cp -a /etc/ca-certificates.conf "$T/ca-certificates.conf"
mount --bind "$T/etc-ssl-certs" /etc/ssl/certs
mount --bind "$T/local-cas" /usr/local/share/ca-certificates
mount --bind "$T/ca-certificates.conf" /etc/ca-certificates.conf
mount -t tmpfs tmpfs /etc/ca-certificates
for m in /etc/ssl/certs /usr/local/share/ca-certificates /etc/ca-certificates.conf /etc/ca-certificates; do
  mountpoint -q "$m" || { echo "not a private mount: $m"; exit 99; }
done
export STREAMTOOL_CA_DIR="$T/ca" HOME="$T/home"  # no NSS database: the default stores are the system one
cd "$T"
update-ca-certificates >/dev/null 2>&1
snapshot() { (cd /etc/ssl/certs && ls -la --time-style=+ | sed 1d; sha256sum ca-certificates.crt; ls /usr/local/share/ca-certificates); }
snapshot > before
"$ST" gen-cert localhost 127.0.0.1 >/dev/null
"$ST" serve -k --echo --tls --cert localhost+1.pem --key localhost+1-key.pem "$PORT" 2> serve.log &
SERVE=$!; trap 'kill $SERVE' EXIT
i=0; until grep -q "listening on" serve.log; do i=$((i+1)); [ $i -lt 100 ] || { echo "serve did not listen"; exit 98; }; sleep 0.1; done
set +e
clients() {
  echo "== $1"
  # Captured whole (no `| head` while it runs: a SIGPIPE would decide its exit code).
  out=$(printf 'hello\n' | timeout 10 openssl s_client -connect "localhost:$PORT" -verify_return_error -brief -quiet -no_ign_eof 2>&1)
  rc=$?; printf '%s\n' "$out" | head -3 | tr '\n' ' '; echo " s_client=$rc"
  timeout 10 curl -sS --max-time 5 "https://localhost:$PORT/" -o /dev/null 2>&1 | head -1 | tr -d '\n'; echo " curl=${PIPESTATUS[0]}"
  timeout 10 python3 -c '
import ssl, socket, sys
ctx = ssl.create_default_context()
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
try:
    t = ctx.wrap_socket(s, server_hostname="localhost")
except ssl.SSLCertVerificationError as e:
    print("refused:", e.verify_message, end=""); sys.exit(3)
t.sendall(b"hi\n"); print("verified", t.recv(3), end="")' "$PORT"; echo " python=$?"
}
clients "before install"
echo "== install"; "$ST" gen-cert --install 2>&1; echo "rc=$?"
echo "== install again"; "$ST" gen-cert --install 2>&1; echo "rc=$?"
clients "after install"
echo "== uninstall"; "$ST" gen-cert --uninstall 2>&1; echo "rc=$?"
echo "== uninstall again"; "$ST" gen-cert --uninstall 2>&1; echo "rc=$?"
clients "after uninstall"
snapshot > after
diff before after && echo "== store identical"
echo "== install as another user"
D=$(mktemp -d /tmp/streamtool-nobody.XXXXXX); chown 65534:65534 "$D"
(cd /tmp && setpriv --reuid=65534 --regid=65534 --clear-groups env STREAMTOOL_CA_DIR="$D/ca" HOME="$D" "$ST" gen-cert --install 2>&1); echo "rc=$?"
rm -rf "$D"
echo "== install with nss failing"
# The default stores with an NSS database in HOME: system, then nss; a certutil that
# fails on -A (after every check passed) makes the run undo the system change.
H="$T/home-nss"; mkdir -p "$H/.pki/nssdb"; certutil -N --empty-password -d "sql:$H/.pki/nssdb"
mkdir -p "$T/fakebin"
printf '#!/bin/sh\ncase " $* " in *" -A "*) echo "SEC_ERROR_TEST: refused" >&2; exit 1;; esac\nexec %s "$@"\n' "$(command -v certutil)" > "$T/fakebin/certutil"
chmod +x "$T/fakebin/certutil"
snapshot > before-nss
HOME="$H" PATH="$T/fakebin:$PATH" "$ST" gen-cert --install 2>&1; echo "rc=$?"
snapshot > after-nss
diff before-nss after-nss && echo "store identical after the rollback"
echo "== uninstall with nss failing"
# Installed in both (the real certutil), then an uninstall whose certutil fails on -D
# after the system store was changed: the system change is undone (the CA back in it).
HOME="$H" "$ST" gen-cert --install >/dev/null 2>&1 || echo "install failed"
snapshot > installed-nss
printf '#!/bin/sh\ncase " $* " in *" -D "*) echo "SEC_ERROR_TEST: refused" >&2; exit 1;; esac\nexec %s "$@"\n' "$(command -v certutil)" > "$T/fakebin/certutil"
HOME="$H" PATH="$T/fakebin:$PATH" "$ST" gen-cert --uninstall 2>&1; echo "rc=$?"
snapshot > after-failed-uninstall
diff installed-nss after-failed-uninstall && echo "store as installed after the rollback"
echo "nss entries: $(certutil -L -d "sql:$H/.pki/nssdb" | grep -c 'streamtool local CA')"
HOME="$H" "$ST" gen-cert --uninstall >/dev/null 2>&1 || echo "uninstall failed"
snapshot > after-nss
diff before-nss after-nss && echo "store identical after the uninstall"
echo "== install into a read-only /etc/ssl/certs"
mount -o remount,bind,ro /etc/ssl/certs
"$ST" gen-cert --install 2>&1; echo "rc=$?"
echo "left: $(ls /usr/local/share/ca-certificates | grep -c streamtool-local-ca)"
"#;

/// docs/gen-cert.md, "Installing the CA": after `--install`, curl, `openssl s_client` and
/// Python's default context reach `streamtool serve --tls` with no CA given (before, each
/// refused it); a second install changes nothing; `--uninstall` takes it out (each client
/// refuses again) and leaves the store as it was, byte for byte; a second uninstall changes
/// nothing; another user is told it needs root and the commands; an install into the
/// default stores (system and an NSS database in HOME) whose certutil fails after the
/// system change undoes that change (the store is as before); an uninstall from both whose
/// certutil fails after the system change puts the CA back (the store as installed, the
/// NSS entry still there), and a plain uninstall then leaves the store as before; an
/// install whose update fails is rolled back. Only inside a private mount
/// namespace (see SYSTEM_STORE_SCRIPT): the machine's store is never touched.
#[test]
fn install_puts_the_ca_where_curl_openssl_and_python_look_and_uninstall_takes_it_out() {
    if !need(&["openssl", "curl", "python3", "unshare", "setpriv", "update-ca-certificates", "certutil"]) {
        return;
    }
    let root = nix::unistd::geteuid().is_root();
    if !crate::support::precondition(root, "the system-store test needs root for its private mount namespace")
    {
        return;
    }
    let sandbox = Sandbox::new();
    let out = Command::new("timeout")
        .args([
            "120",
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "bash",
            "-c",
            SYSTEM_STORE_SCRIPT,
            "store",
        ])
        .arg(sandbox.work())
        .arg(BIN)
        .arg(closed_port().to_string())
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env_remove("CURL_CA_BUNDLE")
        .env_remove("REQUESTS_CA_BUNDLE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{log}\n{}", text(&out.stderr));
    let section = |title: &str| -> String {
        let start = log.find(&format!("== {title}\n")).unwrap_or_else(|| panic!("no {title:?} in:\n{log}"));
        let body = &log[start + title.len() + 4..];
        body[..body.find("\n== ").unwrap_or(body.len())].to_string()
    };
    let refused = [
        "verify error:num=20:unable to get local issuer certificate",
        " s_client=1\n",
        "curl: (60) SSL certificate problem: unable to get local issuer certificate curl=60\n",
        "refused: unable to get local issuer certificate python=3",
    ];
    let verified = [
        "CONNECTION ESTABLISHED",
        " s_client=0\n",
        // serve echoes curl's request, which curl then reads as an HTTP/0.9 reply: the
        // handshake was verified.
        "curl: (1) Received HTTP/0.9 when not allowed curl=1\n",
        "verified b'hi\\n' python=0",
    ];
    for (title, expected) in
        [("before install", refused), ("after install", verified), ("after uninstall", refused)]
    {
        let got = section(title);
        for line in expected {
            assert!(got.contains(line), "{title}: {line:?} missing from:\n{got}");
        }
    }
    let install = section("install");
    assert!(install.starts_with("Installed the local CA ("), "{install}");
    assert!(install.contains("wrote /usr/local/share/ca-certificates/streamtool-local-ca-"), "{install}");
    assert!(install.ends_with("rc=0"), "{install}");
    let again = section("install again");
    assert!(
        again.contains("is already in the system trust store") && again.contains("nothing changed"),
        "{again}"
    );
    assert!(again.ends_with("rc=0"), "{again}");
    let uninstall = section("uninstall");
    assert!(uninstall.starts_with("Removed the local CA ("), "{uninstall}");
    assert!(uninstall.ends_with("rc=0"), "{uninstall}");
    let again = section("uninstall again");
    assert!(
        again.contains("is not in the system trust store") && again.contains("nothing changed"),
        "{again}"
    );
    assert!(log.contains("\n== store identical\n"), "the store changed:\n{log}");
    let other = section("install as another user");
    let lines: Vec<&str> = other.lines().collect();
    assert_eq!(lines.len(), 2, "{other}");
    assert!(
        lines[0].starts_with(
            "streamtool: cannot change the system trust store (/usr/local/share/ca-certificates/streamtool-local-ca-"
        ) && lines[0].contains(".crt: permission denied): it needs root; as root: install -m 0644 "),
        "{other}"
    );
    assert_eq!(lines[1], "rc=1");
    let rolled = section("install with nss failing");
    let lines: Vec<&str> = rolled.lines().collect();
    assert_eq!(lines.len(), 3, "{rolled}");
    assert!(lines[0].starts_with("streamtool: cannot change the NSS database "), "{rolled}");
    assert!(
        lines[0].ends_with(
            "failed (exit status: 1): SEC_ERROR_TEST: refused; the 1 change(s) made before it were undone"
        ),
        "{rolled}"
    );
    assert_eq!(lines[1], "rc=1");
    assert_eq!(lines[2], "store identical after the rollback");
    let rolled = section("uninstall with nss failing");
    let lines: Vec<&str> = rolled.lines().collect();
    assert_eq!(lines.len(), 5, "{rolled}");
    assert!(lines[0].starts_with("streamtool: cannot change the NSS database "), "{rolled}");
    assert!(
        lines[0].contains(" -D -d sql:")
            && lines[0].ends_with(
                "failed (exit status: 1): SEC_ERROR_TEST: refused; the 1 change(s) made before it were undone"
            ),
        "{rolled}"
    );
    assert_eq!(
        lines[1..],
        [
            "rc=1",
            "store as installed after the rollback",
            "nss entries: 1",
            "store identical after the uninstall"
        ]
    );
    let failed = section("install into a read-only /etc/ssl/certs");
    let lines: Vec<&str> = failed.lines().collect();
    assert_eq!(lines.len(), 3, "{failed}");
    assert!(lines[0].starts_with("streamtool: /usr/sbin/update-ca-certificates failed"), "{failed}");
    // The file is removed again; the update back fails for the same reason (read-only).
    assert!(
        lines[0].contains(": cannot create /etc/ssl/certs/ca-certificates.crt.new: Read-only file system; "),
        "{failed}"
    );
    assert!(lines[0].contains(".crt removed again, but the store could not be rebuilt: "), "{failed}");
    assert_eq!(lines[1], "rc=1");
    assert_eq!(lines[2], "left: 0");
}

/// `certutil ARGS` (the NSS tool), checked to succeed; its stdout.
pub(super) fn certutil(args: &[&str]) -> String {
    let out = Command::new("certutil").args(args).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "certutil {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// The SHA-256 of a file, hex.
pub(super) fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    text(&out.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

/// docs/gen-cert.md, "Installing the CA": `--trust-stores nss` in a temporary HOME with
/// Chromium's `~/.pki/nssdb` and a Firefox profile, each made by `certutil -N` and each
/// holding an unrelated CA ("other CA") added by the test. Without certutil on PATH: one
/// line naming libnss3-tools, exit 1, no database changed and the CA made by the run
/// removed again. Then: install adds our nickname to both (`certutil -L`), a second
/// install says "already" and leaves both cert9.db files byte for byte, uninstall removes
/// exactly ours (both listings are as before, "other CA" still there), a second uninstall
/// changes nothing; an unknown store and a store named twice are usage errors (2).
#[test]
fn install_into_nss_databases_adds_exactly_our_nickname_and_uninstall_removes_it() {
    if !need(&["certutil", "openssl", "sha256sum"]) {
        return;
    }
    let sandbox = Sandbox::new();
    let home = sandbox.dir.path().join("home");
    let dbs = [home.join(".pki/nssdb"), home.join(".mozilla/firefox/abcd1234.default-release")];
    let other_pem = sandbox.file("other.pem");
    let out = sandbox.run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "other-key.pem",
            "-out",
            s(&other_pem),
            "-subj",
            "/CN=other CA",
            "-days",
            "30",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    for db in &dbs {
        std::fs::create_dir_all(db).unwrap();
        let d = format!("sql:{}", db.display());
        certutil(&["-N", "--empty-password", "-d", &d]);
        certutil(&["-A", "-d", &d, "-t", "C,,", "-n", "other CA", "-i", s(&other_pem)]);
    }
    let listing = |db: &Path| certutil(&["-L", "-d", &format!("sql:{}", db.display())]);
    let before: Vec<String> = dbs.iter().map(|d| listing(d)).collect();
    let sums = || -> Vec<String> { dbs.iter().map(|d| sha256_file(&d.join("cert9.db"))).collect() };
    let sums_before = sums();

    // No certutil on PATH: one line, exit 1, nothing changed, the new CA removed again.
    let out = Command::new(BIN)
        .args(["gen-cert", "--install", "--trust-stores", "nss"])
        .current_dir(sandbox.work())
        .env("STREAMTOOL_CA_DIR", sandbox.ca_dir())
        .env("HOME", &home)
        .env("PATH", sandbox.work())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("streamtool: certutil was not found (Debian, Ubuntu: apt install libnss3-tools)"),
        "{err}"
    );
    assert_eq!(text(&out.stdout), "");
    assert_eq!(sums(), sums_before);
    assert!(!sandbox.ca_cert().exists(), "the CA made by the failed run is still there");

    let first = sandbox.gen_ok(&["--install", "--trust-stores", "nss"]);
    let nick = {
        let start = first.find("as \"streamtool local CA ").expect(&first) + 4;
        first[start..start + first[start..].find('"').unwrap()].to_string()
    };
    assert_eq!(nick.len(), "streamtool local CA ".len() + 16, "{first}");
    for db in &dbs {
        assert!(first.contains(&format!("to the NSS database {} as \"{nick}\"", db.display())), "{first}");
        let now = listing(db);
        assert!(now.contains(&nick) && now.contains("other CA"), "{now}");
        certutil(&["-L", "-d", &format!("sql:{}", db.display()), "-n", &nick]);
    }
    assert!(first.ends_with("Undo with: streamtool gen-cert --uninstall --trust-stores nss\n"), "{first}");
    let installed = sums();

    let again = sandbox.gen_ok(&["--install", "--trust-stores", "nss"]);
    assert_eq!(again.matches("nothing changed").count(), 2, "{again}");
    assert!(again.contains("is already in the NSS database"), "{again}");
    assert_eq!(sums(), installed, "a second install changed a database");

    let json = sandbox.gen_ok(&["--uninstall", "--trust-stores", "nss", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let stores = value["stores"].as_array().unwrap();
    assert_eq!(stores.len(), 2, "{json}");
    for (entry, db) in stores.iter().zip(&dbs) {
        assert_eq!(entry["store"], "nss");
        assert_eq!(entry["change"], "removed");
        assert_eq!(entry["nickname"], nick.as_str());
        assert_eq!(entry["where"], db.display().to_string());
    }
    let after: Vec<String> = dbs.iter().map(|d| listing(d)).collect();
    assert_eq!(after, before, "the listings differ from before the install");

    let again = sandbox.gen_ok(&["--uninstall", "--trust-stores", "nss"]);
    assert_eq!(again.matches("is not in the NSS database").count(), 2, "{again}");

    for list in ["nss,firefox", "nss,nss"] {
        let out = sandbox.gen_cert(&["--install", "--trust-stores", list]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{list}: {err}");
        assert_eq!(err.lines().count(), 1, "{list}: {err}");
        assert!(err.starts_with("streamtool: --trust-stores "), "{err}");
    }
}

/// `--trust-stores nss` with no NSS database in HOME: one line saying where it looked,
/// exit 1, and the CA made by the run removed again; `--uninstall` then has nothing to do.
#[test]
fn install_into_nss_without_a_database_says_where_it_looked() {
    if !need(&["certutil"]) {
        return;
    }
    let sandbox = Sandbox::new();
    let out = sandbox.gen_cert(&["--install", "--trust-stores", "nss"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("streamtool: no NSS database found ("), "{err}");
    assert!(err.contains("/.pki/nssdb, ") && err.ends_with("nothing changed\n"), "{err}");
    assert!(!sandbox.ca_cert().exists());
}

/// `keytool ARGS` with the test keystore's password, checked to succeed; its stdout.
pub(super) fn keytool(args: &[&str]) -> String {
    let out = Command::new("keytool").args(args).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "keytool {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// docs/gen-cert.md, "Java": `--trust-stores java --java-keystore K` with a temporary
/// keystore made by `keytool -genkeypair` (an unrelated entry "other"): install adds our
/// alias as a trusted certificate, a second install leaves the file byte for byte,
/// uninstall leaves the listing as before ("other" kept), a second uninstall changes
/// nothing. A keystore that does not exist, and `--java-keystore` without `java`, are one
/// line each (exit 1 and 2) with nothing changed; another user (uid 65534) is told the
/// keystore needs root, with the keytool command; with `nss` named too but no NSS database,
/// nothing is changed in the keystore (every store is checked first).
#[test]
fn install_into_a_java_keystore_adds_exactly_our_alias_and_uninstall_removes_it() {
    if !need(&["keytool", "sha256sum"]) {
        return;
    }
    let sandbox = Sandbox::new();
    let keystore = sandbox.dir.path().join("cacerts.p12");
    let ks = s(&keystore).to_string();
    keytool(&[
        "-genkeypair",
        "-alias",
        "other",
        "-keyalg",
        "EC",
        "-keystore",
        &ks,
        "-storepass",
        "changeit",
        "-dname",
        "CN=other",
        "-noprompt",
    ]);
    let listing = || keytool(&["-list", "-keystore", &ks, "-storepass", "changeit"]);
    let before = listing();
    let sum_before = sha256_file(&keystore);

    // Every store is checked first: nss named with no database changes nothing in Java.
    let out = sandbox.gen_cert(&["--install", "--trust-stores", "java,nss", "--java-keystore", &ks]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("streamtool: no NSS database found (") && err.lines().count() == 1, "{err}");
    assert_eq!(sha256_file(&keystore), sum_before);

    let first = sandbox.gen_ok(&["--install", "--trust-stores", "java", "--java-keystore", &ks]);
    assert!(
        first.starts_with("Added the local CA (")
            && first.contains(&format!("to the Java keystore {ks} as alias streamtool-local-ca-")),
        "{first}"
    );
    assert!(
        first.ends_with(&format!(
            "Undo with: streamtool gen-cert --uninstall --trust-stores java --java-keystore {ks}\n"
        )),
        "{first}"
    );
    let alias = {
        let start = first.find("as alias ").unwrap() + 9;
        first[start..start + first[start..].find(' ').unwrap()].to_string()
    };
    let installed = listing();
    assert!(
        installed.contains(&format!("{alias}, ")) && installed.contains("trustedCertEntry"),
        "{installed}"
    );
    assert!(installed.contains("other, "), "{installed}");
    let sum = sha256_file(&keystore);

    let again = sandbox.gen_ok(&["--install", "--trust-stores", "java", "--java-keystore", &ks]);
    assert!(
        again.contains("is already in the Java keystore") && again.contains("nothing changed"),
        "{again}"
    );
    assert_eq!(sha256_file(&keystore), sum, "a second install changed the keystore");

    if nix::unistd::geteuid().is_root() {
        // Another user, with its own copy of the CA: the keystore readable, not writable.
        let dir = sandbox.dir.path();
        let theirs = dir.join("their-ca");
        std::fs::create_dir(&theirs).unwrap();
        for name in ["ca.pem", "ca-intermediate.pem", "ca-key.pem"] {
            std::fs::copy(sandbox.ca_dir().join(name), theirs.join(name)).unwrap();
            std::os::unix::fs::chown(theirs.join(name), Some(65534), Some(65534)).unwrap();
        }
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&keystore, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let out = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                BIN,
                "gen-cert",
                "--uninstall",
                "--trust-stores",
                "java",
                "--java-keystore",
                &ks,
            ])
            .current_dir("/")
            .env("STREAMTOOL_CA_DIR", &theirs)
            .env("HOME", dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("streamtool: cannot change the Java keystore {ks} ({ks}: permission denied): it needs root; as root: keytool -delete -keystore {ks} -storepass changeit -alias {alias}")),
            "{err}"
        );
        assert_eq!(sha256_file(&keystore), sum);
    }

    let json = sandbox.gen_ok(&["--uninstall", "--trust-stores", "java", "--java-keystore", &ks, "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["stores"][0]["store"], "java", "{json}");
    assert_eq!(value["stores"][0]["change"], "removed", "{json}");
    assert_eq!(value["stores"][0]["nickname"], alias.as_str(), "{json}");
    assert_eq!(listing(), before, "the keystore's listing differs from before the install");

    let again = sandbox.gen_ok(&["--uninstall", "--trust-stores", "java", "--java-keystore", &ks]);
    assert!(again.contains("is not in the Java keystore") && again.contains("nothing changed"), "{again}");

    let missing = sandbox.dir.path().join("missing.p12");
    let out = sandbox.gen_cert(&["--install", "--trust-stores", "java", "--java-keystore", s(&missing)]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("streamtool: cannot read the Java keystore {}", missing.display())),
        "{err}"
    );
    assert!(!missing.exists());
    let out = sandbox.gen_cert(&["--install", "--trust-stores", "nss", "--java-keystore", &ks]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "streamtool: --java-keystore: only with --trust-stores naming java\n");
}

/// `gen-cert ARGS` as uid 65534 (`setpriv`) when the test runs as root (root may write a
/// 0444 file), else as the current user; `current_dir` `/`, HOME and the CA directory given.
fn gen_cert_unprivileged(home: &Path, ca_dir: &Path, args: &[&str]) -> Output {
    let root = nix::unistd::geteuid().is_root();
    let mut command = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    command
        .arg("gen-cert")
        .args(args)
        .current_dir("/")
        .env("HOME", home)
        .env("STREAMTOOL_CA_DIR", ca_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// docs/gen-cert.md, "All or nothing": an NSS database whose files are read-only (0444,
/// owned by the user running gen-cert, uid 65534 when the test is root) is refused by the
/// check made before any store changes: one line naming the database and its cert9.db,
/// exit 1, every file of the database byte for byte as before, the CA directory as before.
/// An `--uninstall` that has nothing to remove there needs no write and succeeds.
#[test]
fn install_into_a_read_only_nss_database_is_refused_before_anything_changes() {
    if !need(&["certutil", "sha256sum"]) {
        return;
    }
    let sandbox = Sandbox::new();
    let home = sandbox.dir.path().join("home");
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    certutil(&["-N", "--empty-password", "-d", &format!("sql:{}", db.display())]);
    sandbox.gen_ok(&["--ca-only"]);
    let ca_dir = sandbox.ca_dir();
    let files = ["cert9.db", "key4.db", "pkcs11.txt"];
    if nix::unistd::geteuid().is_root() {
        let user = Some(65534);
        for path in [sandbox.dir.path(), &home, &home.join(".pki"), &db, &ca_dir] {
            std::os::unix::fs::chown(path, user, user).unwrap();
        }
        for name in files.iter().map(|f| db.join(f)).chain(["ca.pem", "ca-key.pem"].map(|f| ca_dir.join(f))) {
            std::os::unix::fs::chown(name, user, user).unwrap();
        }
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(sandbox.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in files {
        std::fs::set_permissions(db.join(name), std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    let sums = || -> Vec<String> {
        let mut all: Vec<String> = files.iter().map(|f| sha256_file(&db.join(f))).collect();
        all.extend(["ca.pem", "ca-key.pem"].iter().map(|f| sha256_file(&ca_dir.join(f))));
        all
    };
    let before = sums();

    let out = gen_cert_unprivileged(&home, &ca_dir, &["--install", "--trust-stores", "nss"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err,
        format!(
            "streamtool: cannot change the NSS database {0} ({0}/cert9.db: permission denied); nothing changed\n",
            db.display()
        )
    );
    assert_eq!(text(&out.stdout), "");
    assert_eq!(sums(), before, "a file of the database or the CA changed");

    let out = gen_cert_unprivileged(&home, &ca_dir, &["--uninstall", "--trust-stores", "nss"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("is not in the NSS database"), "{}", text(&out.stdout));
    assert_eq!(sums(), before);
}

/// The Fedora-layout test, run by `unshare --mount` as root: /etc is a private copy with
/// `/etc/pki/ca-trust/source/anchors` (holding one anchor placed by hand), Debian's
/// `update-ca-certificates` is hidden (/dev/null bound over it) and a stub
/// `update-ca-trust` first on PATH records each call and the anchors it saw. $1 the test's
/// directory, $2 the binary.
const FEDORA_STORE_SCRIPT: &str = r#"
set -eu
T="$1"; ST="$2"
cp -a /etc "$T/etc"
mkdir -p "$T/etc/pki/ca-trust/source/anchors" "$T/etc/pki/ca-trust/extracted"
echo "an anchor placed by hand" > "$T/etc/pki/ca-trust/source/anchors/other.pem"
mount --bind "$T/etc" /etc
mount --bind /dev/null /usr/sbin/update-ca-certificates
for m in /etc /usr/sbin/update-ca-certificates; do
  mountpoint -q "$m" || { echo "not a private mount: $m"; exit 99; }
done
# The stub's directory and its log are reachable by the other user too (as /usr/bin is).
B=$(mktemp -d /tmp/streamtool-fedora-bin.XXXXXX); trap 'rm -rf "$B"' EXIT; chmod 755 "$B"
printf '#!/bin/sh\necho "update-ca-trust $*: $(ls /etc/pki/ca-trust/source/anchors | tr "\\n" " ")" >> "%s/calls"\n' "$B" > "$B/update-ca-trust"
chmod 755 "$B/update-ca-trust"; touch "$B/calls"
export PATH="$B:$PATH" STREAMTOOL_CA_DIR="$T/ca" HOME="$T/home"
cd "$T"
snapshot() { (cd /etc/pki/ca-trust/source/anchors && ls -la --time-style=+ | sed 1d && sha256sum *); }
snapshot > before
set +e
echo "== install"; "$ST" gen-cert --install 2>&1; echo "rc=$?"
echo "== install again"; "$ST" gen-cert --install 2>&1; echo "rc=$?"
echo "== anchor"; cmp "$T/ca/ca.pem" /etc/pki/ca-trust/source/anchors/streamtool-local-ca-*.pem && echo "the CA's certificate"
echo "== install as another user"
D=$(mktemp -d /tmp/streamtool-nobody.XXXXXX); chown 65534:65534 "$D"
(cd /tmp && setpriv --reuid=65534 --regid=65534 --clear-groups env STREAMTOOL_CA_DIR="$D/ca" HOME="$D" PATH="$PATH" "$ST" gen-cert --install 2>&1); echo "rc=$?"
rm -rf "$D"
echo "== uninstall"; "$ST" gen-cert --uninstall 2>&1; echo "rc=$?"
echo "== uninstall again"; "$ST" gen-cert --uninstall 2>&1; echo "rc=$?"
snapshot > after
echo "== calls"; cat "$B/calls"
diff before after && echo "== anchors identical"
"#;

/// docs/gen-cert.md, "The system store": where Debian's `update-ca-certificates` is not
/// and Fedora's layout is (`/etc/pki/ca-trust/source/anchors`, `update-ca-trust` on PATH),
/// `--install` writes `streamtool-local-ca-HEX.pem` (the CA's certificate) there and runs
/// `update-ca-trust extract` once; a second install changes nothing (no call); another
/// user is told it needs root with Fedora's commands; `--uninstall` deletes the file and
/// runs it once more; the anchors directory is then as before (the hand-placed anchor
/// untouched). The real `update-ca-trust` is not run (a stub records its calls): Fedora's
/// own tool is untested here. Only inside a private mount namespace.
#[test]
fn install_uses_update_ca_trust_where_the_fedora_layout_is_found() {
    if !need(&["unshare", "setpriv", "update-ca-certificates"]) {
        return;
    }
    let root = nix::unistd::geteuid().is_root();
    if !crate::support::precondition(
        root,
        "the Fedora-layout test needs root for its private mount namespace",
    ) {
        return;
    }
    let sandbox = Sandbox::new();
    let out = Command::new("timeout")
        .args([
            "60",
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "bash",
            "-c",
            FEDORA_STORE_SCRIPT,
            "fedora",
        ])
        .arg(sandbox.work())
        .arg(BIN)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{log}\n{}", text(&out.stderr));
    let section = |title: &str| -> String {
        let start = log.find(&format!("== {title}\n")).unwrap_or_else(|| panic!("no {title:?} in:\n{log}"));
        let body = &log[start + title.len() + 4..];
        body[..body.find("\n== ").unwrap_or(body.len())].to_string()
    };
    let anchors = "/etc/pki/ca-trust/source/anchors/streamtool-local-ca-";
    let install = section("install");
    assert!(
        install.starts_with(&format!(
            "Installed the local CA ({}/ca/ca.pem) into the system trust store: wrote {anchors}",
            sandbox.work().display()
        )),
        "{install}"
    );
    assert!(
        install.contains(".pem and ran update-ca-trust extract (it is now in /etc/pki/ca-trust/extracted)."),
        "{install}"
    );
    assert!(install.ends_with("rc=0"), "{install}");
    let again = section("install again");
    assert!(again.contains("is already in the system trust store") && again.ends_with("rc=0"), "{again}");
    assert_eq!(section("anchor"), "the CA's certificate");
    let other = section("install as another user");
    let lines: Vec<&str> = other.lines().collect();
    assert_eq!(lines.len(), 2, "{other}");
    assert!(
        lines[0].starts_with(&format!("streamtool: cannot change the system trust store ({anchors}"))
            && lines[0].contains(".pem: permission denied): it needs root; as root: install -m 0644 ")
            && lines[0].ends_with(".pem && update-ca-trust extract"),
        "{other}"
    );
    assert_eq!(lines[1], "rc=1");
    let uninstall = section("uninstall");
    assert!(
        uninstall.starts_with("Removed the local CA (") && uninstall.contains(&format!("deleted {anchors}")),
        "{uninstall}"
    );
    assert!(
        uninstall.contains(".pem and ran update-ca-trust extract.\n") && uninstall.ends_with("rc=0"),
        "{uninstall}"
    );
    let again = section("uninstall again");
    assert!(again.contains("is not in the system trust store") && again.ends_with("rc=0"), "{again}");
    let calls = section("calls");
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls[0].starts_with("update-ca-trust extract: other.pem streamtool-local-ca-"), "{calls:?}");
    assert_eq!(calls[1], "update-ca-trust extract: other.pem ", "{calls:?}");
    assert!(log.ends_with("== anchors identical\n"), "{log}");
}

/// The public key (PEM) of a certificate or of a private key, by openssl.
fn public_key(sandbox: &Sandbox, path: &Path, is_key: bool) -> String {
    let args: &[&str] = if is_key {
        &["pkey", "-in", s(path), "-pubout"]
    } else {
        &["x509", "-in", s(path), "-noout", "-pubkey"]
    };
    text(&openssl(args, &sandbox.work()).stdout)
}

/// docs/gen-cert.md, "The local CA" and "Why two levels": a new (constrained) CA is a
/// root (`ca.pem`, path length 1) that signed one intermediate (`ca-intermediate.pem`,
/// path length 0), both with the critical name constraints; `ca-key.pem` (0400) is the
/// intermediate's key, not the root's, and no other key is in the directory. `--ca-only`
/// shows both (text and JSON). A leaf file holds the leaf then the intermediate (openssl
/// verifies it against `ca.pem` with `-untrusted` naming the file, not without), a
/// PKCS#12 file the leaf, the intermediate and the root, a combined file both
/// certificates and the key. A directory without `ca.pem` or without the intermediate is
/// an error naming the missing file, with nothing written.
#[test]
fn a_new_ca_is_a_root_and_a_constrained_intermediate_whose_key_alone_is_kept() {
    if !need(&["openssl"]) {
        return;
    }
    let sandbox = Sandbox::new();
    let (dir, ca, inter) = (sandbox.ca_dir(), sandbox.ca_cert(), sandbox.intermediate());
    let key = dir.join("ca-key.pem");
    let shown = sandbox.gen_ok(&["--ca-only"]);
    for line in [
        format!("CA:           {} (the root clients trust; its key was discarded)", ca.display()),
        format!("Intermediate: {} (signs the certificates)", inter.display()),
        format!("CA key:       {} (the intermediate's, mode 0400)", key.display()),
    ] {
        assert!(shown.contains(&line), "{line:?} missing from:\n{shown}");
    }
    let json: serde_json::Value = serde_json::from_str(&sandbox.gen_ok(&["--ca-only", "--json"])).unwrap();
    assert_eq!(json["ca"]["intermediate"], s(&inter));
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["ca-intermediate.pem", "ca-key.pem", "ca.pem"]);
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777
    };
    assert_eq!((mode(&ca), mode(&inter), mode(&key)), (0o644, 0o644, 0o400));
    let text_of =
        |p: &Path| text(&openssl(&["x509", "-in", s(p), "-noout", "-text"], &sandbox.work()).stdout);
    let (root_text, inter_text) = (text_of(&ca), text_of(&inter));
    assert!(root_text.contains("CA:TRUE, pathlen:1"), "{root_text}");
    assert!(inter_text.contains("CA:TRUE, pathlen:0"), "{inter_text}");
    for t in [&root_text, &inter_text] {
        assert!(t.contains("X509v3 Name Constraints: critical") && t.contains("DNS:localhost"), "{t}");
    }
    let verify = openssl(&["verify", "-CAfile", s(&ca), s(&inter)], &sandbox.work());
    assert!(text(&verify.stdout).ends_with(": OK\n"), "{}", text(&verify.stdout));
    let kept = public_key(&sandbox, &key, true);
    assert_eq!(kept, public_key(&sandbox, &inter, false), "the key kept is the intermediate's");
    assert_ne!(kept, public_key(&sandbox, &ca, false), "the root's key was not kept");

    sandbox.gen_ok(&["--pkcs12", "localhost"]);
    let blocks = pem_blocks(&sandbox.file("localhost.pem"));
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[1], std::fs::read_to_string(&inter).unwrap());
    let leaf = "localhost.pem";
    let out = openssl(&["verify", "-CAfile", s(&ca), "-untrusted", leaf, leaf], &sandbox.work());
    assert_eq!(text(&out.stdout), "localhost.pem: OK\n");
    let alone = sandbox.run("openssl", &["verify", "-CAfile", s(&ca), leaf], b"");
    assert_ne!(alone.status.code(), Some(0), "verified without the intermediate");
    let p12 =
        openssl(&["pkcs12", "-in", "localhost.p12", "-passin", "pass:changeit", "-nokeys"], &sandbox.work());
    assert_eq!(text(&p12.stdout).matches("BEGIN CERTIFICATE").count(), 3, "{}", text(&p12.stdout));
    sandbox.gen_ok(&["--cert-file", "both.pem", "--key-file", "both.pem", "app.test"]);
    let both = std::fs::read_to_string(sandbox.file("both.pem")).unwrap();
    assert_eq!(
        (both.matches("BEGIN CERTIFICATE").count(), both.matches("BEGIN PRIVATE KEY").count()),
        (2, 1)
    );

    for missing in [ca.clone(), inter.clone()] {
        let aside = sandbox.dir.path().join("aside.pem");
        std::fs::rename(&missing, &aside).unwrap();
        let before = sandbox.listing();
        let out = sandbox.gen_cert(&["other.test"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert_eq!(
            text(&out.stderr),
            format!(
                "streamtool: cannot use the local CA: the CA in {} is incomplete: {} is missing\n",
                dir.display(),
                missing.display()
            )
        );
        assert_eq!(sandbox.listing(), before);
        std::fs::rename(&aside, &missing).unwrap();
    }
    sandbox.gen_ok(&["other.test"]);
}

/// docs/gen-cert.md, "Why two levels": CA directories made before the two-level layout
/// keep working as they are (here one made by openssl: a constrained root and its key):
/// `--ca-only` shows no intermediate, leaves are signed by the root and their file holds
/// the leaf alone (`openssl verify -CAfile ca.pem` passes), nothing is added to the
/// directory. `--ca-only --force --any-name` over a two-level CA makes a single
/// unconstrained root (nothing to constrain) and removes the old intermediate; its leaves
/// get the root after them only with `--bundle`.
#[test]
fn an_old_single_root_directory_keeps_working_and_any_name_makes_a_single_root() {
    if !need(&["openssl"]) {
        return;
    }
    let old = Sandbox::new();
    old.old_single_root_ca();
    let shown = old.gen_ok(&["--ca-only"]);
    assert!(!shown.contains("Intermediate:"), "{shown}");
    assert!(shown.contains("Signs for:    only localhost, .test, 127.0.0.0/8 (name constraints)"), "{shown}");
    old.gen_ok(&["localhost"]);
    assert_eq!(pem_blocks(&old.file("localhost.pem")).len(), 1);
    let out = openssl(&["verify", "-CAfile", s(&old.ca_cert()), "localhost.pem"], &old.work());
    assert_eq!(text(&out.stdout), "localhost.pem: OK\n");
    assert!(!old.intermediate().exists());

    let any = Sandbox::new();
    any.gen_ok(&["--ca-only"]);
    assert!(any.intermediate().exists());
    any.gen_ok(&["--ca-only", "--force", "--any-name"]);
    assert!(!any.intermediate().exists(), "the old intermediate was left behind");
    let shown = any.gen_ok(&["--ca-only"]);
    assert!(!shown.contains("Intermediate:") && shown.contains("any name"), "{shown}");
    any.gen_ok(&["example.com"]);
    assert_eq!(pem_blocks(&any.file("example.com.pem")).len(), 1);
    any.gen_ok(&["--bundle", "--cert-file", "bundle.pem", "--key-file", "bundle-key.pem", "example.com"]);
    let bundle = pem_blocks(&any.file("bundle.pem"));
    assert_eq!(bundle.len(), 2);
    assert_eq!(bundle[1], std::fs::read_to_string(any.ca_cert()).unwrap());
}
