//! Arbitrary bytes as HTTP heads, as the cloud and the agent parse them:
//! nothing may panic, and a complete head never claims more bytes than came.
//! The same bytes as a device's chunked answer (head and body): what is
//! read never claims more data than came.
//! The same bytes as a cloud URL: what parses is written back as the
//! `Host` header would carry it, and reads back the same.
#![no_main]

use dca_core::sync::url::CloudUrl;
use dca_core::sync::{chunked, http};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(head)) = http::parse_request(data) {
        assert!(head.head_len <= data.len());
        let _ = (
            head.method,
            head.path,
            head.content_type,
            head.authorization,
            head.cookie,
            head.origin,
            head.host,
        );
    }
    for tunnel in [false, true] {
        if let Ok(Some(head)) = http::parse_response(data, tunnel) {
            assert!(head.head_len <= data.len());
        }
    }
    if let Ok(Some((_, head_len))) = chunked::response_head(data) {
        assert!(head_len <= data.len());
    }
    let mut collected = 0usize;
    if let Ok(p) = chunked::body(data, &mut |d| collected += d.len()) {
        assert!(collected <= p.consumed && p.consumed <= data.len());
        assert!(p.end.is_none_or(|end| end == p.consumed));
    }
    if let Ok(text) = core::str::from_utf8(data)
        && let Ok(url) = CloudUrl::parse(text)
    {
        assert!(!url.host.is_empty() && url.port > 0);
        let again = format!("https://{url}");
        assert_eq!(CloudUrl::parse(&again), Ok(url), "{text:?} -> {again:?}");
    }
});
