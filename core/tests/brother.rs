//! Brother's private counter blob, proven on the Brother fixtures of the
//! corpus (`$DCA_CORPUS/brother`): each fixture is an OID -> value map (blobs
//! as lists of hex items); `expected-snapshot.ambr` holds another library's
//! decoded counters. Every counter it reports must appear in our snapshot.

use dca_core::ber::Oid;
use dca_core::printer::{Snapshot, SnapshotBuilder};
use dca_core::snmp::{Value, VarBind};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("DCA_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus"));
    if dir.join("brother/fixtures").is_dir() {
        return Some(dir.join("brother"));
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "the corpus is missing at {} (set DCA_CORPUS)",
            dir.display()
        );
    }
    eprintln!("skipping: no corpus at {}", dir.display());
    None
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Builds a snapshot from a fixture map; returns None for fixtures that are
/// not JSON objects (the corpus has a deliberately invalid one).
fn snapshot(fixture: &Json) -> Option<Snapshot> {
    let mut b = SnapshotBuilder::new();
    for (oid, value) in fixture.as_object()? {
        let Ok(oid) = oid.parse::<Oid>() else {
            continue;
        };
        let bytes;
        let value = match value {
            Json::Array(items) => {
                bytes = items
                    .iter()
                    .filter_map(Json::as_str)
                    .flat_map(hex)
                    .collect::<Vec<u8>>();
                Value::OctetString(&bytes)
            }
            Json::Number(n) => Value::Integer(n.as_i64()?),
            // The fixtures lose SNMP types: numbers are stored as strings.
            Json::String(s) if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) => {
                Value::Integer(s.parse().ok()?)
            }
            Json::String(s) => {
                bytes = s.as_bytes().to_vec();
                Value::OctetString(&bytes)
            }
            _ => continue,
        };
        b.push(&VarBind::new(oid.as_oid_ref(), value));
    }
    Some(b.finish())
}

/// The counters of one `BrotherSensors(...)` entry of the snapshot file.
fn expected_counters(ambr: &str, model: &str) -> Vec<(String, u64)> {
    let marker = format!("# name: test_{model}_model.1\n");
    let Some(start) = ambr.find(&marker) else {
        return vec![];
    };
    let body = &ambr[start + marker.len()..];
    let body = &body[..body.find('\n').unwrap_or(body.len())];
    body.split([',', '('])
        .filter_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            Some((k.to_string(), v.trim_end_matches(')').parse().ok()?))
        })
        .filter(|(k, _): &(String, u64)| k.ends_with("_counter"))
        .collect()
}

fn our_name(theirs: &str) -> Option<&'static str> {
    Some(match theirs {
        "bw_counter" => "mono",
        "color_counter" => "color",
        "duplex_unit_pages_counter" => "duplex",
        "black_counter" => "impressions_black",
        "cyan_counter" => "impressions_cyan",
        "magenta_counter" => "impressions_magenta",
        "yellow_counter" => "impressions_yellow",
        "image_counter" => "image_total",
        _ => return None,
    })
}

#[test]
fn brother_counters_match_the_reference_decoder() {
    let Some(dir) = corpus() else { return };
    let ambr = std::fs::read_to_string(dir.join("expected-snapshot.ambr")).unwrap();
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(dir.join("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    fixtures.sort();
    let (mut checked, mut problems) = (0, Vec::new());
    for path in fixtures {
        let name = path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .replace('-', "_");
        let Ok(json) = serde_json::from_str::<Json>(&std::fs::read_to_string(&path).unwrap())
        else {
            continue;
        };
        let Some(snap) = snapshot(&json) else {
            continue;
        };
        for (theirs, value) in expected_counters(&ambr, &name) {
            let found = if theirs == "page_counter" {
                // Brother's own total where the blob has one, else the
                // standard life count (the reference library does the same).
                snap.counter("total_vendor")
                    .or_else(|| snap.counter("total"))
            } else if let Some(ours) = our_name(&theirs) {
                snap.counter(ours)
            } else {
                continue; // drum and part counters are not page counters
            };
            checked += 1;
            if found.map(|c| c.value) != Some(value) {
                problems.push(format!(
                    "{name}: {theirs} = {value}, ours {:?}",
                    found.map(|c| (c.name, c.value))
                ));
            }
        }
    }
    println!("{checked} Brother counters compared");
    assert!(checked >= 20, "only {checked} counters compared");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
