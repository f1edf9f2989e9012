//! The read-only web page at `/` and the JSON API under `/api/`, rendered on
//! the server from the database (no build step, no script).

use crate::report::{self, DeviceRow, Lookup};
use crate::store::{Scope, Store};
use serde_json::json;
use std::fmt::Write;

/// A rendered page or document.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

fn json_page(status: u16, value: &serde_json::Value) -> Page {
    Page {
        status,
        content_type: "application/json",
        body: value.to_string().into_bytes(),
    }
}

pub fn not_found(what: &str) -> Page {
    json_page(404, &json!({ "error": format!("not found: {what}") }))
}

fn storage_error(e: &rusqlite::Error) -> Page {
    json_page(503, &json!({ "error": format!("storage error: {e}") }))
}

/// Answers a GET of `path` for a reader limited to `scope`.
pub fn get(store: &Store, scope: Scope, path: &str) -> Page {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let result = match path {
        "/" => report::customers(store, scope)
            .and_then(|c| Ok((c, report::devices(store, scope)?)))
            .map(|(c, d)| Page {
                status: 200,
                content_type: "text/html; charset=utf-8",
                body: html(&c, &d).into_bytes(),
            }),
        "/api/customers" => report::customers(store, scope).map(|c| {
            json_page(
                200,
                &json!(c.iter().map(|c| json!({
                    "name": c.name, "agents": c.agents, "devices": c.devices, "last_contact_ms": c.last_contact_ms,
                })).collect::<Vec<_>>()),
            )
        }),
        "/api/devices" => report::devices(store, scope)
            .map(|d| json_page(200, &json!(d.iter().map(DeviceRow::to_json).collect::<Vec<_>>()))),
        _ => match path
            .strip_prefix("/api/devices/")
            .and_then(|p| p.strip_suffix("/readings"))
        {
            Some(which) => device_readings(store, scope, &percent_decode(which), query),
            None => Ok(not_found(path)),
        },
    };
    result.unwrap_or_else(|e| storage_error(&e))
}

/// `limit` and `before` of a readings query: a page size (default
/// [`report::DEFAULT_PAGE`], at most [`report::MAX_PAGE`]) and the row id
/// the page ends before.
fn page_of(query: &str) -> Result<(usize, Option<i64>), String> {
    let mut limit = report::DEFAULT_PAGE;
    let mut before = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=report::MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        format!("limit must be 1 to {}, not {value:?}", report::MAX_PAGE)
                    })?;
            }
            "before" => {
                before = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| format!("before must be a reading id, not {value:?}"))?,
                );
            }
            _ => return Err(format!("unknown parameter {name:?} (limit, before)")),
        }
    }
    Ok((limit, before))
}

/// `/api/devices/{name}/readings?limit=&before=`: one page, newest first,
/// with the cursor of the next; 409 with the candidates when the name fits
/// several devices.
fn device_readings(
    store: &Store,
    scope: Scope,
    which: &str,
    query: &str,
) -> rusqlite::Result<Page> {
    let (limit, before) = match page_of(query) {
        Ok(p) => p,
        Err(e) => return Ok(json_page(400, &json!({ "error": e }))),
    };
    let d = match report::lookup(store, scope, which)? {
        Lookup::Found(d) => d,
        Lookup::Missing => return Ok(not_found(&format!("device {which}"))),
        Lookup::Ambiguous(all) => {
            return Ok(json_page(
                409,
                &json!({
                    "error": format!("{} devices answer to {which:?}: name one as id:N", all.len()),
                    "candidates": all.iter().map(|d| json!({
                        "id": d.id, "name": format!("id:{}", d.id), "customer": d.customer,
                        "key": d.key, "serial": d.serial,
                    })).collect::<Vec<_>>(),
                }),
            ));
        }
    };
    // One more than asked tells whether there is a next page.
    let mut rows = report::readings_page(store, d.id, before, limit + 1)?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(json_page(
        200,
        &json!({
            "device": d.to_json(),
            "readings": rows.iter().map(|r| json!({
                "id": r.id, "batch": r.batch, "at_ms": r.at_ms, "counter": r.counter,
                "value": r.value, "flagged": r.flagged,
            })).collect::<Vec<_>>(),
            "limit": limit,
            "next_before": next,
        }),
    ))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if bytes[i] == b'%'
            && let Some(Ok(b)) = hex.map(|h| u8::from_str_radix(h, 16))
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM UTC`.
pub fn utc(ms: i64) -> String {
    let t = dca_core::time::UtcDateTime::from_unix_secs(ms.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year, t.month, t.day, t.hour, t.minute
    )
}

/// A supply's bar colour: red when low or empty (a receptacle: almost full
/// or full), else its colorant's, named
/// by the colorant or, when the device gives none, by the description.
fn bar_colour(colorant: &str, description: &str, state: &str) -> &'static str {
    let name = if colorant.is_empty() {
        description
    } else {
        colorant
    };
    match (state, name.to_ascii_lowercase().as_str()) {
        ("empty" | "low" | "full" | "almost_full", _) => "#c0392b",
        (_, c) if c.contains("cyan") => "#00a0c6",
        (_, c) if c.contains("magenta") => "#c6007e",
        (_, c) if c.contains("yellow") => "#e0c000",
        (_, c) if c.contains("black") => "#222",
        _ => "#7f8c8d",
    }
}

fn html(customers: &[report::CustomerRow], devices: &[DeviceRow]) -> String {
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>OpenDCA cloud</title><style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:2em}
th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}.bar{width:120px;height:10px;background:#eee;display:inline-block;margin-right:6px}
.bar span{display:block;height:10px}.supply{white-space:nowrap;font-size:90%}.unstable{color:#c0392b}
</style></head><body><h1>OpenDCA cloud</h1><h2>Customers</h2><table><tr><th>Customer</th><th>Agents</th><th>Devices</th><th>Last contact</th></tr>",
    );
    for c in customers {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
            escape(&c.name),
            c.agents,
            c.devices,
            c.last_contact_ms.map_or_else(|| "never".into(), utc)
        );
    }
    h.push_str("</table><h2>Devices</h2><table><tr><th>Customer</th><th>Device</th><th>Serial</th><th>Address</th><th>Last reading</th><th>Total pages</th><th>Mono</th><th>Colour</th><th>Supplies</th></tr>");
    for d in devices {
        let count = |name: &str| d.counter(name).map_or_else(String::new, |v| v.to_string());
        let total = d
            .counter("total")
            .or_else(|| d.counter("total_vendor"))
            .map_or_else(String::new, |v| v.to_string());
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{} {}{}</td><td{}>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>",
            escape(&d.customer),
            escape(&d.vendor),
            escape(&d.model),
            if d.conflicts.is_empty() {
                ""
            } else {
                " <span class=unstable title=\"billing counters held: see Identity conflicts\">(identity conflict)</span>"
            },
            if d.key_stable {
                ""
            } else {
                " class=unstable title=\"keyed on its address: no serial or MAC\""
            },
            escape(if d.serial.is_empty() {
                &d.key
            } else {
                &d.serial
            }),
            escape(&d.address),
            utc(d.last_seen_ms),
            total,
            count("mono"),
            count("color"),
        );
        for s in &d.supplies {
            let pct = s.percent.unwrap_or(0.0).clamp(0.0, 100.0);
            let label = s
                .percent
                .map_or_else(|| s.state.clone(), |p| format!("{p:.0}%"));
            let _ = write!(
                h,
                "<div class=supply><span class=bar><span style=\"width:{pct:.0}%;background:{}\"></span></span>{} {}</div>",
                bar_colour(&s.colorant, &s.description, &s.state),
                escape(&s.description),
                escape(&label)
            );
        }
        h.push_str("</td></tr>");
    }
    h.push_str("</table>");
    let conflicted: Vec<&DeviceRow> = devices.iter().filter(|d| !d.conflicts.is_empty()).collect();
    if !conflicted.is_empty() {
        h.push_str("<h2 class=unstable>Identity conflicts</h2><p>These devices' billing counters are held at their last good values; newer readings are stored flagged until the operator accepts them (<code>dca-cloud conflict resolve ID</code>).</p><table><tr><th>Conflict</th><th>Customer</th><th>Device</th><th>Kind</th><th>What</th><th>Flagged readings</th><th>Since</th></tr>");
        for d in conflicted {
            for c in &d.conflicts {
                let _ = write!(
                    h,
                    "<tr class=unstable><td class=n>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td>{}</td></tr>",
                    c.id,
                    escape(&d.customer),
                    escape(&d.key),
                    escape(&c.kind),
                    escape(&c.detail),
                    c.readings,
                    utc(c.first_ms)
                );
            }
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_000_000_000), "2026-11-18 11:06 UTC");
    }

    #[test]
    fn escapes_markup_and_decodes_paths() {
        assert_eq!(escape("<b a='1'>&"), "&lt;b a=&#39;1&#39;&gt;&amp;");
        assert_eq!(percent_decode("hp%2FCN1%20X"), "hp/CN1 X");
        assert_eq!(percent_decode("bad%2"), "bad%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
