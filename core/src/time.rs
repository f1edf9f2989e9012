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
