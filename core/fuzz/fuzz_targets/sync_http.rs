//! Arbitrary bytes as HTTP heads, as the cloud and the agent parse them:
//! nothing may panic, and a complete head never claims more bytes than came.
#![no_main]

use dca_core::sync::http;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(head)) = http::parse_request(data) {
        assert!(head.head_len <= data.len());
        let _ = (
            head.method,
            head.path,
            head.content_type,
            head.authorization,
        );
    }
    for tunnel in [false, true] {
        if let Ok(Some(head)) = http::parse_response(data, tunnel) {
            assert!(head.head_len <= data.len());
        }
    }
});
