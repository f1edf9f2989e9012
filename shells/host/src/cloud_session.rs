//! One conversation with the cloud: hello, the journaled batches in order
//! until each is acknowledged, then the tasks waiting for this agent.
//! Readings are journaled before they are sent, so a cloud that is down, a
//! connection that drops or an ack that is lost costs nothing: the next
//! session sends the same batch again and the cloud stores it once.

use crate::agent_state::{AgentState, StateDir};
use crate::cloud_link::{CloudUrl, Link, LinkError, Proxy};
use crate::cloud_tls::{self, Trust};
use dca_core::printer::Snapshot;
use dca_core::sync::message::{Readings, Request, Response, capability};
use dca_core::sync::{Clock, reading};
use std::path::PathBuf;

/// Readings per batch: a batch of this many full snapshots stays far below
/// the cloud's body limit.
pub const BATCH_READINGS: u64 = 500;

/// Why a session stopped.
#[derive(Debug)]
pub enum SessionError {
    Link(LinkError),
    /// The cloud answered with a refusal.
    Refused {
        status: u16,
        reason: String,
    },
    /// Local trouble (state files, encoding).
    Local(String),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Link(e) => write!(f, "{e}"),
            SessionError::Refused { status, reason } => {
                write!(f, "the cloud refused ({status}): {reason}")
            }
            SessionError::Local(e) => f.write_str(e),
        }
    }
}

impl From<LinkError> for SessionError {
    fn from(e: LinkError) -> Self {
        SessionError::Link(e)
    }
}

/// The trust an agent's state asks for.
pub fn trust_of(pin: Option<&str>, ca: Option<&PathBuf>) -> Result<Trust, String> {
    match (pin, ca) {
        (Some(p), _) => Ok(Trust::Pin(cloud_tls::parse_pin(p)?)),
        (None, Some(ca)) => Ok(Trust::CaFile(ca.clone())),
        (None, None) => Ok(Trust::System),
    }
}

/// The proxy: `--proxy`, else `HTTPS_PROXY` (unless `NO_PROXY` exempts the cloud).
pub fn proxy_for(flag: Option<&str>, cloud: &CloudUrl) -> Result<Option<Proxy>, String> {
    match flag {
        Some(p) => Proxy::parse(p).map(Some),
        None => Proxy::from_env(cloud),
    }
}

/// A random id for this run of the agent: the cloud tells boots apart by it
/// when a reading carries no wall-clock time.
fn boot_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    // Without randomness, readings still carry wall-clock time on a host.
    let _ = getrandom::fill(&mut id);
    id
}

/// Now, as the sync protocol carries it.
pub struct Clocks {
    boot: [u8; 16],
    start: std::time::Instant,
}

impl Default for Clocks {
    fn default() -> Self {
        Clocks::new()
    }
}

impl Clocks {
    pub fn new() -> Clocks {
        Clocks {
            boot: boot_id(),
            start: std::time::Instant::now(),
        }
    }

    pub fn now(&self) -> Clock {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| u64::try_from(d.as_millis()).ok());
        Clock {
            wall_ms: wall,
            boot_id: self.boot,
            mono_ms: u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Readings gathered for upload, already encoded.
#[derive(Debug, Default)]
pub struct Gathered {
    pub raw: Vec<u8>,
    pub count: u64,
    /// Printers that offered no serial, MAC or address to key them on.
    pub unkeyed: Vec<String>,
    /// Where each encoded reading ends in `raw`, to split batches.
    ends: Vec<usize>,
}

impl Gathered {
    /// Adds a printer's snapshot read at `address` (`None`: masked).
    pub fn add(&mut self, clock: Clock, address: Option<&str>, s: &Snapshot) -> Result<(), String> {
        if reading::key_of(s, address).is_none() {
            self.unkeyed
                .push(address.unwrap_or("(masked address)").to_string());
        }
        let mut size = 8 * 1024;
        loop {
            let mut buf = vec![0u8; size];
            match reading::encode(s, &clock, address, &mut buf) {
                Ok(n) => {
                    self.raw.extend_from_slice(&buf[..n]);
                    self.count += 1;
                    self.ends.push(self.raw.len());
                    return Ok(());
                }
                Err(_) if size < 1 << 20 => size *= 4,
                Err(e) => return Err(format!("cannot encode the reading of {address:?}: {e}")),
            }
        }
    }

    /// The readings in batches of at most [`BATCH_READINGS`].
    fn batches(&self) -> impl Iterator<Item = (&[u8], u64)> {
        let mut start = 0;
        self.ends.chunks(BATCH_READINGS as usize).map(move |chunk| {
            let end = *chunk.last().unwrap_or(&start);
            let slice = &self.raw[start..end];
            start = end;
            (slice, chunk.len() as u64)
        })
    }
}

/// A delivered task, owned.
#[derive(Debug, Clone)]
pub struct TaskOrder {
    pub id: u64,
    pub kind: String,
    pub arg: String,
}

pub struct Session<'d> {
    dir: &'d StateDir,
    pub state: AgentState,
    link: Link,
    clocks: &'d Clocks,
    /// Batches that could not be journaled (full disk): kept here and sent
    /// in this session, so they are lost only if both disk and cloud fail.
    unjournaled: Vec<(u64, Vec<u8>)>,
}

impl<'d> Session<'d> {
    pub fn open(
        dir: &'d StateDir,
        proxy_flag: Option<&str>,
        clocks: &'d Clocks,
    ) -> Result<Session<'d>, SessionError> {
        let state = dir.load().map_err(SessionError::Local)?;
        let url = CloudUrl::parse(&state.cloud).map_err(SessionError::Local)?;
        let trust =
            trust_of(state.pin.as_deref(), state.ca.as_ref()).map_err(SessionError::Local)?;
        let tls = cloud_tls::client_config(&trust).map_err(SessionError::Local)?;
        let proxy = proxy_for(proxy_flag, &url).map_err(SessionError::Local)?;
        Ok(Session {
            dir,
            state,
            link: Link::new(url, tls, proxy),
            clocks,
            unjournaled: Vec::new(),
        })
    }

    /// One exchange; a `Rejected` answer becomes [`SessionError::Refused`].
    fn call<T>(
        &mut self,
        req: &Request<'_>,
        read: impl FnOnce(Response<'_>) -> Option<T>,
    ) -> Result<T, SessionError> {
        let mut body = vec![
            0u8;
            1024 + match req {
                Request::Upload { readings, .. } => readings.raw().len(),
                _ => 0,
            }
        ];
        let n = req
            .encode(&mut body)
            .map_err(|e| SessionError::Local(e.to_string()))?;
        let answer = self
            .link
            .exchange(Some(&self.state.authorization()), &body[..n])?;
        answer_of(answer.status, &answer.body, read)
    }

    /// Says hello; returns the highest sequence the cloud has stored and
    /// drops the journaled batches it covers.
    pub fn hello(&mut self) -> Result<u64, SessionError> {
        let req = Request::Hello {
            agent_version: env!("CARGO_PKG_VERSION"),
            capabilities: capability::POLL_TASKS | capability::JOURNAL | capability::SETTINGS,
            clock: self.clocks.now(),
        };
        let acked = self.call(&req, |r| match r {
            Response::Welcome { acked, .. } => Some(acked),
            _ => None,
        })?;
        self.acknowledged(acked)?;
        Ok(acked)
    }

    fn acknowledged(&mut self, acked: u64) -> Result<(), SessionError> {
        self.dir.acknowledge(acked).map_err(SessionError::Local)?;
        self.unjournaled.retain(|(seq, _)| *seq > acked);
        // A cloud ahead of us (state restored from an old backup): never
        // reuse a sequence number it has seen.
        if acked >= self.state.next_seq {
            self.state.next_seq = acked.saturating_add(1);
            self.dir.save(&self.state).map_err(SessionError::Local)?;
        }
        Ok(())
    }

    /// Journals the gathered readings as batches; returns their sequences.
    pub fn queue(&mut self, g: &Gathered) -> Result<Vec<u64>, SessionError> {
        let mut seqs = Vec::new();
        let highest_journaled = self
            .dir
            .pending()
            .map_err(SessionError::Local)?
            .last()
            .map_or(0, |(s, _)| *s);
        for (raw, count) in g.batches() {
            let seq = self.state.next_seq.max(highest_journaled.saturating_add(1));
            let req = Request::Upload {
                seq,
                sent: self.clocks.now(),
                readings: Readings::new(raw, count),
            };
            let mut body = vec![0u8; raw.len() + 256];
            let n = req
                .encode(&mut body)
                .map_err(|e| SessionError::Local(e.to_string()))?;
            body.truncate(n);
            if let Err(e) = self.dir.journal(seq, &body) {
                eprintln!("dca: {e}; sending batch {seq} from memory");
                self.unjournaled.push((seq, body));
            }
            self.state.next_seq = seq.saturating_add(1);
            if let Err(e) = self.dir.save(&self.state) {
                eprintln!("dca: {e}");
            }
            seqs.push(seq);
        }
        Ok(seqs)
    }

    /// Sends every waiting batch, oldest first, until the cloud has them
    /// all. Returns (batches sent, readings newly stored).
    pub fn deliver(&mut self) -> Result<(u64, u64), SessionError> {
        let mut waiting: Vec<(u64, Vec<u8>)> = Vec::new();
        for (seq, path) in self.dir.pending().map_err(SessionError::Local)? {
            let body = std::fs::read(&path)
                .map_err(|e| SessionError::Local(format!("cannot read {}: {e}", path.display())))?;
            waiting.push((seq, body));
        }
        waiting.extend(self.unjournaled.iter().cloned());
        waiting.sort_by_key(|(seq, _)| *seq);
        let (mut sent, mut stored) = (0, 0);
        for (seq, body) in waiting {
            let answer = self
                .link
                .exchange(Some(&self.state.authorization()), &body)?;
            let (acked, n) = answer_of(answer.status, &answer.body, |r| match r {
                Response::Ack { acked, stored } => Some((acked, stored)),
                _ => None,
            })?;
            if acked < seq {
                return Err(SessionError::Local(format!(
                    "the cloud acknowledged {acked} for batch {seq}"
                )));
            }
            self.acknowledged(acked)?;
            sent += 1;
            stored += u64::from(n);
        }
        Ok((sent, stored))
    }

    pub fn tasks(&mut self) -> Result<Vec<TaskOrder>, SessionError> {
        self.call(&Request::TaskPoll, |r| match r {
            Response::Tasks(t) => Some(
                t.iter()
                    .map(|t| TaskOrder {
                        id: t.id,
                        kind: t.kind.to_string(),
                        arg: t.arg.to_string(),
                    })
                    .collect(),
            ),
            _ => None,
        })
    }

    pub fn report(&mut self, task: u64, ok: bool, detail: &str) -> Result<(), SessionError> {
        self.call(&Request::TaskResult { task, ok, detail }, |r| match r {
            Response::Ack { .. } => Some(()),
            _ => None,
        })
    }

    pub fn save(&self) -> Result<(), SessionError> {
        self.dir.save(&self.state).map_err(SessionError::Local)
    }
}

/// Reads an answer: a refusal is an error with its reason; anything `read`
/// does not expect is a protocol error.
pub fn answer_of<T>(
    status: u16,
    body: &[u8],
    read: impl FnOnce(Response<'_>) -> Option<T>,
) -> Result<T, SessionError> {
    let bad = |why: String| SessionError::Link(LinkError::Protocol(why));
    match Response::decode(body) {
        Ok(Response::Rejected { code, reason }) => Err(SessionError::Refused {
            status: code,
            reason: reason.to_string(),
        }),
        Ok(r) if status == 200 => read(r).ok_or_else(|| bad("unexpected response kind".into())),
        Ok(_) => Err(bad(format!("HTTP {status} with a non-refusal body"))),
        // Not ours: a proxy's or a load balancer's error page, say.
        Err(_) if status != 200 => Err(SessionError::Refused {
            status,
            reason: format!("HTTP {status}: {}", String::from_utf8_lossy(body).trim()),
        }),
        Err(e) => Err(bad(format!("undecodable response: {e}"))),
    }
}
