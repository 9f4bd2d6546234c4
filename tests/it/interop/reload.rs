//! A TLS terminator run as a service (issue 23, `streamtool::stack::reload`): several
//! certificates chosen by SNI on one `serve -k --tls --echo` and on one `pipe
//! tls-listen:...,fork` (in front of `python3 -m http.server`), seen by `openssl s_client
//! -servername`, `gnutls-cli --sni-hostname` and `curl --resolve`; reloads on SIGHUP under
//! a bounded loop of 200 `s_client` handshakes (every one succeeds, an open connection
//! keeps echoing, new handshakes get the new certificate); a broken key file keeps the old
//! certificate; `--keep-pin` refuses a new key; `reload-on-change` picks up a change with
//! no signal; the `reload` event of `--events json`. Certificates are made at test time
//! by `gen-cert` with a CA of the cell's own.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::cli::json_events;
use crate::support::peers::{Job, Lab, need};

const LIMIT: Duration = Duration::from_secs(60);

/// The three names, in the order they are given to `serve`.
const NAMES: [&str; 3] = ["alpha.test", "beta.test", "*.gamma.test"];

/// The file stem gen-cert gives a name (`*` as `_wildcard`).
fn stem(name: &str) -> String {
    name.replace('*', "_wildcard")
}

/// `gen-cert NAME` in `$D/DIR`, signed by the cell's CA in `$D/ca`.
fn gen_cert(lab: &Lab, dir: &str, name: &str) {
    let dir = lab.path(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(crate::support::cli::BIN)
        .args(["gen-cert", "--ca-dir"])
        .arg(lab.path("ca"))
        .arg(name)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "gen-cert {name}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The three certificates in `$D/certs`, and `$CA3` set to their CA.
fn three_certs(lab: &mut Lab) {
    for name in NAMES {
        gen_cert(lab, "certs", name);
    }
    let ca = lab.path("ca/ca.pem").to_str().unwrap().to_string();
    lab.set("CA3", &ca);
}

/// `--cert X.pem --key X-key.pem` for each name, in order.
fn cert_flags() -> String {
    NAMES
        .iter()
        .map(|n| format!("--cert \"$D/certs/{0}.pem\" --key \"$D/certs/{0}-key.pem\"", stem(n)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What `openssl s_client` sees at `port` with `sni` (none: `-noservername`): the
/// served certificate's SANs and SHA-256 fingerprint, verified against the cell's CA.
fn s_client(lab: &Lab, port: u16, sni: Option<&str>) -> String {
    let sni = match sni {
        Some(name) => format!("-servername {name}"),
        None => "-noservername".to_string(),
    };
    lab.output(&format!(
            "set -o pipefail; timeout 10 openssl s_client -connect 127.0.0.1:{port} {sni} -CAfile \"$CA3\" \
             -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName -fingerprint -sha256"
        ),
    )
}

/// The SHA-256 fingerprint line of a certificate file, as `s_client` prints it.
fn fingerprint(file: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Replaces `$D/certs/X.pem` and `X-key.pem` by `$D/SRC/X.pem` and its key as deploy
/// tools do: each written next to it, then renamed over it.
fn deploy(lab: &Lab, src: &str, name: &str) {
    for file in [format!("{}.pem", stem(name)), format!("{}-key.pem", stem(name))] {
        let tmp = lab.path(&format!("certs/.{file}.tmp"));
        std::fs::copy(lab.path(&format!("{src}/{file}")), &tmp).unwrap();
        std::fs::rename(&tmp, lab.path(&format!("certs/{file}"))).unwrap();
    }
}

fn sighup(job: &Job) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(job.pid() as i32), nix::sys::signal::Signal::SIGHUP)
        .unwrap();
}

/// The `reload` events on a job's stderr (`--events json`).
fn reload_events(job: &Job) -> Vec<serde_json::Value> {
    json_events(&job.stderr_now()).into_iter().filter(|e| e["event"] == "reload").collect()
}

/// Each of three names gets its own certificate from one `serve -k --tls --echo` given
/// three `--cert`/`--key` pairs, as `openssl s_client -servername` and `gnutls-cli
/// --sni-hostname` see it (both verify it against the CA and the name); an unknown name
/// and no SNI get the first pair's.
#[test]
fn serve_picks_the_certificate_by_sni_for_openssl_and_gnutls() {
    if !need(&["openssl", "gnutls-cli"]) {
        return;
    }
    let mut lab = Lab::new("serve -k --tls --echo, three --cert / s_client, gnutls-cli");
    three_certs(&mut lab);
    let _serve =
        lab.serve("serve", &format!("exec \"$ST\" serve -k --tls --echo {} 127.0.0.1:$P", cert_flags()));
    for (sni, want) in [
        (Some("alpha.test"), "DNS:alpha.test"),
        (Some("beta.test"), "DNS:beta.test"),
        (Some("www.gamma.test"), "DNS:*.gamma.test"),
        (Some("unknown.test"), "DNS:alpha.test"),
        (None, "DNS:alpha.test"),
    ] {
        let seen = s_client(&lab, lab.p, sni);
        assert!(seen.contains(want), "SNI {sni:?}: want {want}, s_client saw {seen}");
    }
    for (sni, cn) in
        [("alpha.test", "alpha.test"), ("beta.test", "beta.test"), ("x.gamma.test", "*.gamma.test")]
    {
        let seen = lab.output(&format!(
            "timeout 10 gnutls-cli --x509cafile \"$CA3\" --sni-hostname {sni} --verify-hostname {sni} \
                 -p $P 127.0.0.1 </dev/null 2>&1"
        ));
        assert!(seen.contains(&format!("subject `CN={cn},")), "gnutls-cli SNI {sni}: {seen}");
        assert!(seen.contains("The certificate is trusted"), "gnutls-cli SNI {sni}: {seen}");
    }
}

/// A `pipe tls-listen:...,fork,cert-dir=` terminator in front of python's HTTP server:
/// curl `--resolve NAME:PORT:127.0.0.1 --cacert` gets the page for each name (curl
/// verifies the name) and the certificate of that name; without SNI, s_client gets the
/// directory's first pair by file name (`_wildcard.gamma.test.pem`).
#[test]
fn a_pipe_terminator_serves_a_cert_dir_by_sni_to_curl() {
    if !need(&["openssl", "curl", "python3"]) {
        return;
    }
    let mut lab = Lab::new("curl --resolve / pipe tls-listen,fork,cert-dir= / python3 -m http.server");
    three_certs(&mut lab);
    std::fs::create_dir_all(lab.path("www")).unwrap();
    std::fs::write(lab.path("www/hello.txt"), "hello from python\n").unwrap();
    let mut http = lab.sh("http", "cd \"$D/www\" && exec python3 -m http.server --bind 127.0.0.1 $P");
    lab.wait_listening(lab.p, &mut http);
    let _pipe = lab.serve(
        "pipe",
        "exec \"$ST\" pipe \"tls-listen:127.0.0.1:$Q,fork,cert-dir=$D/certs\" \"tcp:127.0.0.1:$P\"",
    );
    for (name, cn) in
        [("alpha.test", "alpha.test"), ("beta.test", "beta.test"), ("www.gamma.test", "*.gamma.test")]
    {
        let out = lab.output(&format!(
            "timeout 10 curl -sS --resolve {name}:$Q:127.0.0.1 --cacert \"$CA3\" -w '%{{certs}}' \
                 https://{name}:$Q/hello.txt"
        ));
        assert!(out.starts_with("hello from python\n"), "curl {name}: {out}");
        assert!(
            out.contains(&format!("CN = {cn}")) || out.contains(&format!("CN={cn}")),
            "curl {name}: {out}"
        );
    }
    let seen = s_client(&lab, lab.q, None);
    assert!(seen.contains("DNS:*.gamma.test"), "no SNI: the first file by name; s_client saw {seen}");
}

/// Reload under load: 200 `s_client` handshakes for beta.test run one after another
/// while the test deploys a new beta.test certificate and key (new files renamed over the
/// old) and sends SIGHUP; every handshake succeeds, an `s_client` session opened before
/// the reload still echoes after it, the key pin change is warned about with both pins,
/// and handshakes after the reload get the new certificate.
#[test]
fn sighup_reloads_under_a_client_loop_and_no_handshake_fails() {
    if !need(&["openssl"]) {
        return;
    }
    let mut lab = Lab::new("serve -k --tls --echo, SIGHUP under 200 s_client handshakes");
    three_certs(&mut lab);
    gen_cert(&lab, "new", "beta.test");
    let (old, new) =
        (fingerprint(&lab.path("certs/beta.test.pem")), fingerprint(&lab.path("new/beta.test.pem")));
    assert_ne!(old, new);
    let mut serve = lab.serve(
        "serve",
        &format!("exec \"$ST\" serve -k --tls --echo --events json {} 127.0.0.1:$P", cert_flags()),
    );
    // A session open across the reload: "before" now, "after" once $D/go exists.
    let session = lab.bash(
        "session",
        "{ echo before; i=0; while [ ! -e \"$D/go\" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; \
         echo after; sleep 1; } | timeout 60 openssl s_client -quiet -no_ign_eof -connect 127.0.0.1:$P -servername beta.test \
         -CAfile \"$CA3\" -verify_return_error 2>/dev/null",
    );
    let clients = lab.bash(
        "loop",
        "set -o pipefail; for i in $(seq 200); do \
           timeout 10 openssl s_client -connect 127.0.0.1:$P -servername beta.test -CAfile \"$CA3\" \
             -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 \
             || { echo \"handshake $i FAILED\"; exit 1; }; done",
    );
    let done_some = crate::support::peers::wait_for(Duration::from_secs(30), || {
        clients.stdout_now().iter().filter(|b| **b == b'\n').count() >= 20
    });
    assert!(done_some, "the loop made no progress: {}", String::from_utf8_lossy(&clients.stdout_now()));
    deploy(&lab, "new", "beta.test");
    sighup(&serve);
    let err = serve.wait_stderr("reloaded 3 certificates (SIGHUP)", LIMIT);
    std::fs::write(lab.path("go"), "").unwrap();
    let done = clients.wait(Duration::from_secs(120));
    assert_eq!(done.code, Some(0), "{}", done.summary());
    let seen = String::from_utf8_lossy(&done.out).into_owned();
    assert_eq!(seen.lines().count(), 200, "200 handshakes: {seen}");
    assert!(seen.lines().all(|l| l == old || l == new), "only the two certificates: {seen}");
    assert_eq!(seen.lines().last(), Some(new.as_str()), "the last handshakes get the new one");
    let session = session.wait(LIMIT);
    assert_eq!(session.code, Some(0), "{}", session.summary());
    assert_eq!(String::from_utf8_lossy(&session.out), "before\nafter\n", "{}", session.summary());
    assert!(err.contains("THE KEY PIN OF") && err.contains(" -> sha256:"), "the pin change is warned: {err}");
    assert!(s_client(&lab, lab.p, Some("beta.test")).contains(&new));
    let events = reload_events(&serve);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["ok"], true);
    let change = &events[0]["changes"][0];
    assert!(change["name"].as_str().unwrap().ends_with("beta.test.pem"), "{events:?}");
    assert_ne!(change["old_key_sha256"], change["new_key_sha256"]);
}

/// A broken key file deployed and SIGHUP: one line says why, the old certificate is
/// still served (handshakes succeed), and the `reload` event says `ok: false` with the
/// error.
#[test]
fn a_broken_key_keeps_the_old_certificate() {
    if !need(&["openssl"]) {
        return;
    }
    let mut lab = Lab::new("serve --tls, a broken key and SIGHUP");
    three_certs(&mut lab);
    let old = fingerprint(&lab.path("certs/beta.test.pem"));
    let mut serve = lab.serve(
        "serve",
        &format!("exec \"$ST\" serve -k --tls --echo --events json {} 127.0.0.1:$P", cert_flags()),
    );
    std::fs::write(lab.path("certs/.broken"), "-----BEGIN PRIVATE KEY-----\nnot base64\n").unwrap();
    std::fs::rename(lab.path("certs/.broken"), lab.path("certs/beta.test-key.pem")).unwrap();
    sighup(&serve);
    let err = serve.wait_stderr("reload (SIGHUP) failed", LIMIT);
    let line = err.lines().find(|l| l.contains("reload (SIGHUP) failed")).unwrap();
    assert!(
        line.contains("still serving the certificates loaded before") && line.contains("beta.test-key.pem"),
        "{line}"
    );
    assert!(s_client(&lab, lab.p, Some("beta.test")).contains(&old));
    let events = reload_events(&serve);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["ok"], false);
    assert!(events[0]["error"].as_str().unwrap().contains("beta.test-key.pem"), "{events:?}");
}

/// `--keep-pin`: SIGHUP with the same files reloads; a new key is refused (a line names
/// both pins), the old certificate stays, and the event has `ok: false` and the change.
#[test]
fn keep_pin_refuses_a_new_key_and_keeps_the_old_certificate() {
    if !need(&["openssl"]) {
        return;
    }
    let mut lab = Lab::new("serve --tls --keep-pin, a new key and SIGHUP");
    three_certs(&mut lab);
    gen_cert(&lab, "new", "beta.test");
    let old = fingerprint(&lab.path("certs/beta.test.pem"));
    let mut serve = lab.serve(
        "serve",
        &format!("exec \"$ST\" serve -k --tls --echo --keep-pin --events json {} 127.0.0.1:$P", cert_flags()),
    );
    sighup(&serve);
    serve.wait_stderr("reloaded 3 certificates (SIGHUP)", LIMIT);
    deploy(&lab, "new", "beta.test");
    sighup(&serve);
    let err = serve.wait_stderr("--keep-pin refused", LIMIT);
    let line = err.lines().find(|l| l.contains("--keep-pin refused")).unwrap();
    assert!(line.contains("beta.test.pem") && line.matches("sha256:").count() == 2, "{line}");
    assert!(s_client(&lab, lab.p, Some("beta.test")).contains(&old));
    let events = reload_events(&serve);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!((events[0]["ok"].clone(), events[1]["ok"].clone()), (true.into(), false.into()));
    assert_eq!(events[1]["changes"].as_array().unwrap().len(), 1, "{events:?}");
}

/// `reload-on-change` on a pipe terminator (to `serve --echo`): a new certificate deployed is served within
/// a few seconds with no signal, and the `reload` event says so.
#[test]
fn reload_on_change_picks_up_a_new_certificate_without_a_signal() {
    if !need(&["openssl"]) {
        return;
    }
    let mut lab = Lab::new("pipe tls-listen,fork,cert=...,reload-on-change");
    three_certs(&mut lab);
    gen_cert(&lab, "new", "beta.test");
    let new = fingerprint(&lab.path("new/beta.test.pem"));
    let certs: Vec<String> =
        NAMES.iter().map(|n| format!("cert=$D/certs/{0}.pem,key=$D/certs/{0}-key.pem", stem(n))).collect();
    let _backend = lab.serve("backend", "exec \"$ST\" serve -k --echo 127.0.0.1:$Q");
    let mut pipe = lab.serve(
        "pipe",
        &format!(
            "exec \"$ST\" pipe --events json \"tls-listen:127.0.0.1:$P,fork,reload-on-change,{}\" \
             \"tcp:127.0.0.1:$Q\"",
            certs.join(",")
        ),
    );
    deploy(&lab, "new", "beta.test");
    pipe.wait_stderr("reloaded 3 certificates (a file changed)", Duration::from_secs(20));
    assert!(s_client(&lab, lab.p, Some("beta.test")).contains(&new));
    let events = reload_events(&pipe);
    assert!(
        events.iter().any(|e| e["ok"] == true && e["changes"].as_array().is_some_and(|c| c.len() == 1)),
        "{events:?}"
    );
}

/// SIGHUP loads `--client-ca` again too: a client certificate from a second CA is
/// refused until that CA's certificate is deployed as the `--client-ca` file, then
/// admitted (`openssl s_client -cert`, its line echoed back).
#[test]
fn sighup_reloads_the_client_ca() {
    if !need(&["openssl"]) {
        return;
    }
    let mut lab = Lab::new("serve --tls --client-ca --require-client-cert, the CA replaced and SIGHUP");
    three_certs(&mut lab);
    let dir = lab.path("client");
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(crate::support::cli::BIN)
        .args(["gen-cert", "--client", "--ca-dir"])
        .arg(lab.path("ca2"))
        .arg("alice@example.test")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "gen-cert --client: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::copy(lab.path("ca/ca.pem"), lab.path("client-ca.pem")).unwrap();
    let mut serve = lab.serve(
        "serve",
        &format!(
            "exec \"$ST\" serve -k --tls --echo --client-ca \"$D/client-ca.pem\" --require-client-cert {} \
             127.0.0.1:$P",
            cert_flags()
        ),
    );
    let client = "{ echo hello; sleep 1; } | timeout 10 openssl s_client -quiet -no_ign_eof -connect 127.0.0.1:$P -servername alpha.test \
                  -CAfile \"$CA3\" -cert \"$D/client/alice@example.test-client.pem\" \
                  -cert_chain \"$D/client/alice@example.test-client.pem\" -key \"$D/client/alice@example.test-client-key.pem\" 2>/dev/null; true";
    assert_eq!(lab.output(client), "", "a client of another CA is refused");
    std::fs::copy(lab.path("ca2/ca.pem"), lab.path(".client-ca.tmp")).unwrap();
    std::fs::rename(lab.path(".client-ca.tmp"), lab.path("client-ca.pem")).unwrap();
    sighup(&serve);
    serve.wait_stderr("reloaded 3 certificates (SIGHUP)", LIMIT);
    assert_eq!(lab.output(client), "hello\n", "admitted once its CA is the --client-ca");
}

/// The self-signed certificate (no --cert) has nothing to reload: SIGHUP says so in a
/// line and the server goes on with the same certificate.
#[test]
fn sighup_to_a_self_signed_server_says_there_is_nothing_to_reload() {
    if !need(&["openssl"]) {
        return;
    }
    let lab = Lab::new("serve -k --tls (self-signed), SIGHUP");
    let mut serve = lab.serve("serve", "exec \"$ST\" serve -k --tls --echo 127.0.0.1:$P");
    let fingerprint = "timeout 10 openssl s_client -connect 127.0.0.1:$P </dev/null 2>/dev/null \
                       | openssl x509 -noout -fingerprint -sha256";
    let before = lab.output(fingerprint);
    sighup(&serve);
    serve.wait_stderr("SIGHUP: nothing to reload for the self-signed certificate", LIMIT);
    assert_eq!(lab.output(fingerprint), before);
    assert!(before.contains("Fingerprint="), "{before}");
}

/// Flags that do not fit together are usage errors (exit 2, one line naming them):
/// more keys than certificates, `--reload-on-change` without a certificate file, an
/// allow-list on a pipe listener without `client-ca=`.
#[test]
fn flags_that_do_not_fit_together_are_usage_errors() {
    let lab = Lab::new("serve/pipe reload flags that do not fit");
    for (name, script) in [
        ("keys", "exec \"$ST\" serve --tls --cert \"$CERT\" --cert \"$CERT\" --key \"$KEY\" 127.0.0.1:0"),
        ("reload", "exec \"$ST\" serve --tls --reload-on-change 127.0.0.1:0"),
        (
            "allow",
            "exec \"$ST\" pipe \"tls-listen:127.0.0.1:0,cert=$CERT,key=$KEY,allow-cn=alice\" tcp:127.0.0.1:$Q",
        ),
    ] {
        let done = lab.sh(name, script).wait(LIMIT);
        assert_eq!(done.code, Some(2), "{}", done.summary());
        assert_eq!(done.err.trim().lines().count(), 1, "{}", done.summary());
    }
}
