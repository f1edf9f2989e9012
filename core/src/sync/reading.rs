//! One device's reading as a batch carries it: a full snapshot, keyed on the
//! device's identity (vendor + serial, else MAC), never on its address.
//!
//! Full snapshots rather than deltas: a typical printer's reading is a few
//! hundred bytes (docs/protocol.md has the measured sizes), the counters that
//! a delta could not leave out are most of it, and a full reading stands on
//! its own: one lost or re-ordered batch never corrupts what the cloud knows.

use super::cbor::{self, Enc, EncResult, array_len, map_len, opt};
use super::{Clock, Error};
use crate::printer::{
    self, MAX_ALERTS, MAX_COUNTERS, MAX_OUTPUTS, MAX_SUPPLIES, MAX_TRAYS, Snapshot,
};
use heapless::Vec;
use minicbor::Decoder;
use minicbor::encode::write::{Cursor, Write};

mod key {
    pub const AT: u64 = 0;
    pub const VENDOR: u64 = 1;
    pub const SERIAL: u64 = 2;
    pub const MAC: u64 = 3;
    pub const ADDRESS: u64 = 4;
    pub const MODEL: u64 = 5;
    pub const FIRMWARE: u64 = 6;
    pub const SYS_NAME: u64 = 7;
    pub const SYS_LOCATION: u64 = 8;
    pub const UPTIME: u64 = 9;
    pub const COUNTERS: u64 = 10;
    pub const SUPPLIES: u64 = 11;
    pub const TRAYS: u64 = 12;
    pub const OUTPUTS: u64 = 13;
    pub const ALERTS: u64 = 14;
    pub const STATUS: u64 = 15;
    pub const SYS_CONTACT: u64 = 16;
}

/// What identifies a device across address changes (DHCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKey<'a> {
    /// The vendor's serial number, scoped by vendor ("" when unknown).
    Serial { vendor: &'a str, serial: &'a str },
    /// No serial: the first interface's MAC address.
    Mac([u8; 6]),
    /// Neither serial nor MAC (some devices hide both): the address the
    /// agent reached it at. The one key that does not survive a DHCP change,
    /// so the cloud marks such devices as unstably keyed rather than drop
    /// their readings.
    Address(&'a str),
}

impl DeviceKey<'_> {
    /// The rule both sides apply: serial first, MAC when there is no serial,
    /// the address as a last resort; `None` when the device offers none of
    /// them (its address masked too), and the cloud cannot store it.
    pub fn of<'a>(
        vendor: &'a str,
        serial: &'a str,
        mac: Option<[u8; 6]>,
        address: &'a str,
    ) -> Option<DeviceKey<'a>> {
        if !serial.trim().is_empty() {
            Some(DeviceKey::Serial {
                vendor,
                serial: serial.trim(),
            })
        } else if let Some(mac) = mac.filter(|m| m.iter().any(|b| *b != 0)) {
            Some(DeviceKey::Mac(mac))
        } else if !address.is_empty() {
            Some(DeviceKey::Address(address))
        } else {
            None
        }
    }

    /// Whether the key survives an address change.
    pub fn is_stable(&self) -> bool {
        !matches!(self, DeviceKey::Address(_))
    }
}

impl core::fmt::Display for DeviceKey<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DeviceKey::Serial { vendor, serial } => write!(f, "{vendor}/{serial}"),
            DeviceKey::Mac(m) => write!(
                f,
                "mac/{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
            DeviceKey::Address(a) => write!(f, "address/{a}"),
        }
    }
}

/// The key of a snapshot read at `address`, by the same rule as
/// [`Reading::key`].
pub fn key_of<'a>(s: &'a Snapshot, address: Option<&'a str>) -> Option<DeviceKey<'a>> {
    DeviceKey::of(
        s.identity.vendor.map_or("", |v| v.id()),
        s.identity.serial.as_str(),
        s.identity.mac,
        address.unwrap_or(""),
    )
}

fn put_text<W: Write>(e: &mut Enc<W>, key: u64, text: &str) -> EncResult {
    if !text.is_empty() {
        e.u64(key)?.str(text)?;
    }
    Ok(())
}

fn put_trays<W: Write>(e: &mut Enc<W>, key: u64, trays: &[printer::Tray]) -> EncResult {
    if trays.is_empty() {
        return Ok(());
    }
    e.u64(key)?.array(trays.len() as u64)?;
    for t in trays {
        e.array(5)?.u32(t.index)?.str(t.name.as_str())?;
        cbor::put_opt_i32(e, t.max_capacity)?;
        cbor::put_opt_i32(e, t.level)?;
        e.str(t.media.as_str())?;
    }
    Ok(())
}

/// Encodes `s`, read at `at` from `address` (pass `None` to leave the address
/// out, for sites that mask it), into `buf`; returns the length used.
pub fn encode(
    s: &Snapshot,
    at: &Clock,
    address: Option<&str>,
    buf: &mut [u8],
) -> Result<usize, Error> {
    let mut e = Enc::new(Cursor::new(buf));
    encode_to(&mut e, s, at, address)?;
    Ok(e.into_writer().position())
}

/// The length [`encode`] needs for the same reading.
pub fn encoded_len(s: &Snapshot, at: &Clock, address: Option<&str>) -> usize {
    let mut e = Enc::new(cbor::Counter::default());
    // Counting cannot fail.
    let _ = encode_to(&mut e, s, at, address);
    e.into_writer().len()
}

fn encode_to<W: Write>(
    e: &mut Enc<W>,
    s: &Snapshot,
    at: &Clock,
    address: Option<&str>,
) -> EncResult {
    let id = &s.identity;
    let vendor = id.vendor.map_or("", |v| v.id());
    let texts = [
        (key::VENDOR, vendor),
        (key::SERIAL, id.serial.as_str()),
        (key::ADDRESS, address.unwrap_or("")),
        (key::MODEL, id.model.as_str()),
        (key::FIRMWARE, id.firmware.as_str()),
        (key::SYS_NAME, id.sys_name.as_str()),
        (key::SYS_LOCATION, id.sys_location.as_str()),
        (key::SYS_CONTACT, id.sys_contact.as_str()),
    ];
    let present = [
        true, // at
        true, // status
        id.mac.is_some(),
        id.sys_uptime_cs.is_some(),
        !s.counters.is_empty(),
        !s.supplies.is_empty(),
        !s.trays.is_empty(),
        !s.outputs.is_empty(),
        !s.alerts.is_empty(),
    ];
    let entries = present
        .iter()
        .filter(|p| **p)
        .count()
        .saturating_add(texts.iter().filter(|(_, t)| !t.is_empty()).count());

    e.map(entries as u64)?;
    e.u64(key::AT)?;
    cbor::put_clock(e, at)?;
    // Keys in ascending order, as deterministic CBOR has them.
    let (before_mac, after_mac) = texts.split_at(2);
    for (k, t) in before_mac {
        put_text(e, *k, t)?;
    }
    if let Some(mac) = id.mac {
        e.u64(key::MAC)?.bytes(&mac)?;
    }
    let (identity, contact) = after_mac.split_at(after_mac.len().saturating_sub(1));
    for (k, t) in identity {
        put_text(e, *k, t)?;
    }
    if let Some(up) = id.sys_uptime_cs {
        e.u64(key::UPTIME)?.u32(up)?;
    }
    if !s.counters.is_empty() {
        e.u64(key::COUNTERS)?.array(s.counters.len() as u64)?;
        for c in &s.counters {
            e.array(2)?.str(c.name)?.u64(c.value)?;
        }
    }
    if !s.supplies.is_empty() {
        e.u64(key::SUPPLIES)?.array(s.supplies.len() as u64)?;
        for x in &s.supplies {
            e.array(10)?.u32(x.index)?.str(x.description.as_str())?;
            cbor::put_opt_i32(e, x.supply_type)?;
            cbor::put_opt_i32(e, x.class)?;
            cbor::put_opt_i32(e, x.unit)?;
            e.str(x.colorant.as_str())?;
            cbor::put_opt_i32(e, x.max_capacity)?;
            cbor::put_opt_i32(e, x.level)?;
            e.str(x.state().id())?.str(x.part_number.as_str())?;
        }
    }
    put_trays(e, key::TRAYS, &s.trays)?;
    put_trays(e, key::OUTPUTS, &s.outputs)?;
    if !s.alerts.is_empty() {
        e.u64(key::ALERTS)?.array(s.alerts.len() as u64)?;
        for a in &s.alerts {
            e.array(5)?;
            cbor::put_opt_i32(e, a.severity)?;
            cbor::put_opt_i32(e, a.group)?;
            cbor::put_opt_i32(e, a.code)?;
            e.str(a.description.as_str())?;
            cbor::put_opt_u32(e, a.time_cs)?;
        }
    }
    let st = &s.status;
    e.u64(key::STATUS)?.array(4)?;
    cbor::put_opt_i32(e, st.device_status)?;
    cbor::put_opt_i32(e, st.printer_status)?;
    e.bytes(&st.error_state)?.str(st.console.as_str())?;
    for (k, t) in contact {
        put_text(e, *k, t)?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterReading<'b> {
    pub name: &'b str,
    pub value: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupplyReading<'b> {
    pub index: u32,
    pub description: &'b str,
    pub supply_type: Option<i32>,
    pub class: Option<i32>,
    pub unit: Option<i32>,
    pub colorant: &'b str,
    pub max_capacity: Option<i32>,
    pub level: Option<i32>,
    /// The agent's verdict (`ok`, `low`, `empty`, ...), which knows vendor
    /// corrections the raw numbers do not show.
    pub state: &'b str,
    pub part_number: &'b str,
}

impl SupplyReading<'_> {
    /// Level as a share of capacity, when both are real numbers.
    pub fn percent(&self) -> Option<f64> {
        match (self.level, self.max_capacity) {
            (Some(l), Some(m)) if l >= 0 && m > 0 => Some(f64::from(l) * 100.0 / f64::from(m)),
            _ => None,
        }
    }

    pub fn type_name(&self) -> Option<&'static str> {
        self.supply_type.and_then(printer::names::supply_type)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrayReading<'b> {
    pub index: u32,
    pub name: &'b str,
    pub max_capacity: Option<i32>,
    pub level: Option<i32>,
    pub media: &'b str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertReading<'b> {
    pub severity: Option<i32>,
    pub group: Option<i32>,
    pub code: Option<i32>,
    pub description: &'b str,
    pub time_cs: Option<u32>,
}

impl AlertReading<'_> {
    pub fn severity_name(&self) -> Option<&'static str> {
        self.severity.and_then(printer::names::alert_severity)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusReading<'b> {
    pub device_status: Option<i32>,
    pub printer_status: Option<i32>,
    pub error_state: &'b [u8],
    pub console: &'b str,
}

/// A decoded reading: a view that borrows the batch it came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reading<'b> {
    pub at: Clock,
    pub vendor: &'b str,
    pub serial: &'b str,
    pub mac: Option<[u8; 6]>,
    pub address: &'b str,
    pub model: &'b str,
    pub firmware: &'b str,
    pub sys_name: &'b str,
    pub sys_location: &'b str,
    pub sys_contact: &'b str,
    pub uptime_cs: Option<u32>,
    pub counters: Vec<CounterReading<'b>, MAX_COUNTERS>,
    pub supplies: Vec<SupplyReading<'b>, MAX_SUPPLIES>,
    pub trays: Vec<TrayReading<'b>, MAX_TRAYS>,
    pub outputs: Vec<TrayReading<'b>, MAX_OUTPUTS>,
    pub alerts: Vec<AlertReading<'b>, MAX_ALERTS>,
    pub status: StatusReading<'b>,
}

impl<'b> Reading<'b> {
    /// Decodes one reading that fills `bytes` exactly.
    pub fn decode(bytes: &'b [u8]) -> Result<Self, Error> {
        let mut d = Decoder::new(bytes);
        let r = decode_from(&mut d)?;
        if d.position() != bytes.len() {
            return Err(Error::Cbor { at: d.position() });
        }
        Ok(r)
    }

    pub fn key(&self) -> Option<DeviceKey<'b>> {
        DeviceKey::of(self.vendor, self.serial, self.mac, self.address)
    }

    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value)
    }
}

fn fixed_array(d: &mut Decoder<'_>, len: u64, what: &'static str) -> Result<(), Error> {
    if array_len(d)? == len {
        Ok(())
    } else {
        Err(Error::Invalid(what))
    }
}

fn list<'b, T, const N: usize>(
    d: &mut Decoder<'b>,
    what: &'static str,
    mut item: impl FnMut(&mut Decoder<'b>) -> Result<T, Error>,
) -> Result<Vec<T, N>, Error> {
    let mut out = Vec::new();
    for _ in 0..array_len(d)? {
        out.push(item(d)?).map_err(|_| Error::TooMany(what))?;
    }
    Ok(out)
}

fn opt_i32(d: &mut Decoder<'_>) -> Result<Option<i32>, Error> {
    opt(d, |d| d.i32())
}

fn tray<'b>(d: &mut Decoder<'b>) -> Result<TrayReading<'b>, Error> {
    fixed_array(d, 5, "tray (must be a 5-element array)")?;
    Ok(TrayReading {
        index: d.u32()?,
        name: d.str()?,
        max_capacity: opt_i32(d)?,
        level: opt_i32(d)?,
        media: d.str()?,
    })
}

fn supply<'b>(d: &mut Decoder<'b>) -> Result<SupplyReading<'b>, Error> {
    fixed_array(d, 10, "supply (must be a 10-element array)")?;
    Ok(SupplyReading {
        index: d.u32()?,
        description: d.str()?,
        supply_type: opt_i32(d)?,
        class: opt_i32(d)?,
        unit: opt_i32(d)?,
        colorant: d.str()?,
        max_capacity: opt_i32(d)?,
        level: opt_i32(d)?,
        state: d.str()?,
        part_number: d.str()?,
    })
}

fn alert<'b>(d: &mut Decoder<'b>) -> Result<AlertReading<'b>, Error> {
    fixed_array(d, 5, "alert (must be a 5-element array)")?;
    Ok(AlertReading {
        severity: opt_i32(d)?,
        group: opt_i32(d)?,
        code: opt_i32(d)?,
        description: d.str()?,
        time_cs: opt(d, |d| d.u32())?,
    })
}

fn counter<'b>(d: &mut Decoder<'b>) -> Result<CounterReading<'b>, Error> {
    fixed_array(d, 2, "counter (must be [name, value])")?;
    Ok(CounterReading {
        name: d.str()?,
        value: d.u64()?,
    })
}

fn status<'b>(d: &mut Decoder<'b>) -> Result<StatusReading<'b>, Error> {
    fixed_array(d, 4, "status (must be a 4-element array)")?;
    Ok(StatusReading {
        device_status: opt_i32(d)?,
        printer_status: opt_i32(d)?,
        error_state: d.bytes()?,
        console: d.str()?,
    })
}

pub(crate) fn decode_from<'b>(d: &mut Decoder<'b>) -> Result<Reading<'b>, Error> {
    let mut r = Reading::default();
    let mut at = None;
    for _ in 0..map_len(d)? {
        match d.u64()? {
            key::AT => at = Some(cbor::clock(d)?),
            key::VENDOR => r.vendor = d.str()?,
            key::SERIAL => r.serial = d.str()?,
            key::MAC => {
                r.mac = Some(
                    d.bytes()?
                        .try_into()
                        .map_err(|_| Error::Invalid("mac (must be 6 bytes)"))?,
                )
            }
            key::ADDRESS => r.address = d.str()?,
            key::MODEL => r.model = d.str()?,
            key::FIRMWARE => r.firmware = d.str()?,
            key::SYS_NAME => r.sys_name = d.str()?,
            key::SYS_LOCATION => r.sys_location = d.str()?,
            key::SYS_CONTACT => r.sys_contact = d.str()?,
            key::UPTIME => r.uptime_cs = Some(d.u32()?),
            key::COUNTERS => r.counters = list(d, "counters", counter)?,
            key::SUPPLIES => r.supplies = list(d, "supplies", supply)?,
            key::TRAYS => r.trays = list(d, "trays", tray)?,
            key::OUTPUTS => r.outputs = list(d, "output bins", tray)?,
            key::ALERTS => r.alerts = list(d, "alerts", alert)?,
            key::STATUS => r.status = status(d)?,
            _ => d.skip()?,
        }
    }
    r.at = at.ok_or(Error::Missing("reading.at"))?;
    Ok(r)
}
