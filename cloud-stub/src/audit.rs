//! Failures of unauthenticated requests (wrong credentials, malformed
//! bodies, failed operator sign-ins), counted in memory per source address,
//! event and window: the first failure of a window is written at once (the
//! operator sees an attack begin), the others are counted and written as
//! one row when the window closes. A client sending thousands of bad
//! requests a second costs the database two rows a minute, not one fsynced
//! transaction per request.

use crate::store::Store;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One window's failures of one kind from one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub remote: IpAddr,
    pub event: &'static str,
    pub count: u64,
    /// The first failure's detail (the others are alike or worse).
    pub first: String,
    /// When the window opened, on the store's clock (ms since the epoch).
    pub since_ms: i64,
    opened: Instant,
}

impl Tally {
    /// The audit row's detail.
    pub fn detail(&self) -> String {
        format!(
            "{} failure{} from {} since {}; first: {}",
            self.count,
            if self.count == 1 { "" } else { "s" },
            self.remote,
            self.since_ms,
            self.first
        )
    }
}

/// A source as the audit names it: the address, or its IPv6 /64.
fn shown_source(remote: IpAddr) -> String {
    match crate::limits::source(remote) {
        IpAddr::V6(net) if IpAddr::V6(net) != remote => format!("{net}/64"),
        _ => remote.to_string(),
    }
}

/// The open windows.
#[derive(Debug, Default)]
pub struct FailureAudit {
    open: Mutex<HashMap<(IpAddr, &'static str), Tally>>,
}

impl FailureAudit {
    pub const WINDOW: Duration = Duration::from_secs(60);
    /// Windows open at most; past it the oldest are closed (and written)
    /// early, so memory stays bounded however many addresses fail.
    const OPEN: usize = 16_384;

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<(IpAddr, &'static str), Tally>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one failure; returns what to write now: the windows this
    /// closed, and this failure itself when it opens a window.
    pub fn record(
        &self,
        remote: IpAddr,
        event: &'static str,
        detail: &str,
        now: Instant,
        now_ms: i64,
    ) -> Vec<Row> {
        // Counted per source (an IPv6 /64 is one), shown with the first
        // address that failed.
        let key = (crate::limits::source(remote), event);
        let mut open = self.open();
        let mut closed = Vec::new();
        if let Some(t) = open.get(&key)
            && now.duration_since(t.opened) >= Self::WINDOW
            && let Some(t) = open.remove(&key)
        {
            closed.push(t);
        }
        if open.len() >= Self::OPEN && !open.contains_key(&key) {
            let oldest = open.iter().min_by_key(|(_, t)| t.opened).map(|(k, _)| *k);
            if let Some(t) = oldest.and_then(|k| open.remove(&k)) {
                closed.push(t);
            }
        }
        let tally = open.entry(key).or_insert_with(|| Tally {
            remote,
            event,
            count: 0,
            // Bounded: a client chooses what fails.
            first: detail.chars().take(200).collect(),
            since_ms: now_ms,
            opened: now,
        });
        tally.count += 1;
        let mut rows: Vec<Row> = closed.iter().filter_map(Tally::closing).collect();
        if tally.count == 1 {
            rows.push(Row {
                remote: remote.to_string(),
                event,
                detail: format!(
                    "{} (further failures from {} within {} s are counted and written as one entry)",
                    tally.first,
                    shown_source(remote),
                    Self::WINDOW.as_secs()
                ),
            });
        }
        rows
    }

    /// Closes the windows that are over at `now` (all of them with `None`);
    /// the rows to write.
    pub fn take(&self, now: Option<Instant>) -> Vec<Row> {
        let mut open = self.open();
        let over: Vec<_> = open
            .iter()
            .filter(|(_, t)| now.is_none_or(|n| n.duration_since(t.opened) >= Self::WINDOW))
            .map(|(k, _)| *k)
            .collect();
        over.into_iter()
            .filter_map(|k| open.remove(&k))
            .filter_map(|t| t.closing())
            .collect()
    }
}

/// An audit row to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub remote: String,
    pub event: &'static str,
    pub detail: String,
}

impl Tally {
    /// The row of a closed window; none for a window of one failure, which
    /// was written when it opened.
    fn closing(&self) -> Option<Row> {
        (self.count > 1).then(|| Row {
            remote: self.remote.to_string(),
            event: self.event,
            detail: self.detail(),
        })
    }
}

/// Writes audit rows in one transaction.
pub fn write(store: &mut Store, rows: &[Row]) {
    if rows.is_empty() {
        return;
    }
    let rows: Vec<(String, &str, String)> = rows
        .iter()
        .map(|r| (r.remote.clone(), r.event, r.detail.clone()))
        .collect();
    if let Err(e) = store.audit_many(&rows) {
        eprintln!(
            "dca-cloud: cannot write {} aggregated audit entries: {e}",
            rows.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_addresses_of_one_ipv6_64_share_a_window() {
        let audit = FailureAudit::default();
        let t0 = Instant::now();
        let at = |s: &str| s.parse::<IpAddr>().unwrap();
        let first = audit.record(at("2001:db8::1"), "bad_request", "x", t0, 5);
        assert!(first[0].detail.contains("from 2001:db8::/64"), "{first:?}");
        for i in 2..100 {
            let other = at(&format!("2001:db8::{i:x}"));
            assert!(audit.record(other, "bad_request", "x", t0, 5).is_empty());
        }
        assert_eq!(
            audit
                .record(at("2001:db8:0:1::1"), "bad_request", "x", t0, 5)
                .len(),
            1
        );
    }

    #[test]
    fn failures_are_one_row_when_a_window_opens_and_one_when_it_closes() {
        let audit = FailureAudit::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        let first = audit.record(a, "auth_refused", "try 0", t0, 5);
        assert_eq!(first.len(), 1);
        assert!(
            first[0].detail.starts_with("try 0 (further failures"),
            "{first:?}"
        );
        for i in 1..1000 {
            assert!(
                audit
                    .record(a, "auth_refused", &format!("try {i}"), t0, 5)
                    .is_empty()
            );
        }
        assert_eq!(audit.record(b, "auth_refused", "x", t0, 5).len(), 1);
        assert_eq!(audit.record(a, "bad_request", "y", t0, 5).len(), 1);
        assert!(audit.take(Some(t0)).is_empty(), "no window is over yet");
        // The next failure after the window closes it, and opens another.
        let later = t0 + FailureAudit::WINDOW;
        let rows = audit.record(a, "auth_refused", "late", later, 65_005);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(
            rows[0].detail.starts_with("1000 failures from 10.0.0.1"),
            "{rows:?}"
        );
        assert!(rows[0].detail.ends_with("first: try 0"), "{rows:?}");
        assert!(rows[1].detail.starts_with("late"), "{rows:?}");
        // Windows of one failure were written whole when they opened.
        assert!(audit.take(None).is_empty());
    }
}
