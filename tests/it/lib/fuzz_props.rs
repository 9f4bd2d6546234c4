//! The fuzz properties (`streamtool::fuzzing`) under proptest, and a replay of the committed
//! fuzz corpora and crash regressions (`fuzz/corpus/TARGET/`, `fuzz/regressions/TARGET/`),
//! so that what cargo-fuzz checks also runs in every `cargo test`.

use std::path::Path;

use proptest::prelude::*;
use streamtool::fuzzing;

type Property = fn(&[u8]);

const TARGETS: &[(&str, Property)] = &[
    ("endpoint", fuzzing::endpoint),
    ("option_values", fuzzing::option_values),
    ("receive_until", fuzzing::receive_until),
    ("framing", fuzzing::framing),
    ("text_decoder", fuzzing::text_decoder),
    ("pem", fuzzing::pem),
    ("tls_peer", fuzzing::tls_peer),
    ("starttls_reply", fuzzing::starttls_reply),
    ("proxy_reply", fuzzing::proxy_reply),
    ("proxy_header", fuzzing::proxy_header),
];

/// Every committed corpus and regression input, through its target's property.
///
/// A target without its corpus directory, or with an empty one, fails (the paths moved or
/// the checkout is incomplete); a missing `regressions/TARGET/` is fine (most targets have
/// none). Every file in the directories is replayed, and, in a git checkout, every file git
/// tracks under `fuzz/corpus` and `fuzz/regressions` must be among them. The counts are
/// printed.
#[test]
fn fuzz_corpora_and_regressions_replay() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("fuzz");
    let mut replayed = std::collections::BTreeSet::new();
    let mut counts = Vec::new();
    for (name, property) in TARGETS {
        let mut per_dir = [0usize; 2];
        for (i, dir) in ["corpus", "regressions"].into_iter().enumerate() {
            let path = root.join(dir).join(name);
            let entries = match std::fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(err) if dir == "regressions" && err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => panic!("{name}: cannot read {}: {err}", path.display()),
            };
            for entry in entries {
                let path = entry.unwrap().path();
                assert!(path.is_file(), "{name}: {} is not a file", path.display());
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| property(&data));
                assert!(outcome.is_ok(), "{name}: {} fails its property", path.display());
                per_dir[i] += 1;
                replayed.insert(path.strip_prefix(manifest).unwrap().to_path_buf());
            }
        }
        assert!(per_dir[0] > 0, "{name}: fuzz/corpus/{name}/ is empty");
        counts.push(format!("{name} {}+{}", per_dir[0], per_dir[1]));
    }
    // What git says is committed must all have been replayed.
    let tracked = std::process::Command::new("git")
        .current_dir(manifest)
        .args(["ls-files", "-z", "--", "fuzz/corpus", "fuzz/regressions"])
        .output();
    let checked = match tracked {
        Ok(out) if out.status.success() => {
            let tracked: Vec<std::path::PathBuf> = out
                .stdout
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| std::path::PathBuf::from(String::from_utf8(p.to_vec()).unwrap()))
                .collect();
            let missing: Vec<_> = tracked.iter().filter(|p| !replayed.contains(*p)).collect();
            assert!(
                missing.is_empty(),
                "{} of the {} committed corpus files were not replayed, e.g. {:?}",
                missing.len(),
                tracked.len(),
                &missing[..missing.len().min(5)]
            );
            format!("all {} files git tracks there among them", tracked.len())
        }
        _ => {
            assert!(std::env::var_os("CI").is_none(), "CI is set but `git ls-files` failed: {tracked:?}");
            "not a git checkout: checked against the directory listings only".to_string()
        }
    };
    eprintln!(
        "fuzz corpora: replayed {} files (corpus+regressions: {}); {checked}",
        replayed.len(),
        counts.join(", ")
    );
}

fn endpoint_text() -> impl Strategy<Value = String> {
    let kind = prop::sample::select(vec![
        "",
        "-",
        "stdio",
        "tcp:",
        "tls:",
        "tcp-listen:",
        "tls-l:",
        "unix:",
        "unix-listen:",
        "exec:",
        "file:",
        "TCP:",
        "[",
    ]);
    (kind, "[a-z0-9.:\\[\\],=/_% -]{0,24}", "(,[a-z-]{1,12}(=[a-z0-9./:]{0,8})?){0,3}")
        .prop_map(|(k, body, opts)| format!("{k}{body}{opts}"))
}

fn value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9_.]{0,8}[ a-zA-Z]{0,4}",
        "(\\\\[nrt0\\\\x]|\\\\x[0-9a-fA-F]{0,2}|[a-z\r\n]){0,6}",
        "(sha256:)?[0-9a-fA-F:]{0,70}",
        "1\\.[0-4]|TLS ?1\\.[23]|[a-z0-9.*-]{0,20}",
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Line-ish payloads behind a parameter header, so delimiters actually occur.
fn stream_input() -> impl Strategy<Value = Vec<u8>> {
    let header = prop::collection::vec(any::<u8>(), 0..12);
    let body = prop::collection::vec(prop::sample::select(vec![b'a', b'\n', b'\r', 0u8, 0xff]), 0..200);
    (header, body).prop_map(|(h, b)| [h, b].concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn proxy_headers_hold_their_properties(
        head in prop::sample::select(vec![&b"PROXY "[..], b"PROXY TCP4 ", b"PROXY UNKNOWN", b"\r\n\r\n\0\r\nQUIT\n", b""]),
        tail in bytes(64),
    ) {
        fuzzing::proxy_header(&[head, &tail].concat());
    }

    #[test]
    fn endpoint_parsing_holds_its_properties(text in endpoint_text()) {
        fuzzing::endpoint(text.as_bytes());
    }

    #[test]
    fn endpoint_parsing_survives_arbitrary_bytes(data in bytes(64)) {
        fuzzing::endpoint(&data);
    }

    #[test]
    fn option_values_hold_their_properties(text in value_text()) {
        fuzzing::option_values(text.as_bytes());
    }

    #[test]
    fn receive_until_holds_its_properties(data in stream_input()) {
        fuzzing::receive_until(&data);
    }

    #[test]
    fn framing_holds_its_properties(data in stream_input()) {
        fuzzing::framing(&data);
    }

    #[test]
    fn text_decoder_holds_its_properties(data in bytes(200)) {
        fuzzing::text_decoder(&data);
    }

    #[test]
    fn pem_loading_holds_its_properties(data in bytes(300)) {
        fuzzing::pem(&data);
    }

    #[test]
    fn starttls_negotiation_holds_its_properties(data in bytes(300)) {
        fuzzing::starttls_reply(&data);
    }

    #[test]
    fn starttls_negotiation_holds_its_properties_on_near_valid_replies(input in starttls_input()) {
        fuzzing::starttls_reply(&input);
    }

    #[test]
    fn proxy_replies_and_urls_hold_their_properties(input in proxy_input()) {
        fuzzing::proxy_reply(&input);
    }

    #[test]
    fn proxy_parsers_survive_arbitrary_bytes(data in bytes(300)) {
        fuzzing::proxy_reply(&data);
    }
}

/// Inputs for `fuzzing::starttls_reply`: a protocol (or the SMTP server side), a read size,
/// and replies built from each protocol's own words, so that the negotiation gets past the
/// greeting and into its later steps (including bytes after a go-ahead).
fn starttls_input() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        "(220|250|221|234|120|454|502|554)[ -]?[ -~\x1b]{0,12}\r?\n",
        "250[ -](STARTTLS|PIPELINING|SIZE 10)\r\n",
        "\\* (OK|PREAUTH|BYE|CAPABILITY IMAP4rev1 STARTTLS)[ -~]{0,8}\r\n",
        "a[12] (OK|NO|BAD)[ -~]{0,8}\r\n",
        "(\\+OK|-ERR|STLS|USER|\\.)[ -~]{0,6}\r\n",
        "<(stream:stream|stream:features|starttls/|/stream:features|proceed/|failure/|stream:error)>",
        "(EHLO x|HELO x|NOOP|STARTTLS|QUIT|MAIL FROM:<a>)\r\n",
        "[SNE]",
        "\\x30\\x0c\\x02\\x01\\x01\\x78\\x07\\x0a\\x01[\\x00-\\x05]\\x04\\x00\\x04\\x00",
    ];
    (any::<u8>(), any::<u8>(), prop::collection::vec(line, 0..8)).prop_map(|(first, chunk, lines)| {
        let mut out = vec![first, chunk];
        for l in lines {
            out.extend_from_slice(l.as_bytes());
        }
        out
    })
}

/// Inputs for `fuzzing::proxy_reply`: HTTP status lines, SOCKS5 and SOCKS4 replies, and
/// proxy URLs, near enough to valid that the parsers get past their first check.
fn proxy_input() -> impl Strategy<Value = Vec<u8>> {
    let http =
        "HTTP/1\\.[01x] [0-9]{2,4}( [ -~\x1b\t]{0,16})?(\r\n[A-Za-z-]{1,8}: [ -~]{0,8}){0,2}(\r\n\r\n)?"
            .prop_map(|t: String| [&[0u8][..], t.as_bytes()].concat());
    let socks5 = (0u8..10, prop::sample::select(vec![1u8, 3, 4, 9]), 0u8..20, bytes(24))
        .prop_map(|(code, atyp, len, rest)| [&[1u8, 5, code, 0, atyp, len][..], &rest].concat());
    let socks4 = (prop::sample::select(vec![0x5au8, 0x5b, 0x5c, 0x5d, 0]), bytes(8))
        .prop_map(|(code, rest)| [&[2u8, 0, code][..], &rest].concat());
    let url = "(http|socks5h?|socks4a?|https|ftp)://([a-z%0-9]{0,6}(:[a-z%0-9@]{0,6})?@)?(\\[[0-9a-f:]{0,8}\\]|[a-z0-9.]{0,10})(:[0-9]{0,6})?/?"
        .prop_map(|t: String| [&[3u8][..], t.as_bytes()].concat());
    prop_oneof![http, socks5, socks4, url]
}

proptest! {
    // Each case runs a TLS handshake to its failure; fewer cases keep the suite quick.
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn tls_peer_fails_cleanly_on_arbitrary_bytes(data in bytes(600)) {
        fuzzing::tls_peer(&data);
    }

    #[test]
    fn pem_loading_survives_mangled_real_pem(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        mode in 0u8..3,
    ) {
        let generated = streamtool::certs::self_signed(&["localhost"], 30).unwrap();
        let mut text = format!("{}{}", generated.cert_pem, generated.key_pem).into_bytes();
        for (at, byte) in flips {
            let i = at.index(text.len());
            text[i] = byte;
        }
        let split = u8::try_from(generated.cert_pem.len() * 256 / text.len()).unwrap_or(255);
        fuzzing::pem(&[&[mode, split][..], &text].concat());
    }
}
