//! `dca decode`: print an SNMP datagram given as hex.

use dca_core::snmp::{Message, Pdus, ScopedPduData, UsmSecurityParameters, Value, VarBinds};
use std::fmt::Write as _;
use std::process::ExitCode;

pub fn run(args: &[String]) -> ExitCode {
    let bytes = match parse_hex(&args.join("")) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("dca decode: {e}");
            return ExitCode::from(2);
        }
    };
    match describe(&bytes) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dca decode: not an SNMP message: {e}");
            ExitCode::from(1)
        }
    }
}

/// Hex digits, ignoring whitespace, colons and an optional `0x` prefix.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim().trim_start_matches("0x");
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b':')
        .collect();
    if digits.is_empty() {
        return Err("no hex digits given".into());
    }
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| format!("byte {i} is not hex: {:?}", String::from_utf8_lossy(pair)))
        })
        .collect()
}

fn describe(bytes: &[u8]) -> Result<String, dca_core::ber::DecodeError> {
    let mut out = String::new();
    match Message::decode(bytes)? {
        Message::Community(m) => {
            let _ = writeln!(
                out,
                "version: {:?}\ncommunity: {:?}",
                m.version,
                String::from_utf8_lossy(m.community)
            );
            match m.pdu {
                Pdus::Pdu(p) => {
                    let _ = writeln!(
                        out,
                        "pdu: {:?} request-id {} error-status {}{} error-index {}",
                        p.ty,
                        p.request_id,
                        p.error_status,
                        p.status().map(|s| format!(" ({s:?})")).unwrap_or_default(),
                        p.error_index
                    );
                    varbinds(&mut out, p.varbinds);
                }
                Pdus::TrapV1(t) => {
                    let _ = writeln!(
                        out,
                        "pdu: TrapV1 enterprise {} agent {:?} generic {} specific {} time {}",
                        t.enterprise, t.agent_addr, t.generic_trap, t.specific_trap, t.time_stamp
                    );
                    varbinds(&mut out, t.varbinds);
                }
            }
        }
        Message::V3(m) => {
            let h = m.header;
            let _ = writeln!(
                out,
                "version: V3\nmsg-id {} max-size {} flags 0x{:02x} security-model {}",
                h.msg_id, h.max_size, h.flags, h.security_model
            );
            match UsmSecurityParameters::decode(m.security_parameters) {
                Ok(u) => {
                    let _ = writeln!(
                        out,
                        "usm: engine {} boots {} time {} user {:?}",
                        hex(u.engine_id),
                        u.engine_boots,
                        u.engine_time,
                        String::from_utf8_lossy(u.user_name)
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "usm: unreadable ({e})");
                }
            }
            match m.data {
                ScopedPduData::Encrypted(b) => {
                    let _ = writeln!(out, "scoped pdu: encrypted, {} bytes", b.len());
                }
                ScopedPduData::Plaintext(s) => {
                    let _ = writeln!(
                        out,
                        "context: engine {} name {:?}\npdu: {:?} request-id {} error-status {} error-index {}",
                        hex(s.context_engine_id),
                        String::from_utf8_lossy(s.context_name),
                        s.pdu.ty,
                        s.pdu.request_id,
                        s.pdu.error_status,
                        s.pdu.error_index
                    );
                    varbinds(&mut out, s.pdu.varbinds);
                }
            }
        }
    }
    Ok(out)
}

fn varbinds(out: &mut String, list: VarBinds<'_>) {
    for (i, vb) in list.enumerate() {
        let _ = match vb {
            Ok(vb) => writeln!(out, "  {} = {}", vb.name, value(&vb.value)),
            Err(e) => writeln!(out, "  varbind {i}: {e}"),
        };
    }
}

fn value(v: &Value<'_>) -> String {
    match v {
        Value::OctetString(b) if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') => {
            format!("STRING: {:?}", String::from_utf8_lossy(b))
        }
        Value::OctetString(b) => format!("Hex-STRING: {}", hex(b)),
        Value::Opaque(b) => format!("Opaque: {}", hex(b)),
        Value::Unknown { tag, content } => format!("tag 0x{tag:02x}: {}", hex(content)),
        Value::ObjectId(o) => format!("OID: {o}"),
        Value::IpAddress(a) => format!("IpAddress: {}.{}.{}.{}", a[0], a[1], a[2], a[3]),
        // net-snmp's words for the rest, never a debug form.
        Value::Integer(i) => format!("INTEGER: {i}"),
        Value::Null => "NULL".into(),
        Value::Counter32(c) => format!("Counter32: {c}"),
        Value::Gauge32(g) => format!("Gauge32: {g}"),
        Value::TimeTicks(t) => format!("Timeticks: ({t})"),
        Value::Counter64(c) => format!("Counter64: {c}"),
        Value::NoSuchObject => "No Such Object available on this agent at this OID".into(),
        Value::NoSuchInstance => "No Such Instance currently exists at this OID".into(),
        Value::EndOfMibView => "No more variables left in this MIB View".into(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_input_is_forgiving_and_errors_name_the_byte() {
        assert_eq!(parse_hex("0x30 0a:ff").unwrap(), [0x30, 0x0a, 0xff]);
        assert!(parse_hex("").unwrap_err().contains("no hex"));
        assert!(parse_hex("abc").unwrap_err().contains("odd"));
        assert!(parse_hex("30zz").unwrap_err().contains("byte 1"));
    }

    #[test]
    fn describes_a_v2c_response_with_a_bad_varbind() {
        // v2c Response, community "public", request-id 7: sysDescr = "HP",
        // then a varbind with an empty INTEGER.
        let bytes = parse_hex(
            "30 2c 02 01 01 04 06 70 75 62 6c 69 63 a2 1f 02 01 07 02 01 00 02 01 00 30 14 \
             30 0b 06 07 2b 06 01 02 01 01 01 04 00 30 05 06 01 2b 02 00",
        )
        .unwrap();
        let text = describe(&bytes).unwrap();
        assert!(text.contains("community: \"public\""), "{text}");
        assert!(text.contains("Response request-id 7"), "{text}");
        assert!(text.contains("1.3.6.1.2.1.1.1 = STRING: \"\""), "{text}");
        assert!(
            text.contains("varbind 1: integer with no content octets"),
            "{text}"
        );
    }

    /// Values in net-snmp's words, never a debug form like `Counter32(5)`.
    #[test]
    fn values_are_written_as_net_snmp_writes_them() {
        assert_eq!(value(&Value::Integer(-2)), "INTEGER: -2");
        assert_eq!(value(&Value::Counter32(5)), "Counter32: 5");
        assert_eq!(
            value(&Value::Counter64(1 << 40)),
            "Counter64: 1099511627776"
        );
        assert_eq!(value(&Value::TimeTicks(42)), "Timeticks: (42)");
        assert!(value(&Value::EndOfMibView).starts_with("No more variables"));
    }
}
