//! The snapshot JSON contract (docs/snapshot.md, schema 1).
//!
//! Text fields that are empty are `null`; enumerations are reported by their
//! MIB names (a value outside the enumeration by its number); `percent` is
//! present only when level and max capacity are both real numbers.

use dca_core::printer::{Alert, Snapshot, Supply, Text, Tray};
use serde_json::{Map, Value, json};

pub const SCHEMA: u32 = 1;

fn text<const N: usize>(t: &Text<N>) -> Value {
    if t.is_empty() {
        Value::Null
    } else {
        Value::from(t.as_str())
    }
}

/// A MIB enumeration by name, or by number when the MIB has no name for it.
fn named(value: Option<i32>, name: Option<&'static str>) -> Value {
    match (value, name) {
        (_, Some(n)) => Value::from(n),
        (Some(v), None) => Value::from(v),
        (None, None) => Value::Null,
    }
}

fn mac(m: Option<[u8; 6]>) -> Value {
    m.map_or(Value::Null, |m| {
        Value::from(
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        )
    })
}

fn supply(s: &Supply) -> Value {
    json!({
        "index": s.index,
        "description": text(&s.description),
        "type": named(s.supply_type, s.type_name()),
        "class": named(s.class, s.class_name()),
        "unit": named(s.unit, s.unit_name()),
        "colorant": text(&s.colorant),
        "max_capacity": s.max_capacity,
        "level": s.level,
        "state": s.state().id(),
        "percent": s.percent().map(|p| (f64::from(p) * 10.0).round() / 10.0),
        "part_number": text(&s.part_number),
        "supply_serial": text(&s.supply_serial),
        "reported_level": s.reported_level,
        "correction": s.correction.map(|c| c.id()),
    })
}

fn tray(t: &Tray) -> Value {
    json!({
        "index": t.index,
        "name": text(&t.name),
        "max_capacity": t.max_capacity,
        "level": t.level,
        "media": text(&t.media),
    })
}

fn alert(a: &Alert) -> Value {
    json!({
        "severity": named(a.severity, a.severity_name()),
        "group": named(a.group, a.group_name()),
        "code": named(a.code, a.code_name()),
        "description": text(&a.description),
        "time_cs": a.time_cs,
    })
}

/// One device's snapshot as the JSON object of the contract.
pub fn to_json(address: Option<&str>, s: &Snapshot) -> Value {
    let id = &s.identity;
    let mut identity = Map::new();
    identity.insert(
        "vendor".into(),
        id.vendor.map_or(Value::Null, |v| Value::from(v.id())),
    );
    identity.insert("model".into(), text(&id.model));
    identity.insert("serial".into(), text(&id.serial));
    identity.insert("mac".into(), mac(id.mac));
    identity.insert("firmware".into(), text(&id.firmware));
    identity.insert("sys_descr".into(), text(&id.sys_descr));
    identity.insert(
        "sys_object_id".into(),
        id.sys_object_id
            .as_ref()
            .map_or(Value::Null, |o| Value::from(o.to_string())),
    );
    identity.insert("sys_name".into(), text(&id.sys_name));
    identity.insert("sys_location".into(), text(&id.sys_location));
    identity.insert("sys_contact".into(), text(&id.sys_contact));
    identity.insert("sys_uptime_cs".into(), json!(id.sys_uptime_cs));
    identity.insert("hr_device_descr".into(), text(&id.hr_device_descr));
    json!({
        "schema": SCHEMA,
        "address": address,
        "printer": s.is_printer(),
        "identity": identity,
        "counters": s.counters.iter().map(|c| json!({
            "name": c.name,
            "value": c.value,
            "oid": c.oid.to_string(),
        })).collect::<Vec<_>>(),
        "supplies": s.supplies.iter().map(supply).collect::<Vec<_>>(),
        "trays": s.trays.iter().map(tray).collect::<Vec<_>>(),
        "outputs": s.outputs.iter().map(tray).collect::<Vec<_>>(),
        "alerts": s.alerts.iter().map(alert).collect::<Vec<_>>(),
        "status": {
            "device_status": named(s.status.device_status, s.status.device_status_name()),
            "printer_status": named(s.status.printer_status, s.status.printer_status_name()),
            "error_flags": s.status.error_flags().collect::<Vec<_>>(),
            "console": text(&s.status.console),
        },
        "truncated": s.overflowed,
    })
}
