//! The receiver's SQLite database: customers, enrollment tokens, agents,
//! batches, devices, readings (one row per counter value), supplies, alerts,
//! tasks and an audit log. Every change a request makes is one transaction,
//! committed with `synchronous=FULL` before the answer leaves: an
//! acknowledged batch is on disk, a refused one left nothing behind.
//!
//! Batches are held exactly once per customer, keyed on their content digest
//! (the [`BatchId`] of sync protocol 2): the same readings sent again, by the
//! same agent after a lost ack, by a restored agent or by a re-enrolled one,
//! are acknowledged as a duplicate and stored nothing. Readings, supplies and
//! alerts name the batch that brought them by its row id (`batch_id`).
//!
//! The store is also a library for the deterministic simulator (dca-sim):
//! [`Store::set_clock`] and [`Store::set_entropy`] replace the wall clock and
//! the operating system's randomness, and [`Store::readings_of_customer`]
//! and [`Store::delivered`] read back what was stored.

use crate::integrity;
use crate::secret;
use dca_core::sync::Clock;
use dca_core::sync::batch::BatchId;
use dca_core::sync::message::Readings;
use dca_core::sync::reading::Reading;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use std::path::Path;

mod new_tasks;
mod operators;
mod sessions;
pub mod web_sessions;
pub use operators::{
    Candidate, NewOperator, Operator, Role, hash_password, password_matches, verify_sign_in,
};
pub use sessions::{NewSession, SESSION_IDLE_MS, SESSION_LIFETIME_MS, Session};

/// How long after an enrollment its token may enroll the same host again
/// while the agent has not called (see `Store::enrollment_again`).
pub const ENROLL_AGAIN_WITHIN_MS: i64 = 24 * 3600 * 1000;

/// The schema version this build writes and reads (`PRAGMA user_version`).
/// Version 2 names batches by their content digest (sync protocol 2);
/// databases of version 1 numbered them per agent and stored `user_version`
/// 0. Version 3 adds dealers (every customer and operator belongs to one)
/// and operators' sessions; a version 2 database is converted in place.
pub const SCHEMA_VERSION: i64 = 3;

/// The dealer every customer and operator of a version 2 database, and
/// every one created without naming another, belongs to. Its row id is 1:
/// the columns' default.
pub const DEFAULT_DEALER: &str = "default";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS dealers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    dealer_id INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS customers_by_dealer ON customers (dealer_id);
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
    last_batch BLOB,
    revoked_ms INTEGER
);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    agent_id TEXT NOT NULL REFERENCES agents(id),
    digest BLOB NOT NULL,
    readings INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    position INTEGER NOT NULL,
    UNIQUE (customer_id, digest)
);
CREATE INDEX IF NOT EXISTS batches_by_agent ON batches (agent_id);
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
    batch_id INTEGER NOT NULL REFERENCES batches(id),
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
    batch_id INTEGER NOT NULL REFERENCES batches(id),
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
CREATE INDEX IF NOT EXISTS supplies_by_device ON supplies (device_id, batch_id);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices(id),
    batch_id INTEGER NOT NULL REFERENCES batches(id),
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
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices(id),
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    mac TEXT,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    readings INTEGER NOT NULL,
    resolved_ms INTEGER
);
CREATE INDEX IF NOT EXISTS conflicts_by_device ON conflicts (device_id, resolved_ms);
CREATE TABLE IF NOT EXISTS suspect_readings (
    reading_id INTEGER PRIMARY KEY REFERENCES readings(id),
    conflict_id INTEGER NOT NULL REFERENCES conflicts(id)
);
CREATE INDEX IF NOT EXISTS suspect_by_conflict ON suspect_readings (conflict_id);
CREATE TABLE IF NOT EXISTS operators (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('dealer', 'viewer')),
    password_hash TEXT NOT NULL,
    totp_secret TEXT NOT NULL,
    totp_last_step INTEGER,
    created_ms INTEGER NOT NULL,
    dealer_id INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS operator_sessions (
    token_hash BLOB PRIMARY KEY,
    operator_id INTEGER NOT NULL REFERENCES operators(id),
    csrf TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS operator_sessions_by_operator ON operator_sessions (operator_id);
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

/// Why credentials were refused: what the caller is told, and what the
/// audit log records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    pub refusal: Refusal,
    /// The agent named, when it exists.
    pub agent: Option<String>,
    pub customer: Option<i64>,
    pub why: String,
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
    /// The cloud's own commands: every customer of every dealer.
    All,
    /// An operator: the customers of one dealer (by its row id).
    Dealer(i64),
    /// An agent: its own customer only.
    Customer(i64),
}

impl Scope {
    /// The customer a reader is limited to, if it is limited to one.
    pub fn customer(self) -> Option<i64> {
        match self {
            Scope::Customer(c) => Some(c),
            Scope::All | Scope::Dealer(_) => None,
        }
    }

    /// The dealer whose customers a reader is limited to, if it is.
    pub fn dealer(self) -> Option<i64> {
        match self {
            Scope::Dealer(d) => Some(d),
            Scope::All | Scope::Customer(_) => None,
        }
    }
}

/// One upload, as the agent sent it.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    /// The digest of `readings`.
    pub batch: &'a BatchId,
    /// The batch before it in the agent's journal.
    pub after: Option<&'a BatchId>,
    /// Its place in the agent's journal (for the logs).
    pub position: u64,
    pub sent: &'a Clock,
    pub readings: &'a Readings<'a>,
}

/// What an upload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// Readings stored by this request (0 for a duplicate).
    pub stored: u32,
    /// Readings that could not be stored (no key at all); audited.
    pub skipped: u32,
    /// The customer held the batch already (a lost ack, a restored agent, a
    /// re-enrolled one): nothing was stored.
    pub duplicate: bool,
    /// Readings stored flagged, held by an identity conflict of their
    /// device (see `integrity.rs`): not billed until the operator accepts.
    pub flagged: u32,
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

/// One stored counter value, as [`Store::readings_of_customer`] reads it
/// back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReading {
    /// The device's key (`vendor/serial`, `mac/...` or `address/...`).
    pub device_key: String,
    pub counter: String,
    pub value: i64,
    /// When the reading was taken, on the cloud's clock; `None` when it
    /// could not be placed.
    pub at_ms: Option<i64>,
    pub boot_id: [u8; 16],
    pub mono_ms: u64,
    /// The batch that brought it.
    pub batch: BatchId,
    /// The agent that delivered that batch.
    pub agent_id: String,
}

/// The wall clock in milliseconds since the Unix epoch: the real server's
/// clock (see [`Store::set_clock`]).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

type ClockFn = Box<dyn Fn() -> i64 + Send>;
type EntropyFn = Box<dyn FnMut(&mut [u8]) + Send>;

pub struct Store {
    conn: Connection,
    /// Where the store's times come from: [`now_ms`] unless replaced.
    clock: ClockFn,
    /// Where tokens, agent ids and secrets come from: the operating system
    /// unless replaced.
    entropy: Option<EntropyFn>,
    /// How often agents are told to call for tasks, in seconds.
    poll_interval_s: u32,
    /// How long the server holds an agent's `listen` (0: it holds none).
    hold_max_s: u32,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.conn.path())
            .field("entropy", &self.entropy.as_ref().map(|_| "injected"))
            .finish_non_exhaustive()
    }
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

fn batch_id_of(digest: Option<Vec<u8>>) -> Option<BatchId> {
    digest.and_then(|d| <[u8; 32]>::try_from(d).ok().map(BatchId))
}

/// Creates the schema in a new database, or checks that an existing one was
/// made by this version of the schema. One immediate transaction, so two
/// processes opening a new file at once do not both create it.
fn prepare(conn: &mut Connection, path: &Path) -> Result<(), String> {
    let fail = |e: rusqlite::Error| format!("cannot prepare database {}: {e}", path.display());
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(fail)?;
    let tables: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .map_err(fail)?;
    if tables > 0 && version < 2 {
        return Err(format!(
            "database {} was made by an older dca-cloud (schema version {version}, sync protocol 1, \
             batches numbered per agent); this dca-cloud needs schema version {SCHEMA_VERSION} \
             (batches named by content digest) and does not convert it: keep that file for the \
             older dca-cloud and give this one a new --db",
            path.display()
        ));
    }
    if version > SCHEMA_VERSION {
        return Err(format!(
            "database {} was made by a newer dca-cloud (schema version {version}; this one \
             knows {SCHEMA_VERSION}): upgrade dca-cloud",
            path.display()
        ));
    }
    if tables > 0 && version == 2 {
        convert_from_2(&tx).map_err(fail)?;
    }
    tx.execute_batch(SCHEMA).map_err(fail)?;
    tx.execute_batch(web_sessions::SCHEMA).map_err(fail)?;
    tx.execute(
        "INSERT OR IGNORE INTO dealers (id, name, created_ms) VALUES (1, ?1, ?2)",
        params![DEFAULT_DEALER, now_ms()],
    )
    .map_err(fail)?;
    if version != SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(fail)?;
    }
    tx.commit().map_err(fail)
}

/// Version 2 to 3, inside [`prepare`]'s transaction (a failure leaves the
/// file as it was): customers and operators gain their dealer, the default
/// one; the new tables come from [`SCHEMA`]. The dealer columns name no
/// foreign key, in new databases either: SQLite cannot add one with a
/// default other than NULL while foreign keys are on, and a converted
/// database must be the same as a new one.
fn convert_from_2(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE customers ADD COLUMN dealer_id INTEGER NOT NULL DEFAULT 1")?;
    // The operators table came later in version 2's life: a database made
    // before it gets the whole table from the schema.
    let operators: i64 = tx.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'operators'",
        [],
        |r| r.get(0),
    )?;
    if operators > 0 {
        tx.execute_batch("ALTER TABLE operators ADD COLUMN dealer_id INTEGER NOT NULL DEFAULT 1")?;
    }
    Ok(())
}

/// A dealer's name: what people type and pages show, nothing that could
/// pass for markup or break a log line.
fn check_dealer_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ' '))
        && name.trim() == name;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "dealer name {name:?}: 1 to 64 letters, digits, spaces (not at either end), '.', '_', '-' or '@'"
        ))
    }
}

fn audit_in(
    tx: &Connection,
    at: i64,
    agent: Option<&str>,
    customer: Option<i64>,
    remote: &str,
    event: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit (at_ms, agent_id, customer_id, remote, event, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at, agent, customer, remote, event, detail],
    )?;
    Ok(())
}

/// The longest task argument agents take (a target list, say).
pub const MAX_TASK_ARG: usize = dca_core::sync::task::MAX_TARGETS_TEXT;
/// Task bytes (kinds and arguments) in one answer at most: an MFP's agent
/// reads answers into a 4 KiB buffer.
pub const MAX_TASK_BYTES: usize = 2048;
/// What each task adds to an answer besides its kind and argument.
const TASK_OVERHEAD: usize = 16;

/// A task as an operator lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    pub id: u64,
    pub agent: String,
    pub kind: String,
    pub arg: String,
    /// `queued`, `delivered`, or `ok: detail` / `failed: detail`.
    pub state: String,
}

/// How often agents call for tasks unless the operator says otherwise.
pub const DEFAULT_POLL_INTERVAL_S: u32 = 300;

impl Store {
    /// Opens (creating if needed) the database at `path`. A database of
    /// schema version 2 is converted; one of an older or newer dca-cloud
    /// is refused, naming the file.
    pub fn open(path: &Path) -> Result<Store, String> {
        let mut conn = Connection::open(path)
            .map_err(|e| format!("cannot open database {}: {e}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )
        .map_err(|e| format!("cannot prepare database {}: {e}", path.display()))?;
        prepare(&mut conn, path)?;
        Ok(Store {
            conn,
            clock: Box::new(now_ms),
            entropy: None,
            poll_interval_s: DEFAULT_POLL_INTERVAL_S,
            hold_max_s: 0,
        })
    }

    /// How often agents are told to call for tasks (`welcome`), in seconds.
    pub fn poll_interval_s(&self) -> u32 {
        self.poll_interval_s
    }

    /// How long the server in front of this store holds a `listen`, as
    /// `welcome` tells agents (0: no push channel; the store alone, as the
    /// simulator uses it, holds nothing).
    pub fn hold_max_s(&self) -> u32 {
        self.hold_max_s
    }

    pub fn set_hold_max_s(&mut self, seconds: u32) {
        self.hold_max_s = seconds;
    }

    /// Sets it (at least 1 s): a cloud whose operators want tasks taken up
    /// sooner, at the cost of more requests.
    pub fn set_poll_interval_s(&mut self, seconds: u32) {
        self.poll_interval_s = seconds.max(1);
    }

    /// Replaces the wall clock (ms since the Unix epoch) the store stamps
    /// rows and audit entries with, and places undated readings by: a
    /// simulator's virtual clock. The real server keeps [`now_ms`].
    pub fn set_clock(&mut self, now: impl Fn() -> i64 + Send + 'static) {
        self.clock = Box::new(now);
    }

    /// Replaces the operating system's random source for enrollment tokens,
    /// agent ids and secrets (a seeded generator, for a deterministic
    /// simulation). `fill` must fill the whole buffer.
    pub fn set_entropy(&mut self, fill: impl FnMut(&mut [u8]) + Send + 'static) {
        self.entropy = Some(Box::new(fill));
    }

    /// The store's time: the wall clock, or the one given to
    /// [`Store::set_clock`].
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    fn random_hex(&mut self, bytes: usize) -> String {
        match &mut self.entropy {
            Some(fill) => {
                let mut buf = vec![0u8; bytes];
                fill(&mut buf);
                hex::encode(buf)
            }
            None => secret::random_hex(bytes),
        }
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
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
        if let Err(e) = audit_in(
            &self.conn,
            self.now(),
            agent,
            customer,
            remote,
            event,
            detail,
        ) {
            eprintln!("dca-cloud: cannot write audit entry {event} ({detail}): {e}");
        }
    }

    /// Records events of no agent or customer (`(remote, event, detail)`)
    /// in one transaction: the server's aggregated failures.
    pub fn audit_many(&mut self, rows: &[(String, &str, String)]) -> rusqlite::Result<()> {
        let now = self.now();
        let tx = self.conn.transaction()?;
        for (remote, event, detail) in rows {
            audit_in(&tx, now, None, None, remote, event, detail)?;
        }
        tx.commit()
    }

    /// The id of dealer `name`, created if new.
    fn dealer_id(tx: &Transaction<'_>, name: &str, now: i64) -> Result<i64, String> {
        check_dealer_name(name)?;
        tx.execute(
            "INSERT INTO dealers (name, created_ms) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
            params![name, now],
        )
        .map_err(|e| e.to_string())?;
        tx.query_row("SELECT id FROM dealers WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .map_err(|e| e.to_string())
    }

    /// The id of customer `name`, created for `dealer` (the default one
    /// when `None`) if new. An existing customer stays with its dealer:
    /// naming another is refused, naming both.
    fn customer_id(
        tx: &Transaction<'_>,
        name: &str,
        dealer: Option<&str>,
        now: i64,
    ) -> Result<i64, String> {
        let existing: Option<(i64, String)> = tx
            .query_row(
                "SELECT c.id, d.name FROM customers c JOIN dealers d ON d.id = c.dealer_id WHERE c.name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| e.to_string())?;
        if let Some((id, has)) = existing {
            return match dealer {
                Some(wanted) if wanted != has => Err(format!(
                    "customer {name} belongs to dealer {has}, not to dealer {wanted}"
                )),
                _ => Ok(id),
            };
        }
        let dealer_id = Self::dealer_id(tx, dealer.unwrap_or(DEFAULT_DEALER), now)?;
        tx.query_row(
            "INSERT INTO customers (name, created_ms, dealer_id) VALUES (?1, ?2, ?3) RETURNING id",
            params![name, now, dealer_id],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())
    }

    /// Creates a one-time enrollment token for `customer` (created if new,
    /// for the default dealer).
    pub fn create_token(&mut self, customer: &str) -> Result<String, String> {
        self.create_token_for(customer, None)
    }

    /// Creates a one-time enrollment token for `customer`; a new customer
    /// belongs to `dealer` (the default one when `None`), an existing one
    /// must belong to it already.
    pub fn create_token_for(
        &mut self,
        customer: &str,
        dealer: Option<&str>,
    ) -> Result<String, String> {
        let customer = customer.trim();
        if customer.is_empty() {
            return Err("the customer name is empty".into());
        }
        let token = format!("dcat_{}", self.random_hex(24));
        let now = self.now();
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let id = Self::customer_id(&tx, customer, dealer, now)?;
        tx.execute(
            "INSERT INTO enrollment_tokens (token_hash, customer_id, created_ms) VALUES (?1, ?2, ?3)",
            params![secret::hash(&token), id, now],
        )
        .map_err(|e| e.to_string())?;
        audit_in(&tx, now, None, Some(id), "cli", "token_created", customer)
            .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        Ok(token)
    }

    /// The dealer of customer `customer`, when it exists.
    pub fn dealer_of(&self, customer: &str) -> Result<Option<String>, String> {
        self.conn
            .query_row(
                "SELECT d.name FROM customers c JOIN dealers d ON d.id = c.dealer_id WHERE c.name = ?1",
                [customer],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| e.to_string())
    }

    /// Trades a one-time token for a new agent's id and secret.
    pub fn enroll(
        &mut self,
        token: &str,
        hostname: &str,
        version: &str,
        remote: &str,
    ) -> Result<Enrollment, Refusal> {
        let agent_id = format!("agt_{}", self.random_hex(8));
        let secret = self.random_hex(32);
        let now = self.now();
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
            Some((id, Some(used), name)) => {
                if let Some(again) =
                    Self::enrollment_again(&tx, token, hostname, used, now, &secret)?
                {
                    audit_in(
                        &tx,
                        now,
                        Some(&again),
                        Some(id),
                        remote,
                        "enrolled_again",
                        "the token's agent had not been heard from: a new secret for it",
                    )?;
                    tx.commit()?;
                    return Ok(Enrollment {
                        agent_id: again,
                        secret,
                        customer: name,
                    });
                }
                audit_in(
                    &tx,
                    now,
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
                audit_in(
                    &tx,
                    now,
                    None,
                    None,
                    remote,
                    "enroll_refused",
                    "unknown token",
                )?;
                tx.commit()?;
                return Err(Refusal::new(401, "unknown enrollment token"));
            }
        };
        tx.execute(
            "INSERT INTO agents (id, customer_id, secret_hash, hostname, version, enrolled_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![agent_id, customer_id, secret::hash(&secret), hostname, version, now],
        )?;
        tx.execute(
            "UPDATE enrollment_tokens SET used_ms = ?1, agent_id = ?2 WHERE token_hash = ?3",
            params![now, agent_id, secret::hash(token)],
        )?;
        audit_in(
            &tx,
            now,
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

    /// A used token presented again by the same host, before the agent it
    /// made has ever called: the answer to the first enrollment was lost
    /// (a dropped connection, a crash before the identity was saved), so
    /// the same agent gets a new secret instead of a refusal that would
    /// leave the host without any identity. Once the agent has called, or
    /// after [`ENROLL_AGAIN_WITHIN_MS`], the token is spent for good.
    fn enrollment_again(
        tx: &rusqlite::Transaction<'_>,
        token: &str,
        hostname: &str,
        used_ms: i64,
        now: i64,
        secret: &str,
    ) -> rusqlite::Result<Option<String>> {
        if now.saturating_sub(used_ms) > ENROLL_AGAIN_WITHIN_MS {
            return Ok(None);
        }
        let agent: Option<String> = tx
            .query_row(
                "SELECT a.id FROM enrollment_tokens t JOIN agents a ON a.id = t.agent_id
                 WHERE t.token_hash = ?1 AND a.hostname = ?2
                   AND a.last_contact_ms IS NULL AND a.revoked_ms IS NULL",
                params![secret::hash(token), hostname],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = &agent {
            tx.execute(
                "UPDATE agents SET secret_hash = ?1 WHERE id = ?2",
                params![secret::hash(secret), id],
            )?;
        }
        Ok(agent)
    }

    /// Checks an `Authorization: Bearer <agent id>:<secret>` value. Failures
    /// are audited with what was wrong, and all answer the same 401.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        remote: &str,
    ) -> Result<Agent, Refusal> {
        self.check_credentials(authorization).map_err(|f| {
            self.audit(
                f.agent.as_deref(),
                f.customer,
                remote,
                "auth_refused",
                &f.why,
            );
            f.refusal
        })
    }

    /// [`Store::authenticate`] without the audit row: the server counts
    /// failures per address and window instead (see `audit.rs`), so a
    /// flood of wrong secrets does not become a flood of transactions.
    pub fn check_credentials(&self, authorization: Option<&str>) -> Result<Agent, AuthFailure> {
        let refuse = |agent: Option<&str>, customer: Option<i64>, why: &str| {
            Err(AuthFailure {
                refusal: Refusal::new(401, "unknown agent or wrong secret"),
                agent: agent.map(str::to_string),
                customer,
                why: why.to_string(),
            })
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
            .optional()
            .map_err(|e| AuthFailure {
                why: format!("storage error: {e}"),
                refusal: e.into(),
                agent: None,
                customer: None,
            })?;
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
    /// Returns what [`Store::delivered`] does: the newest batch this agent
    /// delivered that the store holds, and how many of its batches it holds.
    pub fn hello(
        &self,
        agent: &Agent,
        version: &str,
        capabilities: u32,
        clock: &Clock,
    ) -> Result<(Option<BatchId>, u64), Refusal> {
        let now = self.now();
        let skew = clock
            .wall_ms
            .and_then(|w| i64::try_from(w).ok())
            .map(|w| w.saturating_sub(now));
        self.conn.execute(
            "UPDATE agents SET version = ?1, capabilities = ?2, last_contact_ms = ?3, clock_skew_ms = ?4 WHERE id = ?5",
            params![version, capabilities, now, skew, agent.id],
        )?;
        self.delivered(&agent.id)
    }

    /// The newest batch agent `agent` delivered (stored new, or acknowledged
    /// as a duplicate) that the store holds, `None` when none; and how many
    /// batches stored new are attributed to it. Read only.
    pub fn delivered(&self, agent: &str) -> Result<(Option<BatchId>, u64), Refusal> {
        let (last, held): (Option<Vec<u8>>, i64) = self
            .conn
            .query_row(
                "SELECT last_batch, (SELECT COUNT(*) FROM batches WHERE agent_id = ?1) FROM agents WHERE id = ?1",
                [agent],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| Refusal::new(404, format!("no agent {agent}")))?;
        Ok((batch_id_of(last), u64::try_from(held).unwrap_or(0)))
    }

    /// Stores a batch exactly once per customer, in one transaction committed
    /// before this returns. `batch` must be the digest of `readings`. A batch
    /// the customer holds already (whichever of its agents delivered it) is a
    /// duplicate: acknowledged, audited, nothing stored. A new batch is
    /// stored only if the customer holds the batch named as its predecessor
    /// (409 otherwise). A batch in order becomes the agent's last delivered
    /// one. `position` is the agent's journal position, kept for the logs.
    pub fn ingest(
        &mut self,
        agent: &Agent,
        upload: &Upload<'_>,
        remote: &str,
    ) -> Result<Ingested, Refusal> {
        let Upload {
            batch,
            after,
            position,
            sent,
            readings,
        } = *upload;
        if BatchId::of(readings) != *batch {
            return Err(Refusal::new(400, "batch id does not match its readings"));
        }
        let digest = &batch.0[..];
        let now = self.now();
        let position_i = i64::try_from(position).unwrap_or(i64::MAX);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let holder = |d: &[u8]| -> rusqlite::Result<Option<String>> {
            tx.query_row(
                "SELECT agent_id FROM batches WHERE customer_id = ?1 AND digest = ?2",
                params![agent.customer_id, d],
                |r| r.get(0),
            )
            .optional()
        };
        let held_by = holder(digest)?;
        // What the cloud holds of an agent's journal must stay a prefix of
        // it: a batch is in order when the one before it is held (or it is
        // the journal's first). A restore from a backup in the middle of a
        // round breaks that, and the agent learns it here.
        let in_order = match after {
            None => true,
            Some(a) => holder(&a.0)?.is_some(),
        };
        if held_by.is_none() && !in_order {
            let a = after.map_or_else(String::new, |a| a.to_string());
            return Err(Refusal::new(
                409,
                format!(
                    "batch {batch} follows batch {a}, which this cloud does not hold: say hello again"
                ),
            ));
        }
        if let Some(by) = held_by {
            let from = if by == agent.id {
                String::new()
            } else {
                format!(" from agent {by}")
            };
            audit_in(
                &tx,
                now,
                Some(&agent.id),
                Some(agent.customer_id),
                remote,
                "duplicate",
                &format!("batch {batch} (position {position}) already held{from}"),
            )?;
            // A duplicate in order moves the agent's mark (a re-enrolled
            // agent walks its journal forward this way); one out of order
            // (a restored agent re-sending old batches) leaves it.
            if in_order {
                tx.execute(
                    "UPDATE agents SET last_batch = ?1, last_contact_ms = ?2 WHERE id = ?3",
                    params![digest, now, agent.id],
                )?;
            }
            tx.commit()?;
            return Ok(Ingested {
                stored: 0,
                skipped: 0,
                duplicate: true,
                flagged: 0,
            });
        }
        let batch_row: i64 = tx.query_row(
            "INSERT INTO batches (customer_id, agent_id, digest, readings, received_ms, position) VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            params![
                agent.customer_id,
                agent.id,
                digest,
                i64::try_from(readings.len()).unwrap_or(i64::MAX),
                now,
                position_i
            ],
            |r| r.get(0),
        )?;
        let mut stored = 0u32;
        let mut skipped = 0u32;
        let mut flagged = 0u32;
        for (i, r) in readings.iter().enumerate() {
            let r =
                r.map_err(|e| Refusal::new(400, format!("reading {i} of batch {batch}: {e}")))?;
            let Some(key) = r.key() else {
                skipped += 1;
                audit_in(
                    &tx,
                    now,
                    Some(&agent.id),
                    Some(agent.customer_id),
                    remote,
                    "reading_skipped",
                    &format!(
                        "batch {batch} reading {i}: no serial, MAC or address to key the device on"
                    ),
                )?;
                continue;
            };
            let at = reading_time(&r, sent, now);
            let key_text = key.to_string();
            let mac = mac_text(r.mac);
            // Does the reading fit what the device was? Checked before it is
            // stored, against the billing counters.
            let known = integrity::known_device(&tx, agent.customer_id, &key_text)?;
            let mut suspicions: Vec<(&'static str, String)> = Vec::new();
            let mut conflict = None;
            if let Some(k) = &known {
                if let (Some(old), Some(new)) = (&k.mac, &mac)
                    && old != new
                {
                    suspicions.push((
                        "mac_changed",
                        format!("MAC {new} under the key where {old} was known"),
                    ));
                }
                if k.agent_id != agent.id && !integrity::handover(&tx, &k.agent_id, &agent.id)? {
                    suspicions.push((
                        "agent_changed",
                        format!(
                            "reported by agent {} where agent {} reported it",
                            agent.id, k.agent_id
                        ),
                    ));
                }
                for (name, billing, value) in integrity::backwards(&tx, k.id, &r)? {
                    suspicions.push((
                        "counter_backwards",
                        format!("{name} went back from {billing} to {value}"),
                    ));
                }
                conflict = integrity::open_conflict(&tx, k.id)?;
            }
            let device = Self::upsert_device(
                &tx,
                agent,
                &r,
                &key_text,
                key.is_stable(),
                at.unwrap_or(now),
                conflict.is_some() || !suspicions.is_empty(),
            )?;
            for (kind, detail) in &suspicions {
                let id = integrity::raise(
                    &tx,
                    &integrity::Raised {
                        device,
                        kind,
                        detail,
                        agent: &agent.id,
                        batch: batch_row,
                        mac: mac.as_deref(),
                        now,
                    },
                )?;
                conflict.get_or_insert(id);
                audit_in(
                    &tx,
                    now,
                    Some(&agent.id),
                    Some(agent.customer_id),
                    remote,
                    "identity_conflict",
                    &format!("device {key_text} (batch {batch}): {kind}: {detail}"),
                )?;
            }
            let rows = Self::insert_reading(&tx, now, agent, device, batch_row, at, &r, remote)?;
            if let Some(c) = conflict {
                integrity::flag(&tx, c, &rows, now)?;
                flagged += 1;
            }
            stored += 1;
        }
        tx.execute(
            "UPDATE agents SET last_batch = ?1, last_contact_ms = ?2 WHERE id = ?3",
            params![digest, now, agent.id],
        )?;
        tx.commit()?;
        Ok(Ingested {
            stored,
            skipped,
            duplicate: false,
            flagged,
        })
    }

    fn upsert_device(
        tx: &Transaction<'_>,
        agent: &Agent,
        r: &Reading<'_>,
        key: &str,
        stable: bool,
        seen: i64,
        keep_identity: bool,
    ) -> rusqlite::Result<i64> {
        // Under an identity conflict the device keeps the MAC and agent it
        // was billed under until the operator accepts the change.
        tx.query_row(
            "INSERT INTO devices (customer_id, device_key, key_stable, vendor, serial, mac, model, firmware, sys_name, location, address, agent_id, first_seen_ms, last_seen_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)
             ON CONFLICT (customer_id, device_key) DO UPDATE SET
                 mac = CASE WHEN ?14 THEN mac ELSE COALESCE(excluded.mac, mac) END,
                 model = excluded.model, firmware = excluded.firmware,
                 sys_name = excluded.sys_name, location = excluded.location, address = excluded.address,
                 agent_id = CASE WHEN ?14 THEN agent_id ELSE excluded.agent_id END,
                 last_seen_ms = MAX(last_seen_ms, excluded.last_seen_ms)
             RETURNING id",
            params![
                agent.customer_id, key, stable, r.vendor, r.serial.trim(), mac_text(r.mac), r.model, r.firmware,
                r.sys_name, r.sys_location, r.address, agent.id, seen, keep_identity
            ],
            |row| row.get(0),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_reading(
        tx: &Transaction<'_>,
        now: i64,
        agent: &Agent,
        device: i64,
        batch: i64,
        at: Option<i64>,
        r: &Reading<'_>,
        remote: &str,
    ) -> rusqlite::Result<Vec<i64>> {
        let mut rows = Vec::with_capacity(r.counters.len());
        let mut counter = tx.prepare_cached(
            "INSERT INTO readings (device_id, agent_id, batch_id, at_ms, boot_id, mono_ms, counter, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mono = i64::try_from(r.at.mono_ms).unwrap_or(i64::MAX);
        for c in &r.counters {
            let Ok(value) = i64::try_from(c.value) else {
                audit_in(
                    tx,
                    now,
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
                batch,
                at,
                &r.at.boot_id[..],
                mono,
                c.name,
                value
            ])?;
            rows.push(tx.last_insert_rowid());
        }
        let mut supply = tx.prepare_cached(
            "INSERT INTO supplies (device_id, batch_id, at_ms, supply_index, description, type, colorant, level, max_capacity, percent, state, part_number)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for s in &r.supplies {
            supply.execute(params![
                device,
                batch,
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
            "INSERT INTO alerts (device_id, batch_id, at_ms, severity, alert_group, code, description, time_cs) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for a in &r.alerts {
            alert.execute(params![
                device,
                batch,
                at,
                a.severity_name(),
                a.group,
                a.code,
                a.description,
                a.time_cs
            ])?;
        }
        Ok(rows)
    }

    /// The counter values stored for customer `customer` (by name) in the
    /// readings rows `rows` (all of them: `1..=i64::MAX`), in the order they
    /// were stored, with the device, the time and the batch that brought
    /// each. Read only; for checks (the simulator's invariants read what
    /// arrived since their last look). An unknown customer has none.
    pub fn readings_of_customer(
        &self,
        customer: &str,
        rows: std::ops::RangeInclusive<i64>,
    ) -> Result<Vec<StoredReading>, String> {
        let fail = |e: rusqlite::Error| format!("cannot read the readings of {customer}: {e}");
        let mut q = self
            .conn
            .prepare_cached(
                "SELECT d.device_key, r.counter, r.value, r.at_ms, r.boot_id, r.mono_ms, b.digest, r.agent_id
                 FROM readings r JOIN devices d ON d.id = r.device_id JOIN batches b ON b.id = r.batch_id
                 WHERE d.customer_id = (SELECT id FROM customers WHERE name = ?1)
                   AND r.id >= ?2 AND r.id <= ?3
                 ORDER BY r.id",
            )
            .map_err(fail)?;
        q.query_map(params![customer, rows.start(), rows.end()], |r| {
            let boot: Vec<u8> = r.get(4)?;
            let digest: Vec<u8> = r.get(6)?;
            Ok(StoredReading {
                device_key: r.get(0)?,
                counter: r.get(1)?,
                value: r.get(2)?,
                at_ms: r.get(3)?,
                boot_id: boot.try_into().unwrap_or_default(),
                mono_ms: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                batch: batch_id_of(Some(digest)).unwrap_or_default(),
                agent_id: r.get(7)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(fail)
    }

    /// Tasks not yet finished, oldest first; marks them delivered.
    pub fn pending_tasks(
        &mut self,
        agent: &Agent,
        limit: usize,
    ) -> Result<Vec<PendingTask>, Refusal> {
        let now = self.now();
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
        // An answer small enough for a device's buffer: the rest comes at
        // the next poll (always at least one task, so none is stuck).
        let mut bytes = 0usize;
        let tasks: Vec<PendingTask> = tasks
            .into_iter()
            .enumerate()
            .take_while(|(i, t)| {
                bytes = bytes.saturating_add(t.kind.len() + t.arg.len() + TASK_OVERHEAD);
                *i == 0 || bytes <= MAX_TASK_BYTES
            })
            .map(|(_, t)| t)
            .collect();
        for t in &tasks {
            tx.execute(
                "UPDATE tasks SET delivered_ms = COALESCE(delivered_ms, ?1) WHERE id = ?2",
                params![now, t.id as i64],
            )?;
        }
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
            params![self.now(), ok, detail, task as i64, agent.id],
        )?;
        if n == 0 {
            return Err(Refusal::new(404, format!("no task {task} for this agent")));
        }
        Ok(())
    }

    /// Queues a task for an agent.
    pub fn create_task(&self, agent: &str, kind: &str, arg: &str) -> Result<u64, String> {
        if arg.len() > MAX_TASK_ARG {
            return Err(format!(
                "the task's argument is {} bytes; agents take at most {MAX_TASK_ARG}",
                arg.len()
            ));
        }
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
                params![agent, kind, arg, self.now()],
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

    /// Every task, oldest first.
    pub fn tasks(&self) -> Result<Vec<TaskRow>, String> {
        let mut q = self
            .conn
            .prepare(
                "SELECT id, agent_id, kind, arg, delivered_ms, done_ms, ok, detail \
                 FROM tasks ORDER BY id",
            )
            .map_err(|e| e.to_string())?;
        let rows = q
            .query_map([], |r| {
                let state = match (r.get::<_, Option<i64>>(4)?, r.get::<_, Option<i64>>(5)?) {
                    (_, Some(_)) => format!(
                        "{}: {}",
                        if r.get::<_, Option<bool>>(6)?.unwrap_or(false) {
                            "ok"
                        } else {
                            "failed"
                        },
                        r.get::<_, Option<String>>(7)?.unwrap_or_default()
                    ),
                    (Some(_), None) => "delivered".to_string(),
                    (None, None) => "queued".to_string(),
                };
                Ok(TaskRow {
                    id: r.get::<_, i64>(0)? as u64,
                    agent: r.get(1)?,
                    kind: r.get(2)?,
                    arg: r.get(3)?,
                    state,
                })
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }

    /// Every agent: (id, customer, hostname, version), oldest first.
    pub fn agents(&self) -> Result<Vec<(String, String, String, String)>, String> {
        let mut q = self
            .conn
            .prepare(
                "SELECT a.id, c.name, a.hostname, a.version FROM agents a \
                 JOIN customers c ON c.id = a.customer_id ORDER BY a.enrolled_ms, a.id",
            )
            .map_err(|e| e.to_string())?;
        let rows = q
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }

    /// Accepts what the open identity conflicts of conflict `id`'s device
    /// held back (a board swap's counter reset, a new network card, a new
    /// agent): they are resolved, their flagged readings become the billing
    /// ones, and the device takes the MAC and agent of the latest. Returns
    /// the device's key and how many conflicts were resolved.
    pub fn resolve_conflict(&mut self, id: i64) -> Result<(String, usize), String> {
        let fail = |e: rusqlite::Error| format!("cannot resolve conflict {id}: {e}");
        let now = self.now();
        let tx = self.conn.transaction().map_err(fail)?;
        let found: Option<(i64, String, Option<i64>)> = tx
            .query_row(
                "SELECT c.device_id, d.device_key, c.resolved_ms FROM conflicts c JOIN devices d ON d.id = c.device_id WHERE c.id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(fail)?;
        let (device, key) = match found {
            None => return Err(format!("no conflict {id}")),
            Some((_, key, Some(_))) => {
                return Err(format!("conflict {id} (device {key}) is resolved already"));
            }
            Some((device, key, None)) => (device, key),
        };
        let (agent, mac): (String, Option<String>) = tx
            .query_row(
                "SELECT agent_id, (SELECT mac FROM conflicts WHERE device_id = ?1 AND resolved_ms IS NULL AND mac IS NOT NULL ORDER BY last_ms DESC LIMIT 1)
                 FROM conflicts WHERE device_id = ?1 AND resolved_ms IS NULL ORDER BY last_ms DESC, id DESC LIMIT 1",
                [device],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(fail)?;
        tx.execute(
            "DELETE FROM suspect_readings WHERE conflict_id IN (SELECT id FROM conflicts WHERE device_id = ?1 AND resolved_ms IS NULL)",
            [device],
        )
        .map_err(fail)?;
        let resolved = tx
            .execute(
                "UPDATE conflicts SET resolved_ms = ?1 WHERE device_id = ?2 AND resolved_ms IS NULL",
                params![now, device],
            )
            .map_err(fail)?;
        tx.execute(
            "UPDATE devices SET agent_id = ?1, mac = COALESCE(?2, mac) WHERE id = ?3",
            params![agent, mac, device],
        )
        .map_err(fail)?;
        audit_in(
            &tx,
            now,
            None,
            None,
            "cli",
            "conflict_resolved",
            &format!("device {key}: {resolved} conflicts accepted (named by {id})"),
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok((key, resolved))
    }

    /// Revokes an agent: its secret stops working at once.
    pub fn revoke(&self, agent: &str) -> Result<(), String> {
        let n = self
            .conn
            .execute(
                "UPDATE agents SET revoked_ms = ?1 WHERE id = ?2 AND revoked_ms IS NULL",
                params![self.now(), agent],
            )
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("no active agent {agent}"));
        }
        self.audit(Some(agent), None, "cli", "revoked", agent);
        Ok(())
    }
}
