//! A host-side model of the LAN9118 as QEMU emulates it (hw/net/lan9118.c), for the unit
//! tests: the FIFOs with their per-frame bookkeeping, the MAC CSR and MII indirection, the
//! PHY's interrupt source, INT_STS/INT_EN and the IRQ line's polarity.
//!
//! It panics where QEMU aborts or logs an error (unknown registers, MAC CSR 10-12, PHY
//! registers it does not implement) and on RX_DP_CTRL fast-forward, whose QEMU implementation
//! desynchronises the RX FIFO: the driver must use none of them.

use std::cell::RefCell;
use std::collections::VecDeque;

use crate::regs::*;

const TX_FIFO_SIZE: u32 = 4608;
/// QEMU's RX data FIFO, in words.
const RX_DATA_WORDS: usize = 2640;
/// QEMU's RX status FIFO, in entries.
const RX_STATUS_ENTRIES: usize = 176;
/// The CRC the model appends to every received frame (QEMU computes a real one).
pub const FAKE_CRC: [u8; 4] = [0xC1, 0xC2, 0xC3, 0xC4];
pub const MODEL_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

const INT_RESERVED: u32 = 0x7C00_1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read(u32, u32),
    Write(u32, u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TxState {
    Idle,
    CmdB,
    Data,
}

pub struct Inner {
    pub byte_test: u32,
    pub id_rev: u32,
    /// Reads of HW_CFG that still show SRST after a soft reset.
    pub reset_delay: u32,
    reset_left: u32,
    pub irq_cfg: u32,
    pub int_sts: u32,
    pub int_en: u32,
    pub fifo_int: u32,
    pub rx_cfg: u32,
    pub tx_cfg: u32,
    pub hw_cfg: u32,
    pub pmt_ctrl: u32,
    pub mac_cmd: u32,
    pub mac_data: u32,
    pub mac_cr: u32,
    pub mac: [u8; 6],
    pub mii_acc: u32,
    pub mii_data: u32,
    pub bmcr: u32,
    pub bmsr: u32,
    pub anar: u32,
    pub phy_int: u32,
    pub phy_int_mask: u32,
    pub link: bool,
    pub rx_status: VecDeque<u32>,
    pub rx_data: VecDeque<u32>,
    rx_frame_words: VecDeque<usize>,
    rx_left: usize,
    rx_status_last: u32,
    pub rx_underruns: u32,
    tx_state: TxState,
    tx_cmd_a: u32,
    tx_cmd_b: u32,
    tx_left: usize,
    tx_frame: Vec<u8>,
    /// Every word written to the TX data FIFO.
    pub tx_words: Vec<u32>,
    /// Frames sent on the wire.
    pub sent: Vec<Vec<u8>>,
    pub tx_status: VecDeque<u32>,
    /// Free bytes TX_FIFO_INF reports.
    pub tx_room: u32,
    /// Set the error bit in the next TX status.
    pub tx_fail_next: bool,
    pub tx_overflows: u32,
    pub log: Vec<Access>,
}

pub struct Model(pub RefCell<Inner>);

impl Model {
    /// The controller as QEMU powers it up (link up, promiscuous, IRQ active-low).
    pub fn new() -> Self {
        let mut m = Inner {
            byte_test: BYTE_TEST_VALUE,
            id_rev: 0x0118_0001,
            reset_delay: 0,
            reset_left: 0,
            irq_cfg: 0,
            int_sts: 0,
            int_en: 0,
            fifo_int: 0,
            rx_cfg: 0,
            tx_cfg: 0,
            hw_cfg: 0,
            pmt_ctrl: 1,
            mac_cmd: 0,
            mac_data: 0,
            mac_cr: 0,
            mac: MODEL_MAC,
            mii_acc: 0,
            mii_data: 0,
            bmcr: 0,
            bmsr: 0,
            anar: 0,
            phy_int: 0,
            phy_int_mask: 0,
            link: true,
            rx_status: VecDeque::new(),
            rx_data: VecDeque::new(),
            rx_frame_words: VecDeque::new(),
            rx_left: 0,
            rx_status_last: 0,
            rx_underruns: 0,
            tx_state: TxState::Idle,
            tx_cmd_a: 0,
            tx_cmd_b: 0,
            tx_left: 0,
            tx_frame: Vec::new(),
            tx_words: Vec::new(),
            sent: Vec::new(),
            tx_status: VecDeque::new(),
            tx_room: TX_FIFO_SIZE,
            tx_fail_next: false,
            tx_overflows: 0,
            log: Vec::new(),
        };
        m.reset();
        Model(RefCell::new(m))
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.0.borrow_mut())
    }

    /// The interrupt line as the NVIC sees it (true = asserted).
    pub fn irq_line(&self) -> bool {
        let m = self.0.borrow();
        let mut level = m.int_sts & m.int_en != 0;
        if m.irq_cfg & 0x100 == 0 {
            level = false;
        }
        if m.irq_cfg & 0x11 != 0x11 {
            level = !level;
        }
        level
    }

    /// A frame arriving from the wire, as QEMU's lan9118_receive; false if not taken.
    pub fn receive(&self, frame: &[u8]) -> bool {
        let mut m = self.0.borrow_mut();
        if m.mac_cr & MAC_CR_RXEN == 0 || frame.len() >= 2048 || frame.len() < 14 {
            return false;
        }
        if m.rx_status.len() == RX_STATUS_ENTRIES {
            return false;
        }
        let broadcast = frame[..6] == [0xFF; 6];
        let accept = m.mac_cr & MAC_CR_PRMS != 0 || broadcast || frame[..6] == m.mac;
        if !accept {
            return true; // filtered silently (no RXALL)
        }
        let mut bytes = frame.to_vec();
        bytes.extend_from_slice(&FAKE_CRC);
        let words: Vec<u32> = bytes
            .chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(w)
            })
            .collect();
        if RX_DATA_WORDS - m.rx_data.len() < words.len() {
            return false;
        }
        let mut status = ((frame.len() as u32 + 4) << 16) & 0x3FFF_0000;
        if broadcast {
            status |= 1 << 13;
        } else if frame[0] & 1 != 0 {
            status |= 1 << 10;
        }
        m.push_rx(status, &words);
        true
    }

    /// Pushes a status word and data words as one frame, whatever they say.
    pub fn receive_raw(&self, status: u32, words: &[u32]) {
        self.0.borrow_mut().push_rx(status, words);
    }

    /// A PHY link change, as QEMU's lan9118_set_link.
    pub fn set_link(&self, up: bool) {
        let mut m = self.0.borrow_mut();
        m.link = up;
        m.phy_update_link();
    }

    pub fn writes_to(&self, off: u32) -> Vec<u32> {
        let m = self.0.borrow();
        m.log
            .iter()
            .filter_map(|a| match *a {
                Access::Write(o, v) if o == off => Some(v),
                _ => None,
            })
            .collect()
    }

    /// Position in the access log of the first write of `v` to `off`.
    pub fn write_index(&self, off: u32, v: u32) -> Option<usize> {
        let m = self.0.borrow();
        m.log.iter().position(|a| *a == Access::Write(off, v))
    }

    pub fn accesses(&self) -> usize {
        self.0.borrow().log.len()
    }
}

impl Inner {
    fn reset(&mut self) {
        self.irq_cfg &= 0x11;
        self.int_sts = 0;
        self.int_en = 0;
        self.fifo_int = 0x4800_0000;
        self.rx_cfg = 0;
        self.tx_cfg = 0;
        self.hw_cfg = 0x0005_0004;
        self.pmt_ctrl &= 0x45;
        self.tx_state = TxState::Idle;
        self.tx_frame.clear();
        self.tx_status.clear();
        self.rx_status.clear();
        self.rx_data.clear();
        self.rx_frame_words.clear();
        self.rx_left = 0;
        self.mac_cmd = 0;
        self.mac_data = 0;
        self.mac_cr = MAC_CR_PRMS;
        self.mii_acc = 0;
        self.mii_data = 0;
        self.phy_reset();
    }

    fn phy_reset(&mut self) {
        self.bmsr = 0x7809;
        self.bmcr = 0x3000;
        self.anar = 0x01E1;
        self.phy_int_mask = 0;
        self.phy_int = 0;
        self.phy_update_link();
    }

    fn phy_update_link(&mut self) {
        if self.link {
            self.bmsr |= 0x0024;
            self.phy_int |= 0x80 | 0x40;
        } else {
            self.bmsr &= !0x0024;
            self.phy_int |= 0x10;
        }
        self.phy_update_irq();
    }

    fn phy_update_irq(&mut self) {
        if self.phy_int & self.phy_int_mask != 0 {
            self.int_sts |= INT_PHY;
        } else {
            self.int_sts &= !INT_PHY;
        }
    }

    fn push_rx(&mut self, status: u32, words: &[u32]) {
        self.rx_data.extend(words.iter().copied());
        if !words.is_empty() {
            // QEMU's per-frame size list has no empty frames (0 means "none").
            self.rx_frame_words.push_back(words.len());
        }
        self.rx_status.push_back(status);
        if self.rx_status.len() > (self.fifo_int & 0xFF) as usize {
            self.int_sts |= INT_RSFL;
        }
    }

    fn rx_data_pop(&mut self) -> u32 {
        if self.rx_left == 0 {
            match self.rx_frame_words.pop_front() {
                Some(n) => self.rx_left = n,
                None => {
                    self.rx_underruns += 1;
                    self.int_sts |= INT_RXE;
                    return 0;
                }
            }
        }
        if self.rx_left == 0 {
            self.rx_underruns += 1;
            self.int_sts |= INT_RXE;
            return 0;
        }
        self.rx_left -= 1;
        match self.rx_data.pop_front() {
            Some(w) => w,
            None => {
                self.rx_underruns += 1;
                self.int_sts |= INT_RXE;
                0
            }
        }
    }

    fn tx_push(&mut self, v: u32) {
        self.tx_words.push(v);
        match self.tx_state {
            TxState::Idle => {
                self.tx_cmd_a = v;
                self.tx_state = TxState::CmdB;
            }
            TxState::CmdB => {
                self.tx_cmd_b = v;
                let a = self.tx_cmd_a;
                assert_eq!(a & 0x3000, 0x3000, "single-buffer frames only: {a:#x}");
                assert_eq!(a & 0x001F_0000, 0, "no data start offset: {a:#x}");
                self.tx_left = (a & 0x7FF) as usize;
                self.tx_frame.clear();
                let need = self.tx_left.div_ceil(4) as u32 * 4 + 8;
                if self.tx_room < need {
                    self.tx_overflows += 1;
                    self.int_sts |= 1 << 10; // TDFO
                }
                self.tx_state = TxState::Data;
                if self.tx_left == 0 {
                    self.tx_done();
                }
            }
            TxState::Data => {
                let n = self.tx_left.min(4);
                self.tx_frame.extend_from_slice(&v.to_le_bytes()[..n]);
                self.tx_left -= n;
                if self.tx_left == 0 {
                    self.tx_done();
                }
            }
        }
    }

    fn tx_done(&mut self) {
        self.sent.push(std::mem::take(&mut self.tx_frame));
        let mut status = self.tx_cmd_b & 0xFFFF_0000;
        if std::mem::take(&mut self.tx_fail_next) {
            status |= TXS_ERROR;
        }
        if self.tx_status.len() < 512 {
            self.tx_status.push_back(status);
        }
        self.tx_state = TxState::Idle;
    }

    fn mac_read(&mut self, idx: u32) -> u32 {
        match idx {
            MAC_CR => self.mac_cr,
            MAC_ADDRH => u32::from(self.mac[4]) | u32::from(self.mac[5]) << 8,
            MAC_ADDRL => u32::from_le_bytes([self.mac[0], self.mac[1], self.mac[2], self.mac[3]]),
            MII_ACC => self.mii_acc,
            MII_DATA => self.mii_data,
            4 | 5 | 8 => 0,
            _ => panic!("QEMU aborts: unimplemented MAC CSR read {idx}"),
        }
    }

    fn mac_write(&mut self, idx: u32, v: u32) {
        match idx {
            MAC_CR => self.mac_cr = v & !0x7F40_4213,
            MAC_ADDRH => {
                self.mac[4] = v as u8;
                self.mac[5] = (v >> 8) as u8;
            }
            MAC_ADDRL => self.mac[..4].copy_from_slice(&v.to_le_bytes()),
            MII_ACC => {
                self.mii_acc = v & 0xFFC2;
                let reg = (v >> 6) & 0x1F;
                if v & MII_ACC_WRITE != 0 {
                    self.phy_write(reg, self.mii_data);
                } else {
                    self.mii_data = self.phy_read(reg);
                }
            }
            MII_DATA => self.mii_data = v & 0xFFFF,
            4 | 5 | 8 | 9 => {}
            _ => panic!("QEMU aborts: unimplemented MAC CSR write {idx} = {v:#x}"),
        }
    }

    fn phy_read(&mut self, reg: u32) -> u32 {
        match reg {
            0 => self.bmcr,
            1 => self.bmsr,
            2 => 0x0007,
            3 => 0xC0D1,
            4 => self.anar,
            5 => 0x0F71,
            6 => 1,
            29 => {
                let v = self.phy_int;
                self.phy_int = 0;
                self.phy_update_irq();
                v
            }
            30 => self.phy_int_mask,
            _ => panic!("unimplemented PHY register read {reg}"),
        }
    }

    fn phy_write(&mut self, reg: u32, v: u32) {
        match reg {
            0 => {
                if v & 0x8000 != 0 {
                    self.phy_reset();
                    return;
                }
                self.bmcr = v & 0x7980;
                if v & 0x1000 != 0 {
                    self.bmsr |= 0x0020;
                }
            }
            4 => self.anar = (v & 0x2D7F) | 0x80,
            30 => {
                self.phy_int_mask = v & 0xFF;
                self.phy_update_irq();
            }
            _ => panic!("unimplemented PHY register write {reg} = {v:#x}"),
        }
    }

    fn read(&mut self, off: u32) -> u32 {
        match off {
            0x00..=0x1C => self.rx_data_pop(),
            RX_STATUS_FIFO => {
                if let Some(v) = self.rx_status.pop_front() {
                    self.rx_status_last = v;
                }
                // Empty: QEMU returns whatever stale entry sits at the head.
                self.rx_status_last
            }
            TX_STATUS_FIFO => self.tx_status.pop_front().unwrap_or(0),
            ID_REV => self.id_rev,
            IRQ_CFG => {
                let int = if self.int_sts & self.int_en != 0 {
                    0x1000
                } else {
                    0
                };
                self.irq_cfg | int
            }
            INT_STS => self.int_sts,
            INT_EN => self.int_en,
            BYTE_TEST => self.byte_test,
            FIFO_INT => self.fifo_int,
            RX_CFG => self.rx_cfg,
            TX_CFG => self.tx_cfg,
            HW_CFG => {
                if self.reset_left > 0 {
                    self.reset_left -= 1;
                    self.hw_cfg | HW_CFG_SRST
                } else {
                    self.hw_cfg
                }
            }
            0x78 => 0,
            RX_FIFO_INF => {
                ((self.rx_status.len() as u32) << 16) | ((self.rx_data.len() as u32) * 4)
            }
            TX_FIFO_INF => ((self.tx_status.len() as u32) << 16) | self.tx_room,
            PMT_CTRL => self.pmt_ctrl,
            0xA0 => 0,
            MAC_CSR_CMD => self.mac_cmd,
            MAC_CSR_DATA => self.mac_data,
            _ => panic!("QEMU aborts: bad register read {off:#x}"),
        }
    }

    fn write(&mut self, off: u32, v: u32) {
        match off {
            0x20..=0x3C => self.tx_push(v),
            IRQ_CFG => self.irq_cfg = v & 0x111,
            INT_STS => self.int_sts &= !v,
            INT_EN => {
                self.int_en = v & !INT_RESERVED;
                self.int_sts |= v & 0x8000_0000;
            }
            FIFO_INT => self.fifo_int = v,
            RX_CFG => {
                if v & RX_CFG_RX_DUMP != 0 {
                    self.rx_status.clear();
                    self.rx_data.clear();
                    self.rx_frame_words.clear();
                    self.rx_left = 0;
                }
                self.rx_cfg = v & 0xCFFF_1FF0;
            }
            TX_CFG => self.tx_cfg = v & 6,
            HW_CFG => {
                if v & HW_CFG_SRST != 0 {
                    self.reset();
                    self.reset_left = self.reset_delay;
                } else {
                    self.hw_cfg = (v & 0x0003_F300) | (self.hw_cfg & 4);
                }
            }
            0x78 => panic!("RX_DP_CTRL fast-forward desynchronises QEMU's RX FIFO"),
            PMT_CTRL => {}
            MAC_CSR_CMD => {
                self.mac_cmd = v & 0x4000_000F;
                if v & MAC_CSR_BUSY != 0 {
                    let idx = v & 0xF;
                    if v & MAC_CSR_READ != 0 {
                        self.mac_data = self.mac_read(idx);
                    } else {
                        self.mac_write(idx, self.mac_data);
                    }
                }
            }
            MAC_CSR_DATA => self.mac_data = v,
            _ => panic!("QEMU aborts: bad register write {off:#x} = {v:#x}"),
        }
    }
}

impl Registers for Model {
    fn read(&self, off: u32) -> u32 {
        let mut m = self.0.borrow_mut();
        let v = m.read(off);
        m.log.push(Access::Read(off, v));
        v
    }

    fn write(&self, off: u32, v: u32) {
        let mut m = self.0.borrow_mut();
        m.log.push(Access::Write(off, v));
        m.write(off, v);
    }
}
