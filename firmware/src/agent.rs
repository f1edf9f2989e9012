//! Agent mode: what a provisioned board does. The LAN9118 under
//! embassy-net, an IPv4 address by DHCP (the block's static address when no
//! server answers in time), then sweeps of the block's targets with the
//! core's `Scan` over one UDP socket, a summary line per printer and per
//! sweep, on the block's schedule.
//!
//! The sweep loop is the host's (shells/host/src/sweep.rs) on embassy: send
//! a bounded burst, read a bounded batch of what arrived, hand the scan its
//! timeouts, and sleep until a datagram or the scan's next deadline. Every
//! iteration yields to the executor, so a flood of datagrams on the agent's
//! port costs a bounded amount of work per iteration and never starves the
//! network runner or the timers.

use core::future::poll_fn;
use core::net::{IpAddr, SocketAddr};
use core::task::Poll;

use cortex_m::peripheral::NVIC;
use cortex_m_rt::interrupt;
use dca_core::poll::{Event, Scan, ScanConfig, Target, WalkSlot, addresses};
use dca_core::printer::Snapshot;
use dca_core::provision::{MAX_COMMUNITIES, Provisioning};
use dca_core::time::{Duration as CoreDuration, Instant as CoreInstant};
use embassy_executor::Spawner;
use embassy_futures::select::select;
use embassy_net::udp::{PacketMetadata, RecvError, UdpSocket};
use embassy_net::{
    Config, ConfigV4, DhcpConfig, Ipv4Address, Ipv4Cidr, Runner, Stack, StackResources,
    StaticConfigV4,
};
use embassy_time::{Duration, Instant, Timer, with_timeout};
use heapless::{String, Vec};
use lan9118::{Frames, Lan9118, MPS2_AN386_BASE, Mmio};
use static_cell::{ConstStaticCell, StaticCell};

use crate::board::entropy::EntropySource;
use crate::board::flash::{self, HostFileFlash};
use crate::board::{self, Interrupt, interrupt};
use crate::cloud::{CloudTarget, LINK_BYTES, Link, LinkBuffers};
use crate::delivery::{AGENT_VERSION, Collector, Delivery, MAX_TARGETS, SweepFor};
use cloud_tls::Trust;
use dca_core::sync::session::UPLOAD_OVERHEAD;
use dca_core::sync::task::LogLevel;
use flash_journal::FlashJournal;
use rand_chacha::rand_core::RngCore;

/// Probes in flight at most (each is a few dozen bytes).
pub const PROBES: usize = 16;
/// Printers walked at once. Each slot holds a snapshot under construction,
/// about 50 KiB: one fits the RAM budget.
pub const WALK_SLOTS: usize = 1;
/// Probes in flight at most (see the ARP note where the scan is set up).
const MAX_IN_FLIGHT: usize = 4;
/// Datagrams sent at most per loop iteration.
const SEND_BURST: usize = 16;
/// Datagrams read at most per loop iteration (a flood waits its turn).
const RECV_BURST: usize = 16;
/// How long DHCP gets before the block's static address is used.
const DHCP_WAIT: Duration = Duration::from_secs(10);

/// Largest request sent: one unfragmented UDP payload on Ethernet (the
/// scan's requests are far smaller).
const REQUEST: usize = 1472;
/// Largest answer handled: what the stack reassembles (smoltcp's reassembly
/// buffer, see Cargo.toml) less the IPv4 and UDP headers. Longer answers
/// are dropped and counted; the walker then asks for less.
const ANSWER: usize = 4096 - 28;
const RX_PACKETS: usize = 24;
const RX_BYTES: usize = 6 * 1024;
const TX_PACKETS: usize = 8;
const TX_BYTES: usize = 2 * 1024;

type Device = Lan9118<'static, Mmio>;

static ETH_STATE: lan9118::State = lan9118::State::new();
/// The driver's frame buffers (all zero: .bss).
static ETH_FRAMES: ConstStaticCell<Frames> = ConstStaticCell::new(Frames::new());
// SAFETY: the LAN9118 is mapped at this address on mps2-an386, and only the
// driver and its interrupt handler touch it.
static ETH_REGS: Mmio = unsafe { Mmio::new(MPS2_AN386_BASE) };

// The large tables are built in place in static memory (ConstStaticCell):
// built at run time they would pass through the stack first.

/// The DHCP socket, and the agent's UDP or TCP socket.
static RESOURCES: ConstStaticCell<StackResources<3>> = ConstStaticCell::new(StackResources::new());

/// What a sweep borrows: the UDP socket's payload buffers, the datagram
/// being sent and the one being read.
const SWEEP_BYTES: usize = RX_BYTES + TX_BYTES + REQUEST + ANSWER;
/// Memory the sweeps and the cloud connection take turns in: a sweep never
/// runs while a connection is open (a task's rescan closes it first).
const ARENA_BYTES: usize = if SWEEP_BYTES > LINK_BYTES {
    SWEEP_BYTES
} else {
    LINK_BYTES
};
/// All zero: .bss, not flash. Static: in the agent's future it would be
/// copied through the stack whenever the future moves.
static ARENA: ConstStaticCell<[u8; ARENA_BYTES]> = ConstStaticCell::new([0; ARENA_BYTES]);

/// Readings are batched in this many bytes at most.
/// A batch is one journal entry, and an entry fits a flash sector.
const BATCH_BYTES: usize = flash::SECTOR - flash_journal::HEADER;
/// The batch being built, then each request and its answer.
static WORK: ConstStaticCell<[u8; BATCH_BYTES + UPLOAD_OVERHEAD]> =
    ConstStaticCell::new([0; BATCH_BYTES + UPLOAD_OVERHEAD]);
/// Batches kept until the cloud holds them: a ring of flash sectors.
type AgentJournal = FlashJournal<HostFileFlash>;
const JOURNAL_SECTORS: usize = 16;
static JOURNAL: StaticCell<AgentJournal> = StaticCell::new();
/// The journal's and the identity's flash (this board: files of the host).
const JOURNAL_FILE: &[u8] = b"dca-journal.bin\0";
const IDENTITY_FILE: &[u8] = b"dca-identity.bin\0";
type AgentDelivery = Delivery<AgentJournal, HostFileFlash>;
static DELIVERY: StaticCell<AgentDelivery> = StaticCell::new();

/// The socket's packet metadata (small, but not zero: .data).
static RX_META: ConstStaticCell<[PacketMetadata; RX_PACKETS]> =
    ConstStaticCell::new([PacketMetadata::EMPTY; RX_PACKETS]);
static TX_META: ConstStaticCell<[PacketMetadata; TX_PACKETS]> =
    ConstStaticCell::new([PacketMetadata::EMPTY; TX_PACKETS]);

/// The walk slots: fixed memory, reused where they lie by every sweep.
/// Each snapshot is built and read in its slot; there is no other copy.
static SLOTS: StaticCell<[WalkSlot; WALK_SLOTS]> = StaticCell::new();

#[interrupt]
fn ETHERNET() {
    lan9118::on_interrupt(&ETH_REGS, &ETH_STATE);
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Device>) -> ! {
    runner.run().await
}

/// Logs the link and the address as they change.
#[embassy_executor::task]
async fn link_task(stack: Stack<'static>) -> ! {
    loop {
        stack.wait_link_down().await;
        defmt::warn!("agent: link down");
        stack.wait_link_up().await;
        defmt::info!("agent: link up");
    }
}

pub fn now() -> CoreInstant {
    CoreInstant::from_millis(Instant::now().as_millis())
}

/// A weak seed for the stack's randomness (ephemeral ports, DHCP xid, TCP
/// sequence numbers) when the board's random source fails.
fn weak_seed(mac: [u8; 6]) -> u64 {
    let mut x = u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0])
        ^ Instant::now().as_ticks().rotate_left(48);
    // splitmix64's finaliser spreads the few varying bits over the word.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Runs the agent for ever, or for the block's number of sweeps and then
/// ends the QEMU run with success.
#[embassy_executor::task]
pub async fn task(spawner: Spawner, prov: &'static Provisioning) -> ! {
    run(spawner, prov).await
}

async fn run(spawner: Spawner, prov: &'static Provisioning) -> ! {
    let mut eth = Lan9118::new(ETH_REGS, &ETH_STATE, ETH_FRAMES.take());
    if let Err(e) = eth.init() {
        defmt::error!("agent: {}", defmt::Display2Format(&e));
        board::exit(false);
    }
    NVIC::unpend(Interrupt::ETHERNET);
    board::irq::unmask(Interrupt::ETHERNET);
    let mac = eth.mac_address();
    defmt::info!(
        "agent: LAN9118 up, MAC {=[u8]:02x}, link {=bool}",
        mac,
        eth.link_up()
    );
    let mut source = board::entropy::HostUrandom;
    // One generator, seeded once per boot from the board's source: the
    // network stack's seed, then TLS's randoms.
    let mut rng = match board::entropy::generator(&mut source) {
        Ok(rng) => {
            defmt::info!("agent: random source: {=str}", source.describe());
            Some(rng)
        }
        Err(e) => {
            defmt::warn!(
                "agent: no random source ({}): the network stack is seeded from the MAC and the clock, which is weak, and nothing is delivered",
                e
            );
            None
        }
    };
    let seed = rng
        .as_mut()
        .map_or_else(|| weak_seed(mac), |r| r.next_u64());

    let (stack, runner) = embassy_net::new(
        eth,
        Config::dhcpv4(DhcpConfig::default()),
        RESOURCES.take(),
        seed,
    );
    spawner.spawn(unwrap_spawn(net_task(runner)));
    spawner.spawn(unwrap_spawn(link_task(stack)));

    bring_up(stack, prov).await;

    let arena = ARENA.take();
    let meta = Meta {
        rx: RX_META.take(),
        tx: TX_META.take(),
    };
    let slots = SLOTS.init_with(|| core::array::from_fn(|_| WalkSlot::new()));
    let mut targets: Vec<Target, MAX_TARGETS> = Vec::new();
    for t in prov.targets.split(',').filter(|t| !t.trim().is_empty()) {
        match Target::parse(t) {
            Ok(t) => {
                if targets.push(t).is_err() {
                    defmt::warn!(
                        "agent: more than {=usize} targets, the rest are left out",
                        MAX_TARGETS
                    );
                    break;
                }
            }
            Err(_) => defmt::warn!("agent: target {=str} does not parse, left out", t),
        }
    }
    let community_list: Vec<&[u8], MAX_COMMUNITIES> =
        prov.communities.iter().map(|c| c.as_bytes()).collect();
    let mut cfg = ScanConfig::new(&community_list, prov.port);
    // smoltcp resolves one new neighbour (ARP) per second for the whole
    // interface, and a datagram waits for its neighbour: few probes in
    // flight, each given time enough to outlast the ARP queue ahead of it.
    cfg.max_in_flight = MAX_IN_FLIGHT;
    cfg.probe_timeout = CoreDuration::from_millis(2000);
    cfg.probe_retries = 2;
    // Longer GetBulk answers than the host starts with: the stack
    // reassembles up to 4 KiB, and each round trip saved shortens a sweep.
    // A device whose answers do not arrive is asked for less.
    cfg.walk.max_repetitions = 20;
    defmt::info!(
        "agent: {=usize} target expressions, {=usize} communities, port {=u16}, every {=u32} s, sweeps {=u32} (0: for ever)",
        targets.len(),
        community_list.len(),
        prov.port,
        prov.schedule_s,
        prov.sweeps
    );
    defmt::info!(
        "agent: memory kept: scan {=usize} bytes ({=usize} probes), {=usize} walk slot(s) of {=usize} bytes (the snapshot, {=usize} bytes, is built inside), sweep/connection buffers {=usize} bytes",
        core::mem::size_of::<Scan<'static, core::iter::Empty<IpAddr>, PROBES, WALK_SLOTS>>(),
        PROBES,
        WALK_SLOTS,
        core::mem::size_of::<WalkSlot>(),
        core::mem::size_of::<Snapshot>(),
        ARENA_BYTES
    );
    let mut sweeper = Sweeper {
        stack,
        arena,
        meta,
        cfg,
        slots,
        sweeps: 0,
    };

    let cloud = match (&prov.cloud, rng) {
        (None, _) => {
            defmt::info!("agent: no cloud in the block: printers are logged only");
            None
        }
        (Some(_), None) => {
            defmt::error!("agent: no random source for TLS: printers are logged only");
            None
        }
        (Some(c), Some(rng)) => {
            let trust = if c.ca.is_empty() {
                Trust::Pins(&c.pins)
            } else {
                Trust::Ca(&c.ca)
            };
            match CloudTarget::new(&c.url, trust, AGENT_VERSION) {
                Ok(target) => {
                    match trust {
                        Trust::Pins(p) => defmt::info!(
                            "agent: delivering to {=str}, trusted by {=usize} key pin(s)",
                            c.url.as_str(),
                            p.len()
                        ),
                        Trust::Ca(ca) => defmt::info!(
                            "agent: delivering to {=str}, trusted through a CA of {=usize} bytes",
                            c.url.as_str(),
                            ca.len()
                        ),
                    }
                    Some((target, c.token.as_str(), rng))
                }
                Err(e) => {
                    defmt::error!(
                        "agent: cloud {=str}: {}: printers are logged only",
                        c.url.as_str(),
                        defmt::Display2Format(&e)
                    );
                    None
                }
            }
        }
    };
    let storage = match &cloud {
        Some(_) => open_storage(),
        None => None,
    };
    match (cloud, storage) {
        (Some((target, token, rng)), Some((journal, identity))) => {
            let url = prov.cloud.as_ref().map_or("", |c| c.url.as_str());
            let delivery = DELIVERY.init_with(|| {
                Delivery::new(
                    journal,
                    identity,
                    url,
                    token,
                    prov.schedule_s,
                    mac,
                    rng,
                    targets,
                )
            });
            deliver(&mut sweeper, delivery, &target, prov.sweeps).await
        }
        _ => log_only(&mut sweeper, &targets, prov).await,
    }
}

/// The journal and the identity's flash, opened; `None` (said why) when
/// the flash cannot be had, and then nothing is delivered: readings the
/// device cannot keep across a power cut are not sent as if it could.
fn open_storage() -> Option<(&'static mut AgentJournal, HostFileFlash)> {
    let opened = HostFileFlash::open(JOURNAL_FILE, JOURNAL_SECTORS * flash::SECTOR)
        .map_err(|e| defmt::error!("agent: the journal's flash cannot be opened: {}", e))
        .ok()?;
    let journal = match FlashJournal::open(opened, 0, JOURNAL_SECTORS) {
        Ok(j) => JOURNAL.init(j),
        Err(e) => {
            defmt::error!(
                "agent: the journal cannot be read: {}: printers are logged only",
                defmt::Display2Format(&e)
            );
            return None;
        }
    };
    let (entries, bytes, free) = journal.usage();
    defmt::info!(
        "agent: journal in flash: {=usize} batches ({=usize} bytes) waiting or kept, {=usize} of {=usize} sectors free",
        entries,
        bytes,
        free,
        JOURNAL_SECTORS
    );
    let identity = HostFileFlash::open(IDENTITY_FILE, 2 * flash::SECTOR)
        .map_err(|e| defmt::error!("agent: the identity's flash cannot be opened: {}", e))
        .ok()?;
    Some((journal, identity))
}

/// What a sweep needs besides its targets.
struct Sweeper {
    stack: Stack<'static>,
    arena: &'static mut [u8; ARENA_BYTES],
    meta: Meta,
    cfg: ScanConfig,
    slots: &'static mut [WalkSlot; WALK_SLOTS],
    sweeps: u32,
}

/// The UDP socket's packet metadata.
struct Meta {
    rx: &'static mut [PacketMetadata; RX_PACKETS],
    tx: &'static mut [PacketMetadata; TX_PACKETS],
}

impl Sweeper {
    /// One sweep; each printer found is handed to `on_printer`. Returns the
    /// number of printers.
    async fn sweep(
        &mut self,
        targets: &[Target],
        on_printer: &mut dyn FnMut(SocketAddr, &Snapshot),
    ) -> u32 {
        self.sweeps = self.sweeps.wrapping_add(1);
        if !self.stack.is_config_up() {
            defmt::warn!(
                "agent: no address, waiting before sweep {=u32}",
                self.sweeps
            );
            self.stack.wait_config_up().await;
        }
        let printers = run_sweep(self, targets, on_printer).await;
        let c = ETH_STATE.counters();
        defmt::info!(
            "agent: driver rx {=u32} frames ({=u32} dropped: {=u32} oversized, {=u32} runts, {=u32} errors), tx {=u32} ({=u32} dropped), {=u32} interrupts",
            c.rx_frames,
            c.rx_dropped(),
            c.rx_oversized,
            c.rx_runts,
            c.rx_errors,
            c.tx_frames,
            c.tx_dropped,
            c.interrupts
        );
        printers
    }
}

/// Without a cloud: sweeps on the block's schedule, printers logged.
async fn log_only(sweeper: &mut Sweeper, targets: &[Target], prov: &Provisioning) -> ! {
    loop {
        let started = Instant::now();
        sweeper
            .sweep(targets, &mut |addr, snap| log_printer(addr, snap))
            .await;
        if prov.sweeps != 0 && sweeper.sweeps >= prov.sweeps {
            break;
        }
        let next = started + Duration::from_secs(u64::from(prov.schedule_s));
        Timer::at(next).await;
    }
    crate::report_footprint();
    board::exit(true)
}

/// With a cloud: the session decides when to collect and to deliver. After
/// `sweeps` (0: never) collections, the run ends once everything journaled
/// is delivered.
async fn deliver(
    sweeper: &mut Sweeper,
    d: &'static mut AgentDelivery,
    target: &CloudTarget<'_>,
    sweeps: u32,
) -> ! {
    let work = WORK.take();
    // Bounded per iteration; the loop runs for the device's life.
    loop {
        d.session.handle_timeout(now());
        d.drain_events();
        // Delivery before collection: a device whose sweeps take longer than
        // its schedule would otherwise sweep for ever and deliver nothing.
        if let Some(first) = d.next(&mut work[..]) {
            match Link::open(
                sweeper.stack,
                target,
                LinkBuffers::split(&mut sweeper.arena[..]).unwrap_or_else(|| board::exit(false)),
                &mut d.rng,
            )
            .await
            {
                Ok(mut link) => {
                    d.burst(&mut link, target, &mut work[..], first).await;
                    link.close().await;
                }
                Err(e) => d.transport_failed(e),
            }
            continue;
        }
        if let Some(why) = d.take_sweep() {
            let limit_reached = sweeps != 0 && sweeper.sweeps >= sweeps;
            if why == SweepFor::Schedule && limit_reached {
                // The run's collections are done; what remains is delivery.
            } else {
                let list: Vec<Target, MAX_TARGETS> = match why {
                    SweepFor::Task {
                        device: Some(ip), ..
                    } => [Target::Single(ip)].into_iter().collect(),
                    _ => d.targets.clone(),
                };
                // A line per printer unless the cloud lowered the level.
                let verbose = matches!(
                    d.log_level,
                    LogLevel::Info | LogLevel::Debug | LogLevel::Trace
                );
                let mut c = Collector::new(
                    &mut d.session,
                    &mut *d.journal,
                    &mut d.all_delivered,
                    // A batch is one journal entry: no larger than a sector.
                    &mut work[..BATCH_BYTES],
                );
                let printers = sweeper
                    .sweep(&list, &mut |addr, snap| {
                        if verbose {
                            log_printer(addr, snap);
                        }
                        c.add(addr, snap);
                    })
                    .await;
                c.seal();
                let readings = c.readings;
                d.sweep_done(why, printers, readings);
                // A device that runs for ever says what it uses as it goes.
                crate::report_footprint();
            }
            continue;
        }
        if sweeps != 0 && sweeper.sweeps >= sweeps && d.all_delivered && !d.session.is_busy() {
            defmt::println!(
                "delivery: done: {=u32} sweeps, {=u32} batches delivered, {=u64} readings stored",
                sweeper.sweeps,
                d.delivered_batches,
                d.stored_readings
            );
            break;
        }
        let wake = d
            .next_wake()
            .map_or(Instant::now() + Duration::from_secs(1), |t| {
                Instant::from_millis(t.millis())
            });
        Timer::at(wake).await;
    }
    crate::report_footprint();
    board::exit(true)
}

pub fn unwrap_spawn<S>(
    token: Result<embassy_executor::SpawnToken<S>, embassy_executor::SpawnError>,
) -> embassy_executor::SpawnToken<S> {
    match token {
        Ok(t) => t,
        Err(_) => {
            defmt::error!("agent: a task could not be spawned");
            board::exit(false)
        }
    }
}

/// DHCP first; after `DHCP_WAIT` without an answer, the block's static
/// address (DHCP keeps being tried when the block has none).
async fn bring_up(stack: Stack<'static>, prov: &Provisioning) {
    defmt::info!("agent: asking DHCP for an address");
    if with_timeout(DHCP_WAIT, stack.wait_config_up())
        .await
        .is_err()
    {
        match prov.static_v4 {
            Some(s) => {
                let [a, b, c, d] = s.address;
                defmt::warn!(
                    "agent: no DHCP answer in {=u64} s, using the static address {=u8}.{=u8}.{=u8}.{=u8}/{=u8}",
                    DHCP_WAIT.as_secs(),
                    a,
                    b,
                    c,
                    d,
                    s.prefix
                );
                stack.set_config_v4(ConfigV4::Static(StaticConfigV4 {
                    address: Ipv4Cidr::new(Ipv4Address::from(s.address), s.prefix),
                    gateway: s.gateway.map(Ipv4Address::from),
                    dns_servers: heapless::Vec::new(),
                }));
            }
            None => defmt::warn!(
                "agent: no DHCP answer in {=u64} s and no static address in the block; still waiting",
                DHCP_WAIT.as_secs()
            ),
        }
        stack.wait_config_up().await;
    }
    if let Some(c) = stack.config_v4() {
        let [a, b, cc, d] = c.address.address().octets();
        defmt::info!(
            "agent: address {=u8}.{=u8}.{=u8}.{=u8}/{=u8}",
            a,
            b,
            cc,
            d,
            c.address.prefix_len()
        );
    }
}

/// One sweep over the targets with a UDP socket of its own; returns the
/// printers found.
async fn run_sweep(
    sw: &mut Sweeper,
    targets: &[Target],
    on_printer: &mut dyn FnMut(SocketAddr, &Snapshot),
) -> u32 {
    let sweep = sw.sweeps;
    let started = Instant::now();
    let (rx, rest) = sw.arena.split_at_mut(RX_BYTES);
    let (tx, rest) = rest.split_at_mut(TX_BYTES);
    let (out, rest) = rest.split_at_mut(REQUEST);
    let inp = &mut rest[..ANSWER];
    let mut socket = UdpSocket::new(sw.stack, &mut sw.meta.rx[..], rx, &mut sw.meta.tx[..], tx);
    if socket.bind(0).is_err() {
        defmt::error!("agent: cannot bind the UDP socket");
        board::exit(false);
    }
    defmt::debug!("agent: UDP socket on port {=u16}", socket.endpoint().port);
    let mut scan: Scan<'_, _, PROBES, WALK_SLOTS> = Scan::new(
        sw.cfg.clone(),
        addresses(targets, &[]),
        &mut sw.slots[..],
        now(),
    );
    let mut printers = 0u32;
    // Datagrams the scan never saw: longer than ANSWER.
    let mut oversized = 0u64;
    defmt::info!("sweep {=u32} started", sweep);
    loop {
        scan.handle_timeout(now());
        let mut busy = false;
        for _ in 0..SEND_BURST {
            let Some((to, n)) = scan.poll_transmit(now(), out) else {
                break;
            };
            busy = true;
            let Some(datagram) = out.get(..n) else {
                continue;
            };
            // The stack speaks IPv4 only: an IPv6 target gets no datagram,
            // which the scan sees as no answer.
            let SocketAddr::V4(to) = to else {
                continue;
            };
            // A send error (no route while the link is down, say) is the
            // same as no answer: the scan's timers take care of it.
            if let Err(e) = socket.send_to(datagram, to).await {
                defmt::debug!("agent: send to {} failed: {}", defmt::Debug2Format(&to), e);
            }
        }
        for _ in 0..RECV_BURST {
            match try_recv(&socket, inp) {
                None => break,
                Some(Ok((n, from))) => {
                    busy = true;
                    if let Some(d) = inp.get_mut(..n) {
                        scan.handle_datagram(now(), from, d);
                    }
                }
                Some(Err(RecvError::Truncated)) => {
                    busy = true;
                    oversized = oversized.saturating_add(1);
                }
            }
        }
        printers = printers.saturating_add(drain_events(&mut scan, on_printer));
        if scan.is_finished() {
            break;
        }
        if busy {
            // Let the network runner and the timers have their turn.
            embassy_futures::yield_now().await;
        } else {
            // Nothing to do until an answer arrives or a timer is due.
            let deadline = scan.poll_timeout().map_or_else(
                || Instant::now() + Duration::from_millis(50),
                |t| Instant::from_millis(t.millis()),
            );
            let _ = select(socket.wait_recv_ready(), Timer::at(deadline)).await;
        }
    }
    let s = scan.stats();
    let ignored = s.ignored.saturating_add(oversized);
    defmt::println!(
        "sweep {=u32} done: {=u32} printers, {=u64} unreachable, {=u64} datagrams ignored ({=u64} probed, {=u64} answered, {=u64} walked, {=u64} walks failed, {=u64} ms)",
        sweep,
        printers,
        s.unreachable,
        ignored,
        s.probed,
        s.answered,
        s.walked,
        s.failed,
        started.elapsed().as_millis()
    );
    drop(scan);
    socket.close();
    printers
}

/// Logs the printers whose walks ended; returns how many. Each snapshot is
/// read where its walk slot built it.
fn drain_events<I: Iterator<Item = IpAddr>>(
    scan: &mut Scan<'_, I, PROBES, WALK_SLOTS>,
    on_printer: &mut dyn FnMut(SocketAddr, &Snapshot),
) -> u32 {
    let mut printers = 0u32;
    while let Some(event) = scan.poll_event() {
        match event {
            Event::Walked { slot } => {
                if let Some((addr, snapshot)) = scan.finish_walk(slot)
                    && snapshot.is_printer()
                {
                    printers = printers.saturating_add(1);
                    on_printer(addr, snapshot);
                }
            }
            Event::WalkFailed(addr, e) => defmt::warn!(
                "agent: walk of {} failed: {}",
                defmt::Display2Format(&addr),
                defmt::Debug2Format(&e)
            ),
        }
    }
    printers
}

/// A datagram if one is waiting; never waits.
fn try_recv(
    socket: &UdpSocket<'_>,
    buf: &mut [u8],
) -> Option<Result<(usize, SocketAddr), RecvError>> {
    let mut result = None;
    let _ = embassy_futures::poll_once(poll_fn(|cx| {
        result = match socket.poll_recv_from(buf, cx) {
            Poll::Ready(Ok((n, meta))) => Some(Ok((n, SocketAddr::from(meta.endpoint)))),
            Poll::Ready(Err(e)) => Some(Err(e)),
            Poll::Pending => None,
        };
        Poll::Ready(())
    }));
    result
}

/// Text as one greppable token: no line breaks, tabs or double quotes.
fn one_line<const N: usize>(s: &str) -> String<N> {
    let mut out = String::new();
    for c in s.chars() {
        let c = match c {
            '\n' | '\r' | '\t' => ' ',
            '"' => '\'',
            c => c,
        };
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

/// The summary line of a printer; `total` is the counter `dca scan` shows
/// in its pages column (and the JSON's `total` counter).
fn log_printer(addr: SocketAddr, snap: &Snapshot) {
    let id = &snap.identity;
    let vendor = id.vendor.map_or("-", |v| v.id());
    let model: String<64> = one_line(id.model.as_str());
    let serial: String<64> = one_line(id.serial.as_str());
    let ip = Ip(addr.ip());
    match snap.counter("total") {
        Some(c) => defmt::println!(
            "printer {} vendor={=str} model=\"{=str}\" serial=\"{=str}\" total={=u64}",
            ip,
            vendor,
            model.as_str(),
            serial.as_str(),
            c.value
        ),
        None => defmt::println!(
            "printer {} vendor={=str} model=\"{=str}\" serial=\"{=str}\" total=-",
            ip,
            vendor,
            model.as_str(),
            serial.as_str()
        ),
    }
}

/// An address in its usual text form.
struct Ip(IpAddr);

impl defmt::Format for Ip {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self.0 {
            IpAddr::V4(a) => {
                let [a, b, c, d] = a.octets();
                defmt::write!(f, "{=u8}.{=u8}.{=u8}.{=u8}", a, b, c, d);
            }
            IpAddr::V6(a) => defmt::write!(f, "{}", defmt::Display2Format(&a)),
        }
    }
}
