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
];

/// Every committed corpus and regression input, through its target's property.
#[test]
fn fuzz_corpora_and_regressions_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for (name, property) in TARGETS {
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| property(&data));
                assert!(outcome.is_ok(), "{name}: {} fails its property", path.display());
                replayed += 1;
            }
        }
    }
    // Each target has a seed corpus; an empty replay would mean the paths moved.
    assert!(replayed >= TARGETS.len() * 3, "only {replayed} corpus files replayed");
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
