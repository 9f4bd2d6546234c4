//! The static Linux binary (`x86_64-unknown-linux-musl`, issue 25), run as users would run
//! a downloaded release: the README's Quick start (an openssl certificate, and gen-cert's)
//! and interop smoke tests against ncat, socat and openssl s_client.
//!
//! The binary under test is `$STREAMTOOL_STATIC_BIN` (`.ci/run` builds it with
//! `cargo zigbuild --release --locked --target x86_64-unknown-linux-musl` and sets the
//! variable). Unset, each test prints SKIPPED, and fails under CI (`support::precondition`).
//! The cells are the interop harness's ([`Lab`]) with `$ST` pointing at that binary.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::cli::BIN;
use crate::support::peers::{Lab, MIB, Srv, Want, need};
use crate::support::precondition;

/// The static binary, or `None` (and SKIPPED) when the variable is unset.
fn static_bin() -> Option<String> {
    let bin = std::env::var("STREAMTOOL_STATIC_BIN").ok().filter(|b| !b.is_empty());
    let set = precondition(
        bin.is_some(),
        "STREAMTOOL_STATIC_BIN is not set: no static binary to test (build one with `cargo zigbuild \
         --release --locked --target x86_64-unknown-linux-musl`; .ci/run does)",
    );
    let bin = bin.filter(|_| set)?;
    assert!(Path::new(&bin).is_file(), "STREAMTOOL_STATIC_BIN={bin} is not a file");
    Some(bin)
}

/// A cell whose `$ST` is the static binary.
fn lab(name: &str, bin: &str) -> Lab {
    let mut lab = Lab::new(&format!("static binary: {name}"));
    lab.set("ST", bin);
    lab
}

/// The ELF program header types of `image` (64-bit little-endian only).
fn program_headers(image: &[u8]) -> Vec<u32> {
    assert_eq!(&image[..4], b"\x7fELF", "not an ELF file");
    assert_eq!((image[4], image[5]), (2, 1), "not a 64-bit little-endian ELF file");
    let word = |at: usize| u16::from_le_bytes([image[at], image[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(image[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (word(0x36), word(0x38));
    (0..count)
        .map(|i| {
            let at = phoff + i * size;
            u32::from_le_bytes(image[at..at + 4].try_into().unwrap())
        })
        .collect()
}

/// No program interpreter (PT_INTERP, 3): the kernel runs it with no dynamic loader, so no
/// shared library is needed at all; and it is this tree's build (the same `--version`).
#[test]
fn static_binary_needs_no_loader_and_is_this_version() {
    let Some(bin) = static_bin() else { return };
    let headers = program_headers(&std::fs::read(&bin).unwrap());
    assert!(!headers.is_empty(), "{bin}: no program headers");
    assert!(!headers.contains(&3), "{bin} names a program interpreter: it is not static");
    let version = |program: &str| {
        let out = std::process::Command::new(program).arg("--version").output().unwrap();
        assert!(out.status.success(), "{program} --version: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(version(&bin), version(BIN), "the static binary is another version");
}

/// The README's Quick start as written: an openssl certificate, `serve --tls` in the
/// background, `printf 'Client\n' | connect --tls --ca cert.pem localhost:PORT`.
#[test]
fn quick_start_with_an_openssl_certificate() {
    let Some(bin) = static_bin() else { return };
    if !need(&["openssl"]) {
        return;
    }
    let lab = lab("Quick start (openssl req)", &bin);
    lab.output(
        "openssl req -x509 -newkey rsa:2048 -subj '/CN=localhost' -keyout key.pem -out cert.pem -nodes \
         -days 365 2>/dev/null",
    );
    lab.exchange(
        &[Srv {
            script: "exec \"$ST\" serve --tls --cert cert.pem --key key.pem $P </dev/null",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b"Client\n"),
        }],
        "printf 'Client\\n' | \"$ST\" connect --tls --ca cert.pem localhost:$P",
        Want::Bytes(b""),
        0,
    );
}

/// The Quick start with `streamtool gen-cert localhost` (its local CA in the cell).
#[test]
fn quick_start_with_gen_cert() {
    let Some(bin) = static_bin() else { return };
    let mut lab = lab("Quick start (gen-cert localhost)", &bin);
    let ca_dir = lab.path("ca");
    lab.set("STREAMTOOL_CA_DIR", ca_dir.to_str().unwrap());
    lab.output("\"$ST\" gen-cert localhost >/dev/null 2>&1");
    lab.exchange(
        &[Srv {
            script: "exec \"$ST\" serve --tls --cert localhost.pem --key localhost-key.pem $P </dev/null",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b"Client\n"),
        }],
        "printf 'Client\\n' | \"$ST\" connect --tls --ca ca/ca.pem localhost:$P",
        Want::Bytes(b""),
        0,
    );
}

/// ncat uploads 8 MiB to `serve`; socat gets a reply a second late from `serve`.
#[test]
fn ncat_and_socat_against_serve() {
    let Some(bin) = static_bin() else { return };
    if !need(&["ncat", "socat"]) {
        return;
    }
    let mut lab = lab("cat 8M | ncat / serve", &bin);
    let big = lab.big(8 * MIB);
    lab.exchange(
        &[Srv {
            script: "exec \"$ST\" serve 127.0.0.1:$P < /dev/null",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(&big),
        }],
        "ncat --send-only 127.0.0.1 $P < \"$BIG\"",
        Want::Bytes(b""),
        0,
    );
    let lab = self::lab("socat / (sleep 1; echo reply) | serve", &bin);
    lab.exchange(
        &[Srv {
            script: "(sleep 1; echo reply) | exec \"$ST\" serve 127.0.0.1:$P",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b"q\n"),
        }],
        "printf 'q\\n' | socat -t 5 - TCP:127.0.0.1:$P",
        Want::Bytes(b"reply\n"),
        0,
    );
}

/// openssl s_client against `serve --tls --echo`, and `connect --tls` against
/// `ncat --ssl -c cat`: TLS both ways with the static binary's crypto (aws-lc).
#[test]
fn openssl_and_ncat_tls_against_the_static_binary() {
    let Some(bin) = static_bin() else { return };
    if !need(&["openssl", "ncat"]) {
        return;
    }
    let lab = lab("serve --tls --echo / openssl s_client", &bin);
    lab.exchange(
        &[Srv {
            script: "exec \"$ST\" serve --tls --cert \"$CERT\" --key \"$KEY\" --echo 127.0.0.1:$P",
            port: lab.p,
            code: Some(0),
            gets: Want::Bytes(b""),
        }],
        "(printf 'hello\\n'; sleep 1) | openssl s_client -quiet -no_ign_eof -CAfile \"$CA\" \
         -verify_return_error -verify_hostname localhost -servername localhost -connect 127.0.0.1:$P",
        Want::Bytes(b"hello\n"),
        0,
    );
    // A TLS client keeps its side open after its input ends and waits for the server,
    // which `-c cat` never ends: the echo must arrive, then both are stopped.
    let lab = self::lab("ncat --ssl -l -c cat / connect --tls", &bin);
    let mut server =
        lab.sh("server1", "exec ncat --ssl --ssl-cert \"$CERT\" --ssl-key \"$KEY\" -l 127.0.0.1 $P -c cat");
    lab.wait_listening(lab.p, &mut server);
    let mut client = lab.sh("client", "printf x | exec \"$ST\" connect --tls --ca \"$CA\" localhost:$P");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && client.running() && client.stdout_now() != b"x" {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (client, server) = (client.stop(), server.stop());
    lab.check().gets(&client, &Want::Bytes(b"x")).show(&client).show(&server).done();
}
