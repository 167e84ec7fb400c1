#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| redis_rest_gateway::fuzzing::gateway_request(data));
