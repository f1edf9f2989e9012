//! Read-only views of the database for the web page, the JSON API and the
//! operator commands. Every query takes a [`Scope`]: an agent sees its own
//! customer's rows and nothing else.

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
    /// The cloud's id of the batch that brought the reading (`batches.id`).
    pub batch: i64,
    pub at_ms: Option<i64>,
    pub counter: String,
    pub value: i64,
}

pub fn customers(store: &Store, scope: Scope) -> rusqlite::Result<Vec<CustomerRow>> {
    let mut q = store.connection().prepare(
        "SELECT c.name,
                (SELECT COUNT(*) FROM agents a WHERE a.customer_id = c.id),
                (SELECT COUNT(*) FROM devices d WHERE d.customer_id = c.id),
                (SELECT MAX(last_contact_ms) FROM agents a WHERE a.customer_id = c.id)
         FROM customers c WHERE ?1 IS NULL OR c.id = ?1 ORDER BY c.name",
    )?;
    q.query_map([scope.customer()], |r| {
        Ok(CustomerRow {
            name: r.get(0)?,
            agents: r.get(1)?,
            devices: r.get(2)?,
            last_contact_ms: r.get(3)?,
        })
    })?
    .collect()
}

fn device_rows(
    store: &Store,
    scope: Scope,
    only: Option<&str>,
) -> rusqlite::Result<Vec<DeviceRow>> {
    let conn = store.connection();
    let mut q = conn.prepare(
        "SELECT d.id, c.name, d.device_key, d.key_stable, d.vendor, d.model, d.serial, d.address, d.agent_id, d.last_seen_ms
         FROM devices d JOIN customers c ON c.id = d.customer_id
         WHERE (?1 IS NULL OR d.customer_id = ?1) AND (?2 IS NULL OR d.device_key = ?2 OR CAST(d.id AS TEXT) = ?2 OR d.serial = ?2)
         ORDER BY c.name, d.device_key",
    )?;
    let mut devices: Vec<DeviceRow> = q
        .query_map(params![scope.customer(), only], |r| {
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
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut counters = conn.prepare(
        "SELECT counter, value FROM readings WHERE id IN
             (SELECT MAX(id) FROM readings WHERE device_id = ?1 GROUP BY counter)
         ORDER BY counter",
    )?;
    let mut supplies = conn.prepare(
        "SELECT supply_index, description, colorant, percent, state FROM supplies
         WHERE device_id = ?1 AND batch_id = (SELECT MAX(batch_id) FROM supplies WHERE device_id = ?1)
         ORDER BY supply_index, id",
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
    }
    Ok(devices)
}

pub fn devices(store: &Store, scope: Scope) -> rusqlite::Result<Vec<DeviceRow>> {
    device_rows(store, scope, None)
}

/// One device by its key, its numeric id or its serial.
pub fn device(store: &Store, scope: Scope, which: &str) -> rusqlite::Result<Option<DeviceRow>> {
    Ok(device_rows(store, scope, Some(which))?.into_iter().next())
}

/// Every counter value stored for a device, oldest first.
pub fn readings(store: &Store, device_id: i64) -> rusqlite::Result<Vec<ReadingRow>> {
    let mut q = store.connection().prepare(
        "SELECT batch_id, at_ms, counter, value FROM readings WHERE device_id = ?1 ORDER BY id",
    )?;
    q.query_map([device_id], |r| {
        Ok(ReadingRow {
            batch: r.get(0)?,
            at_ms: r.get(1)?,
            counter: r.get(2)?,
            value: r.get(3)?,
        })
    })?
    .collect()
}
