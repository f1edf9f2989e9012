//! Arbitrary bytes as sync bodies, readings and provisioning blocks: nothing may panic, and what
//! decodes re-encodes to something that decodes to the same message.
#![no_main]

use dca_core::provision::Provisioning;
use dca_core::sync::Error;
use dca_core::sync::message::{Request, Response};
use dca_core::sync::reading::Reading;
use libfuzzer_sys::fuzz_target;

fn check_offset(e: Error, len: usize) {
    if let Error::Cbor { at } = e {
        assert!(
            at <= len,
            "error offset {at} outside the input of {len} bytes"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut buf = vec![0u8; data.len() * 2 + 64];
    match Request::decode(data) {
        Ok(req) => {
            let len = req
                .encode(&mut buf)
                .expect("a decoded request fits twice its size");
            assert_eq!(req.encoded_len(), len);
            assert_eq!(Request::decode(&buf[..len]).as_ref(), Ok(&req));
            if let Request::Upload { readings, .. } = req {
                for r in readings.iter() {
                    let _ = r.map(|r| {
                        (
                            r.key().map(|k| k.to_string()),
                            r.supplies.iter().map(|s| s.percent()).count(),
                        )
                    });
                }
            }
        }
        Err(e) => check_offset(e, data.len()),
    }
    match Response::decode(data) {
        Ok(resp) => {
            let len = resp
                .encode(&mut buf)
                .expect("a decoded response fits twice its size");
            assert_eq!(resp.encoded_len(), len);
            assert_eq!(Response::decode(&buf[..len]).as_ref(), Ok(&resp));
        }
        Err(e) => check_offset(e, data.len()),
    }
    // The provisioning block: read back what it wrote.
    if let Some(Ok(p)) = Provisioning::decode(data) {
        let len = p
            .encode(&mut buf)
            .expect("a decoded block fits twice its size");
        assert_eq!(Provisioning::decode(&buf[..len]), Some(Ok(p)));
    }
    match Reading::decode(data) {
        Ok(r) => {
            let _ = r.key().map(|k| k.to_string());
        }
        Err(e) => check_offset(e, data.len()),
    }
});
