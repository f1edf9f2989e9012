//! What to read from a printer, as data: scalars to GET and subtrees to walk.
//!
//! The poller executes this plan (GetBulk over the subtrees, one GET for the
//! scalars); the builder accepts the answers in any order. Subtrees are
//! whole table columns or small tables so a typical printer takes a few
//! GetBulk round trips: the Printer-MIB tables of a printer hold tens of
//! rows, not thousands.

use super::vendor;

/// OIDs the model refers to by name.
pub mod oids {
    pub const SYS_DESCR: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 1, 0];
    pub const SYS_OBJECT_ID: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 2, 0];
    pub const SYS_UPTIME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
    pub const SYS_CONTACT: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 4, 0];
    pub const SYS_NAME: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 5, 0];
    pub const SYS_LOCATION: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 6, 0];
    pub const IF_TYPE: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 3];
    pub const IF_PHYS_ADDRESS: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 6];
    pub const HR_DEVICE_TYPE: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 2];
    pub const HR_DEVICE_DESCR: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 3];
    pub const HR_DEVICE_STATUS: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 5];
    /// hrDevicePrinter, the hrDeviceType of a printer.
    pub const HR_DEVICE_PRINTER: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 1, 5];
    pub const HR_PRINTER_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 5, 1];
    pub const PRT_GENERAL_SERIAL: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 5, 1, 1, 17];
    pub const PRT_INPUT_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 8, 2, 1];
    pub const PRT_OUTPUT_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 9, 2, 1];
    pub const PRT_MARKER_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 10, 2, 1];
    pub const PRT_MARKER_LIFE_COUNT: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 10, 2, 1, 4];
    pub const PRT_MARKER_POWER_ON_COUNT: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 10, 2, 1, 5];
    pub const PRT_SUPPLIES_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 11, 1, 1];
    pub const PRT_COLORANT_VALUE: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 12, 1, 1, 4];
    pub const PRT_CONSOLE_TEXT: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 16, 5, 1, 2];
    pub const PRT_ALERT_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 43, 18, 1, 1];
}

/// One step of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// A scalar, read with GET.
    Get(&'static [u32]),
    /// A subtree, walked with GetBulk (GetNext on v1-only devices).
    Walk(&'static [u32]),
}

/// The scalars of every poll.
const SCALARS: [Read; 6] = [
    Read::Get(oids::SYS_DESCR),
    Read::Get(oids::SYS_OBJECT_ID),
    Read::Get(oids::SYS_UPTIME),
    Read::Get(oids::SYS_CONTACT),
    Read::Get(oids::SYS_NAME),
    Read::Get(oids::SYS_LOCATION),
];

/// The standard subtrees of every poll.
const STANDARD_WALKS: [Read; 15] = [
    Read::Walk(oids::IF_TYPE),
    Read::Walk(oids::IF_PHYS_ADDRESS),
    Read::Walk(oids::HR_DEVICE_TYPE),
    Read::Walk(oids::HR_DEVICE_DESCR),
    Read::Walk(oids::HR_DEVICE_STATUS),
    Read::Walk(oids::HR_PRINTER_ENTRY),
    Read::Walk(oids::PRT_GENERAL_SERIAL),
    Read::Walk(oids::PRT_INPUT_ENTRY),
    Read::Walk(oids::PRT_OUTPUT_ENTRY),
    Read::Walk(oids::PRT_MARKER_LIFE_COUNT),
    Read::Walk(oids::PRT_MARKER_POWER_ON_COUNT),
    Read::Walk(oids::PRT_SUPPLIES_ENTRY),
    Read::Walk(oids::PRT_COLORANT_VALUE),
    Read::Walk(oids::PRT_CONSOLE_TEXT),
    Read::Walk(oids::PRT_ALERT_ENTRY),
];

/// Every read of a full poll, standard first, then the vendor tables: the
/// vendor scalars (identity and counters) as GETs, vendor tables as walks.
/// Devices answer noSuchObject for what they lack; that costs nothing extra
/// since the GETs share requests.
pub fn walk_plan() -> impl Iterator<Item = Read> {
    SCALARS
        .into_iter()
        .chain(STANDARD_WALKS)
        .chain(vendor::IDENTITY_OIDS.iter().map(|(oid, _)| Read::Get(oid)))
        .chain(vendor::SCALAR_COUNTERS.iter().map(|c| Read::Get(c.oid)))
        .chain([Read::Get(vendor::BROTHER_COUNTER_BLOB)])
        .chain(vendor::TABLE_COUNTERS.iter().map(|t| Read::Walk(t.prefix)))
        .chain([
            Read::Walk(vendor::RICOH_COUNTER_TYPE),
            Read::Walk(vendor::RICOH_COUNTER_VALUE),
            Read::Walk(vendor::RICOH_TONER_LEVEL),
        ])
}

/// How much of a device a walk reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Plan {
    /// Everything a reading needs: identity, counters, supplies, trays,
    /// alerts and status.
    #[default]
    Full,
    /// Only what names the device: the system scalars, hrDevice types and
    /// descriptions, prtGeneralSerialNumber, the marker life counts and
    /// the vendors' identity objects. Device Web Access reads this before
    /// every connection to a device, so it must cost the printer a few
    /// requests, not a full walk of its supplies and counters. It names
    /// every recording of the corpus as a full walk does, but cannot
    /// always qualify a device (a sparse one may fill neither Printer-MIB
    /// table it walks).
    Identity,
}

/// The subtrees an identity read walks (see [`Plan::Identity`]).
const IDENTITY_WALKS: [&[u32]; 4] = [
    oids::HR_DEVICE_TYPE,
    oids::HR_DEVICE_DESCR,
    oids::PRT_GENERAL_SERIAL,
    oids::PRT_MARKER_LIFE_COUNT,
];

impl Plan {
    /// The reads of this plan, in the order of [`walk_plan`] (one plan
    /// with a filter rather than two, so the walker is built once).
    pub fn reads(self) -> impl Iterator<Item = Read> {
        walk_plan().filter(move |r| self == Plan::Full || identifies(r))
    }
}

fn identifies(read: &Read) -> bool {
    match read {
        Read::Get(oid) => {
            SCALARS.contains(read) || vendor::IDENTITY_OIDS.iter().any(|(o, _)| o == oid)
        }
        Read::Walk(root) => IDENTITY_WALKS.contains(root),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_reads_every_source_once() {
        let plan: std::vec::Vec<Read> = walk_plan().collect();
        for (i, a) in plan.iter().enumerate() {
            assert!(!plan[i + 1..].contains(a), "{a:?} twice");
        }
        assert!(plan.contains(&Read::Walk(oids::PRT_SUPPLIES_ENTRY)));
        assert!(plan.contains(&Read::Get(oids::SYS_DESCR)));
        // No walk lies inside another (it would be read twice).
        let walks: std::vec::Vec<&[u32]> = plan
            .iter()
            .filter_map(|r| match r {
                Read::Walk(w) => Some(*w),
                Read::Get(_) => None,
            })
            .collect();
        for a in &walks {
            for b in &walks {
                assert!(a == b || !b.starts_with(a), "{b:?} inside {a:?}");
            }
        }
    }

    #[test]
    fn the_identity_plan_is_a_small_part_of_the_full_one() {
        let full: std::vec::Vec<Read> = Plan::Full.reads().collect();
        let identity: std::vec::Vec<Read> = Plan::Identity.reads().collect();
        assert_eq!(full, walk_plan().collect::<std::vec::Vec<_>>());
        assert!(identity.iter().all(|r| full.contains(r)));
        for w in IDENTITY_WALKS {
            assert!(identity.contains(&Read::Walk(w)), "{w:?}");
        }
        assert!(identity.contains(&Read::Get(oids::SYS_DESCR)));
        assert!(!identity.contains(&Read::Walk(oids::PRT_SUPPLIES_ENTRY)));
        assert!(!identity.contains(&Read::Walk(oids::PRT_ALERT_ENTRY)));
        let walks = |p: &[Read]| p.iter().filter(|r| matches!(r, Read::Walk(_))).count();
        assert_eq!(walks(&identity), IDENTITY_WALKS.len());
        assert!(walks(&full) > 3 * walks(&identity));
    }
}
