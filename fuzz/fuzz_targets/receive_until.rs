#![no_main]
//! cargo-fuzz target: see `streamtool::fuzzing::receive_until` for the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamtool::fuzzing::receive_until(data));
