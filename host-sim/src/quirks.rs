//! Quirky encodings real printers send, injected as byte rewrites on the
//! way out: the response is parsed as BER, its primitives rewritten, and
//! every length recomputed around them.

use dca_core::ber::{Reader, tag};

/// Which quirks to apply to every response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Counter32, Gauge32 and TimeTicks above 2^31 lose their leading zero
    /// octet (`41 04 ff ff ff ff`), as some printers send them.
    pub unsigned_without_zero: bool,
    /// Every length in the long form (`82 00 05`).
    pub long_lengths: bool,
    /// INTEGERs padded to four octets (`02 04 00 00 00 05`).
    pub padded_integers: bool,
}

impl Quirks {
    pub fn any(&self) -> bool {
        self.unsigned_without_zero || self.long_lengths || self.padded_integers
    }

    /// Rewrites an encoded message; returns it unchanged if it cannot be
    /// parsed (it was produced by rasn-snmp, so it always can).
    pub fn apply(&self, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(message.len() + 64);
        if self.rewrite(message, &mut out) {
            out
        } else {
            message.to_vec()
        }
    }

    fn rewrite(&self, bytes: &[u8], out: &mut Vec<u8>) -> bool {
        let mut r = Reader::new(bytes);
        while !r.is_empty() {
            let Ok(tlv) = r.read_tlv() else { return false };
            let constructed = tlv.tag == tag::SEQUENCE || (0xa0..=0xa8).contains(&tlv.tag);
            let content = if constructed {
                let mut inner = Vec::new();
                if !self.rewrite(tlv.content, &mut inner) {
                    return false;
                }
                inner
            } else {
                self.primitive(tlv.tag, tlv.content)
            };
            out.push(tlv.tag);
            self.length(content.len(), out);
            out.extend_from_slice(&content);
        }
        true
    }

    fn primitive(&self, t: u8, content: &[u8]) -> Vec<u8> {
        match (t, content) {
            (0x41..=0x43, [0, rest @ ..])
                if self.unsigned_without_zero && rest.len() == 4 && rest[0] & 0x80 != 0 =>
            {
                rest.to_vec()
            }
            (tag::INTEGER, c) if self.padded_integers && c.len() < 4 => {
                let fill = if c.first().is_some_and(|b| b & 0x80 != 0) {
                    0xff
                } else {
                    0x00
                };
                let mut v = vec![fill; 4 - c.len()];
                v.extend_from_slice(c);
                v
            }
            _ => content.to_vec(),
        }
    }

    fn length(&self, len: usize, out: &mut Vec<u8>) {
        if len < 0x80 && !self.long_lengths {
            out.push(len as u8);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dca_core::ber::Oid;
    use dca_core::snmp::{CommunityMessage, Message, Pdu, PduType, Pdus, Value, VarBind, Version};

    #[test]
    fn rewrites_keep_the_message_readable_by_a_lenient_decoder() {
        // v2c Response: Counter32 4294967295 and INTEGER 5.
        let (a, b): (Oid, Oid) = ("1.3.6.1".parse().unwrap(), "1.3.6.2".parse().unwrap());
        let vbs = [
            VarBind::new(a.as_oid_ref(), Value::Counter32(u32::MAX)),
            VarBind::new(b.as_oid_ref(), Value::Integer(5)),
        ];
        let m = CommunityMessage {
            version: Version::V2c,
            community: b"public",
            pdu: Pdus::Pdu(Pdu::new(PduType::Response, 7, &vbs[..])),
        };
        let mut buf = [0u8; 200];
        let n = m.encode(&mut buf).unwrap();
        let msg = &buf[..n];
        assert!(Message::decode(msg).is_ok());
        let q = Quirks {
            unsigned_without_zero: true,
            long_lengths: true,
            padded_integers: true,
        };
        let out = q.apply(msg);
        assert!(
            out.windows(6)
                .any(|w| w == [0x41, 0x82, 0x00, 0x04, 0xff, 0xff]),
            "{out:02x?}"
        );
        assert!(
            out.windows(7)
                .any(|w| w == [0x02, 0x82, 0x00, 0x04, 0x00, 0x00, 0x00]),
            "{out:02x?}"
        );
        let m = Message::decode(&out).unwrap();
        let values: Vec<Value<'_>> = m
            .varbinds()
            .cloned()
            .unwrap()
            .map(|v| v.unwrap().value)
            .collect();
        assert_eq!(values, [Value::Counter32(u32::MAX), Value::Integer(5)]);
        assert_eq!(Quirks::default().apply(msg), msg);
    }
}
