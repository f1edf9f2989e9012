//! The printer model: from walked SNMP varbinds to a device snapshot.
//!
//! A [`SnapshotBuilder`] takes the varbinds of a poll in any order (the
//! poller executes [`plan::WALK_PLAN`]) and [`SnapshotBuilder::finish`]
//! produces a [`Snapshot`]: identity, page counters, supplies, trays, output
//! bins, alerts and status, with fixed capacities and no allocation.
//! `docs/snapshot.md` documents every field, its source OIDs and units.

mod build;
pub mod names;
pub mod plan;
pub mod text;
pub mod vendor;

pub use build::SnapshotBuilder;
pub use text::{Origin, Text};
pub use vendor::{Correction, Vendor};

use crate::ber::OidBuf;
use heapless::Vec;

pub const MAX_COUNTERS: usize = 64;
pub const MAX_SUPPLIES: usize = 32;
pub const MAX_TRAYS: usize = 16;
pub const MAX_OUTPUTS: usize = 8;
pub const MAX_ALERTS: usize = 32;

/// Counter source OIDs are short; 40 octets hold any in the vendor tables.
pub type SourceOid = OidBuf<40>;

/// Who the device is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub vendor: Option<Vendor>,
    pub model: Text<64>,
    pub serial: Text<64>,
    pub firmware: Text<64>,
    /// ifPhysAddress of the first Ethernet interface.
    pub mac: Option<[u8; 6]>,
    pub sys_descr: Text<256>,
    pub sys_object_id: Option<OidBuf<64>>,
    pub sys_name: Text<64>,
    pub sys_location: Text<128>,
    pub sys_contact: Text<128>,
    /// sysUpTime in hundredths of a second.
    pub sys_uptime_cs: Option<u32>,
    pub hr_device_descr: Text<128>,
}

impl Identity {
    /// Empties every field where it lies (see `SnapshotBuilder::reset`).
    pub fn clear(&mut self) {
        let Self {
            vendor,
            model,
            serial,
            firmware,
            mac,
            sys_descr,
            sys_object_id,
            sys_name,
            sys_location,
            sys_contact,
            sys_uptime_cs,
            hr_device_descr,
        } = self;
        *vendor = None;
        *mac = None;
        *sys_object_id = None;
        *sys_uptime_cs = None;
        for t in [model, serial, firmware, sys_name] {
            t.clear();
        }
        for t in [sys_location, sys_contact, hr_device_descr] {
            t.clear();
        }
        sys_descr.clear();
    }
}

/// One page counter and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    /// Stable snake_case name (docs/snapshot.md lists them).
    pub name: &'static str,
    pub value: u64,
    pub oid: SourceOid,
}

/// What a supply's level means, derived from level and max capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupplyState {
    Ok,
    /// At most 10 % remaining.
    Low,
    /// Nothing remaining.
    Empty,
    /// A receptacle (waste toner, say) with at most 10 % of its space left.
    AlmostFull,
    /// A receptacle with no space left: the problem for a receptacle (its
    /// level counts the space left, not the fill).
    Full,
    /// Level -2, or a max capacity that cannot be divided by.
    Unknown,
    /// Level -3: the device only knows there is some left.
    SomeRemaining,
    /// Level -1: no restriction.
    Unlimited,
}

impl SupplyState {
    pub fn id(self) -> &'static str {
        match self {
            SupplyState::Ok => "ok",
            SupplyState::Low => "low",
            SupplyState::Empty => "empty",
            SupplyState::AlmostFull => "almost_full",
            SupplyState::Full => "full",
            SupplyState::Unknown => "unknown",
            SupplyState::SomeRemaining => "some_remaining",
            SupplyState::Unlimited => "unlimited",
        }
    }
}

/// A row of prtMarkerSuppliesTable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Supply {
    /// The row's last index arc.
    pub index: u32,
    pub description: Text<96>,
    /// PrtMarkerSuppliesClassTC value.
    pub class: Option<i32>,
    /// PrtMarkerSuppliesTypeTC value.
    pub supply_type: Option<i32>,
    /// PrtMarkerSuppliesSupplyUnitTC value.
    pub unit: Option<i32>,
    /// prtMarkerColorantValue of the linked colorant.
    pub colorant: Text<32>,
    /// Part number and cartridge serial, when the description carries them
    /// (Xerox: "Black Toner, PN 006R01509;SN4817...").
    pub part_number: Text<32>,
    pub supply_serial: Text<32>,
    pub max_capacity: Option<i32>,
    /// The level used for state and percent (after a vendor correction).
    pub level: Option<i32>,
    /// The level exactly as the device reported it in the standard table.
    pub reported_level: Option<i32>,
    pub correction: Option<Correction>,
    pub(crate) colorant_index: Option<i32>,
    pub(crate) device: u32,
}

/// PrtMarkerSuppliesClassTC receptacleThatIsFilled.
const RECEPTACLE: i32 = 4;

impl Supply {
    /// Whether this is a receptacle (waste toner, waste ink...): its level
    /// is the space left, so little space is the problem, not little level.
    pub fn is_receptacle(&self) -> bool {
        self.class == Some(RECEPTACLE)
    }

    pub fn state(&self) -> SupplyState {
        let state = self.consumable_state();
        match (self.is_receptacle(), state) {
            (true, SupplyState::Empty) => SupplyState::Full,
            (true, SupplyState::Low) => SupplyState::AlmostFull,
            _ => state,
        }
    }

    /// The state by the consumables' rule (level left of max capacity).
    fn consumable_state(&self) -> SupplyState {
        if self.correction == Some(Correction::BrotherCode) {
            return match self.reported_level {
                Some(0) => SupplyState::Ok,
                Some(1 | 3) => SupplyState::Low,
                Some(2) => SupplyState::Empty,
                _ => SupplyState::Unknown,
            };
        }
        match (self.level, self.max_capacity) {
            (Some(-1), _) => SupplyState::Unlimited,
            (Some(-3), _) => SupplyState::SomeRemaining,
            (Some(level), Some(max)) if level >= 0 && max > 0 => {
                if level == 0 {
                    SupplyState::Empty
                } else if i64::from(level).saturating_mul(10) <= i64::from(max) {
                    SupplyState::Low
                } else {
                    SupplyState::Ok
                }
            }
            _ => SupplyState::Unknown,
        }
    }

    /// Level as a percentage of max capacity, only when both are real numbers.
    pub fn percent(&self) -> Option<f32> {
        match (self.level, self.max_capacity) {
            (Some(level), Some(max)) if level >= 0 && max > 0 => {
                Some(level as f32 * 100.0 / max as f32)
            }
            _ => None,
        }
    }

    pub fn type_name(&self) -> Option<&'static str> {
        self.supply_type.and_then(names::supply_type)
    }

    pub fn class_name(&self) -> Option<&'static str> {
        self.class.and_then(names::supply_class)
    }

    pub fn unit_name(&self) -> Option<&'static str> {
        self.unit.and_then(names::supply_unit)
    }
}

/// A row of prtInputTable (a paper tray) or prtOutputTable (an output bin).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tray {
    pub index: u32,
    pub name: Text<32>,
    pub max_capacity: Option<i32>,
    /// Input: prtInputCurrentLevel; output: prtOutputRemainingCapacity.
    pub level: Option<i32>,
    pub media: Text<32>,
    pub(crate) device: u32,
}

/// A row of prtAlertTable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alert {
    pub index: u32,
    pub severity: Option<i32>,
    pub group: Option<i32>,
    pub code: Option<i32>,
    pub description: Text<96>,
    /// prtAlertTime: sysUpTime when the alert was raised.
    pub time_cs: Option<u32>,
    pub(crate) device: u32,
}

impl Alert {
    pub fn severity_name(&self) -> Option<&'static str> {
        self.severity.and_then(names::alert_severity)
    }
    pub fn group_name(&self) -> Option<&'static str> {
        self.group.and_then(names::alert_group)
    }
    pub fn code_name(&self) -> Option<&'static str> {
        self.code.and_then(names::alert_code)
    }
}

/// Device and printer status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub device_status: Option<i32>,
    pub printer_status: Option<i32>,
    /// hrPrinterDetectedErrorState as received (one or two octets, or more).
    pub error_state: Vec<u8, 4>,
    /// prtConsoleDisplayBufferText lines, joined with " | ".
    pub console: Text<160>,
}

impl Status {
    /// The error flags that are set, most significant bit first.
    pub fn error_flags(&self) -> impl Iterator<Item = &'static str> + '_ {
        names::ERROR_FLAGS
            .iter()
            .enumerate()
            .filter_map(|(bit, name)| {
                let octet = self.error_state.get(bit / 8)?;
                let mask = 0x80u8 >> (bit % 8);
                (octet & mask != 0).then_some(*name)
            })
    }

    pub fn device_status_name(&self) -> Option<&'static str> {
        self.device_status.and_then(names::device_status)
    }

    pub fn printer_status_name(&self) -> Option<&'static str> {
        self.printer_status.and_then(names::printer_status)
    }
}

/// Whether a device meets the minimum Printer MIB v2 rule (docs/snapshot.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Qualification {
    /// Printer-MIB objects answer for this hrDeviceIndex, which is a printer
    /// in hrDeviceTable (or the device has no hrDeviceTable row for it).
    Printer { device_index: u32 },
    /// No Printer-MIB object answered for a printer device.
    #[default]
    NotAPrinter,
}

/// Everything one poll learned about a device.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub qualification: Qualification,
    pub identity: Identity,
    pub counters: Vec<Counter, MAX_COUNTERS>,
    pub supplies: Vec<Supply, MAX_SUPPLIES>,
    pub trays: Vec<Tray, MAX_TRAYS>,
    pub outputs: Vec<Tray, MAX_OUTPUTS>,
    pub alerts: Vec<Alert, MAX_ALERTS>,
    pub status: Status,
    /// Rows or values dropped because a fixed capacity was full.
    pub overflowed: bool,
}

impl Snapshot {
    /// Empties every field where it lies (see `SnapshotBuilder::reset`).
    pub fn clear(&mut self) {
        let Self {
            qualification,
            identity,
            counters,
            supplies,
            trays,
            outputs,
            alerts,
            status,
            overflowed,
        } = self;
        *qualification = Qualification::NotAPrinter;
        identity.clear();
        counters.clear();
        supplies.clear();
        trays.clear();
        outputs.clear();
        alerts.clear();
        let Status {
            device_status,
            printer_status,
            error_state,
            console,
        } = status;
        *device_status = None;
        *printer_status = None;
        error_state.clear();
        console.clear();
        *overflowed = false;
    }

    pub fn is_printer(&self) -> bool {
        matches!(self.qualification, Qualification::Printer { .. })
    }

    pub fn counter(&self, name: &str) -> Option<&Counter> {
        self.counters.iter().find(|c| c.name == name)
    }
}
