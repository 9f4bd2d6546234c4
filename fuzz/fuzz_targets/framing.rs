#![no_main]
//! cargo-fuzz target: see `streamtool::fuzzing::framing` for the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamtool::fuzzing::framing(data));
