//! Meter integrity: a device's page counters are what a dealer bills, so a
//! reading that does not fit the device's history (a counter lower than
//! the billed one, another MAC under the same key, another live agent
//! reporting it) is not allowed to replace the billing counters silently. It is
//! stored all the same, flagged, and raises an identity conflict on the
//! device (listed by `dca-cloud devices`, shown on the operator's page);
//! while a conflict is open, the device's readings are flagged and its
//! billing counters stay the last good ones. A real counter reset (a board
//! swap) is thus visible as a conflict until the operator accepts it
//! (`dca-cloud conflict resolve`), which makes the flagged readings the
//! billing ones from then on.

use dca_core::sync::reading::Reading;
use rusqlite::{OptionalExtension, Transaction, params};

/// What the store knew of a device before a reading.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    pub id: i64,
    pub mac: Option<String>,
    pub agent_id: String,
}

pub(crate) fn known_device(
    tx: &Transaction<'_>,
    customer: i64,
    key: &str,
) -> rusqlite::Result<Option<Known>> {
    tx.prepare_cached(
        "SELECT id, mac, agent_id FROM devices WHERE customer_id = ?1 AND device_key = ?2",
    )?
    .query_row(params![customer, key], |r| {
        Ok(Known {
            id: r.get(0)?,
            mac: r.get(1)?,
            agent_id: r.get(2)?,
        })
    })
    .optional()
}

/// Whether agent `new` took over from agent `old` rather than reporting
/// beside it: `old` is revoked, or has not been in contact since `new` was
/// enrolled (a re-enrolled or replaced agent). Two agents both alive and
/// reporting one device is the conflict: their readings would interleave
/// in the bill.
pub(crate) fn handover(tx: &Transaction<'_>, old: &str, new: &str) -> rusqlite::Result<bool> {
    tx.prepare_cached(
        "SELECT o.revoked_ms IS NOT NULL OR COALESCE(o.last_contact_ms, 0) < n.enrolled_ms
         FROM agents o, agents n WHERE o.id = ?1 AND n.id = ?2",
    )?
    .query_row(params![old, new], |r| r.get(0))
    .optional()
    .map(|h| h.unwrap_or(true))
}

/// The device's oldest open conflict.
pub(crate) fn open_conflict(tx: &Transaction<'_>, device: i64) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached("SELECT MIN(id) FROM conflicts WHERE device_id = ?1 AND resolved_ms IS NULL")?
        .query_row([device], |r| r.get(0))
}

/// The counters of `r` lower than the device's billing value of them:
/// (name, billing value, new value).
pub(crate) fn backwards(
    tx: &Transaction<'_>,
    device: i64,
    r: &Reading<'_>,
) -> rusqlite::Result<Vec<(String, i64, i64)>> {
    let mut billing = tx.prepare_cached(
        "SELECT r.value FROM readings r WHERE r.device_id = ?1 AND r.counter = ?2
           AND NOT EXISTS (SELECT 1 FROM suspect_readings s WHERE s.reading_id = r.id)
         ORDER BY r.id DESC LIMIT 1",
    )?;
    let mut out = Vec::new();
    for c in &r.counters {
        let Ok(value) = i64::try_from(c.value) else {
            continue;
        };
        let last: Option<i64> = billing
            .query_row(params![device, c.name], |row| row.get(0))
            .optional()?;
        if let Some(last) = last
            && value < last
        {
            out.push((c.name.to_string(), last, value));
        }
    }
    Ok(out)
}

/// What raised a conflict.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Raised<'a> {
    pub device: i64,
    pub kind: &'static str,
    pub detail: &'a str,
    pub agent: &'a str,
    pub batch: i64,
    pub mac: Option<&'a str>,
    pub now: i64,
}

/// Opens a conflict of `kind` on the device, or brings its open one of
/// that kind up to date; returns its id.
pub(crate) fn raise(tx: &Transaction<'_>, c: &Raised<'_>) -> rusqlite::Result<i64> {
    let open: Option<i64> = tx
        .prepare_cached(
            "SELECT id FROM conflicts WHERE device_id = ?1 AND kind = ?2 AND resolved_ms IS NULL",
        )?
        .query_row(params![c.device, c.kind], |r| r.get(0))
        .optional()?;
    if let Some(id) = open {
        tx.execute(
            "UPDATE conflicts SET detail = ?1, agent_id = ?2, batch_id = ?3, mac = COALESCE(?4, mac), last_ms = ?5 WHERE id = ?6",
            params![c.detail, c.agent, c.batch, c.mac, c.now, id],
        )?;
        return Ok(id);
    }
    tx.query_row(
        "INSERT INTO conflicts (device_id, kind, detail, agent_id, batch_id, mac, first_ms, last_ms, readings)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 0) RETURNING id",
        params![c.device, c.kind, c.detail, c.agent, c.batch, c.mac, c.now],
        |r| r.get(0),
    )
}

/// Flags the counter rows `rows` of one reading as held by `conflict`.
pub(crate) fn flag(
    tx: &Transaction<'_>,
    conflict: i64,
    rows: &[i64],
    now: i64,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO suspect_readings (reading_id, conflict_id) VALUES (?1, ?2)",
    )?;
    for id in rows {
        insert.execute(params![id, conflict])?;
    }
    tx.execute(
        "UPDATE conflicts SET readings = readings + 1, last_ms = MAX(last_ms, ?1) WHERE id = ?2",
        params![now, conflict],
    )?;
    Ok(())
}
