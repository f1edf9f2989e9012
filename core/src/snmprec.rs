//! Reader for snmpsim's `.snmprec` recordings (host side, `std` feature).
//!
//! One line per OID: `OID|TYPE|VALUE`. TYPE is the BER tag in decimal
//! (2 INTEGER, 4 OCTET STRING, 5 NULL, 6 OID, 64 IpAddress, 65 Counter32,
//! 66 Gauge32, 67 TimeTicks, 68 Opaque, 70 Counter64, 128-130 the
//! exceptions); a trailing `x` means VALUE is hex. Lines that use snmpsim
//! variation modules (`TYPE:module|...`) are reported and skipped, as are
//! lines that cannot be read: each error names its line, and the rest of the
//! file still loads.
//!
//! Each record keeps the value as BER content octets, so the codec's own
//! [`Value::decode`] reads it exactly as it would read it off the wire.

use crate::ber::{Oid, encoded_signed_len, encoded_unsigned_len};
use crate::snmp::Value;
use core::fmt;
use std::string::String;
use std::vec::Vec;

/// One recorded OID and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub oid: Oid,
    /// The value's identifier octet.
    pub tag: u8,
    /// The value's BER content octets.
    pub content: Vec<u8>,
}

impl Record {
    /// The value, decoded by the codec.
    pub fn value(&self) -> Value<'_> {
        Value::decode(self.tag, &self.content, 0).unwrap_or(Value::Unknown {
            tag: self.tag,
            content: &self.content,
        })
    }
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Records in file order, and the lines that were skipped.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub records: Vec<Record>,
    pub errors: Vec<LineError>,
}

impl Recording {
    /// The snapshot the printer model makes of the recorded device, as a
    /// walk of it would.
    pub fn snapshot(&self) -> crate::printer::Snapshot {
        self.snapshot_where(|_| true)
    }

    /// The snapshot of the records a walk with `plan` reads: its scalars,
    /// and what lies inside its subtrees.
    pub fn snapshot_with(&self, plan: crate::printer::plan::Plan) -> crate::printer::Snapshot {
        use crate::printer::plan::Read;
        let reads: Vec<Read> = plan.reads().collect();
        self.snapshot_where(|oid| {
            reads.iter().any(|read| match read {
                Read::Get(arcs) => oid.arcs().eq(arcs.iter().copied()),
                Read::Walk(root) => {
                    oid.len() > root.len() && oid.starts_with_arcs(root.iter().copied())
                }
            })
        })
    }

    fn snapshot_where(
        &self,
        read: impl Fn(crate::ber::OidRef<'_>) -> bool,
    ) -> crate::printer::Snapshot {
        let mut b = crate::printer::SnapshotBuilder::new();
        for r in self.records.iter().filter(|r| read(r.oid.as_oid_ref())) {
            b.push(&crate::snmp::VarBind::new(r.oid.as_oid_ref(), r.value()));
        }
        b.finish()
    }
}

/// Parses a whole recording.
pub fn parse(text: &str) -> Recording {
    let mut rec = Recording::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Ok(r) => rec.records.push(r),
            Err(reason) => rec.errors.push(LineError {
                line: i.saturating_add(1),
                reason,
            }),
        }
    }
    rec
}

fn parse_line(line: &str) -> Result<Record, String> {
    let mut parts = line.splitn(3, '|');
    let (Some(oid), Some(ty), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(std::format!("expected OID|TYPE|VALUE, got {line:?}"));
    };
    let oid: Oid = oid
        .trim()
        .parse()
        .map_err(|e| std::format!("bad OID {oid:?}: {e}"))?;
    if ty.contains(':') {
        return Err(std::format!("variation module {ty:?} is not supported"));
    }
    let (digits, hex) = match ty.strip_suffix('x') {
        Some(d) => (d, true),
        None => (ty, false),
    };
    let tag: u8 = digits
        .parse()
        .map_err(|_| std::format!("bad type {ty:?}"))?;
    let raw = || -> Result<Vec<u8>, String> {
        if hex {
            from_hex(value)
        } else {
            Ok(value.as_bytes().to_vec())
        }
    };
    let content = match tag {
        2 => signed(
            value
                .trim()
                .parse()
                .map_err(|_| std::format!("bad INTEGER {value:?}"))?,
        ),
        4 | 68 => raw()?,
        5 | 128..=130 => Vec::new(),
        6 => {
            let o: Oid = value
                .trim()
                .parse()
                .map_err(|e| std::format!("bad OID value {value:?}: {e}"))?;
            o.as_ber().to_vec()
        }
        64 if hex => raw()?,
        64 => {
            let octets: Result<Vec<u8>, _> =
                value.trim().split('.').map(str::parse::<u8>).collect();
            match octets {
                Ok(o) if o.len() == 4 => o,
                _ => return Err(std::format!("bad IpAddress {value:?}")),
            }
        }
        65..=67 | 70 => unsigned(
            value
                .trim()
                .parse()
                .map_err(|_| std::format!("bad unsigned {value:?}"))?,
        ),
        other => return Err(std::format!("unsupported type {other}")),
    };
    Ok(Record { oid, tag, content })
}

fn signed(v: i64) -> Vec<u8> {
    let be = v.to_be_bytes();
    be.get(be.len().saturating_sub(encoded_signed_len(v))..)
        .unwrap_or_default()
        .to_vec()
}

fn unsigned(v: u64) -> Vec<u8> {
    let n = encoded_unsigned_len(v);
    let mut out = std::vec![0u8; n.saturating_sub(8)];
    let be = v.to_be_bytes();
    out.extend_from_slice(
        be.get(8usize.saturating_sub(n.min(8))..)
            .unwrap_or_default(),
    );
    out
}

fn from_hex(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return Err(std::format!("odd-length hex value {s:?}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i.saturating_add(2))
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| std::format!("bad hex value {s:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn reads_every_type_and_reports_bad_lines() {
        let rec = parse(
            "1.3.6.1.2.1.1.1.0|4|HP LaserJet\n\
             1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.11.2.3.9.1\n\
             1.3.6.1.2.1.1.3.0|67|185448527\n\
             1.3.6.1.2.1.2.2.1.6.2|4x|9457A534DF33\n\
             1.3.6.1.2.1.43.11.1.1.9.1.1|2|-3\n\
             1.3.6.1.2.1.4.20.1.1.10.0.0.7|64|10.0.0.7\n\
             1.3.6.1.2.1.31.1.1.1.6.1|70|18446744073709551615\n\
             1.3.6.1.2.1.43.10.2.1.4.1.1|65|4294967295\n\
             1.3.6.1.2.1.1.9.0|2:numeric|1\n\
             not an oid|4|x\n\
             1.3.6.1.2.1.1.8.0|4x|abc\n",
        );
        let values: Vec<Value<'_>> = rec.records.iter().map(Record::value).collect();
        assert_eq!(values[0], Value::OctetString(b"HP LaserJet"));
        assert!(
            matches!(values[1], Value::ObjectId(o) if o.to_string() == "1.3.6.1.4.1.11.2.3.9.1")
        );
        assert_eq!(values[2], Value::TimeTicks(185_448_527));
        assert_eq!(
            values[3],
            Value::OctetString(&[0x94, 0x57, 0xa5, 0x34, 0xdf, 0x33])
        );
        assert_eq!(values[4], Value::Integer(-3));
        assert_eq!(values[5], Value::IpAddress([10, 0, 0, 7]));
        assert_eq!(values[6], Value::Counter64(u64::MAX));
        assert_eq!(values[7], Value::Counter32(u32::MAX));
        let lines: Vec<usize> = rec.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [9, 10, 11]);
        assert!(
            rec.errors[0].to_string().contains("variation module"),
            "{}",
            rec.errors[0]
        );
    }
}
