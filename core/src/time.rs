//! The core's own clock types: callers pass `now` in (milliseconds from any
//! origin they like), so the same code runs on a virtual clock in the
//! simulator and on a hardware timer in firmware.

/// A point in time, in milliseconds from the caller's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

/// A span of time in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(u64);

impl Instant {
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    pub const fn millis(self) -> u64 {
        self.0
    }

    pub const fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d.0))
    }

    /// Time since `earlier`, zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    pub const fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1000))
    }

    pub const fn millis(self) -> u64 {
        self.0
    }

    pub const fn saturating_mul(self, n: u64) -> Self {
        Self(self.0.saturating_mul(n))
    }
}

/// A UTC date and time of day, for lines people read (logs, pages): the
/// proleptic Gregorian calendar, from seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcDateTime {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// About 35,000 years either side of 1970: beyond any clock, and far from
/// overflowing the arithmetic below.
const CALENDAR_LIMIT_S: i64 = 1 << 40;

impl UtcDateTime {
    /// The date of `secs` (clamped to ±2^40 s).
    // The input is clamped, so no step below can overflow; the divisors are
    // constants.
    #[allow(clippy::arithmetic_side_effects)]
    pub fn from_unix_secs(secs: i64) -> Self {
        let secs = secs.clamp(-CALENDAR_LIMIT_S, CALENDAR_LIMIT_S);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Days since 1970-01-01 to a civil date, counting eras of 400
        // years from 0000-03-01 so that leap days end each year.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let small = |v: i64| u8::try_from(v).unwrap_or(0);
        UtcDateTime {
            year: yoe + era * 400 + i64::from(month <= 2),
            month: small(month),
            day: small(day),
            hour: small(rem / 3600),
            minute: small(rem / 60 % 60),
            second: small(rem % 60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_read_as_utc_dates() {
        let d = |s| {
            let u = UtcDateTime::from_unix_secs(s);
            (u.year, u.month, u.day, u.hour, u.minute, u.second)
        };
        assert_eq!(d(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(d(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(d(1_796_083_199), (2026, 11, 30, 23, 59, 59));
        assert_eq!(d(-1), (1969, 12, 31, 23, 59, 59));
        assert_eq!(d(4_107_542_400), (2100, 3, 1, 0, 0, 0));
        // Clamped, not overflowing.
        assert!(UtcDateTime::from_unix_secs(i64::MAX).year > 30_000);
        assert!(UtcDateTime::from_unix_secs(i64::MIN).year < -30_000);
    }
}
