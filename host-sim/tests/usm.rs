//! The core's v3 walker against the simulator's v3 engine, in-process and
//! without a network: a printer whose engine reboots in the middle of a
//! walk (boots + 1, time from 0) is followed by the walker, which takes
//! the new clock from the authenticated notInTimeWindow Report, sends the
//! refused request again and ends with the same snapshot as a v2c walk.

mod support;

use dca_core::poll::{Credentials, Sink, WalkConfig, WalkState, Walker};
use dca_core::printer::SnapshotBuilder;
use dca_core::printer::plan::walk_plan;
use dca_core::snmp::usm::{AuthProtocol, PrivProtocol, User};
use dca_core::time::Instant;
use dca_sim::agent::{Behaviour, Reply, View, respond};
use dca_sim::mib::{Dynamic, SimValue};
use dca_sim::usm_agent::{V3Agent, V3Config};
use std::sync::Arc;

fn user() -> User {
    User::new(b"mps")
        .unwrap()
        .with_auth(AuthProtocol::Sha256, b"authpass123")
        .unwrap()
        .with_privacy(PrivProtocol::Aes128, b"privpass123")
        .unwrap()
        .with_context(b"Jetdirect")
        .unwrap()
}

/// Runs `walker` against `answer` until it ends (bounded); `each` runs
/// before every request, with the number of requests sent so far.
fn drive(
    walker: &mut Walker,
    sink: &mut impl Sink,
    mut answer: impl FnMut(&mut [u8]) -> Option<Vec<u8>>,
    mut each: impl FnMut(u32),
) {
    let mut buf = [0u8; 1500];
    let mut now = 0u64;
    for _ in 0..100_000 {
        if walker.state() != WalkState::Running {
            return;
        }
        each(walker.stats().requests);
        match walker.poll_transmit(Instant::from_millis(now), &mut buf) {
            Some(n) => {
                if let Some(mut reply) = answer(&mut buf[..n]) {
                    walker.handle_datagram(Instant::from_millis(now), &mut reply, sink);
                }
            }
            None => {
                now = walker
                    .poll_timeout()
                    .map_or(now + 1, |t| t.millis().max(now + 1));
                walker.handle_timeout(Instant::from_millis(now));
            }
        }
    }
    panic!("the walk did not end");
}

#[test]
fn a_reboot_in_the_middle_of_a_walk_is_followed() {
    let dir = support::corpus().join("librenms/snmprec");
    let loaded = dca_sim::recording::load_file(&dir.join("jetdirect.snmprec")).unwrap();
    let absent = |_: Dynamic| -> Option<SimValue> { None };
    let view = View {
        template: &loaded.template,
        eval: &absent,
    };
    let config = Arc::new(V3Config {
        users: vec![user()],
        context: b"Jetdirect".to_vec(),
        reboot_every: None,
        spread: false,
    });
    let behaviour = Behaviour::default();
    let mut agent = V3Agent::new(config, 7);
    assert_eq!(agent.boots(), 1);

    let mut cfg = WalkConfig::with_credentials(Credentials::Usm(user()));
    cfg.max_repetitions = 5;
    let mut walker = Walker::new(cfg, walk_plan(), 1, Instant::from_millis(0));
    let mut v3 = SnapshotBuilder::new();
    let agent = std::cell::RefCell::new(&mut agent);
    drive(
        &mut walker,
        &mut v3,
        |req| match agent.borrow_mut().respond(&view, &behaviour, req) {
            Reply::Send(b) => Some(b),
            Reply::Drop(_) => None,
        },
        |sent| {
            if sent == 3 && agent.borrow().boots() == 1 {
                agent.borrow_mut().reboot();
            }
        },
    );
    assert_eq!(walker.state(), WalkState::Done, "{:?}", walker.stats());
    assert_eq!(agent.borrow().boots(), 2);
    let stats = walker.stats();
    assert_eq!((stats.discoveries, stats.resyncs), (1, 1), "{stats:?}");
    assert_eq!(walker.engine_reboots(), 1);

    // The same printer walked over v2c gives the same snapshot.
    let mut walker = Walker::new(
        WalkConfig::new(b"public"),
        walk_plan(),
        2,
        Instant::from_millis(0),
    );
    let mut v2 = SnapshotBuilder::new();
    drive(
        &mut walker,
        &mut v2,
        |req| match respond(&view, &behaviour, req) {
            Reply::Send(b) => Some(b),
            Reply::Drop(_) => None,
        },
        |_| {},
    );
    let (a, b) = (v3.finish(), v2.finish());
    assert!(a.is_printer());
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}
