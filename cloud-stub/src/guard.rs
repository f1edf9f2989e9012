//! Failed sign-ins per source address: a few are answered 401 as usual;
//! past [`Guard::ALLOWED`] in a window the address is locked out (429 with
//! `Retry-After`) for a time that doubles with each lockout, so that
//! guessing the operator's password or hammering the agent endpoint with
//! wrong secrets costs the guesser time and the server nothing more than a
//! map lookup.

use crate::limits::source;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Record {
    window_start: Instant,
    failures: u32,
    lockouts: u32,
    locked_until: Option<Instant>,
}

/// What the guard says of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Open,
    /// Locked out for this much longer.
    Locked(Duration),
}

/// What a recorded failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Counted; answer 401.
    Counted,
    /// This failure locked the address out for this long (answer 429, and
    /// audit the lockout).
    LockedOut(Duration),
    /// The address was locked out already (answer 429).
    StillLocked(Duration),
}

/// Failures per source address (an IPv6 /64 counts as one), in fixed
/// windows.
#[derive(Debug)]
pub struct Guard {
    records: Mutex<HashMap<IpAddr, Record>>,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            records: Mutex::new(HashMap::new()),
        }
    }
}

impl Guard {
    /// Failures allowed per address and window.
    pub const ALLOWED: u32 = 10;
    pub const WINDOW: Duration = Duration::from_secs(60);
    /// The first lockout; each next one of the same address doubles, up to
    /// [`Guard::LONGEST`].
    pub const LOCKOUT: Duration = Duration::from_secs(60);
    pub const LONGEST: Duration = Duration::from_secs(3600);
    /// Addresses tracked at most: past it, the ones with nothing pending
    /// are forgotten first.
    const TRACKED: usize = 65_536;

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `address` (its [`source`]) is locked out at `now`.
    pub fn check(&self, address: IpAddr, now: Instant) -> Verdict {
        let address = source(address);
        match self.records().get(&address).and_then(|r| r.locked_until) {
            Some(until) if until > now => Verdict::Locked(until - now),
            _ => Verdict::Open,
        }
    }

    /// Records a failed sign-in from `address` at `now`.
    pub fn failed(&self, address: IpAddr, now: Instant) -> Failure {
        let address = source(address);
        let mut records = self.records();
        if records.len() >= Self::TRACKED && !records.contains_key(&address) {
            Self::prune(&mut records, now);
        }
        let r = records.entry(address).or_insert(Record {
            window_start: now,
            failures: 0,
            lockouts: 0,
            locked_until: None,
        });
        if let Some(until) = r.locked_until {
            if until > now {
                return Failure::StillLocked(until - now);
            }
            r.locked_until = None;
            r.window_start = now;
            r.failures = 0;
        }
        if now.duration_since(r.window_start) >= Self::WINDOW {
            r.window_start = now;
            r.failures = 0;
        }
        r.failures += 1;
        if r.failures <= Self::ALLOWED {
            return Failure::Counted;
        }
        let lockout = Self::LOCKOUT
            .saturating_mul(1u32 << r.lockouts.min(16))
            .min(Self::LONGEST);
        r.lockouts = r.lockouts.saturating_add(1);
        r.locked_until = Some(now + lockout);
        Failure::LockedOut(lockout)
    }

    /// Forgets addresses whose window and lockout are over, and whose
    /// lockouts are long past (a day): their next lockout starts short.
    fn prune(records: &mut HashMap<IpAddr, Record>, now: Instant) {
        records.retain(|_, r| {
            let quiet = now.duration_since(r.window_start);
            let locked = r.locked_until.is_some_and(|u| u > now);
            locked
                || quiet < Self::WINDOW
                || (r.lockouts > 0 && quiet < Duration::from_secs(86_400))
        });
    }

    /// Forgets what no longer matters; called now and then.
    pub fn tidy(&self, now: Instant) {
        Self::prune(&mut self.records(), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_locked_out_past_the_allowance_and_longer_each_time() {
        let guard = Guard::default();
        let (a, b): (IpAddr, IpAddr) = ("10.1.1.1".parse().unwrap(), "10.1.1.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..Guard::ALLOWED {
            assert_eq!(guard.failed(a, t0), Failure::Counted, "failure {i}");
        }
        assert_eq!(guard.check(a, t0), Verdict::Open);
        assert_eq!(guard.failed(a, t0), Failure::LockedOut(Guard::LOCKOUT));
        assert_eq!(guard.check(a, t0), Verdict::Locked(Guard::LOCKOUT));
        assert!(matches!(guard.failed(a, t0), Failure::StillLocked(_)));
        // Another address is not concerned.
        assert_eq!(guard.check(b, t0), Verdict::Open);
        assert_eq!(guard.failed(b, t0), Failure::Counted);
        // After the lockout, a new allowance; the next lockout is twice as
        // long.
        let t1 = t0 + Guard::LOCKOUT;
        assert_eq!(guard.check(a, t1), Verdict::Open);
        for _ in 0..Guard::ALLOWED {
            assert_eq!(guard.failed(a, t1), Failure::Counted);
        }
        assert_eq!(guard.failed(a, t1), Failure::LockedOut(Guard::LOCKOUT * 2));
    }

    #[test]
    fn the_addresses_of_one_ipv6_64_share_a_lockout() {
        let guard = Guard::default();
        let t0 = Instant::now();
        for i in 0..=Guard::ALLOWED {
            let a: IpAddr = format!("2001:db8::{:x}", i + 1).parse().unwrap();
            guard.failed(a, t0);
        }
        let fresh: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        assert_eq!(guard.check(fresh, t0), Verdict::Locked(Guard::LOCKOUT));
        let next_net: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert_eq!(guard.check(next_net, t0), Verdict::Open);
    }

    #[test]
    fn failures_spread_over_windows_never_lock() {
        let guard = Guard::default();
        let a: IpAddr = "10.1.1.1".parse().unwrap();
        let t0 = Instant::now();
        for w in 0..5u32 {
            for _ in 0..Guard::ALLOWED {
                assert_eq!(guard.failed(a, t0 + Guard::WINDOW * w), Failure::Counted);
            }
        }
    }
}
