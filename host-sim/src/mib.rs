//! What an emulated device answers: a sorted table of OIDs and value slots.
//!
//! A slot is either a fixed value (everything a recording holds) or a
//! dynamic one that the device computes at the moment of the request
//! (a generated printer's counters, toner levels, uptime). Devices of the
//! same recording or vendor share one [`Template`] behind an `Arc`; only
//! their parameters are per device, which is what lets one process serve
//! ten thousand printers.

use std::cmp::Ordering;

/// A value as the emulated agent will encode it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimValue {
    Integer(i64),
    Octets(Vec<u8>),
    Null,
    Oid(Vec<u32>),
    Ip([u8; 4]),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
    Opaque(Vec<u8>),
    Counter64(u64),
}

/// Values a generated device computes when asked (see `generate.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dynamic {
    Uptime,
    SysName,
    Serial,
    Mac,
    LifeCount,
    PowerOnCount,
    VendorTotal,
    VendorMono,
    VendorColor,
    SupplyLevel(u8),
    TrayLevel(u8),
    ErrorState,
    DeviceStatus,
    PrinterStatus,
    AlertSeverity,
    AlertGroup,
    AlertCode,
    AlertDescription,
    AlertTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Fixed(SimValue),
    Dynamic(Dynamic),
}

/// A sorted, duplicate-free table of OIDs.
#[derive(Debug, Clone, Default)]
pub struct Template {
    entries: Vec<(Vec<u32>, Slot)>,
}

/// The outcome of a GET.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    Found(&'a Slot),
    /// The object exists (other instances of it do) but not this instance.
    NoSuchInstance,
    NoSuchObject,
}

fn cmp_arcs(a: &[u32], b: &[u32]) -> Ordering {
    a.cmp(b)
}

impl Template {
    /// Builds a template; later duplicates of an OID are dropped (some
    /// recordings repeat lines).
    pub fn new(mut entries: Vec<(Vec<u32>, Slot)>) -> Self {
        entries.sort_by(|a, b| cmp_arcs(&a.0, &b.0));
        entries.dedup_by(|later, earlier| later.0 == earlier.0);
        Self { entries }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, oid: &[u32]) -> Lookup<'_> {
        match self.entries.binary_search_by(|e| cmp_arcs(&e.0, oid)) {
            Ok(i) => Lookup::Found(&self.entries[i].1),
            Err(_) => {
                // Same object, other instance: an entry sharing every arc but
                // the last (a column of a table, or the .0 of a scalar).
                let parent = &oid[..oid.len().saturating_sub(1)];
                let start = self
                    .entries
                    .partition_point(|e| cmp_arcs(&e.0, parent) == Ordering::Less);
                let exists = self
                    .entries
                    .get(start)
                    .is_some_and(|e| e.0.starts_with(parent) && e.0.len() == oid.len());
                if exists && !parent.is_empty() {
                    Lookup::NoSuchInstance
                } else {
                    Lookup::NoSuchObject
                }
            }
        }
    }

    /// The first entry after `oid` whose slot `accept` takes (v1 agents skip
    /// Counter64 values, for instance).
    pub fn next_after(
        &self,
        oid: &[u32],
        accept: impl Fn(&Slot) -> bool,
    ) -> Option<(&[u32], &Slot)> {
        let start = self
            .entries
            .partition_point(|e| cmp_arcs(&e.0, oid) != Ordering::Greater);
        self.entries[start..]
            .iter()
            .find(|e| accept(&e.1))
            .map(|e| (e.0.as_slice(), &e.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(v: i64) -> Slot {
        Slot::Fixed(SimValue::Integer(v))
    }

    #[test]
    fn get_next_and_the_two_kinds_of_missing() {
        let t = Template::new(vec![
            (vec![1, 3, 6, 1, 2, 1, 1, 3, 0], fixed(3)),
            (vec![1, 3, 6, 1, 2, 1, 1, 1, 0], fixed(1)),
            (vec![1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 9, 1, 1], fixed(9)),
            (vec![1, 3, 6, 1, 2, 1, 1, 1, 0], fixed(2)),
        ]);
        assert_eq!(t.len(), 3, "duplicates dropped");
        assert_eq!(
            t.get(&[1, 3, 6, 1, 2, 1, 1, 1, 0]),
            Lookup::Found(&fixed(1))
        );
        assert_eq!(t.get(&[1, 3, 6, 1, 2, 1, 1, 1, 1]), Lookup::NoSuchInstance);
        assert_eq!(
            t.get(&[1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 9, 1, 2]),
            Lookup::NoSuchInstance
        );
        assert_eq!(t.get(&[1, 3, 6, 1, 2, 1, 1, 2, 0]), Lookup::NoSuchObject);
        assert_eq!(
            t.next_after(&[1, 3], |_| true).map(|e| e.0.to_vec()),
            Some(vec![1, 3, 6, 1, 2, 1, 1, 1, 0])
        );
        assert_eq!(
            t.next_after(&[1, 3, 6, 1, 2, 1, 1, 1, 0], |_| true)
                .map(|e| e.0.to_vec()),
            Some(vec![1, 3, 6, 1, 2, 1, 1, 3, 0])
        );
        assert_eq!(
            t.next_after(&[1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 9, 1, 1], |_| true),
            None
        );
        assert_eq!(
            t.next_after(&[1, 3], |s| *s == fixed(9)).map(|e| e.0.len()),
            Some(13)
        );
    }
}
