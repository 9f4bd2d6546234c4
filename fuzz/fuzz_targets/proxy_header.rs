#![no_main]
//! cargo-fuzz target: see `streamtool::fuzzing::proxy_header` for the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamtool::fuzzing::proxy_header(data));
