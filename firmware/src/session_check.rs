//! The agent's cloud session on the target: a batch journaled in RAM, then
//! one round against answers made here (hello, upload, task poll), driven by
//! the same core state machine the host agent and the simulator drive. The
//! network and a flash journal come with later work; this proves the one
//! brain runs here within fixed memory.

use dca_core::sync::batch::BatchId;
use dca_core::sync::journal::{AppendError, Entry, Journal};
use dca_core::sync::message::{Readings, Request, Response};
use dca_core::sync::session::{Config, Event, Now, Session};
use dca_core::time::Instant;
use heapless::Vec;

const RECORD_ROOM: usize = 256;

/// A journal of a few small records in RAM.
#[derive(Default)]
struct RamJournal {
    entries: Vec<(u64, BatchId, Vec<u8, RECORD_ROOM>), 4>,
    last: u64,
}

impl Journal for RamJournal {
    type Error = &'static str;

    fn append(
        &mut self,
        id: &BatchId,
        _: Option<u64>,
        record: &[u8],
    ) -> Result<u64, AppendError<&'static str>> {
        let record = Vec::from_slice(record).map_err(|_| AppendError::Full)?;
        self.last = self.last.saturating_add(1);
        self.entries
            .push((self.last, *id, record))
            .map_err(|_| AppendError::Full)?;
        Ok(self.last)
    }

    fn next(&mut self, after: Option<u64>) -> Result<Option<Entry>, &'static str> {
        Ok(self
            .entries
            .iter()
            .find(|(pos, _, _)| Some(*pos) > after)
            .map(|(pos, id, r)| Entry {
                pos: *pos,
                id: *id,
                len: r.len(),
                made_ms: None,
            }))
    }

    fn read(&mut self, pos: u64, buf: &mut [u8]) -> Result<usize, &'static str> {
        let (_, _, r) = self
            .entries
            .iter()
            .find(|(p, _, _)| *p == pos)
            .ok_or("no such entry")?;
        buf.get_mut(..r.len())
            .ok_or("buffer too small")?
            .copy_from_slice(r);
        Ok(r.len())
    }

    fn remove(&mut self, pos: u64) -> Result<(), &'static str> {
        self.entries.retain(|(p, _, _)| *p != pos);
        Ok(())
    }

    fn quarantine(&mut self, pos: u64, _: &str) -> Result<(), &'static str> {
        self.remove(pos)
    }
}

/// The cloud's answer to `request`, as dca-cloud would give it.
fn answer(request: &[u8], out: &mut [u8]) -> Option<usize> {
    let response = match Request::decode(request).ok()? {
        Request::Hello { .. } => Response::Welcome {
            server_ms: 0,
            last_batch: None,
            held: 0,
            poll_interval_s: 300,
        },
        Request::Upload {
            batch, readings, ..
        } => Response::Ack {
            batch,
            stored: u32::try_from(readings.len()).ok()?,
            duplicate: false,
        },
        Request::TaskPoll => Response::Tasks(Vec::new()),
        _ => return None,
    };
    response.encode(out).ok()
}

/// Runs one round; true when the batch was delivered and the round ended.
#[inline(never)]
pub fn round() -> bool {
    let mut cfg = Config::new("firmware");
    cfg.collect_every = None;
    let mut session = Session::new(cfg, Instant::from_millis(0), [0x5a; 16], 1);
    let mut journal = RamJournal::default();
    // One reading: {1: "hp", 2: "SERIAL"}.
    let items = [
        0xa2, 0x01, 0x62, b'h', b'p', 0x02, 0x66, b'S', b'E', b'R', b'I', b'A', b'L',
    ];
    let id = BatchId::of(&Readings::new(&items, 1));
    let mut record = [0u8; 1 + 13];
    record[0] = 0x81;
    record[1..].copy_from_slice(&items);
    let now = Now {
        at: Instant::from_millis(1),
        wall_ms: None,
    };
    if session.commit(&mut journal, now, &record, &id).is_err() {
        return false;
    }
    let mut request = [0u8; RECORD_ROOM + dca_core::sync::session::UPLOAD_OVERHEAD];
    let mut response = [0u8; 256];
    let (mut delivered, mut done, mut exchanges) = (false, false, 0u32);
    // Bounded: a round is a handful of exchanges.
    for _ in 0..16 {
        let sent = session.poll_request(now, &mut journal, &mut request);
        if let Some(n) = sent {
            let Some(m) = request.get(..n).and_then(|r| answer(r, &mut response)) else {
                return false;
            };
            exchanges = exchanges.saturating_add(1);
            session.handle_response(now, &mut journal, 200, response.get(..m).unwrap_or(&[]));
        }
        while let Some(e) = session.poll_event() {
            match e {
                Event::Delivered { batch, .. } => delivered |= batch == id,
                Event::RoundDone { .. } => done = true,
                _ => {}
            }
        }
        if sent.is_none() {
            break;
        }
    }
    defmt::info!(
        "dca-firmware: session round of {=u32} exchanges, {=usize} bytes of session state",
        exchanges,
        core::mem::size_of::<Session>()
    );
    delivered && done
}
