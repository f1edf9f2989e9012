//! Interrupt-driven driver for the SMSC LAN9118 Ethernet controller, as
//! [`embassy_net_driver::Driver`].
//!
//! Written against QEMU's model on `mps2-an386` (base 0x4020_0000, IRQ 13) and the LAN9118
//! datasheet; the real board's LAN9220 is register-compatible for everything used here.
//!
//! # Use
//!
//! ```text
//! static ETH_STATE: lan9118::State = lan9118::State::new();
//! // SAFETY: the LAN9118 is mapped there on mps2-an386, and only this driver touches it.
//! static ETH_REGS: lan9118::Mmio = unsafe { lan9118::Mmio::new(lan9118::MPS2_AN386_BASE) };
//!
//! static FRAMES: StaticCell<lan9118::Frames> = StaticCell::new();
//!
//! let mut eth = lan9118::Lan9118::new(ETH_REGS, &ETH_STATE, FRAMES.init(lan9118::Frames::new()));
//! eth.init()?;                       // sets IRQ_CFG: only now may IRQ 13 be unmasked
//! NVIC::unpend(Irq13); unsafe { NVIC::unmask(Irq13) };
//! let (stack, runner) = embassy_net::new(eth, config, resources, seed);
//!
//! // in the IRQ 13 handler:
//! lan9118::on_interrupt(&ETH_REGS, &ETH_STATE);
//! ```
//!
//! # Interrupts and wakers
//!
//! [`on_interrupt`] reads INT_STS, masks the level-type sources it saw (RX status, TX room,
//! PHY) in INT_EN, acknowledges them and wakes the matching waker. The driver re-enables a
//! source only when it is about to wait for it (RX FIFO empty, TX FIFO full, link change
//! handled), then checks the FIFO again, so no event is lost and an idle driver does no
//! register polling at all.
//!
//! # Dropped frames
//!
//! Errored, filtered, too short and oversized frames are read out of the data FIFO and
//! dropped (RX_DP_CTRL fast-forward is never used: QEMU's implementation of it moves the FIFO
//! head without accounting for the words skipped, which desynchronises its RX FIFO). A status
//! word that claims more data than the data FIFO holds makes the driver dump both RX FIFOs
//! (RX_CFG.RX_DUMP). Every such event is counted in [`Counters`], readable at any time
//! through [`State::counters`].
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[allow(unsafe_code)]
mod regs;

#[cfg(test)]
mod model;
#[cfg(test)]
mod tests;

use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::task::Context;

use atomic_waker::AtomicWaker;
use embassy_net_driver as driver;
use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};

use regs::*;
pub use regs::{MPS2_AN386_BASE, Mmio, Registers};

/// The Cortex-M interrupt number of the LAN9118 on mps2-an385/an386/an500.
pub const MPS2_AN386_IRQ: u16 = 13;

/// Largest Ethernet frame handed to or taken from the stack (header + payload, no CRC).
pub const MTU: usize = 1514;

/// Length of the CRC the controller leaves at the end of each received frame.
const CRC_LEN: usize = 4;
/// Largest frame accepted from the RX FIFO, CRC included.
const MAX_RX_LEN: usize = MTU + CRC_LEN;
/// Smallest frame accepted: an Ethernet header and the CRC.
const MIN_RX_LEN: usize = 14 + CRC_LEN;
/// The RX buffer holds a maximal frame as whole words.
const RX_BUF_LEN: usize = MAX_RX_LEN.div_ceil(4) * 4;
/// The TX buffer holds a maximal frame as whole words.
const TX_BUF_LEN: usize = MTU.div_ceil(4) * 4;
/// TX FIFO room a maximal frame needs: its words and the two command words.
const TX_ROOM_MAX: u32 = TX_BUF_LEN as u32 + 8;
/// Upper bound on polls of a self-clearing bit (soft reset, CSR and MII busy).
const POLL_LIMIT: u32 = 100_000;
/// Frames dropped in one `receive` call before yielding to the executor.
const RX_DROP_BUDGET: u32 = 32;
/// TX status words drained at most per transmitted frame.
const TX_STATUS_DRAIN_LIMIT: u32 = 64;

/// Why [`Lan9118::init`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// BYTE_TEST did not read 0x8765_4321 (the value read is given): no LAN9118 at this
    /// address, or a bus that swaps bytes or half-words.
    ByteTest(u32),
    /// ID_REV names a chip this driver does not know (the value read is given).
    UnknownChip(u32),
    /// HW_CFG.SRST did not clear after the soft reset.
    ResetTimeout,
    /// PMT_CTRL.READY did not come up after the soft reset.
    NotReady,
    /// MAC_CSR_CMD stayed busy.
    MacCsrTimeout,
    /// The PHY's MII access stayed busy, or its reset bit did not clear.
    MiiTimeout,
    /// The MAC address loaded from the EEPROM is zero or multicast (the value read is given).
    NoMacAddress([u8; 6]),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::ByteTest(v) => write!(
                f,
                "LAN9118 BYTE_TEST read {v:#010x}, expected 0x87654321 \
                 (no controller at this address, or a byte-swapping bus)"
            ),
            InitError::UnknownChip(v) => write!(f, "LAN9118 ID_REV {v:#010x}: unknown chip"),
            InitError::ResetTimeout => f.write_str("LAN9118 soft reset did not complete"),
            InitError::NotReady => f.write_str("LAN9118 did not become ready after reset"),
            InitError::MacCsrTimeout => f.write_str("LAN9118 MAC CSR access timed out"),
            InitError::MiiTimeout => f.write_str("LAN9118 PHY (MII) access timed out"),
            InitError::NoMacAddress(m) => write!(
                f,
                "LAN9118 has no usable MAC address \
                 ({:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x})",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
        }
    }
}

impl core::error::Error for InitError {}

/// A register access that stayed busy past [`POLL_LIMIT`] polls.
#[derive(Debug)]
struct Timeout;

/// A snapshot of the driver's event counters (all wrap around at `u32::MAX`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames handed to the stack.
    pub rx_frames: u32,
    /// Frames dropped because their status word had the error bit (15) set.
    pub rx_errors: u32,
    /// Frames dropped because the address filter flagged them (status bit 30).
    pub rx_filtered: u32,
    /// Frames dropped because they were longer than the MTU plus CRC.
    pub rx_oversized: u32,
    /// Frames dropped because they were shorter than an Ethernet header plus CRC.
    pub rx_runts: u32,
    /// Times the RX FIFOs were dumped because a status word claimed more data than the data
    /// FIFO held.
    pub rx_fifo_resets: u32,
    /// Frames lost in those dumps (as counted by the status FIFO at the time).
    pub rx_flushed: u32,
    /// RX error interrupts (INT_STS.RXE, e.g. a data FIFO underrun).
    pub rx_error_irqs: u32,
    /// Frames written to the TX FIFO.
    pub tx_frames: u32,
    /// TX status words with the error bit (15) set.
    pub tx_errors: u32,
    /// Frames the stack built but that were not sent (no FIFO room, or a bad length).
    pub tx_dropped: u32,
    /// Times `transmit` found no room and waited for the TX room interrupt.
    pub tx_waits: u32,
    /// TX error interrupts (INT_STS.TXE).
    pub tx_error_irqs: u32,
    /// Calls of [`on_interrupt`] (including spurious ones).
    pub interrupts: u32,
    /// PHY accesses that timed out after initialisation (the link state kept its last value).
    pub mii_timeouts: u32,
}

impl Counters {
    /// Received frames dropped for any reason (frames lost in FIFO dumps included).
    pub fn rx_dropped(&self) -> u32 {
        self.rx_errors
            .wrapping_add(self.rx_filtered)
            .wrapping_add(self.rx_oversized)
            .wrapping_add(self.rx_runts)
            .wrapping_add(self.rx_flushed)
    }
}

#[derive(Default)]
struct AtomicCounters {
    rx_frames: AtomicU32,
    rx_errors: AtomicU32,
    rx_filtered: AtomicU32,
    rx_oversized: AtomicU32,
    rx_runts: AtomicU32,
    rx_fifo_resets: AtomicU32,
    rx_flushed: AtomicU32,
    rx_error_irqs: AtomicU32,
    tx_frames: AtomicU32,
    tx_errors: AtomicU32,
    tx_dropped: AtomicU32,
    tx_waits: AtomicU32,
    tx_error_irqs: AtomicU32,
    interrupts: AtomicU32,
    mii_timeouts: AtomicU32,
}

fn bump(c: &AtomicU32) {
    add(c, 1);
}

fn add(c: &AtomicU32, n: u32) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// What the driver and the interrupt handler share: wakers, the interrupt enable mask,
/// the link-changed flag and the counters. Make it a `static`.
pub struct State {
    rx_waker: AtomicWaker,
    tx_waker: AtomicWaker,
    link_waker: AtomicWaker,
    /// The INT_EN value the driver wants. The interrupt handler only clears bits, the driver
    /// only sets them; INT_EN itself may briefly hold a bit more (one extra interrupt, which
    /// masks it again), never less.
    int_en: AtomicU32,
    link_changed: AtomicBool,
    counters: AtomicCounters,
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    /// A fresh state, for a `static`.
    pub const fn new() -> Self {
        State {
            rx_waker: AtomicWaker::new(),
            tx_waker: AtomicWaker::new(),
            link_waker: AtomicWaker::new(),
            int_en: AtomicU32::new(0),
            link_changed: AtomicBool::new(false),
            counters: AtomicCounters {
                rx_frames: AtomicU32::new(0),
                rx_errors: AtomicU32::new(0),
                rx_filtered: AtomicU32::new(0),
                rx_oversized: AtomicU32::new(0),
                rx_runts: AtomicU32::new(0),
                rx_fifo_resets: AtomicU32::new(0),
                rx_flushed: AtomicU32::new(0),
                rx_error_irqs: AtomicU32::new(0),
                tx_frames: AtomicU32::new(0),
                tx_errors: AtomicU32::new(0),
                tx_dropped: AtomicU32::new(0),
                tx_waits: AtomicU32::new(0),
                tx_error_irqs: AtomicU32::new(0),
                interrupts: AtomicU32::new(0),
                mii_timeouts: AtomicU32::new(0),
            },
        }
    }

    /// The counters as they are now.
    pub fn counters(&self) -> Counters {
        let c = &self.counters;
        let l = |a: &AtomicU32| a.load(Ordering::Relaxed);
        Counters {
            rx_frames: l(&c.rx_frames),
            rx_errors: l(&c.rx_errors),
            rx_filtered: l(&c.rx_filtered),
            rx_oversized: l(&c.rx_oversized),
            rx_runts: l(&c.rx_runts),
            rx_fifo_resets: l(&c.rx_fifo_resets),
            rx_flushed: l(&c.rx_flushed),
            rx_error_irqs: l(&c.rx_error_irqs),
            tx_frames: l(&c.tx_frames),
            tx_errors: l(&c.tx_errors),
            tx_dropped: l(&c.tx_dropped),
            tx_waits: l(&c.tx_waits),
            tx_error_irqs: l(&c.tx_error_irqs),
            interrupts: l(&c.interrupts),
            mii_timeouts: l(&c.mii_timeouts),
        }
    }

    /// Adds `bits` to the wanted interrupt mask and writes it to INT_EN (driver side).
    fn enable<R: Registers + ?Sized>(&self, regs: &R, bits: u32) {
        let v = self.int_en.fetch_or(bits, Ordering::AcqRel) | bits;
        regs.write(INT_EN, v);
    }

    /// Removes `bits` from the wanted interrupt mask and writes it to INT_EN (handler side).
    fn disable<R: Registers + ?Sized>(&self, regs: &R, bits: u32) {
        let v = self.int_en.fetch_and(!bits, Ordering::AcqRel) & !bits;
        regs.write(INT_EN, v);
    }

    fn set_mask<R: Registers + ?Sized>(&self, regs: &R, bits: u32) {
        self.int_en.store(bits, Ordering::Release);
        regs.write(INT_EN, bits);
    }
}

/// The LAN9118's interrupt handler: call it from the IRQ 13 handler (mps2-an386).
///
/// Reads INT_STS, masks the sources that stay asserted until the driver has served them
/// (RX status, TX room, PHY), acknowledges what it saw and wakes the driver. Safe to call
/// spuriously.
pub fn on_interrupt<R: Registers + ?Sized>(regs: &R, state: &State) {
    bump(&state.counters.interrupts);
    let pending = regs.read(INT_STS) & regs.read(INT_EN);
    if pending == 0 {
        return;
    }
    let mask = pending & (INT_RSFL | INT_TDFA | INT_PHY);
    if mask != 0 {
        state.disable(regs, mask);
    }
    regs.write(INT_STS, pending);
    if pending & INT_RXE != 0 {
        bump(&state.counters.rx_error_irqs);
    }
    if pending & INT_TXE != 0 {
        bump(&state.counters.tx_error_irqs);
    }
    if pending & INT_PHY != 0 {
        state.link_changed.store(true, Ordering::Release);
        state.link_waker.wake();
    }
    if pending & (INT_RSFL | INT_RXE) != 0 {
        state.rx_waker.wake();
    }
    if pending & (INT_TDFA | INT_TXE) != 0 {
        state.tx_waker.wake();
    }
}

/// The frame being received and the one being sent. Kept apart from the
/// driver, in the caller's static memory: the driver value is moved into
/// the network stack and its task several times, and 3 KiB of buffers in it
/// would be copied across the stack each time.
pub struct Frames {
    rx: [u8; RX_BUF_LEN],
    tx: [u8; TX_BUF_LEN],
}

impl Frames {
    /// Zeroed buffers (a `static` of them costs no flash).
    pub const fn new() -> Self {
        Frames {
            rx: [0; RX_BUF_LEN],
            tx: [0; TX_BUF_LEN],
        }
    }
}

impl Default for Frames {
    fn default() -> Self {
        Self::new()
    }
}

/// The driver. Build it with [`Lan9118::new`], bring the controller up with
/// [`Lan9118::init`], then hand it to `embassy_net::new` (it implements
/// [`embassy_net_driver::Driver`]).
pub struct Lan9118<'s, R: Registers> {
    regs: R,
    state: &'s State,
    mac: [u8; 6],
    link_up: bool,
    ready: bool,
    tx_tag: u16,
    rx_buf: &'s mut [u8; RX_BUF_LEN],
    tx_buf: &'s mut [u8; TX_BUF_LEN],
}

impl<'s, R: Registers> Lan9118<'s, R> {
    /// A driver for the controller behind `regs`, sharing `state` with [`on_interrupt`],
    /// with `frames` for its buffers. Touches no register: call [`init`](Self::init) next.
    pub fn new(regs: R, state: &'s State, frames: &'s mut Frames) -> Self {
        Lan9118 {
            regs,
            state,
            mac: [0; 6],
            link_up: false,
            ready: false,
            tx_tag: 0,
            rx_buf: &mut frames.rx,
            tx_buf: &mut frames.tx,
        }
    }

    /// Checks for the controller, resets it and brings the MAC and PHY up.
    ///
    /// On return IRQ_CFG is 0x111 (enabled, active high, push-pull), so the application may
    /// now unmask the controller's interrupt in the NVIC (and should clear its pending bit
    /// first: until this point QEMU drove the line active-low, i.e. asserted).
    pub fn init(&mut self) -> Result<(), InitError> {
        self.ready = false;
        let r = &self.regs;

        let byte_test = r.read(BYTE_TEST);
        if byte_test != BYTE_TEST_VALUE {
            return Err(InitError::ByteTest(byte_test));
        }
        let id_rev = r.read(ID_REV);
        if !known_chip(id_rev >> 16) {
            return Err(InitError::UnknownChip(id_rev));
        }

        self.state.set_mask(r, 0);
        r.write(HW_CFG, HW_CFG_SRST);
        poll_clear(|| r.read(HW_CFG) & HW_CFG_SRST != 0).map_err(|_| InitError::ResetTimeout)?;
        poll_clear(|| r.read(PMT_CTRL) & PMT_CTRL_READY == 0).map_err(|_| InitError::NotReady)?;

        // The soft reset cleared IRQ_EN; set polarity and type before anything can assert.
        r.write(IRQ_CFG, IRQ_CFG_VALUE);
        self.state.set_mask(r, 0);
        r.write(INT_STS, u32::MAX);
        r.write(FIFO_INT, FIFO_INT_VALUE);

        let csr = |_| InitError::MacCsrTimeout;
        let lo = self.mac_csr_read(MAC_ADDRL).map_err(csr)?;
        let hi = self.mac_csr_read(MAC_ADDRH).map_err(csr)?;
        let [a, b, c, d] = lo.to_le_bytes();
        let [e, f, _, _] = hi.to_le_bytes();
        let mac = [a, b, c, d, e, f];
        if mac == [0; 6] || mac[0] & 1 != 0 {
            return Err(InitError::NoMacAddress(mac));
        }
        self.mac = mac;

        let mii = |_| InitError::MiiTimeout;
        self.phy_write(PHY_BMCR, BMCR_RESET).map_err(mii)?;
        let mut polls = 0;
        while self.phy_read(PHY_BMCR).map_err(mii)? & BMCR_RESET != 0 {
            polls += 1;
            if polls >= POLL_LIMIT {
                return Err(InitError::MiiTimeout);
            }
        }
        self.phy_write(PHY_ANAR, ANAR_VALUE).map_err(mii)?;
        self.phy_write(PHY_BMCR, BMCR_ANEG).map_err(mii)?;
        // The PHY reset cleared its interrupt mask; clear what it latched meanwhile.
        self.phy_write(PHY_INT_MASK, PHY_INT_LINK).map_err(mii)?;
        self.phy_read(PHY_INT_SRC).map_err(mii)?;
        self.link_up = self.read_link().map_err(mii)?;

        self.mac_csr_write(MAC_CR, MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_FDPX)
            .map_err(csr)?;
        self.regs.write(TX_CFG, TX_CFG_VALUE);
        self.regs.write(RX_CFG, 0);

        self.regs.write(INT_STS, u32::MAX);
        self.state.link_changed.store(false, Ordering::Release);
        self.state
            .set_mask(&self.regs, INT_RSFL | INT_RXE | INT_TXE | INT_PHY);
        self.ready = true;
        Ok(())
    }

    /// The MAC address read from the controller by [`init`](Self::init).
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    /// The link state as last read from the PHY.
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// The driver's counters (the same as [`State::counters`]).
    pub fn counters(&self) -> Counters {
        self.state.counters()
    }

    fn mac_csr_wait(&self) -> Result<(), Timeout> {
        poll_clear(|| self.regs.read(MAC_CSR_CMD) & MAC_CSR_BUSY != 0)
    }

    fn mac_csr_read(&self, index: u32) -> Result<u32, Timeout> {
        self.mac_csr_wait()?;
        self.regs
            .write(MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | index);
        self.mac_csr_wait()?;
        Ok(self.regs.read(MAC_CSR_DATA))
    }

    fn mac_csr_write(&self, index: u32, v: u32) -> Result<(), Timeout> {
        self.mac_csr_wait()?;
        self.regs.write(MAC_CSR_DATA, v);
        self.regs.write(MAC_CSR_CMD, MAC_CSR_BUSY | index);
        self.mac_csr_wait()
    }

    fn mii_wait(&self) -> Result<(), Timeout> {
        let mut polls = 0;
        while self.mac_csr_read(MII_ACC)? & MII_ACC_BUSY != 0 {
            polls += 1;
            if polls >= POLL_LIMIT {
                return Err(Timeout);
            }
        }
        Ok(())
    }

    fn phy_read(&self, reg: u32) -> Result<u32, Timeout> {
        self.mii_wait()?;
        self.mac_csr_write(MII_ACC, (PHY_ADDR << 11) | (reg << 6) | MII_ACC_BUSY)?;
        self.mii_wait()?;
        Ok(self.mac_csr_read(MII_DATA)? & 0xFFFF)
    }

    fn phy_write(&self, reg: u32, v: u32) -> Result<(), Timeout> {
        self.mii_wait()?;
        self.mac_csr_write(MII_DATA, v & 0xFFFF)?;
        self.mac_csr_write(
            MII_ACC,
            (PHY_ADDR << 11) | (reg << 6) | MII_ACC_WRITE | MII_ACC_BUSY,
        )?;
        self.mii_wait()
    }

    /// BMSR's link bit latches low on a real PHY: the second read gives the current state.
    fn read_link(&self) -> Result<bool, Timeout> {
        self.phy_read(PHY_BMSR)?;
        Ok(self.phy_read(PHY_BMSR)? & BMSR_LINK != 0)
    }

    /// Reads the next good frame into `rx_buf` and returns its length without the CRC.
    /// Drops bad frames on the way; returns `None` when the FIFO is empty (RX interrupt
    /// re-armed) or after dropping [`RX_DROP_BUDGET`] frames (the task is woken again).
    fn next_frame(&mut self, cx: &mut Context) -> Option<usize> {
        let counters = &self.state.counters;
        for _ in 0..RX_DROP_BUDGET {
            let mut inf = self.regs.read(RX_FIFO_INF);
            if rx_status_used(inf) == 0 {
                if self.state.int_en.load(Ordering::Acquire) & INT_RSFL != 0 {
                    return None; // already armed: the next frame interrupts
                }
                // Idle: acknowledge the events of frames already read, unmask, look again.
                self.regs.write(INT_STS, INT_RSFL);
                self.state.enable(&self.regs, INT_RSFL);
                inf = self.regs.read(RX_FIFO_INF);
                if rx_status_used(inf) == 0 {
                    return None;
                }
            }
            let status = self.regs.read(RX_STATUS_FIFO);
            let len = ((status >> RXS_LEN_SHIFT) & RXS_LEN_MASK) as usize;
            let words = len.div_ceil(4);
            if words * 4 > rx_data_used(inf) {
                self.dump_rx(rx_status_used(inf));
                continue;
            }
            let dropped = if status & RXS_ERROR != 0 {
                Some(&counters.rx_errors)
            } else if status & RXS_FILTER_FAIL != 0 {
                Some(&counters.rx_filtered)
            } else if len > MAX_RX_LEN {
                Some(&counters.rx_oversized)
            } else if len < MIN_RX_LEN {
                Some(&counters.rx_runts)
            } else {
                None
            };
            if let Some(counter) = dropped {
                for _ in 0..words {
                    self.regs.read(RX_DATA_FIFO);
                }
                bump(counter);
                continue;
            }
            for chunk in self.rx_buf[..words * 4].chunks_exact_mut(4) {
                chunk.copy_from_slice(&self.regs.read(RX_DATA_FIFO).to_le_bytes());
            }
            bump(&counters.rx_frames);
            return Some(len - CRC_LEN);
        }
        cx.waker().wake_by_ref();
        None
    }

    /// Throws away everything in the RX FIFOs after they disagreed; `status_used` frames
    /// were waiting besides the one whose status was just popped.
    fn dump_rx(&self, status_used: u32) {
        self.regs.write(RX_CFG, RX_CFG_RX_DUMP);
        // Self-clearing on real hardware; QEMU does it at once. A timeout only means the
        // next status check sees the FIFOs still inconsistent and dumps them again.
        let _ = poll_clear(|| self.regs.read(RX_CFG) & RX_CFG_RX_DUMP != 0);
        let c = &self.state.counters;
        bump(&c.rx_fifo_resets);
        add(&c.rx_flushed, status_used);
    }

    fn tx_room(&self) -> u32 {
        self.regs.read(TX_FIFO_INF) & 0xFFFF
    }
}

fn rx_status_used(rx_fifo_inf: u32) -> u32 {
    (rx_fifo_inf >> 16) & 0xFF
}

fn rx_data_used(rx_fifo_inf: u32) -> usize {
    (rx_fifo_inf & 0xFFFF) as usize
}

/// LAN9115/6/7/8, LAN9215/6/7/8 and LAN9210/1/20/21 (the MPS2 board's LAN9220).
fn known_chip(id: u32) -> bool {
    matches!(
        id,
        0x0115..=0x0118
            | 0x115A
            | 0x116A
            | 0x117A
            | 0x118A
            | 0x9115..=0x9118 | 0x9210 | 0x9211 | 0x9220 | 0x9221
    )
}

fn poll_clear(mut busy: impl FnMut() -> bool) -> Result<(), Timeout> {
    for _ in 0..POLL_LIMIT {
        if !busy() {
            return Ok(());
        }
    }
    Err(Timeout)
}

impl<'s, R: Registers> driver::Driver for Lan9118<'s, R> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, R>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context) -> Option<(RxToken<'_>, TxToken<'_, R>)> {
        if !self.ready {
            return None;
        }
        self.state.rx_waker.register(cx.waker());
        let len = self.next_frame(cx)?;
        let Lan9118 {
            regs,
            state,
            rx_buf,
            tx_buf,
            tx_tag,
            ..
        } = self;
        Some((
            RxToken {
                frame: &mut rx_buf[..len],
            },
            TxToken {
                regs,
                state,
                buf: tx_buf,
                tag: tx_tag,
            },
        ))
    }

    fn transmit(&mut self, cx: &mut Context) -> Option<TxToken<'_, R>> {
        if !self.ready {
            return None;
        }
        if self.tx_room() < TX_ROOM_MAX {
            self.state.tx_waker.register(cx.waker());
            self.regs.write(INT_STS, INT_TDFA);
            self.state.enable(&self.regs, INT_TDFA);
            if self.tx_room() < TX_ROOM_MAX {
                bump(&self.state.counters.tx_waits);
                return None;
            }
        }
        Some(TxToken {
            regs: &self.regs,
            state: self.state,
            buf: self.tx_buf,
            tag: &mut self.tx_tag,
        })
    }

    fn link_state(&mut self, cx: &mut Context) -> LinkState {
        if !self.ready {
            return LinkState::Down;
        }
        self.state.link_waker.register(cx.waker());
        if self.state.link_changed.swap(false, Ordering::AcqRel) {
            // Reading the PHY's interrupt source clears it (and the PHY_INT line).
            match self.phy_read(PHY_INT_SRC).and_then(|_| self.read_link()) {
                Ok(up) => self.link_up = up,
                Err(Timeout) => bump(&self.state.counters.mii_timeouts),
            }
            self.state.enable(&self.regs, INT_PHY);
        }
        if self.link_up {
            LinkState::Up
        } else {
            LinkState::Down
        }
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MTU;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}

/// A received frame (CRC removed), lent to the stack.
pub struct RxToken<'a> {
    frame: &'a mut [u8],
}

impl driver::RxToken for RxToken<'_> {
    fn consume<T, F>(self, f: F) -> T
    where
        F: FnOnce(&mut [u8]) -> T,
    {
        f(self.frame)
    }
}

/// Room to send one frame.
pub struct TxToken<'a, R: Registers> {
    regs: &'a R,
    state: &'a State,
    buf: &'a mut [u8; TX_BUF_LEN],
    tag: &'a mut u16,
}

impl<R: Registers> driver::TxToken for TxToken<'_, R> {
    fn consume<T, F>(self, len: usize, f: F) -> T
    where
        F: FnOnce(&mut [u8]) -> T,
    {
        let counters = &self.state.counters;
        let result = f(&mut self.buf[..len.min(TX_BUF_LEN)]);
        let padded = len.div_ceil(4) * 4;
        if len == 0 || len > MTU || (self.regs.read(TX_FIFO_INF) & 0xFFFF) < padded as u32 + 8 {
            // Only a token from `receive` can meet a full FIFO, and only on real hardware
            // with a stalled transmitter; `transmit` checks the room first.
            bump(&counters.tx_dropped);
            return result;
        }
        self.buf[len..padded].fill(0);
        *self.tag = self.tag.wrapping_add(1);
        let len32 = len as u32;
        self.regs.write(TX_DATA_FIFO, TXA_FIRST | TXA_LAST | len32);
        self.regs
            .write(TX_DATA_FIFO, (u32::from(*self.tag) << 16) | len32);
        for chunk in self.buf[..padded].chunks_exact(4) {
            let word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            self.regs.write(TX_DATA_FIFO, word);
        }
        bump(&counters.tx_frames);
        // Pop the status words that are ready (QEMU: this frame's, at once).
        for _ in 0..TX_STATUS_DRAIN_LIMIT {
            if (self.regs.read(TX_FIFO_INF) >> 16) & 0xFF == 0 {
                break;
            }
            if self.regs.read(TX_STATUS_FIFO) & TXS_ERROR != 0 {
                bump(&counters.tx_errors);
            }
        }
        result
    }
}
