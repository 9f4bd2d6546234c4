#![no_main]
//! cargo-fuzz target: see `streamtool::fuzzing::text_decoder` for the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamtool::fuzzing::text_decoder(data));
