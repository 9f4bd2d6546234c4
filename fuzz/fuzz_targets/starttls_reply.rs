#![no_main]
//! cargo-fuzz target: see `streamtool::fuzzing::starttls_reply` for the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamtool::fuzzing::starttls_reply(data));
