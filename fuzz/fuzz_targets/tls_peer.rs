#![no_main]
//! cargo-fuzz target: see `streamtool::fuzzing::tls_peer` for the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamtool::fuzzing::tls_peer(data));
