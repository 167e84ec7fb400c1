#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| edge_core::fuzzing::session_cookie(data));
