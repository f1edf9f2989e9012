//! The provisioning block: what a device is told before its first boot
//! (where to look for printers, how often, with which communities; a static
//! address when no DHCP server answers; the cloud it delivers to, how it
//! recognises it, and the token it enrols with). The host writes it (`dca
//! provision`), the firmware reads it from a fixed place in flash, and both
//! use this one encoding.
//!
//! The block is `DCAP`, a little-endian `u32` length, then a CBOR map with
//! small integer keys (key 0 is the format version, 1). Keys a reader does
//! not know are skipped, so later versions add fields (the cloud, its pins,
//! an enrollment token) without breaking older images.

use crate::sync::Error;
use heapless::{String, Vec};
use minicbor::Decoder;
use minicbor::encode::write::Cursor;

/// The block's first four bytes.
pub const MAGIC: &[u8; 4] = b"DCAP";
/// The format version this code writes and reads.
pub const FORMAT: u64 = 1;
/// The longest target list (as `set_targets` takes it).
pub const MAX_TARGETS: usize = 256;
/// Communities tried in order, at most.
pub const MAX_COMMUNITIES: usize = 4;
/// The longest community.
pub const MAX_COMMUNITY: usize = 32;
/// The longest cloud URL.
pub const MAX_CLOUD_URL: usize = 128;
/// Key pins at most (the current key and those of planned rotations).
pub const MAX_PINS: usize = 4;
/// The largest CA certificate (DER; a P-256 CA takes about 500 bytes).
pub const MAX_CA: usize = 1024;
/// The longest enrollment token.
pub const MAX_TOKEN: usize = 128;

mod key {
    pub const FORMAT: u64 = 0;
    pub const TARGETS: u64 = 1;
    pub const COMMUNITIES: u64 = 2;
    pub const SCHEDULE_S: u64 = 3;
    pub const STATIC_V4: u64 = 4;
    pub const SWEEPS: u64 = 5;
    pub const PORT: u64 = 6;
    pub const CLOUD: u64 = 7;
}

mod cloud_key {
    pub const URL: u64 = 0;
    pub const PINS: u64 = 1;
    pub const CA: u64 = 2;
    pub const TOKEN: u64 = 3;
}

/// The cloud a device delivers to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cloud {
    /// `https://HOST[:PORT]`.
    pub url: String<MAX_CLOUD_URL>,
    /// SHA-256 of the public keys (SubjectPublicKeyInfo) the cloud may
    /// present; any one matches.
    pub pins: Vec<[u8; 32], MAX_PINS>,
    /// Or a CA (DER) its certificate chain must lead to.
    pub ca: Vec<u8, MAX_CA>,
    /// The one-time token the device enrols with on its first boot.
    pub token: String<MAX_TOKEN>,
}

/// An IPv4 address for the device when DHCP does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticV4 {
    pub address: [u8; 4],
    pub prefix: u8,
    pub gateway: Option<[u8; 4]>,
}

/// What a device is provisioned with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioning {
    /// Target expressions separated by commas (`poll::Target::parse`).
    pub targets: String<MAX_TARGETS>,
    pub communities: Vec<String<MAX_COMMUNITY>, MAX_COMMUNITIES>,
    /// Seconds between sweeps.
    pub schedule_s: u32,
    pub static_v4: Option<StaticV4>,
    /// Sweeps to run before stopping (a test image); 0 runs for ever.
    pub sweeps: u32,
    /// The printers' SNMP port.
    pub port: u16,
    /// Where readings go; a device without one only sweeps.
    pub cloud: Option<Cloud>,
}

impl Default for Provisioning {
    fn default() -> Self {
        let mut communities = Vec::new();
        let mut public = String::new();
        let _ = public.push_str("public");
        let _ = communities.push(public);
        Provisioning {
            targets: String::new(),
            communities,
            schedule_s: 900,
            static_v4: None,
            sweeps: 0,
            port: 161,
            cloud: None,
        }
    }
}

impl Provisioning {
    /// Writes the block (magic, length, CBOR) into `buf`; returns its length.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let (head, body) = buf.split_at_mut_checked(8).ok_or(Error::BufferTooSmall)?;
        let mut e = minicbor::Encoder::new(Cursor::new(body));
        let entries = 6u64
            .saturating_add(u64::from(self.static_v4.is_some()))
            .saturating_add(u64::from(self.cloud.is_some()));
        e.map(entries)?;
        e.u64(key::FORMAT)?.u64(FORMAT)?;
        e.u64(key::TARGETS)?.str(&self.targets)?;
        e.u64(key::COMMUNITIES)?
            .array(self.communities.len() as u64)?;
        for c in &self.communities {
            e.str(c)?;
        }
        e.u64(key::SCHEDULE_S)?.u32(self.schedule_s)?;
        if let Some(s) = &self.static_v4 {
            e.u64(key::STATIC_V4)?.array(3)?;
            e.bytes(&s.address)?.u8(s.prefix)?;
            match &s.gateway {
                Some(g) => e.bytes(g)?,
                None => e.null()?,
            };
        }
        e.u64(key::SWEEPS)?.u32(self.sweeps)?;
        e.u64(key::PORT)?.u16(self.port)?;
        if let Some(c) = &self.cloud {
            e.u64(key::CLOUD)?.map(4)?;
            e.u64(cloud_key::URL)?.str(&c.url)?;
            e.u64(cloud_key::PINS)?.array(c.pins.len() as u64)?;
            for pin in &c.pins {
                e.bytes(pin)?;
            }
            e.u64(cloud_key::CA)?.bytes(&c.ca)?;
            e.u64(cloud_key::TOKEN)?.str(&c.token)?;
        }
        let len = e.into_writer().position();
        let (magic, size) = head.split_at_mut(4);
        magic.copy_from_slice(MAGIC);
        size.copy_from_slice(
            &u32::try_from(len)
                .map_err(|_| Error::BufferTooSmall)?
                .to_le_bytes(),
        );
        Ok(len.saturating_add(8))
    }

    /// Reads a block; `None` when `bytes` does not start with one (an
    /// unprovisioned device), an error when it does but cannot be read.
    pub fn decode(bytes: &[u8]) -> Option<Result<Provisioning, Error>> {
        let (magic, rest) = bytes.split_first_chunk::<4>()?;
        if magic != MAGIC {
            return None;
        }
        Some(Self::decode_body(rest))
    }

    fn decode_body(rest: &[u8]) -> Result<Provisioning, Error> {
        let (size, rest) = rest
            .split_first_chunk::<4>()
            .ok_or(Error::Missing("length"))?;
        let len =
            usize::try_from(u32::from_le_bytes(*size)).map_err(|_| Error::Invalid("length"))?;
        let body = rest.get(..len).ok_or(Error::Invalid("length"))?;
        let mut d = Decoder::new(body);
        let mut p = Provisioning::default();
        let mut format = None;
        let entries = d.map()?.ok_or(Error::Invalid("indefinite-length map"))?;
        for _ in 0..entries {
            match d.u64()? {
                key::FORMAT => format = Some(d.u64()?),
                key::TARGETS => {
                    p.targets =
                        String::try_from(d.str()?).map_err(|_| Error::TooMany("targets"))?;
                }
                key::COMMUNITIES => {
                    p.communities.clear();
                    let n = d
                        .array()?
                        .ok_or(Error::Invalid("indefinite-length array"))?;
                    for _ in 0..n {
                        let c = String::try_from(d.str()?)
                            .map_err(|_| Error::Invalid("community (at most 32 bytes)"))?;
                        p.communities
                            .push(c)
                            .map_err(|_| Error::TooMany("communities"))?;
                    }
                }
                key::SCHEDULE_S => p.schedule_s = d.u32()?,
                key::STATIC_V4 => {
                    if d.array()? != Some(3) {
                        return Err(Error::Invalid("static address"));
                    }
                    let address = d
                        .bytes()?
                        .try_into()
                        .map_err(|_| Error::Invalid("static address"))?;
                    let prefix = d.u8()?;
                    if prefix > 32 {
                        return Err(Error::Invalid("prefix length"));
                    }
                    let gateway = if d.datatype()? == minicbor::data::Type::Null {
                        d.null()?;
                        None
                    } else {
                        Some(
                            d.bytes()?
                                .try_into()
                                .map_err(|_| Error::Invalid("gateway"))?,
                        )
                    };
                    p.static_v4 = Some(StaticV4 {
                        address,
                        prefix,
                        gateway,
                    });
                }
                key::SWEEPS => p.sweeps = d.u32()?,
                key::PORT => p.port = d.u16()?,
                key::CLOUD => p.cloud = Some(decode_cloud(&mut d)?),
                _ => d.skip()?,
            }
        }
        if d.position() != body.len() {
            return Err(Error::Cbor { at: d.position() });
        }
        match format {
            Some(FORMAT) => Ok(p),
            Some(other) => Err(Error::Version(other)),
            None => Err(Error::Missing("format")),
        }
    }
}

fn decode_cloud(d: &mut Decoder<'_>) -> Result<Cloud, Error> {
    let mut c = Cloud::default();
    let entries = d.map()?.ok_or(Error::Invalid("indefinite-length map"))?;
    for _ in 0..entries {
        match d.u64()? {
            cloud_key::URL => {
                c.url = String::try_from(d.str()?).map_err(|_| Error::Invalid("cloud URL"))?;
            }
            cloud_key::PINS => {
                let n = d
                    .array()?
                    .ok_or(Error::Invalid("indefinite-length array"))?;
                for _ in 0..n {
                    let pin = d.bytes()?.try_into().map_err(|_| Error::Invalid("pin"))?;
                    c.pins.push(pin).map_err(|_| Error::TooMany("pins"))?;
                }
            }
            cloud_key::CA => {
                c.ca = Vec::from_slice(d.bytes()?).map_err(|_| Error::Invalid("CA"))?;
            }
            cloud_key::TOKEN => {
                c.token =
                    String::try_from(d.str()?).map_err(|_| Error::Invalid("enrollment token"))?;
            }
            _ => d.skip()?,
        }
    }
    if c.url.is_empty() {
        return Err(Error::Missing("cloud URL"));
    }
    if c.pins.is_empty() && c.ca.is_empty() {
        return Err(Error::Missing("cloud pins or CA"));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_reads_back_and_refuses_what_is_not_one() {
        let p = Provisioning {
            targets: String::try_from("10.77.0.64/26,10.77.0.200").unwrap(),
            static_v4: Some(StaticV4 {
                address: [10, 77, 0, 9],
                prefix: 24,
                gateway: None,
            }),
            sweeps: 1,
            port: 1161,
            cloud: Some(Cloud {
                url: String::try_from("https://10.77.0.1:8443").unwrap(),
                pins: Vec::from_slice(&[[1; 32], [2; 32]]).unwrap(),
                ca: Vec::new(),
                token: String::try_from("tok-123").unwrap(),
            }),
            ..Provisioning::default()
        };
        let mut buf = [0u8; 512];
        let n = p.encode(&mut buf).unwrap();
        assert_eq!(Provisioning::decode(&buf[..n]), Some(Ok(p.clone())));
        // Erased flash is not a block.
        assert_eq!(Provisioning::decode(&[0xff; 64]), None);
        // A cut block is an error, never a panic.
        for cut in 4..n {
            assert!(
                matches!(Provisioning::decode(&buf[..cut]), Some(Err(_))),
                "cut at {cut}"
            );
        }
        assert_eq!(p.encode(&mut buf[..16]), Err(Error::BufferTooSmall));
    }

    #[test]
    fn a_cloud_needs_its_url_and_a_way_to_know_it() {
        let mut p = Provisioning {
            cloud: Some(Cloud {
                url: String::try_from("https://cloud.example").unwrap(),
                ..Cloud::default()
            }),
            ..Provisioning::default()
        };
        let mut buf = [0u8; 512];
        let n = p.encode(&mut buf).unwrap();
        assert_eq!(
            Provisioning::decode(&buf[..n]),
            Some(Err(Error::Missing("cloud pins or CA")))
        );
        if let Some(c) = p.cloud.as_mut() {
            c.ca = Vec::from_slice(&[0x30, 0x00]).unwrap();
        }
        let n = p.encode(&mut buf).unwrap();
        assert_eq!(Provisioning::decode(&buf[..n]), Some(Ok(p)));
    }
}
