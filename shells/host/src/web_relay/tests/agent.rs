//! `open_web` as one of the agent's tasks: refused at once on a port it
//! does not relay to, else started on a thread of its own while the
//! agent's round goes on.

use super::support::*;
use crate::cloud_session::Outcome;
use crate::cloud_session::tests::{Fake, TempDir, agent, enrolled, push_config};
use crate::web_relay::{Connector, WebAccess, ports};
use dca_core::sync::web_access::Refusal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// Web access whose relays talk to `cloud`; counts the connections made
/// and says when a relay let its connection go.
fn web(
    extra: &[u16],
    cloud: &FakeCloud,
    ids: &Identities,
    made: Arc<AtomicUsize>,
    done: mpsc::Sender<()>,
) -> WebAccess {
    let cloud = cloud.clone();
    let connect: Connector = Arc::new(move || {
        made.fetch_add(1, Ordering::SeqCst);
        Box::new(Signalling(cloud.clone(), done.clone()))
    });
    WebAccess::new(extra, connect, ids.reader())
}

fn open_web(target: std::net::SocketAddr) -> (&'static str, String) {
    (
        "open_web",
        format!("session=7;target={target};serial={SERIAL};ttl=600"),
    )
}

#[test]
fn web_ports_are_the_defaults_and_the_configured_ones() {
    assert_eq!(ports(&[]), [80, 443, 8080, 8443]);
    assert_eq!(ports(&[9443, 80, 8000]), [80, 443, 8000, 8080, 8443, 9443]);
}

#[test]
fn open_web_on_a_port_not_allowed_fails_at_once() {
    let dir = TempDir::new("web-port");
    enrolled(&dir.0);
    let cloud = Fake::default();
    cloud.0.borrow_mut().tasks = vec![open_web("127.64.10.1:22".parse().unwrap())];
    let mut a = agent(&dir.0, &cloud, push_config(), false);
    let relay_cloud = FakeCloud::new(Vec::new());
    let made = Arc::new(AtomicUsize::new(0));
    let (tx, _rx) = mpsc::channel();
    let ids = Identities::always(SERIAL);
    a.set_web_access(Some(web(&[], &relay_cloud, &ids, made.clone(), tx)));
    a.session.sync_now();
    assert!(matches!(a.round(), Some(Outcome::RoundDone { .. })));
    let c = cloud.0.borrow();
    assert_eq!(c.results.len(), 1);
    let (_, ok, detail) = &c.results[0];
    assert!(!ok);
    assert!(detail.starts_with(Refusal::Port.reason()), "{detail}");
    assert!(detail.contains("127.64.10.1:22"), "{detail}");
    // No relay, no connection to the cloud, no identity read.
    assert_eq!(made.load(Ordering::SeqCst), 0);
    assert_eq!(ids.reads(), 0);
    assert!(a.web_access().unwrap().active().is_empty());
}

#[test]
fn open_web_starts_a_relay_and_the_round_goes_on() {
    let dir = TempDir::new("web-open");
    enrolled(&dir.0);
    let dev = Device::start([127, 64, 10, 2], answer("200 OK", "", "status page"));
    let cloud = Fake::default();
    cloud.0.borrow_mut().tasks = vec![open_web(dev.addr)];
    let mut a = agent(&dir.0, &cloud, push_config(), false);
    let relay_cloud = FakeCloud::new(vec![get("/")]);
    let made = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let ids = Identities::always(SERIAL);
    // The test device listens on a port of the system's choosing: allowed
    // as `--web-port` allows one.
    let w = web(&[dev.addr.port()], &relay_cloud, &ids, made.clone(), tx);
    a.set_web_access(Some(w));
    a.session.sync_now();
    assert!(matches!(a.round(), Some(Outcome::RoundDone { .. })));
    let (ok, detail) = {
        let c = cloud.0.borrow();
        assert_eq!(c.results.len(), 1);
        (c.results[0].1, c.results[0].2.clone())
    };
    assert!(ok, "{detail}");
    assert_eq!(
        detail,
        format!("web access session 7 relaying to {}", dev.addr)
    );
    // The relay ends when its cloud closes the session.
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the relay ended");
    assert_eq!(made.load(Ordering::SeqCst), 1);
    let answers = relay_cloud.answers();
    assert_eq!(answers.len(), 1);
    assert_eq!(
        (answers[0].status, answers[0].body.as_slice()),
        (200, &b"status page"[..])
    );
    assert_eq!(dev.connections(), 1);
}

#[test]
fn a_one_shot_push_relays_nothing() {
    let dir = TempDir::new("web-push");
    enrolled(&dir.0);
    let cloud = Fake::default();
    cloud.0.borrow_mut().tasks = vec![open_web("127.64.10.3:80".parse().unwrap())];
    let mut a = agent(&dir.0, &cloud, push_config(), true);
    assert!(a.web_access().is_none());
    assert_eq!(crate::push_cmd::deliver(&mut a), 0);
    let c = cloud.0.borrow();
    assert!(!c.results[0].1);
    assert!(
        c.results[0].2.contains("relays no web access"),
        "{:?}",
        c.results
    );
}
