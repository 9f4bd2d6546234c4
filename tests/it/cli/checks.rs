//! Checks a script can trust (issue 24; docs/tls.md, "Checks for scripts"):
//! `connect --require EXPR` against real servers on loopback (`openssl s_server` with a
//! chosen version, group, cipher and ALPN; nginx with a gen-cert certificate that expires
//! in 10 days), `--show-cert`'s key-exchange line, and `gen-cert --inspect --check`.
//! Every clause passes once and fails once with exit 4 and its exact line.

use crate::support::cli::s;
use crate::support::peers::{CLIENT_LIMIT, Done, Job, Lab, need};
use std::time::Duration;

/// A `openssl s_server -www` on `$P` with the lab's certificate and `flags`, listening.
fn s_server(name: &str, flags: &str) -> Option<(Lab, Job)> {
    if !need(&["openssl"]) {
        return None;
    }
    let lab = Lab::new(name);
    let mut server = lab.sh(
        "s_server",
        &format!(
            "exec openssl s_server -quiet -www {flags} -accept 127.0.0.1:$P -cert \"$CERT\" -key \"$KEY\""
        ),
    );
    lab.wait_listening(lab.p, &mut server);
    Some((lab, server))
}

/// `streamtool connect -z --tls --ca "$CA" ARGS localhost:$P` (`ARGS` as sh words), to its end.
fn zero_io(lab: &Lab, args: &str) -> Done {
    lab.sh("client", &format!("exec \"$ST\" connect -z --tls --ca \"$CA\" {args} localhost:$P"))
        .wait(CLIENT_LIMIT)
}

/// The client exited `code` with exactly these stderr lines and nothing on stdout.
fn assert_outcome(done: &Done, code: i32, lines: &[&str]) {
    let got: Vec<&str> = done.err.lines().collect();
    assert_eq!((done.code, got.as_slice()), (Some(code), lines), "{}", done.summary());
    assert!(done.out.is_empty(), "{}", done.summary());
}

/// The clause holds: exit 0, nothing said.
fn passes(lab: &Lab, args: &str) {
    assert_outcome(&zero_io(lab, args), 0, &[]);
}

/// The clause fails: exit 4 and its one line.
fn fails(lab: &Lab, args: &str, line: &str) {
    assert_outcome(&zero_io(lab, args), 4, &[line]);
}

/// TLS 1.2, P-256, one cipher suite, ALPN h2: every clause against what s_server
/// negotiated, each holding and each failing with its expected and actual values.
#[test]
fn require_clauses_against_s_server_tls12_p256_h2() {
    let Some((lab, _server)) = s_server(
        "--require / s_server -tls1_2 -groups P-256",
        "-tls1_2 -groups P-256 -alpn h2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256",
    ) else {
        return;
    };
    passes(&lab, "--require tls=1.2 --require 'tls<=1.2' --require 'tls>=1.2'");
    fails(
        &lab,
        "--require 'tls>=1.3'",
        "streamtool: --require tls>=1.3 failed: expected TLS 1.3 or newer, got TLSv1.2",
    );
    passes(&lab, "--require group=P-256 --require group=secp256r1");
    fails(
        &lab,
        "--require group=X25519",
        "streamtool: --require group=X25519 failed: expected key exchange X25519, got secp256r1",
    );
    passes(&lab, "--require cipher=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
    fails(
        &lab,
        "--require cipher=TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "streamtool: --require cipher=TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 failed: expected \
         TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, got TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    );
    passes(&lab, "--alpn h2,http/1.1 --require alpn=h2");
    fails(
        &lab,
        "--require alpn=h2",
        "streamtool: --require alpn=h2 failed: expected ALPN h2, got no ALPN protocol",
    );
    passes(&lab, "--require key=ec --require 'key-bits>=256' --require 'key-bits<384'");
    fails(
        &lab,
        "--require key=rsa",
        "streamtool: --require key=rsa failed: expected an RSA key, got an ECDSA P-256 key",
    );
    fails(
        &lab,
        "--require 'key-bits>=2048'",
        "streamtool: --require key-bits>=2048 failed: expected a key of at least 2048 bits, got an ECDSA P-256 key \
         (256 bits)",
    );
    passes(&lab, "--require san=localhost --require san=127.0.0.1");
    fails(
        &lab,
        "--require san=example.com",
        "streamtool: --require san=example.com failed: expected a leaf certificate naming example.com, got one \
         naming DNS:localhost, IP Address:127.0.0.1",
    );
    // s_server sends only the leaf of its -cert file.
    passes(&lab, "--require chain=1");
    fails(
        &lab,
        "--require 'chain>=2'",
        "streamtool: --require chain>=2 failed: expected at least 2 certificates from the peer, got 1 certificate",
    );
    // Several failures: one line each, in the order given; exit 4.
    assert_outcome(
        &zero_io(&lab, "--require 'tls>=1.3' --require chain=1 --require group=X25519"),
        4,
        &[
            "streamtool: --require tls>=1.3 failed: expected TLS 1.3 or newer, got TLSv1.2",
            "streamtool: --require group=X25519 failed: expected key exchange X25519, got secp256r1",
        ],
    );
}

/// TLS 1.3 with X25519 and ChaCha20 (asked for by its IANA name): the version, group and
/// cipher clauses the other way round; `--show-cert` names the group.
#[test]
fn require_clauses_against_s_server_tls13_x25519() {
    let Some((lab, _server)) = s_server(
        "--require / s_server -tls1_3 -groups X25519",
        "-tls1_3 -groups X25519 -ciphersuites TLS_CHACHA20_POLY1305_SHA256",
    ) else {
        return;
    };
    passes(&lab, "--require 'tls>=1.3' --require 'tls>1.2' --require group=X25519");
    passes(
        &lab,
        "--require cipher=TLS_CHACHA20_POLY1305_SHA256 --require cipher=tls13_chacha20_poly1305_sha256",
    );
    fails(&lab, "--require tls=1.2", "streamtool: --require tls=1.2 failed: expected TLS 1.2, got TLSv1.3");
    fails(
        &lab,
        "--require group=P-256",
        "streamtool: --require group=P-256 failed: expected key exchange P-256, got X25519",
    );
    let shown = zero_io(&lab, "--show-cert");
    assert_eq!(shown.code, Some(0), "{}", shown.summary());
    assert!(shown.err.lines().any(|l| l == "Key exchange: X25519"), "{}", shown.summary());
    assert!(shown.err.lines().any(|l| l == "Protocol version: TLSv1.3"), "{}", shown.summary());
}

/// `--show-cert` names the group of a TLS 1.2 handshake too (OpenSSL's `secp256r1` for
/// `-groups P-256`).
#[test]
fn show_cert_names_the_key_exchange_group() {
    let Some((lab, _server)) =
        s_server("--show-cert / s_server -tls1_2 -groups P-256", "-tls1_2 -groups P-256")
    else {
        return;
    };
    let shown = zero_io(&lab, "--show-cert");
    assert_eq!(shown.code, Some(0), "{}", shown.summary());
    let lines: Vec<&str> = shown.err.lines().collect();
    assert_eq!(lines[..3].len(), 3, "{}", shown.summary());
    assert_eq!(lines[0], "Protocol version: TLSv1.2", "{}", shown.summary());
    assert!(lines[1].starts_with("Ciphersuite: TLS_ECDHE_ECDSA_WITH_"), "{}", shown.summary());
    assert_eq!(lines[2], "Key exchange: secp256r1", "{}", shown.summary());
}

/// The checks come before any data: a failed clause in a normal session sends nothing
/// (s_server -www would answer a request) and exits 4; a clause that holds lets the
/// session run.
#[test]
fn require_is_checked_before_any_data() {
    let Some((lab, _server)) = s_server("--require before data / s_server -tls1_2", "-tls1_2") else {
        return;
    };
    let get = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | \"$ST\" connect --tls --ca \"$CA\"";
    let refused = lab.sh("client", &format!("{get} --require 'tls>=1.3' localhost:$P")).wait(CLIENT_LIMIT);
    assert_outcome(
        &refused,
        4,
        &["streamtool: --require tls>=1.3 failed: expected TLS 1.3 or newer, got TLSv1.2"],
    );
    let served = lab.sh("client", &format!("{get} --require tls=1.2 localhost:$P")).wait(CLIENT_LIMIT);
    assert_eq!(served.code, Some(0), "{}", served.summary());
    assert!(served.out.starts_with(b"HTTP/1.0 200 ok\r\n"), "{}", served.summary());
}

/// `--events json`: one `require` event per clause, with `clause`, `ok`, `expected` and
/// `actual` (docs/events.md).
#[test]
fn require_events_carry_each_clause() {
    let Some((lab, _server)) = s_server("--require events / s_server -tls1_2", "-tls1_2") else {
        return;
    };
    let done = zero_io(&lab, "--events json --require tls=1.2 --require 'tls>=1.3'");
    assert_eq!(done.code, Some(4), "{}", done.summary());
    let events: Vec<serde_json::Value> = crate::support::cli::json_events(&done.err)
        .into_iter()
        .filter(|e| e["event"] == "require")
        .map(|mut e| {
            let object = e.as_object_mut().unwrap();
            object.remove("time");
            object.remove("version");
            e
        })
        .collect();
    assert_eq!(
        events,
        vec![
            serde_json::json!({"event": "require", "clause": "tls=1.2", "ok": true, "expected": "TLS 1.2", "actual": "TLSv1.2"}),
            serde_json::json!({"event": "require", "clause": "tls>=1.3", "ok": false, "expected": "TLS 1.3 or newer", "actual": "TLSv1.2"}),
        ],
        "{}",
        done.summary()
    );
    assert!(
        done.err
            .lines()
            .any(|l| l == "streamtool: --require tls>=1.3 failed: expected TLS 1.3 or newer, got TLSv1.2"),
        "{}",
        done.summary()
    );
}

/// A bad clause is a usage error (exit 2) that names it, before any connection; so is
/// `--require` without `--tls`.
#[test]
fn a_bad_clause_is_a_usage_error_naming_it() {
    let lab = Lab::new("--require usage");
    let done = zero_io(&lab, "--require 'tls>=1.4'");
    assert_outcome(
        &done,
        2,
        &[
            "streamtool: invalid value 'tls>=1.4' for '--require <EXPR>': \"tls>=1.4\": unknown TLS version \"1.4\" \
           (expected 1.2 or 1.3); see `streamtool connect --help`",
        ],
    );
    let done = zero_io(&lab, "--require colour=blue");
    assert_outcome(
        &done,
        2,
        &[
            "streamtool: invalid value 'colour=blue' for '--require <EXPR>': \"colour=blue\": unknown key \"colour\" \
           (keys: tls, cipher, group, alpn, expires, key, key-bits, san, chain, ocsp); see `streamtool connect --help`",
        ],
    );
    let done = lab.sh("client", "exec \"$ST\" connect -z --require tls=1.2 localhost:$P").wait(CLIENT_LIMIT);
    assert_outcome(&done, 2, &["streamtool: --require needs --tls (no other flag turns TLS on; add --tls)"]);
}

/// nginx serving a gen-cert certificate made with `--days 10` and `--bundle` (leaf and
/// CA): `expires>` on both sides of 10 days, the chain of 2, TLS 1.3.
#[test]
fn require_expiry_and_chain_against_nginx_with_a_10_day_certificate() {
    if !need(&["nginx", "openssl"]) {
        return;
    }
    let mut lab = Lab::new("--require / nginx with gen-cert --days 10");
    let ca_dir = lab.path("ca");
    lab.set("STREAMTOOL_CA_DIR", s(&ca_dir));
    let made = lab
        .sh("gen-cert", "exec \"$ST\" gen-cert --days 10 --bundle --cert-file short.pem --key-file short-key.pem localhost")
        .wait(CLIENT_LIMIT);
    assert_eq!(made.code, Some(0), "{}", made.summary());
    let d = lab.dir().display().to_string();
    for temp in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(lab.path(&format!("nginx-{temp}"))).unwrap();
    }
    let conf = format!(
        "master_process off;\nworker_processes 1;\nerror_log {d}/nginx-error.log info;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/nginx-body;\n  proxy_temp_path {d}/nginx-proxy;\n  \
         fastcgi_temp_path {d}/nginx-fastcgi;\n  uwsgi_temp_path {d}/nginx-uwsgi;\n  scgi_temp_path {d}/nginx-scgi;\n  \
         server {{ listen 127.0.0.1:{p} ssl; ssl_certificate {d}/short.pem; ssl_certificate_key {d}/short-key.pem; \
         ssl_protocols TLSv1.3; root {d}; }}\n}}\n",
        p = lab.p
    );
    std::fs::write(lab.path("nginx.conf"), conf).unwrap();
    lab.attach("nginx-error.log");
    let mut nginx = lab
        .sh("nginx", "exec nginx -e \"$D/nginx-early.log\" -c \"$D/nginx.conf\" -p \"$D\" -g 'daemon off;'");
    lab.wait_listening(lab.p, &mut nginx);
    let trust = format!("--ca {}", s(&ca_dir.join("ca.pem")));
    let check = |args: &str| {
        lab.sh("client", &format!("exec \"$ST\" connect -z --tls {trust} {args} localhost:$P"))
            .wait(CLIENT_LIMIT)
    };
    assert_outcome(
        &check("--require 'expires>9d' --require chain=2 --require 'tls>=1.3' --require key=ec"),
        0,
        &[],
    );
    let done = check("--require 'expires>30d'");
    assert_eq!(done.code, Some(4), "{}", done.summary());
    let line = done.err.lines().next().unwrap_or_default();
    assert!(
        line.starts_with(
            "streamtool: --require expires>30d failed: expected a leaf certificate valid for more than 30d, got one \
             valid until "
        ) && line.ends_with(" UTC (in 10 days)")
            && done.err.lines().count() == 1,
        "{}",
        done.summary()
    );
    assert_outcome(
        &check("--require chain=1"),
        4,
        &[
            "streamtool: --require chain=1 failed: expected exactly 1 certificate from the peer, got 2 certificates",
        ],
    );
    drop(nginx);
}

/// `gen-cert --inspect FILE --check PERIOD` on gen-cert's own output: a `--days 10`
/// leaf bundled with its CA (`--bundle`) passes a 9-day check silently, and fails a 30-day
/// one with exit 4 and exactly one line, for the leaf (certificate 1 of 2); a check longer
/// than the CA's 10 years names both.
#[test]
fn check_names_each_certificate_expiring_within_the_period() {
    let mut lab = Lab::new("gen-cert --check on gen-cert output");
    let ca_dir = lab.path("ca");
    lab.set("STREAMTOOL_CA_DIR", s(&ca_dir));
    let made = lab
        .sh("gen-cert", "exec \"$ST\" gen-cert --days 10 --bundle --cert-file short.pem --key-file short-key.pem localhost")
        .wait(CLIENT_LIMIT);
    assert_eq!(made.code, Some(0), "{}", made.summary());
    let check = |period: &str| {
        lab.sh("check", &format!("exec \"$ST\" gen-cert --inspect short.pem --check {period}"))
            .wait(CLIENT_LIMIT)
    };
    assert_outcome(&check("9d"), 0, &[]);
    let done = check("30d");
    assert_eq!(done.code, Some(4), "{}", done.summary());
    let lines: Vec<&str> = done.err.lines().collect();
    assert_eq!(lines.len(), 1, "{}", done.summary());
    assert!(
        lines[0].starts_with(
            "streamtool: short.pem: certificate 1 of 2 (O=streamtool development certificate, CN=localhost) expires \
             within 30 days: not after "
        ) && lines[0].ends_with(" UTC (in 10 days)"),
        "{}",
        done.summary()
    );
    assert!(done.out.is_empty(), "{}", done.summary());
    // --expires-within is the same flag; the CA (10 years) is named too past its end.
    let done =
        lab.sh("check", "exec \"$ST\" gen-cert --inspect short.pem --expires-within 600w").wait(CLIENT_LIMIT);
    assert_eq!(done.code, Some(4), "{}", done.summary());
    let lines: Vec<&str> = done.err.lines().collect();
    assert_eq!(lines.len(), 2, "{}", done.summary());
    assert!(
        lines[0].contains(": certificate 1 of 2 (") && lines[0].contains(" expires within 600 weeks: "),
        "{}",
        done.summary()
    );
    assert!(
        lines[1].starts_with(
            "streamtool: short.pem: certificate 2 of 2 (O=streamtool local CA, CN=streamtool local CA "
        ) && lines[1].contains(" expires within 600 weeks: not after "),
        "{}",
        done.summary()
    );
}

/// `--check` on the seed's certificate (`openssl req -x509 ... -days 365`): valid for more
/// than 30 days, not for more than 400; a file with no certificate is exit 1, not 4; a
/// period without a unit is a usage error.
#[test]
fn check_on_the_seed_certificate() {
    if !need(&["openssl"]) {
        return;
    }
    let lab = Lab::new("gen-cert --check on the seed certificate");
    let (cert, key) = crate::support::certs::seed_certificate(lab.dir());
    let check = |file: &std::path::Path, period: &str| {
        lab.sh("check", &format!("exec \"$ST\" gen-cert --inspect '{}' --check {period}", s(file)))
            .wait(CLIENT_LIMIT)
    };
    assert_outcome(&check(&cert, "30d"), 0, &[]);
    let done = check(&cert, "400d");
    assert_eq!(done.code, Some(4), "{}", done.summary());
    let lines: Vec<&str> = done.err.lines().collect();
    assert_eq!(lines.len(), 1, "{}", done.summary());
    let start =
        format!("streamtool: {}: certificate (CN=localhost) expires within 400 days: not after ", s(&cert));
    assert!(lines[0].starts_with(&start) && lines[0].ends_with(" UTC (in 365 days)"), "{}", done.summary());
    let done = check(&key, "30d");
    assert_eq!(done.code, Some(1), "{}", done.summary());
    assert!(done.err.starts_with("streamtool: cannot inspect: "), "{}", done.summary());
    let done = check(&cert, "30");
    assert_eq!(done.code, Some(2), "{}", done.summary());
    assert!(
        done.err.starts_with(
            "streamtool: invalid value '30' for '--check <PERIOD>': \"30\": the period needs a unit"
        ),
        "{}",
        done.summary()
    );
}

// ---- trust on first use ----

/// A lab whose `$XDG_DATA_HOME` is its own directory, so that `--tofu` uses
/// `$D/xdg/streamtool/known_hosts`.
fn tofu_lab(name: &str) -> (Lab, std::path::PathBuf) {
    let mut lab = Lab::new(name);
    let xdg = lab.path("xdg");
    lab.set("XDG_DATA_HOME", s(&xdg));
    (lab, xdg.join("streamtool").join("known_hosts"))
}

/// `serve -k --echo --tls` (a fresh self-signed certificate) on `port`, listening, and the
/// key pin its banner prints.
fn fresh_tls_server(lab: &Lab, name: &str, port: u16) -> (Job, String) {
    let mut server = lab.sh(name, &format!("exec \"$ST\" serve -k --echo --tls 127.0.0.1:{port}"));
    lab.wait_listening(port, &mut server);
    // serve listens before it makes its certificate (the banner names the port), so the
    // banner is complete only once the "listening on" line that follows it is there.
    let banner = server.wait_stderr("listening on", Duration::from_secs(20));
    let pin = banner
        .split("key pin:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no key pin in serve's banner:\n{banner}"))
        .to_string();
    (server, pin)
}

fn tofu_connect(lab: &Lab, name: &str, port: u16) -> Job {
    lab.sh(name, &format!("exec \"$ST\" connect -z --tls --tofu localhost:{port}"))
}

/// First contact records the key pin (one line on stderr says so; the file is 0600 with
/// one `host:port sha256:…` line), a second contact verifies it silently, and a server
/// with another key on the same address is refused with exit 4, both pins, the file and
/// the line; the file is left as it was.
#[test]
fn tofu_records_first_contact_verifies_later_and_refuses_a_changed_key() {
    let (lab, known_hosts) = tofu_lab("--tofu first contact, second contact, changed key");
    let p = lab.p;
    let (first, pin) = fresh_tls_server(&lab, "server-a", p);
    let done = tofu_connect(&lab, "client", p).wait(CLIENT_LIMIT);
    let recorded = format!(
        "streamtool: --tofu: localhost:{p} is a new host: trusted its key on first use and recorded its key pin {pin} \
         in {} line 1",
        s(&known_hosts)
    );
    assert_outcome(&done, 0, &[recorded.as_str()]);
    let entry = format!("localhost:{p} {pin}\n");
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap(), entry);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&known_hosts).unwrap().permissions().mode() & 0o777, 0o600);

    assert_outcome(&tofu_connect(&lab, "client", p).wait(CLIENT_LIMIT), 0, &[]);
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap(), entry);

    drop(first);
    let (_second, other) = fresh_tls_server(&lab, "server-b", p);
    assert_ne!(pin, other);
    let done = tofu_connect(&lab, "client", p).wait(CLIENT_LIMIT);
    let changed = format!(
        "streamtool: --tofu: the key of localhost:{p} changed: {} line 1 has {pin}, the server presented {other}; if \
         the change is expected, delete that line",
        s(&known_hosts)
    );
    assert_outcome(&done, 4, &[changed.as_str()]);
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap(), entry);
}

/// `--tofu --ca`: the chain is verified too. A server whose chain does not lead to the
/// CA given is refused (exit 4, webpki's reason) and not recorded; one that does is
/// recorded.
#[test]
fn tofu_with_ca_verifies_the_chain_too() {
    let (lab, known_hosts) = tofu_lab("--tofu --ca");
    let other = Lab::new("another CA");
    let mut server =
        lab.sh("server", "exec \"$ST\" serve -k --echo --tls --cert \"$CERT\" --key \"$KEY\" 127.0.0.1:$P");
    lab.wait_listening(lab.p, &mut server);
    let other_ca = other_ca_file(&other);
    let refused = lab
        .sh("client", &format!("exec \"$ST\" connect -z --tls --tofu --ca '{}' localhost:$P", s(&other_ca)))
        .wait(CLIENT_LIMIT);
    assert_eq!(refused.code, Some(4), "{}", refused.summary());
    assert!(refused.err.contains("invalid peer certificate"), "{}", refused.summary());
    assert!(!known_hosts.exists(), "a refused server was recorded");
    let done =
        lab.sh("client", "exec \"$ST\" connect -z --tls --tofu --ca \"$CA\" localhost:$P").wait(CLIENT_LIMIT);
    assert_eq!(done.code, Some(0), "{}", done.summary());
    assert!(done.err.contains("is a new host: trusted its key on first use"), "{}", done.summary());
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap().lines().count(), 1);
}

/// The CA file of another lab (`$CA` there).
fn other_ca_file(lab: &Lab) -> std::path::PathBuf {
    let path = lab.path("ca-path");
    let job = lab.sh("ca", "printf '%s' \"$CA\" > \"$D/ca-path\"").wait(CLIENT_LIMIT);
    assert_eq!(job.code, Some(0), "{}", job.summary());
    std::path::PathBuf::from(std::fs::read_to_string(path).unwrap())
}

/// Concurrent first contacts: four clients for each of three servers, all started at
/// once, all exit 0; the file ends with exactly one line per server, each with that
/// server's pin, and exactly one client per server said it recorded it.
#[test]
fn tofu_concurrent_first_contacts_do_not_corrupt_the_file() {
    let (lab, known_hosts) = tofu_lab("--tofu concurrent first contacts");
    let servers: Vec<(u16, Job, String)> = [lab.p, lab.q, lab.n]
        .into_iter()
        .enumerate()
        .map(|(i, port)| {
            let (job, pin) = fresh_tls_server(&lab, &format!("server-{i}"), port);
            (port, job, pin)
        })
        .collect();
    let clients: Vec<Job> = (0..4)
        .flat_map(|round| servers.iter().map(move |(port, _, _)| (round, *port)))
        .map(|(round, port)| tofu_connect(&lab, &format!("client-{port}-{round}"), port))
        .collect();
    assert_eq!(clients.len(), 12);
    let done: Vec<Done> = clients.into_iter().map(|c| c.wait(CLIENT_LIMIT)).collect();
    for d in &done {
        assert_eq!(d.code, Some(0), "{}", d.summary());
    }
    let text = std::fs::read_to_string(&known_hosts).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    let mut expected: Vec<String> =
        servers.iter().map(|(port, _, pin)| format!("localhost:{port} {pin}")).collect();
    expected.sort_unstable();
    assert_eq!(lines, expected, "{text}");
    for (port, _, _) in &servers {
        let said = done.iter().filter(|d| d.err.contains(&format!("localhost:{port} is a new host"))).count();
        assert_eq!(said, 1, "clients of {port} that recorded it");
    }
}

// ---- pipe's tls:HOST:PORT,tofu ----

/// `pipe tls:localhost:PORT,tofu,on-eof=close -`, stdin empty: the handshake, the
/// known-hosts check, and the end.
fn tofu_pipe(lab: &Lab, name: &str, port: u16) -> Job {
    lab.sh(name, &format!("exec \"$ST\" pipe tls:localhost:{port},tofu,on-eof=close - </dev/null"))
}

/// pipe's `tofu` option does what `connect --tofu` does: first contact records the key
/// pin (file 0600, one line, said on stderr), a second contact verifies it, and a server
/// with another key on the same address is refused with exit 4 naming both pins, the file
/// and the line, the file unchanged byte for byte.
#[test]
fn pipe_tls_tofu_records_verifies_and_refuses_a_changed_key() {
    let (lab, known_hosts) = tofu_lab("pipe tls:...,tofu first contact, second contact, changed key");
    let p = lab.p;
    let (first, pin) = fresh_tls_server(&lab, "server-a", p);
    let done = tofu_pipe(&lab, "pipe", p).wait(CLIENT_LIMIT);
    assert_eq!(done.code, Some(0), "{}", done.summary());
    let recorded = format!(
        "streamtool: tofu: localhost:{p} is a new host: trusted its key on first use and recorded its key pin {pin} in {} \
         line 1",
        s(&known_hosts)
    );
    assert!(done.err.contains(&recorded), "{}", done.summary());
    let entry = format!("localhost:{p} {pin}\n");
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap(), entry);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&known_hosts).unwrap().permissions().mode() & 0o777, 0o600);

    let done = tofu_pipe(&lab, "pipe", p).wait(CLIENT_LIMIT);
    assert_eq!(done.code, Some(0), "{}", done.summary());
    assert!(!done.err.contains("new host"), "{}", done.summary());
    let before = std::fs::read(&known_hosts).unwrap();
    assert_eq!(before, entry.as_bytes());

    drop(first);
    let (_second, other) = fresh_tls_server(&lab, "server-b", p);
    assert_ne!(pin, other);
    let done = tofu_pipe(&lab, "pipe", p).wait(CLIENT_LIMIT);
    assert_eq!(done.code, Some(4), "{}", done.summary());
    let changed = format!(
        "streamtool: tofu: the key of localhost:{p} changed: {} line 1 has {pin}, the server presented {other}; if the change \
         is expected, delete that line",
        s(&known_hosts)
    );
    assert!(done.err.contains(&changed), "{}", done.summary());
    assert_eq!(std::fs::read(&known_hosts).unwrap(), before, "the known-hosts file changed");
}

/// `tofu` with `ca=`: the chain is verified too (a server whose chain does not lead to
/// that CA is refused and not recorded); `tofu` only on tls:, never with insecure or pin.
#[test]
fn pipe_tls_tofu_with_ca_and_its_bad_combinations() {
    let (lab, known_hosts) = tofu_lab("pipe tls:...,tofu,ca=");
    let other = Lab::new("another CA for pipe");
    let mut server =
        lab.sh("server", "exec \"$ST\" serve -k --echo --tls --cert \"$CERT\" --key \"$KEY\" 127.0.0.1:$P");
    lab.wait_listening(lab.p, &mut server);
    let other_ca = other_ca_file(&other);
    let refused = lab
        .sh(
            "pipe",
            &format!(
                "exec \"$ST\" pipe tls:localhost:$P,tofu,ca='{}',on-eof=close - </dev/null",
                s(&other_ca)
            ),
        )
        .wait(CLIENT_LIMIT);
    assert_eq!(refused.code, Some(4), "{}", refused.summary());
    assert!(!known_hosts.exists(), "a refused server was recorded");
    let done = lab
        .sh("pipe", "exec \"$ST\" pipe tls:localhost:$P,tofu,ca=\"$CA\",on-eof=close - </dev/null")
        .wait(CLIENT_LIMIT);
    assert_eq!(done.code, Some(0), "{}", done.summary());
    assert!(done.err.contains("is a new host: trusted its key on first use"), "{}", done.summary());
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap().lines().count(), 1);

    for (endpoint, message) in [
        ("tls:localhost:1,tofu,insecure", "tofu cannot be combined with insecure"),
        ("tls:localhost:1,tofu,pin=sha256:", "tofu cannot be combined with pin"),
        ("tcp:localhost:1,tofu", "tofu applies to tls: endpoints"),
    ] {
        let endpoint = if endpoint.ends_with("sha256:") {
            format!("{endpoint}{}", "ab".repeat(32))
        } else {
            endpoint.to_string()
        };
        let done = lab.sh("bad", &format!("exec \"$ST\" pipe - '{endpoint}'")).wait(CLIENT_LIMIT);
        assert_eq!(done.code, Some(2), "{}", done.summary());
        assert!(done.err.contains(message), "{}", done.summary());
    }
}

// ---- --require ocsp ----

/// A CA and a leaf for localhost (openssl), and an OCSP response for the leaf signed by the
/// CA, "good", made by `openssl ocsp` from an index.txt: `$D/ocsp/{ca.pem,leaf.pem,leaf.key,resp.der}`.
const OCSP_PKI: &str = r#"set -e
mkdir -p "$D/ocsp" && cd "$D/ocsp"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
  -subj /CN=ocsp-test-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile leaf.ext 2>/dev/null
serial=$(openssl x509 -in leaf.pem -noout -serial | cut -d= -f2)
end=$(date -u -d "$(openssl x509 -in leaf.pem -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)
printf 'V\t%s\t\t%s\tunknown\t/CN=localhost\n' "$end" "$serial" > index.txt
openssl ocsp -index index.txt -rsigner ca.pem -rkey ca.key -CA ca.pem -issuer ca.pem -cert leaf.pem \
  -respout resp.der -ndays 1 >/dev/null 2>&1
openssl ocsp -respin resp.der -resp_text -noverify | grep -q 'Cert Status: good'
"#;

/// `--require ocsp` holds against `openssl s_server -status_file` (TLS 1.2, where the
/// response comes in a CertificateStatus message, and TLS 1.3, in the leaf's certificate
/// entry) and fails with exit 4 and its line against one that staples nothing.
#[test]
fn require_ocsp_against_s_server_with_and_without_a_stapled_response() {
    if !need(&["openssl"]) {
        return;
    }
    let lab = Lab::new("--require ocsp / s_server -status_file");
    let made = lab.bash("pki", OCSP_PKI).wait(CLIENT_LIMIT);
    assert_eq!(made.code, Some(0), "{}", made.summary());
    let client = "exec \"$ST\" connect -z --tls --ca \"$D/ocsp/ca.pem\" --require ocsp localhost:$P";
    for (version, stapled) in [("-tls1_2", true), ("-tls1_3", true), ("-tls1_3", false), ("-tls1_2", false)] {
        let status = if stapled { "-status_file \"$D/ocsp/resp.der\"" } else { "" };
        let mut server = lab.sh(
            "s_server",
            &format!(
                "exec openssl s_server -quiet -www {version} {status} -accept 127.0.0.1:$P -cert \"$D/ocsp/leaf.pem\" \
                 -key \"$D/ocsp/leaf.key\""
            ),
        );
        lab.wait_listening(lab.p, &mut server);
        let done = lab.sh("client", client).wait(CLIENT_LIMIT);
        if stapled {
            assert_outcome(&done, 0, &[]);
        } else {
            assert_outcome(
                &done,
                4,
                &["streamtool: --require ocsp failed: expected a stapled OCSP response, got none"],
            );
        }
        drop(server);
    }
}
