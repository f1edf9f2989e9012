//! The receiver's SQLite database: customers, enrollment tokens, agents,
//! devices, readings (one row per counter value), supplies, alerts, tasks and
//! an audit log. Every change a request makes is one transaction, committed
//! with `synchronous=FULL` before the answer leaves: an acknowledged batch is
//! on disk, a refused one left nothing behind.

use crate::secret;
use dca_core::sync::Clock;
use dca_core::sync::message::Readings;
use dca_core::sync::reading::Reading;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS enrollment_tokens (
    token_hash BLOB PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    created_ms INTEGER NOT NULL,
    used_ms INTEGER,
    agent_id TEXT
);
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    secret_hash BLOB NOT NULL,
    hostname TEXT NOT NULL,
    version TEXT NOT NULL,
    capabilities INTEGER NOT NULL DEFAULT 0,
    enrolled_ms INTEGER NOT NULL,
    last_contact_ms INTEGER,
    clock_skew_ms INTEGER,
    last_seq INTEGER NOT NULL DEFAULT 0,
    revoked_ms INTEGER
);
CREATE TABLE IF NOT EXISTS batches (
    agent_id TEXT NOT NULL REFERENCES agents(id),
    seq INTEGER NOT NULL,
    digest BLOB NOT NULL,
    readings INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (agent_id, seq)
);
CREATE TABLE IF NOT EXISTS devices (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    device_key TEXT NOT NULL,
    key_stable INTEGER NOT NULL,
    vendor TEXT NOT NULL,
    serial TEXT NOT NULL,
    mac TEXT,
    model TEXT NOT NULL,
    firmware TEXT NOT NULL,
    sys_name TEXT NOT NULL,
    location TEXT NOT NULL,
    address TEXT NOT NULL,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    UNIQUE (customer_id, device_key)
);
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices(id),
    agent_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at_ms INTEGER,
    boot_id BLOB NOT NULL,
    mono_ms INTEGER NOT NULL,
    counter TEXT NOT NULL,
    value INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_by_device ON readings (device_id, counter, id);
CREATE TABLE IF NOT EXISTS supplies (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices(id),
    seq INTEGER NOT NULL,
    at_ms INTEGER,
    supply_index INTEGER NOT NULL,
    description TEXT NOT NULL,
    type TEXT,
    colorant TEXT NOT NULL,
    level INTEGER,
    max_capacity INTEGER,
    percent REAL,
    state TEXT NOT NULL,
    part_number TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS supplies_by_device ON supplies (device_id, seq);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices(id),
    seq INTEGER NOT NULL,
    at_ms INTEGER,
    severity TEXT,
    alert_group INTEGER,
    code INTEGER,
    description TEXT NOT NULL,
    time_cs INTEGER
);
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    kind TEXT NOT NULL,
    arg TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    delivered_ms INTEGER,
    done_ms INTEGER,
    ok INTEGER,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    agent_id TEXT,
    customer_id INTEGER,
    remote TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL
);
";

/// A request the store refuses: the HTTP status and the reason the caller
/// is told (and the log records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

impl Refusal {
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Refusal {
            status,
            reason: reason.into(),
        }
    }
}

impl From<rusqlite::Error> for Refusal {
    fn from(e: rusqlite::Error) -> Self {
        Refusal::new(503, format!("storage error: {e}"))
    }
}

/// An authenticated agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    pub customer_id: i64,
    pub customer: String,
}

/// Whose data a reader may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The operator: every customer.
    All,
    /// An agent: its own customer only.
    Customer(i64),
}

impl Scope {
    /// The customer a reader is limited to; `None` for the operator.
    pub fn customer(self) -> Option<i64> {
        match self {
            Scope::All => None,
            Scope::Customer(c) => Some(c),
        }
    }
}

/// What an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// The highest sequence number now stored for the agent.
    pub acked: u64,
    /// Readings stored by this request (0 for a replay).
    pub stored: u32,
    /// Readings that could not be stored (no key at all); audited.
    pub skipped: u32,
    /// The batch had been stored before (its ack was lost).
    pub replay: bool,
}

/// An enrolled agent's credentials, shown to it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    pub agent_id: String,
    pub secret: String,
    pub customer: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTask {
    pub id: u64,
    pub kind: String,
    pub arg: String,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

fn mac_text(mac: Option<[u8; 6]>) -> Option<String> {
    mac.map(|m| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}

/// When a reading was taken: the agent's wall clock when it knew the date;
/// otherwise placed on the cloud's clock from the monotonic times of the
/// reading and of the batch, when both come from the same boot.
fn reading_time(r: &Reading<'_>, sent: &Clock, received_ms: i64) -> Option<i64> {
    if let Some(wall) = r.at.wall_ms {
        return i64::try_from(wall).ok();
    }
    if r.at.boot_id != sent.boot_id || r.at.mono_ms > sent.mono_ms {
        return None;
    }
    let age = i64::try_from(sent.mono_ms - r.at.mono_ms).ok()?;
    received_ms.checked_sub(age)
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, String> {
        let conn = Connection::open(path)
            .map_err(|e| format!("cannot open database {}: {e}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )
        .and_then(|()| conn.execute_batch(SCHEMA))
        .map_err(|e| format!("cannot prepare database {}: {e}", path.display()))?;
        Ok(Store { conn })
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn audit_in(
        tx: &Connection,
        agent: Option<&str>,
        customer: Option<i64>,
        remote: &str,
        event: &str,
        detail: &str,
    ) -> rusqlite::Result<()> {
        tx.execute(
            "INSERT INTO audit (at_ms, agent_id, customer_id, remote, event, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![now_ms(), agent, customer, remote, event, detail],
        )?;
        Ok(())
    }

    /// Records an event in the audit log, in its own transaction.
    pub fn audit(
        &self,
        agent: Option<&str>,
        customer: Option<i64>,
        remote: &str,
        event: &str,
        detail: &str,
    ) {
        if let Err(e) = Self::audit_in(&self.conn, agent, customer, remote, event, detail) {
            eprintln!("dca-cloud: cannot write audit entry {event} ({detail}): {e}");
        }
    }

    fn customer_id(tx: &Transaction<'_>, name: &str) -> rusqlite::Result<i64> {
        tx.execute(
            "INSERT INTO customers (name, created_ms) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
            params![name, now_ms()],
        )?;
        tx.query_row("SELECT id FROM customers WHERE name = ?1", [name], |r| {
            r.get(0)
        })
    }

    /// Creates a one-time enrollment token for `customer` (created if new).
    pub fn create_token(&mut self, customer: &str) -> Result<String, String> {
        let customer = customer.trim();
        if customer.is_empty() {
            return Err("the customer name is empty".into());
        }
        let token = format!("dcat_{}", secret::random_hex(24));
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let id = Self::customer_id(&tx, customer).map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT INTO enrollment_tokens (token_hash, customer_id, created_ms) VALUES (?1, ?2, ?3)",
            params![secret::hash(&token), id, now_ms()],
        )
        .map_err(|e| e.to_string())?;
        Self::audit_in(&tx, None, Some(id), "cli", "token_created", customer)
            .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        Ok(token)
    }

    /// Trades a one-time token for a new agent's id and secret.
    pub fn enroll(
        &mut self,
        token: &str,
        hostname: &str,
        version: &str,
        remote: &str,
    ) -> Result<Enrollment, Refusal> {
        let tx = self.conn.transaction()?;
        let row: Option<(i64, Option<i64>, String)> = tx
            .query_row(
                "SELECT t.customer_id, t.used_ms, c.name FROM enrollment_tokens t JOIN customers c ON c.id = t.customer_id WHERE t.token_hash = ?1",
                [secret::hash(token)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (customer_id, customer) = match row {
            Some((id, None, name)) => (id, name),
            Some((id, Some(_), _)) => {
                Self::audit_in(
                    &tx,
                    None,
                    Some(id),
                    remote,
                    "enroll_refused",
                    "token already used",
                )?;
                tx.commit()?;
                return Err(Refusal::new(401, "enrollment token already used"));
            }
            None => {
                Self::audit_in(&tx, None, None, remote, "enroll_refused", "unknown token")?;
                tx.commit()?;
                return Err(Refusal::new(401, "unknown enrollment token"));
            }
        };
        let agent_id = format!("agt_{}", secret::random_hex(8));
        let secret = secret::random_hex(32);
        let now = now_ms();
        tx.execute(
            "INSERT INTO agents (id, customer_id, secret_hash, hostname, version, enrolled_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![agent_id, customer_id, secret::hash(&secret), hostname, version, now],
        )?;
        tx.execute(
            "UPDATE enrollment_tokens SET used_ms = ?1, agent_id = ?2 WHERE token_hash = ?3",
            params![now, agent_id, secret::hash(token)],
        )?;
        Self::audit_in(
            &tx,
            Some(&agent_id),
            Some(customer_id),
            remote,
            "enrolled",
            hostname,
        )?;
        tx.commit()?;
        Ok(Enrollment {
            agent_id,
            secret,
            customer,
        })
    }

    /// Checks an `Authorization: Bearer <agent id>:<secret>` value. Failures
    /// are audited with what was wrong, and all answer the same 401.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        remote: &str,
    ) -> Result<Agent, Refusal> {
        let refuse = |agent: Option<&str>, customer: Option<i64>, why: &str| {
            self.audit(agent, customer, remote, "auth_refused", why);
            Err(Refusal::new(401, "unknown agent or wrong secret"))
        };
        let Some((id, presented)) = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .and_then(|c| c.trim().split_once(':'))
        else {
            return refuse(None, None, "no agent credentials");
        };
        let row: Option<(i64, Vec<u8>, Option<i64>, String)> = self
            .conn
            .query_row(
                "SELECT a.customer_id, a.secret_hash, a.revoked_ms, c.name FROM agents a JOIN customers c ON c.id = a.customer_id WHERE a.id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        match row {
            None => refuse(None, None, &format!("unknown agent {id:.40}")),
            Some((customer_id, _, Some(_), _)) => {
                refuse(Some(id), Some(customer_id), "revoked agent")
            }
            Some((customer_id, hash, None, customer)) => {
                if secret::matches(presented, &hash) {
                    Ok(Agent {
                        id: id.to_string(),
                        customer_id,
                        customer,
                    })
                } else {
                    refuse(Some(id), Some(customer_id), "wrong secret")
                }
            }
        }
    }

    /// Records a `hello`: version, capabilities, last contact, clock skew.
    /// Returns the highest sequence stored for the agent.
    pub fn hello(
        &self,
        agent: &Agent,
        version: &str,
        capabilities: u32,
        clock: &Clock,
    ) -> Result<u64, Refusal> {
        let now = now_ms();
        let skew = clock
            .wall_ms
            .and_then(|w| i64::try_from(w).ok())
            .map(|w| w.saturating_sub(now));
        self.conn.execute(
            "UPDATE agents SET version = ?1, capabilities = ?2, last_contact_ms = ?3, clock_skew_ms = ?4 WHERE id = ?5",
            params![version, capabilities, now, skew, agent.id],
        )?;
        self.last_seq(&agent.id)
    }

    pub fn last_seq(&self, agent: &str) -> Result<u64, Refusal> {
        let seq: i64 =
            self.conn
                .query_row("SELECT last_seq FROM agents WHERE id = ?1", [agent], |r| {
                    r.get(0)
                })?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    /// Stores a batch exactly once. The next sequence number is stored; one
    /// already stored with the same bytes is a replay (a lost ack) and is
    /// acknowledged without storing anything; anything else is refused.
    pub fn ingest(
        &mut self,
        agent: &Agent,
        seq: u64,
        sent: &Clock,
        readings: &Readings<'_>,
        remote: &str,
    ) -> Result<Ingested, Refusal> {
        let digest = secret::hash_bytes(readings.raw());
        let now = now_ms();
        let tx = self.conn.transaction()?;
        let last: i64 = tx.query_row(
            "SELECT last_seq FROM agents WHERE id = ?1",
            [&agent.id],
            |r| r.get(0),
        )?;
        let last = u64::try_from(last).unwrap_or(0);
        if seq <= last {
            let stored: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT digest FROM batches WHERE agent_id = ?1 AND seq = ?2",
                    params![agent.id, seq as i64],
                    |r| r.get(0),
                )
                .optional()?;
            return if stored.as_deref() == Some(&digest[..]) {
                Self::audit_in(
                    &tx,
                    Some(&agent.id),
                    Some(agent.customer_id),
                    remote,
                    "replay",
                    &format!("batch {seq} already stored"),
                )?;
                tx.commit()?;
                Ok(Ingested {
                    acked: last,
                    stored: 0,
                    skipped: 0,
                    replay: true,
                })
            } else {
                Err(Refusal::new(
                    409,
                    format!(
                        "sequence {seq} was already used for a different batch (last stored {last})"
                    ),
                ))
            };
        }
        if seq != last.saturating_add(1) {
            return Err(Refusal::new(
                409,
                format!(
                    "sequence {seq} skips ahead: the next expected is {}",
                    last.saturating_add(1)
                ),
            ));
        }
        let seq_i =
            i64::try_from(seq).map_err(|_| Refusal::new(400, "sequence number out of range"))?;
        let mut stored = 0u32;
        let mut skipped = 0u32;
        for (i, r) in readings.iter().enumerate() {
            let r = r.map_err(|e| Refusal::new(400, format!("reading {i} of batch {seq}: {e}")))?;
            let Some(key) = r.key() else {
                skipped += 1;
                Self::audit_in(
                    &tx,
                    Some(&agent.id),
                    Some(agent.customer_id),
                    remote,
                    "reading_skipped",
                    &format!(
                        "batch {seq} reading {i}: no serial, MAC or address to key the device on"
                    ),
                )?;
                continue;
            };
            let at = reading_time(&r, sent, now);
            let device = Self::upsert_device(
                &tx,
                agent,
                &r,
                &key.to_string(),
                key.is_stable(),
                at.unwrap_or(now),
            )?;
            Self::insert_reading(&tx, agent, device, seq_i, at, &r, remote)?;
            stored += 1;
        }
        tx.execute(
            "INSERT INTO batches (agent_id, seq, digest, readings, received_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![agent.id, seq_i, digest, readings.len() as i64, now],
        )?;
        tx.execute(
            "UPDATE agents SET last_seq = ?1, last_contact_ms = ?2 WHERE id = ?3",
            params![seq_i, now, agent.id],
        )?;
        tx.commit()?;
        Ok(Ingested {
            acked: seq,
            stored,
            skipped,
            replay: false,
        })
    }

    fn upsert_device(
        tx: &Transaction<'_>,
        agent: &Agent,
        r: &Reading<'_>,
        key: &str,
        stable: bool,
        seen: i64,
    ) -> rusqlite::Result<i64> {
        tx.query_row(
            "INSERT INTO devices (customer_id, device_key, key_stable, vendor, serial, mac, model, firmware, sys_name, location, address, agent_id, first_seen_ms, last_seen_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)
             ON CONFLICT (customer_id, device_key) DO UPDATE SET
                 mac = COALESCE(excluded.mac, mac), model = excluded.model, firmware = excluded.firmware,
                 sys_name = excluded.sys_name, location = excluded.location, address = excluded.address,
                 agent_id = excluded.agent_id, last_seen_ms = MAX(last_seen_ms, excluded.last_seen_ms)
             RETURNING id",
            params![
                agent.customer_id, key, stable, r.vendor, r.serial.trim(), mac_text(r.mac), r.model, r.firmware,
                r.sys_name, r.sys_location, r.address, agent.id, seen
            ],
            |row| row.get(0),
        )
    }

    fn insert_reading(
        tx: &Transaction<'_>,
        agent: &Agent,
        device: i64,
        seq: i64,
        at: Option<i64>,
        r: &Reading<'_>,
        remote: &str,
    ) -> rusqlite::Result<()> {
        let mut counter = tx.prepare_cached(
            "INSERT INTO readings (device_id, agent_id, seq, at_ms, boot_id, mono_ms, counter, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mono = i64::try_from(r.at.mono_ms).unwrap_or(i64::MAX);
        for c in &r.counters {
            let Ok(value) = i64::try_from(c.value) else {
                Self::audit_in(
                    tx,
                    Some(&agent.id),
                    Some(agent.customer_id),
                    remote,
                    "counter_skipped",
                    &format!(
                        "{} = {} is beyond the range of a page counter",
                        c.name, c.value
                    ),
                )?;
                continue;
            };
            counter.execute(params![
                device,
                agent.id,
                seq,
                at,
                &r.at.boot_id[..],
                mono,
                c.name,
                value
            ])?;
        }
        let mut supply = tx.prepare_cached(
            "INSERT INTO supplies (device_id, seq, at_ms, supply_index, description, type, colorant, level, max_capacity, percent, state, part_number)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for s in &r.supplies {
            supply.execute(params![
                device,
                seq,
                at,
                s.index,
                s.description,
                s.type_name(),
                s.colorant,
                s.level,
                s.max_capacity,
                s.percent(),
                s.state,
                s.part_number
            ])?;
        }
        let mut alert = tx.prepare_cached(
            "INSERT INTO alerts (device_id, seq, at_ms, severity, alert_group, code, description, time_cs) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for a in &r.alerts {
            alert.execute(params![
                device,
                seq,
                at,
                a.severity_name(),
                a.group,
                a.code,
                a.description,
                a.time_cs
            ])?;
        }
        Ok(())
    }

    /// Tasks not yet finished, oldest first; marks them delivered.
    pub fn pending_tasks(
        &mut self,
        agent: &Agent,
        limit: usize,
    ) -> Result<Vec<PendingTask>, Refusal> {
        let tx = self.conn.transaction()?;
        let tasks = {
            let mut q = tx.prepare("SELECT id, kind, arg FROM tasks WHERE agent_id = ?1 AND done_ms IS NULL ORDER BY id LIMIT ?2")?;
            q.query_map(params![agent.id, limit as i64], |r| {
                Ok(PendingTask {
                    id: r.get::<_, i64>(0)? as u64,
                    kind: r.get(1)?,
                    arg: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
        };
        tx.execute(
            "UPDATE tasks SET delivered_ms = COALESCE(delivered_ms, ?1) WHERE agent_id = ?2 AND done_ms IS NULL",
            params![now_ms(), agent.id],
        )?;
        tx.commit()?;
        Ok(tasks)
    }

    /// Records how a task ended; only the agent it was given to may.
    pub fn finish_task(
        &self,
        agent: &Agent,
        task: u64,
        ok: bool,
        detail: &str,
    ) -> Result<(), Refusal> {
        let n = self.conn.execute(
            "UPDATE tasks SET done_ms = ?1, ok = ?2, detail = ?3 WHERE id = ?4 AND agent_id = ?5",
            params![now_ms(), ok, detail, task as i64, agent.id],
        )?;
        if n == 0 {
            return Err(Refusal::new(404, format!("no task {task} for this agent")));
        }
        Ok(())
    }

    /// Queues a task for an agent.
    pub fn create_task(&self, agent: &str, kind: &str, arg: &str) -> Result<u64, String> {
        let exists: Option<i64> = self
            .conn
            .query_row(
                "SELECT customer_id FROM agents WHERE id = ?1",
                [agent],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| e.to_string())?;
        let customer = exists.ok_or_else(|| format!("no agent {agent}"))?;
        self.conn
            .execute(
                "INSERT INTO tasks (agent_id, kind, arg, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![agent, kind, arg, now_ms()],
            )
            .map_err(|e| e.to_string())?;
        let id = self.conn.last_insert_rowid();
        self.audit(
            Some(agent),
            Some(customer),
            "cli",
            "task_created",
            &format!("{id} {kind} {arg}"),
        );
        Ok(id as u64)
    }

    /// Revokes an agent: its secret stops working at once.
    pub fn revoke(&self, agent: &str) -> Result<(), String> {
        let n = self
            .conn
            .execute(
                "UPDATE agents SET revoked_ms = ?1 WHERE id = ?2 AND revoked_ms IS NULL",
                params![now_ms(), agent],
            )
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("no active agent {agent}"));
        }
        self.audit(Some(agent), None, "cli", "revoked", agent);
        Ok(())
    }
}
