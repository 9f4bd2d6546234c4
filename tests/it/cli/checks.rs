//! Checks a script can trust (issue 24; docs/tls.md, "Checks for scripts"):
//! `connect --require EXPR` against real servers on loopback (`openssl s_server` with a
//! chosen version, group, cipher and ALPN; nginx with a gen-cert certificate that expires
//! in 10 days), `--show-cert`'s key-exchange line, and `gen-cert --inspect --check`.
//! Every clause passes once and fails once with exit 4 and its exact line.

use crate::support::cli::s;
use crate::support::peers::{CLIENT_LIMIT, Done, Job, Lab, need};

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
           (keys: tls, cipher, group, alpn, expires, key, key-bits, san, chain); see `streamtool connect --help`",
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
