//! The cloud: dca-cloud's real [`Store`] (SQLite in a temporary file) behind
//! its real request path ([`exchange::handle`]), on the virtual clock and a
//! seeded random source. It can be stopped and started (a restart reopens
//! the database), snapshotted (a WAL checkpoint, then a copy of the file)
//! and restored from a snapshot (the file replaced, then reopened).

use super::clock::Millis;
use crate::generate::Rng;
use dca_cloud::exchange;
use dca_cloud::store::{Store, StoredReading};
use dca_core::sync;
use dca_core::sync::message::{Request, Response};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// An agent's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub agent_id: String,
    /// The `Authorization` header value.
    pub bearer: String,
}

/// A folder removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new folder in memory-backed storage where there is some (the
    /// database syncs every commit, which a RAM disk makes free).
    pub fn new(tag: &str) -> Result<TempDir, String> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let base = std::env::var_os("DCA_SIM_TMP")
            .map(PathBuf::from)
            .or_else(|| {
                let shm = Path::new("/dev/shm");
                shm.is_dir().then(|| shm.to_path_buf())
            })
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!(
            "dca-sim-{}-{tag}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(TempDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug)]
struct Snapshot {
    taken: Millis,
    path: PathBuf,
}

#[derive(Debug)]
pub struct Cloud {
    dir: TempDir,
    db: PathBuf,
    store: Option<Store>,
    /// The store's wall clock (ms since the epoch), set before each call.
    clock: Arc<AtomicI64>,
    seed: u64,
    opens: u64,
    snapshots: Vec<Snapshot>,
}

impl Cloud {
    pub fn new(seed: u64) -> Result<Cloud, String> {
        let dir = TempDir::new(&format!("cloud-{seed}"))?;
        let db = dir.path().join("cloud.db");
        let mut c = Cloud {
            dir,
            db,
            store: None,
            clock: Arc::new(AtomicI64::new(0)),
            seed,
            opens: 0,
            snapshots: Vec::new(),
        };
        c.start()?;
        Ok(c)
    }

    pub fn set_time(&self, wall_ms: u64) {
        self.clock.store(
            i64::try_from(wall_ms).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn is_up(&self) -> bool {
        self.store.is_some()
    }

    fn store(&mut self) -> Result<&mut Store, String> {
        self.store
            .as_mut()
            .ok_or_else(|| "the cloud is down".into())
    }

    /// The process stops (SQLite's committed transactions are on disk).
    pub fn stop(&mut self) {
        self.store = None;
    }

    pub fn start(&mut self) -> Result<(), String> {
        if self.store.is_some() {
            return Ok(());
        }
        let mut store = Store::open(&self.db)?;
        let clock = self.clock.clone();
        store.set_clock(move || clock.load(Ordering::Relaxed));
        self.opens += 1;
        let mut rng = Rng::new(self.seed ^ self.opens.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        store.set_entropy(move |buf| {
            for chunk in buf.chunks_mut(8) {
                let r = rng.next_u64().to_le_bytes();
                chunk.copy_from_slice(&r[..chunk.len()]);
            }
        });
        self.store = Some(store);
        Ok(())
    }

    /// Takes a snapshot of the database: a checkpoint that empties the WAL
    /// into the main file, then a copy of it.
    pub fn snapshot(&mut self, now: Millis) -> Result<(), String> {
        let path = self
            .dir
            .path()
            .join(format!("snapshot-{}.db", self.snapshots.len()));
        let store = self.store()?;
        let busy: i64 = store
            .connection()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .map_err(|e| format!("checkpoint: {e}"))?;
        if busy != 0 {
            return Err("checkpoint: the database is busy".into());
        }
        std::fs::copy(&self.db, &path).map_err(|e| format!("snapshot: {e}"))?;
        self.snapshots.push(Snapshot { taken: now, path });
        Ok(())
    }

    pub fn snapshots(&self) -> usize {
        self.snapshots.len()
    }

    /// Replaces the database by snapshot `which` and starts again; returns
    /// when the snapshot was taken.
    pub fn restore(&mut self, which: usize) -> Result<Millis, String> {
        let snap = self
            .snapshots
            .get(which)
            .ok_or_else(|| format!("no snapshot {which}"))?;
        let (taken, from) = (snap.taken, snap.path.clone());
        self.stop();
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", self.db.display()));
        }
        std::fs::copy(&from, &self.db).map_err(|e| format!("restore: {e}"))?;
        self.start()?;
        Ok(taken)
    }

    /// One exchange on the real request path: the body decoded as the
    /// server decodes it, then [`exchange::handle`].
    pub fn exchange(
        &mut self,
        body: &[u8],
        authorization: Option<&str>,
        remote: &str,
    ) -> (u16, Vec<u8>) {
        let Some(store) = self.store.as_mut() else {
            return (503, Vec::new());
        };
        let answer = match Request::decode(body) {
            Ok(req) => exchange::handle(store, &req, authorization, remote),
            Err(sync::Error::Version(v)) => exchange::refuse_version(v),
            Err(e) => exchange::refuse(&dca_cloud::store::Refusal::new(
                400,
                format!("malformed request body: {e}"),
            )),
        };
        (answer.status, answer.body)
    }

    /// An operator creates a token for `customer` and the agent enrolls
    /// with it (over the real request path).
    pub fn enroll(&mut self, customer: &str, hostname: &str) -> Result<Credentials, String> {
        let token = self.store()?.create_token(customer)?;
        let req = Request::Enroll {
            token: &token,
            agent_version: super::AGENT_VERSION,
            hostname,
        };
        let mut buf = vec![0u8; 512];
        let n = req.encode(&mut buf).map_err(|e| e.to_string())?;
        let (status, body) = self.exchange(&buf[..n], None, hostname);
        match Response::decode(&body) {
            Ok(Response::Enrolled {
                agent_id, secret, ..
            }) if status == 200 => Ok(Credentials {
                agent_id: agent_id.to_string(),
                bearer: format!("Bearer {agent_id}:{secret}"),
            }),
            other => Err(format!("enrollment refused: {status} {other:?}")),
        }
    }

    /// Whether the cloud knows these credentials (a restored database may
    /// predate them).
    pub fn knows(&self, c: &Credentials) -> bool {
        self.store
            .as_ref()
            .is_some_and(|s| s.authenticate(Some(&c.bearer), "operator").is_ok())
    }

    pub fn revoke(&mut self, agent_id: &str) -> Result<(), String> {
        self.store()?.revoke(agent_id)
    }

    pub fn create_task(&mut self, agent_id: &str, kind: &str, arg: &str) -> Result<u64, String> {
        self.store()?.create_task(agent_id, kind, arg)
    }

    /// The highest row id of the stored counter values (0: none).
    pub fn last_row(&mut self) -> Result<i64, String> {
        self.store()?
            .connection()
            .query_row("SELECT COALESCE(MAX(id), 0) FROM readings", [], |r| {
                r.get(0)
            })
            .map_err(|e| format!("cannot read the readings: {e}"))
    }

    /// The counter values stored for `customer` in readings rows `after`
    /// (exclusive) through `through`, in the order stored.
    pub fn readings_since(
        &mut self,
        customer: &str,
        after: i64,
        through: i64,
    ) -> Result<Vec<StoredReading>, String> {
        self.store()?
            .readings_of_customer(customer, after.saturating_add(1)..=through)
    }

    /// Every counter value stored for `customer`, in the order stored.
    pub fn readings(&mut self, customer: &str) -> Result<Vec<StoredReading>, String> {
        self.store()?.readings_of_customer(customer, 1..=i64::MAX)
    }
}
