//! OBJECT IDENTIFIERs: a borrowed, validated view ([`OidRef`]) over BER
//! content octets, and an owned, fixed-capacity [`Oid`].
//!
//! Both keep the BER encoding rather than an array of arcs: decoding a
//! varbind name is then a validation pass with no copy, and emitting one is a
//! plain copy. Ordering and subtree tests walk the arcs lazily.

use core::cmp::Ordering;
use core::fmt;
use core::str::FromStr;

/// The most arcs an OID may have here. RFC 2578 allows 128 sub-identifiers.
pub const MAX_ARCS: usize = 128;
/// The most content octets an [`Oid`] may need: 127 sub-identifiers of at
/// most five octets each (the first two arcs share one).
pub const MAX_OID_BYTES: usize = 5 * (MAX_ARCS - 1);

/// Why an OID could not be read or built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidError {
    /// No content octets, or fewer than two arcs.
    Empty,
    /// The last sub-identifier has its continuation bit set.
    Truncated,
    /// A sub-identifier does not fit in 32 bits.
    ArcOverflow,
    /// More than [`MAX_ARCS`] arcs.
    TooManyArcs,
    /// The first arc is above 2, or the second is 40 or more under arc 0 or 1.
    BadFirstArcs,
    /// Dotted text with something other than digits and single dots.
    BadText,
}

impl fmt::Display for OidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "fewer than two arcs",
            Self::Truncated => "last sub-identifier is unterminated",
            Self::ArcOverflow => "arc larger than 2^32-1",
            Self::TooManyArcs => "more than 128 arcs",
            Self::BadFirstArcs => "first arcs out of range",
            Self::BadText => "not a dotted OID",
        })
    }
}

/// The largest first sub-identifier: `2.(2^32-1)`.
const MAX_FIRST_SUBID: u64 = u32::MAX as u64 + 80;

/// A validated OBJECT IDENTIFIER borrowed from BER content octets.
#[derive(Clone, Copy)]
pub struct OidRef<'a> {
    bytes: &'a [u8],
    arc_count: u8,
    /// No sub-identifier starts with a padding 0x80 octet, so the bytes are
    /// the canonical encoding and can be copied as they are.
    canonical: bool,
}

impl<'a> OidRef<'a> {
    /// Validates BER content octets of an OBJECT IDENTIFIER.
    ///
    /// Sub-identifiers padded with leading `0x80` octets are accepted (and
    /// re-encoded minimally when emitted).
    pub fn from_ber(bytes: &'a [u8]) -> Result<Self, OidError> {
        if bytes.is_empty() {
            return Err(OidError::Empty);
        }
        // Fast path: nearly every OID a printer sends has only arcs below
        // 128, one octet each, and is then valid and canonical as it stands.
        if bytes.len() < MAX_ARCS && bytes.iter().all(|b| b & 0x80 == 0) {
            return Ok(Self {
                bytes,
                arc_count: u8::try_from(bytes.len().saturating_add(1)).unwrap_or(u8::MAX),
                canonical: true,
            });
        }
        let mut arcs: usize = 1;
        let mut canonical = true;
        let mut value: u64 = 0;
        let mut at_start = true;
        let mut limit = MAX_FIRST_SUBID;
        for &b in bytes {
            if at_start && b == 0x80 {
                canonical = false;
            }
            value = (value << 7) | u64::from(b & 0x7f);
            if value > limit {
                return Err(OidError::ArcOverflow);
            }
            at_start = b & 0x80 == 0;
            if at_start {
                arcs = arcs.saturating_add(1);
                value = 0;
                limit = u64::from(u32::MAX);
            }
        }
        if !at_start {
            return Err(OidError::Truncated);
        }
        let arc_count = u8::try_from(arcs)
            .ok()
            .filter(|&n| usize::from(n) <= MAX_ARCS)
            .ok_or(OidError::TooManyArcs)?;
        Ok(Self {
            bytes,
            arc_count,
            canonical,
        })
    }

    /// The content octets as received.
    pub const fn as_ber(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether [`as_ber`](Self::as_ber) is the minimal encoding.
    pub const fn is_canonical(&self) -> bool {
        self.canonical
    }

    /// Number of arcs (at least two).
    pub const fn len(&self) -> usize {
        self.arc_count as usize
    }

    /// Always false: a valid OID has at least two arcs.
    pub const fn is_empty(&self) -> bool {
        false
    }

    pub fn arcs(&self) -> Arcs<'a> {
        Arcs {
            bytes: self.bytes,
            pending_second: None,
            first: true,
        }
    }

    /// The last arc: in a table column, the row index's last component.
    pub fn last_arc(&self) -> u32 {
        self.arcs().last().unwrap_or_default()
    }

    /// Whether `self` equals `prefix` or lies below it.
    pub fn starts_with(&self, prefix: OidRef<'_>) -> bool {
        self.starts_with_arcs(prefix.arcs())
    }

    /// Whether `self` lies strictly below `subtree` (what a walk keeps).
    pub fn is_inside(&self, subtree: OidRef<'_>) -> bool {
        self.len() > subtree.len() && self.starts_with(subtree)
    }

    /// [`starts_with`](Self::starts_with) against arcs given as numbers.
    pub fn starts_with_arcs(&self, prefix: impl IntoIterator<Item = u32>) -> bool {
        let mut mine = self.arcs();
        prefix.into_iter().all(|p| mine.next() == Some(p))
    }

    /// Compares with arcs given as numbers, in OID (lexicographic) order.
    pub fn cmp_arcs(&self, other: impl IntoIterator<Item = u32>) -> Ordering {
        self.arcs().cmp(other)
    }

    /// Copies into an owned [`Oid`], re-encoding minimally.
    pub fn to_oid(&self) -> Oid {
        let mut oid: Oid = Oid::EMPTY;
        if self.canonical {
            oid.len = self.bytes.len();
            if let Some(dst) = oid.bytes.get_mut(..self.bytes.len()) {
                dst.copy_from_slice(self.bytes);
            }
            oid.arc_count = self.arc_count;
        } else {
            let mut arcs = self.arcs();
            let (Some(a), Some(b)) = (arcs.next(), arcs.next()) else {
                return oid;
            };
            // Arc counts and values were validated, so the pushes fit.
            let _ = oid.push_first_arcs(a, b);
            for arc in arcs {
                let _ = oid.push(arc);
            }
        }
        oid
    }

    /// The length of the minimal encoding of these arcs.
    pub fn canonical_len(&self) -> usize {
        if self.canonical {
            return self.bytes.len();
        }
        let mut arcs = self.arcs();
        let first = match (arcs.next(), arcs.next()) {
            (Some(a), Some(b)) => first_subid(a, b),
            _ => 0,
        };
        arcs.fold(subid_len(first), |n, arc| {
            n.saturating_add(subid_len(u64::from(arc)))
        })
    }
}

impl PartialEq for OidRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        if self.canonical && other.canonical {
            self.bytes == other.bytes
        } else {
            self.arcs().eq(other.arcs())
        }
    }
}
impl Eq for OidRef<'_> {}

impl PartialOrd for OidRef<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OidRef<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.arcs().cmp(other.arcs())
    }
}

impl fmt::Display for OidRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arc) in self.arcs().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{arc}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for OidRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OidRef({self})")
    }
}

/// Iterator over the arcs of a validated OID.
#[derive(Debug, Clone)]
pub struct Arcs<'a> {
    bytes: &'a [u8],
    pending_second: Option<u32>,
    first: bool,
}

impl Iterator for Arcs<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if let Some(second) = self.pending_second.take() {
            return Some(second);
        }
        let mut value: u64 = 0;
        loop {
            let (&b, rest) = self.bytes.split_first()?;
            self.bytes = rest;
            value = (value << 7) | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
        if core::mem::take(&mut self.first) {
            let (a, b) = match value {
                0..40 => (0, value),
                40..80 => (1, value.saturating_sub(40)),
                _ => (2, value.saturating_sub(80)),
            };
            // Validation bounded the first sub-identifier so `b` fits.
            self.pending_second = Some(u32::try_from(b).unwrap_or(u32::MAX));
            Some(a)
        } else {
            Some(u32::try_from(value).unwrap_or(u32::MAX))
        }
    }
}

fn first_subid(a: u32, b: u32) -> u64 {
    u64::from(a).saturating_mul(40).saturating_add(u64::from(b))
}

/// Octets needed for one sub-identifier in base 128.
fn subid_len(v: u64) -> usize {
    let bits = 64usize.saturating_sub(v.leading_zeros() as usize).max(1);
    bits.div_ceil(7)
}

/// An owned OBJECT IDENTIFIER kept in its canonical BER encoding, with room
/// for `N` content octets ([`Oid`] has room for [`MAX_ARCS`] arcs of any
/// size). Tables that keep many short OIDs (a snapshot's counter sources) use
/// a smaller `N`; an OID that does not fit is an error, never a truncation.
#[derive(Clone)]
pub struct OidBuf<const N: usize> {
    bytes: [u8; N],
    len: usize,
    arc_count: u8,
}

/// An owned OID with room for any valid OID.
pub type Oid = OidBuf<MAX_OID_BYTES>;

impl<const N: usize> OidBuf<N> {
    /// An OID with no arcs: only a starting point for [`Oid::push_first_arcs`].
    const EMPTY: Self = Self {
        bytes: [0; N],
        len: 0,
        arc_count: 0,
    };

    /// Builds an OID from its arcs.
    pub fn from_arcs(arcs: &[u32]) -> Result<Self, OidError> {
        let [a, b, rest @ ..] = arcs else {
            return Err(OidError::Empty);
        };
        let mut oid = Self::EMPTY;
        oid.push_first_arcs(*a, *b)?;
        for &arc in rest {
            oid.push(arc)?;
        }
        Ok(oid)
    }

    fn push_first_arcs(&mut self, a: u32, b: u32) -> Result<(), OidError> {
        if a > 2 || (a < 2 && b >= 40) {
            return Err(OidError::BadFirstArcs);
        }
        self.push_subid(first_subid(a, b))?;
        self.arc_count = 2;
        Ok(())
    }

    /// Appends one arc (a table index, say).
    pub fn push(&mut self, arc: u32) -> Result<(), OidError> {
        if usize::from(self.arc_count) >= MAX_ARCS {
            return Err(OidError::TooManyArcs);
        }
        self.push_subid(u64::from(arc))?;
        self.arc_count = self.arc_count.saturating_add(1);
        Ok(())
    }

    fn push_subid(&mut self, v: u64) -> Result<(), OidError> {
        let n = subid_len(v);
        let end = self.len.saturating_add(n);
        let dst = self
            .bytes
            .get_mut(self.len..end)
            .ok_or(OidError::TooManyArcs)?;
        let mut shift = n;
        for out in dst.iter_mut() {
            shift = shift.saturating_sub(1);
            let more = if shift > 0 { 0x80 } else { 0 };
            let bits = (shift as u32).saturating_mul(7);
            *out = more | (v.checked_shr(bits).unwrap_or(0) & 0x7f) as u8;
        }
        self.len = end;
        Ok(())
    }

    pub fn as_oid_ref(&self) -> OidRef<'_> {
        OidRef {
            bytes: self.as_ber(),
            arc_count: self.arc_count,
            canonical: true,
        }
    }

    /// The canonical BER content octets.
    pub fn as_ber(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        usize::from(self.arc_count)
    }

    pub fn is_empty(&self) -> bool {
        self.arc_count == 0
    }

    pub fn arcs(&self) -> Arcs<'_> {
        self.as_oid_ref().arcs()
    }
}

impl<const N: usize> FromStr for OidBuf<N> {
    type Err = OidError;

    /// Parses dotted text such as `1.3.6.1.2.1.1.1.0` (a leading dot, as
    /// net-snmp prints numeric OIDs, is accepted).
    fn from_str(s: &str) -> Result<Self, OidError> {
        let s = s.strip_prefix('.').unwrap_or(s);
        let mut parts = s.split('.').map(|p| {
            if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
                Err(OidError::BadText)
            } else {
                p.parse::<u32>().map_err(|_| OidError::ArcOverflow)
            }
        });
        let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
            return Err(OidError::Empty);
        };
        let mut oid = Self::EMPTY;
        oid.push_first_arcs(a?, b?)?;
        for arc in parts {
            oid.push(arc?)?;
        }
        Ok(oid)
    }
}

impl<const N: usize> TryFrom<OidRef<'_>> for OidBuf<N> {
    type Error = OidError;

    /// Copies a borrowed OID, re-encoding it minimally; fails if it does not
    /// fit in `N` octets.
    fn try_from(r: OidRef<'_>) -> Result<Self, OidError> {
        let mut arcs = r.arcs();
        let (Some(a), Some(b)) = (arcs.next(), arcs.next()) else {
            return Err(OidError::Empty);
        };
        let mut oid = Self::EMPTY;
        oid.push_first_arcs(a, b)?;
        for arc in arcs {
            oid.push(arc)?;
        }
        Ok(oid)
    }
}

impl<const N: usize> PartialEq for OidBuf<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_ber() == other.as_ber()
    }
}
impl<const N: usize> Eq for OidBuf<N> {}
impl<const N: usize> PartialOrd for OidBuf<N> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<const N: usize> Ord for OidBuf<N> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_oid_ref().cmp(&other.as_oid_ref())
    }
}
impl<const N: usize> PartialEq<OidRef<'_>> for OidBuf<N> {
    fn eq(&self, other: &OidRef<'_>) -> bool {
        self.as_oid_ref() == *other
    }
}

impl<const N: usize> fmt::Display for OidBuf<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.as_oid_ref(), f)
    }
}

impl<const N: usize> fmt::Debug for OidBuf<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    fn oid(s: &str) -> Oid {
        s.parse().unwrap()
    }

    #[test]
    fn text_and_ber_agree() {
        let o = oid("1.3.6.1.2.1.43.11.1.1.9.1.1");
        assert_eq!(o.as_ber(), [0x2b, 6, 1, 2, 1, 43, 11, 1, 1, 9, 1, 1]);
        assert_eq!(o.to_string(), "1.3.6.1.2.1.43.11.1.1.9.1.1");
        assert_eq!(oid(".1.3.6").to_string(), "1.3.6");
        assert_eq!(o.len(), 13);
        // Multi-octet arcs: enterprise 2699 (PWG) and a 32-bit maximum.
        let o = oid("1.3.6.1.4.1.2699.1.3.4294967295");
        assert_eq!(
            o.as_ber(),
            [
                0x2b, 6, 1, 4, 1, 0x95, 0x0b, 1, 3, 0x8f, 0xff, 0xff, 0xff, 0x7f
            ]
        );
        assert_eq!(o.to_string(), "1.3.6.1.4.1.2699.1.3.4294967295");
        // Arc 2 lets the second arc exceed 39.
        let o = oid("2.999.3");
        assert_eq!(o.as_ber(), [0x88, 0x37, 3]);
        assert_eq!(OidRef::from_ber(o.as_ber()).unwrap().to_string(), "2.999.3");
        assert_eq!(oid("0.0").as_ber(), [0]);
    }

    #[test]
    fn bad_text_and_bad_ber() {
        assert_eq!("".parse::<Oid>().unwrap_err(), OidError::Empty);
        assert_eq!("1".parse::<Oid>().unwrap_err(), OidError::Empty);
        assert_eq!("1..3".parse::<Oid>().unwrap_err(), OidError::BadText);
        assert_eq!("1.3.x".parse::<Oid>().unwrap_err(), OidError::BadText);
        assert_eq!(
            "1.3.4294967296".parse::<Oid>().unwrap_err(),
            OidError::ArcOverflow
        );
        assert_eq!("3.1".parse::<Oid>().unwrap_err(), OidError::BadFirstArcs);
        assert_eq!("1.40".parse::<Oid>().unwrap_err(), OidError::BadFirstArcs);
        assert_eq!(OidRef::from_ber(&[]).unwrap_err(), OidError::Empty);
        assert_eq!(
            OidRef::from_ber(&[0x2b, 0x86]).unwrap_err(),
            OidError::Truncated
        );
        assert_eq!(
            OidRef::from_ber(&[0x2b, 0x90, 0x80, 0x80, 0x80, 0]).unwrap_err(),
            OidError::ArcOverflow
        );
        let long: Vec<u8> = core::iter::repeat_n(1u8, MAX_ARCS).collect();
        assert_eq!(OidRef::from_ber(&long).unwrap_err(), OidError::TooManyArcs);
        assert_eq!(
            OidRef::from_ber(&long[..MAX_ARCS - 1]).unwrap().len(),
            MAX_ARCS
        );
    }

    #[test]
    fn capacity_is_128_arcs() {
        let mut o = oid("1.3");
        for _ in 2..MAX_ARCS {
            o.push(u32::MAX).unwrap();
        }
        assert_eq!(o.len(), MAX_ARCS);
        assert_eq!(o.push(1).unwrap_err(), OidError::TooManyArcs);
        let r = OidRef::from_ber(o.as_ber()).unwrap();
        assert_eq!(r.len(), MAX_ARCS);
        assert_eq!(r.last_arc(), u32::MAX);
    }

    #[test]
    fn padded_subidentifiers_are_read_and_reencoded() {
        // 1.3.6.1 with the arc 6 padded as 0x80 0x06.
        let r = OidRef::from_ber(&[0x2b, 0x80, 0x06, 0x01]).unwrap();
        assert!(!r.is_canonical());
        assert_eq!(r.to_string(), "1.3.6.1");
        assert_eq!(r.to_oid().as_ber(), [0x2b, 6, 1]);
        assert_eq!(r.canonical_len(), 3);
        assert_eq!(r, oid("1.3.6.1").as_oid_ref());
    }

    #[test]
    fn ordering_and_subtrees() {
        let mut v = [
            "1.3.6.1.2.1.1.10",
            "1.3.6.1.2.1.1.9.1",
            "1.3.6.1.2.1.1.9",
            "1.3.6.1.2.1.1.128",
            "1.3.6.1.2.1.1.16383",
            "1.3.6.1.2.1.1.16384",
        ]
        .map(oid);
        v.sort();
        let text: Vec<_> = v.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "1.3.6.1.2.1.1.9",
                "1.3.6.1.2.1.1.9.1",
                "1.3.6.1.2.1.1.10",
                "1.3.6.1.2.1.1.128",
                "1.3.6.1.2.1.1.16383",
                "1.3.6.1.2.1.1.16384"
            ]
        );
        let table = oid("1.3.6.1.2.1.43.11.1.1");
        let cell = oid("1.3.6.1.2.1.43.11.1.1.9.1.1");
        let next_table = oid("1.3.6.1.2.1.43.12");
        assert!(cell.as_oid_ref().is_inside(table.as_oid_ref()));
        assert!(!table.as_oid_ref().is_inside(table.as_oid_ref()));
        assert!(table.as_oid_ref().starts_with(table.as_oid_ref()));
        assert!(!next_table.as_oid_ref().is_inside(table.as_oid_ref()));
        assert!(cell.as_oid_ref().starts_with_arcs([1, 3, 6, 1, 2, 1, 43]));
        assert_eq!(
            cell.as_oid_ref().cmp_arcs([1, 3, 6, 1, 2, 1, 43, 12]),
            Ordering::Less
        );
    }
}
