//! The printer model proven on real printers' recordings.
//!
//! Every `.snmprec` of `$DCA_CORPUS/librenms/snmprec` that has an expected
//! JSON is turned into a snapshot in-process and compared with LibreNMS's
//! results: supplies and trays (description, type, raw level and max, and
//! LibreNMS's number after LibreNMS's own rules), every page-counter sensor
//! (by OID and value), serial, model and error flags. A per-file table is
//! printed. Deliberate differences are listed in `DIFFERENCES` with their
//! reason (and in docs/snapshot.md); anything else fails.
//!
//! Also: every printer recording qualifies, every device in
//! `negatives/` is rejected, and every recording's vendor is the family its
//! file name gives.

use dca_core::printer::plan::Plan;
use dca_core::printer::{Correction, Qualification, Snapshot, Supply, Tray};
use dca_core::snmprec;
use serde_json::Value as Json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("DCA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    if dir.join("librenms/snmprec").is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "the corpus is missing at {} (set DCA_CORPUS)",
            dir.display()
        );
    }
    eprintln!("skipping: no corpus at {} (set DCA_CORPUS)", dir.display());
    None
}

fn snapshot_of(path: &Path) -> Snapshot {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rec = snmprec::parse(&text);
    rec.snapshot()
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// Known, deliberate differences from LibreNMS: (file, what, reason).
const DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "jetdirect_m880",
        "supply descriptions",
        "the recording holds net-snmp's hex-dump text, not the device's bytes; LibreNMS re-parsed that dump",
    ),
    (
        "zebra",
        "identity",
        "LibreNMS reports the ZebraNet print server's serial and model number (683.1.5/683.1.4); \
         the snapshot reports the printer's own (10642.200.19.5/.7)",
    ),
];

fn differs(file: &str, what: &str) -> bool {
    DIFFERENCES.iter().any(|(f, w, _)| *f == file && *w == what)
}

/// LibreNMS's displayed current value for a raw level and max (its rules,
/// from corpus/README.md): -3 shows as 50, -1 as 0, max <= 0 counts as 100,
/// Ricoh's -100 as 0; otherwise a rounded percentage.
fn librenms_current(level: i32, max: i32, brother_code: bool) -> i64 {
    if brother_code {
        return match level {
            0 => 100,
            1 => 5,
            2 => 0,
            _ => 1,
        };
    }
    let max = if max <= 0 { 100 } else { max };
    match level {
        -3 => 50,
        -1 | -100 => 0,
        l => (f64::from(l) * 100.0 / f64::from(max)).round() as i64,
    }
}

fn librenms_capacity(max: i32) -> i64 {
    if max <= 0 { 100 } else { i64::from(max) }
}

#[derive(Default)]
struct Score {
    matched: usize,
    total: usize,
    problems: Vec<String>,
}

impl Score {
    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        self.total += 1;
        if ok {
            self.matched += 1;
        } else {
            self.problems.push(problem());
        }
    }
    fn cell(&self) -> String {
        if self.total == 0 {
            "-".into()
        } else {
            format!("{}/{}", self.matched, self.total)
        }
    }
}

fn last_arc(oid: &str) -> u32 {
    oid.rsplit('.').next().unwrap().parse().unwrap()
}

fn check_supply(file: &str, s: &Supply, e: &Json, score: &mut Score) {
    let descr = e["supply_descr"].as_str().unwrap();
    if !differs(file, "supply descriptions") {
        score.check(s.description.as_str() == descr, || {
            format!(
                "supply {}: description {:?}, LibreNMS {:?}",
                s.index,
                s.description.as_str(),
                descr
            )
        });
    }
    let ty = e["supply_type"].as_str().unwrap();
    // LibreNMS says "markerSupply" when it did not read the type column.
    if ty != "markerSupply" {
        score.check(s.type_name() == Some(ty), || {
            format!(
                "supply {}: type {:?}, LibreNMS {ty}",
                s.index,
                s.type_name()
            )
        });
    }
    let (Some(level), Some(max)) = (s.reported_level, s.max_capacity) else {
        score.check(false, || format!("supply {}: no level or max", s.index));
        return;
    };
    score.check(
        librenms_capacity(max) == e["supply_capacity"].as_i64().unwrap(),
        || {
            format!(
                "supply {}: max {max}, LibreNMS capacity {}",
                s.index, e["supply_capacity"]
            )
        },
    );
    let brother_code = s.correction == Some(Correction::BrotherCode);
    score.check(
        librenms_current(level, max, brother_code) == e["supply_current"].as_i64().unwrap(),
        || {
            format!(
                "supply {}: level {level}/{max}, LibreNMS current {}",
                s.index, e["supply_current"]
            )
        },
    );
}

fn check_tray(t: &Tray, e: &Json, score: &mut Score) {
    let descr = e["supply_descr"].as_str().unwrap();
    score.check(t.name.as_str() == descr, || {
        format!(
            "tray {}: name {:?}, LibreNMS {descr:?}",
            t.index,
            t.name.as_str()
        )
    });
    let (Some(level), Some(max)) = (t.level, t.max_capacity) else {
        score.check(false, || format!("tray {}: no level or max", t.index));
        return;
    };
    score.check(
        librenms_capacity(max) == e["supply_capacity"].as_i64().unwrap(),
        || {
            format!(
                "tray {}: max {max}, LibreNMS {}",
                t.index, e["supply_capacity"]
            )
        },
    );
    score.check(
        librenms_current(level, max, false) == e["supply_current"].as_i64().unwrap(),
        || {
            format!(
                "tray {}: level {level}/{max}, LibreNMS {}",
                t.index, e["supply_current"]
            )
        },
    );
}

/// LibreNMS's hrPrinterDetectedErrorState state: the position (from 1) of
/// the first set bit of the first octet, most significant first; 0 if none.
fn librenms_error_state(snap: &Snapshot) -> i64 {
    let first = snap.status.error_state.first().copied().unwrap_or(0);
    if first == 0 {
        0
    } else {
        i64::from(first.leading_zeros()) + 1
    }
}

fn normalise(model: &str) -> String {
    let model = model.split(" [").next().unwrap_or(model);
    model
        .to_ascii_lowercase()
        .replace(" series", "")
        .trim()
        .to_string()
}

#[test]
fn snapshots_match_librenms() {
    let Some(corpus) = corpus() else { return };
    let dir = corpus.join("librenms");
    let mut table = String::from(
        "\nfile                     | printer | supplies | trays | counters | serial | model | flags\n",
    );
    let mut failures = Vec::new();
    for expected_path in files(&dir.join("expected"), "json") {
        let file = stem(&expected_path);
        let expected: Json =
            serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
        let snap = snapshot_of(&dir.join(format!("snmprec/{file}.snmprec")));
        let (mut supplies, mut trays, mut counters, mut flags) = (
            Score::default(),
            Score::default(),
            Score::default(),
            Score::default(),
        );
        let empty = vec![];
        let expected_supplies = expected["printer-supplies"]["discovery"]["printer_supplies"]
            .as_array()
            .unwrap_or(&empty);
        for e in expected_supplies {
            let oid = e["supply_oid"].as_str().unwrap();
            let index = last_arc(oid);
            if oid.starts_with(".1.3.6.1.2.1.43.8.2.1.10.") {
                match snap.trays.iter().find(|t| t.index == index) {
                    Some(t) => check_tray(t, e, &mut trays),
                    None => trays.check(false, || format!("tray {index} missing")),
                }
            } else {
                match snap.supplies.iter().find(|s| s.index == index) {
                    Some(s) => check_supply(&file, s, e, &mut supplies),
                    None => supplies.check(false, || format!("supply {index} missing")),
                }
            }
        }
        let sensors = expected["sensors"]["discovery"]["sensors"]
            .as_array()
            .unwrap_or(&empty);
        for s in sensors {
            let oid = s["sensor_oid"].as_str().unwrap().trim_start_matches('.');
            let value = s["sensor_current"].as_i64().unwrap();
            match (
                s["sensor_class"].as_str().unwrap(),
                s["sensor_type"].as_str().unwrap(),
            ) {
                ("count", _) => {
                    let found = snap.counters.iter().find(|c| c.oid.to_string() == oid);
                    counters.check(found.is_some_and(|c| c.value as i64 == value), || {
                        format!(
                            "counter {oid} = {value} ({}): ours {:?}",
                            s["sensor_descr"],
                            found.map(|c| (c.name, c.value))
                        )
                    });
                }
                ("state", "hrPrinterDetectedErrorState") => {
                    flags.check(librenms_error_state(&snap) == value, || {
                        format!(
                            "error state {:02x?}, LibreNMS state {value}",
                            snap.status.error_state
                        )
                    });
                }
                ("state", "hrDeviceStatus") => {
                    flags.check(snap.status.device_status == Some(value as i32), || {
                        format!(
                            "hrDeviceStatus {:?}, LibreNMS {value}",
                            snap.status.device_status
                        )
                    });
                }
                _ => {}
            }
        }
        let os = &expected["os"]["discovery"]["devices"][0];
        let identity_differs = differs(&file, "identity");
        let serial = match os["serial"].as_str() {
            Some(_) if identity_differs => "known",
            Some(want) => {
                let ok = snap.identity.serial.as_str() == want;
                if !ok {
                    failures.push(format!(
                        "{file}: serial {:?}, LibreNMS {want:?}",
                        snap.identity.serial.as_str()
                    ));
                }
                if ok { "ok" } else { "DIFF" }
            }
            None => "-",
        };
        let model = match os["hardware"].as_str() {
            Some(_) if identity_differs => "known",
            Some(want) => {
                let (ours, theirs) = (normalise(snap.identity.model.as_str()), normalise(want));
                let ok = !ours.is_empty() && (ours.contains(&theirs) || theirs.contains(&ours));
                if !ok {
                    failures.push(format!(
                        "{file}: model {:?}, LibreNMS {want:?}",
                        snap.identity.model.as_str()
                    ));
                }
                if ok { "ok" } else { "DIFF" }
            }
            None => "-",
        };
        for (what, score) in [
            ("supplies", &supplies),
            ("trays", &trays),
            ("counters", &counters),
            ("flags", &flags),
        ] {
            for p in &score.problems {
                failures.push(format!("{file}: {what}: {p}"));
            }
        }
        let _ = writeln!(
            table,
            "{file:<24} | {:<7} | {:<8} | {:<5} | {:<8} | {serial:<6} | {model:<5} | {}",
            if snap.is_printer() { "yes" } else { "no" },
            supplies.cell(),
            trays.cell(),
            counters.cell(),
            flags.cell()
        );
    }
    println!("{table}");
    for (file, what, why) in DIFFERENCES {
        println!("deliberate difference: {file}: {what}: {why}");
    }
    assert!(
        failures.is_empty(),
        "differences from LibreNMS:\n  {}",
        failures.join("\n  ")
    );
}

/// Recordings of printers that implement the Printer MIB: every file with
/// Printer-MIB objects. (zebra.snmprec is a ZebraNet print server without
/// the Printer MIB, epson-scanner a scanner: neither qualifies.)
#[test]
fn every_printer_qualifies_and_every_negative_is_rejected() {
    let Some(corpus) = corpus() else { return };
    let mut checked = 0;
    for path in files(&corpus.join("librenms/snmprec"), "snmprec") {
        let text = std::fs::read_to_string(&path).unwrap();
        let has_printer_mib = text.lines().any(|l| l.starts_with("1.3.6.1.2.1.43."));
        let snap = snapshot_of(&path);
        assert_eq!(
            snap.is_printer(),
            has_printer_mib,
            "{}: {:?}",
            path.display(),
            snap.qualification
        );
        checked += usize::from(has_printer_mib);
    }
    assert!(checked >= 15, "only {checked} printer recordings found");
    let negatives = files(&corpus.join("negatives/librenms"), "snmprec");
    assert!(negatives.len() >= 6);
    for path in negatives {
        let snap = snapshot_of(&path);
        assert_eq!(
            snap.qualification,
            Qualification::NotAPrinter,
            "{} was taken for a printer",
            path.display()
        );
    }
}

/// Device Web Access checks who is at an address with a walk of the
/// identity objects alone: on every recording it must name the device as a
/// full walk does, and qualify it the same.
#[test]
fn the_identity_plan_names_every_recording_as_a_full_walk_does() {
    let Some(corpus) = corpus() else { return };
    let mut paths = files(&corpus.join("librenms/snmprec"), "snmprec");
    paths.extend(files(&corpus.join("negatives/librenms"), "snmprec"));
    let mut named = 0;
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let rec = snmprec::parse(&text);
        let full = rec.snapshot_with(Plan::Full);
        let identity = rec.snapshot_with(Plan::Identity);
        assert_eq!(
            identity.identity.serial.as_str(),
            full.identity.serial.as_str(),
            "{}",
            path.display()
        );
        assert_eq!(
            identity.identity.vendor,
            full.identity.vendor,
            "{}",
            path.display()
        );
        named += usize::from(!full.identity.serial.is_empty());
    }
    assert!(named >= 15, "only {named} recordings name a serial");
}

/// The vendor family each recording's file name gives (LibreNMS's OS name).
fn family_of_file(name: &str) -> &'static str {
    let os = name.split('_').next().unwrap();
    match os {
        "brother" => "brother",
        "canonprinter" => "canon",
        "dell-laser" => "dell",
        "developprinter" => "develop",
        "epson" | "epson-scanner" => "epson",
        "fujifilmprinter" => "fujifilm",
        "gestetner" => "gestetner",
        "jetdirect" => "hp",
        "konica" => "konica_minolta",
        "kyocera" => "kyocera",
        "lanier" => "lanier",
        "lexmarkprinter" => "lexmark",
        "nrg" => "nrg",
        "okilan" => "oki",
        "ricoh" => "ricoh",
        "samsungprinter" => "samsung",
        "savin" => "savin",
        "sharp" => "sharp",
        "toshiba-tec" => "toshiba",
        "tsc" => "tsc",
        "utax" => "utax",
        "xerox" => "xerox",
        "zebra" => "zebra",
        other => panic!("no family known for file prefix {other}"),
    }
}

#[test]
fn every_recording_maps_to_its_vendor_family() {
    let Some(corpus) = corpus() else { return };
    let mut wrong = Vec::new();
    let all = files(&corpus.join("librenms/snmprec"), "snmprec");
    for path in &all {
        let name = stem(path);
        let snap = snapshot_of(path);
        let got = snap.identity.vendor.map(|v| v.id());
        if got != Some(family_of_file(&name)) {
            wrong.push(format!(
                "{name}: {got:?} (sysDescr {:?})",
                snap.identity.sys_descr.as_str()
            ));
        }
    }
    assert!(all.len() >= 50, "only {} recordings", all.len());
    assert!(
        wrong.is_empty(),
        "vendor families:\n  {}",
        wrong.join("\n  ")
    );
}
