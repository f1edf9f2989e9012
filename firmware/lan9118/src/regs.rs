//! Register access: the offsets and bits the driver uses, the [`Registers`] trait, and the
//! memory-mapped implementation [`Mmio`] (the only `unsafe` code in this crate).

/// Base address of the LAN9118 on the MPS2 AN385/AN386/AN500 boards (and QEMU's models).
pub const MPS2_AN386_BASE: usize = 0x4020_0000;

/// 32-bit access to the controller's registers, by byte offset from its base.
///
/// Both methods take `&self`: the driver and the interrupt handler each hold a handle to the
/// same device. Reads of FIFO ports have side effects (they pop), so an implementation must
/// not cache or merge accesses.
pub trait Registers {
    /// Reads the 32-bit register at byte offset `off`.
    fn read(&self, off: u32) -> u32;
    /// Writes `v` to the 32-bit register at byte offset `off`.
    fn write(&self, off: u32, v: u32);
}

impl<T: Registers + ?Sized> Registers for &T {
    fn read(&self, off: u32) -> u32 {
        (**self).read(off)
    }
    fn write(&self, off: u32, v: u32) {
        (**self).write(off, v)
    }
}

/// Volatile 32-bit accesses to a memory-mapped LAN9118.
///
/// `Copy`, so the application can keep one in a `static` and use it both to build the driver
/// and from the interrupt handler.
#[derive(Clone, Copy, Debug)]
pub struct Mmio {
    base: usize,
}

impl Mmio {
    /// A handle to the controller mapped at `base`.
    ///
    /// # Safety
    ///
    /// `base` must be the address of a LAN9118 register block (256 bytes, 32-bit accessible)
    /// that stays mapped for the program's life, and nothing but this crate's driver and
    /// [`on_interrupt`](crate::on_interrupt) may access it.
    pub const unsafe fn new(base: usize) -> Self {
        Mmio { base }
    }

    /// The base address this handle accesses.
    pub const fn base(&self) -> usize {
        self.base
    }
}

impl Registers for Mmio {
    fn read(&self, off: u32) -> u32 {
        debug_assert!(off < 0x100 && off % 4 == 0);
        let addr = (self.base + (off as usize & 0xFC)) as *const u32;
        // SAFETY: `Mmio::new`'s contract: `base` maps a 256-byte register block, and the
        // offset is masked into it and word-aligned.
        unsafe { core::ptr::read_volatile(addr) }
    }

    fn write(&self, off: u32, v: u32) {
        debug_assert!(off < 0x100 && off % 4 == 0);
        let addr = (self.base + (off as usize & 0xFC)) as *mut u32;
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile(addr, v) }
    }
}

// System control and status registers (byte offsets).
pub(crate) const RX_DATA_FIFO: u32 = 0x00;
pub(crate) const TX_DATA_FIFO: u32 = 0x20;
pub(crate) const RX_STATUS_FIFO: u32 = 0x40;
pub(crate) const TX_STATUS_FIFO: u32 = 0x48;
pub(crate) const ID_REV: u32 = 0x50;
pub(crate) const IRQ_CFG: u32 = 0x54;
pub(crate) const INT_STS: u32 = 0x58;
pub(crate) const INT_EN: u32 = 0x5C;
pub(crate) const BYTE_TEST: u32 = 0x64;
pub(crate) const FIFO_INT: u32 = 0x68;
pub(crate) const RX_CFG: u32 = 0x6C;
pub(crate) const TX_CFG: u32 = 0x70;
pub(crate) const HW_CFG: u32 = 0x74;
pub(crate) const RX_FIFO_INF: u32 = 0x7C;
pub(crate) const TX_FIFO_INF: u32 = 0x80;
pub(crate) const PMT_CTRL: u32 = 0x84;
pub(crate) const MAC_CSR_CMD: u32 = 0xA4;
pub(crate) const MAC_CSR_DATA: u32 = 0xA8;

pub(crate) const BYTE_TEST_VALUE: u32 = 0x8765_4321;

/// IRQ_CFG: IRQ_EN | IRQ_POL (active high) | IRQ_TYPE (push-pull).
pub(crate) const IRQ_CFG_VALUE: u32 = 0x0000_0111;

// INT_STS / INT_EN bits.
pub(crate) const INT_RSFL: u32 = 1 << 3;
pub(crate) const INT_TDFA: u32 = 1 << 9;
pub(crate) const INT_TXE: u32 = 1 << 13;
pub(crate) const INT_RXE: u32 = 1 << 14;
pub(crate) const INT_PHY: u32 = 1 << 18;

pub(crate) const HW_CFG_SRST: u32 = 1 << 0;
pub(crate) const PMT_CTRL_READY: u32 = 1 << 0;
pub(crate) const RX_CFG_RX_DUMP: u32 = 1 << 15;
/// TX_CFG: TX_ON | TXSAO (TX status FIFO may overrun rather than stall the transmitter).
pub(crate) const TX_CFG_VALUE: u32 = 0x0000_0006;
/// FIFO_INT: TX data available level (bits 31:24, 64-byte units) = 24, i.e. room for a
/// full frame and its command words; RX status level 0 (an interrupt per frame).
pub(crate) const FIFO_INT_VALUE: u32 = 24 << 24;

pub(crate) const MAC_CSR_BUSY: u32 = 1 << 31;
pub(crate) const MAC_CSR_READ: u32 = 1 << 30;

// MAC CSR indices (only those QEMU implements are used: never 10-12).
pub(crate) const MAC_CR: u32 = 1;
pub(crate) const MAC_ADDRH: u32 = 2;
pub(crate) const MAC_ADDRL: u32 = 3;
pub(crate) const MII_ACC: u32 = 6;
pub(crate) const MII_DATA: u32 = 7;

pub(crate) const MAC_CR_RXEN: u32 = 1 << 2;
pub(crate) const MAC_CR_TXEN: u32 = 1 << 3;
/// Promiscuous mode: on after reset in QEMU; the driver writes MAC_CR without it.
#[cfg(test)]
pub(crate) const MAC_CR_PRMS: u32 = 1 << 18;
pub(crate) const MAC_CR_FDPX: u32 = 1 << 20;

pub(crate) const MII_ACC_BUSY: u32 = 1 << 0;
pub(crate) const MII_ACC_WRITE: u32 = 1 << 1;
/// The internal PHY's MII address.
pub(crate) const PHY_ADDR: u32 = 1;

// PHY registers (only those QEMU implements are used: never 17, 18, 27 or 31).
pub(crate) const PHY_BMCR: u32 = 0;
pub(crate) const PHY_BMSR: u32 = 1;
pub(crate) const PHY_ANAR: u32 = 4;
pub(crate) const PHY_INT_SRC: u32 = 29;
pub(crate) const PHY_INT_MASK: u32 = 30;

pub(crate) const BMCR_RESET: u32 = 0x8000;
/// Auto-negotiation enable | restart auto-negotiation.
pub(crate) const BMCR_ANEG: u32 = 0x1200;
pub(crate) const ANAR_VALUE: u32 = 0x01E1;
pub(crate) const BMSR_LINK: u32 = 1 << 2;
/// PHY interrupt sources: auto-negotiation complete | link down.
pub(crate) const PHY_INT_LINK: u32 = 0x40 | 0x10;

// RX status word.
pub(crate) const RXS_LEN_SHIFT: u32 = 16;
pub(crate) const RXS_LEN_MASK: u32 = 0x3FFF;
pub(crate) const RXS_ERROR: u32 = 1 << 15;
pub(crate) const RXS_FILTER_FAIL: u32 = 1 << 30;

// TX command words and status.
pub(crate) const TXA_FIRST: u32 = 1 << 13;
pub(crate) const TXA_LAST: u32 = 1 << 12;
pub(crate) const TXS_ERROR: u32 = 1 << 15;
