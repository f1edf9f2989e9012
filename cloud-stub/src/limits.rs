//! What one client may hold of the server: connection slots (in all and per
//! source address), and deadlines for each phase of a request that do not
//! restart when a byte arrives, so that a client dribbling a byte now and
//! then cannot keep a connection (a slot) for ever. Also the accept loop's
//! backoff when the process is out of descriptors.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The server's limits. [`Limits::default`] is what `dca-cloud serve` uses;
/// tests shorten the deadlines.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections held at once; beyond it new ones are closed at accept.
    pub max_connections: usize,
    /// Connections held at once from one source address: one client cannot
    /// take every slot from the others.
    pub max_per_address: usize,
    /// The TLS handshake, whole.
    pub handshake: Duration,
    /// How long a kept-alive connection may wait for the first byte of its
    /// next request.
    pub idle: Duration,
    /// From a request's first byte to the end of its head.
    pub head: Duration,
    /// A body's deadline: this much, plus [`Limits::body_rate`] bytes a
    /// second of its announced length. Counted once, from the end of the
    /// head.
    pub body: Duration,
    /// The slowest body rate allowed, in bytes a second.
    pub body_rate: u64,
    /// An answer's deadline, once the client stops reading.
    pub write: Duration,
    /// The largest body accepted before the sender is authenticated (an
    /// enrollment request); anything larger needs credentials first.
    pub max_unauthenticated_body: usize,
    /// How long an agent's `listen` (the push channel) is held at most:
    /// under the idle timeouts of common proxies and load balancers (30 to
    /// 60 s), so the held request is not cut on its way.
    pub hold: Duration,
    /// A Device Web Access session with no request for this long ends.
    pub web_idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_per_address: 64,
            handshake: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            head: Duration::from_secs(10),
            body: Duration::from_secs(30),
            // 16 KiB/s: an 8 MiB batch over a poor uplink still fits.
            body_rate: 16 * 1024,
            write: Duration::from_secs(30),
            max_unauthenticated_body: 4096,
            hold: Duration::from_secs(25),
            web_idle: Duration::from_secs(10 * 60),
        }
    }
}

impl Limits {
    /// The deadline of a body of `len` bytes, from the end of its head.
    pub fn body_deadline(&self, len: usize) -> Duration {
        let rate = self.body_rate.max(1);
        self.body + Duration::from_millis((len as u64).saturating_mul(1000) / rate)
    }
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// Connection slots, taken at accept and given back when the connection
/// ends (its [`Slot`] is dropped).
#[derive(Debug)]
pub struct Slots {
    max_total: usize,
    max_per_address: usize,
    held: Mutex<Held>,
}

/// Why a connection got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Every slot is taken.
    Server,
    /// This address holds its share.
    Address,
}

/// A held connection slot.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    address: IpAddr,
}

/// The source a client is counted as: its address, or for IPv6 its /64,
/// which one host is commonly given whole (RFC 7421), so that a client
/// cannot pass a per-address limit by changing its interface identifier.
/// An IPv4-mapped address, or one translated from IPv4 by NAT64's
/// well-known prefix (64:ff9b::/96, RFC 6052), counts as its IPv4 address:
/// the clients behind one NAT64 are many IPv4 hosts, not one /64.
pub fn source(address: IpAddr) -> IpAddr {
    const NAT64: u128 = 0x0064_ff9b_u128 << 96;
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            if let Some(v4) = v6.to_ipv4_mapped() {
                IpAddr::V4(v4)
            } else if bits >> 32 == NAT64 >> 32 {
                IpAddr::V4(std::net::Ipv4Addr::from((bits & 0xffff_ffff) as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from(bits & !u128::from(u64::MAX)))
            }
        }
    }
}

impl Slots {
    pub fn new(limits: &Limits) -> Arc<Slots> {
        Arc::new(Slots {
            max_total: limits.max_connections,
            max_per_address: limits.max_per_address,
            held: Mutex::new(Held::default()),
        })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        // The counts stay consistent even if a holder panicked.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a connection from `address`, unless the server or the
    /// address is full.
    pub fn take(self: &Arc<Self>, address: IpAddr) -> Result<Slot, Full> {
        let address = source(address);
        let mut held = self.held();
        if held.total >= self.max_total {
            return Err(Full::Server);
        }
        let mine = held.per_address.entry(address).or_insert(0);
        if *mine >= self.max_per_address {
            return Err(Full::Address);
        }
        *mine += 1;
        held.total += 1;
        Ok(Slot {
            slots: self.clone(),
            address,
        })
    }

    /// Connections held now.
    pub fn in_use(&self) -> usize {
        self.held().total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held();
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.per_address.get_mut(&self.address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.per_address.remove(&self.address);
            }
        }
    }
}

/// How long the accept loop waits after a failed accept (out of
/// descriptors, most often): doubling from [`AcceptBackoff::FIRST`] up to
/// [`AcceptBackoff::MOST`] while accepts keep failing, back to nothing at
/// the first success. A fixed short pause would spin on a process that
/// stays out of descriptors; connections already held keep being served
/// meanwhile, and free descriptors as they end.
#[derive(Debug, Default, Clone)]
pub struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    pub const FIRST: Duration = Duration::from_millis(10);
    pub const MOST: Duration = Duration::from_secs(1);

    /// An accept failed: how long to wait before the next.
    pub fn failed(&mut self) -> Duration {
        let wait = Self::FIRST
            .saturating_mul(1u32 << self.failures.min(16))
            .min(Self::MOST);
        self.failures = self.failures.saturating_add(1);
        wait
    }

    /// An accept succeeded.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_in_all_and_per_address() {
        let limits = Limits {
            max_connections: 3,
            max_per_address: 2,
            ..Limits::default()
        };
        let slots = Slots::new(&limits);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "127.58.0.1".parse().unwrap(),
            "127.58.0.2".parse().unwrap(),
            "127.58.0.3".parse().unwrap(),
        );
        let a1 = slots.take(a).unwrap();
        let _a2 = slots.take(a).unwrap();
        assert_eq!(slots.take(a).unwrap_err(), Full::Address);
        let _b1 = slots.take(b).unwrap();
        assert_eq!(slots.take(c).unwrap_err(), Full::Server);
        assert_eq!(slots.in_use(), 3);
        drop(a1);
        assert_eq!(slots.in_use(), 2);
        let _c1 = slots.take(c).unwrap();
    }

    #[test]
    fn an_ipv6_host_counts_as_its_64_and_a_mapped_address_as_ipv4() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(source(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            source(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(source(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(source(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(source(ip("64:ff9b::10.1.2.3")), ip("10.1.2.3"));
        assert_ne!(source(ip("64:ff9b::10.1.2.4")), ip("10.1.2.3"));
        assert_eq!(source(ip("10.1.2.3")), ip("10.1.2.3"));
        // Two interface identifiers of one /64 share its slots.
        let slots = Slots::new(&Limits {
            max_per_address: 1,
            ..Limits::default()
        });
        let _one = slots.take(ip("2001:db8::1")).unwrap();
        assert_eq!(slots.take(ip("2001:db8::2")).unwrap_err(), Full::Address);
        let _other_net = slots.take(ip("2001:db8:0:1::1")).unwrap();
    }

    /// Under a lasting EMFILE the loop tries a few times a second at most,
    /// not twenty: the total wait over the first ten failures is most of
    /// the time, and a success starts again from the shortest wait.
    #[test]
    fn accept_failures_back_off_and_recover() {
        let mut backoff = AcceptBackoff::default();
        let waits: Vec<Duration> = (0..10).map(|_| backoff.failed()).collect();
        assert_eq!(waits[0], AcceptBackoff::FIRST);
        assert!(waits.windows(2).all(|w| w[1] >= w[0]), "{waits:?}");
        assert_eq!(*waits.last().unwrap(), AcceptBackoff::MOST);
        // Accept attempts in the first ten seconds of a lasting failure.
        let mut spent = Duration::ZERO;
        let mut attempts = 0;
        let mut b = AcceptBackoff::default();
        while spent < Duration::from_secs(10) && attempts < 10_000 {
            spent += b.failed();
            attempts += 1;
        }
        assert!(attempts <= 20, "{attempts} accept attempts in 10 s");
        backoff.succeeded();
        assert_eq!(backoff.failed(), AcceptBackoff::FIRST);
    }

    #[test]
    fn a_body_deadline_grows_with_its_length_once() {
        let limits = Limits::default();
        assert_eq!(limits.body_deadline(0), limits.body);
        assert_eq!(
            limits.body_deadline(16 * 1024 * 10),
            limits.body + Duration::from_secs(10)
        );
    }
}
