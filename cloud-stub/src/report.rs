//! Read-only views of the database for the web page, the JSON API and the
//! operator commands. Every query takes a [`Scope`]: an agent sees its own
//! customer's rows and nothing else, an operator its dealer's customers'.

use crate::store::{Scope, Store};
use rusqlite::params;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct SupplyRow {
    pub index: i64,
    pub description: String,
    pub colorant: String,
    pub percent: Option<f64>,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRow {
    pub id: i64,
    pub customer: String,
    pub key: String,
    pub key_stable: bool,
    pub vendor: String,
    pub model: String,
    pub serial: String,
    pub address: String,
    pub agent: String,
    pub last_seen_ms: i64,
    /// The latest value of each counter.
    pub counters: Vec<(String, i64)>,
    /// The supplies of the latest reading.
    pub supplies: Vec<SupplyRow>,
    /// Its open identity conflicts: while there is one, `counters` are the
    /// last good (billing) values and newer readings are flagged.
    pub conflicts: Vec<ConflictRow>,
}

/// An identity conflict of a device (see `integrity.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictRow {
    pub id: i64,
    /// `counter_backwards`, `mac_changed` or `agent_changed`.
    pub kind: String,
    /// What the latest reading it flagged said.
    pub detail: String,
    pub agent: String,
    pub first_ms: i64,
    pub last_ms: i64,
    /// Readings it holds back (flagged).
    pub readings: i64,
}

impl ConflictRow {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "kind": self.kind, "detail": self.detail, "agent": self.agent,
            "first_ms": self.first_ms, "last_ms": self.last_ms, "flagged_readings": self.readings,
        })
    }
}

impl DeviceRow {
    pub fn counter(&self, name: &str) -> Option<i64> {
        self.counters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "customer": self.customer,
            "key": self.key,
            "key_stable": self.key_stable,
            "vendor": self.vendor,
            "model": self.model,
            "serial": self.serial,
            "address": self.address,
            "agent": self.agent,
            "last_seen_ms": self.last_seen_ms,
            "counters": self.counters.iter().map(|(n, v)| (n.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "supplies": self.supplies.iter().map(|s| json!({
                "index": s.index, "description": s.description, "colorant": s.colorant,
                "percent": s.percent, "state": s.state,
            })).collect::<Vec<_>>(),
            "conflicts": self.conflicts.iter().map(ConflictRow::to_json).collect::<Vec<_>>(),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRow {
    pub name: String,
    pub agents: i64,
    pub devices: i64,
    pub last_contact_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadingRow {
    /// The row's id: the cursor of the next page (`before`).
    pub id: i64,
    /// The cloud's id of the batch that brought the reading (`batches.id`).
    pub batch: i64,
    pub at_ms: Option<i64>,
    pub counter: String,
    pub value: i64,
    /// Held by an identity conflict: not a billing value.
    pub flagged: bool,
}

pub fn customers(store: &Store, scope: Scope) -> rusqlite::Result<Vec<CustomerRow>> {
    let mut q = store.connection().prepare(
        "SELECT c.name,
                (SELECT COUNT(*) FROM agents a WHERE a.customer_id = c.id),
                (SELECT COUNT(*) FROM devices d WHERE d.customer_id = c.id),
                (SELECT MAX(last_contact_ms) FROM agents a WHERE a.customer_id = c.id)
         FROM customers c WHERE (?1 IS NULL OR c.id = ?1) AND (?2 IS NULL OR c.dealer_id = ?2)
         ORDER BY c.name",
    )?;
    q.query_map([scope.customer(), scope.dealer()], |r| {
        Ok(CustomerRow {
            name: r.get(0)?,
            agents: r.get(1)?,
            devices: r.get(2)?,
            last_contact_ms: r.get(3)?,
        })
    })?
    .collect()
}

/// How a device is named: `id:42` (its id only), `key:hp/CN1` (its key
/// only), `serial:CN1` (its serial only), or bare, which is any of the three
/// (an id only when the text is all digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name<'a> {
    Id(i64),
    Key(&'a str),
    Serial(&'a str),
    Any(&'a str),
}

impl<'a> Name<'a> {
    fn parse(which: &'a str) -> Option<Name<'a>> {
        if let Some(id) = which.strip_prefix("id:") {
            return id.trim().parse().ok().map(Name::Id);
        }
        if let Some(key) = which.strip_prefix("key:") {
            return Some(Name::Key(key));
        }
        if let Some(serial) = which.strip_prefix("serial:") {
            return Some(Name::Serial(serial.trim()));
        }
        Some(Name::Any(which.trim()))
    }
}

fn device_rows(
    store: &Store,
    scope: Scope,
    only: Option<Name<'_>>,
) -> rusqlite::Result<Vec<DeviceRow>> {
    let conn = store.connection();
    let (id, key, serial): (Option<i64>, Option<&str>, Option<&str>) = match only {
        None => (None, None, None),
        Some(Name::Id(id)) => (Some(id), None, None),
        Some(Name::Key(k)) => (None, Some(k), None),
        Some(Name::Serial(s)) => (None, None, Some(s)),
        Some(Name::Any(x)) => (
            x.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| x.parse().ok())
                .flatten(),
            Some(x),
            Some(x),
        ),
    };
    // With a name, a device matches on any of the parts given; an empty
    // serial never names a device.
    let mut q = conn.prepare(
        "SELECT d.id, c.name, d.device_key, d.key_stable, d.vendor, d.model, d.serial, d.address, d.agent_id, d.last_seen_ms
         FROM devices d JOIN customers c ON c.id = d.customer_id
         WHERE (?1 IS NULL OR d.customer_id = ?1) AND (?6 IS NULL OR c.dealer_id = ?6)
           AND (?2 = 0 OR d.id = ?3 OR d.device_key = ?4 OR (d.serial = ?5 AND d.serial <> ''))
         ORDER BY c.name, d.device_key",
    )?;
    let mut devices: Vec<DeviceRow> = q
        .query_map(
            params![
                scope.customer(),
                only.is_some(),
                id,
                key,
                serial,
                scope.dealer()
            ],
            |r| {
                Ok(DeviceRow {
                    id: r.get(0)?,
                    customer: r.get(1)?,
                    key: r.get(2)?,
                    key_stable: r.get(3)?,
                    vendor: r.get(4)?,
                    model: r.get(5)?,
                    serial: r.get(6)?,
                    address: r.get(7)?,
                    agent: r.get(8)?,
                    last_seen_ms: r.get(9)?,
                    counters: Vec::new(),
                    supplies: Vec::new(),
                    conflicts: Vec::new(),
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    // The billing values: the latest of each counter not held by a
    // conflict.
    let mut counters = conn.prepare(
        "SELECT counter, value FROM readings WHERE id IN
             (SELECT MAX(r.id) FROM readings r WHERE r.device_id = ?1
                AND NOT EXISTS (SELECT 1 FROM suspect_readings s WHERE s.reading_id = r.id)
              GROUP BY r.counter)
         ORDER BY counter",
    )?;
    let mut supplies = conn.prepare(
        "SELECT supply_index, description, colorant, percent, state FROM supplies
         WHERE device_id = ?1 AND batch_id = (SELECT MAX(batch_id) FROM supplies WHERE device_id = ?1)
         ORDER BY supply_index, id",
    )?;
    let mut conflicts = conn.prepare(
        "SELECT id, kind, detail, agent_id, first_ms, last_ms, readings FROM conflicts
         WHERE device_id = ?1 AND resolved_ms IS NULL ORDER BY id",
    )?;
    for d in &mut devices {
        d.counters = counters
            .query_map([d.id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        d.supplies = supplies
            .query_map([d.id], |r| {
                Ok(SupplyRow {
                    index: r.get(0)?,
                    description: r.get(1)?,
                    colorant: r.get(2)?,
                    percent: r.get(3)?,
                    state: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        d.conflicts = conflicts
            .query_map([d.id], |r| {
                Ok(ConflictRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    detail: r.get(2)?,
                    agent: r.get(3)?,
                    first_ms: r.get(4)?,
                    last_ms: r.get(5)?,
                    readings: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(devices)
}

pub fn devices(store: &Store, scope: Scope) -> rusqlite::Result<Vec<DeviceRow>> {
    device_rows(store, scope, None)
}

/// What a device's name found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    Found(Box<DeviceRow>),
    /// No device of the reader's has that name (or the name is malformed:
    /// `id:` with no number).
    Missing,
    /// Several have (a serial two customers' printers share, a serial that
    /// is another device's id): the reader must say which, with `id:`.
    Ambiguous(Vec<DeviceRow>),
}

/// A device by name (see `Name`: `id:42`, `key:...`, `serial:...`, or
/// bare), among the devices `scope` may see: one customer's name never
/// reaches another customer's device, and a name that fits several devices
/// is answered with all of them rather than the first.
pub fn lookup(store: &Store, scope: Scope, which: &str) -> rusqlite::Result<Lookup> {
    let Some(name) = Name::parse(which) else {
        return Ok(Lookup::Missing);
    };
    let mut found = device_rows(store, scope, Some(name))?;
    Ok(match found.len() {
        0 => Lookup::Missing,
        1 => Lookup::Found(Box::new(found.remove(0))),
        _ => Lookup::Ambiguous(found),
    })
}

/// One device by name, when exactly one has it (see [`lookup`]).
pub fn device(store: &Store, scope: Scope, which: &str) -> rusqlite::Result<Option<DeviceRow>> {
    Ok(match lookup(store, scope, which)? {
        Lookup::Found(d) => Some(*d),
        Lookup::Missing | Lookup::Ambiguous(_) => None,
    })
}

/// Readings answered by default, and at most, per page.
pub const DEFAULT_PAGE: usize = 500;
pub const MAX_PAGE: usize = 5000;

/// One page of a device's counter values, newest first: at most `limit`
/// (clamped to 1..=[`MAX_PAGE`] + 1) of those stored before row `before` (all
/// with `None`). The next page is the one before the last row's id.
pub fn readings_page(
    store: &Store,
    device_id: i64,
    before: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<ReadingRow>> {
    // One row past a page: callers ask for it to learn whether another
    // page follows.
    let limit = limit.clamp(1, MAX_PAGE + 1);
    let mut q = store.connection().prepare(
        "SELECT r.id, r.batch_id, r.at_ms, r.counter, r.value,
                EXISTS (SELECT 1 FROM suspect_readings s WHERE s.reading_id = r.id)
         FROM readings r WHERE r.device_id = ?1 AND r.id < ?2 ORDER BY r.id DESC LIMIT ?3",
    )?;
    q.query_map(
        params![device_id, before.unwrap_or(i64::MAX), limit as i64],
        |r| {
            Ok(ReadingRow {
                id: r.get(0)?,
                batch: r.get(1)?,
                at_ms: r.get(2)?,
                counter: r.get(3)?,
                value: r.get(4)?,
                flagged: r.get(5)?,
            })
        },
    )?
    .collect()
}
