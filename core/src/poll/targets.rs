//! Scan targets: single addresses, CIDR blocks and address ranges, minus
//! exclusions, in address order. Host names are resolved by the shell and
//! arrive here as single addresses.

use core::net::{IpAddr, Ipv4Addr};

/// One target expression, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// An inclusive range of IPv4 addresses (a CIDR block, a range, or one address).
    V4 { first: u32, last: u32 },
    /// A single address of any family (IPv6 is never swept by range).
    Single(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    /// Not an address, CIDR block (`a.b.c.d/n`) or range (`a.b.c.d-e.f.g.h` or `a.b.c.d-h`).
    Syntax,
    /// A prefix length above 32.
    BadPrefix,
    /// A range whose end comes before its start.
    Backwards,
}

impl TargetError {
    pub fn describe(self) -> &'static str {
        match self {
            TargetError::Syntax => {
                "not an address, CIDR block (a.b.c.d/n) or range (a.b.c.d-e.f.g.h, a.b.c.d-h)"
            }
            TargetError::BadPrefix => "prefix length above 32",
            TargetError::Backwards => "range ends before it starts",
        }
    }
}

impl Target {
    pub fn parse(s: &str) -> Result<Self, TargetError> {
        let s = s.trim();
        if let Some((addr, prefix)) = s.split_once('/') {
            let base = u32::from(addr.parse::<Ipv4Addr>().map_err(|_| TargetError::Syntax)?);
            let len: u32 = prefix.parse().map_err(|_| TargetError::Syntax)?;
            if len > 32 {
                return Err(TargetError::BadPrefix);
            }
            let host_bits = 32u32.saturating_sub(len);
            let mask = u32::MAX.checked_shl(host_bits).unwrap_or(0);
            let first = base & mask;
            let last = first | !mask;
            return Ok(Target::V4 { first, last });
        }
        if let Some((a, b)) = s.split_once('-') {
            let first = u32::from(a.parse::<Ipv4Addr>().map_err(|_| TargetError::Syntax)?);
            let last = match b.parse::<Ipv4Addr>() {
                Ok(full) => u32::from(full),
                // `a.b.c.d-h`: the last octet only.
                Err(_) => {
                    (first & 0xffff_ff00)
                        | u32::from(b.parse::<u8>().map_err(|_| TargetError::Syntax)?)
                }
            };
            if last < first {
                return Err(TargetError::Backwards);
            }
            return Ok(Target::V4 { first, last });
        }
        match s.parse::<IpAddr>().map_err(|_| TargetError::Syntax)? {
            IpAddr::V4(a) => Ok(Target::V4 {
                first: u32::from(a),
                last: u32::from(a),
            }),
            v6 => Ok(Target::Single(v6)),
        }
    }

    /// How many addresses the target covers.
    pub fn len(&self) -> u64 {
        match *self {
            Target::V4 { first, last } => u64::from(last.saturating_sub(first)).saturating_add(1),
            Target::Single(_) => 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (*self, ip) {
            (Target::V4 { first, last }, IpAddr::V4(a)) => (first..=last).contains(&u32::from(a)),
            (Target::Single(s), ip) => s == ip,
            _ => false,
        }
    }
}

/// Every address of `targets`, in order, skipping `exclude`.
pub fn addresses<'a>(
    targets: &'a [Target],
    exclude: &'a [Target],
) -> impl Iterator<Item = IpAddr> + 'a {
    targets
        .iter()
        .flat_map(|t| {
            let (v4, single) = match *t {
                Target::V4 { first, last } => (Some(first..=last), None),
                Target::Single(ip) => (None, Some(ip)),
            };
            v4.into_iter()
                .flatten()
                .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
                .chain(single)
        })
        .filter(move |ip| !exclude.iter().any(|x| x.contains(*ip)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().unwrap())
    }

    #[test]
    fn forms_and_errors() {
        assert_eq!(Target::parse("127.1.0.0/24").unwrap().len(), 256);
        assert_eq!(
            Target::parse("127.1.0.77/24").unwrap(),
            Target::parse("127.1.0.0/24").unwrap()
        );
        assert_eq!(Target::parse("10.0.0.0/16").unwrap().len(), 65_536);
        assert_eq!(Target::parse("0.0.0.0/0").unwrap().len(), 1 << 32);
        assert_eq!(Target::parse("127.1.0.5").unwrap().len(), 1);
        assert_eq!(Target::parse("127.1.0.5-9").unwrap().len(), 5);
        assert_eq!(Target::parse("127.1.0.250-127.1.1.4").unwrap().len(), 11);
        assert_eq!(
            Target::parse("::1").unwrap(),
            Target::Single("::1".parse().unwrap())
        );
        assert_eq!(Target::parse("127.1.0.0/33"), Err(TargetError::BadPrefix));
        assert_eq!(Target::parse("127.1.0.9-5"), Err(TargetError::Backwards));
        assert_eq!(Target::parse("printer.example"), Err(TargetError::Syntax));
        assert_eq!(Target::parse("127.1.0.0/x"), Err(TargetError::Syntax));
    }

    #[test]
    fn exclusions_and_order() {
        let targets = [
            Target::parse("127.1.0.1-6").unwrap(),
            Target::parse("::1").unwrap(),
        ];
        let exclude = [
            Target::parse("127.1.0.2-3").unwrap(),
            Target::parse("127.1.0.6").unwrap(),
        ];
        let got: Vec<IpAddr> = addresses(&targets, &exclude).collect();
        assert_eq!(
            got,
            [
                v4("127.1.0.1"),
                v4("127.1.0.4"),
                v4("127.1.0.5"),
                "::1".parse().unwrap()
            ]
        );
    }
}
