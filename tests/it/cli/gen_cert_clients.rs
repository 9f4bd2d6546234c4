//! `gen-cert`'s local CA as real clients see it once it is installed where they look
//! (issue 30; docs/gen-cert.md, "Which clients enforce the constraints"): headless
//! Chromium with a temporary HOME whose NSS database got the CA by `gen-cert --install
//! --trust-stores nss`, a CSR made by openssl signed by `gen-cert --csr` and served by
//! nginx, NSS's own chain check (`vfychain`) and Java's (a single-file program run by
//! `java Check.java`) against leaves forged with the CA key inside and outside its name
//! constraints. Everything is in temporary directories (the Sandbox of `gen_cert_ca`); no
//! store of the machine is read or changed.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::gen_cert_ca::{LIMIT, SServer, Sandbox, certutil, keytool, pem_blocks, s, text};
use crate::support::cli::{BIN, STEP, closed_port, parse_port};
use crate::support::peers::need;

/// A process in its own process group, the whole group killed on drop.
struct Background {
    child: Child,
}

impl Background {
    /// Spawns `command` in a new process group and waits (bounded by `STEP`) for a line
    /// of its stdout (`from_stderr`: stderr) containing `marker`; returns that line. The
    /// rest of that output is read and dropped, so the process never blocks on it.
    fn start(mut command: Command, label: &str, from_stderr: bool, marker: &str) -> (Background, String) {
        command.process_group(0).stdin(Stdio::null());
        if from_stderr {
            command.stdout(Stdio::null()).stderr(Stdio::piped());
        } else {
            command.stdout(Stdio::piped()).stderr(Stdio::null());
        }
        let mut child = command.spawn().unwrap_or_else(|e| panic!("{label}: {e}"));
        let reader: Box<dyn std::io::Read + Send> = if from_stderr {
            Box::new(child.stderr.take().unwrap())
        } else {
            Box::new(child.stdout.take().unwrap())
        };
        let (tx, rx) = mpsc::channel();
        let marker = marker.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if line.contains(&marker) {
                    let _ = tx.send(line);
                }
            }
        });
        let started = Background { child };
        match rx.recv_timeout(STEP) {
            Ok(line) => (started, line),
            Err(_) => panic!("{label} did not say it was ready within {STEP:?}"),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// `python3 -m http.server` on 127.0.0.1 (port 0) serving `dir`: the server and its port.
fn http_server(dir: &Path) -> (Background, u16) {
    let mut command = Command::new("python3");
    command.args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", s(dir), "0"]);
    let (server, line) = Background::start(command, "python3 -m http.server", false, "Serving HTTP on ");
    let port =
        line.split(" port ").nth(1).and_then(|rest| rest.split(' ').next()).and_then(|p| p.parse().ok());
    (server, port.unwrap_or_else(|| panic!("no port in {line:?}")))
}

/// `streamtool pipe tls-listen:127.0.0.1:0,fork,cert=CERT,key=KEY tcp:127.0.0.1:TO`: the
/// relay and the port it listens on.
fn tls_relay(cert: &Path, key: &Path, to: u16) -> (Background, u16) {
    let mut command = Command::new(BIN);
    command.args([
        "pipe",
        &format!("tls-listen:127.0.0.1:0,fork,cert={},key={}", s(cert), s(key)),
        &format!("tcp:127.0.0.1:{to}"),
    ]);
    let (relay, line) = Background::start(command, "streamtool pipe", true, "streamtool: listening on ");
    let port = parse_port(&line).unwrap_or_else(|| panic!("no port in {line:?}"));
    (relay, port)
}

/// What one headless Chromium run printed: the DOM and its stderr.
struct Page {
    dom: String,
    stderr: String,
}

/// `chromium --headless=new --dump-dom URL` with `HOME=home` (so the NSS database it reads
/// is `home/.pki/nssdb`), a fresh profile `home/PROFILE`, and `extra` flags; bounded by
/// `timeout 60`, its whole process group killed afterwards.
fn chromium(home: &Path, profile: &str, url: &str, extra: &[&str]) -> Page {
    let mut command = Command::new("timeout");
    command
        .args(["-k", "5", "60", "chromium", "--headless=new", "--no-sandbox", "--disable-gpu"])
        .arg(format!("--user-data-dir={}", home.join(profile).display()))
        .args(extra)
        .args(["--dump-dom", url])
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("timeout chromium");
    let group = Pid::from_raw(child.id() as i32);
    let out = child.wait_with_output().unwrap();
    let _ = killpg(group, Signal::SIGKILL);
    Page { dom: text(&out.stdout), stderr: text(&out.stderr) }
}

const PAGE_TEXT: &str = "streamtool gen-cert: the page behind the local CA";

/// docs/gen-cert.md, "Which clients enforce the constraints": a temporary HOME whose
/// `~/.pki/nssdb` (made by `certutil -N`) got the local CA by `gen-cert --install
/// --trust-stores nss`; a page served by `python3 -m http.server` behind `streamtool pipe
/// tls-listen:...,fork` with gen-cert's `localhost` leaf. Headless Chromium loads it with
/// no certificate error (the page text is in `--dump-dom`), and a leaf forged with the CA
/// key by openssl for `forged.test` (inside the default constraints) too; the same forgery
/// for `example.com` (outside, mapped to 127.0.0.1 by `--host-resolver-rules`) is
/// refused (`net::ERR_CERT_INVALID`, no page text). A fresh HOME without the CA, and the
/// same HOME after `--uninstall --trust-stores nss`, refuse the `localhost` page
/// (`net::ERR_CERT_AUTHORITY_INVALID`).
#[test]
fn chromium_trusts_the_installed_ca_and_refuses_a_leaf_forged_outside_its_constraints() {
    if !need(&["chromium", "certutil", "openssl", "python3", "timeout"]) {
        return;
    }
    let sandbox = Sandbox::new();
    let home = sandbox.dir.path().join("home");
    let nssdb = home.join(".pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    certutil(&["-N", "-d", &format!("sql:{}", nssdb.display()), "--empty-password"]);
    let www = sandbox.dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("page.html"), format!("<html><body><p>{PAGE_TEXT}</p></body></html>\n")).unwrap();

    let installed = sandbox.gen_ok(&["--install", "--trust-stores", "nss"]);
    assert!(installed.contains(&format!("to the NSS database {}", nssdb.display())), "{installed}");
    sandbox.gen_ok(&["localhost"]);
    let (inside, inside_key) = sandbox.forge("forged.test");
    let (outside, outside_key) = sandbox.forge("example.com");

    let (_http, http_port) = http_server(&www);
    let (_relay, port) =
        tls_relay(&sandbox.file("localhost.pem"), &sandbox.file("localhost-key.pem"), http_port);
    let (_relay_in, port_in) = tls_relay(&inside, &inside_key, http_port);
    let (_relay_out, port_out) = tls_relay(&outside, &outside_key, http_port);
    let localhost = format!("https://localhost:{port}/page.html");

    let fresh = sandbox.dir.path().join("fresh-home");
    std::fs::create_dir(&fresh).unwrap();
    let page = chromium(&fresh, "chrome", &localhost, &[]);
    assert!(!page.dom.contains(PAGE_TEXT), "a fresh HOME loaded the page:\n{}", page.dom);
    assert!(page.stderr.contains("net::ERR_CERT_AUTHORITY_INVALID"), "{}", page.stderr);

    let page = chromium(&home, "chrome-1", &localhost, &[]);
    assert!(page.dom.contains(PAGE_TEXT), "dom:\n{}\nstderr:\n{}", page.dom, page.stderr);
    assert!(!page.stderr.contains("net::ERR_CERT"), "{}", page.stderr);

    let url = format!("https://forged.test:{port_in}/page.html");
    let page = chromium(&home, "chrome-2", &url, &["--host-resolver-rules=MAP forged.test 127.0.0.1"]);
    assert!(page.dom.contains(PAGE_TEXT), "dom:\n{}\nstderr:\n{}", page.dom, page.stderr);

    let url = format!("https://example.com:{port_out}/page.html");
    let page = chromium(&home, "chrome-3", &url, &["--host-resolver-rules=MAP example.com 127.0.0.1"]);
    assert!(!page.dom.contains(PAGE_TEXT), "the forged leaf was accepted:\n{}", page.dom);
    assert!(page.stderr.contains("net::ERR_CERT_INVALID"), "{}", page.stderr);

    sandbox.gen_ok(&["--uninstall", "--trust-stores", "nss"]);
    let page = chromium(&home, "chrome-4", &localhost, &[]);
    assert!(!page.dom.contains(PAGE_TEXT), "loaded after --uninstall:\n{}", page.dom);
    assert!(page.stderr.contains("net::ERR_CERT_AUTHORITY_INVALID"), "{}", page.stderr);
}

/// nginx on 127.0.0.1:`port` (one process, in the foreground) serving `root` over TLS with
/// `cert` (the chain) and `key`, every path under `dir`; returned once a TCP connect to it
/// succeeds (bounded by `STEP`).
fn nginx(dir: &Path, port: u16, root: &Path, cert: &Path, key: &Path) -> Background {
    let d = dir.display();
    let conf = format!(
        "master_process off;\nworker_processes 1;\nerror_log {d}/nginx-error.log info;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/nginx-body;\n  proxy_temp_path {d}/nginx-proxy;\n  \
         fastcgi_temp_path {d}/nginx-fastcgi;\n  uwsgi_temp_path {d}/nginx-uwsgi;\n  scgi_temp_path {d}/nginx-scgi;\n  \
         server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {}; ssl_certificate_key {}; root {}; }}\n}}\n",
        cert.display(),
        key.display(),
        root.display(),
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut child = Command::new("nginx")
        .args(["-e", &format!("{d}/nginx-early.log"), "-c", &format!("{d}/nginx.conf"), "-p", s(dir)])
        .args(["-g", "daemon off;"])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > STEP || child.try_wait().unwrap().is_some() {
            let log = std::fs::read_to_string(dir.join("nginx-error.log")).unwrap_or_default();
            let early = std::fs::read_to_string(dir.join("nginx-early.log")).unwrap_or_default();
            let _ = child.kill();
            panic!("nginx did not listen on {port} within {STEP:?}:\n{early}{log}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Background { child }
}

/// docs/gen-cert.md, "Signing a CSR": a key and request made by `openssl req -new` for
/// `web.test`, signed by `gen-cert --csr --bundle` (the chain file), served by nginx with
/// the request's own key; `curl --cacert CA` fetches the page and `openssl s_client
/// -verify_return_error -verify_hostname web.test -CAfile CA` verifies it (return code
/// 0); without the CA, curl refuses it (exit 60). (A CSR with a broken signature or a name
/// outside the constraints is refused with no file written:
/// `gen_cert_ca::a_csr_with_a_broken_signature_or_a_name_outside_the_constraints_is_refused`.)
#[test]
fn gen_cert_csr_a_request_made_by_openssl_is_signed_and_served_by_nginx() {
    if !need(&["nginx", "openssl", "curl"]) {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.gen_ok(&["--ca-only"]);
    let (csr, key) = sandbox.openssl_csr("web.test");
    sandbox.gen_ok(&["--csr", s(&csr), "--cert-file", "web-chain.pem", "--bundle"]);
    let chain = sandbox.file("web-chain.pem");
    let www = sandbox.dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), format!("{PAGE_TEXT}\n")).unwrap();
    let port = closed_port();
    let _nginx = nginx(sandbox.dir.path(), port, &www, &chain, &key);

    let url = format!("https://web.test:{port}/");
    let resolve = format!("web.test:{port}:127.0.0.1");
    let ca = sandbox.ca_cert();
    let out = sandbox.run(
        "curl",
        &["-sS", "--max-time", "10", "--cacert", s(&ca), "--resolve", &resolve, &url],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "curl: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{PAGE_TEXT}\n"));

    let target = format!("127.0.0.1:{port}");
    let args = [
        "s_client",
        "-connect",
        &target,
        "-servername",
        "web.test",
        "-verify_hostname",
        "web.test",
        "-verify_return_error",
        "-CAfile",
        s(&ca),
    ];
    let out = sandbox.run("openssl", &args, b"");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("Verify return code: 0 (ok)"), "{all}");

    // Without the CA the same server is refused: the CA is what verifies it.
    let out = sandbox.run("curl", &["-sS", "--max-time", "10", "--resolve", &resolve, &url], b"");
    assert_eq!(out.status.code(), Some(60), "curl: {}", text(&out.stderr));
}

/// `vfychain -d sql:DB ARGS -u 1 -a LEAF -a INTERMEDIATE...` (usage 1: an SSL server),
/// each certificate of the file `leaf` given on its own: exit code and output.
fn vfychain(db: &Path, pkix: bool, leaf: &Path) -> (Option<i32>, String) {
    let d = format!("sql:{}", db.display());
    let mut command = Command::new("timeout");
    command.args([LIMIT, "vfychain", "-d", &d]);
    if pkix {
        command.arg("-pp");
    }
    command.args(["-u", "1"]);
    for (n, block) in pem_blocks(leaf).iter().enumerate() {
        let part = leaf.with_extension(format!("{n}.pem"));
        std::fs::write(&part, block).unwrap();
        command.arg("-a").arg(part);
    }
    let out = command.stdin(Stdio::null()).output().unwrap();
    (out.status.code(), format!("{}{}", text(&out.stdout), text(&out.stderr)))
}

/// docs/gen-cert.md, "Which clients enforce the constraints": NSS (the library of Firefox
/// and Chromium's local trust) with the CA (its root) installed by `--install
/// --trust-stores nss`, each leaf given with its intermediate:
/// `vfychain` accepts gen-cert's leaf and a leaf forged with the CA key for `forged.test`
/// ("Chain is good!", exit 0) with both its classic and its libpkix (`-pp`) checkers, and
/// refuses the same forgery for `example.com` with both (exit 1; classic: error -8080, "not
/// permitted to issue a certificate with this name"). Before the install it refuses the
/// leaf gen-cert made (the database is what trusts it).
#[test]
fn gen_cert_nss_vfychain_enforces_the_name_constraints_of_the_installed_ca() {
    if !need(&["vfychain", "certutil", "openssl", "timeout"]) {
        return;
    }
    let sandbox = Sandbox::new();
    let nssdb = sandbox.dir.path().join("home/.pki/nssdb");
    std::fs::create_dir_all(&nssdb).unwrap();
    certutil(&["-N", "-d", &format!("sql:{}", nssdb.display()), "--empty-password"]);
    sandbox.gen_ok(&["localhost"]);
    let leaf = sandbox.file("localhost.pem");
    let (code, out) = vfychain(&nssdb, false, &leaf);
    assert_eq!(code, Some(1), "trusted before the install:\n{out}");

    sandbox.gen_ok(&["--install", "--trust-stores", "nss"]);
    let (inside, _) = sandbox.forge("forged.test");
    let (outside, _) = sandbox.forge("example.com");
    for pkix in [false, true] {
        for good in [&leaf, &inside] {
            let (code, out) = vfychain(&nssdb, pkix, good);
            assert_eq!(code, Some(0), "pkix {pkix}, {}:\n{out}", good.display());
            assert!(out.contains("Chain is good!"), "{out}");
        }
        let (code, out) = vfychain(&nssdb, pkix, &outside);
        assert_eq!(code, Some(1), "pkix {pkix}: the forged leaf was accepted:\n{out}");
        assert!(out.contains("Chain is bad!"), "{out}");
        if !pkix {
            assert!(
                out.contains("ERROR -8080: The Certifying Authority for this certificate is not permitted to issue a certificate with this name."),
                "{out}"
            );
        }
    }
}

/// A TLS client in Java: connects to 127.0.0.1:PORT with SNI and host name check NAME,
/// trusting only the PKCS#12 keystore KEYSTORE (password changeit); prints `verified`, or
/// `refused: ` and the root cause (exit 3). Run as `java Check.java KEYSTORE PORT NAME`.
const JAVA_CHECK: &str = r#"
import java.io.FileInputStream;
import java.security.KeyStore;
import java.util.List;
import javax.net.ssl.*;

public class Check {
    public static void main(String[] args) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(args[0])) { ks.load(in, "changeit".toCharArray()); }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(ks);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket("127.0.0.1", Integer.parseInt(args[1]));
        SSLParameters p = s.getSSLParameters();
        p.setEndpointIdentificationAlgorithm("HTTPS");
        p.setServerNames(List.of(new SNIHostName(args[2])));
        s.setSSLParameters(p);
        try {
            s.startHandshake();
            System.out.println("verified");
        } catch (SSLHandshakeException e) {
            Throwable c = e;
            while (c.getCause() != null) c = c.getCause();
            System.out.println("refused: " + c);
            System.exit(3);
        }
    }
}
"#;

/// Java (`java Check.java`) with the keystore `ks` (holding an unrelated entry), against
/// gen-cert's `localhost` leaf, before and after `--install --trust-stores java
/// --java-keystore`, then against leaves forged with the CA directory's key for
/// `forged.test` and `example.com`: the exit code and output for each of the three.
fn java_verdicts(sandbox: &Sandbox) -> Vec<(Option<i32>, String, String)> {
    let keystore = sandbox.dir.path().join("cacerts.p12");
    let ks = s(&keystore).to_string();
    let gen_args =
        ["-genkeypair", "-alias", "other", "-keyalg", "EC", "-keystore", &ks, "-storepass", "changeit"];
    keytool(&[&gen_args[..], &["-dname", "CN=other", "-noprompt"]].concat());
    std::fs::write(sandbox.file("Check.java"), JAVA_CHECK).unwrap();
    sandbox.gen_ok(&["localhost"]);
    let java = |port: u16, name: &str| {
        let out = sandbox.run("java", &["Check.java", &ks, &port.to_string(), name], b"");
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let leaf = SServer::start(&sandbox.file("localhost.pem"), &sandbox.file("localhost-key.pem"));
    let (code, out, err) = java(leaf.port, "localhost");
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(out.starts_with("refused: ") && out.contains("unable to find valid certification path"), "{out}");

    sandbox.gen_ok(&["--install", "--trust-stores", "java", "--java-keystore", &ks]);
    let (inside, inside_key) = sandbox.forge("forged.test");
    let (outside, outside_key) = sandbox.forge("example.com");
    let forged_in = SServer::start(&inside, &inside_key);
    let forged_out = SServer::start(&outside, &outside_key);
    [(leaf.port, "localhost"), (forged_in.port, "forged.test"), (forged_out.port, "example.com")]
        .into_iter()
        .map(|(port, name)| java(port, name))
        .collect()
}

/// docs/gen-cert.md, "Which clients enforce the constraints": Java (the JDK's PKIX trust
/// manager with a keystore that got the CA's root by `--install --trust-stores java
/// --java-keystore K`) verifies gen-cert's `localhost` leaf and a leaf forged with the CA
/// directory's key (the intermediate's) for `forged.test`, and refuses the same forgery
/// for `example.com` ("name constraints check failed"): Java ignores the constraints of a
/// trust anchor but enforces those of the intermediate below it, which is why a new CA
/// has two levels. Before the install the keystore refuses gen-cert's leaf (exit 3).
#[test]
fn gen_cert_java_refuses_a_leaf_forged_outside_the_constraints_of_the_intermediate() {
    if !need(&["java", "keytool", "openssl"]) {
        return;
    }
    let sandbox = Sandbox::new();
    let verdicts = java_verdicts(&sandbox);
    assert!(sandbox.intermediate().exists(), "a new CA has two levels");
    for (verdict, name) in verdicts.iter().zip(["localhost", "forged.test"]) {
        assert_eq!((verdict.0, verdict.1.as_str()), (Some(0), "verified\n"), "{name}: {}", verdict.2);
    }
    let (code, out, err) = &verdicts[2];
    assert_eq!(*code, Some(3), "the forged example.com leaf was accepted: {out}{err}");
    assert!(out.starts_with("refused: ") && out.contains("name constraints check failed"), "{out}");
}

/// The gap the two-level layout closes, pinned on an old single-root CA directory (made
/// by openssl, constrained to `localhost`, `.test` and 127.0.0.0/8; gen-cert keeps using
/// such a directory as it is): Java verifies the forgery for `example.com` signed
/// directly by the root's key, because it ignores the name constraints of a trust anchor.
/// If a JDK starts refusing it, this test fails and docs/gen-cert.md must change.
#[test]
fn gen_cert_java_ignores_the_name_constraints_of_an_old_single_root_ca() {
    if !need(&["java", "keytool", "openssl"]) {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.old_single_root_ca();
    let verdicts = java_verdicts(&sandbox);
    assert!(!sandbox.intermediate().exists(), "the old directory is used as it is");
    for (verdict, name) in verdicts.iter().zip(["localhost", "forged.test", "example.com"]) {
        assert_eq!((verdict.0, verdict.1.as_str()), (Some(0), "verified\n"), "{name}: {}", verdict.2);
    }
}
