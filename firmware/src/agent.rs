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
use crate::board::{self, Interrupt, interrupt};
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
/// Target expressions in the block, at most.
const MAX_TARGETS: usize = 16;

/// Largest request sent: one unfragmented UDP payload on Ethernet (the
/// scan's requests are far smaller).
const REQUEST: usize = 1472;
/// Largest answer handled: what the stack reassembles (smoltcp's reassembly
/// buffer, see Cargo.toml) less the IPv4 and UDP headers. Longer answers
/// are dropped and counted; the walker then asks for less.
const ANSWER: usize = 4096 - 28;
const RX_PACKETS: usize = 24;
const RX_BYTES: usize = 8 * 1024;
const TX_PACKETS: usize = 8;
const TX_BYTES: usize = 4 * 1024;

type Device = Lan9118<'static, Mmio>;

static ETH_STATE: lan9118::State = lan9118::State::new();
/// The driver's frame buffers (all zero: .bss).
static ETH_FRAMES: ConstStaticCell<Frames> = ConstStaticCell::new(Frames::new());
// SAFETY: the LAN9118 is mapped at this address on mps2-an386, and only the
// driver and its interrupt handler touch it.
static ETH_REGS: Mmio = unsafe { Mmio::new(MPS2_AN386_BASE) };

// The large tables are built in place in static memory (ConstStaticCell):
// built at run time they would pass through the stack first.

/// The DHCP socket and the agent's UDP socket.
static RESOURCES: ConstStaticCell<StackResources<2>> = ConstStaticCell::new(StackResources::new());

/// The socket's payload buffers (all zero: .bss, not flash).
struct Buffers {
    rx: [u8; RX_BYTES],
    tx: [u8; TX_BYTES],
}
static BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers {
    rx: [0; RX_BYTES],
    tx: [0; TX_BYTES],
});
/// The datagram being sent and the one being read (static: in the sweep's
/// future they would be copied through the stack whenever it moves).
struct Datagrams {
    out: [u8; REQUEST],
    inp: [u8; ANSWER],
}
static DATAGRAMS: ConstStaticCell<Datagrams> = ConstStaticCell::new(Datagrams {
    out: [0; REQUEST],
    inp: [0; ANSWER],
});
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

fn now() -> CoreInstant {
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
    let seed = match board::entropy::generator(&mut source) {
        Ok(mut rng) => {
            defmt::info!("agent: random source: {=str}", source.describe());
            rng.next_u64()
        }
        Err(e) => {
            defmt::warn!(
                "agent: no random source ({}): the network stack is seeded from the MAC and the clock, which is weak",
                e
            );
            weak_seed(mac)
        }
    };

    let (stack, runner) = embassy_net::new(
        eth,
        Config::dhcpv4(DhcpConfig::default()),
        RESOURCES.take(),
        seed,
    );
    spawner.spawn(unwrap_spawn(net_task(runner)));
    spawner.spawn(unwrap_spawn(link_task(stack)));

    bring_up(stack, prov).await;

    let buffers = BUFFERS.take();
    let mut socket = UdpSocket::new(
        stack,
        RX_META.take(),
        &mut buffers.rx,
        TX_META.take(),
        &mut buffers.tx,
    );
    if socket.bind(0).is_err() {
        defmt::error!("agent: cannot bind the UDP socket");
        board::exit(false);
    }
    defmt::info!("agent: UDP socket on port {=u16}", socket.endpoint().port);

    let datagrams = DATAGRAMS.take();
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
    match &prov.cloud {
        None => defmt::info!("agent: no cloud in the block: printers are logged only"),
        Some(c) if c.ca.is_empty() => defmt::warn!(
            "agent: cloud {=str}, trusted by {=usize} key pin(s); this image does not deliver yet: printers are logged only",
            c.url.as_str(),
            c.pins.len()
        ),
        Some(c) => defmt::warn!(
            "agent: cloud {=str}, trusted through a CA of {=usize} bytes; this image does not deliver yet: printers are logged only",
            c.url.as_str(),
            c.ca.len()
        ),
    }
    defmt::info!(
        "agent: memory kept: scan {=usize} bytes ({=usize} probes), {=usize} walk slot(s) of {=usize} bytes (the snapshot, {=usize} bytes, is built inside), socket buffers {=usize} bytes",
        core::mem::size_of::<Scan<'static, core::iter::Empty<IpAddr>, PROBES, WALK_SLOTS>>(),
        PROBES,
        WALK_SLOTS,
        core::mem::size_of::<WalkSlot>(),
        core::mem::size_of::<Snapshot>(),
        core::mem::size_of::<Buffers>()
    );

    let mut ignored_total = 0u64;
    let mut sweep = 0u32;
    loop {
        sweep = sweep.wrapping_add(1);
        let started = Instant::now();
        if !stack.is_config_up() {
            defmt::warn!("agent: no address, waiting before sweep {=u32}", sweep);
            stack.wait_config_up().await;
        }
        let ignored = run_sweep(&socket, &cfg, &targets, slots, datagrams, sweep).await;
        ignored_total = ignored_total.saturating_add(ignored);
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
        if prov.sweeps != 0 && sweep >= prov.sweeps {
            break;
        }
        let next = started + Duration::from_secs(u64::from(prov.schedule_s));
        Timer::at(next).await;
    }
    socket.close();
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

/// One sweep over the targets; returns the datagrams it ignored.
async fn run_sweep(
    socket: &UdpSocket<'_>,
    cfg: &ScanConfig,
    targets: &[Target],
    slots: &mut [WalkSlot],
    datagrams: &mut Datagrams,
    sweep: u32,
) -> u64 {
    let started = Instant::now();
    let mut scan: Scan<'_, _, PROBES, WALK_SLOTS> =
        Scan::new(cfg.clone(), addresses(targets, &[]), slots, now());
    let Datagrams { out, inp } = datagrams;
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
            match try_recv(socket, inp) {
                None => break,
                Some(Ok((n, from))) => {
                    busy = true;
                    if let Some(d) = inp.get(..n) {
                        scan.handle_datagram(now(), from, d);
                    }
                }
                Some(Err(RecvError::Truncated)) => {
                    busy = true;
                    oversized = oversized.saturating_add(1);
                }
            }
        }
        printers = printers.saturating_add(drain_events(&mut scan));
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
    ignored
}

/// Logs the printers whose walks ended; returns how many. Each snapshot is
/// read where its walk slot built it.
fn drain_events<I: Iterator<Item = IpAddr>>(scan: &mut Scan<'_, I, PROBES, WALK_SLOTS>) -> u32 {
    let mut printers = 0u32;
    while let Some(event) = scan.poll_event() {
        match event {
            Event::Walked { slot } => {
                if let Some((addr, snapshot)) = scan.finish_walk(slot)
                    && snapshot.is_printer()
                {
                    printers = printers.saturating_add(1);
                    log_printer(addr, snapshot);
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
