//! Builds a [`Snapshot`] from varbinds, in any order.
//!
//! Ingestion sorts each varbind into the row or field it belongs to and keeps
//! the hrDeviceIndex of every Printer-MIB row; [`SnapshotBuilder::finish`]
//! then picks the printer (the qualification rule), keeps that printer's
//! rows, links colorants, applies the vendor corrections and resolves
//! identity from the sources in order of preference.

use super::plan::oids;
use super::text::{Origin, Text};
use super::vendor::{self, Correction, IdentityField, Vendor};
use super::{Alert, Counter, Qualification, Snapshot, SourceOid, Supply, Tray};
use crate::ber::{OidBuf, OidRef};
use crate::snmp::{Value, VarBind};
use heapless::Vec;

/// The longest OID the model looks at; longer names are not ours.
const MAX_MODEL_ARCS: usize = 32;

#[derive(Debug, Clone, Default)]
struct Interface {
    index: u32,
    if_type: Option<i32>,
    mac: Option<[u8; 6]>,
}

#[derive(Debug, Clone, Default)]
struct Tagged<T> {
    device: u32,
    index: u32,
    value: T,
}

/// Collects varbinds of one device and turns them into a [`Snapshot`].
#[derive(Debug, Clone, Default)]
pub struct SnapshotBuilder {
    /// The snapshot being built, in place. While varbinds arrive its
    /// identity holds the MIB-II values, its rows those of every device,
    /// and its counters the vendor counters; `finish_in_place` resolves
    /// the identity and keeps the printer's rows. (One structure rather
    /// than a builder and a snapshot: a device with little RAM has room
    /// for only one of them.)
    snap: Snapshot,
    finished: bool,
    enterprise: Option<u32>,
    hr_types: Vec<(u32, bool), 16>,
    hr_descr: Vec<(u32, Text<128>), 8>,
    hr_status: Vec<(u32, i32), 8>,
    printer_status: Vec<(u32, i32), 8>,
    error_state: Vec<(u32, Vec<u8, 4>), 8>,
    prt_devices: Vec<u32, 8>,
    std_serial: Vec<(u32, Text<64>), 4>,
    /// Vendor identity values, with their rank in IDENTITY_OIDS.
    vendor_fields: Vec<(usize, (IdentityField, Text<128>)), 8>,
    interfaces: Vec<Interface, 16>,
    markers: Vec<Tagged<(Option<u64>, Option<u64>)>, 8>,
    colorants: Vec<Tagged<Text<32>>, 16>,
    console: Vec<Tagged<Text<80>>, 8>,
    ricoh_kinds: Vec<(u32, i64), 32>,
    ricoh_values: Vec<(u32, (u64, SourceOid)), 32>,
    ricoh_levels: Vec<(u32, i32), 8>,
}

fn as_i32(v: &Value<'_>) -> Option<i32> {
    match *v {
        Value::Integer(i) => i32::try_from(i).ok(),
        Value::Gauge32(u) | Value::Counter32(u) => i32::try_from(u).ok(),
        _ => None,
    }
}

fn as_bytes<'a>(v: &Value<'a>) -> Option<&'a [u8]> {
    match *v {
        Value::OctetString(b) => Some(b),
        _ => None,
    }
}

fn text<const N: usize>(v: &Value<'_>, origin: Origin) -> Option<Text<N>> {
    as_bytes(v).map(|b| Text::new(b, origin))
}

/// A table row known by (hrDeviceIndex, row index).
trait Row {
    fn key(&self) -> (u32, u32);
    fn new(device: u32, index: u32) -> Self;
}

impl Row for Interface {
    fn key(&self) -> (u32, u32) {
        (0, self.index)
    }
    fn new(_: u32, index: u32) -> Self {
        Interface {
            index,
            ..Interface::default()
        }
    }
}

impl<T: Default> Row for Tagged<T> {
    fn key(&self) -> (u32, u32) {
        (self.device, self.index)
    }
    fn new(device: u32, index: u32) -> Self {
        Tagged {
            device,
            index,
            value: T::default(),
        }
    }
}

impl Row for Tray {
    fn key(&self) -> (u32, u32) {
        (self.device, self.index)
    }
    fn new(device: u32, index: u32) -> Self {
        Tray {
            device,
            index,
            ..Tray::default()
        }
    }
}

impl Row for Supply {
    fn key(&self) -> (u32, u32) {
        (self.device, self.index)
    }
    fn new(device: u32, index: u32) -> Self {
        Supply {
            device,
            index,
            ..Supply::default()
        }
    }
}

impl Row for Alert {
    fn key(&self) -> (u32, u32) {
        (self.device, self.index)
    }
    fn new(device: u32, index: u32) -> Self {
        Alert {
            device,
            index,
            ..Alert::default()
        }
    }
}

/// Finds or adds the row with this (device, index); `None` (and the
/// overflow flag) when the table is full.
fn row<'r, T: Row, const N: usize>(
    rows: &'r mut Vec<T, N>,
    overflowed: &mut bool,
    device: u32,
    index: u32,
) -> Option<&'r mut T> {
    let pos = match rows.iter().position(|r| r.key() == (device, index)) {
        Some(p) => p,
        None => {
            if rows.push(T::new(device, index)).is_err() {
                *overflowed = true;
                return None;
            }
            rows.len().saturating_sub(1)
        }
    };
    rows.get_mut(pos)
}

fn set<K: PartialEq, T, const N: usize>(
    list: &mut Vec<(K, T), N>,
    overflowed: &mut bool,
    key: K,
    value: T,
) {
    if let Some(slot) = list.iter_mut().find(|(k, _)| *k == key) {
        slot.1 = value;
    } else if list.push((key, value)).is_err() {
        *overflowed = true;
    }
}

fn get<K: PartialEq + Copy, T>(list: &[(K, T)], key: K) -> Option<&T> {
    list.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

impl SnapshotBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the builder where it lies, for the next device: a builder is
    /// tens of KiB, which a device with little RAM must not rebuild on its
    /// stack. (Destructured so that a new field cannot be forgotten here.)
    pub fn reset(&mut self) {
        let Self {
            snap,
            finished,
            enterprise,
            hr_types,
            hr_descr,
            hr_status,
            printer_status,
            error_state,
            prt_devices,
            std_serial,
            vendor_fields,
            interfaces,
            markers,
            colorants,
            console,
            ricoh_kinds,
            ricoh_values,
            ricoh_levels,
        } = self;
        snap.clear();
        *finished = false;
        *enterprise = None;
        hr_types.clear();
        hr_descr.clear();
        hr_status.clear();
        printer_status.clear();
        error_state.clear();
        prt_devices.clear();
        std_serial.clear();
        vendor_fields.clear();
        interfaces.clear();
        markers.clear();
        colorants.clear();
        console.clear();
        ricoh_kinds.clear();
        ricoh_values.clear();
        ricoh_levels.clear();
    }

    /// Takes one varbind. Exceptions, NULLs and names the model does not
    /// know are ignored; values of the wrong type are ignored too (a device
    /// answering an INTEGER column with a string tells us nothing). A
    /// finished builder takes none.
    pub fn push(&mut self, vb: &VarBind<'_>) {
        if self.finished || vb.value.is_exception() || vb.value == Value::Null {
            return;
        }
        let mut buf = [0u32; MAX_MODEL_ARCS];
        let mut n = 0usize;
        for arc in vb.name.arcs() {
            let Some(slot) = buf.get_mut(n) else {
                return;
            };
            *slot = arc;
            n = n.saturating_add(1);
        }
        let arcs = buf.get(..n).unwrap_or_default();
        let v = &vb.value;
        match arcs {
            [1, 3, 6, 1, 2, 1, rest @ ..] => self.push_mib2(rest, v),
            [1, 3, 6, 1, 4, 1, enterprise, ..] => self.push_vendor(*enterprise, arcs, vb.name, v),
            _ => {}
        }
    }

    fn push_mib2(&mut self, arcs: &[u32], v: &Value<'_>) {
        let ov = &mut self.snap.overflowed;
        match arcs {
            // system group
            [1, 1, 0] => {
                self.snap.identity.sys_descr = text(v, Origin::Standard).unwrap_or_default()
            }
            [1, 2, 0] => {
                if let Value::ObjectId(o) = v {
                    self.snap.identity.sys_object_id = OidBuf::try_from(*o).ok();
                    self.enterprise = match o.arcs().take(7).collect::<Vec<u32, 7>>().as_slice() {
                        [1, 3, 6, 1, 4, 1, e] => Some(*e),
                        _ => None,
                    };
                }
            }
            [1, 3, 0] => {
                if let Value::TimeTicks(t) = v {
                    self.snap.identity.sys_uptime_cs = Some(*t);
                }
            }
            [1, 4, 0] => {
                self.snap.identity.sys_contact = text(v, Origin::Standard).unwrap_or_default()
            }
            [1, 5, 0] => {
                self.snap.identity.sys_name = text(v, Origin::Standard).unwrap_or_default()
            }
            [1, 6, 0] => {
                self.snap.identity.sys_location = text(v, Origin::Standard).unwrap_or_default()
            }
            // ifTable: ifType and ifPhysAddress
            [2, 2, 1, col @ (3 | 6), index] => {
                let Some(iface) = row(&mut self.interfaces, ov, 0, *index) else {
                    return;
                };
                if *col == 3 {
                    iface.if_type = as_i32(v);
                } else {
                    iface.mac = as_bytes(v).and_then(|b| <[u8; 6]>::try_from(b).ok());
                }
            }
            // hrDeviceTable: type, descr, status
            [25, 3, 2, 1, 2, dev] => {
                if let Value::ObjectId(o) = v {
                    set(
                        &mut self.hr_types,
                        ov,
                        *dev,
                        o.cmp_arcs(oids::HR_DEVICE_PRINTER.iter().copied()).is_eq(),
                    );
                }
            }
            [25, 3, 2, 1, 3, dev] => {
                if let Some(t) = text(v, Origin::Standard) {
                    set(&mut self.hr_descr, ov, *dev, t);
                }
            }
            [25, 3, 2, 1, 5, dev] => {
                if let Some(s) = as_i32(v) {
                    set(&mut self.hr_status, ov, *dev, s);
                }
            }
            // hrPrinterTable
            [25, 3, 5, 1, 1, dev] => {
                if let Some(s) = as_i32(v) {
                    set(&mut self.printer_status, ov, *dev, s);
                }
            }
            [25, 3, 5, 1, 2, dev] => {
                if let Some(b) = as_bytes(v) {
                    let mut bits = Vec::new();
                    let _ = bits.extend_from_slice(b.get(..4).unwrap_or(b));
                    set(&mut self.error_state, ov, *dev, bits);
                }
            }
            [43, rest @ ..] => self.push_printer_mib(rest, v),
            _ => {}
        }
    }

    fn note_prt_device(&mut self, dev: u32) {
        if !self.prt_devices.contains(&dev) && self.prt_devices.push(dev).is_err() {
            self.snap.overflowed = true;
        }
    }

    /// Objects under prt (1.3.6.1.2.1.43); `arcs` starts after 43.
    fn push_printer_mib(&mut self, arcs: &[u32], v: &Value<'_>) {
        // Every Printer-MIB table is indexed by hrDeviceIndex first.
        let dev = match arcs {
            [5, 1, 1, _, dev] | [_, _, _, _, dev, _] => *dev,
            _ => return,
        };
        self.note_prt_device(dev);
        let ov = &mut self.snap.overflowed;
        match arcs {
            [5, 1, 1, 17, _] => {
                if let Some(t) = text(v, Origin::Standard) {
                    set(&mut self.std_serial, ov, dev, t);
                }
            }
            // prtInputTable
            [8, 2, 1, col, _, index] => {
                let Some(tray) = row(&mut self.snap.trays, ov, dev, *index) else {
                    return;
                };
                match col {
                    9 => tray.max_capacity = as_i32(v),
                    10 => tray.level = as_i32(v),
                    12 => tray.media = text(v, Origin::Standard).unwrap_or_default(),
                    13 => tray.name = text(v, Origin::Standard).unwrap_or_default(),
                    // prtInputDescription names the tray when prtInputName is empty.
                    18 if tray.name.is_empty() => {
                        tray.name = text(v, Origin::Standard).unwrap_or_default()
                    }
                    _ => {}
                }
            }
            // prtOutputTable
            [9, 2, 1, col, _, index] => {
                let Some(bin) = row(&mut self.snap.outputs, ov, dev, *index) else {
                    return;
                };
                match col {
                    4 => bin.max_capacity = as_i32(v),
                    5 => bin.level = as_i32(v),
                    7 => bin.name = text(v, Origin::Standard).unwrap_or_default(),
                    _ => {}
                }
            }
            // prtMarkerTable: life count and power-on count
            [10, 2, 1, col @ (4 | 5), _, marker] => {
                let Some(m) = row(&mut self.markers, ov, dev, *marker) else {
                    return;
                };
                if *col == 4 {
                    m.value.0 = v.as_u64();
                } else {
                    m.value.1 = v.as_u64();
                }
            }
            // prtMarkerSuppliesTable
            [11, 1, 1, col, _, index] => {
                let Some(s) = row(&mut self.snap.supplies, ov, dev, *index) else {
                    return;
                };
                match col {
                    3 => s.colorant_index = as_i32(v),
                    4 => s.class = as_i32(v),
                    5 => s.supply_type = as_i32(v),
                    6 => s.description = text(v, Origin::Standard).unwrap_or_default(),
                    7 => s.unit = as_i32(v),
                    8 => s.max_capacity = as_i32(v),
                    9 => {
                        s.reported_level = as_i32(v);
                        s.level = s.reported_level;
                    }
                    _ => {}
                }
            }
            // prtMarkerColorantTable: the colorant's name
            [12, 1, 1, 4, _, index] => {
                if let Some(t) = text(v, Origin::Standard)
                    && self
                        .colorants
                        .push(Tagged {
                            device: dev,
                            index: *index,
                            value: t,
                        })
                        .is_err()
                {
                    *ov = true;
                }
            }
            // prtConsoleDisplayBufferText
            [16, 5, 1, 2, _, line] => {
                if let Some(t) = text(v, Origin::Standard)
                    && self
                        .console
                        .push(Tagged {
                            device: dev,
                            index: *line,
                            value: t,
                        })
                        .is_err()
                {
                    *ov = true;
                }
            }
            // prtAlertTable
            [18, 1, 1, col, _, index] => {
                let Some(a) = row(&mut self.snap.alerts, ov, dev, *index) else {
                    return;
                };
                match col {
                    2 => a.severity = as_i32(v),
                    4 => a.group = as_i32(v),
                    7 => a.code = as_i32(v),
                    8 => a.description = text(v, Origin::Standard).unwrap_or_default(),
                    9 => {
                        if let Value::TimeTicks(t) = v {
                            a.time_cs = Some(*t);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn add_counter(&mut self, name: &'static str, value: u64, oid: OidRef<'_>) {
        let Ok(oid) = SourceOid::try_from(oid) else {
            return;
        };
        if self
            .snap
            .counters
            .push(Counter { name, value, oid })
            .is_err()
        {
            self.snap.overflowed = true;
        }
    }

    /// Objects in an enterprise tree (1.3.6.1.4.1.`enterprise`).
    fn push_vendor(&mut self, enterprise: u32, arcs: &[u32], name: OidRef<'_>, v: &Value<'_>) {
        let origin = vendor::origin_of(Some(enterprise));
        if let Some(rank) = vendor::IDENTITY_OIDS
            .iter()
            .position(|(oid, _)| *oid == arcs)
        {
            if let (Some(t), Some((_, field))) =
                (text::<128>(v, origin), vendor::IDENTITY_OIDS.get(rank))
            {
                set(
                    &mut self.vendor_fields,
                    &mut self.snap.overflowed,
                    rank,
                    (*field, t),
                );
            }
            return;
        }
        if let Some(c) = vendor::SCALAR_COUNTERS.iter().find(|c| c.oid == arcs) {
            let value = match v {
                Value::OctetString(_) => text::<64>(v, origin)
                    .as_ref()
                    .and_then(vendor::leading_integer),
                other => other.as_u64(),
            };
            if let Some(value) = value {
                self.add_counter(c.name, value, name);
            }
            return;
        }
        for table in &vendor::TABLE_COUNTERS {
            if let Some(index) = arcs.strip_prefix(table.prefix)
                && let Some((_, counter)) = table.rows.iter().find(|(row, _)| *row == index)
            {
                if let Some(value) = v.as_u64() {
                    self.add_counter(counter, value, name);
                }
                return;
            }
        }
        if arcs == vendor::BROTHER_COUNTER_BLOB {
            if let Value::OctetString(blob) = v {
                for (code, value) in vendor::brother_items(blob) {
                    if let Some(counter) = vendor::brother_counter_name(code) {
                        self.add_counter(counter, value, name);
                    }
                }
            }
            return;
        }
        let ov = &mut self.snap.overflowed;
        if let Some([row]) = arcs.strip_prefix(vendor::RICOH_COUNTER_TYPE) {
            if let Value::Integer(kind) = v {
                set(&mut self.ricoh_kinds, ov, *row, *kind);
            }
        } else if let Some([row]) = arcs.strip_prefix(vendor::RICOH_COUNTER_VALUE) {
            if let (Some(value), Ok(oid)) = (v.as_u64(), SourceOid::try_from(name)) {
                set(&mut self.ricoh_values, ov, *row, (value, oid));
            }
        } else if let Some([index]) = arcs.strip_prefix(vendor::RICOH_TONER_LEVEL)
            && let Some(level) = as_i32(v)
        {
            set(&mut self.ricoh_levels, ov, *index, level);
        }
    }

    /// Picks the printer by the qualification rule: the lowest hrDeviceIndex
    /// that has Printer-MIB rows and is a printer in hrDeviceTable, or is
    /// absent from it.
    fn qualify(&self) -> Qualification {
        let mut candidates = self.prt_devices.clone();
        crate::heapsort::sort_by_key(&mut candidates, |d| *d);
        candidates
            .iter()
            .find(|d| get(&self.hr_types, **d).copied().unwrap_or(true))
            .map_or(Qualification::NotAPrinter, |d| Qualification::Printer {
                device_index: *d,
            })
    }

    /// Builds the snapshot.
    pub fn finish(mut self) -> Snapshot {
        self.finish_in_place();
        self.snap
    }

    /// Builds the snapshot where the builder lies and lends it: a snapshot
    /// is tens of KiB, and a device with little RAM keeps one builder and
    /// no separate snapshot. The builder takes no more varbinds afterwards
    /// (they are ignored) until [`SnapshotBuilder::reset`]; finishing again
    /// lends the same snapshot.
    pub fn finish_in_place(&mut self) -> &Snapshot {
        if !self.finished {
            self.finished = true;
            self.resolve();
        }
        &self.snap
    }

    fn resolve(&mut self) {
        let qualification = self.qualify();
        let dev = match qualification {
            Qualification::Printer { device_index } => device_index,
            Qualification::NotAPrinter => self
                .hr_types
                .iter()
                .find(|(_, p)| *p)
                .map_or(1, |(d, _)| *d),
        };
        self.snap.qualification = qualification;
        self.snap.trays.retain(|t| t.device == dev);
        self.snap.outputs.retain(|t| t.device == dev);
        self.snap.alerts.retain(|a| a.device == dev);
        self.snap.supplies.retain(|s| s.device == dev);
        self.snap.status.device_status = get(&self.hr_status, dev).copied();
        self.snap.status.printer_status = get(&self.printer_status, dev).copied();
        self.snap.status.error_state = get(&self.error_state, dev).cloned().unwrap_or_default();
        self.snap.status.console = console_text(&self.console, dev);
        self.resolve_identity(dev);
        let family = self.snap.identity.vendor.map(Vendor::family);
        for s in self.snap.supplies.iter_mut() {
            finish_supply(s, &self.colorants, &self.ricoh_levels, family);
        }
        self.collect_counters(dev);
        // In OID order, whatever order the answers came in.
        crate::heapsort::sort_by(&mut self.snap.counters, |a, b| a.oid < b.oid);
    }

    /// Adds the standard and Ricoh counters to the vendor counters the
    /// snapshot holds already. The standard ones come first: when the list
    /// is full, a vendor counter makes room for them.
    fn collect_counters(&mut self, dev: u32) {
        let snap = &mut self.snap;
        for m in self.markers.iter().filter(|m| m.device == dev) {
            let names = marker_counter_names(m.index);
            for (value, col, name) in [(m.value.0, 4, names.0), (m.value.1, 5, names.1)] {
                let (Some(value), Some(name)) = (value, name) else {
                    continue;
                };
                let mut oid = SourceOid::from_arcs(oids::PRT_MARKER_ENTRY).ok();
                for arc in [col, dev, m.index] {
                    oid = oid.and_then(|mut o| o.push(arc).ok().map(|_| o));
                }
                let Some(oid) = oid else { continue };
                if snap.counters.is_full() {
                    snap.counters.pop();
                    snap.overflowed = true;
                }
                let _ = snap.counters.push(Counter { name, value, oid });
            }
        }
        for (row, kind) in &self.ricoh_kinds {
            if let (Some(name), Some((value, oid))) = (
                vendor::ricoh_counter_name(*kind),
                get(&self.ricoh_values, *row),
            ) && snap
                .counters
                .push(Counter {
                    name,
                    value: *value,
                    oid: oid.clone(),
                })
                .is_err()
            {
                snap.overflowed = true;
            }
        }
    }

    /// The preferred vendor value of a field: the device's own vendor's
    /// OIDs first, then the order of IDENTITY_OIDS.
    fn vendor_field(&self, field: IdentityField, family: Option<Vendor>) -> Option<&Text<128>> {
        let mut best: Option<((bool, usize), &Text<128>)> = None;
        for (rank, (f, t)) in &self.vendor_fields {
            if *f != field || t.is_empty() {
                continue;
            }
            let foreign = vendor::IDENTITY_OIDS
                .get(*rank)
                .is_none_or(|(oid, _)| vendor::family_of_oid(oid) != family);
            let key = (foreign, *rank);
            if best.is_none_or(|(k, _)| key < k) {
                best = Some((key, t));
            }
        }
        best.map(|(_, t)| t)
    }

    /// Completes the identity the MIB-II values started, in place.
    fn resolve_identity(&mut self, dev: u32) {
        let hr_device_descr = get(&self.hr_descr, dev)
            .or_else(|| self.hr_descr.first().map(|(_, t)| t))
            .cloned()
            .unwrap_or_default();
        let sys_descr = self.snap.identity.sys_descr.as_str();
        let vendor = Vendor::identify(sys_descr, self.enterprise, hr_device_descr.as_str());
        let family = vendor.map(Vendor::family);
        let serial = get(&self.std_serial, dev)
            .filter(|t| !t.is_empty())
            .cloned()
            .or_else(|| {
                self.vendor_field(IdentityField::Serial, family)
                    .map(|t| Text::from_str_lossy(t.as_str()))
            })
            .or_else(|| vendor::serial_in_sys_descr(sys_descr).map(Text::from_str_lossy))
            .unwrap_or_default();
        // Model: a vendor model object, the MDL of a device ID, the
        // printer's hrDeviceDescr, and last the head of sysDescr.
        let sys_descr_head = sys_descr.split([',', ';']).next().unwrap_or_default();
        let model: Text<128> = self
            .vendor_field(IdentityField::Model, family)
            .map(|t| Text::from_str_lossy(t.as_str()))
            .or_else(|| {
                self.vendor_field(IdentityField::DeviceId, family)
                    .and_then(|t| vendor::model_in_device_id(t.as_str()))
                    .map(Text::from_str_lossy)
            })
            .or_else(|| {
                (!hr_device_descr.is_empty())
                    .then(|| Text::from_str_lossy(hr_device_descr.as_str()))
            })
            .unwrap_or_else(|| Text::from_str_lossy(sys_descr_head));
        let model = Text::from_str_lossy(strip_brand(model.as_str(), vendor));
        let firmware = self
            .vendor_field(IdentityField::Firmware, family)
            .map(|t| Text::from_str_lossy(t.as_str()))
            .unwrap_or_default();
        let mac = self.first_ethernet_mac();
        let id = &mut self.snap.identity;
        id.hr_device_descr = hr_device_descr;
        id.vendor = vendor;
        id.serial = serial;
        id.model = model;
        id.firmware = firmware;
        id.mac = mac;
    }

    fn first_ethernet_mac(&self) -> Option<[u8; 6]> {
        let mut ifaces: Vec<&Interface, 16> = self.interfaces.iter().collect();
        crate::heapsort::sort_by_key(&mut ifaces, |i| i.index);
        let usable = |i: &&&Interface| i.mac.is_some_and(|m| m != [0; 6]);
        // ethernetCsmacd(6) first; a device without ifType gets its first MAC.
        ifaces
            .iter()
            .filter(usable)
            .find(|i| i.if_type == Some(6))
            .or_else(|| ifaces.iter().filter(usable).find(|i| i.if_type.is_none()))
            .and_then(|i| i.mac)
    }
}

/// Names of the standard counters of marker `index`.
fn marker_counter_names(index: u32) -> (Option<&'static str>, Option<&'static str>) {
    match index {
        1 => (Some("total"), Some("power_on")),
        2 => (Some("total_marker_2"), Some("power_on_marker_2")),
        3 => (Some("total_marker_3"), Some("power_on_marker_3")),
        4 => (Some("total_marker_4"), Some("power_on_marker_4")),
        _ => (None, None),
    }
}

/// The model without a leading brand word ("HP Color LaserJet" -> "Color
/// LaserJet"), since the vendor is its own field.
fn strip_brand(model: &str, vendor: Option<Vendor>) -> &str {
    let brands: &[&str] = match vendor.map(Vendor::family) {
        Some(Vendor::Hp) => &["HP "],
        Some(Vendor::KonicaMinolta) => &["KONICA MINOLTA "],
        Some(Vendor::Brother) => &["Brother "],
        Some(Vendor::Canon) => &["Canon "],
        Some(Vendor::Dell) => &["Dell "],
        Some(Vendor::Epson) => &["EPSON "],
        Some(Vendor::Ricoh) => &["RICOH "],
        Some(Vendor::Xerox) => &["Xerox ", "FUJI XEROX "],
        Some(Vendor::Fujifilm) => &["FUJIFILM "],
        Some(Vendor::Sharp) => &["SHARP "],
        Some(Vendor::Lexmark) => &["Lexmark "],
        Some(Vendor::Kyocera) => &["KYOCERA "],
        Some(Vendor::Samsung) => &["Samsung "],
        Some(Vendor::Toshiba) => &["TOSHIBA "],
        _ => &[],
    };
    brands
        .iter()
        .find_map(|b| {
            let head = model.get(..b.len())?;
            head.eq_ignore_ascii_case(b)
                .then(|| model.get(b.len()..))
                .flatten()
        })
        .unwrap_or(model)
}

/// A printer's supply made final: its colorant's name, the part number
/// and serial its description carries, and the vendor corrections.
fn finish_supply(
    s: &mut Supply,
    colorants: &[Tagged<Text<32>>],
    ricoh_levels: &[(u32, i32)],
    family: Option<Vendor>,
) {
    if let Some(c) = s
        .colorant_index
        .and_then(|i| u32::try_from(i).ok())
        .and_then(|i| {
            colorants
                .iter()
                .find(|c| c.device == s.device && c.index == i)
        })
    {
        s.colorant = c.value.clone();
    }
    let description = s.description.clone();
    let (name, part, serial) = vendor::split_part_number(description.as_str());
    if name.len() != description.as_str().len() {
        s.part_number = Text::from_str_lossy(part.unwrap_or_default());
        s.supply_serial = Text::from_str_lossy(serial.unwrap_or_default());
        s.description = description.with_text(name);
    }
    // Vendor corrections: the one place levels are changed, and recorded.
    if family == Some(Vendor::Brother)
        && s.max_capacity.is_some_and(|m| m <= 0)
        && s.reported_level.is_some_and(|l| (0..=3).contains(&l))
    {
        s.correction = Some(Correction::BrotherCode);
    }
    if family == Some(Vendor::Ricoh) {
        match s.reported_level {
            Some(-100) => {
                s.level = Some(0);
                s.correction = Some(Correction::RicohEmpty);
            }
            Some(-3) => {
                if let Some(level) = get(ricoh_levels, s.index).copied().filter(|l| *l >= 0) {
                    s.level = Some(level);
                    s.correction = Some(Correction::RicohPrivateLevel);
                }
            }
            _ => {}
        }
    }
}

fn console_text(lines: &[Tagged<Text<80>>], dev: u32) -> Text<160> {
    let mut mine: Vec<&Tagged<Text<80>>, 8> = lines
        .iter()
        .filter(|l| l.device == dev && !l.value.is_empty())
        .collect();
    crate::heapsort::sort_by_key(&mut mine, |l| l.index);
    let mut joined: heapless::String<160> = heapless::String::new();
    for (i, l) in mine.iter().enumerate() {
        if i > 0 {
            let _ = joined.push_str(" | ");
        }
        for c in l.value.as_str().chars() {
            if joined.push(c).is_err() {
                break;
            }
        }
    }
    Text::from_str_lossy(joined.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::printer::SupplyState;
    use std::string::ToString;

    /// Feeds (dotted OID, value) pairs.
    fn build(items: &[(&str, Value<'_>)]) -> Snapshot {
        let mut b = SnapshotBuilder::new();
        for (oid, value) in items {
            let oid: crate::ber::Oid = oid.parse().unwrap();
            b.push(&VarBind::new(oid.as_oid_ref(), *value));
        }
        b.finish()
    }

    const PRINTER: &str = "1.3.6.1.2.1.25.3.1.5";
    const PROCESSOR: &str = "1.3.6.1.2.1.25.3.1.3";

    #[test]
    fn the_printer_index_is_not_always_one() {
        let printer: crate::ber::Oid = PRINTER.parse().unwrap();
        let cpu: crate::ber::Oid = PROCESSOR.parse().unwrap();
        let s = build(&[
            (
                "1.3.6.1.2.1.25.3.2.1.2.1",
                Value::ObjectId(cpu.as_oid_ref()),
            ),
            (
                "1.3.6.1.2.1.25.3.2.1.2.3",
                Value::ObjectId(printer.as_oid_ref()),
            ),
            (
                "1.3.6.1.2.1.25.3.2.1.3.3",
                Value::OctetString(b"Canon iR-ADV C5235"),
            ),
            (
                "1.3.6.1.2.1.43.11.1.1.6.3.1",
                Value::OctetString(b"Black Toner"),
            ),
            ("1.3.6.1.2.1.43.11.1.1.8.3.1", Value::Integer(100)),
            ("1.3.6.1.2.1.43.11.1.1.9.3.1", Value::Integer(7)),
            ("1.3.6.1.2.1.43.10.2.1.4.3.1", Value::Counter32(123_456)),
            // A row of another device index must not leak in.
            (
                "1.3.6.1.2.1.43.11.1.1.6.1.1",
                Value::OctetString(b"Queue ghost"),
            ),
        ]);
        assert_eq!(s.qualification, Qualification::Printer { device_index: 3 });
        assert_eq!(s.supplies.len(), 1);
        assert_eq!(s.supplies[0].state(), SupplyState::Low);
        assert_eq!(s.supplies[0].percent(), Some(7.0));
        assert_eq!(s.identity.model.as_str(), "iR-ADV C5235");
        assert_eq!(
            s.counter("total").map(|c| (c.value, c.oid.to_string())),
            Some((123_456, "1.3.6.1.2.1.43.10.2.1.4.3.1".into()))
        );
    }

    #[test]
    fn hr_printer_rows_alone_are_not_a_printer() {
        let printer: crate::ber::Oid = PRINTER.parse().unwrap();
        let s = build(&[
            (
                "1.3.6.1.2.1.1.1.0",
                Value::OctetString(b"Hardware: Intel64 - Software: Windows Version 6.3"),
            ),
            (
                "1.3.6.1.2.1.25.3.2.1.2.5",
                Value::ObjectId(printer.as_oid_ref()),
            ),
            ("1.3.6.1.2.1.25.3.5.1.1.5", Value::Integer(3)),
        ]);
        assert_eq!(s.qualification, Qualification::NotAPrinter);
        // A Printer-MIB row under a device that is not a printer does not count.
        let cpu: crate::ber::Oid = PROCESSOR.parse().unwrap();
        let s = build(&[
            (
                "1.3.6.1.2.1.25.3.2.1.2.1",
                Value::ObjectId(cpu.as_oid_ref()),
            ),
            ("1.3.6.1.2.1.43.5.1.1.17.1", Value::OctetString(b"X")),
        ]);
        assert_eq!(s.qualification, Qualification::NotAPrinter);
    }

    #[test]
    fn ricoh_levels_are_corrected_and_the_report_kept() {
        let s = build(&[
            ("1.3.6.1.2.1.1.1.0", Value::OctetString(b"RICOH MP C3003")),
            ("1.3.6.1.2.1.43.11.1.1.8.1.1", Value::Integer(100)),
            ("1.3.6.1.2.1.43.11.1.1.9.1.1", Value::Integer(-100)),
            ("1.3.6.1.2.1.43.11.1.1.8.1.2", Value::Integer(100)),
            ("1.3.6.1.2.1.43.11.1.1.9.1.2", Value::Integer(-3)),
            ("1.3.6.1.4.1.367.3.2.1.2.24.1.1.5.2", Value::Integer(60)),
            ("1.3.6.1.2.1.43.11.1.1.8.1.3", Value::Integer(100)),
            ("1.3.6.1.2.1.43.11.1.1.9.1.3", Value::Integer(-3)),
        ]);
        let by_index = |i: u32| s.supplies.iter().find(|x| x.index == i).unwrap();
        assert_eq!(
            (
                by_index(1).level,
                by_index(1).reported_level,
                by_index(1).correction
            ),
            (Some(0), Some(-100), Some(Correction::RicohEmpty))
        );
        assert_eq!(by_index(1).state(), SupplyState::Empty);
        assert_eq!(
            (by_index(2).level, by_index(2).correction),
            (Some(60), Some(Correction::RicohPrivateLevel))
        );
        assert_eq!(
            (by_index(3).state(), by_index(3).percent()),
            (SupplyState::SomeRemaining, None)
        );
    }

    #[test]
    fn error_state_is_read_most_significant_bit_first() {
        let flags = |bytes: &'static [u8]| {
            let s = build(&[("1.3.6.1.2.1.25.3.5.1.2.1", Value::OctetString(bytes))]);
            s.status.error_flags().collect::<std::vec::Vec<_>>()
        };
        // The Kyocera single space: low toner, not jammed.
        assert_eq!(flags(b" "), ["low_toner"]);
        assert_eq!(flags(&[0x04, 0x00]), ["jammed"]);
        assert_eq!(flags(&[0x00, 0x80]), ["input_tray_missing"]);
        assert_eq!(
            flags(&[0x81, 0x02]),
            ["low_paper", "service_requested", "overdue_prevent_maint"]
        );
        assert!(flags(&[]).is_empty());
    }

    #[test]
    fn special_levels_never_become_percentages() {
        let case = |level: i32, max: i32| {
            let s = Supply {
                level: Some(level),
                max_capacity: Some(max),
                ..Supply::default()
            };
            (s.state(), s.percent())
        };
        assert_eq!(case(-1, 100), (SupplyState::Unlimited, None));
        assert_eq!(case(-2, 100), (SupplyState::Unknown, None));
        assert_eq!(case(-3, 100), (SupplyState::SomeRemaining, None));
        assert_eq!(case(50, 0), (SupplyState::Unknown, None));
        assert_eq!(case(50, -2), (SupplyState::Unknown, None));
        assert_eq!(case(0, 100), (SupplyState::Empty, Some(0.0)));
        assert_eq!(case(150, 100), (SupplyState::Ok, Some(150.0)));
    }

    /// A waste toner box counts the space left: none left is full (the
    /// problem), and a consumable's "empty" would say the opposite.
    #[test]
    fn receptacles_are_full_not_empty() {
        let case = |level: i32| {
            Supply {
                class: Some(4),
                level: Some(level),
                max_capacity: Some(100),
                ..Supply::default()
            }
            .state()
        };
        assert_eq!(case(0), SupplyState::Full);
        assert_eq!(case(5), SupplyState::AlmostFull);
        assert_eq!(case(80), SupplyState::Ok);
        assert_eq!(SupplyState::Full.id(), "full");
    }
}
