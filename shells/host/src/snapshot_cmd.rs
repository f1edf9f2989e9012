//! `dca snapshot FILE.snmprec`: the snapshot a recording yields, as JSON.
//!
//! The same model the poller uses, fed from an snmpsim recording instead of
//! a live device: for checking what the agent makes of a device someone
//! recorded in the field.

use crate::snapshot_json::to_json;
use dca_core::printer::Snapshot;
use dca_core::snmprec;
use std::process::ExitCode;

pub fn run(file: &str, address: Option<&str>, pretty: bool) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("dca snapshot: cannot read {file}: {e}");
            return ExitCode::from(1);
        }
    };
    let (snapshot, skipped) = snapshot_of(&text);
    for e in &skipped {
        eprintln!("dca snapshot: {file}: {e} (skipped)");
    }
    let json = to_json(address, &snapshot);
    let out = if pretty {
        serde_json::to_string_pretty(&json)
    } else {
        serde_json::to_string(&json)
    };
    match out {
        Ok(s) => println!("{s}"),
        Err(e) => {
            eprintln!("dca snapshot: {e}");
            return ExitCode::from(1);
        }
    }
    if snapshot.is_printer() {
        ExitCode::SUCCESS
    } else {
        eprintln!("dca snapshot: {file}: not a printer (no Printer-MIB data for a printer device)");
        ExitCode::from(3)
    }
}

/// Builds a snapshot from a recording's text; returns the lines skipped.
pub fn snapshot_of(text: &str) -> (Snapshot, Vec<snmprec::LineError>) {
    let rec = snmprec::parse(text);
    (rec.snapshot(), rec.errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn corpus_file(name: &str) -> Option<String> {
        let dir = std::env::var_os("DCA_CORPUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
            });
        let path = dir.join("librenms/snmprec").join(name);
        match std::fs::read_to_string(&path) {
            Ok(t) => Some(t),
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("{}: {e}", path.display())
            }
            Err(_) => {
                eprintln!("skipping: no corpus at {}", path.display());
                None
            }
        }
    }

    #[test]
    fn hp_mfp_snapshot_follows_the_json_contract() {
        let Some(text) = corpus_file("jetdirect_m130nw.snmprec") else {
            return;
        };
        let (snap, skipped) = snapshot_of(&text);
        assert!(skipped.is_empty(), "{skipped:?}");
        let j = to_json(Some("127.1.0.5:1161"), &snap);
        assert_eq!(j["schema"], 1);
        assert_eq!(j["address"], "127.1.0.5:1161");
        let id = &j["identity"];
        assert_eq!(id["vendor"], "hp");
        assert_eq!(id["serial"], "VNCRC48198");
        assert_eq!(id["model"], "LaserJet MFP M129-M134");
        assert_eq!(id["sys_object_id"], "1.3.6.1.4.1.11.2.3.9.1");
        assert!(
            id["mac"].as_str().unwrap().split(':').count() == 6,
            "{}",
            id["mac"]
        );
        let total = j["counters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "total")
            .unwrap();
        assert_eq!(total["value"], 15232);
        assert_eq!(total["oid"], "1.3.6.1.2.1.43.10.2.1.4.1.1");
        let s0 = &j["supplies"][0];
        for key in [
            "index",
            "description",
            "type",
            "class",
            "unit",
            "colorant",
            "max_capacity",
            "level",
            "state",
            "percent",
        ] {
            assert!(s0.get(key).is_some(), "supply lacks {key}: {s0}");
        }
        assert!(j["status"]["error_flags"].is_array());
        assert!(
            ["running", "warning", "unknown", "testing", "down"]
                .contains(&j["status"]["device_status"].as_str().unwrap())
        );
    }

    #[test]
    fn brother_status_codes_give_a_state_and_no_percent() {
        let Some(text) = corpus_file("brother_hl5370dw.snmprec") else {
            return;
        };
        let (snap, _) = snapshot_of(&text);
        let j = to_json(None, &snap);
        let toner = &j["supplies"][0];
        assert_eq!(toner["correction"], "brother_status_code");
        assert_eq!(toner["state"], "ok");
        assert!(toner["percent"].is_null());
        assert_eq!(toner["max_capacity"], -2);
    }
}
