//! Generated printers: plausible Printer-MIB devices of several vendors,
//! reproducible from a seed.
//!
//! Devices of one profile share a [`Template`]; each device keeps only its
//! parameters (serial, MAC, page rate, cartridge phases, alert rhythm). Its
//! dynamic values are functions of simulated time: page counters grow,
//! toner depletes and is replaced, trays empty and are refilled, and jams,
//! paper-outs and open doors come and go.

use crate::mib::{Dynamic, SimValue, Slot, Template};
use std::sync::Arc;

/// SplitMix64: small, fast, and good enough to make fleets reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (hi > lo).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// A kind of printer the generator makes.
struct Profile {
    vendor: &'static str,
    enterprise: u32,
    sys_object_id: &'static [u32],
    models: &'static [&'static str],
    serial_prefix: &'static str,
    oui: [u8; 3],
    color: bool,
    /// Vendor page counters (total, mono, colour) as the vendor exposes them.
    vendor_counters: Option<[&'static [u32]; 3]>,
}

const PROFILES: [Profile; 6] = [
    Profile {
        vendor: "HP",
        enterprise: 11,
        sys_object_id: &[1, 3, 6, 1, 4, 1, 11, 2, 3, 9, 1],
        models: &[
            "HP LaserJet Pro M404dn",
            "HP Color LaserJet Pro M454dw",
            "HP LaserJet Enterprise M607",
        ],
        serial_prefix: "VNB",
        oui: [0x94, 0x57, 0xa5],
        color: true,
        vendor_counters: Some([
            &[1, 3, 6, 1, 4, 1, 11, 2, 3, 9, 4, 2, 1, 4, 1, 2, 5, 0],
            &[1, 3, 6, 1, 4, 1, 11, 2, 3, 9, 4, 2, 1, 4, 1, 2, 6, 0],
            &[1, 3, 6, 1, 4, 1, 11, 2, 3, 9, 4, 2, 1, 4, 1, 2, 7, 0],
        ]),
    },
    Profile {
        vendor: "RICOH",
        enterprise: 367,
        sys_object_id: &[1, 3, 6, 1, 4, 1, 367, 1, 1],
        models: &["RICOH IM C3000", "RICOH MP 2555", "RICOH IM 430F"],
        serial_prefix: "G18",
        oui: [0x00, 0x26, 0x73],
        color: true,
        vendor_counters: None,
    },
    Profile {
        vendor: "KYOCERA",
        enterprise: 1347,
        sys_object_id: &[1, 3, 6, 1, 4, 1, 1347, 41],
        models: &["ECOSYS P3145dn", "ECOSYS M5526cdw", "TASKalfa 2554ci"],
        serial_prefix: "VCF",
        oui: [0x00, 0x17, 0xc8],
        color: false,
        vendor_counters: Some([
            &[1, 3, 6, 1, 4, 1, 1347, 42, 2, 1, 1, 1, 6, 1, 1],
            &[1, 3, 6, 1, 4, 1, 1347, 42, 2, 1, 1, 1, 7, 1, 1],
            &[1, 3, 6, 1, 4, 1, 1347, 42, 2, 1, 1, 1, 8, 1, 1],
        ]),
    },
    Profile {
        vendor: "Brother",
        enterprise: 2435,
        sys_object_id: &[1, 3, 6, 1, 4, 1, 2435, 2, 3, 9, 1],
        models: &["Brother HL-L5100DN series", "Brother MFC-L8900CDW series"],
        serial_prefix: "E78",
        oui: [0x30, 0x05, 0x5c],
        color: false,
        vendor_counters: None,
    },
    Profile {
        vendor: "KONICA MINOLTA",
        enterprise: 18334,
        sys_object_id: &[1, 3, 6, 1, 4, 1, 18334, 1, 1, 1, 2, 1, 181, 2, 4],
        models: &["KONICA MINOLTA bizhub C300i", "KONICA MINOLTA bizhub 4750i"],
        serial_prefix: "AA2",
        oui: [0x00, 0x20, 0x6b],
        color: true,
        vendor_counters: None,
    },
    Profile {
        vendor: "SHARP",
        enterprise: 2385,
        sys_object_id: &[1, 3, 6, 1, 4, 1, 2385, 3, 1, 112, 1, 2],
        models: &["SHARP MX-3071", "SHARP MX-M3550"],
        serial_prefix: "051",
        oui: [0x00, 0x22, 0xf3],
        color: true,
        vendor_counters: None,
    },
];

/// Supplies of a colour or a mono printer: (description, type, class,
/// colorant, cartridge yield in pages).
fn supplies(color: bool) -> &'static [(&'static str, i64, i64, &'static str, u64)] {
    const COLOR: &[(&str, i64, i64, &str, u64)] = &[
        ("Black Toner", 3, 3, "black", 8000),
        ("Cyan Toner", 3, 3, "cyan", 6000),
        ("Magenta Toner", 3, 3, "magenta", 6000),
        ("Yellow Toner", 3, 3, "yellow", 6000),
        ("Imaging Drum", 9, 3, "", 60000),
        ("Waste Toner Box", 4, 4, "", 40000),
    ];
    const MONO: &[(&str, i64, i64, &str, u64)] = &[
        ("Black Toner", 3, 3, "black", 10000),
        ("Drum Unit", 9, 3, "", 50000),
    ];
    if color { COLOR } else { MONO }
}

fn arcs(prefix: &[u32], tail: &[u32]) -> Vec<u32> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(tail);
    v
}

fn fixed_int(v: i64) -> Slot {
    Slot::Fixed(SimValue::Integer(v))
}

fn fixed_text(s: &str) -> Slot {
    Slot::Fixed(SimValue::Octets(s.as_bytes().to_vec()))
}

/// The shared template of one profile and model.
fn template(p: &Profile, model: &str) -> Template {
    const SYS: &[u32] = &[1, 3, 6, 1, 2, 1, 1];
    const IF: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1];
    const HR_DEV: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 2, 1];
    const HR_PRT: &[u32] = &[1, 3, 6, 1, 2, 1, 25, 3, 5, 1];
    const PRT: &[u32] = &[1, 3, 6, 1, 2, 1, 43];
    let mut e: Vec<(Vec<u32>, Slot)> = vec![
        (
            arcs(SYS, &[1, 0]),
            fixed_text(&format!(
                "{} {}",
                p.vendor,
                model.trim_start_matches(p.vendor).trim()
            )),
        ),
        (
            arcs(SYS, &[2, 0]),
            Slot::Fixed(SimValue::Oid(p.sys_object_id.to_vec())),
        ),
        (arcs(SYS, &[3, 0]), Slot::Dynamic(Dynamic::Uptime)),
        (arcs(SYS, &[4, 0]), fixed_text("")),
        (arcs(SYS, &[5, 0]), Slot::Dynamic(Dynamic::SysName)),
        (arcs(SYS, &[6, 0]), fixed_text("")),
        (arcs(IF, &[1, 1]), fixed_int(1)),
        (arcs(IF, &[2, 1]), fixed_text("Ethernet")),
        (arcs(IF, &[3, 1]), fixed_int(6)),
        (arcs(IF, &[6, 1]), Slot::Dynamic(Dynamic::Mac)),
        (arcs(HR_DEV, &[1, 1]), fixed_int(1)),
        (
            arcs(HR_DEV, &[2, 1]),
            Slot::Fixed(SimValue::Oid(vec![1, 3, 6, 1, 2, 1, 25, 3, 1, 5])),
        ),
        (arcs(HR_DEV, &[3, 1]), fixed_text(model)),
        (arcs(HR_DEV, &[5, 1]), Slot::Dynamic(Dynamic::DeviceStatus)),
        (arcs(HR_PRT, &[1, 1]), Slot::Dynamic(Dynamic::PrinterStatus)),
        (arcs(HR_PRT, &[2, 1]), Slot::Dynamic(Dynamic::ErrorState)),
        (arcs(PRT, &[5, 1, 1, 17, 1]), Slot::Dynamic(Dynamic::Serial)),
        (
            arcs(PRT, &[10, 2, 1, 4, 1, 1]),
            Slot::Dynamic(Dynamic::LifeCount),
        ),
        (
            arcs(PRT, &[10, 2, 1, 5, 1, 1]),
            Slot::Dynamic(Dynamic::PowerOnCount),
        ),
        (arcs(PRT, &[9, 2, 1, 4, 1, 1]), fixed_int(250)),
        (arcs(PRT, &[9, 2, 1, 5, 1, 1]), fixed_int(-3)),
        (arcs(PRT, &[9, 2, 1, 7, 1, 1]), fixed_text("Face Down Bin")),
    ];
    for tray in 1..=2u8 {
        let t = u32::from(tray);
        e.push((
            arcs(PRT, &[8, 2, 1, 9, 1, t]),
            fixed_int(if tray == 1 { 550 } else { 100 }),
        ));
        e.push((
            arcs(PRT, &[8, 2, 1, 10, 1, t]),
            Slot::Dynamic(Dynamic::TrayLevel(tray)),
        ));
        e.push((arcs(PRT, &[8, 2, 1, 12, 1, t]), fixed_text("A4")));
        e.push((
            arcs(PRT, &[8, 2, 1, 13, 1, t]),
            fixed_text(if tray == 1 { "Tray 1" } else { "Bypass Tray" }),
        ));
    }
    let mut colorant = 0u32;
    for (i, (descr, ty, class, color, _)) in supplies(p.color).iter().enumerate() {
        let s = i as u32 + 1;
        let colorant_index = if color.is_empty() {
            0
        } else {
            colorant += 1;
            e.push((arcs(PRT, &[12, 1, 1, 4, 1, colorant]), fixed_text(color)));
            colorant
        };
        e.push((
            arcs(PRT, &[11, 1, 1, 3, 1, s]),
            fixed_int(i64::from(colorant_index)),
        ));
        e.push((arcs(PRT, &[11, 1, 1, 4, 1, s]), fixed_int(*class)));
        e.push((arcs(PRT, &[11, 1, 1, 5, 1, s]), fixed_int(*ty)));
        e.push((arcs(PRT, &[11, 1, 1, 6, 1, s]), fixed_text(descr)));
        e.push((arcs(PRT, &[11, 1, 1, 7, 1, s]), fixed_int(19)));
        e.push((arcs(PRT, &[11, 1, 1, 8, 1, s]), fixed_int(100)));
        e.push((
            arcs(PRT, &[11, 1, 1, 9, 1, s]),
            Slot::Dynamic(Dynamic::SupplyLevel(i as u8)),
        ));
    }
    for (col, d) in [
        (2, Dynamic::AlertSeverity),
        (4, Dynamic::AlertGroup),
        (7, Dynamic::AlertCode),
        (8, Dynamic::AlertDescription),
        (9, Dynamic::AlertTime),
    ] {
        e.push((arcs(PRT, &[18, 1, 1, col, 1, 1]), Slot::Dynamic(d)));
    }
    if let Some([total, mono, color]) = p.vendor_counters {
        e.push((total.to_vec(), Slot::Dynamic(Dynamic::VendorTotal)));
        e.push((mono.to_vec(), Slot::Dynamic(Dynamic::VendorMono)));
        if p.color {
            e.push((color.to_vec(), Slot::Dynamic(Dynamic::VendorColor)));
        }
    }
    let _ = p.enterprise;
    Template::new(e)
}

/// An alert a generated printer raises from time to time.
#[derive(Debug, Clone, Copy)]
struct AlertKind {
    severity: i64,
    group: i64,
    code: i64,
    description: &'static str,
    /// hrPrinterDetectedErrorState bit (MSB first).
    flag: u8,
}

const ALERTS: [AlertKind; 3] = [
    AlertKind {
        severity: 3,
        group: 13,
        code: 8,
        description: "Paper jam in tray 1",
        flag: 5,
    },
    AlertKind {
        severity: 3,
        group: 8,
        code: 808,
        description: "Tray 1 is empty",
        flag: 1,
    },
    AlertKind {
        severity: 3,
        group: 6,
        code: 3,
        description: "Front door open",
        flag: 4,
    },
];

/// One generated printer's parameters.
#[derive(Debug, Clone)]
pub struct Printer {
    serial: String,
    mac: [u8; 6],
    sys_name: String,
    color: bool,
    supplies: usize,
    /// Pages already printed when the simulation starts.
    base_pages: u64,
    pages_per_hour: u64,
    /// Share of colour pages, in percent.
    color_share: u64,
    /// Where in their cartridge's life each supply starts, in pages.
    supply_phase: [u64; 6],
    /// Uptime at the start, in seconds.
    boot_uptime: u64,
    /// Hours between alerts, and which kind comes.
    alert_period_h: u64,
    alert_offset_h: u64,
    alert_kind: usize,
    /// Fault: Counter32 page counters start just below 2^32 and wrap.
    counter32_wrap: bool,
    /// Fault: after one simulated hour the counters fall back (board swap).
    counters_backwards: bool,
}

/// Simulated time since the fleet started, in seconds.
pub type SimSeconds = u64;

impl Printer {
    pub fn name(&self) -> &str {
        &self.sys_name
    }

    /// Injects the counter faults.
    pub fn set_counter_faults(&mut self, wrap: bool, backwards: bool) {
        self.counter32_wrap = wrap;
        self.counters_backwards = backwards;
    }

    fn pages(&self, t: SimSeconds) -> u64 {
        let printed = self.pages_per_hour * t / 3600;
        if self.counter32_wrap {
            // Crosses 2^32 after about half a simulated hour.
            return (1u64 << 32) - self.pages_per_hour / 2 - 1 + printed;
        }
        if self.counters_backwards && t >= 3600 {
            // A replaced controller board starts counting again from little.
            return self.base_pages / 10 + printed;
        }
        self.base_pages + printed
    }

    /// The alert active at `t`, if any: one in each period, for ten minutes.
    fn alert(&self, t: SimSeconds) -> Option<(AlertKind, SimSeconds)> {
        let period = self.alert_period_h * 3600;
        let phase = (t + self.alert_offset_h * 3600) % period;
        (phase < 600).then(|| (ALERTS[self.alert_kind % ALERTS.len()], t - phase))
    }

    /// A dynamic value at simulated time `t`; `None` when the row is absent
    /// (no alert active).
    pub fn eval(&self, d: Dynamic, t: SimSeconds) -> Option<SimValue> {
        let pages = self.pages(t);
        let uptime_cs = ((self.boot_uptime + t) * 100) as u32;
        let alert = self.alert(t);
        Some(match d {
            Dynamic::Uptime => SimValue::TimeTicks(uptime_cs),
            Dynamic::SysName => SimValue::Octets(self.sys_name.as_bytes().to_vec()),
            Dynamic::Serial => SimValue::Octets(self.serial.as_bytes().to_vec()),
            Dynamic::Mac => SimValue::Octets(self.mac.to_vec()),
            Dynamic::LifeCount | Dynamic::VendorTotal => SimValue::Counter32(pages as u32),
            Dynamic::PowerOnCount => SimValue::Counter32((self.pages_per_hour * t / 3600) as u32),
            Dynamic::VendorMono => {
                SimValue::Counter32((pages * (100 - self.color_share) / 100) as u32)
            }
            Dynamic::VendorColor => SimValue::Counter32((pages * self.color_share / 100) as u32),
            Dynamic::SupplyLevel(i) => {
                let i = usize::from(i);
                if i >= self.supplies {
                    return None;
                }
                let (_, _, _, _, yield_pages) = supplies(self.color)[i];
                // A cartridge lasts its yield, sits empty for a tenth of it
                // until someone replaces it, then starts full again.
                let cycle = yield_pages + yield_pages / 10;
                let used = (self.supply_phase[i] + pages) % cycle;
                let level = if used >= yield_pages {
                    0
                } else {
                    100 - used * 100 / yield_pages
                };
                SimValue::Integer(level as i64)
            }
            Dynamic::TrayLevel(tray) => {
                let max = if tray == 1 { 550 } else { 100 };
                let empty = matches!(alert, Some((a, _)) if a.code == 808);
                let level = if empty { 0 } else { max - (pages % max) };
                SimValue::Integer(level as i64)
            }
            Dynamic::ErrorState => {
                let mut bits = [0u8; 2];
                if let Some((a, _)) = alert {
                    bits[usize::from(a.flag / 8)] |= 0x80 >> (a.flag % 8);
                }
                SimValue::Octets(bits.to_vec())
            }
            Dynamic::DeviceStatus => SimValue::Integer(if alert.is_some() { 5 } else { 2 }),
            Dynamic::PrinterStatus => SimValue::Integer(if alert.is_some() { 1 } else { 3 }),
            Dynamic::AlertSeverity => SimValue::Integer(alert?.0.severity),
            Dynamic::AlertGroup => SimValue::Integer(alert?.0.group),
            Dynamic::AlertCode => SimValue::Integer(alert?.0.code),
            Dynamic::AlertDescription => SimValue::Octets(alert?.0.description.as_bytes().to_vec()),
            Dynamic::AlertTime => SimValue::TimeTicks(((self.boot_uptime + alert?.1) * 100) as u32),
        })
    }
}

/// A generated device: its shared template and own parameters.
#[derive(Debug)]
pub struct Generated {
    pub printer: Printer,
    pub template: Arc<Template>,
}

/// Generates `n` printers from `seed`. Same seed, same fleet.
pub fn fleet(n: usize, seed: u64) -> Vec<Generated> {
    let mut templates: Vec<((usize, usize), Arc<Template>)> = Vec::new();
    (0..n)
        .map(|i| {
            let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0xa076_1d64_78bd_642f));
            let pi = rng.range(0, PROFILES.len() as u64) as usize;
            let p = &PROFILES[pi];
            let mi = rng.range(0, p.models.len() as u64) as usize;
            let template = match templates.iter().find(|(k, _)| *k == (pi, mi)) {
                Some((_, t)) => t.clone(),
                None => {
                    let t = Arc::new(template(p, p.models[mi]));
                    templates.push(((pi, mi), t.clone()));
                    t
                }
            };
            let mut mac = [0u8; 6];
            mac[..3].copy_from_slice(&p.oui);
            mac[3..].copy_from_slice(&(i as u32).to_be_bytes()[1..]);
            let mut supply_phase = [0u64; 6];
            for s in &mut supply_phase {
                *s = rng.range(0, 60_000);
            }
            let printer = Printer {
                serial: format!("{}{:07}", p.serial_prefix, rng.range(0, 10_000_000)),
                mac,
                sys_name: format!("prn-{i:05}"),
                color: p.color,
                supplies: supplies(p.color).len(),
                base_pages: rng.range(1_000, 900_000),
                pages_per_hour: rng.range(5, 400),
                color_share: if p.color { rng.range(10, 60) } else { 0 },
                supply_phase,
                boot_uptime: rng.range(3600, 90 * 86400),
                alert_period_h: rng.range(6, 72),
                alert_offset_h: rng.range(0, 72),
                alert_kind: rng.range(0, ALERTS.len() as u64) as usize,
                counter32_wrap: false,
                counters_backwards: false,
            };
            Generated { printer, template }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_fleet_and_profiles_share_templates() {
        let a = fleet(50, 7);
        let b = fleet(50, 7);
        let c = fleet(50, 8);
        assert_eq!(
            a.iter().map(|g| &g.printer.serial).collect::<Vec<_>>(),
            b.iter().map(|g| &g.printer.serial).collect::<Vec<_>>()
        );
        assert_ne!(
            a.iter().map(|g| &g.printer.serial).collect::<Vec<_>>(),
            c.iter().map(|g| &g.printer.serial).collect::<Vec<_>>()
        );
        let distinct: std::collections::HashSet<*const Template> =
            a.iter().map(|g| Arc::as_ptr(&g.template)).collect();
        assert!(
            distinct.len() <= 16,
            "{} templates for 50 devices",
            distinct.len()
        );
    }

    #[test]
    fn counter_faults_wrap_and_fall_back() {
        let count = |p: &Printer, t| match p.eval(Dynamic::LifeCount, t) {
            Some(SimValue::Counter32(c)) => u64::from(c),
            other => panic!("{other:?}"),
        };
        let mut p = fleet(1, 5)[0].printer.clone();
        p.set_counter_faults(true, false);
        assert!(count(&p, 0) > u64::from(u32::MAX) - 1000);
        assert!(count(&p, 3600) < 1000, "wrapped past 2^32");
        let mut p = fleet(1, 5)[0].printer.clone();
        p.set_counter_faults(false, true);
        assert!(
            count(&p, 3600) < count(&p, 3599),
            "fell back after a board swap"
        );
    }

    #[test]
    fn counters_grow_toner_cycles_and_alerts_come_and_go() {
        let g = &fleet(1, 3)[0].printer;
        let count = |t| match g.eval(Dynamic::LifeCount, t) {
            Some(SimValue::Counter32(c)) => u64::from(c),
            other => panic!("{other:?}"),
        };
        assert!(count(10 * 3600) > count(0), "pages grow with time");
        let level = |t| match g.eval(Dynamic::SupplyLevel(0), t) {
            Some(SimValue::Integer(l)) => l,
            other => panic!("{other:?}"),
        };
        // Over a long enough time the toner is both used up and replaced.
        let hours: Vec<i64> = (0..24 * 400).step_by(6).map(|h| level(h * 3600)).collect();
        assert!(
            hours.contains(&0) && hours.iter().any(|&l| l >= 95),
            "toner cycles"
        );
        assert!(
            hours.windows(2).any(|w| w[1] > w[0]),
            "a cartridge gets replaced"
        );
        // Within a few days an alert is raised and cleared.
        let active: Vec<bool> = (0..24 * 6 * 6)
            .map(|m| g.eval(Dynamic::AlertCode, m * 600).is_some())
            .collect();
        assert!(active.contains(&true) && active.contains(&false));
        let t = active.iter().position(|a| *a).unwrap() as u64 * 600;
        assert!(matches!(g.eval(Dynamic::ErrorState, t), Some(SimValue::Octets(b)) if b != [0, 0]));
        assert_eq!(g.eval(Dynamic::DeviceStatus, t), Some(SimValue::Integer(5)));
    }
}
