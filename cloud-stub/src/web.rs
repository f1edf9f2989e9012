//! The read-only web page at `/`, the JSON API under `/api/` and the
//! sign-in form, rendered on the server from the database (no build step,
//! no script). The server decides who may see what (a [`Scope`]); these
//! only render it.

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

/// The operator a page is rendered for: shown at its top, with the
/// sign-out form and its token.
#[derive(Clone, Copy)]
pub struct Viewer<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub dealer: &'a str,
    /// The session's form token (see `server.rs`).
    pub csrf: &'a str,
}

/// Never shows the form token.
impl std::fmt::Debug for Viewer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("dealer", &self.dealer)
            .finish_non_exhaustive()
    }
}

/// Answers a GET of `path` for a reader limited to `scope`.
pub fn get(store: &Store, scope: Scope, path: &str) -> Page {
    get_as(store, scope, path, None)
}

/// [`get`] for a signed-in operator, whose pages say who is signed in and
/// offer to sign out.
pub fn get_as(store: &Store, scope: Scope, path: &str, viewer: Option<&Viewer<'_>>) -> Page {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let result = match path {
        "/" => report::customers(store, scope)
            .and_then(|c| Ok((c, report::devices(store, scope)?)))
            .map(|(c, d)| Page {
                status: 200,
                content_type: "text/html; charset=utf-8",
                body: html(&c, &d, viewer).into_bytes(),
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
        _ if path.starts_with("/devices/") && viewer.is_some() => {
            match path.strip_prefix("/devices/").and_then(|id| id.parse::<i64>().ok()) {
                Some(id) => device_page(store, scope, id, viewer),
                None => Ok(not_found(path)),
            }
        }
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

/// The fields of an `application/x-www-form-urlencoded` body, in order
/// (`+` is a space, `%XX` a byte); `None` when it is not UTF-8 once
/// decoded. A field named twice keeps both: callers take the first.
pub fn form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    let decode = |s: &str| -> Option<String> {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (b, hex) {
                (b'%', Some(x)) => {
                    out.push(x);
                    i += 3;
                    continue;
                }
                (b'+', _) => out.push(b' '),
                (b, _) => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).ok()
    };
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(name)?, decode(value)?))
        })
        .collect()
}

/// The first value of field `name` of a decoded form.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
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

/// The pages' head and style, up to the opening of `<body>`.
const HEAD: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>OpenDCA cloud</title><style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin-bottom:2em}
th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}.bar{width:120px;height:10px;background:#eee;display:inline-block;margin-right:6px}
.bar span{display:block;height:10px}.supply{white-space:nowrap;font-size:90%}.unstable{color:#c0392b}
form.who{float:right;margin:0}form.signin label{display:block;margin:0 0 .8em}form.signin input{display:block;margin-top:.2em}
</style></head><body>";

/// The sign-in form, carrying `token` (also set as a cookie: a login CSRF
/// check) and, after a refusal, `message`.
pub fn signin_page(token: &str, message: Option<&str>) -> Vec<u8> {
    let mut h = String::from(HEAD);
    h.push_str("<h1>OpenDCA cloud</h1><h2>Sign in</h2>");
    if let Some(m) = message {
        let _ = write!(h, "<p class=unstable>{}</p>", escape(m));
    }
    let _ = write!(
        h,
        "<form class=signin method=post action=\"/signin\"><input type=hidden name=csrf value=\"{}\">\
<label>Name<input name=name autocomplete=username required maxlength=64></label>\
<label>Password<input type=password name=password autocomplete=current-password required></label>\
<label>Code from the authenticator app<input name=code inputmode=numeric autocomplete=one-time-code pattern=\"[0-9]{{6}}\" maxlength=6 required></label>\
<button>Sign in</button></form></body></html>",
        escape(token)
    );
    h.push('\n');
    h.into_bytes()
}

/// Who is signed in, and the sign-out form, at the top of a page.
fn who(h: &mut String, viewer: Option<&Viewer<'_>>) {
    if let Some(v) = viewer {
        let _ = write!(
            h,
            "<form class=who method=post action=\"/signout\">{} ({}, dealer {}) \
<input type=hidden name=csrf value=\"{}\"><button>Sign out</button></form>",
            escape(v.name),
            escape(v.role),
            escape(v.dealer),
            escape(v.csrf)
        );
    }
}

/// The answer to opening a device: on to the session's entry point (at
/// once, and by a link for a browser that does not follow the refresh).
pub fn entry_page(link: &str, session: u64, serial: &str) -> String {
    let link = escape(link);
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={link}\">\
<title>OpenDCA cloud</title></head><body><p>Web access session {session} to {}: \
<a id=enter href=\"{link}\">open the device's page</a>.</p></body></html>\n",
        escape(serial)
    )
}

/// `/devices/{id}` for an operator: the device, the button that opens its
/// web page (dealer operators only) and its access log.
fn device_page(
    store: &Store,
    scope: Scope,
    id: i64,
    viewer: Option<&Viewer<'_>>,
) -> Result<Page, rusqlite::Error> {
    let devices = report::devices(store, scope)?;
    let Some(d) = devices.iter().find(|d| d.id == id) else {
        return Ok(not_found(&format!("/devices/{id}")));
    };
    let mut h = String::from(HEAD);
    who(&mut h, viewer);
    let _ = write!(
        h,
        "<p><a href=\"/\">All devices</a></p><h1>{} {}</h1><table>\
<tr><th>Customer</th><td>{}</td></tr><tr><th>Serial</th><td>{}</td></tr>\
<tr><th>Address</th><td>{}</td></tr><tr><th>Last reading</th><td>{}</td></tr></table>",
        escape(&d.vendor),
        escape(&d.model),
        escape(&d.customer),
        escape(&d.serial),
        escape(&d.address),
        utc(d.last_seen_ms)
    );
    h.push_str("<h2>Web page</h2>");
    match viewer {
        Some(v) if v.role == "dealer" => {
            let _ = write!(
                h,
                "<form method=post action=\"/devices/{id}/web\"><input type=hidden name=csrf value=\"{}\">\
<label>Web server <select name=port><option value=80>http, port 80</option><option value=443>https, port 443</option>\
<option value=8080>http, port 8080</option><option value=8443>https, port 8443</option></select></label> \
<button>Open the device's web page</button></form>\
<p>Opens for 15 minutes (10 idle) through the agent that reads this device; every request is logged below, \
file transfers are refused.</p>",
                escape(v.csrf)
            );
        }
        _ => h.push_str("<p>Only dealer operators may open a device's web page.</p>"),
    }
    h.push_str("<h2>Access log</h2>");
    let log = match store.web_requests(id, 50) {
        Ok(l) => l,
        Err(e) => {
            let _ = write!(h, "<p>The access log cannot be read: {}</p>", escape(&e));
            Vec::new()
        }
    };
    h.push_str("<table class=access><tr><th>When</th><th>Session</th><th>Operator</th><th>Request</th><th>Status</th><th>Bytes</th><th>Refused</th></tr>");
    for r in &log {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=n>{}</td><td>{}</td><td>{} {}</td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
            utc(r.at_ms),
            r.session,
            escape(&r.operator),
            escape(&r.method),
            escape(&r.path),
            r.status,
            r.bytes,
            escape(r.refused.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table></body></html>\n");
    Ok(Page {
        status: 200,
        content_type: "text/html; charset=utf-8",
        body: h.into_bytes(),
    })
}

fn html(
    customers: &[report::CustomerRow],
    devices: &[DeviceRow],
    viewer: Option<&Viewer<'_>>,
) -> String {
    let mut h = String::from(HEAD);
    who(&mut h, viewer);
    h.push_str("<h1>OpenDCA cloud</h1><h2>Customers</h2><table><tr><th>Customer</th><th>Agents</th><th>Devices</th><th>Last contact</th></tr>");
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
            "<tr><td>{}</td><td><a href=\"/devices/{}\">{} {}</a>{}</td><td{}>{}</td><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td>",
            escape(&d.customer),
            d.id,
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

    #[test]
    fn form_bodies_decode() {
        let f =
            form(b"name=jo%40x.example&password=a+b%2Bc%26d%3D&code=123456&&empty=&bare").unwrap();
        assert_eq!(field(&f, "name"), Some("jo@x.example"));
        assert_eq!(field(&f, "password"), Some("a b+c&d="));
        assert_eq!(field(&f, "code"), Some("123456"));
        assert_eq!(field(&f, "empty"), Some(""));
        assert_eq!(field(&f, "bare"), Some(""));
        assert_eq!(field(&f, "missing"), None);
        // The first of two.
        let f = form(b"csrf=a&csrf=b").unwrap();
        assert_eq!(field(&f, "csrf"), Some("a"));
        // A broken escape stays as it came; UTF-8 is decoded, other bytes
        // are refused.
        assert_eq!(field(&form(b"x=%2").unwrap(), "x"), Some("%2"));
        assert_eq!(field(&form(b"x=%C3%A9").unwrap(), "x"), Some("\u{e9}"));
        assert!(form(b"x=%FF").is_none());
        assert!(form(b"x=\xff").is_none());
        assert_eq!(form(b"").unwrap(), []);
    }

    #[test]
    fn the_pages_forms_carry_their_tokens_escaped() {
        let page = String::from_utf8(signin_page("t0k\"en", Some("wrong <name>"))).unwrap();
        assert!(page.contains("name=csrf value=\"t0k&quot;en\""), "{page}");
        assert!(page.contains("wrong &lt;name&gt;"), "{page}");
        assert!(page.contains("action=\"/signin\""));
        let who = Viewer {
            name: "jo<",
            role: "viewer",
            dealer: "north",
            csrf: "c5rf",
        };
        let page = html(&[], &[], Some(&who));
        assert!(page.contains("jo&lt; (viewer, dealer north)"), "{page}");
        assert!(page.contains("action=\"/signout\""), "{page}");
        assert!(page.contains("name=csrf value=\"c5rf\""), "{page}");
        assert!(!format!("{who:?}").contains("c5rf"));
        assert!(!html(&[], &[], None).contains("signout"));
    }
}
