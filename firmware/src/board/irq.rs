//! The board's interrupt lines and vector table. No PAC exists for the
//! mps2-an386, so this module plays that part for cortex-m-rt's `device`
//! feature: it supplies `__INTERRUPTS` (the external vectors) and an
//! `Interrupt` enum for the NVIC, re-exported as `interrupt` so that
//! cortex-m-rt's `#[interrupt]` attribute can check handler names.
//!
//! Routing an interrupt to a handler is done at link time, the way PACs do
//! it: `device.x` points every named vector at `DefaultHandler` unless the
//! image defines a function of that name. The Ethernet driver is wired up
//! in the application with
//!
//! ```ignore
//! use crate::board::interrupt;
//! use cortex_m_rt::interrupt;
//!
//! #[interrupt]
//! fn ETHERNET() {
//!     lan9118::on_interrupt();
//! }
//! // ...and once the controller's IRQ_CFG is set up:
//! board::irq::unmask(board::Interrupt::ETHERNET);
//! ```

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;

/// External interrupt lines of QEMU's mps2-an386 that the firmware uses.
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
#[repr(u16)]
pub enum Interrupt {
    /// CMSDK APB timer 0 at 0x4000_0000: the time driver's free-running count.
    TIMER0 = 8,
    /// CMSDK APB timer 1 at 0x4000_1000: the time driver's alarm.
    TIMER1 = 9,
    /// CMSDK dual timer at 0x4000_2000 (unused).
    DUALTIMER = 10,
    /// SMSC LAN9118 Ethernet controller at 0x4020_0000.
    ETHERNET = 13,
}

// SAFETY: each discriminant is the line's number at the NVIC.
unsafe impl InterruptNumber for Interrupt {
    fn number(self) -> u16 {
        self as u16
    }
}

/// Lets `#[cortex_m_rt::interrupt] fn ETHERNET()` resolve its name.
pub use Interrupt as interrupt;

/// Unmasks `irq` at the NVIC.
pub fn unmask(irq: Interrupt) {
    // SAFETY: every handler of these lines keeps its state behind critical
    // sections, so letting it run cannot break a critical section.
    unsafe { NVIC::unmask(irq) }
}

/// Lines the NVIC of QEMU's mps2-an386 implements.
const LINES: usize = 32;

/// One entry of the vector table.
#[repr(transparent)]
pub struct Vector(unsafe extern "C" fn());

unsafe extern "C" {
    fn TIMER0();
    fn TIMER1();
    fn DUALTIMER();
    fn ETHERNET();
    fn DefaultHandler();
}

const fn vectors() -> [Vector; LINES] {
    let mut v = [const { Vector(DefaultHandler) }; LINES];
    v[Interrupt::TIMER0 as usize] = Vector(TIMER0);
    v[Interrupt::TIMER1 as usize] = Vector(TIMER1);
    v[Interrupt::DUALTIMER as usize] = Vector(DUALTIMER);
    v[Interrupt::ETHERNET as usize] = Vector(ETHERNET);
    v
}

/// The external part of the vector table; lines without a name go to
/// `DefaultHandler`, which reports them.
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
#[used]
pub static __INTERRUPTS: [Vector; LINES] = vectors();
