#![no_main]
//! cargo-fuzz target: see `streamtool::fuzzing::option_values` for the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamtool::fuzzing::option_values(data));
