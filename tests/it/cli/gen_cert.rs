//! `streamtool gen-cert`, through the real binary in temporary directories: certificates
//! checked by OpenSSL (`verify`, `x509 -text`, `-checkend`, `pkcs12`), loaded by the
//! library and used in real TLS handshakes, in memory and end-to-end through `serve` and
//! `connect`; file modes, --force, bad names, --inspect. The CA directory, HOME and
//! XDG_DATA_HOME all point into the temporary directory, so nothing touches the real home.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use streamtool::certs::{self, KeyType};
use streamtool::streams::tls::{
    self, ClientOptions, KeyLog, Pin, RaggedEofPolicy, ServerOptions, TlsStream, Trust,
};
use streamtool::streams::*;

use crate::support::certs::{openssl, seed_certificate};
use crate::support::cli::BIN;
use crate::support::run;

/// How long any one process may take.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// A temporary directory with `work/` (the current directory of every run), `ca/` (the
/// CA directory, created by gen-cert) and `home/`.
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

    /// A file in `work/`.
    fn file(&self, name: &str) -> PathBuf {
        self.work().join(name)
    }

    fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    fn ca_cert(&self) -> PathBuf {
        self.ca_dir().join("ca.pem")
    }

    fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        let home = self.dir.path().join("home");
        command
            .current_dir(self.work())
            .env("STREAMTOOL_CA_DIR", self.ca_dir())
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env_remove("STREAMTOOL_P12_PASSWORD")
            .env_remove("RUST_LOG")
            .env_remove("SSLKEYLOGFILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `streamtool gen-cert ARGS`.
    fn gen_cert(&self, args: &[&str]) -> Output {
        let mut command = self.command();
        command.arg("gen-cert").args(args);
        finish(command.spawn().unwrap(), None)
    }

    /// Runs `streamtool gen-cert ARGS` under `umask` (set by `sh` for the child alone), and
    /// expects success: file modes then do not depend on the umask the tests ran under.
    fn gen_ok_under_umask(&self, umask: &str, args: &[&str]) -> String {
        let command = self.command();
        let program = command.get_program().to_owned();
        let mut shell = Command::new("sh");
        shell.arg("-c").arg("umask \"$0\" && exec \"$@\"").arg(umask).arg(program).arg("gen-cert").args(args);
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => shell.env(key, value),
                None => shell.env_remove(key),
            };
        }
        shell.current_dir(self.work()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let output = finish(shell.spawn().unwrap(), None);
        assert!(
            output.status.success(),
            "umask {umask}; gen-cert {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs `streamtool gen-cert ARGS` and expects success; returns stdout.
    fn gen_ok(&self, args: &[&str]) -> String {
        let output = self.gen_cert(args);
        assert!(
            output.status.success(),
            "gen-cert {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// The names in `work/`, sorted.
    fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.work())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// Waits for `child` (feeding it `input`), killing it and failing the test if it takes
/// longer than [`PROCESS_TIMEOUT`].
fn finish(mut child: Child, input: Option<&[u8]>) -> Output {
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
    }
    let collect = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut data = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut data);
            }
            data
        })
    };
    let stdout = collect(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = collect(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a streamtool process took longer than {PROCESS_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

fn openssl_text(cert: &Path) -> String {
    let out = openssl(&["x509", "-noout", "-text", "-in", cert.to_str().unwrap()], Path::new("."));
    String::from_utf8(out.stdout).unwrap()
}

/// Whether `cert` is still valid `days` from now (`openssl x509 -checkend`).
fn valid_in(cert: &Path, days: u64) -> bool {
    let seconds = (days * 86_400).to_string();
    Command::new("openssl")
        .args(["x509", "-noout", "-checkend", &seconds, "-in", cert.to_str().unwrap()])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// `openssl verify -CAfile CA -untrusted LEAF LEAF`: the leaf file holds the intermediate
/// after the leaf (a two-level CA), and openssl verifies only the file's first certificate.
fn assert_openssl_verifies(ca: &Path, leaf: &Path) {
    let (ca, leaf) = (ca.to_str().unwrap(), leaf.to_str().unwrap());
    let out = openssl(&["verify", "-CAfile", ca, "-untrusted", leaf, leaf], Path::new("."));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.trim_end().ends_with(": OK"), "{text}");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A TLS handshake through the library over an in-memory transport: the server presents
/// `cert`/`key` (loaded with `certs::load_identity`), the client trusts only `ca` and
/// verifies `name`; a message goes each way.
fn handshake_in_memory(cert: &Path, key: &Path, ca: &Path, name: &str) {
    let identity = certs::load_identity(cert, key).unwrap_or_else(|e| panic!("{}: {e}", cert.display()));
    let mut server_options = ServerOptions::new(identity);
    server_options.keylog = KeyLog::Off;
    let client_options = ClientOptions {
        trust: Trust::Certificates(certs::load_certs(ca).unwrap()),
        keylog: KeyLog::Off,
        ..Default::default()
    };
    run(async {
        let (a, b) = memory_byte_stream_pair(4);
        let server_config = server_options.build().unwrap();
        let server = tokio::spawn(async move {
            let mut server =
                TlsStream::accept(ByteStreamIo::from_stapled(b), server_config, RaggedEofPolicy::Strict)
                    .await?;
            let got = server.receive(100).await?;
            server.send(got).await?;
            Ok::<_, StreamError>(server)
        });
        let mut client = TlsStream::connect(
            ByteStreamIo::from_stapled(a),
            client_options.build().unwrap(),
            tls::server_name(name).unwrap(),
            RaggedEofPolicy::Strict,
        )
        .await
        .unwrap_or_else(|e| panic!("{}: handshake: {e}", cert.display()));
        client.send(Bytes::from_static(b"ping")).await.unwrap();
        assert_eq!(client.receive(100).await.unwrap(), &b"ping"[..]);
        let _server = server.await.unwrap().unwrap();
    });
}

/// A `streamtool serve` process, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `streamtool serve --echo ARGS 0` and reads its port from the
/// `streamtool: listening on 127.0.0.1:PORT, ...` line on stderr.
fn serve(sandbox: &Sandbox, args: &[&str]) -> Server {
    let mut command = sandbox.command();
    command.arg("serve").arg("--echo").args(args).arg("0").stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut server = Server { child, port: 0 };
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.port == 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line =
            lines_rx.recv_timeout(left).unwrap_or_else(|_| panic!("serve {args:?} did not start listening"));
        if let Some(rest) = line.strip_prefix("streamtool: listening on 127.0.0.1:") {
            server.port = rest.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
        }
    }
    server
}

/// `streamtool connect ARGS localhost:PORT` with "ping\n" on stdin: the echo must come back.
fn connect_and_echo(sandbox: &Sandbox, port: u16, args: &[&str]) {
    let mut command = sandbox.command();
    command
        .args(["connect", "--on-eof", "half-close"])
        .args(args)
        .arg(format!("localhost:{port}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = finish(command.spawn().unwrap(), Some(b"ping\n"));
    assert!(output.status.success(), "connect {args:?}: {}", stderr_of(&output));
    assert_eq!(output.stdout, b"ping\n");
}

#[test]
fn ca_and_leaf_verify_with_openssl_and_the_output_says_how_to_use_them() {
    let sandbox = Sandbox::new();
    let stdout = sandbox.gen_ok(&["localhost", "127.0.0.1", "::1"]);
    let (leaf, key) = (sandbox.file("localhost+2.pem"), sandbox.file("localhost+2-key.pem"));
    assert_openssl_verifies(&sandbox.ca_cert(), &leaf);
    // Paths, SANs, expiry, fingerprint and the exact commands.
    let pin = Pin::of_certificate(certs::load_certs(&leaf).unwrap()[0].as_ref());
    let ca = sandbox.ca_cert().display().to_string();
    for expected in [
        format!("Created a new local CA in {}", sandbox.ca_dir().display()),
        "Certificate:  localhost+2.pem".to_string(),
        "Key:          localhost+2-key.pem (mode 0600)".to_string(),
        "DNS:localhost, IP Address:127.0.0.1, IP Address:::1".to_string(),
        "Expires:".to_string(),
        format!("SHA-256:      {pin}"),
        "  streamtool serve --tls --cert localhost+2.pem --key localhost+2-key.pem 8443".to_string(),
        format!("  streamtool connect --tls --ca {ca} localhost:8443"),
    ] {
        assert!(stdout.contains(&expected), "{expected:?} missing from:\n{stdout}");
    }
    assert!(key.exists());
    // A second certificate reuses the CA.
    let stdout = sandbox.gen_ok(&["other.test"]);
    assert!(!stdout.contains("Created a new local CA"), "{stdout}");
    assert_openssl_verifies(&sandbox.ca_cert(), &sandbox.file("other.test.pem"));
}

#[test]
fn openssl_shows_the_sans_usages_and_validity_asked_for() {
    let sandbox = Sandbox::new();
    // example.com is outside a new CA's default name constraints (docs/gen-cert.md): a CA
    // for any name.
    sandbox.gen_ok(&["--ca-only", "--any-name"]);
    sandbox.gen_ok(&[
        "--days",
        "30",
        "--client",
        "localhost",
        "127.0.0.1",
        "::1",
        "*.example.com",
        "me@example.com",
    ]);
    let leaf = sandbox.file("localhost+4-client.pem");
    let text = openssl_text(&leaf);
    for expected in [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
        "DNS:*.example.com",
        "email:me@example.com",
        "TLS Web Server Authentication",
        "TLS Web Client Authentication",
        "E-mail Protection",
        "CA:FALSE",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    assert!(valid_in(&leaf, 29) && !valid_in(&leaf, 31), "valid for 30 days");
    // Without --client, no clientAuth; the default validity is 90 days.
    sandbox.gen_ok(&["localhost"]);
    let leaf = sandbox.file("localhost.pem");
    let text = openssl_text(&leaf);
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(!text.contains("Client Authentication"), "{text}");
    assert!(valid_in(&leaf, 89) && !valid_in(&leaf, 91), "valid for 90 days");
    // The CA: CA:TRUE, path length 0, 3650 days.
    let ca_text = openssl_text(&sandbox.ca_cert());
    assert!(ca_text.contains("CA:TRUE, pathlen:0"), "{ca_text}");
    assert!(ca_text.contains("Certificate Sign"), "{ca_text}");
    assert!(valid_in(&sandbox.ca_cert(), 3649) && !valid_in(&sandbox.ca_cert(), 3651));
}

#[test]
fn a_validity_over_398_days_is_warned_about() {
    let sandbox = Sandbox::new();
    let output = sandbox.gen_cert(&["--days", "400", "localhost"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("398 days"), "{}", stderr_of(&output));
    assert!(valid_in(&sandbox.file("localhost.pem"), 399));
    let output = sandbox.gen_cert(&["--days", "398", "--force", "localhost"]);
    assert!(!stderr_of(&output).contains("398 days"), "{}", stderr_of(&output));
}

#[test]
fn a_leaf_never_outlives_its_ca() {
    let sandbox = Sandbox::new();
    sandbox.gen_ok(&["--ca-only", "--days", "10"]);
    let output = sandbox.gen_cert(&["localhost"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("the CA expires on"), "{}", stderr_of(&output));
    let leaf = sandbox.file("localhost.pem");
    assert!(valid_in(&leaf, 9) && !valid_in(&leaf, 11));
}

#[test]
fn every_key_type_verifies_loads_and_completes_a_handshake_through_the_library() {
    let sandbox = Sandbox::new();
    for key_type in KeyType::ALL {
        let (cert, key) = (format!("{key_type}.pem"), format!("{key_type}-key.pem"));
        sandbox.gen_ok(&[
            "--key-type",
            key_type.name(),
            "--cert-file",
            &cert,
            "--key-file",
            &key,
            "localhost",
        ]);
        let (cert, key) = (sandbox.file(&cert), sandbox.file(&key));
        assert_openssl_verifies(&sandbox.ca_cert(), &cert);
        let inspected = sandbox.gen_ok(&["--inspect", cert.to_str().unwrap()]);
        assert!(inspected.contains(key_type.description()), "{key_type}: {inspected}");
        handshake_in_memory(&cert, &key, &sandbox.ca_cert(), "localhost");
    }
}

#[test]
fn a_ca_of_every_key_type_signs_leaves_that_handshake() {
    for key_type in KeyType::ALL {
        let sandbox = Sandbox::new();
        sandbox.gen_ok(&["--ca-only", "--key-type", key_type.name()]);
        sandbox.gen_ok(&["127.0.0.1"]);
        let cert = sandbox.file("127.0.0.1.pem");
        assert_openssl_verifies(&sandbox.ca_cert(), &cert);
        handshake_in_memory(&cert, &sandbox.file("127.0.0.1-key.pem"), &sandbox.ca_cert(), "127.0.0.1");
    }
}

#[test]
fn every_key_type_works_end_to_end_with_serve_and_connect() {
    let sandbox = Sandbox::new();
    for key_type in KeyType::ALL {
        let (cert, key) = (format!("{key_type}.pem"), format!("{key_type}-key.pem"));
        sandbox.gen_ok(&[
            "--key-type",
            key_type.name(),
            "--cert-file",
            &cert,
            "--key-file",
            &key,
            "localhost",
        ]);
        let server = serve(&sandbox, &["--tls", "--cert", &cert, "--key", &key]);
        connect_and_echo(&sandbox, server.port, &["--tls", "--ca", sandbox.ca_cert().to_str().unwrap()]);
    }
}

#[test]
fn client_certificates_work_for_mutual_tls() {
    let sandbox = Sandbox::new();
    let stdout = sandbox.gen_ok(&["--client", "localhost"]);
    assert!(stdout.contains("--require-client-cert"), "{stdout}");
    let ca = sandbox.ca_cert().display().to_string();
    let (cert, key) = ("localhost-client.pem", "localhost-client-key.pem");
    let server = serve(
        &sandbox,
        &["--tls", "--cert", cert, "--key", key, "--client-ca", &ca, "--require-client-cert"],
    );
    connect_and_echo(&sandbox, server.port, &["--tls", "--ca", &ca, "--cert", cert, "--key", key]);
}

#[test]
fn self_signed_certificates_serve_with_connect_ca() {
    let sandbox = Sandbox::new();
    let stdout = sandbox.gen_ok(&["--self-signed", "localhost", "127.0.0.1"]);
    assert!(stdout.contains("streamtool connect --tls --ca localhost+1.pem localhost:8443"), "{stdout}");
    assert!(!sandbox.ca_dir().exists(), "--self-signed leaves the CA alone");
    let text = openssl_text(&sandbox.file("localhost+1.pem"));
    assert!(text.contains("DNS:localhost") && text.contains("IP Address:127.0.0.1"), "{text}");
    let server = serve(&sandbox, &["--tls", "--cert", "localhost+1.pem", "--key", "localhost+1-key.pem"]);
    connect_and_echo(&sandbox, server.port, &["--tls", "--ca", "localhost+1.pem"]);
}

#[test]
fn the_seed_openssl_certificate_inspects_and_serves() {
    let sandbox = Sandbox::new();
    // The seed's own command, into work/cert.pem and work/key.pem.
    seed_certificate(&sandbox.work());
    let output = sandbox.gen_cert(&["--inspect", "cert.pem"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    for expected in ["CN=localhost", "(self-signed)", "(none)", "RSA 2048", "CA:             yes", "sha256:"]
    {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    assert!(stderr_of(&output).contains("no subject alternative names"), "{}", stderr_of(&output));
    let server = serve(&sandbox, &["--tls", "--cert", "cert.pem", "--key", "key.pem"]);
    connect_and_echo(&sandbox, server.port, &["--tls", "--ca", "cert.pem"]);
    // A key is not a certificate.
    let output = sandbox.gen_cert(&["--inspect", "key.pem"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("holds a private key, not a certificate"), "{}", stderr_of(&output));
}

#[test]
fn inspect_json_parses_and_matches_the_certificate() {
    let sandbox = Sandbox::new();
    sandbox.gen_ok(&["--bundle", "--key-type", "rsa-2048", "localhost", "::1", "me@example.com"]);
    let leaf = sandbox.file("localhost+2.pem");
    let stdout = sandbox.gen_ok(&["--inspect", leaf.to_str().unwrap(), "--json"]);
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let certificates = value["certificates"].as_array().unwrap();
    assert_eq!(certificates.len(), 2, "the bundle holds the leaf and the intermediate CA");
    let (first, second) = (&certificates[0], &certificates[1]);
    let ders = certs::load_certs(&leaf).unwrap();
    assert_eq!(first["sha256"], Pin::of_certificate(ders[0].as_ref()).to_string());
    assert_eq!(first["sans"], serde_json::json!(["DNS:localhost", "IP Address:::1", "email:me@example.com"]));
    assert_eq!(first["key_type"], "RSA 2048");
    assert_eq!(first["is_ca"], false);
    assert_eq!(first["expired"], false);
    assert_eq!(first["issuer"], second["subject"]);
    assert_eq!(second["is_ca"], true);
    assert_eq!(second["self_signed"], false);
    let intermediate = sandbox.ca_dir().join("ca-intermediate.pem");
    assert_eq!(ders[1], certs::load_certs(&intermediate).unwrap()[0], "the intermediate follows the leaf");
    for field in ["subject", "not_before", "not_after", "serial", "signature_algorithm", "public_key_sha256"]
    {
        assert!(first[field].is_string(), "{field}: {first}");
    }
    // Generation can answer in JSON too.
    let stdout =
        sandbox.gen_ok(&["--json", "--cert-file", "j.pem", "--key-file", "j-key.pem", "example.test"]);
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["sans"], serde_json::json!(["DNS:example.test"]));
    assert_eq!(value["files"][0]["path"], "j.pem");
    assert!(value["commands"][0].as_str().unwrap().starts_with("streamtool serve --tls --cert j.pem"));
}

#[test]
fn keys_are_0600_and_the_ca_key_0400() {
    let sandbox = Sandbox::new();
    // The certificate's 0644 is 0666 less the usual umask 022, set here for the child: the
    // modes checked are not whatever umask the test runner had.
    sandbox.gen_ok_under_umask("022", &["--pkcs12", "localhost"]);
    assert_eq!(mode(&sandbox.file("localhost-key.pem")), 0o600);
    assert_eq!(mode(&sandbox.file("localhost.p12")), 0o600);
    assert_eq!(mode(&sandbox.file("localhost.pem")), 0o644);
    assert_eq!(mode(&sandbox.ca_dir().join("ca-key.pem")), 0o400);
    assert_eq!(mode(&sandbox.ca_dir()), 0o700);
    // A certificate and key in one file is a key file.
    sandbox.gen_ok_under_umask("022", &["--cert-file", "both.pem", "--key-file", "both.pem", "localhost"]);
    assert_eq!(mode(&sandbox.file("both.pem")), 0o600);
    certs::load_identity(sandbox.file("both.pem"), sandbox.file("both.pem")).unwrap();
    assert_eq!(
        sandbox.listing(),
        ["both.pem", "localhost-key.pem", "localhost.p12", "localhost.pem"],
        "no temporary files are left behind"
    );
}

#[test]
fn an_existing_file_is_kept_without_force_and_replaced_with_force() {
    let sandbox = Sandbox::new();
    sandbox.gen_ok(&["localhost"]);
    let (cert, key) = (sandbox.file("localhost.pem"), sandbox.file("localhost-key.pem"));
    let (cert_before, key_before) = (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap());
    let output = sandbox.gen_cert(&["localhost"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("already exists") && stderr_of(&output).contains("--force"));
    assert_eq!(std::fs::read(&cert).unwrap(), cert_before);
    assert_eq!(std::fs::read(&key).unwrap(), key_before);
    // Only the key exists: still nothing is written.
    std::fs::remove_file(&cert).unwrap();
    assert_eq!(sandbox.gen_cert(&["localhost"]).status.code(), Some(1));
    assert!(!cert.exists());
    assert_eq!(std::fs::read(&key).unwrap(), key_before);
    // --force replaces both, atomically, with the right modes.
    sandbox.gen_ok(&["--force", "localhost"]);
    assert_ne!(std::fs::read(&key).unwrap(), key_before);
    assert_eq!(mode(&key), 0o600);
    certs::load_identity(&cert, &key).unwrap();
    assert_eq!(sandbox.listing(), ["localhost-key.pem", "localhost.pem"]);
}

#[test]
fn bad_names_give_a_clear_error_exit_2_and_write_nothing() {
    let sandbox = Sandbox::new();
    for (name, reason) in [
        ("", "empty"),
        ("my host", "spaces"),
        ("*.*.x", "one wildcard level"),
        ("a.*.example.com", "leftmost"),
        ("999.1.1.1", "IPv4"),
        ("fe80::1::2", "IPv6"),
        ("localhost:8443", "ports"),
    ] {
        let output = sandbox.gen_cert(&["localhost", name]);
        assert_eq!(output.status.code(), Some(2), "{name:?}: {}", stderr_of(&output));
        let stderr = stderr_of(&output);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(&format!("invalid name {name:?}")) && stderr.contains(reason), "{stderr}");
        assert!(sandbox.listing().is_empty(), "{name:?} wrote {:?}", sandbox.listing());
        assert!(!sandbox.ca_dir().exists(), "{name:?} made a CA");
    }
}

#[test]
fn default_file_names_follow_mkcert_and_wildcards_get_a_note() {
    let sandbox = Sandbox::new();
    // example.com is outside a new CA's default name constraints (docs/gen-cert.md): a CA
    // for any name.
    sandbox.gen_ok(&["--ca-only", "--any-name"]);
    let output = sandbox.gen_cert(&["*.example.com", "example.com"]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("covers one level only"), "{}", stderr_of(&output));
    assert_eq!(sandbox.listing(), ["_wildcard.example.com+1-key.pem", "_wildcard.example.com+1.pem"]);
    sandbox.gen_ok(&["::1"]);
    assert!(sandbox.file("__1.pem").exists() && sandbox.file("__1-key.pem").exists());
}

#[test]
fn ca_only_creates_then_shows_the_ca_and_force_replaces_it() {
    let sandbox = Sandbox::new();
    let first = sandbox.gen_ok(&["--ca-only"]);
    assert!(first.contains("Created a new local CA"), "{first}");
    assert!(
        first.contains(&format!("streamtool connect --tls --ca {}", sandbox.ca_cert().display())),
        "{first}"
    );
    let pin = Pin::of_certificate(certs::load_certs(sandbox.ca_cert()).unwrap()[0].as_ref()).to_string();
    assert!(first.contains(&pin), "{first}");
    let second = sandbox.gen_ok(&["--ca-only"]);
    assert!(second.contains("The local CA in") && second.contains(&pin), "{second}");
    sandbox.gen_ok(&["--ca-only", "--force", "--key-type", "ecdsa-p384"]);
    let replaced = certs::inspect_file(&sandbox.ca_cert()).unwrap().remove(0);
    assert_ne!(replaced.sha256.to_string(), pin);
    assert_eq!(replaced.key_type, "ECDSA P-384");
    assert_eq!(mode(&sandbox.ca_dir().join("ca-key.pem")), 0o400);
    // --ca-dir wins over $STREAMTOOL_CA_DIR.
    let other = sandbox.dir.path().join("other-ca");
    sandbox.gen_ok(&["--ca-dir", other.to_str().unwrap(), "localhost"]);
    assert_openssl_verifies(&other.join("ca.pem"), &sandbox.file("localhost.pem"));
    assert!(sandbox.listing().iter().all(|n| !n.starts_with("ca")));
}

#[test]
fn an_incomplete_ca_is_an_error_not_a_silent_new_ca() {
    let sandbox = Sandbox::new();
    sandbox.gen_ok(&["--ca-only"]);
    std::fs::remove_file(sandbox.ca_cert()).unwrap();
    let output = sandbox.gen_cert(&["localhost"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr_of(&output).contains("incomplete"), "{}", stderr_of(&output));
    assert!(sandbox.listing().is_empty());
}

#[test]
fn pkcs12_files_open_with_openssl() {
    let sandbox = Sandbox::new();
    sandbox.gen_ok(&["--pkcs12", "localhost"]);
    let out = openssl(
        &["pkcs12", "-in", "localhost.p12", "-passin", "pass:changeit", "-nodes", "-info"],
        &sandbox.work(),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("CN = localhost") || text.contains("CN=localhost"), "{text}");
    assert!(text.contains("streamtool local CA"), "the CA is in the file: {text}");
    assert!(text.contains("PRIVATE KEY"), "{text}");
    // Another password from the environment, and the legacy encryption.
    let mut command = sandbox.command();
    command.args(["gen-cert", "--pkcs12", "--p12-legacy", "--p12-file", "legacy.p12", "other.test"]);
    command.env("STREAMTOOL_P12_PASSWORD", "s3cret");
    assert!(finish(command.spawn().unwrap(), None).status.success());
    openssl(&["pkcs12", "-in", "legacy.p12", "-passin", "pass:s3cret", "-nokeys"], &sandbox.work());
}
