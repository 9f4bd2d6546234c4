//! STARTTLS (`connect --tls --starttls PROTO`, `pipe`'s `tls:...,starttls=PROTO`) against
//! real servers on loopback: aiosmtpd (smtp), dovecot (imap, pop3, lmtp), PostgreSQL,
//! OpenLDAP's slapd (ldap), pyftpdlib (ftp), prosody (xmpp); and against
//! in-test peers that play one protocol's plaintext part byte for byte and then TLS (lmtp,
//! ftp, xmpp, ldap), or misbehave: no STARTTLS, a greeting and then silence, bytes after
//! the go-ahead, control characters in a reply.
//!
//! For each real server: the certificate streamtool sees is verified with `--ca` (name
//! localhost) and is the one `openssl s_client -starttls PROTO` sees (the SHA-256 of the
//! certificate, streamtool's cert pin against `openssl x509 -fingerprint -sha256`), and
//! after the negotiation the connection carries the protocol over TLS (the server's
//! answer to QUIT or LOGOUT arrives on stdout).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use streamtool::streams::tls::{RaggedEofPolicy, TlsStream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::support::certs::PemPki;
use crate::support::cli::{Finished, Input, Proc, STEP, closed_port, poll_until, s, streamtool, tcp_server};
use crate::support::peers::{aiosmtpd_python, need, python_with};
use crate::support::run;

/// Where `name` is installed: on PATH, else in /usr/sbin or /sbin (which a PATH may lack;
/// `need` looks there too).
fn tool(name: &str) -> std::path::PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin"])
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| name.into())
}

/// `streamtool connect --tls --ca CA --starttls PROTO --show-cert -v localhost:PORT`,
/// `extra` flags, `input` on stdin.
async fn connect(pki: &PemPki, proto: &str, port: u16, extra: &[&str], input: &[u8]) -> Finished {
    let target = format!("localhost:{port}");
    let mut args = vec!["-v", "connect", "--tls", "--ca", s(&pki.ca), "--starttls", proto, "--show-cert"];
    args.extend_from_slice(extra);
    args.push(&target);
    streamtool(&args, input).await
}

/// The cert pin `--show-cert` printed (the SHA-256 of the server's certificate), as hex.
fn shown_pin(done: &Finished) -> String {
    let line = done
        .stderr
        .lines()
        .find(|l| l.contains("cert pin: sha256:"))
        .unwrap_or_else(|| panic!("no cert pin in:\n{}", done.stderr));
    let hex = &line[line.find("sha256:").unwrap() + 7..];
    hex.chars().take_while(char::is_ascii_hexdigit).collect()
}

/// The SHA-256 fingerprint of the certificate `openssl s_client -starttls PROTO` sees on
/// `port`, as lower-case hex.
async fn openssl_fingerprint(proto: &str, port: u16, dir: &Path) -> String {
    // s_client's XMPP stream goes to the -connect host unless told otherwise.
    let xmpp = if proto == "xmpp" { "-xmpphost localhost " } else { "" };
    let script = format!(
        "openssl s_client -starttls {proto} {xmpp}-connect 127.0.0.1:{port} -servername localhost </dev/null 2>/dev/null \
         | openssl x509 -noout -fingerprint -sha256"
    );
    let out = tokio::time::timeout(STEP, Command::new("sh").arg("-c").arg(&script).current_dir(dir).output())
        .await
        .expect("openssl s_client timed out")
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = text.split('=').nth(1).unwrap_or_else(|| panic!("no fingerprint from `{script}`: {text}"));
    value.trim().replace(':', "").to_ascii_lowercase()
}

/// Starts a child and reads its stdout lines until one satisfies `ready` (bounded); the
/// child is killed on drop.
async fn start_until(mut command: Command, ready: impl Fn(&str) -> bool) -> (Child, String) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let found = tokio::time::timeout(STEP, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if ready(&line) {
                return Some(line);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(line)) => (child, line),
        _ => {
            let _ = child.start_kill();
            let out = child.wait_with_output().await.unwrap();
            panic!("the server never got ready; stderr:\n{}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

// ---------------------------------------------------------------------------------------
// SMTP: aiosmtpd

const AIOSMTPD: &str = r#"
import asyncio, ssl, sys
from aiosmtpd.smtp import SMTP
from aiosmtpd.handlers import Sink

async def main():
    kwargs = {}
    if len(sys.argv) > 2:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(sys.argv[1], sys.argv[2])
        kwargs = dict(tls_context=ctx, require_starttls=True)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Sink(), hostname="aiosmtpd.test", **kwargs), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"#;

fn aiosmtpd_installed() -> bool {
    crate::support::precondition(
        aiosmtpd_python().is_some(),
        "python3-aiosmtpd is not installed (`.ci/run` installs it)",
    )
}

/// aiosmtpd on a fresh port: with STARTTLS (required) when given the PKI.
async fn aiosmtpd(pki: Option<&PemPki>) -> (Child, u16) {
    let mut command = Command::new(aiosmtpd_python().expect("checked by aiosmtpd_installed"));
    command.arg("-c").arg(AIOSMTPD);
    if let Some(pki) = pki {
        command.arg(&pki.server_cert).arg(&pki.server_key);
    }
    let (child, line) = start_until(command, |l| l.trim().parse::<u16>().is_ok()).await;
    (child, line.trim().parse().unwrap())
}

#[test]
fn smtp_starttls_with_aiosmtpd_verifies_the_certificate_openssl_sees_and_speaks_smtp_over_tls() {
    if !need(&["openssl"]) || !aiosmtpd_installed() {
        return;
    }
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let (_server, port) = aiosmtpd(Some(&pki)).await;
        let done = connect(&pki, "smtp", port, &[], b"EHLO again.test\r\nQUIT\r\n").await;
        done.assert_code(0);
        let out = done.stdout_text();
        // The EHLO after STARTTLS, over TLS: no STARTTLS offered any more (RFC 3207 §4.2),
        // and QUIT's answer.
        assert!(out.starts_with("250-aiosmtpd.test\r\n"), "{out}");
        assert!(!out.contains("STARTTLS"), "{out}");
        assert!(out.ends_with("221 Bye\r\n"), "{out}");
        // -v shows the negotiation, escaped.
        assert!(
            done.stderr.contains(r#"STARTTLS (smtp) C: "EHLO streamtool.localhost\r\n""#),
            "{}",
            done.stderr
        );
        assert!(done.stderr.contains(r#"STARTTLS (smtp) S: "250-STARTTLS\r\n""#), "{}", done.stderr);
        assert!(done.stderr.contains(r#"STARTTLS (smtp) C: "STARTTLS\r\n""#), "{}", done.stderr);
        assert!(done.stderr.contains("Verification: OK"), "{}", done.stderr);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(shown_pin(&done), openssl_fingerprint("smtp", port, dir.path()).await);
    });
}

#[test]
fn smtp_ehlo_name_is_the_one_given() {
    if !aiosmtpd_installed() {
        return;
    }
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let (_server, port) = aiosmtpd(Some(&pki)).await;
        let done = connect(&pki, "smtp", port, &["--ehlo", "client.example"], b"QUIT\r\n").await;
        done.assert_code(0);
        assert!(done.stderr.contains(r#"C: "EHLO client.example\r\n""#), "{}", done.stderr);
        assert_eq!(done.stdout_text(), "221 Bye\r\n");
    });
}

#[test]
fn pipe_tls_endpoint_with_starttls_smtp_relays_over_tls() {
    if !aiosmtpd_installed() {
        return;
    }
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let (_server, port) = aiosmtpd(Some(&pki)).await;
        let endpoint = format!("tls:localhost:{port},starttls=smtp,ca={}", s(&pki.ca));
        let done = streamtool(&["pipe", "-", &endpoint], b"QUIT\r\n").await;
        done.assert_code(0);
        assert_eq!(done.stdout_text(), "221 Bye\r\n");

        // A refusal is the same exit 4 and line as connect's.
        let (_plain, port) = aiosmtpd(None).await;
        let endpoint = format!("tls:localhost:{port},starttls=smtp,ca={}", s(&pki.ca));
        let done = streamtool(&["pipe", "-", &endpoint], b"").await;
        done.assert_code(4);
        assert!(
            done.stderr.contains(&format!(
                "streamtool: STARTTLS (smtp) with localhost:{port}: the server does not offer STARTTLS"
            )),
            "{}",
            done.stderr
        );
    });
}

#[test]
fn smtp_server_without_starttls_is_exit_4_naming_the_server_and_its_reply() {
    if !aiosmtpd_installed() {
        return;
    }
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let (_server, port) = aiosmtpd(None).await;
        let done = connect(&pki, "smtp", port, &[], b"").await;
        done.assert_code(4);
        let line = done.stderr.lines().find(|l| l.starts_with("streamtool: STARTTLS")).unwrap_or_default();
        assert!(
            line.starts_with(&format!(
                "streamtool: STARTTLS (smtp) with localhost:{port}: the server does not offer STARTTLS: \
                 its EHLO reply was \"250-aiosmtpd.test\\r\\n"
            )),
            "{}",
            done.stderr
        );
        assert!(done.stdout.is_empty());
    });
}

// ---------------------------------------------------------------------------------------
// IMAP and POP3: dovecot

/// dovecot in the foreground with a minimal configuration in `dir`: IMAP on `imap`, POP3
/// on `pop3`, LMTP on `lmtp`, the PKI's certificate, no TLS-only ports.
fn dovecot_config(dir: &Path, pki: &PemPki, [imap, pop3, lmtp]: [u16; 3]) -> std::path::PathBuf {
    let d = dir.display();
    let config = format!(
        "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/log\nprotocols = imap pop3 lmtp\n\
         listen = 127.0.0.1\nssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n\
         mail_location = maildir:{d}/mail\n\
         passdb {{\n  driver = static\n  args = nopassword=y\n}}\n\
         userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={d}/home\n}}\n\
         service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
         service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
         service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {lmtp}\n  }}\n}}\n",
        cert = pki.server_cert.display(),
        key = pki.server_key.display(),
    );
    let path = dir.join("dovecot.conf");
    std::fs::write(&path, config).unwrap();
    path
}

async fn dovecot(dir: &Path, pki: &PemPki) -> (Child, [u16; 3]) {
    use std::os::unix::fs::PermissionsExt;
    // The login processes run as dovenull: they need to reach base_dir.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ports = [closed_port(), closed_port(), closed_port()];
    let config = dovecot_config(dir, pki, ports);
    let child = Command::new(tool("dovecot"))
        .arg("-F")
        .arg("-c")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let up =
        poll_until(STEP, || ports.iter().all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok()))
            .await;
    assert!(
        up,
        "dovecot never listened; its log:\n{}",
        std::fs::read_to_string(dir.join("log")).unwrap_or_default()
    );
    (child, ports)
}

#[test]
fn imap_pop3_and_lmtp_starttls_with_dovecot() {
    if !need(&["dovecot", "openssl"]) {
        return;
    }
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let dir = tempfile::tempdir().unwrap();
        let (_dovecot, [imap, pop3, lmtp]) = dovecot(dir.path(), &pki).await;

        let done = connect(&pki, "imap", imap, &[], b"a LOGOUT\r\n").await;
        done.assert_code(0);
        assert_eq!(done.stdout_text(), "* BYE Logging out\r\na OK Logout completed.\r\n");
        assert!(done.stderr.contains(r#"STARTTLS (imap) C: "a2 STARTTLS\r\n""#), "{}", done.stderr);
        assert!(done.stderr.contains(r#"STARTTLS (imap) S: "a2 OK Begin TLS negotiation now.\r\n""#));
        assert_eq!(shown_pin(&done), openssl_fingerprint("imap", imap, dir.path()).await);

        let done = connect(&pki, "pop3", pop3, &[], b"QUIT\r\n").await;
        done.assert_code(0);
        assert_eq!(done.stdout_text(), "+OK Logging out\r\n");
        assert!(done.stderr.contains(r#"STARTTLS (pop3) S: "STLS\r\n""#), "{}", done.stderr);
        assert_eq!(shown_pin(&done), openssl_fingerprint("pop3", pop3, dir.path()).await);

        let done = connect(&pki, "lmtp", lmtp, &[], b"QUIT\r\n").await;
        done.assert_code(0);
        assert_eq!(done.stdout_text(), "221 2.0.0 Bye\r\n");
        assert!(
            done.stderr.contains(r#"STARTTLS (lmtp) C: "LHLO streamtool.localhost\r\n""#),
            "{}",
            done.stderr
        );
        assert_eq!(shown_pin(&done), openssl_fingerprint("lmtp", lmtp, dir.path()).await);

        // The wrong protocol on a real server is a clear error, not a hang.
        let done = connect(&pki, "smtp", imap, &[], b"").await;
        done.assert_code(4);
        assert!(
            done.stderr.contains(&format!(
                "streamtool: STARTTLS (smtp) with localhost:{imap}: unexpected answer to the greeting: \"* OK"
            )),
            "{}",
            done.stderr
        );
    });
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

fn postgres_bin() -> Option<std::path::PathBuf> {
    let mut versions: Vec<_> =
        std::fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path()).collect();
    versions.sort();
    versions.into_iter().rev().map(|v| v.join("bin")).find(|b| b.join("initdb").is_file())
}

#[test]
fn postgres_starttls_speaks_the_protocol_over_tls() {
    let Some(bin) = postgres_bin() else {
        crate::support::precondition(false, "PostgreSQL is not installed (`.ci/run` installs it)");
        return;
    };
    if !need(&["runuser", "openssl"]) {
        return;
    }
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // PostgreSQL refuses to run as root, and wants its key 0600 and its own.
        std::fs::copy(&pki.server_cert, d.join("cert.pem")).unwrap();
        std::fs::copy(&pki.server_key, d.join("key.pem")).unwrap();
        let chown = std::process::Command::new("chown").args(["-R", "postgres:", s(d)]).status().unwrap();
        assert!(chown.success());
        let key_mode =
            std::process::Command::new("chmod").args(["600", s(&d.join("key.pem"))]).status().unwrap();
        assert!(key_mode.success());
        let initdb = tokio::time::timeout(
            Duration::from_secs(60),
            Command::new(tool("runuser"))
                .args(["-u", "postgres", "--"])
                .arg(bin.join("initdb"))
                .args(["-A", "trust", "-U", "postgres", "-D", s(&d.join("data"))])
                .current_dir(d)
                .output(),
        )
        .await
        .expect("initdb timed out")
        .unwrap();
        assert!(initdb.status.success(), "initdb: {}", String::from_utf8_lossy(&initdb.stderr));
        let port = closed_port();
        let mut command = Command::new(tool("runuser"));
        command
            .args(["-u", "postgres", "--"])
            .arg(bin.join("postgres"))
            .args(["-D", s(&d.join("data")), "-p", &port.to_string(), "-k", s(d)])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "ssl=on", "-c", "logging_collector=off"])
            .arg("-c")
            .arg(format!("ssl_cert_file={}", d.join("cert.pem").display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", d.join("key.pem").display()))
            .current_dir(d);
        // Its log goes to stderr: wait there for readiness.
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("ready to accept connections") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "postgres never got ready");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        // A StartupMessage (protocol 3.0, user postgres), then Terminate: the server
        // answers AuthenticationOk ('R', length 8, 0) over TLS, then closes.
        let mut input = Vec::new();
        let body = b"\x00\x03\x00\x00user\x00postgres\x00\x00";
        input.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
        input.extend_from_slice(body);
        input.extend_from_slice(b"X\x00\x00\x00\x04");
        let done = connect(&pki, "postgres", port, &[], &input).await;
        done.assert_code(0);
        assert!(done.stdout.starts_with(b"R\x00\x00\x00\x08\x00\x00\x00\x00"), "{:?}", done.stdout);
        assert!(done.stdout.ends_with(b"Z\x00\x00\x00\x05I"), "ReadyForQuery last: {:?}", done.stdout);
        assert!(done.stderr.contains(r#"STARTTLS (postgres) S: "S""#), "{}", done.stderr);
        assert_eq!(shown_pin(&done), openssl_fingerprint("postgres", port, d).await);
        drop(child);
    });
}

// ---------------------------------------------------------------------------------------
// LDAP: OpenLDAP's slapd

#[test]
fn ldap_starttls_with_slapd() {
    if !need(&["slapd", "openssl"]) {
        return;
    }
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // No database: the root DSE and the StartTLS operation are all this needs.
        let config = format!(
            "include /etc/ldap/schema/core.schema\npidfile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
            d.join("slapd.pid").display(),
            pki.server_cert.display(),
            pki.server_key.display()
        );
        std::fs::write(d.join("slapd.conf"), config).unwrap();
        let port = closed_port();
        let _slapd = Command::new(tool("slapd"))
            .args(["-d", "0", "-h", &format!("ldap://127.0.0.1:{port}/"), "-f", s(&d.join("slapd.conf"))])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let up = poll_until(STEP, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()).await;
        assert!(up, "slapd never listened on {port}");

        // Over TLS: an anonymous simple bind (message 2), answered with success, then an
        // unbind (message 3), after which slapd closes. The unbind goes only once the bind's
        // answer is in: slapd may abandon an operation still pending when an unbind arrives
        // (RFC 4511 4.3), and then closes without answering it.
        let bind = b"\x30\x0c\x02\x01\x02\x60\x07\x02\x01\x03\x04\x00\x80\x00";
        let unbind = b"\x30\x05\x02\x01\x03\x42\x00";
        let answer = b"\x30\x0c\x02\x01\x02\x61\x07\x0a\x01\x00\x04\x00\x04\x00";
        let target = format!("localhost:{port}");
        let args =
            ["-v", "connect", "--tls", "--ca", s(&pki.ca), "--starttls", "ldap", "--show-cert", &target];
        let mut client = Proc::streamtool(&args, Input::Open);
        client.write(bind).await;
        client.wait_stdout(answer).await;
        client.write(unbind).await;
        client.close_stdin();
        let done = client.finish().await;
        done.assert_code(0);
        assert_eq!(done.stdout, answer);
        assert!(
            done.stderr.contains(r#"STARTTLS (ldap) S: "0\x0c\x02\x01\x01x\x07\n\x01\x00\x04\x00\x04\x00""#),
            "{}",
            done.stderr
        );
        assert_eq!(shown_pin(&done), openssl_fingerprint("ldap", port, d).await);
    });
}

// ---------------------------------------------------------------------------------------
// FTP: pyftpdlib

const PYFTPDLIB: &str = r#"
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer
handler = TLS_FTPHandler
handler.certfile = sys.argv[1]
handler.keyfile = sys.argv[2]
handler.authorizer = DummyAuthorizer()
server = FTPServer(("127.0.0.1", 0), handler)
print(server.address[1], flush=True)
server.serve_forever()
"#;

#[test]
fn ftp_auth_tls_with_pyftpdlib() {
    let python = python_with("pyftpdlib");
    if !crate::support::precondition(
        python.is_some(),
        "python3-pyftpdlib is not installed (`.ci/run` installs it)",
    ) || !need(&["openssl"])
    {
        return;
    }
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let mut command = Command::new(python.unwrap());
        command.arg("-c").arg(PYFTPDLIB).arg(&pki.server_cert).arg(&pki.server_key);
        let (_server, line) = start_until(command, |l| l.trim().parse::<u16>().is_ok()).await;
        let port: u16 = line.trim().parse().unwrap();
        let done = connect(&pki, "ftp", port, &[], b"QUIT\r\n").await;
        done.assert_code(0);
        assert_eq!(done.stdout_text(), "221 Goodbye.\r\n");
        assert!(
            done.stderr.contains(r#"STARTTLS (ftp) S: "234 AUTH TLS successful.\r\n""#),
            "{}",
            done.stderr
        );
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(shown_pin(&done), openssl_fingerprint("ftp", port, dir.path()).await);
    });
}

// ---------------------------------------------------------------------------------------
// XMPP: prosody

#[test]
fn xmpp_starttls_with_prosody() {
    if !need(&["prosody", "openssl"]) {
        return;
    }
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = closed_port();
        std::fs::create_dir(d.join("data")).unwrap();
        let config = format!(
            "daemonize = false\nrun_as_root = true\npidfile = \"{d}/prosody.pid\"\ndata_path = \"{d}/data\"\n\
             log = {{ {{ levels = {{ min = \"info\" }}, to = \"console\" }} }}\n\
             c2s_ports = {{ {port} }}\nc2s_interfaces = {{ \"127.0.0.1\" }}\ns2s_ports = {{ }}\n\
             component_ports = {{ }}\nhttp_ports = {{ }}\nhttps_ports = {{ }}\nlegacy_ssl_ports = {{ }}\n\
             c2s_direct_tls_ports = {{ }}\n\
             modules_enabled = {{ \"tls\", \"saslauth\" }}\nmodules_disabled = {{ \"s2s\", \"posix\", \"http\" }}\n\
             c2s_require_encryption = true\n\
             ssl = {{ certificate = \"{cert}\", key = \"{key}\" }}\nVirtualHost \"localhost\"\n",
            d = d.display(),
            cert = pki.server_cert.display(),
            key = pki.server_key.display(),
        );
        std::fs::write(d.join("prosody.cfg.lua"), config).unwrap();
        let mut command = Command::new(tool("prosody"));
        command.arg("--config").arg(d.join("prosody.cfg.lua")).stdin(Stdio::null());
        let (_prosody, _) = start_until(command, |l| l.contains("Activated service 'c2s' on")).await;

        // Over TLS: a new stream (RFC 6120 §5.4.3.3), answered with the server's stream
        // header and the features of an encrypted stream (SASL, no STARTTLS), then closed.
        let input =
            b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' \
                      xmlns:stream='http://etherx.jabber.org/streams'></stream:stream>";
        let done = connect(&pki, "xmpp", port, &[], input).await;
        done.assert_code(0);
        let out = done.stdout_text();
        assert!(out.contains("<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"), "{out}");
        assert!(!out.contains("<starttls"), "{out}");
        assert!(out.ends_with("</stream:stream>"), "{out}");
        assert!(
            done.stderr
                .contains(r#"STARTTLS (xmpp) S: "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>""#)
        );
        assert!(
            done.stderr.contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"),
            "{}",
            done.stderr
        );
        assert_eq!(shown_pin(&done), openssl_fingerprint("xmpp", port, d).await);
    });
}

// ---------------------------------------------------------------------------------------
// In-test peers: a protocol's plaintext part played byte for byte, then TLS

/// One step of a scripted peer.
enum Step {
    /// Send these bytes.
    Send(&'static [u8]),
    /// Read exactly these bytes (else the peer fails).
    Expect(&'static [u8]),
}

/// A peer that plays `steps` in plaintext, then (with `pki`) accepts TLS, reads one line
/// and answers `over TLS: LINE`, and closes. Returns the port; the task fails on a
/// mismatch.
async fn scripted(steps: Vec<Step>, pki: Option<&PemPki>) -> (u16, tokio::task::JoinHandle<()>) {
    let config = pki.map(|p| p.server_options().build().unwrap());
    tcp_server(move |mut tcp: TcpStream| async move {
        for step in steps {
            match step {
                Step::Send(bytes) => tcp.write_all(bytes).await.unwrap(),
                Step::Expect(bytes) => {
                    let mut got = vec![0u8; bytes.len()];
                    tcp.read_exact(&mut got).await.unwrap();
                    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(bytes));
                }
            }
        }
        let Some(config) = config else {
            // Hold the connection, answering nothing, until the client goes.
            while let Ok(1..) = tcp.read(&mut [0u8; 64]).await {}
            return;
        };
        let mut tls =
            TlsStream::accept(tcp, config, RaggedEofPolicy::Strict).await.expect("TLS after STARTTLS");
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") {
            tls.read_exact(&mut byte).await.unwrap();
            line.push(byte[0]);
        }
        tls.write_all(b"over TLS: ").await.unwrap();
        tls.write_all(&line).await.unwrap();
        tls.shutdown().await.unwrap();
    })
    .await
}

async fn scripted_round_trip(proto: &str, steps: Vec<Step>) {
    let pki = PemPki::new(&["localhost"]);
    let (port, peer) = scripted(steps, Some(&pki)).await;
    let done = connect(&pki, proto, port, &[], b"hello\n").await;
    done.assert_code(0);
    assert_eq!(done.stdout_text(), "over TLS: hello\n");
    peer.await.expect("the peer saw exactly the expected negotiation");
}

#[test]
fn lmtp_sends_lhlo() {
    run(scripted_round_trip(
        "lmtp",
        vec![
            Step::Send(b"220 lmtp.test LMTP\r\n"),
            Step::Expect(b"LHLO streamtool.localhost\r\n"),
            Step::Send(b"250-lmtp.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
            Step::Expect(b"STARTTLS\r\n"),
            Step::Send(b"220 2.0.0 Ready to start TLS\r\n"),
        ],
    ));
}

#[test]
fn ftp_auth_tls_with_a_multiline_greeting() {
    run(scripted_round_trip(
        "ftp",
        vec![
            Step::Send(b"220-Welcome\r\n any text\r\n220 ready\r\n"),
            Step::Expect(b"AUTH TLS\r\n"),
            Step::Send(b"234 AUTH TLS successful\r\n"),
        ],
    ));
}

#[test]
fn xmpp_stream_features_and_proceed() {
    run(scripted_round_trip(
        "xmpp",
        vec![
            Step::Expect(
                b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' \
                  xmlns:stream='http://etherx.jabber.org/streams'>",
            ),
            Step::Send(
                b"<?xml version='1.0'?><stream:stream from='localhost' id='1' version='1.0' \
                  xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
            ),
            Step::Send(
                b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>\
                  </stream:features>",
            ),
            Step::Expect(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
            Step::Send(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
        ],
    ));
}

#[test]
fn ldap_extended_request_and_success() {
    run(scripted_round_trip(
        "ldap",
        vec![
            Step::Expect(b"\x30\x1d\x02\x01\x01\x77\x18\x80\x161.3.6.1.4.1.1466.20037"),
            // ExtendedResponse, resultCode success, with the responseName.
            Step::Send(
                b"\x30\x24\x02\x01\x01\x78\x1f\x0a\x01\x00\x04\x00\x04\x00\x8a\x161.3.6.1.4.1.1466.20037",
            ),
        ],
    ));
}

#[test]
fn bytes_after_the_go_ahead_are_refused() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        // The go-ahead and an injected reply in one write: they would be read as if they
        // came over TLS.
        let (port, _peer) = scripted(
            vec![
                Step::Send(b"220 mx.test\r\n"),
                Step::Expect(b"EHLO streamtool.localhost\r\n"),
                Step::Send(b"250-mx.test\r\n250 STARTTLS\r\n"),
                Step::Expect(b"STARTTLS\r\n"),
                Step::Send(b"220 go ahead\r\n250 injected\r\n"),
            ],
            None,
        )
        .await;
        let done = connect(&pki, "smtp", port, &[], b"").await;
        done.assert_code(4);
        assert!(
            done.stderr.contains(&format!(
                "streamtool: STARTTLS (smtp) with localhost:{port}: the server sent 14 bytes after its go-ahead \
                 and before the TLS handshake: \"250 injected\\r\\n\""
            )),
            "{}",
            done.stderr
        );
    });
}

#[test]
fn a_server_that_stalls_after_its_greeting_is_bounded_by_the_handshake_timeout() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let (port, _peer) = scripted(vec![Step::Send(b"* OK imap.test ready\r\n")], None).await;
        let started = std::time::Instant::now();
        let done = connect(&pki, "imap", port, &["--handshake-timeout", "1s"], b"").await;
        done.assert_code(6);
        assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
        assert!(
            done.stderr.contains(&format!(
                "streamtool: STARTTLS (imap) with localhost:{port}: no answer while waiting for the reply to \
                 CAPABILITY: STARTTLS negotiation timed out after 1s"
            )),
            "{}",
            done.stderr
        );
    });
}

#[test]
fn a_server_that_never_greets_is_bounded_too_and_postgres_refusal_is_exit_4() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let (port, _peer) = scripted(vec![], None).await;
        let done = connect(&pki, "smtp", port, &["--handshake-timeout", "1s"], b"").await;
        done.assert_code(6);
        assert!(done.stderr.contains("no answer while waiting for the greeting"), "{}", done.stderr);

        let (port, _peer) =
            scripted(vec![Step::Expect(b"\x00\x00\x00\x08\x04\xd2\x16\x2f"), Step::Send(b"N")], None).await;
        let done = connect(&pki, "postgres", port, &[], b"").await;
        done.assert_code(4);
        assert!(
            done.stderr
                .contains("the server does not offer STARTTLS: it answered \"N\" to SSLRequest (TLS is off)"),
            "{}",
            done.stderr
        );
    });
}

#[test]
fn control_characters_from_the_server_are_escaped_in_logs_and_errors() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let (port, _peer) = scripted(
            vec![
                Step::Send(b"220 \x1b[31mred\x07\r\n"),
                Step::Expect(b"EHLO streamtool.localhost\r\n"),
                Step::Send(b"250 \x1b]0;title\x07\r\n"),
            ],
            None,
        )
        .await;
        let done = connect(&pki, "smtp", port, &[], b"").await;
        done.assert_code(4);
        assert!(!done.stderr.contains('\x1b') && !done.stderr.contains('\x07'), "{:?}", done.stderr);
        assert!(done.stderr.contains(r#"S: "220 \x1b[31mred\x07\r\n""#), "{}", done.stderr);
        assert!(
            done.stderr.contains(r#"does not offer STARTTLS: its EHLO reply was "250 \x1b]0;title\x07\r\n""#),
            "{}",
            done.stderr
        );
    });
}

#[test]
fn starttls_needs_tls_and_ehlo_needs_smtp() {
    run(async {
        let done = streamtool(&["connect", "--starttls", "smtp", "localhost:25"], b"").await;
        done.assert_code(2);
        assert!(
            done.stderr.contains("--starttls needs --tls (no other flag turns TLS on; add --tls)"),
            "{}",
            done.stderr
        );
        let done =
            streamtool(&["connect", "--tls", "--starttls", "imap", "--ehlo", "x.test", "localhost:25"], b"")
                .await;
        done.assert_code(2);
        assert!(done.stderr.contains("--ehlo needs --starttls smtp or --starttls lmtp"), "{}", done.stderr);
        let done = streamtool(&["connect", "--tls", "--starttls", "smtps", "localhost:25"], b"").await;
        done.assert_code(2);
        assert!(done.stderr.contains("unknown STARTTLS protocol \"smtps\""), "{}", done.stderr);
        let done = streamtool(&["pipe", "-", "tcp:localhost:25,starttls=smtp"], b"").await;
        done.assert_code(2);
        assert!(
            done.stderr.contains("starttls applies to tls: and tls-listen: endpoints"),
            "{}",
            done.stderr
        );
        let done = streamtool(&["pipe", "tls-listen:0,starttls=imap", "-"], b"").await;
        done.assert_code(2);
        assert!(
            done.stderr.contains("a tls-listen: endpoint speaks STARTTLS for smtp only"),
            "{}",
            done.stderr
        );
        let done = streamtool(&["serve", "--tls", "--starttls", "imap"], b"").await;
        done.assert_code(2);
        assert!(done.stderr.contains("serve speaks STARTTLS for smtp only, not imap"), "{}", done.stderr);
        let done = streamtool(&["serve", "--starttls", "smtp"], b"").await;
        done.assert_code(2);
        assert!(done.stderr.contains("--starttls needs --tls"), "{}", done.stderr);
        let done = streamtool(&["pipe", "-", "tls:localhost:25,starttls=smtp,ehlo=a b"], b"").await;
        done.assert_code(2);
        assert!(done.stderr.contains("invalid EHLO name"), "{}", done.stderr);
    });
}

// ---------------------------------------------------------------------------------------
// The server side: serve --tls --starttls smtp

async fn smtp_echo_server(pki: &PemPki) -> crate::support::cli::Server {
    crate::support::cli::Server::tls_echo(pki, &["--starttls", "smtp", "-v"]).await
}

#[test]
fn serve_starttls_smtp_is_verified_by_openssl_s_client_and_our_client() {
    if !need(&["openssl"]) {
        return;
    }
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let server = smtp_echo_server(&pki).await;
        // OpenSSL's client: EHLO, STARTTLS, then the handshake, verified against the CA.
        let script = format!(
            "openssl s_client -starttls smtp -connect 127.0.0.1:{} -servername localhost -verify_hostname localhost \
             -CAfile {} -verify_return_error </dev/null 2>&1",
            server.port,
            s(&pki.ca)
        );
        let out = tokio::time::timeout(STEP, Command::new("sh").arg("-c").arg(&script).output())
            .await
            .expect("s_client timed out")
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("Verify return code: 0 (ok)"), "{text}");
        // Ours, through to the echo over TLS.
        let done = connect(&pki, "smtp", server.port, &["--on-eof", "half-close"], b"hello\n").await;
        done.assert_code(0);
        assert_eq!(done.stdout_text(), "hello\n");
        assert!(done.stderr.contains(r#"STARTTLS (smtp) S: "250 STARTTLS\r\n""#), "{}", done.stderr);
        let log = server.proc.stderr();
        assert!(log.contains(r#"STARTTLS (smtp) C: "STARTTLS\r\n""#), "{log}");
    });
}

#[test]
fn serve_starttls_smtp_refuses_commands_before_starttls_and_bytes_after_it() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let server = smtp_echo_server(&pki).await;
        let mut tcp = TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
        let mut reader = BufReader::new(&mut tcp);
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        assert_eq!(line, "220 streamtool ESMTP\r\n");
        // A command other than EHLO, HELO, NOOP, RSET, QUIT and STARTTLS: 530.
        reader.get_mut().write_all(b"MAIL FROM:<a@b>\r\n").await.unwrap();
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        assert_eq!(line, "530 5.7.0 Must issue a STARTTLS command first\r\n");
        // STARTTLS with a command pipelined behind it, in one write: refused.
        reader.get_mut().write_all(b"STARTTLS\r\nRCPT TO:<x@y>\r\n").await.unwrap();
        let mut rest = String::new();
        tokio::time::timeout(STEP, reader.read_to_string(&mut rest))
            .await
            .expect("the server closes")
            .unwrap();
        assert_eq!(rest, "554 5.5.1 Error: command pipelined after STARTTLS\r\n");
        let log = server.proc.wait_stderr("bytes after STARTTLS").await;
        assert!(
            log.contains(
                "STARTTLS (smtp): the client sent 15 bytes after STARTTLS, before the TLS handshake: \
                 \"RCPT TO:<x@y>\\r\\n\""
            ),
            "{log}"
        );
    });
}

#[test]
fn pipe_tls_listen_with_starttls_smtp_terminates_for_a_plain_service() {
    run(async {
        let pki = PemPki::new(&["localhost"]);
        let backend = crate::support::cli::Server::start(&["-k", "--echo"]).await;
        let listen = format!(
            "tls-listen:0,fork,starttls=smtp,cert={},key={}",
            s(&pki.server_cert),
            s(&pki.server_key)
        );
        let proc = crate::support::cli::Proc::streamtool(
            &["pipe", &listen, &format!("tcp:127.0.0.1:{}", backend.port)],
            crate::support::cli::Input::Open,
        );
        let front = crate::support::cli::Server::listening(proc).await;
        let done = connect(&pki, "smtp", front.port, &["--on-eof", "half-close"], b"through\n").await;
        done.assert_code(0);
        assert_eq!(done.stdout_text(), "through\n");
    });
}
