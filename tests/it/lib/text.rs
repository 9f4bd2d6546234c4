//! Text streams and codecs: spec §4, scenarios 41-46 and D11, plus the encodings.

use bytes::Bytes;
use streamtool::streams::*;

use crate::support::run;
use crate::support::streams::{Loopback, MemRx, b};

fn text_receiver(
    capacity: usize,
    encoding: &str,
    mode: ErrorMode,
) -> (MemoryObjectSendStream<Bytes>, TextReceiveStream<MemRx>) {
    let (tx, rx) = memory_object_stream::<Bytes>(capacity);
    let encoding = TextEncoding::for_label(encoding).unwrap();
    (tx, TextReceiveStream::with_encoding(ObjectByteReceiveStream::new(rx), encoding, mode))
}

// scenario 41
#[test]
fn character_split_across_chunks_is_returned_when_complete() {
    run(async {
        let (tx, mut text) = text_receiver(1, "utf-8", ErrorMode::Strict);
        tx.send(b(b"\xc3\xa5\xc3\xa4\xc3")).await.unwrap();
        assert_eq!(text.receive().await.unwrap(), "åä");
        tx.send(b(b"\xb6")).await.unwrap();
        assert_eq!(text.receive().await.unwrap(), "ö");
    });
}

// scenario 42
#[test]
fn sent_text_is_encoded_as_one_chunk() {
    run(async {
        let (tx, rx) = memory_object_stream::<Bytes>(1);
        let mut text = TextSendStream::new(ObjectByteSendStream::new(tx));
        text.send("åäö").await.unwrap();
        assert_eq!(rx.receive().await.unwrap(), &b"\xc3\xa5\xc3\xa4\xc3\xb6"[..]);
    });
}

// scenario 43
#[test]
fn replace_mode_turns_each_invalid_byte_into_replacement_character() {
    run(async {
        let (tx, mut text) = text_receiver(1, "utf-8", ErrorMode::Replace);
        tx.send(b(b"\xe5\xe4\xf6")).await.unwrap();
        assert_eq!(text.receive().await.unwrap(), "\u{fffd}\u{fffd}\u{fffd}");
    });
}

// scenario 44
#[test]
fn replace_mode_encodes_unmappable_character_as_question_mark() {
    run(async {
        let (tx, rx) = memory_object_stream::<Bytes>(1);
        let mut text = TextSendStream::with_encoding(
            ObjectByteSendStream::new(tx),
            TextEncoding::for_label("iso-8859-1").unwrap(),
            ErrorMode::Replace,
        );
        text.send("€").await.unwrap();
        assert_eq!(rx.receive().await.unwrap(), &b"?"[..]);
    });
}

// scenario 45
#[test]
fn bidirectional_text_stream_encodes_and_decodes_on_one_transport() {
    run(async {
        let (tx, rx) = memory_object_stream::<Bytes>(1);
        let stapled = StapledByteStream::new(
            ObjectByteSendStream::new(tx.clone()),
            ObjectByteReceiveStream::new(rx.clone()),
        );
        let mut text = TextStream::new(stapled);
        text.send("åäö").await.unwrap();
        assert_eq!(rx.receive().await.unwrap(), &b"\xc3\xa5\xc3\xa4\xc3\xb6"[..]);
        tx.send(b(b"\xc3\xa6\xc3\xb8")).await.unwrap();
        assert_eq!(text.receive().await.unwrap(), "æø");
        assert!(matches!(text.extra(attrs::socket::LOCAL_ADDRESS), Err(StreamError::AttributeNotFound(_))));
    });
}

// scenario 46
#[test]
fn text_connectable_wraps_connected_stream() {
    run(async {
        let mut text = TextConnectable::new(Loopback).connect().await.unwrap();
        text.send("hello").await.unwrap();
        assert_eq!(text.receive().await.unwrap(), "hello");
    });
}

// D11 (derived): Rust's choice, strict mode: a partial character at the end is an error.
#[test]
fn partial_character_at_end_of_stream_is_an_error_under_strict() {
    run(async {
        let (tx, mut text) = text_receiver(1, "utf-8", ErrorMode::Strict);
        tx.send(b(b"ok\xc3")).await.unwrap();
        tx.close();
        assert_eq!(text.receive().await.unwrap(), "ok");
        let err = text.receive().await.unwrap_err();
        assert!(matches!(err, StreamError::Decode { at_eof: true, offset: 2, .. }), "{err:?}");
        assert_eq!(err.to_string(), "invalid UTF-8 data at byte 2 (incomplete character at end of stream)");
        assert!(matches!(text.receive().await, Err(StreamError::EndOfStream)));
    });
}

// D11 (derived): Rust's choice, replace mode: a partial character at the end is U+FFFD.
#[test]
fn partial_character_at_end_of_stream_is_replacement_under_replace() {
    run(async {
        let (tx, mut text) = text_receiver(1, "utf-8", ErrorMode::Replace);
        tx.send(b(b"\xc3")).await.unwrap();
        tx.close();
        assert_eq!(text.receive().await.unwrap(), "\u{fffd}");
        assert!(matches!(text.receive().await, Err(StreamError::EndOfStream)));
    });
}

#[test]
fn strict_decode_error_names_encoding_and_offset() {
    run(async {
        let (tx, mut text) = text_receiver(2, "utf-8", ErrorMode::Strict);
        tx.send(b(b"abc")).await.unwrap();
        tx.send(b(b"d\xffe")).await.unwrap();
        assert_eq!(text.receive().await.unwrap(), "abc");
        let err = text.receive().await.unwrap_err();
        assert!(matches!(err, StreamError::Decode { offset: 4, at_eof: false, .. }), "{err:?}");
    });
}

#[test]
fn latin1_is_true_iso_8859_1_not_windows_1252() {
    let latin1 = TextEncoding::for_label("latin1").unwrap();
    let mut out = String::new();
    latin1.decoder(ErrorMode::Strict).decode(&[0x80, 0xe9, 0xff], &mut out, false).unwrap();
    assert_eq!(out, "\u{80}é\u{ff}");
    let mut bytes = Vec::new();
    latin1.encoder(ErrorMode::Strict).encode("é\u{ff}", &mut bytes).unwrap();
    assert_eq!(bytes, [0xe9, 0xff]);
    let err = latin1.encoder(ErrorMode::Strict).encode("€", &mut Vec::new()).unwrap_err();
    assert_eq!(err.to_string(), "character '€' (U+20AC) cannot be encoded in ISO-8859-1");

    let cp1252 = TextEncoding::for_label("windows-1252").unwrap();
    let mut out = String::new();
    cp1252.decoder(ErrorMode::Strict).decode(&[0x80], &mut out, false).unwrap();
    assert_eq!(out, "€");
}

#[test]
fn ascii_rejects_high_bytes() {
    let ascii = TextEncoding::for_label("US-ASCII").unwrap();
    let mut out = String::new();
    let err = ascii.decoder(ErrorMode::Strict).decode(b"ab\x80", &mut out, false).unwrap_err();
    assert!(matches!(err, StreamError::Decode { offset: 2, .. }));
    let mut out = String::new();
    ascii.decoder(ErrorMode::Replace).decode(b"a\x80", &mut out, false).unwrap();
    assert_eq!(out, "a\u{fffd}");
}

#[test]
fn utf16_round_trips_across_odd_chunk_boundaries() {
    for label in ["utf-16le", "utf-16be"] {
        let enc = TextEncoding::for_label(label).unwrap();
        let mut wire = Vec::new();
        enc.encoder(ErrorMode::Strict).encode("hé😀", &mut wire).unwrap();
        assert_eq!(wire.len(), 8, "{label}");
        let mut decoder = enc.decoder(ErrorMode::Strict);
        let mut out = String::new();
        for byte in &wire {
            decoder.decode(std::slice::from_ref(byte), &mut out, false).unwrap();
        }
        decoder.decode(&[], &mut out, true).unwrap();
        assert_eq!(out, "hé😀", "{label}");
    }
}

#[test]
fn shift_jis_round_trips_and_strict_encode_rejects_unmappable() {
    let sjis = TextEncoding::for_label("shift_jis").unwrap();
    let mut wire = Vec::new();
    sjis.encoder(ErrorMode::Strict).encode("日本語", &mut wire).unwrap();
    assert_eq!(wire, b"\x93\xfa\x96\x7b\x8c\xea");
    let mut out = String::new();
    sjis.decoder(ErrorMode::Strict).decode(&wire, &mut out, true).unwrap();
    assert_eq!(out, "日本語");
    assert!(matches!(
        sjis.encoder(ErrorMode::Strict).encode("a😀", &mut Vec::new()),
        Err(StreamError::Encode { ch: '😀', .. })
    ));
    let mut replaced = Vec::new();
    sjis.encoder(ErrorMode::Replace).encode("a😀b", &mut replaced).unwrap();
    assert_eq!(replaced, b"a?b");
}

#[test]
fn utf8_byte_order_mark_is_data_not_stripped() {
    let mut out = String::new();
    TextEncoding::UTF_8.decoder(ErrorMode::Strict).decode(b"\xef\xbb\xbfx", &mut out, false).unwrap();
    assert_eq!(out, "\u{feff}x");
}

#[test]
fn unknown_encoding_label_is_rejected_with_a_hint() {
    let err = "klingon".parse::<TextEncoding>().unwrap_err();
    assert!(err.contains("unknown encoding \"klingon\""), "{err}");
    assert_eq!("UTF8".parse::<TextEncoding>().unwrap(), TextEncoding::UTF_8);
    assert_eq!("replace".parse::<ErrorMode>().unwrap(), ErrorMode::Replace);
    assert!("ignore".parse::<ErrorMode>().is_err());
}
