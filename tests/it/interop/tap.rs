//! Seeing the traffic (issue 22, `streamtool::tap`): `--pcap` files read by `tshark`
//! (HTTP dissected from a plain capture of a real `python3 -m http.server`, a TLS 1.3
//! session with `openssl s_server -www` decrypted from the file alone, a `pipe` relay in
//! front of the server and curl, a 100 MiB transfer reassembled to the same SHA-256),
//! `--dump hex` checked byte for byte against `hexdump -C`, `--dump text`, a transcript
//! replayed at a line server (`socat` running `tr`) with the same replies, and the files'
//! safety (0600, an existing file refused without `--force`, a planted link not followed).

use std::process::Command;
use std::time::Duration;

use crate::support::peers::{Done, Job, Lab, MIB, need};

const LIMIT: Duration = Duration::from_secs(60);

/// Starts `script` and waits for `port`.
fn start(lab: &Lab, name: &str, script: &str, port: u16) -> Job {
    let mut job = lab.sh(name, script);
    lab.wait_listening(port, &mut job);
    job
}

/// `tshark -r FILE ARGS`, its stdout; fails the test on an error.
fn tshark(file: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("tshark").arg("-r").arg(file).args(args).output().expect("tshark runs");
    assert!(out.status.success(), "tshark {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fields tshark finds for `filter`, one line per packet.
fn fields(file: &std::path::Path, filter: &str, field: &str) -> Vec<String> {
    tshark(file, &["-Y", filter, "-T", "fields", "-e", field]).lines().map(str::to_string).collect()
}

fn ok(done: &Done) {
    assert_eq!(done.code, Some(0), "{}", done.summary());
}

/// `python3 -m http.server` on `$P` serving `$D/www` with `hello.txt`.
fn http_server(lab: &Lab) -> Job {
    std::fs::create_dir_all(lab.path("www")).unwrap();
    std::fs::write(lab.path("www/hello.txt"), "hello from python\n").unwrap();
    start(lab, "http", "cd \"$D/www\" && exec python3 -m http.server --bind 127.0.0.1 $P", lab.p)
}

/// A plain capture of `connect` talking to python's HTTP server: tshark dissects the GET
/// and the 200 with no option, the TCP checksums verify, and the file is 0600.
#[test]
fn pcap_of_plain_http_with_python_shows_the_get_and_the_reply() {
    if !need(&["tshark", "python3"]) {
        return;
    }
    let lab = Lab::new("connect --pcap / python3 -m http.server");
    let _server = http_server(&lab);
    let client = lab.sh(
        "client",
        "printf 'GET /hello.txt HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' | exec \"$ST\" connect 127.0.0.1:$P --pcap \"$D/c.pcapng\"",
    );
    let done = client.wait(LIMIT);
    ok(&done);
    assert!(String::from_utf8_lossy(&done.out).contains("hello from python"), "{}", done.summary());
    let file = lab.path("c.pcapng");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fields(&file, "http.request.method==GET", "http.request.uri"), ["/hello.txt"]);
    assert_eq!(fields(&file, "http.response", "http.response.code"), ["200"]);
    let checked = tshark(
        &file,
        &["-o", "tcp.check_checksum:TRUE", "-Y", "tcp.checksum.status==2 || tcp.analysis.flags"],
    );
    assert!(checked.trim().is_empty(), "bad checksums or TCP analysis problems:\n{checked}");
}

/// A TLS 1.3 session with `openssl s_server -www`, captured on the TLS layer: tshark,
/// with no key log option, decrypts the HTTP from the secrets in the file; the default
/// (plaintext) layer shows the same request with no TLS at all.
#[test]
fn pcap_of_tls13_with_s_server_is_decrypted_by_tshark_from_the_file_alone() {
    if !need(&["tshark", "openssl"]) {
        return;
    }
    let lab = Lab::new("connect --tls --pcap-layer tls / openssl s_server -www -tls1_3");
    let _server = start(
        &lab,
        "s_server",
        "exec openssl s_server -accept 127.0.0.1:$P -www -tls1_3 -cert \"$CERT\" -key \"$KEY\"",
        lab.p,
    );
    for (layer, file) in [("tls", "tls.pcapng"), ("plain", "plain.pcapng")] {
        let client = lab.sh(
            &format!("client-{layer}"),
            &format!(
                "printf 'GET /x HTTP/1.0\\r\\n\\r\\n' | exec \"$ST\" connect --tls --ca \"$CA\" localhost:$P --pcap \"$D/{file}\" --pcap-layer {layer}"
            ),
        );
        let done = client.wait(LIMIT);
        ok(&done);
        let path = lab.path(file);
        assert_eq!(fields(&path, "http.request.method==GET", "http.request.uri"), ["/x"], "{layer}");
        let versions = fields(&path, "tls.handshake.type==2", "tls.handshake.extensions.supported_version");
        if layer == "tls" {
            assert_eq!(versions, ["0x0304"], "the ServerHello negotiates TLS 1.3");
            assert!(done.err.contains("holds the TLS session secrets"), "{}", done.summary());
        } else {
            assert!(versions.is_empty(), "a plaintext capture holds no TLS: {versions:?}");
        }
    }
    // Without the secrets block, the same records stay encrypted (the test can fail).
    let stripped = lab.path("stripped.pcapng");
    let editcap = Command::new("editcap")
        .arg("--discard-all-secrets")
        .arg(lab.path("tls.pcapng"))
        .arg(&stripped)
        .output();
    if let Ok(out) = editcap
        && out.status.success()
    {
        assert!(fields(&stripped, "http.request", "http.request.uri").is_empty());
    }
}

/// `pipe` as a TLS terminator in front of python's server, curl the client: the
/// listening endpoint's TLS-layer capture decrypts, the plain endpoint's capture shows the
/// same GET in clear, and curl gets the file.
#[test]
fn pcap_of_a_pipe_relay_on_both_endpoints() {
    if !need(&["tshark", "python3", "curl"]) {
        return;
    }
    let lab = Lab::new("curl / pipe tls-listen,pcap=,pcap-layer=tls tcp:,pcap= / python3 -m http.server");
    let _server = http_server(&lab);
    let _pipe = start(
        &lab,
        "pipe",
        "exec \"$ST\" pipe -k \"tls-listen:127.0.0.1:$Q,cert=$CERT,key=$KEY,pcap=$D/front.pcapng,pcap-layer=tls\" \
         \"tcp:127.0.0.1:$P,pcap=$D/back.pcapng\"",
        lab.q,
    );
    let curl = lab.sh("curl", "exec curl -sS --cacert \"$CA\" https://localhost:$Q/hello.txt");
    let done = curl.wait(LIMIT);
    ok(&done);
    assert_eq!(done.out, b"hello from python\n");
    // The relay's connections are closed (and their captures flushed) once curl is done.
    let front = lab.path("front.pcapng");
    let back = lab.path("back.pcapng");
    let seen = crate::support::peers::wait_for(Duration::from_secs(10), || {
        fields(&back, "http.response", "http.response.code") == ["200"]
            && fields(&front, "http.response", "http.response.code") == ["200"]
    });
    assert!(seen, "front: {:?} back: {:?}", tshark(&front, &[]), tshark(&back, &[]));
    assert_eq!(fields(&front, "http.request.method==GET", "http.request.uri"), ["/hello.txt"]);
    assert_eq!(fields(&back, "http.request.method==GET", "http.request.uri"), ["/hello.txt"]);
    assert!(
        !fields(&front, "tls.record", "tls.record.content_type").is_empty(),
        "the front capture holds TLS records"
    );
}

/// The bytes of each direction (client's, server's) from tshark's `follow,tcp,raw,0`.
fn follow_raw(file: &std::path::Path) -> [Vec<u8>; 2] {
    let out = tshark(file, &["-q", "-z", "follow,tcp,raw,0"]);
    let mut dirs = [Vec::new(), Vec::new()];
    let body = out.lines().skip_while(|l| !l.starts_with("Node 1:")).skip(1);
    for line in body.take_while(|l| !l.starts_with("====")) {
        let (dir, hex) = match line.strip_prefix('\t') {
            Some(hex) => (1, hex),
            None => (0, line),
        };
        for pair in hex.trim().as_bytes().chunks(2) {
            dirs[dir].push(u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap());
        }
    }
    dirs
}

/// 100 MiB sent by `connect --pcap` to `socat -u`: tshark's reassembly of the capture has
/// the SHA-256 of the data sent, and socat got all of it.
#[test]
fn pcap_of_100_mib_reassembles_to_the_data_sent() {
    if !need(&["tshark", "socat"]) {
        return;
    }
    let mut lab = Lab::new("connect --pcap 100 MiB / socat -u");
    let big = lab.big(100 * MIB);
    let server = start(
        &lab,
        "socat",
        "exec socat -u TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr OPEN:\"$D/got\",creat",
        lab.p,
    );
    let client = lab.sh("client", "exec \"$ST\" connect 127.0.0.1:$P --pcap \"$D/big.pcapng\" < \"$BIG\"");
    ok(&client.wait(LIMIT));
    ok(&server.wait(LIMIT));
    let got = std::fs::read(lab.path("got")).unwrap();
    assert!(got == big, "socat got {} bytes", got.len());
    let [sent, back] = follow_raw(&lab.path("big.pcapng"));
    assert!(back.is_empty(), "socat -u sent nothing back, the capture says {} bytes", back.len());
    assert_eq!(crate::support::peers::digest(&sent), crate::support::peers::digest(&big));
}

/// The dump blocks of a `--dump hex` file, by direction marker: (offset, length, rows).
fn hex_blocks(dump: &str) -> Vec<(char, u64, usize, String)> {
    let mut blocks: Vec<(char, u64, usize, String)> = Vec::new();
    for line in dump.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let is_header = matches!(words.first(), Some(&">") | Some(&"<"))
            && words.len() >= 8
            && words[words.len() - 2] == "at";
        if is_header {
            let n = words.len();
            let len: usize = words[n - 4].parse().unwrap();
            let offset: u64 = words[n - 1].parse().unwrap();
            blocks.push((words[0].chars().next().unwrap(), offset, len, String::new()));
        } else if line.contains(" end of stream") && line.starts_with(['<', '>']) {
            continue;
        } else if let Some(block) = blocks.last_mut() {
            block.3.push_str(line);
            block.3.push('\n');
        }
    }
    blocks
}

/// 256 KiB of random bytes through `connect --dump hex --dump-file`: every chunk's rows
/// are exactly what `hexdump -C -s OFFSET -n LENGTH` prints for those bytes of the file,
/// and the chunks cover the whole stream in order.
#[test]
fn dump_hex_is_hexdump_c_of_the_data_byte_for_byte() {
    if !need(&["socat", "hexdump"]) {
        return;
    }
    let mut lab = Lab::new("connect --dump hex / socat -u");
    let big = lab.big(256 * 1024);
    let server =
        start(&lab, "socat", "exec socat -u TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr OPEN:/dev/null", lab.p);
    let client = lab
        .sh("client", "exec \"$ST\" connect 127.0.0.1:$P --dump hex --dump-file \"$D/dump.txt\" < \"$BIG\"");
    ok(&client.wait(LIMIT));
    ok(&server.wait(LIMIT));
    let dump = std::fs::read_to_string(lab.path("dump.txt")).unwrap();
    let blocks = hex_blocks(&dump);
    let mut next = 0u64;
    for (marker, offset, len, rows) in &blocks {
        assert_eq!(*marker, '>', "only data sent");
        assert_eq!(*offset, next, "chunks in order, none missing");
        next += *len as u64;
        let want = Command::new("hexdump")
            .args(["-C", "-s", &offset.to_string(), "-n", &len.to_string()])
            .arg(lab.path("big.bin"))
            .output()
            .unwrap();
        assert_eq!(rows.as_bytes(), want.stdout.as_slice(), "the chunk at {offset}, {len} bytes");
    }
    assert_eq!(next, big.len() as u64);
    assert!(dump.contains("out end of stream"), "the half-close is shown");
}

/// `--dump text` escapes what a terminal would act on and shows line ends; `--dump-max`
/// stops a dump and says so once.
#[test]
fn dump_text_escapes_and_dump_max_stops() {
    if !need(&["socat"]) {
        return;
    }
    let lab = Lab::new("connect --dump text / socat echo");
    let _server =
        start(&lab, "socat", "exec socat TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr,fork EXEC:cat", lab.p);
    let client = lab.sh(
        "client",
        "printf 'hello\\r\\n\\033[31mred\\tx\\n' | exec \"$ST\" connect 127.0.0.1:$P --dump text --dump-file \"$D/t.txt\"",
    );
    ok(&client.wait(LIMIT));
    let dump = std::fs::read_to_string(lab.path("t.txt")).unwrap();
    assert!(dump.contains("  hello\\r\\n\n  \\x1b[31mred\\tx\\n\n"), "{dump}");
    assert!(!dump.contains('\u{1b}'), "no raw escape reaches the dump");
    assert!(dump.lines().any(|l| l.starts_with('<') && l.contains(" in ")), "the echo is shown: {dump}");
    let capped = lab.sh(
        "capped",
        "head -c 100000 /dev/zero | exec \"$ST\" connect 127.0.0.1:$P --dump hex --dump-max 1KiB --dump-file \"$D/m.txt\" > /dev/null",
    );
    ok(&capped.wait(LIMIT));
    let dump = std::fs::read_to_string(lab.path("m.txt")).unwrap();
    assert_eq!(dump.matches("--dump-max reached after 1024 bytes").count(), 1, "{dump}");
    assert!(dump.len() < 4096, "the dump stopped: {} bytes", dump.len());
}

/// The data of one direction of a transcript, concatenated.
fn transcript_data(path: &std::path::Path, dir: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let records = streamtool::tap::dump::read_transcript(text.as_bytes()).unwrap();
    let want = if dir == "in" {
        streamtool::tap::dump::Direction::In
    } else {
        streamtool::tap::dump::Direction::Out
    };
    records
        .iter()
        .filter_map(|r| match r {
            streamtool::tap::dump::Record::Data { dir, data, .. } if *dir == want => Some(data.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// An exchange with a line server (socat running `tr a-z A-Z`) captured by `connect
/// --transcript`, then played at the server again by `pipe replay:...` (recording the
/// replies with `transcript=`): the server gets the same lines and sends the same replies;
/// the original pause between the lines is kept, and `timing=fast` drops it.
#[test]
fn replay_of_a_transcript_gets_the_same_replies() {
    if !need(&["socat"]) {
        return;
    }
    let lab = Lab::new("connect --transcript, then pipe replay: / socat EXEC:tr");
    let _server = start(
        &lab,
        "socat",
        "exec socat TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr,fork EXEC:'tr a-z A-Z'",
        lab.p,
    );
    // The pause shapes the recorded exchange; it is not waiting for anything.
    let first = lab.sh(
        "first",
        "(printf 'one\\n'; sleep 1; printf 'two\\n') | exec \"$ST\" connect 127.0.0.1:$P --transcript \"$D/t.jsonl\"",
    );
    let done = first.wait(LIMIT);
    ok(&done);
    assert_eq!(done.out, b"ONE\nTWO\n");
    let original = lab.path("t.jsonl");
    assert_eq!(transcript_data(&original, "out"), b"one\ntwo\n");
    assert_eq!(transcript_data(&original, "in"), b"ONE\nTWO\n");
    for (timing, slow) in [("original", true), ("fast", false)] {
        let name = format!("replay-{timing}");
        let replay = lab.sh(
            &name,
            &format!("exec \"$ST\" pipe \"replay:$D/t.jsonl,timing={timing}\" \"tcp:127.0.0.1:$P,transcript=$D/{name}.jsonl\""),
        );
        let done = replay.wait(LIMIT);
        ok(&done);
        let again = lab.path(&format!("{name}.jsonl"));
        assert_eq!(transcript_data(&again, "out"), b"one\ntwo\n", "{timing}");
        assert_eq!(transcript_data(&again, "in"), b"ONE\nTWO\n", "{timing}");
        assert_eq!(done.elapsed >= Duration::from_millis(900), slow, "{timing}: {:?}", done.elapsed);
    }
    // A transcript with a broken line is refused before anything opens, naming the line.
    std::fs::write(
        lab.path("bad.jsonl"),
        "{\"time\":\"2026-01-01T00:00:00.000000Z\",\"conn\":1,\"dir\":\"out\",\"len\":9,\"data\":\"b25l\"}\n",
    )
    .unwrap();
    let bad = lab.sh("bad", "exec \"$ST\" pipe \"replay:$D/bad.jsonl\" tcp:127.0.0.1:$P");
    let done = bad.wait(LIMIT);
    assert_eq!(done.code, Some(1), "{}", done.summary());
    assert!(done.err.contains("bad.jsonl") && done.err.contains("line 1"), "{}", done.summary());
    assert_eq!(done.err.lines().count(), 1, "{}", done.summary());
}

/// The recording files are private and never clobbered: an existing file is refused
/// (exit 1, one line naming it) and kept; `--force` replaces it, and a symbolic link
/// planted in its place is replaced, its target untouched. The events name each file.
#[test]
fn recording_files_are_private_and_never_clobbered() {
    if !need(&["socat"]) {
        return;
    }
    let lab = Lab::new("connect --pcap/--transcript files / socat");
    let _server =
        start(&lab, "socat", "exec socat TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr,fork EXEC:cat", lab.p);
    std::fs::write(lab.path("old.pcapng"), "keep me").unwrap();
    let refused = lab.sh("refused", "printf x | exec \"$ST\" connect 127.0.0.1:$P --pcap \"$D/old.pcapng\"");
    let done = refused.wait(LIMIT);
    assert_eq!(done.code, Some(1), "{}", done.summary());
    assert_eq!(done.err.trim().lines().count(), 1, "{}", done.summary());
    assert!(done.err.contains("old.pcapng") && done.err.contains("--force"), "{}", done.summary());
    assert_eq!(std::fs::read(lab.path("old.pcapng")).unwrap(), b"keep me");
    std::fs::write(lab.path("target"), "not yours").unwrap();
    std::os::unix::fs::symlink(lab.path("target"), lab.path("link.jsonl")).unwrap();
    let forced = lab.sh(
        "forced",
        "printf x | exec \"$ST\" connect 127.0.0.1:$P --pcap \"$D/old.pcapng\" --transcript \"$D/link.jsonl\" --force --events json",
    );
    let done = forced.wait(LIMIT);
    ok(&done);
    assert_eq!(std::fs::read(lab.path("target")).unwrap(), b"not yours");
    let link = std::fs::symlink_metadata(lab.path("link.jsonl")).unwrap();
    assert!(link.is_file(), "the link was replaced by a file");
    assert!(
        std::fs::read(lab.path("old.pcapng")).unwrap().starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]),
        "a pcapng now"
    );
    for kind in ["pcap", "transcript"] {
        let named = done
            .err
            .lines()
            .any(|l| l.contains("\"event\":\"file_written\"") && l.contains(&format!("\"kind\":\"{kind}\"")));
        assert!(named, "a file-written event for the {kind}: {}", done.summary());
    }
}

/// A TLS 1.3 client in Python: sends a line, reads it back, closes.
const PY_CLIENT: &str = r#"
import socket, ssl, sys
context = ssl.create_default_context(cafile=sys.argv[1])
context.minimum_version = ssl.TLSVersion.TLSv1_3
with context.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20), server_hostname="localhost") as s:
    s.sendall(sys.argv[3].encode() + b"\n")
    got = b""
    while not got.endswith(b"\n"):
        chunk = s.recv(100)
        if not chunk:
            break
        got += chunk
    sys.stdout.write(got.decode())
"#;

/// `serve -k --tls` recording every connection: two Python TLS 1.3 clients give two
/// connections in the transcript (connect, handshake with the version, the data both
/// ways, close), and the TLS-layer dump names each record's type.
#[test]
fn serve_records_each_connection_and_dumps_tls_records() {
    if !need(&["python3"]) {
        return;
    }
    let lab = Lab::new("serve -k --tls --echo --transcript --dump-layer tls / python ssl x2");
    std::fs::write(lab.path("client.py"), PY_CLIENT).unwrap();
    let server = start(
        &lab,
        "serve",
        "exec \"$ST\" serve -k --echo --tls --cert \"$CERT\" --key \"$KEY\" 127.0.0.1:$P --transcript \"$D/s.jsonl\" \
         --dump hex --dump-layer tls --dump-file \"$D/dump.txt\"",
        lab.p,
    );
    for i in 0..2 {
        let client =
            lab.sh(&format!("client-{i}"), &format!("exec python3 \"$D/client.py\" \"$CA\" $P 'line {i}'"));
        let done = client.wait(LIMIT);
        ok(&done);
        assert_eq!(done.out, format!("line {i}\n").as_bytes(), "{}", done.summary());
    }
    let closed = crate::support::peers::wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(lab.path("s.jsonl"))
            .unwrap_or_default()
            .matches("\"event\":\"close\"")
            .count()
            == 2
    });
    let text = std::fs::read_to_string(lab.path("s.jsonl")).unwrap();
    assert!(closed, "{text}");
    let records = streamtool::tap::dump::read_transcript(text.as_bytes()).unwrap();
    for conn in [1, 2] {
        let events: Vec<String> = records
            .iter()
            .filter_map(|r| match r {
                streamtool::tap::dump::Record::Event { conn: c, event, .. } if *c == conn => {
                    Some(event.clone())
                }
                _ => None,
            })
            .collect();
        assert_eq!(events.first().map(String::as_str), Some("connect"), "{text}");
        assert!(
            events.contains(&"handshake".to_string()) && events.last().map(String::as_str) == Some("close"),
            "{text}"
        );
    }
    assert!(text.contains("\"tls\":\"TLSv1.3\""), "{text}");
    let dump = std::fs::read_to_string(lab.path("dump.txt")).unwrap();
    assert!(dump.contains("TLS record: handshake"), "{dump}");
    assert!(dump.contains("TLS record: application_data"), "{dump}");
    drop(server);
}
