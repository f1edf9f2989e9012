//! Arbitrary bytes as the certificates a server presents, as the device's
//! verifier reads them: nothing may panic, whatever parses answers every
//! question the verifier asks, and no such chain is ever trusted.
#![no_main]

use cloud_tls::{Certificate, CloudVerifier, Trust};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // One certificate, or two when a split point is given by the first byte.
    let (first, second) = match data.split_first() {
        Some((&cut, rest)) if usize::from(cut) < rest.len() => rest.split_at(usize::from(cut)),
        _ => (data, &[][..]),
    };
    for der in [first, second, data] {
        if let Ok(cert) = Certificate::parse(der) {
            let _ = cert.spki_pin();
            let _ = cert.p256_key();
            let _ = cert.is_ca();
            let _ = cert.names_host("cloud.example");
            let _ = cert.names_host("10.77.0.1");
            let _ = cert.check_issued_by(&cert);
        }
    }
    let chain = [first, second];
    let pins = [[0x5a; 32]];
    for trust in [Trust::Pins(&pins), Trust::Ca(second)] {
        let mut v = CloudVerifier::new(trust);
        let _ = v.check_chain(&chain, [0; 32]);
        // No CertificateVerify has been checked: nothing is trusted yet.
        assert!(!v.is_verified());
    }
});
