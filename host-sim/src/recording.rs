//! Emulated devices from snmpsim `.snmprec` recordings.

use crate::mib::{SimValue, Slot, Template};
use dca_core::snmp::Value;
use dca_core::snmprec;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A recording loaded as a template, with the lines that were skipped.
#[derive(Debug)]
pub struct Loaded {
    pub name: String,
    pub template: Arc<Template>,
    /// "FILE: line N: reason" for each line skipped.
    pub warnings: Vec<String>,
}

/// Converts a decoded value; exceptions and unknown tags have no place in
/// a recording that an agent serves.
pub fn sim_value(v: Value<'_>) -> Option<SimValue> {
    Some(match v {
        Value::Integer(i) => SimValue::Integer(i),
        Value::OctetString(b) => SimValue::Octets(b.to_vec()),
        Value::Null => SimValue::Null,
        Value::ObjectId(o) => SimValue::Oid(o.arcs().collect()),
        Value::IpAddress(a) => SimValue::Ip(a),
        Value::Counter32(c) => SimValue::Counter32(c),
        Value::Gauge32(c) => SimValue::Gauge32(c),
        Value::TimeTicks(c) => SimValue::TimeTicks(c),
        Value::Opaque(b) => SimValue::Opaque(b.to_vec()),
        Value::Counter64(c) => SimValue::Counter64(c),
        _ => return None,
    })
}

pub fn load_file(path: &Path) -> Result<Loaded, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rec = snmprec::parse(&text);
    let mut warnings: Vec<String> = rec
        .errors
        .iter()
        .map(|e| format!("{}: {e}", path.display()))
        .collect();
    let mut entries = Vec::with_capacity(rec.records.len());
    for r in &rec.records {
        match sim_value(r.value()) {
            Some(v) => entries.push((r.oid.arcs().collect(), Slot::Fixed(v))),
            None => warnings.push(format!(
                "{}: {}: value of tag {:#x} cannot be served",
                path.display(),
                r.oid,
                r.tag
            )),
        }
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Loaded {
        name,
        template: Arc::new(Template::new(entries)),
        warnings,
    })
}

/// Every `.snmprec` in `dir`, sorted by file name. A file that cannot be
/// read is reported and skipped; an empty directory is an error.
pub fn load_dir(dir: &Path) -> Result<(Vec<Loaded>, Vec<String>), String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "snmprec"))
        .collect();
    paths.sort();
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        match load_file(&p) {
            Ok(l) if l.template.is_empty() => {
                problems.push(format!("{}: no usable lines", p.display()))
            }
            Ok(l) => loaded.push(l),
            Err(e) => problems.push(e),
        }
    }
    if loaded.is_empty() {
        return Err(format!("{}: no .snmprec recordings found", dir.display()));
    }
    Ok((loaded, problems))
}
