//! The knobs a long-running client or listener needs (issue 23, `streamtool::stack::service`):
//! `--source` seen by a real server (ncat's `--exec` environment), `--keepalive` on both
//! ends as `ss -o` shows it, two `serve --reuse-port` processes on one port with one
//! drained by SIGTERM while ncat clients keep succeeding, socket activation with systemd's
//! own `systemd-socket-activate`, and `--retry` until a server appears.

use std::time::Duration;

use crate::support::peers::{Job, Lab, need, wait_for};

const LIMIT: Duration = Duration::from_secs(30);

fn start(lab: &Lab, name: &str, script: &str, port: u16) -> Job {
    let mut job = lab.sh(name, script);
    lab.wait_listening(port, &mut job);
    job
}

/// `connect --source 127.0.0.2` and `source=127.0.0.3:PORT` on a pipe endpoint: ncat's
/// `--sh-exec` environment (`NCAT_REMOTE_ADDR`, `NCAT_REMOTE_PORT`) names the source asked
/// for; a source of the other family than the target is one line and exit 3.
#[test]
fn source_address_is_what_the_server_sees() {
    if !need(&["ncat"]) {
        return;
    }
    let lab = Lab::new("connect --source / ncat --sh-exec 'echo $NCAT_REMOTE_ADDR'");
    let _server = start(
        &lab,
        "ncat",
        "exec ncat -l -k 127.0.0.1 $P --sh-exec 'echo \"$NCAT_REMOTE_ADDR $NCAT_REMOTE_PORT\"'",
        lab.p,
    );
    let done = lab
        .sh("connect", "exec \"$ST\" connect --no-shutdown --source 127.0.0.2 127.0.0.1:$P < /dev/null")
        .wait(LIMIT);
    assert_eq!(done.code, Some(0), "{}", done.summary());
    assert!(String::from_utf8_lossy(&done.out).starts_with("127.0.0.2 "), "{}", done.summary());
    let port = crate::support::cli::closed_port();
    let piped = lab
        .sh(
            "pipe",
            &format!(
                "exec \"$ST\" pipe tcp:127.0.0.1:$P,source=127.0.0.3:{port},on-eof=keep-open - < /dev/null"
            ),
        )
        .wait(LIMIT);
    assert_eq!(piped.code, Some(0), "{}", piped.summary());
    assert_eq!(
        String::from_utf8_lossy(&piped.out).trim(),
        format!("127.0.0.3 {port}"),
        "{}",
        piped.summary()
    );
    let wrong = lab.sh("v6", "exec \"$ST\" connect --source ::1 127.0.0.1:$P < /dev/null").wait(LIMIT);
    assert_eq!(wrong.code, Some(3), "{}", wrong.summary());
    assert!(wrong.err.contains("no IPv6 address to connect to from [::1]:0"), "{}", wrong.summary());
    assert_eq!(wrong.err.trim().lines().count(), 1, "{}", wrong.summary());
}

/// The keepalive timer of each established connection whose local port is `port` (or
/// whose peer port is, with `peer`), as `ss -tno` prints it.
fn keepalive_timers(port: u16, peer: bool) -> Vec<String> {
    let side = if peer { "dport" } else { "sport" };
    let out = std::process::Command::new("ss")
        .args(["-tnoH", "state", "established", &format!("( {side} = :{port} )")])
        .output()
        .expect("ss runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("timer:(keepalive"))
        .map(str::to_string)
        .collect()
}

/// `serve --keepalive=7s` and `connect --keepalive=9s`: each end's socket has a
/// keepalive timer (the accepted one set through the listener); a connection without the
/// flag has none (the check can fail).
#[test]
fn keepalive_is_on_for_accepted_and_connected_sockets() {
    if !need(&["ss"]) {
        return;
    }
    let lab = Lab::new("serve --keepalive / connect --keepalive, seen by ss -o");
    let fifo = lab.path("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // A writer that holds the fifo open: the clients' stdin stays open while ss looks.
    let _holder = lab.sh("holder", "exec sleep 30 > \"$D/fifo\"");
    let _server = start(&lab, "serve", "exec \"$ST\" serve -k --echo --keepalive=7s 127.0.0.1:$P", lab.p);
    let _client = lab.sh("connect", "exec \"$ST\" connect --keepalive=9s 127.0.0.1:$P < \"$D/fifo\"");
    let both = wait_for(Duration::from_secs(10), || {
        keepalive_timers(lab.p, false).len() == 1 && keepalive_timers(lab.p, true).len() == 1
    });
    assert!(
        both,
        "server side: {:?}, client side: {:?}",
        keepalive_timers(lab.p, false),
        keepalive_timers(lab.p, true)
    );
    let _plain = start(&lab, "plain", "exec \"$ST\" serve -k --echo 127.0.0.1:$Q", lab.q);
    let _other = lab.sh("other", "exec \"$ST\" connect 127.0.0.1:$Q < \"$D/fifo\"");
    let connected = wait_for(Duration::from_secs(10), || {
        let out = std::process::Command::new("ss")
            .args(["-tnoH", "state", "established", &format!("( dport = :{} )", lab.q)])
            .output()
            .unwrap();
        !out.stdout.is_empty()
    });
    assert!(connected);
    assert!(keepalive_timers(lab.q, false).is_empty() && keepalive_timers(lab.q, true).is_empty());
}

/// Two `serve -k --reuse-port` processes on one port both serve (ncat clients land on
/// each); the first is drained with SIGTERM while 150 clients keep connecting, one after
/// another, and every one is served; then only the second answers. A third process
/// without the flag cannot bind.
#[test]
fn reuse_port_lets_two_processes_serve_one_port_and_one_drain() {
    if !need(&["ncat"]) {
        return;
    }
    let lab = Lab::new("serve --reuse-port x2 / ncat clients, one server drained");
    let first =
        start(&lab, "first", "exec \"$ST\" serve -k --reuse-port --sh-exec 'echo first' 127.0.0.1:$P", lab.p);
    let mut second =
        lab.sh("second", "exec \"$ST\" serve -k --reuse-port --sh-exec 'echo second' 127.0.0.1:$P");
    assert!(second.wait_stderr("listening on", Duration::from_secs(10)).contains("listening on"));
    let refused = lab.sh("third", "exec \"$ST\" serve -k --echo 127.0.0.1:$P").wait(LIMIT);
    assert_eq!(refused.code, Some(3), "without --reuse-port the port is taken: {}", refused.summary());
    let ask = |i: usize| {
        let done = lab.sh(&format!("client-{i}"), "exec ncat --recv-only 127.0.0.1 $P").wait(LIMIT);
        assert_eq!(done.code, Some(0), "{}", done.summary());
        String::from_utf8_lossy(&done.out).trim().to_string()
    };
    let answers: Vec<String> = (0..40).map(ask).collect();
    assert!(answers.iter().all(|a| a == "first" || a == "second"), "{answers:?}");
    assert!(
        answers.contains(&"first".to_string()) && answers.contains(&"second".to_string()),
        "both served: {answers:?}"
    );
    // Clients keep coming while the first server drains: 150 in a row, each must be served.
    let during = lab.sh(
        "during",
        "i=0; while [ $i -lt 150 ]; do ncat --recv-only 127.0.0.1 $P || echo FAILED; i=$((i+1)); done",
    );
    let started = wait_for(Duration::from_secs(10), || !during.stdout_now().is_empty());
    assert!(started);
    let _ = std::process::Command::new("kill").args(["-TERM", &first.pid().to_string()]).status();
    let drained = first.wait(LIMIT);
    assert_eq!(drained.code, Some(0), "{}", drained.summary());
    let during = during.wait(LIMIT);
    let lines: Vec<&str> = std::str::from_utf8(&during.out).unwrap().lines().collect();
    assert_eq!(lines.len(), 150, "{}", during.summary());
    assert!(
        lines.iter().all(|l| *l == "first" || *l == "second"),
        "a client failed during the drain: {lines:?}"
    );
    let after: Vec<String> = (40..60).map(ask).collect();
    assert!(
        after.iter().all(|a| a == "second"),
        "after the drain every client is served by the other: {after:?}"
    );
}

/// `systemd-socket-activate` (systemd's own launcher) passes a listening socket to
/// `serve -k --echo systemd` and a named one to `pipe tcp-listen:systemd:web,fork ...`;
/// without one, `serve systemd` is one line and exit 3.
#[test]
fn socket_activation_with_systemd_socket_activate() {
    if !need(&["systemd-socket-activate", "ncat"]) {
        return;
    }
    let lab = Lab::new("systemd-socket-activate / serve systemd, pipe tcp-listen:systemd:web");
    let _serve = start(
        &lab,
        "activate-serve",
        "exec systemd-socket-activate -l 127.0.0.1:$P \"$ST\" serve -k --echo systemd",
        lab.p,
    );
    let echoed = lab.sh("client", "printf 'hello\\n' | exec ncat 127.0.0.1 $P").wait(LIMIT);
    assert_eq!(echoed.code, Some(0), "{}", echoed.summary());
    assert_eq!(echoed.out, b"hello\n");
    let _backend = start(&lab, "backend", "exec ncat -l -k 127.0.0.1 $N --sh-exec 'echo backend'", lab.n);
    let _pipe = start(
        &lab,
        "activate-pipe",
        "exec systemd-socket-activate -l 127.0.0.1:$Q --fdname=web \"$ST\" pipe tcp-listen:systemd:web,fork tcp:127.0.0.1:$N",
        lab.q,
    );
    for i in 0..3 {
        let done = lab.sh(&format!("pipe-client-{i}"), "exec ncat --recv-only 127.0.0.1 $Q").wait(LIMIT);
        assert_eq!(done.code, Some(0), "{}", done.summary());
        assert_eq!(done.out, b"backend\n");
    }
    let none = lab.sh("none", "exec \"$ST\" serve systemd").wait(LIMIT);
    assert_eq!(none.code, Some(3), "{}", none.summary());
    assert!(none.err.contains("systemd") && none.err.contains("no socket was passed"), "{}", none.summary());
    assert_eq!(none.err.trim().lines().count(), 1, "{}", none.summary());
}

/// `connect --retry 20 --retry-delay 100ms` to a port where a server (ncat) appears later:
/// each failed attempt is one line, then the connection is made and the data arrives; a
/// server that never appears is exit 3 after the last retry.
#[test]
fn retry_waits_for_a_server_that_appears_and_gives_up_after_n() {
    if !need(&["ncat"]) {
        return;
    }
    let lab = Lab::new("connect --retry / ncat appearing later");
    let client = lab
        .sh("client", "printf 'late\\n' | exec \"$ST\" connect --retry 20 --retry-delay 100ms 127.0.0.1:$P");
    let said = wait_for(Duration::from_secs(10), || client.stderr_now().contains("retry 2 of 20"));
    assert!(said, "{}", client.stderr_now());
    // Not waited for: the client, retrying every 100 ms, may be done with it first.
    let server = lab.sh("ncat", "exec ncat -l 127.0.0.1 $P");
    let done = client.wait(LIMIT);
    assert_eq!(done.code, Some(0), "{}", done.summary());
    assert!(done.err.lines().all(|l| l.contains("retry") && l.contains("127.0.0.1")), "{}", done.summary());
    let got = server.wait(LIMIT);
    assert_eq!(got.out, b"late\n", "{}", got.summary());
    let never = lab
        .sh("never", "exec \"$ST\" connect --retry 2 --retry-delay 50ms 127.0.0.1:$Q < /dev/null")
        .wait(LIMIT);
    assert_eq!(never.code, Some(3), "{}", never.summary());
    assert_eq!(never.err.matches("retry").count(), 2, "{}", never.summary());
}

/// `serve --tls --allow 127.0.0.2 --deny 127.0.0.3 --deny-file F`: ncat from 127.0.0.2
/// is served; from 127.0.0.1 (not allowed), 127.0.0.3 (denied) and 127.0.0.4 (denied by
/// the file) it is reset before any TLS: `openssl s_client` gets no certificate. Each
/// refusal is one line naming the peer; a flood of 30 is at most 10 lines and a count.
/// pipe's `allow=` does the same on a listening endpoint; a bad file line is exit 1
/// naming the file and the line, before anything listens.
#[test]
fn allow_and_deny_refuse_before_any_byte_and_say_so_bounded() {
    if !need(&["ncat", "openssl"]) {
        return;
    }
    let lab = Lab::new("serve --allow/--deny/--deny-file / ncat, s_client from several sources");
    std::fs::write(lab.path("deny.txt"), "# blocked\n127.0.0.4\n\n").unwrap();
    let server = start(
        &lab,
        "serve",
        "exec \"$ST\" serve -k --echo --tls --cert \"$CERT\" --key \"$KEY\" --allow 127.0.0.2,127.0.0.3,127.0.0.4 \
         --deny 127.0.0.3 --deny-file \"$D/deny.txt\" 127.0.0.1:$P",
        lab.p,
    );
    let s_client = |from: &str| {
        let script = format!(
            "exec openssl s_client -connect 127.0.0.1:$P -bind {from}:0 -CAfile \"$CA\" -servername localhost \
             -verify_return_error < /dev/null"
        );
        lab.sh(&format!("s_client-{from}"), &script).wait(LIMIT)
    };
    let served = s_client("127.0.0.2");
    assert_eq!(served.code, Some(0), "{}", served.summary());
    assert!(
        String::from_utf8_lossy(&served.out).contains("Verify return code: 0 (ok)"),
        "{}",
        served.summary()
    );
    for from in ["127.0.0.1", "127.0.0.3", "127.0.0.4"] {
        let refused = s_client(from);
        assert_ne!(refused.code, Some(0), "{}", refused.summary());
        assert!(
            String::from_utf8_lossy(&refused.out).contains("no peer certificate available"),
            "{}",
            refused.summary()
        );
        let said = wait_for(Duration::from_secs(5), || {
            server.stderr_now().contains(&format!("refused a connection from {from}:"))
        });
        assert!(said, "{}", server.stderr_now());
    }
    let err = server.stderr_now();
    assert!(
        err.contains("not in an allowed block")
            && err.contains("denied (127.0.0.3/32)")
            && err.contains("denied (127.0.0.4/32)"),
        "{err}"
    );
    let flood = lab.sh(
        "flood",
        "i=0; while [ $i -lt 30 ]; do ncat -s 127.0.0.5 127.0.0.1 $P < /dev/null; i=$((i+1)); done",
    );
    flood.wait(LIMIT);
    let lines =
        server.stderr_now().lines().filter(|l| l.contains("refused a connection from 127.0.0.5")).count();
    assert!(
        lines <= 10 - 3,
        "refusals said at most 10 per 10 s ({lines} for the flood):\n{}",
        server.stderr_now()
    );
    assert!(
        server.stderr_now().contains("more refusals in the next 10s are counted, not shown"),
        "{}",
        server.stderr_now()
    );

    let _backend = start(&lab, "backend", "exec ncat -l -k 127.0.0.1 $N --sh-exec 'echo backend'", lab.n);
    let _pipe = start(
        &lab,
        "pipe",
        "exec \"$ST\" pipe tcp-listen:127.0.0.1:$Q,fork,allow=127.0.0.2 tcp:127.0.0.1:$N",
        lab.q,
    );
    let ok = lab.sh("pipe-ok", "exec ncat --recv-only -s 127.0.0.2 127.0.0.1 $Q").wait(LIMIT);
    assert_eq!(ok.out, b"backend\n", "{}", ok.summary());
    let no = lab.sh("pipe-no", "exec ncat --recv-only 127.0.0.1 $Q").wait(LIMIT);
    assert!(no.out.is_empty(), "{}", no.summary());
    std::fs::write(lab.path("bad.txt"), "10.0.0.0/8\nbogus\n").unwrap();
    let bad = lab.sh("bad", "exec \"$ST\" serve --allow-file \"$D/bad.txt\" 127.0.0.1:0").wait(LIMIT);
    assert_eq!(bad.code, Some(1), "{}", bad.summary());
    assert!(bad.err.contains("bad.txt line 2") && !bad.err.contains("listening on"), "{}", bad.summary());
}
