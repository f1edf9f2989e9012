//! The session fed arbitrary answers, failures, timeouts, task reports and
//! journal faults in any order: it never panics, never has two requests in
//! flight, and every request it makes decodes.
#![no_main]

use dca_core::sync::batch::{BatchId, parse_record};
use dca_core::sync::journal::{AppendError, Entry, Journal};
use dca_core::sync::message::{Readings, Request};
use dca_core::sync::session::{Config, Now, Session};
use dca_core::time::{Duration, Instant};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

/// A journal in memory whose storage fails when the input says so.
#[derive(Default)]
struct FlakyJournal {
    entries: BTreeMap<u64, (BatchId, Vec<u8>)>,
    last: u64,
    failing: bool,
}

impl Journal for FlakyJournal {
    type Error = &'static str;

    fn append(
        &mut self,
        id: &BatchId,
        _: Option<u64>,
        r: &[u8],
    ) -> Result<u64, AppendError<&'static str>> {
        if self.failing {
            return Err(AppendError::Full);
        }
        self.last += 1;
        self.entries.insert(self.last, (*id, r.to_vec()));
        Ok(self.last)
    }

    fn next(&mut self, after: Option<u64>) -> Result<Option<Entry>, &'static str> {
        if self.failing {
            return Err("EIO");
        }
        Ok(self
            .entries
            .range(after.map_or(0, |a| a + 1)..)
            .next()
            .map(|(p, (id, r))| Entry {
                pos: *p,
                id: *id,
                len: r.len(),
                made_ms: None,
            }))
    }

    fn read(&mut self, pos: u64, buf: &mut [u8]) -> Result<usize, &'static str> {
        let (_, r) = self.entries.get(&pos).ok_or("gone")?;
        let dst = buf.get_mut(..r.len()).ok_or("small")?;
        dst.copy_from_slice(r);
        Ok(r.len())
    }

    fn remove(&mut self, pos: u64) -> Result<(), &'static str> {
        self.entries.remove(&pos).map(|_| ()).ok_or("gone")
    }

    fn quarantine(&mut self, pos: u64, _: &str) -> Result<(), &'static str> {
        self.remove(pos)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut cfg = Config::new("fuzz");
    cfg.collect_every = Some(Duration::from_secs(60));
    let mut s = Session::new(cfg, Instant::from_millis(0), [0; 16], 1);
    let mut j = FlakyJournal::default();
    let mut now = 0u64;
    let mut buf = vec![0u8; 4096];
    let mut in_flight = false;
    let mut tag = 0u8;
    let mut input = data;
    // Each command is one byte, some followed by a length and bytes.
    while let Some((&op, rest)) = input.split_first() {
        input = rest;
        let at = Now {
            at: Instant::from_millis(now),
            wall_ms: (op & 1 == 0).then_some(now),
        };
        match op % 8 {
            0 => {
                tag = tag.wrapping_add(1);
                let items = [0xa1, 0x01, 0x41, tag];
                let id = BatchId::of(&Readings::new(&items, 1));
                let mut rec = vec![0x81];
                rec.extend_from_slice(&items);
                assert!(parse_record(&rec).is_ok());
                let _ = s.commit(&mut j, at, &rec, &id);
            }
            1 => {
                if let Some(n) = s.poll_request(at, &mut j, &mut buf) {
                    assert!(!in_flight, "two requests in flight");
                    assert!(Request::decode(&buf[..n]).is_ok(), "an undecodable request");
                    in_flight = true;
                }
            }
            2 | 3 => {
                // An answer: status from one byte, body from the next bytes.
                let (status, body) = match input {
                    [s0, len, rest @ ..] => {
                        let n = (*len as usize).min(rest.len());
                        let status =
                            [200, 400, 401, 404, 413, 426, 503, u16::from(*s0)][(*s0 % 8) as usize];
                        (status, &rest[..n])
                    }
                    _ => (200, &[][..]),
                };
                input = input.get(2 + body.len()..).unwrap_or(&[]);
                s.handle_response(at, &mut j, status, body);
                in_flight = false;
            }
            4 => {
                s.handle_transport_error(at, "reset");
                in_flight = false;
            }
            5 => {
                now += u64::from(op) * 1000;
                s.handle_timeout(Instant::from_millis(now));
            }
            6 => j.failing = !j.failing,
            _ => s.task_done(u64::from(op), op & 2 == 0, "done"),
        }
        while s.poll_event().is_some() {}
        let _ = s.poll_timeout();
    }
});
