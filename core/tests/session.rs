//! The agent's session against a small model of the cloud: which requests
//! it makes, what each answer makes it do, and that no answer blocks it.
//! (The real cloud and real faults are `dca-sim simulate`'s part.)

use dca_core::sync::batch::{BatchId, parse_record};
use dca_core::sync::journal::{AppendError, Entry, Journal};
use dca_core::sync::message::{Readings, Request, Response, Task, capability};
use dca_core::sync::session::{Config, Event, Failure, Now, Retention, Session};
use dca_core::sync::task::Order;
use dca_core::time::{Duration, Instant};
use std::collections::BTreeMap;

/// A journal in memory, with a byte limit to play a full disk.
#[derive(Default)]
struct MemJournal {
    entries: BTreeMap<u64, (BatchId, Vec<u8>, Option<u64>)>,
    /// Positions only grow, even when every entry has gone.
    last_pos: u64,
    quarantined: Vec<(u64, String)>,
    limit: Option<usize>,
    volatile: Vec<u64>,
}

impl MemJournal {
    fn bytes(&self) -> usize {
        self.entries.values().map(|(_, r, _)| r.len()).sum()
    }
    fn next_pos(&mut self) -> u64 {
        self.last_pos += 1;
        self.last_pos
    }
}

impl Journal for MemJournal {
    type Error = String;

    fn append(
        &mut self,
        id: &BatchId,
        made_ms: Option<u64>,
        record: &[u8],
    ) -> Result<u64, AppendError<String>> {
        if self.limit.is_some_and(|l| self.bytes() + record.len() > l) {
            return Err(AppendError::Full);
        }
        let pos = self.next_pos();
        self.entries.insert(pos, (*id, record.to_vec(), made_ms));
        Ok(pos)
    }

    fn hold_in_memory(&mut self, id: &BatchId, made_ms: Option<u64>, record: &[u8]) -> Option<u64> {
        let pos = self.next_pos();
        self.entries.insert(pos, (*id, record.to_vec(), made_ms));
        self.volatile.push(pos);
        Some(pos)
    }

    fn next(&mut self, after: Option<u64>) -> Result<Option<Entry>, String> {
        let from = after.map_or(0, |a| a + 1);
        Ok(self
            .entries
            .range(from..)
            .next()
            .map(|(pos, (id, r, made))| Entry {
                pos: *pos,
                id: *id,
                len: r.len(),
                made_ms: *made,
            }))
    }

    fn read(&mut self, pos: u64, buf: &mut [u8]) -> Result<usize, String> {
        let (_, r, _) = self.entries.get(&pos).ok_or("no such entry")?;
        buf[..r.len()].copy_from_slice(r);
        Ok(r.len())
    }

    fn remove(&mut self, pos: u64) -> Result<(), String> {
        self.entries.remove(&pos);
        Ok(())
    }

    fn quarantine(&mut self, pos: u64, reason: &str) -> Result<(), String> {
        self.entries.remove(&pos);
        self.quarantined.push((pos, reason.to_string()));
        Ok(())
    }
}

/// The cloud's rules in a few lines: batches by digest, `last_batch` per
/// agent, and an answer chosen by the test when it wants a fault.
#[derive(Default)]
struct ModelCloud {
    held: Vec<BatchId>,
    last: Option<BatchId>,
    tasks: Vec<(u64, &'static str, &'static str)>,
    results: Vec<(u64, bool, String)>,
    uploads: usize,
    /// What `welcome` says (0: nothing).
    poll_interval_s: u32,
    /// What `welcome` offers for the push channel (0: none).
    hold_max_s: u32,
    /// The waits of the `listen` requests answered.
    listens: Vec<u32>,
}

impl ModelCloud {
    fn answer(&mut self, body: &[u8]) -> (u16, Vec<u8>) {
        let mut out = vec![0u8; 4096];
        let response = match Request::decode(body).expect("the agent sends valid requests") {
            Request::Hello { .. } => Response::Welcome {
                server_ms: 0,
                last_batch: self.last,
                held: self.held.len() as u64,
                poll_interval_s: self.poll_interval_s,
                hold_max_s: self.hold_max_s,
            },
            Request::Upload {
                batch,
                after,
                readings,
                ..
            } => {
                self.uploads += 1;
                assert_eq!(BatchId::of(&readings), batch, "the id names the readings");
                let duplicate = self.held.contains(&batch);
                let in_order = after.is_none_or(|a| self.held.contains(&a));
                if !duplicate && !in_order {
                    let n = Response::Rejected {
                        code: 409,
                        reason: "the batch before it is not held",
                    }
                    .encode(&mut out)
                    .unwrap();
                    out.truncate(n);
                    return (409, out);
                }
                if !duplicate {
                    self.held.push(batch);
                }
                if in_order {
                    self.last = Some(batch);
                }
                Response::Ack {
                    batch,
                    stored: if duplicate { 0 } else { readings.len() as u32 },
                    duplicate,
                }
            }
            Request::TaskPoll | Request::Listen { .. } => {
                if let Request::Listen { wait_s } = Request::decode(body).unwrap() {
                    self.listens.push(wait_s);
                }
                let mut list = heapless::Vec::new();
                for (id, kind, arg) in self.tasks.drain(..) {
                    list.push(Task { id, kind, arg }).unwrap();
                }
                let n = Response::Tasks(list).encode(&mut out).unwrap();
                out.truncate(n);
                return (200, out);
            }
            Request::TaskResult { task, ok, detail } => {
                self.results.push((task, ok, detail.to_string()));
                Response::Noted
            }
            Request::Enroll { .. } | Request::Relay { .. } => unreachable!(),
        };
        let n = response.encode(&mut out).unwrap();
        out.truncate(n);
        (200, out)
    }
}

fn rejected(code: u16, reason: &str) -> Vec<u8> {
    let mut out = vec![0u8; 512];
    let n = Response::Rejected { code, reason }
        .encode(&mut out)
        .unwrap();
    out.truncate(n);
    out
}

/// A record of `n` fake readings, distinct per `tag`.
fn record(tag: u64, n: u64) -> (Vec<u8>, BatchId) {
    let mut items = Vec::new();
    for i in 0..n {
        // Each reading: a CBOR map {1: "hp", 2: "SERIAL-tag-i"}.
        let serial = format!("S{tag}-{i}");
        items.extend_from_slice(&[0xa2, 0x01, 0x62, b'h', b'p', 0x02]);
        items.push(0x60 + serial.len() as u8);
        items.extend_from_slice(serial.as_bytes());
    }
    let id = BatchId::of(&Readings::new(&items, n));
    let mut rec = vec![0x80 + n as u8];
    rec.extend_from_slice(&items);
    assert_eq!(parse_record(&rec).unwrap().len(), n);
    (rec, id)
}

struct Agent {
    session: Session,
    journal: MemJournal,
    now: u64,
    events: Vec<Event>,
    /// A `listen` sent and not answered yet.
    held: Option<Vec<u8>>,
}

impl Agent {
    fn new(collect_every: Option<Duration>) -> Agent {
        let mut cfg = Config::new("test");
        cfg.collect_every = collect_every;
        Agent {
            session: Session::new(cfg, Instant::from_millis(0), [1; 16], 42),
            journal: MemJournal::default(),
            now: 0,
            events: Vec::new(),
            held: None,
        }
    }

    fn at(&self) -> Now {
        Now {
            at: Instant::from_millis(self.now),
            wall_ms: Some(1_800_000_000_000 + self.now),
        }
    }

    fn commit(&mut self, tag: u64) -> BatchId {
        let (rec, id) = record(tag, 2);
        let now = self.at();
        self.session
            .commit(&mut self.journal, now, &rec, &id)
            .unwrap();
        id
    }

    fn drain(&mut self) {
        while let Some(e) = self.session.poll_event() {
            self.events.push(e);
        }
    }

    /// Runs requests against `cloud` until the session has nothing to send;
    /// `fault` may replace the cloud's answer to the n-th request. Bounded.
    fn run(
        &mut self,
        cloud: &mut ModelCloud,
        mut fault: impl FnMut(usize, &Request<'_>) -> Option<(u16, Vec<u8>)>,
    ) -> usize {
        let mut buf = vec![0u8; 64 * 1024];
        for n in 0..200 {
            let now = self.at();
            let Some(len) = self.session.poll_request(now, &mut self.journal, &mut buf) else {
                self.drain();
                return n;
            };
            let req = Request::decode(&buf[..len]).unwrap();
            let (status, body) = match fault(n, &req) {
                Some(answer) => answer,
                None => cloud.answer(&buf[..len]),
            };
            self.session
                .handle_response(now, &mut self.journal, status, &body);
            let seen = self.events.len();
            self.drain();
            // Tasks are run at once and reported.
            let tasks: Vec<u64> = self.events[seen..]
                .iter()
                .filter_map(|e| match e {
                    Event::Task { id, .. } => Some(*id),
                    _ => None,
                })
                .collect();
            for id in tasks {
                self.session.task_done(id, true, "done");
            }
        }
        panic!("the session never went idle");
    }

    fn failures(&self) -> Vec<(Failure, u64)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Failed {
                    failure, retry_in, ..
                } => Some((*failure, retry_in.millis())),
                _ => None,
            })
            .collect()
    }

    /// Answers the `listen` held since [`Agent::until_listen`] from
    /// `cloud` (tasks are not run).
    fn answer_held(&mut self, cloud: &mut ModelCloud) {
        let held = self.held.take().expect("a listen is held");
        let (status, body) = cloud.answer(&held);
        let now = self.at();
        self.session
            .handle_response(now, &mut self.journal, status, &body);
        self.drain();
    }

    /// Steps until the session holds a `listen` (not answered) or has
    /// nothing to send; returns the kinds sent before it. Bounded.
    fn until_listen(&mut self, cloud: &mut ModelCloud) -> (Vec<&'static str>, Option<u32>) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut sent = Vec::new();
        let mut round_ended = false;
        for _ in 0..50 {
            let now = self.at();
            let Some(len) = self.session.poll_request(now, &mut self.journal, &mut buf) else {
                let seen = self.events.len();
                self.drain();
                // The call that ends a round sends nothing; the next may
                // listen.
                if !round_ended
                    && self.events[seen..]
                        .iter()
                        .any(|e| matches!(e, Event::RoundDone { .. }))
                {
                    round_ended = true;
                    continue;
                }
                return (sent, None);
            };
            if let Request::Listen { wait_s } = Request::decode(&buf[..len]).unwrap() {
                self.held = Some(buf[..len].to_vec());
                return (sent, Some(wait_s));
            }
            sent.push(kind_of(&buf[..len]));
            let (status, body) = cloud.answer(&buf[..len]);
            self.session
                .handle_response(now, &mut self.journal, status, &body);
            let seen = self.events.len();
            self.drain();
            // Tasks that came are run at once.
            let started: Vec<u64> = self.events[seen..]
                .iter()
                .filter_map(|e| match e {
                    Event::Task { id, .. } => Some(*id),
                    _ => None,
                })
                .collect();
            for id in started {
                self.session.task_done(id, true, "done");
            }
        }
        panic!("the session neither listened nor went idle");
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.session.handle_timeout(Instant::from_millis(self.now));
        self.drain();
    }
}

fn ok(_: usize, _: &Request<'_>) -> Option<(u16, Vec<u8>)> {
    None
}

fn kind_of(body: &[u8]) -> &'static str {
    match Request::decode(body).unwrap() {
        Request::Enroll { .. } => "enroll",
        Request::Hello { .. } => "hello",
        Request::Upload { .. } => "upload",
        Request::TaskPoll => "task_poll",
        Request::TaskResult { .. } => "task_result",
        Request::Listen { .. } => "listen",
        Request::Relay { .. } => "relay",
    }
}

/// An agent that announces the push channel, collecting every 15 min.
fn listening_agent() -> Agent {
    let mut a = Agent::new(Some(Duration::from_secs(900)));
    let mut cfg = *a.session.config();
    cfg.capabilities |= capability::LISTEN;
    a.session = Session::new(cfg, Instant::from_millis(0), [1; 16], 42);
    a
}

fn offering_cloud() -> ModelCloud {
    ModelCloud {
        hold_max_s: 25,
        ..ModelCloud::default()
    }
}

#[test]
fn between_rounds_the_agent_listens_and_a_task_that_comes_starts_a_round() {
    let mut a = listening_agent();
    let mut cloud = offering_cloud();
    // The first collection falls due at once; the next is 15 min away.
    a.advance(0);
    a.commit(1);
    let (sent, wait) = a.until_listen(&mut cloud);
    assert_eq!(sent, ["hello", "upload", "task_poll"]);
    assert_eq!(
        wait,
        Some(25),
        "the cloud's hold, the collection being 15 min away"
    );
    assert!(!a.session.is_busy(), "a held listen is not a round");
    assert_eq!(a.session.in_flight_wait(), Some(Duration::from_secs(25)));
    // The task comes while the listen is held.
    cloud.tasks.push((7, "rescan", ""));
    a.answer_held(&mut cloud);
    assert_eq!(cloud.listens, [25]);
    assert!(
        a.events
            .iter()
            .any(|e| matches!(e, Event::Task { id: 7, .. })),
        "{:?}",
        a.events
    );
    assert!(a.session.is_busy());
    assert_eq!(a.session.in_flight_wait(), None);
    // Nothing is sent while the task runs; then its result goes out in a
    // round, and the agent listens again.
    let mut buf = vec![0u8; 1024];
    let now = a.at();
    assert_eq!(a.session.poll_request(now, &mut a.journal, &mut buf), None);
    a.session.task_done(7, true, "rescan: done");
    let (sent, wait) = a.until_listen(&mut cloud);
    assert_eq!(sent, ["hello", "task_result", "task_poll"]);
    assert_eq!(cloud.results, [(7, true, "rescan: done".to_string())]);
    assert_eq!(wait, Some(25));
}

#[test]
fn a_listen_ends_before_the_next_collection_and_none_is_sent_just_before_it() {
    let mut a = listening_agent();
    let mut cloud = offering_cloud();
    a.advance(0);
    a.until_listen(&mut cloud);
    // An empty answer: the agent may listen again at once.
    a.answer_held(&mut cloud);
    // 10.5 s before the collection: a wait of 10 s.
    a.now = 900_000 - 10_500;
    let mut buf = vec![0u8; 1024];
    let n = a
        .session
        .poll_request(a.at(), &mut a.journal, &mut buf)
        .unwrap();
    assert_eq!(
        Request::decode(&buf[..n]).unwrap(),
        Request::Listen { wait_s: 10 }
    );
    assert_eq!(a.session.in_flight_wait(), Some(Duration::from_secs(10)));
    // The shell gives it up to run a round: no failure, no channel down.
    a.session.abandon_listen();
    a.now = 900_000 - 900;
    assert_eq!(
        a.session.poll_request(a.at(), &mut a.journal, &mut buf),
        None
    );
    a.drain();
    assert!(a.failures().is_empty());
    assert!(
        !a.events
            .iter()
            .any(|e| matches!(e, Event::ChannelDown { .. }))
    );
    a.advance(900);
    assert!(a.events.iter().any(|e| matches!(e, Event::Collect)));
}

#[test]
fn a_failed_channel_falls_back_to_the_task_poll_without_backoff_and_is_tried_after_the_next_round()
{
    for fault in ["transport", "gateway"] {
        let mut a = listening_agent();
        let mut cloud = offering_cloud();
        a.advance(0);
        a.until_listen(&mut cloud);
        a.held = None;
        let now = a.at();
        if fault == "transport" {
            a.session.handle_transport_error(now, "connection reset");
        } else {
            // A proxy that cuts held requests answers with its own page.
            a.session
                .handle_response(now, &mut a.journal, 504, b"<html>Gateway Timeout</html>");
        }
        a.drain();
        assert!(
            a.events
                .iter()
                .any(|e| matches!(e, Event::ChannelDown { .. })),
            "{fault}: {:?}",
            a.events
        );
        assert!(a.failures().is_empty(), "{fault}: no backoff");
        assert!(!a.session.channel_up());
        // No listen until the task poll is due (5 min, the default).
        assert_eq!(a.until_listen(&mut cloud), (vec![], None), "{fault}");
        a.advance(299_000);
        assert_eq!(a.until_listen(&mut cloud), (vec![], None), "{fault}");
        a.advance(1_000);
        let (sent, wait) = a.until_listen(&mut cloud);
        assert_eq!(sent, ["hello", "task_poll"], "{fault}");
        assert_eq!(
            wait,
            Some(25),
            "{fault}: the round went through, the channel is tried again"
        );
    }
}

#[test]
fn no_listen_without_the_capability_or_the_clouds_offer() {
    // The agent announces it, the cloud offers none (an older cloud).
    let mut a = listening_agent();
    let mut cloud = ModelCloud::default();
    a.advance(0);
    assert_eq!(
        a.until_listen(&mut cloud),
        (vec!["hello", "task_poll"], None)
    );
    // The cloud offers it, the agent does not announce it.
    let mut a = Agent::new(Some(Duration::from_secs(900)));
    let mut cloud = offering_cloud();
    a.advance(0);
    assert_eq!(
        a.until_listen(&mut cloud),
        (vec!["hello", "task_poll"], None)
    );
    assert!(cloud.listens.is_empty());
}

#[test]
fn a_round_delivers_every_batch_in_order_then_polls_tasks() {
    let mut a = Agent::new(None);
    let ids = [a.commit(1), a.commit(2), a.commit(3)];
    let mut cloud = ModelCloud::default();
    let requests = a.run(&mut cloud, ok);
    // hello, three uploads, one task poll.
    assert_eq!(requests, 5);
    assert_eq!(cloud.held, ids);
    assert!(matches!(
        a.events.last(),
        Some(Event::RoundDone {
            uploaded: 3,
            stored: 6
        })
    ));
    // Nothing is sent again in the next round.
    a.session.sync_now();
    a.run(&mut cloud, ok);
    assert_eq!(cloud.uploads, 3);
}

#[test]
fn a_restored_cloud_gets_back_what_it_lost_once() {
    let mut a = Agent::new(None);
    let ids = [a.commit(1), a.commit(2), a.commit(3)];
    let mut cloud = ModelCloud::default();
    a.run(&mut cloud, ok);
    // Restored from a backup taken after the first batch.
    cloud.held.truncate(1);
    cloud.last = Some(ids[0]);
    a.session.sync_now();
    a.run(&mut cloud, ok);
    assert_eq!(cloud.held, ids);
    assert_eq!(cloud.uploads, 5, "only the two lost batches went again");
    assert!(
        a.events
            .iter()
            .any(|e| matches!(e, Event::Resending { from: Some(2) }))
    );
}

#[test]
fn a_re_enrolled_agent_resends_its_journal_as_duplicates_and_is_never_blocked() {
    let mut a = Agent::new(None);
    a.commit(1);
    let mut cloud = ModelCloud::default();
    a.run(&mut cloud, ok);
    // The cloud was down for the next collection...
    let second = a.commit(2);
    a.run(&mut cloud, |_, _| {
        Some((503, rejected(503, "storage error")))
    });
    // ...and the agent came back under a new identity: the cloud knows
    // no batch of the new agent's.
    cloud.last = None;
    a.advance(60_000);
    a.run(&mut cloud, ok);
    assert_eq!(cloud.held.len(), 2);
    assert_eq!(cloud.held[1], second);
    assert!(a.events.iter().any(|e| matches!(
        e,
        Event::Delivered {
            duplicate: true,
            ..
        }
    )));
}

#[test]
fn a_malformed_batch_is_quarantined_and_the_rest_flow() {
    let mut a = Agent::new(None);
    let ids = [a.commit(1), a.commit(2), a.commit(3)];
    let mut cloud = ModelCloud::default();
    a.run(&mut cloud, |_, req| match req {
        Request::Upload { batch, .. } if *batch == ids[1] => Some((
            400,
            rejected(400, "reading 0 of the batch: missing field `clock`"),
        )),
        _ => None,
    });
    assert_eq!(cloud.held, [ids[0], ids[2]]);
    assert_eq!(a.journal.quarantined.len(), 1);
    assert!(a.journal.quarantined[0].1.contains("missing field"));
    assert!(a.failures().is_empty());
}

#[test]
fn a_proxys_error_page_is_waited_out_not_taken_as_the_clouds_verdict() {
    let mut a = Agent::new(None);
    let id = a.commit(1);
    let mut cloud = ModelCloud::default();
    a.run(&mut cloud, |_, req| {
        matches!(req, Request::Upload { .. })
            .then(|| (413, b"<html>Request Entity Too Large</html>".to_vec()))
    });
    assert!(a.journal.quarantined.is_empty());
    assert_eq!(a.failures()[0].0, Failure::Unreachable);
    // Nothing is sent before the delay is over...
    assert_eq!(a.run(&mut cloud, ok), 0);
    a.advance(30_000);
    a.run(&mut cloud, ok);
    assert_eq!(cloud.held, [id]);
}

#[test]
fn backoff_doubles_from_30_s_to_15_min_with_jitter() {
    let mut a = Agent::new(None);
    a.commit(1);
    let mut cloud = ModelCloud::default();
    for _ in 0..9 {
        a.run(&mut cloud, |_, _| Some((502, b"Bad Gateway".to_vec())));
        let (_, delay) = *a.failures().last().unwrap();
        a.advance(delay);
    }
    let delays: Vec<u64> = a.failures().iter().map(|(_, d)| *d).collect();
    let bases = [30, 60, 120, 240, 480, 900, 900, 900, 900];
    for (d, base) in delays.iter().zip(bases) {
        let base = base * 1000;
        assert!(*d <= base && *d >= base - base / 5, "{d} ms vs base {base}");
    }
    assert!(
        delays[5..].windows(2).any(|w| w[0] != w[1]),
        "jitter spreads retries: {delays:?}"
    );
    // It heals as soon as the cloud answers.
    a.run(&mut cloud, ok);
    assert_eq!(cloud.held.len(), 1);
}

#[test]
fn refused_credentials_keep_the_agent_collecting_and_retrying_at_the_longest_delay() {
    let mut a = Agent::new(Some(Duration::from_secs(900)));
    a.drain();
    assert!(a.events.is_empty());
    a.advance(0);
    assert_eq!(a.events, [Event::Collect]);
    a.commit(1);
    let mut cloud = ModelCloud::default();
    a.run(&mut cloud, |_, _| {
        Some((401, rejected(401, "unknown agent or wrong secret")))
    });
    assert_eq!(a.failures(), [(Failure::Credentials, 900_000)]);
    // Collections go on meanwhile, on their own schedule.
    a.events.clear();
    a.advance(900_000);
    assert!(a.events.contains(&Event::Collect));
    a.commit(2);
    // An administrator re-enrolled it: everything arrives.
    a.run(&mut cloud, ok);
    assert_eq!(cloud.held.len(), 2);
}

#[test]
fn a_cloud_of_another_version_asks_for_an_upgrade() {
    let mut a = Agent::new(None);
    a.commit(1);
    let mut cloud = ModelCloud::default();
    let mut v1 = vec![0u8; 128];
    let n = Response::encode_rejection(1, 400, "unsupported protocol version 2", &mut v1).unwrap();
    v1.truncate(n);
    a.run(&mut cloud, |_, _| Some((400, v1.clone())));
    assert_eq!(a.failures()[0].0, Failure::Version);
}

#[test]
fn tasks_are_validated_and_results_reported() {
    let mut a = Agent::new(Some(Duration::from_secs(900)));
    let mut cloud = ModelCloud {
        tasks: vec![
            (1, "set_schedule", "120"),
            (2, "set_schedule", "5"),
            (3, "poll_device", "10.0.0.0/24"),
            (4, "format_disk", ""),
            (5, "set_targets", "10.1.0.0/24, 10.2.0.1-9"),
            (6, "set_log_level", "debug"),
        ],
        ..ModelCloud::default()
    };
    a.run(&mut cloud, ok);
    let orders: Vec<(u64, Order)> = a
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Task { id, order } => Some((*id, order.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(orders.len(), 3, "{orders:?}");
    assert_eq!(orders[0], (1, Order::SetSchedule(Duration::from_secs(120))));
    assert!(
        matches!(&orders[1], (5, Order::SetTargets(t)) if t.as_str() == "10.1.0.0/24,10.2.0.1-9")
    );
    let mut results = cloud.results.clone();
    results.sort();
    let failed: Vec<u64> = results.iter().filter(|r| !r.1).map(|r| r.0).collect();
    assert_eq!(failed, [2, 3, 4]);
    assert!(
        results
            .iter()
            .any(|r| r.0 == 4 && r.2.contains("format_disk"))
    );
    // The schedule took effect: the next collection is 120 s away.
    a.events.clear();
    a.advance(120_000);
    assert!(a.events.contains(&Event::Collect));
}

#[test]
fn a_corrupted_record_is_quarantined_without_troubling_the_cloud() {
    let mut a = Agent::new(None);
    let good = a.commit(1);
    a.commit(2);
    // A bit flips in the second record on disk.
    let (_, rec, _) = a.journal.entries.get_mut(&2).unwrap();
    let last = rec.len() - 1;
    rec[last] ^= 0x01;
    let mut cloud = ModelCloud::default();
    a.run(&mut cloud, ok);
    assert_eq!(cloud.held, [good]);
    assert_eq!(cloud.uploads, 1);
    assert!(a.journal.quarantined[0].1.contains("digest"));
}

#[test]
fn a_full_journal_gives_up_retained_copies_then_holds_in_memory_and_says_so() {
    let mut a = Agent::new(None);
    a.commit(1);
    a.commit(2);
    let mut cloud = ModelCloud::default();
    a.run(&mut cloud, ok);
    // Both delivered and retained; the disk is now full.
    a.journal.limit = Some(a.journal.bytes());
    a.commit(3);
    assert_eq!(a.journal.entries.len(), 1, "retained copies made room");
    assert!(a.journal.volatile.is_empty());
    // Full again with nothing left to give up: held in memory, and said.
    a.journal.limit = Some(0);
    a.events.clear();
    a.commit(4);
    a.drain();
    assert!(
        a.events
            .iter()
            .any(|e| matches!(e, Event::JournalFailed { .. }))
    );
    assert!(
        a.events
            .iter()
            .any(|e| matches!(e, Event::NotDurable { .. }))
    );
    a.run(&mut cloud, ok);
    assert_eq!(cloud.held.len(), 4);
}

#[test]
fn retention_keeps_delivered_batches_within_age_and_bytes() {
    let mut cfg = Config::new("test");
    cfg.collect_every = None;
    cfg.retention = Retention {
        max_age: Duration::from_secs(3600),
        max_bytes: 1 << 20,
    };
    let mut a = Agent::new(None);
    a.session = Session::new(cfg, Instant::from_millis(0), [1; 16], 7);
    a.commit(1);
    let mut cloud = ModelCloud::default();
    a.run(&mut cloud, ok);
    assert_eq!(a.journal.entries.len(), 1, "kept after delivery");
    a.advance(3_600_001);
    a.commit(2);
    a.run(&mut cloud, ok);
    assert_eq!(
        a.journal.entries.keys().copied().collect::<Vec<_>>(),
        [2],
        "the hour-old batch went"
    );
}

#[test]
fn a_round_ends_and_polls_tasks_even_while_collections_keep_coming() {
    let mut a = Agent::new(None);
    let mut cloud = ModelCloud {
        tasks: vec![(1, "set_log_level", "debug")],
        ..ModelCloud::default()
    };
    a.commit(1);
    let mut buf = vec![0u8; 64 * 1024];
    let (mut polled, mut tag) = (false, 1);
    // A collection lands after every upload, as when a sweep takes longer
    // than its interval: the round must still end and poll for tasks.
    for _ in 0..50 {
        let now = a.at();
        let Some(len) = a.session.poll_request(now, &mut a.journal, &mut buf) else {
            break;
        };
        let req = Request::decode(&buf[..len]).unwrap();
        polled |= matches!(req, Request::TaskPoll);
        let upload = matches!(req, Request::Upload { .. });
        let (status, body) = cloud.answer(&buf[..len]);
        a.session
            .handle_response(now, &mut a.journal, status, &body);
        if upload {
            tag += 1;
            a.commit(tag);
        }
        let seen = a.events.len();
        a.drain();
        for e in a.events[seen..].iter().cloned() {
            if let Event::Task { id, .. } = e {
                a.session.task_done(id, true, "done");
            }
        }
    }
    a.drain();
    assert!(polled, "the round reached its task poll");
    assert!(
        a.events
            .iter()
            .any(|e| matches!(e, Event::RoundDone { .. }))
    );
    // And the batches that arrived meanwhile go in the rounds after.
    a.run(&mut cloud, ok);
    assert_eq!(cloud.held.len() as u64, tag);
}

#[test]
fn a_cloud_restored_in_the_middle_of_a_round_is_never_left_with_a_gap() {
    let mut a = Agent::new(None);
    let ids: Vec<BatchId> = (11..=15).map(|t| a.commit(t)).collect();
    let mut cloud = ModelCloud::default();
    let mut buf = vec![0u8; 64 * 1024];
    for step in 0..100 {
        let now = a.at();
        let Some(len) = a.session.poll_request(now, &mut a.journal, &mut buf) else {
            break;
        };
        if step == 4 {
            // Hello and three uploads done: the cloud is restored to when it
            // held the first batch only, and the fourth upload names a
            // predecessor the cloud lost.
            cloud.held.truncate(1);
            cloud.last = Some(ids[0]);
        }
        let (status, body) = cloud.answer(&buf[..len]);
        a.session
            .handle_response(now, &mut a.journal, status, &body);
        a.drain();
    }
    assert_eq!(cloud.held, ids, "every batch, in journal order, once");
    assert!(a.failures().is_empty(), "a resync is not a failure");
}

#[test]
fn a_shorter_task_poll_interval_from_the_cloud_holds_from_its_welcome() {
    let mut a = Agent::new(None);
    let mut cloud = ModelCloud {
        poll_interval_s: 5,
        ..ModelCloud::default()
    };
    a.run(&mut cloud, ok);
    let mut buf = vec![0u8; 4096];
    // Not before the interval the cloud gave...
    a.advance(4_000);
    let now = a.at();
    assert!(
        a.session
            .poll_request(now, &mut a.journal, &mut buf)
            .is_none()
    );
    // ...but then, not after the agent's own 300 s.
    a.advance(1_000);
    let now = a.at();
    assert!(
        a.session
            .poll_request(now, &mut a.journal, &mut buf)
            .is_some()
    );
}
