//! A device that serves its pages over TLS with a certificate it signed
//! itself, as printers do.

use super::support::*;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::io::Write;
use std::sync::Arc;

fn self_signed() -> Arc<ServerConfig> {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["NPI3F2A1B".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der: CertificateDer<'static> = cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der], key)
            .unwrap();
    Arc::new(config)
}

#[test]
fn a_device_with_a_self_signed_certificate_is_relayed_over_tls() {
    let config = self_signed();
    let dev = Device::serve([127, 64, 4, 1], move |tcp| {
        let Ok(conn) = ServerConnection::new(config.clone()) else {
            return Vec::new();
        };
        let mut tls = StreamOwned::new(conn, tcp);
        let request = super::support::read_request_from(&mut tls);
        let _ = tls.write_all(&answer(
            "200 OK",
            "Content-Type: text/html\r\n",
            "<p>secure page</p>",
        ));
        tls.conn.send_close_notify();
        let _ = tls.flush();
        request
    });
    let mut o = opening(dev.addr, 600);
    o.https = true;
    let cloud = FakeCloud::new(vec![get("/secure")]);
    relay(&cloud, o, &Identities::always(SERIAL)).run();
    let a = &cloud.answers()[0];
    assert_eq!(a.refused, None, "{a:?}");
    assert_eq!(
        (a.status, a.body.as_slice()),
        (200, &b"<p>secure page</p>"[..])
    );
    assert!(dev.requests()[0].starts_with("GET /secure HTTP/1.0\r\n"));
}
