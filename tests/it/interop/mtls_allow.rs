//! Client allow-lists for mTLS (issue 23, `--allow-cn`, `--allow-san`, `--allow-spki`,
//! pipe's `allow-cn=`): client certificates made at test time by `gen-cert --client`
//! under the cell's CA, presented by `openssl s_client -cert -key`, `curl --cert --key`
//! and `gnutls-cli --x509certfile --x509keyfile`. Admitted by CN, by DNS SAN and by key
//! pin (the `--sh-exec` command sees `STREAMTOOL_CLIENT_*`); a valid certificate not on
//! the list and no certificate are refused in the handshake, the server's line naming the
//! presented CN and pin; the list survives SIGHUP.

use std::process::Command;
use std::time::Duration;

use crate::support::peers::{Job, Lab, need};

const LIMIT: Duration = Duration::from_secs(60);

/// `gen-cert [--client] NAMES…` in `$D/certs`, signed by the cell's CA in `$D/ca`.
fn gen_cert(lab: &Lab, client: bool, names: &[&str]) {
    let dir = lab.path("certs");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(crate::support::cli::BIN);
    cmd.args(["gen-cert", "--ca-dir"]).arg(lab.path("ca"));
    if client {
        cmd.arg("--client");
    }
    let out = cmd.args(names).current_dir(&dir).output().unwrap();
    assert!(out.status.success(), "gen-cert {names:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The server's certificate (`localhost`) and the clients: alice.test (admitted by CN),
/// carol.test with carol2.test (admitted by that DNS SAN only), dave.test (by key pin),
/// eve.test (on no list). `$CA` is the CA, `$DAVE` dave's key pin.
fn certificates(lab: &mut Lab) {
    gen_cert(lab, false, &["localhost"]);
    for names in [&["alice.test"][..], &["carol.test", "carol2.test"], &["dave.test"], &["eve.test"]] {
        gen_cert(lab, true, names);
    }
    let ca = lab.path("ca/ca.pem").to_str().unwrap().to_string();
    lab.set("CA", &ca);
    let pin = lab.output("openssl x509 -in \"$D/certs/dave.test-client.pem\" -pubkey -noout | openssl pkey -pubin -outform der \
         | openssl dgst -sha256 -r | cut -d' ' -f1",
    );
    lab.set("DAVE", &format!("sha256:{}", pin.trim()));
}

/// `-cert`/`-key` style paths of a client's files: (certificate, key).
fn client(name: &str) -> (String, String) {
    (format!("\"$D/certs/{name}-client.pem\""), format!("\"$D/certs/{name}-client-key.pem\""))
}

/// `openssl s_client` presenting `name`'s certificate (none: no certificate), sending one
/// line; what it received.
fn s_client(lab: &Lab, port: u16, name: Option<&str>) -> String {
    let cert = name.map_or(String::new(), |n| {
        let (c, k) = client(n);
        // -cert_chain: the file's second certificate, gen-cert's intermediate, is sent too.
        format!("-cert {c} -cert_chain {c} -key {k}")
    });
    lab.output(&format!(
            "{{ echo hello; sleep 1; }} | timeout 10 openssl s_client -quiet -no_ign_eof -connect 127.0.0.1:{port} \
             -servername localhost -CAfile \"$CA\" {cert} 2>/dev/null; true"
        ),
    )
}

/// The command each admitted client gets: reads its first line, answers with an HTTP
/// response (for curl) naming the identity variables.
const SHOW_IDENTITY: &str = "read -r line; printf 'HTTP/1.0 200 OK\\r\\n\\r\\nCN=%s SANS=%s SPKI=%s SUBJECT=%s\\n' \
     \"$STREAMTOOL_CLIENT_CN\" \"$STREAMTOOL_CLIENT_SANS\" \"$STREAMTOOL_CLIENT_SPKI\" \"$STREAMTOOL_CLIENT_SUBJECT\"";

/// The server: alice.test by CN, carol2.test by SAN, dave by key pin.
fn serve(lab: &Lab) -> Job {
    lab.serve("serve",
        &format!(
            "exec \"$ST\" serve -k --tls --cert \"$D/certs/localhost.pem\" --key \"$D/certs/localhost-key.pem\" \
             --client-ca \"$CA\" --allow-cn alice.test --allow-san CAROL2.test --allow-spki \"$DAVE\" \
             --sh-exec '{}' 127.0.0.1:$P",
            SHOW_IDENTITY.replace('\'', "'\\''")
        ),
    )
}

/// Admitted by CN (s_client), by DNS SAN (curl) and by key pin (gnutls-cli); each
/// connection's command sees the client's CN, SANs, key pin and subject.
#[test]
fn clients_are_admitted_by_cn_san_and_key_pin() {
    if !need(&["openssl", "curl", "gnutls-cli"]) {
        return;
    }
    let mut lab =
        Lab::new("serve --tls --client-ca --allow-* / s_client, curl, gnutls-cli with client certs");
    certificates(&mut lab);
    let _serve = serve(&lab);
    let alice = s_client(&lab, lab.p, Some("alice.test"));
    assert!(alice.contains("CN=alice.test SANS=DNS:alice.test SPKI=sha256:"), "s_client as alice: {alice:?}");
    assert!(alice.contains("SUBJECT=") && alice.contains("CN=alice.test\n"), "{alice:?}");
    let (c, k) = client("carol.test+1");
    let carol = lab.output(&format!(
        "timeout 10 curl -sS --http1.0 --cacert \"$CA\" --cert {c} --key {k} https://localhost:$P/"
    ));
    assert!(
        carol.starts_with("CN=carol.test SANS=DNS:carol.test,DNS:carol2.test SPKI="),
        "curl as carol: {carol:?}"
    );
    let (c, k) = client("dave.test");
    let dave = lab.output(&format!(
        "{{ echo hello; sleep 1; }} | timeout 10 gnutls-cli --x509cafile \"$CA\" --x509certfile {c} \
             --x509keyfile {k} -p $P localhost 2>/dev/null; true"
    ));
    assert!(dave.contains("CN=dave.test SANS=DNS:dave.test SPKI=sha256:"), "gnutls-cli as dave: {dave:?}");
    let dave_pin = lab.output("echo \"$DAVE\"");
    assert!(dave.contains(&format!("SPKI={}", dave_pin.trim())), "{dave:?} {dave_pin}");
}

/// A valid client certificate on no list, and no certificate at all, are refused in the
/// handshake: the client gets nothing (s_client sees `access_denied`, curl fails), the server logs
/// one line naming the peer and the presented CN and key pin, and goes on serving.
#[test]
fn a_client_not_on_the_list_or_without_a_certificate_is_refused() {
    if !need(&["openssl", "curl"]) {
        return;
    }
    let mut lab = Lab::new("serve --tls --client-ca --allow-* / s_client as eve, and with no certificate");
    certificates(&mut lab);
    let mut serve = serve(&lab);
    assert_eq!(s_client(&lab, lab.p, Some("eve.test")), "", "eve is on no list");
    let line = serve.wait_stderr("not on the allow-list", LIMIT);
    let eve_pin = lab.output(
        "openssl x509 -in \"$D/certs/eve.test-client.pem\" -pubkey -noout | openssl pkey -pubin -outform der \
         | openssl dgst -sha256 -r | cut -d' ' -f1",
    );
    let refusal = line.lines().find(|l| l.contains("not on the allow-list")).unwrap_or_default().to_string();
    assert!(refusal.contains("127.0.0.1:"), "the peer: {refusal}");
    assert!(refusal.contains("CN=eve.test"), "the CN: {refusal}");
    assert!(refusal.contains(&format!("sha256:{}", eve_pin.trim())), "the pin: {refusal}");
    let (c, k) = client("eve.test");
    let alert = lab.output(&format!(
            "{{ echo hello; sleep 1; }} | timeout 10 openssl s_client -connect 127.0.0.1:$P -CAfile \"$CA\" -cert {c} \
             -cert_chain {c} -key {k} 2>&1; true"
        ),
    );
    assert!(alert.contains("alert access denied"), "s_client as eve sees access_denied: {alert}");
    let curl = lab
        .bash(
            "curl",
            &format!(
                "timeout 10 curl -sS --http1.0 --cacert \"$CA\" --cert {c} --key {k} https://localhost:$P/"
            ),
        )
        .wait(LIMIT);
    assert_ne!(curl.code, Some(0), "curl as eve must fail: {}", curl.summary());
    assert_eq!(s_client(&lab, lab.p, None), "", "no certificate");
    let stderr = serve.stderr_now();
    assert!(stderr.matches("TLS handshake").count() >= 3, "each refusal logged: {stderr}");
    // Still serving.
    assert!(s_client(&lab, lab.p, Some("alice.test")).contains("CN=alice.test"));
}

/// pipe's `tls-listen:` with `allow-cn=`: alice gets through to the echo, eve does not.
#[test]
fn a_pipe_listener_with_allow_cn_admits_only_that_name() {
    if !need(&["openssl"]) {
        return;
    }
    let mut lab = Lab::new("pipe tls-listen:...,client-ca=,allow-cn= / s_client");
    certificates(&mut lab);
    let mut pipe = lab.serve("pipe",
        "exec \"$ST\" pipe \"tls-listen:127.0.0.1:$P,fork,cert=$D/certs/localhost.pem,key=$D/certs/localhost-key.pem,\
         client-ca=$CA,allow-cn=alice.test\" exec:cat",
    );
    assert_eq!(s_client(&lab, lab.p, Some("alice.test")), "hello\n");
    assert_eq!(s_client(&lab, lab.p, Some("eve.test")), "");
    pipe.wait_stderr("CN=eve.test", LIMIT);
}

/// SIGHUP rebuilds the server configuration; the allow-list stays: alice is admitted,
/// eve refused, after the reload as before.
#[test]
fn the_allow_list_survives_a_reload() {
    if !need(&["openssl"]) {
        return;
    }
    let mut lab = Lab::new("serve --tls --allow-cn, SIGHUP / s_client");
    certificates(&mut lab);
    let mut serve = lab.serve("serve",
        "exec \"$ST\" serve -k --tls --echo --cert \"$D/certs/localhost.pem\" --key \"$D/certs/localhost-key.pem\" \
         --client-ca \"$CA\" --allow-cn alice.test 127.0.0.1:$P",
    );
    assert_eq!(s_client(&lab, lab.p, Some("alice.test")), "hello\n");
    assert_eq!(s_client(&lab, lab.p, Some("eve.test")), "");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(serve.pid() as i32), nix::sys::signal::Signal::SIGHUP)
        .unwrap();
    serve.wait_stderr("reloaded 1 certificate", LIMIT);
    assert_eq!(s_client(&lab, lab.p, Some("alice.test")), "hello\n", "alice after the reload");
    assert_eq!(s_client(&lab, lab.p, Some("eve.test")), "", "eve after the reload");
    assert_eq!(serve.stderr_now().matches("not on the allow-list").count(), 2);
}
