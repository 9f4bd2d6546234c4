//! Outbound proxies (issue 20, `streamtool::stack::proxy`, docs/proxy.md): `connect
//! --proxy` and `pipe`'s `proxy=` through real proxies on loopback, `microsocks` (SOCKS5,
//! with and without a password) and `tinyproxy` (HTTP CONNECT), to real targets (socat,
//! ncat, `openssl s_server`). Each cell compares the bytes (SHA-256) and exit codes of
//! both sides; the failure cells check the exit code and the one line that names the proxy
//! (credentials redacted) and its answer. `$P` is the target, `$Q` the proxy, `$N` a third
//! port. dante-server is not used: its configuration needs an external interface name and
//! a privileged user, more than a loopback test should assume.

use std::time::{Duration, Instant};

use crate::support::peers::{GET_BIG, Job, Lab, MIB, PEER_BIG, Srv, Want, need};

const SECRET: &str = "pr0xy-s3cret-Zq";

/// microsocks on `$Q`, with a user and password when `auth`.
fn microsocks(auth: bool) -> String {
    let auth = if auth { format!(" -u alice -P {SECRET}") } else { String::new() };
    format!("exec microsocks -i 127.0.0.1 -p $Q{auth}")
}

/// tinyproxy on `$Q` in the foreground, allowing CONNECT to `$P` only.
fn tinyproxy(lab: &Lab) -> String {
    let conf = lab.path("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {q}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nConnectPort {p}\nMaxClients 20\n\
             LogLevel Info\n",
            q = lab.q,
            p = lab.p
        ),
    )
    .unwrap();
    "exec tinyproxy -d -c \"$D/tinyproxy.conf\"".to_string()
}

/// A proxy that keeps serving until the cell ends.
fn proxy_srv<'a>(script: &'a str, lab: &Lab) -> Srv<'a> {
    Srv { script, port: lab.q, code: None, gets: Want::Anything }
}

/// Starts `script` and waits for `port`.
fn start(lab: &Lab, name: &str, script: &str, port: u16) -> Job {
    let mut job = lab.sh(name, script);
    lab.wait_listening(port, &mut job);
    job
}

// ---------------------------------------------------------------------------------------
// SOCKS5 (microsocks)

/// 4 MiB uploaded through `socks5h://` to `socat -u`: the bytes arrive whole, both exit 0.
#[test]
fn socks5h_plain_upload() {
    if !need(&["microsocks", "socat"]) {
        return;
    }
    let mut lab = Lab::new("socat -u / microsocks / cat big | connect --proxy socks5h://");
    let big = lab.big(4 * MIB);
    let proxy = microsocks(false);
    lab.exchange(
        &[
            Srv {
                script: "exec socat -u TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr STDOUT",
                port: lab.p,
                code: Some(0),
                gets: Want::Bytes(&big),
            },
            proxy_srv(&proxy, &lab),
        ],
        "cat \"$BIG\" | \"$ST\" connect --proxy socks5h://127.0.0.1:$Q 127.0.0.1:$P",
        Want::Bytes(b""),
        0,
    );
}

/// 4 MiB downloaded through `socks5://` from `ncat --send-only`: whole, both exit 0.
#[test]
fn socks5_plain_download() {
    if !need(&["microsocks", "ncat"]) {
        return;
    }
    let mut lab = Lab::new("ncat --send-only / microsocks / connect --proxy socks5://");
    let big = lab.big(4 * MIB);
    let proxy = microsocks(false);
    lab.exchange(
        &[
            Srv {
                script: "exec ncat -l 127.0.0.1 $P --send-only < \"$BIG\"",
                port: lab.p,
                code: Some(0),
                gets: Want::Bytes(b""),
            },
            proxy_srv(&proxy, &lab),
        ],
        "\"$ST\" connect --on-eof keep-open --proxy socks5://127.0.0.1:$Q 127.0.0.1:$P < /dev/null",
        Want::Bytes(&big),
        0,
    );
}

/// TLS over a SOCKS5 tunnel verifies the TARGET: `openssl s_server -WWW` serves 8 MiB to
/// `connect --tls --ca CA localhost:P` through microsocks; the body arrives whole.
#[test]
fn socks5h_tls_verifies_the_target() {
    if !need(&["microsocks", "openssl"]) {
        return;
    }
    let mut lab = Lab::new("openssl s_server -WWW / microsocks / connect --tls --proxy socks5h://");
    let big = lab.big(PEER_BIG);
    let proxy = microsocks(false);
    lab.exchange(
        &[
            Srv {
                script: "exec openssl s_server -quiet -WWW -naccept 1 -accept 127.0.0.1:$P -cert \"$CERT\" -key \"$KEY\"",
                port: lab.p,
                code: Some(0),
                gets: Want::Anything,
            },
            proxy_srv(&proxy, &lab),
        ],
        &format!(
            "({GET_BIG}; sleep 0.2) | \"$ST\" connect --tls --ca \"$CA\" --proxy socks5h://127.0.0.1:$Q \
             localhost:$P | (sleep 0.5; cat); exit ${{PIPESTATUS[1]}}"
        ),
        Want::Body(&big),
        0,
    );
}

/// The name checked over the tunnel is the target's: a name the target's certificate does
/// not hold (`--sni wrong.example`) is exit 4, on a line naming the target, not the proxy.
#[test]
fn socks5h_tls_wrong_target_name_is_exit_4_naming_the_target() {
    if !need(&["microsocks", "openssl"]) {
        return;
    }
    let lab = Lab::new("openssl s_server / microsocks / connect --tls --sni wrong.example --proxy");
    let _server = start(
        &lab,
        "server1",
        "exec openssl s_server -quiet -naccept 1 -accept 127.0.0.1:$P -cert \"$CERT\" -key \"$KEY\"",
        lab.p,
    );
    let _proxy = start(&lab, "server2", &microsocks(false), lab.q);
    let done = lab
        .sh(
            "client",
            "exec \"$ST\" connect --tls --ca \"$CA\" --sni wrong.example --proxy socks5h://127.0.0.1:$Q \
             localhost:$P < /dev/null",
        )
        .wait(Duration::from_secs(15));
    let mut check = lab.check();
    check.code(&done, 4);
    let target = format!("localhost:{}", lab.p);
    check.that(
        done.err.contains(&format!("{target}: TLS handshake failed"))
            && done.err.contains("not valid for name \"wrong.example\""),
        format!("stderr does not name the target {target} and the name mismatch"),
    );
    check.that(!done.err.contains(&format!(":{}", lab.q)), "stderr names the proxy's port".to_string());
    check.show(&done).done();
}

/// `socks5h://` sends the name for the proxy to resolve (microsocks logs the name it was
/// asked for); `socks5://` resolves here and sends the address. A name nobody can resolve
/// shows who tried: the proxy's refusal with socks5h, our resolver's error with socks5.
#[test]
fn socks5h_lets_the_proxy_resolve() {
    if !need(&["microsocks", "socat"]) {
        return;
    }
    let lab = Lab::new("microsocks resolves for socks5h://, we resolve for socks5://");
    let proxy = start(&lab, "proxy", &microsocks(false), lab.q);
    let mut check = lab.check();
    for (scheme, asked) in
        [("socks5h", format!("localhost:{}", lab.p)), ("socks5", format!("127.0.0.1:{}", lab.p))]
    {
        let mut server = lab.sh("server", "exec socat -u TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr STDOUT");
        lab.wait_listening(lab.p, &mut server);
        let done = lab
            .sh("client", &format!("printf 'via {scheme}\\n' | exec \"$ST\" connect -4 --proxy {scheme}://127.0.0.1:$Q localhost:$P"))
            .wait(Duration::from_secs(15));
        check.code(&done, 0).show(&done);
        let server = server.wait(Duration::from_secs(8));
        check.gets(&server, &Want::Bytes(format!("via {scheme}\n").as_bytes()));
        let log = format!("{}{}", String::from_utf8_lossy(&proxy.stdout_now()), proxy.stderr_now());
        check.that(
            log.contains(&format!("connected to {asked}")),
            format!("{scheme}: microsocks was not asked for {asked}; its log: {log}"),
        );
    }
    let unresolvable = "no-such-host.invalid:80";
    let done = lab
        .sh(
            "client",
            &format!("exec \"$ST\" connect --proxy socks5h://127.0.0.1:$Q {unresolvable} < /dev/null"),
        )
        .wait(Duration::from_secs(15));
    check.code(&done, 3).show(&done);
    check.that(
        done.err.contains("the proxy refused") && done.err.contains("SOCKS5 reply"),
        "socks5h: the failure is not the proxy's answer".to_string(),
    );
    let done = lab
        .sh(
            "client",
            &format!("exec \"$ST\" connect --proxy socks5://127.0.0.1:$Q {unresolvable} < /dev/null"),
        )
        .wait(Duration::from_secs(15));
    check.code(&done, 3).show(&done);
    check.that(
        done.err.contains("cannot resolve no-such-host.invalid"),
        "socks5: the name was not resolved here".to_string(),
    );
    let proxy = proxy.stop();
    check.show(&proxy).done();
}

/// microsocks with a password: the right one (in the URL, or from
/// STREAMTOOL_PROXY_PASSWORD) gets through; a wrong one is exit 3 saying so in words.
/// The password never shows on stderr, with -vvv and --events json.
#[test]
fn socks5_password_right_wrong_and_never_shown() {
    if !need(&["microsocks", "socat"]) {
        return;
    }
    let mut lab = Lab::new("microsocks -u -P / connect --proxy socks5h://alice:PASSWORD@");
    lab.set("SECRET", SECRET);
    let proxy = start(&lab, "proxy", &microsocks(true), lab.q);
    let mut check = lab.check();
    let clients = [
        "printf 'in the URL\\n' | exec \"$ST\" connect -vvv --events json \
         --proxy \"socks5h://alice:$SECRET@127.0.0.1:$Q\" 127.0.0.1:$P",
        "printf 'from the env\\n' | STREAMTOOL_PROXY_PASSWORD=\"$SECRET\" exec \"$ST\" connect -vvv \
         --events json --proxy socks5h://alice@127.0.0.1:$Q 127.0.0.1:$P",
    ];
    for (client, line) in clients.iter().zip(["in the URL\n", "from the env\n"]) {
        let mut server = lab.sh("server", "exec socat -u TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr STDOUT");
        lab.wait_listening(lab.p, &mut server);
        let done = lab.sh("client", client).wait(Duration::from_secs(15));
        check.code(&done, 0).show(&done);
        check.that(!done.err.contains(SECRET), format!("[{}] shows the password on stderr", done.label));
        check.that(
            done.err.contains("\"proxy\":\"socks5h://***@127.0.0.1:"),
            "no connect event naming the proxy, credentials redacted".to_string(),
        );
        let server = server.wait(Duration::from_secs(8));
        check.gets(&server, &Want::Bytes(line.as_bytes())).show(&server);
    }
    let done = lab
        .sh(
            "client",
            "exec \"$ST\" connect -vvv --events json --proxy \"socks5h://alice:wrong-$SECRET@127.0.0.1:$Q\" \
             127.0.0.1:$P < /dev/null",
        )
        .wait(Duration::from_secs(15));
    check.code(&done, 3).show(&done);
    check.that(!done.err.contains(SECRET), "the wrong password shows on stderr".to_string());
    check.that(
        done.err.contains(&format!(
            "streamtool: cannot connect to 127.0.0.1:{} through proxy socks5h://***@127.0.0.1:{}: the proxy \
             rejected the user name and password",
            lab.p, lab.q
        )),
        "no line naming the proxy (redacted) and the rejected password".to_string(),
    );
    let done = lab
        .sh("client", "exec \"$ST\" connect --proxy socks5h://127.0.0.1:$Q 127.0.0.1:$P < /dev/null")
        .wait(Duration::from_secs(15));
    check.code(&done, 3).show(&done);
    check.that(
        done.err.contains("accepts none of the authentication methods"),
        "no credentials: not said in words".to_string(),
    );
    let proxy = proxy.stop();
    check.show(&proxy).done();
}

// ---------------------------------------------------------------------------------------
// HTTP CONNECT (tinyproxy)

/// 4 MiB uploaded through tinyproxy's CONNECT to `socat -u`: whole, both exit 0.
#[test]
fn http_connect_plain_upload() {
    if !need(&["tinyproxy", "socat"]) {
        return;
    }
    let mut lab = Lab::new("socat -u / tinyproxy / cat big | connect --proxy http://");
    let big = lab.big(4 * MIB);
    let proxy = tinyproxy(&lab);
    lab.attach("proxy.err");
    lab.exchange(
        &[
            Srv {
                script: "exec socat -u TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr STDOUT",
                port: lab.p,
                code: Some(0),
                gets: Want::Bytes(&big),
            },
            proxy_srv(&proxy, &lab),
        ],
        "cat \"$BIG\" | \"$ST\" connect --proxy http://127.0.0.1:$Q 127.0.0.1:$P",
        Want::Bytes(b""),
        0,
    );
}

/// TLS through tinyproxy: `openssl s_server -WWW` serves 8 MiB, verified as localhost.
#[test]
fn http_connect_tls_verifies_the_target() {
    if !need(&["tinyproxy", "openssl"]) {
        return;
    }
    let mut lab = Lab::new("openssl s_server -WWW / tinyproxy / connect --tls --proxy http://");
    let big = lab.big(PEER_BIG);
    let proxy = tinyproxy(&lab);
    lab.exchange(
        &[
            Srv {
                script: "exec openssl s_server -quiet -WWW -naccept 1 -accept 127.0.0.1:$P -cert \"$CERT\" -key \"$KEY\"",
                port: lab.p,
                code: Some(0),
                gets: Want::Anything,
            },
            proxy_srv(&proxy, &lab),
        ],
        &format!(
            "({GET_BIG}; sleep 0.2) | \"$ST\" connect --tls --ca \"$CA\" --proxy http://127.0.0.1:$Q \
             localhost:$P | (sleep 0.5; cat); exit ${{PIPESTATUS[1]}}"
        ),
        Want::Body(&big),
        0,
    );
}

/// A CONNECT tinyproxy refuses (a port not in its ConnectPort list) is exit 3, on a line
/// naming the proxy and its status line.
#[test]
fn http_connect_403_is_exit_3_naming_the_status() {
    if !need(&["tinyproxy"]) {
        return;
    }
    let lab = Lab::new("tinyproxy ConnectPort $P / connect --proxy http:// to $N: 403");
    let proxy = start(&lab, "proxy", &tinyproxy(&lab), lab.q);
    let done = lab
        .sh("client", "exec \"$ST\" connect --proxy http://127.0.0.1:$Q 127.0.0.1:$N < /dev/null")
        .wait(Duration::from_secs(15));
    let mut check = lab.check();
    check.code(&done, 3).show(&done);
    check.that(
        done.err.contains(&format!(
            "streamtool: cannot connect to 127.0.0.1:{} through proxy http://127.0.0.1:{}: the proxy answered \"HTTP/1.",
            lab.n, lab.q
        )) && done.err.contains(" 403 "),
        "no line naming the proxy and its 403 status line".to_string(),
    );
    let proxy = proxy.stop();
    check.show(&proxy).done();
}

// ---------------------------------------------------------------------------------------
// pipe, and a proxy that never answers

/// `pipe tcp-listen:N tcp:127.0.0.1:P,proxy=socks5h://...`: 4 MiB from a plain client
/// reach `socat -u` through microsocks; everyone exits 0.
#[test]
fn pipe_tcp_endpoint_through_socks5h() {
    if !need(&["microsocks", "socat"]) {
        return;
    }
    let mut lab = Lab::new("socat -u / microsocks / pipe tcp-listen tcp:...,proxy=socks5h:// / connect");
    let big = lab.big(4 * MIB);
    let proxy = microsocks(false);
    lab.exchange(
        &[
            Srv {
                script: "exec socat -u TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr STDOUT",
                port: lab.p,
                code: Some(0),
                gets: Want::Bytes(&big),
            },
            proxy_srv(&proxy, &lab),
            Srv {
                script: "exec \"$ST\" pipe tcp-listen:127.0.0.1:$N tcp:127.0.0.1:$P,proxy=socks5h://127.0.0.1:$Q",
                port: lab.n,
                code: Some(0),
                gets: Want::Bytes(b""),
            },
        ],
        "cat \"$BIG\" | \"$ST\" connect 127.0.0.1:$N",
        Want::Bytes(b""),
        0,
    );
}

/// A proxy that accepts and never answers: `-w 1` bounds the whole exchange; exit 6 on a
/// line naming the target and the proxy; the same for HTTP and SOCKS5.
#[test]
fn silent_proxy_is_bounded_by_the_connect_timeout() {
    if !need(&["python3"]) {
        return;
    }
    let lab = Lab::new("python accepts and never answers / connect -w 1 --proxy");
    let proxy = start(
        &lab,
        "proxy",
        "exec python3 -c 'import socket,sys,time\n\
         s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind((\"127.0.0.1\", int(sys.argv[1]))); s.listen(16); held=[]\n\
         while True: held.append(s.accept())' $Q",
        lab.q,
    );
    let mut check = lab.check();
    for (scheme, userinfo) in
        [("socks5h", format!("u:{SECRET}")), ("http", format!("u:{SECRET}")), ("socks4a", "u".to_string())]
    {
        let started = Instant::now();
        let done = lab
            .sh(
                "client",
                &format!("exec \"$ST\" connect -w 1 --proxy {scheme}://{userinfo}@127.0.0.1:$Q example.com:443 < /dev/null"),
            )
            .wait(Duration::from_secs(10));
        let elapsed = started.elapsed();
        check.code(&done, 6).show(&done);
        check.that(elapsed < Duration::from_secs(5), format!("{scheme}: took {elapsed:?} with -w 1"));
        check.that(
            done.err.contains(&format!(
                "streamtool: cannot connect to example.com:443 through proxy {scheme}://***@127.0.0.1:{}: connect \
                 timed out after 1s",
                lab.q
            )),
            format!("{scheme}: no line naming the target, the proxy and the timeout"),
        );
        check.that(!done.err.contains(SECRET), format!("{scheme}: the password shows"));
    }
    let proxy = proxy.stop();
    check.show(&proxy).done();
}

/// The environment is read only with `--proxy-env`: `ALL_PROXY` set and no flag goes
/// direct (microsocks sees nothing); with the flag it goes through microsocks; `NO_PROXY`
/// and `--no-proxy` exempt the target.
#[test]
fn environment_is_read_only_with_proxy_env() {
    if !need(&["microsocks", "socat"]) {
        return;
    }
    let mut lab = Lab::new("ALL_PROXY/NO_PROXY only with --proxy-env");
    lab.set("ALL_PROXY", &format!("socks5h://127.0.0.1:{}", lab.q));
    let proxy = start(&lab, "proxy", &microsocks(false), lab.q);
    let mut check = lab.check();
    let cases = [
        ("\"$ST\" connect -v 127.0.0.1:$P", false),
        ("\"$ST\" connect -v --proxy-env 127.0.0.1:$P", true),
        ("NO_PROXY=localhost,127.0.0.1 \"$ST\" connect -v --proxy-env 127.0.0.1:$P", false),
        ("\"$ST\" connect -v --proxy socks5h://127.0.0.1:$Q --no-proxy 127.0.0.0/8 127.0.0.1:$P", false),
        ("\"$ST\" connect -v --proxy socks5h://127.0.0.1:$Q --no-proxy other.example 127.0.0.1:$P", true),
    ];
    let mut through_before = 0;
    for (i, (client, via_proxy)) in cases.into_iter().enumerate() {
        let mut server = lab.sh("server", "exec socat -u TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr STDOUT");
        lab.wait_listening(lab.p, &mut server);
        let line = format!("case {i}\n");
        let done = lab
            .sh("client", &format!("printf '{}' | {client}", line.escape_default()))
            .wait(Duration::from_secs(15));
        check.code(&done, 0).show(&done);
        let server = server.wait(Duration::from_secs(8));
        check.gets(&server, &Want::Bytes(line.as_bytes())).show(&server);
        let log = String::from_utf8_lossy(&proxy.stdout_now()).into_owned() + &proxy.stderr_now();
        let through = log.matches("connected to").count();
        check.that(
            (through > through_before) == via_proxy,
            format!(
                "[{client}] expected {} the proxy; its log: {log}",
                if via_proxy { "through" } else { "not through" }
            ),
        );
        through_before = through;
    }
    let proxy = proxy.stop();
    check.show(&proxy).done();
}

/// Usage errors that echo a proxy URL (a bad `proxy=` option, another bad option of the
/// same endpoint, a bad `--proxy`) show `***` for its credentials: exit 2, one line, no
/// password.
#[test]
fn usage_errors_never_echo_credentials() {
    crate::support::run(async {
        let proxy = format!("socks5h://alice:{SECRET}@127.0.0.1:1");
        let cases: Vec<Vec<String>> = vec![
            vec!["pipe".into(), format!("tcp:h:1,proxy={proxy},bogus"), "-".into()],
            vec!["pipe".into(), format!("tcp:h:1,proxy=socks5h://alice:{SECRET}@p:x"), "-".into()],
            vec!["pipe".into(), format!("unix:/x,proxy={proxy}"), "-".into()],
            vec!["connect".into(), "--proxy".into(), format!("socks5h://alice:{SECRET}@p:x"), "h:1".into()],
            vec!["connect".into(), "--proxy".into(), proxy.clone(), "unix:/tmp/x".into()],
            vec!["connect".into(), "--proxy".into(), format!("https://alice:{SECRET}@p:1"), "h:1".into()],
        ];
        for args in cases {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let done = crate::support::cli::streamtool(&args, b"").await;
            done.assert_code(2);
            assert!(!done.stderr.contains(SECRET), "{args:?}: {}", done.stderr);
            if done.stderr.contains("://") {
                assert!(done.stderr.contains("***@"), "{args:?}: {}", done.stderr);
            }
        }
    });
}
