//! The embassy-time driver on the board's two CMSDK APB timers.
//!
//! Timer 0 (IRQ 8) runs free from 0xFFFF_FFFF down at SYSCLK (25 MHz); its
//! wrap interrupt counts periods, which with the counter make a 64-bit
//! cycle count. Timer 1 (IRQ 9) is the alarm: armed with the cycles left
//! until the earliest timer in the queue, it interrupts once, is stopped and
//! the queue is examined again. Nothing polls. embassy-time ticks at 1 MHz
//! (`tick-hz-1_000_000`), 25 cycles a tick.
//!
//! A CMSDK timer has no compare register, hence two of them. Both count the
//! same clock; should the alarm still fire a little early, the handler finds
//! the deadline not reached and arms it again.

use core::cell::{Cell, RefCell};
use core::ptr::{read_volatile, write_volatile};
use core::task::Waker;

use critical_section::{CriticalSection, Mutex};
use embassy_time_driver::{Driver, TICK_HZ};
use embassy_time_queue_utils::Queue;

use super::irq::{self, Interrupt, interrupt};
use cortex_m_rt::interrupt;

/// The APB clock of the timers (mps2-an386 SYSCLK).
const PCLK_HZ: u64 = 25_000_000;
const CYCLES_PER_TICK: u64 = PCLK_HZ / TICK_HZ;
const _: () = assert!(
    PCLK_HZ.is_multiple_of(TICK_HZ),
    "the tick must divide the timer clock"
);

/// A CMSDK APB timer's registers.
#[derive(Clone, Copy)]
struct Timer(usize);

/// Timer 0 (IRQ 8): the free-running count.
const COUNTER: Timer = Timer(0x4000_0000);
/// Timer 1 (IRQ 9): the alarm.
const ALARM: Timer = Timer(0x4000_1000);

const CTRL: usize = 0x00;
const VALUE: usize = 0x04;
const RELOAD: usize = 0x08;
const INTSTATUS: usize = 0x0C;
const CTRL_ENABLE: u32 = 1 << 0;
const CTRL_IRQ_ENABLE: u32 = 1 << 3;

impl Timer {
    fn read(self, reg: usize) -> u32 {
        // SAFETY: a register of a timer the board has at this address.
        unsafe { read_volatile((self.0 + reg) as *const u32) }
    }
    fn write(self, reg: usize, value: u32) {
        // SAFETY: as in `read`; only this module touches the timers.
        unsafe { write_volatile((self.0 + reg) as *mut u32, value) }
    }
    fn stop(self) {
        self.write(CTRL, 0);
        self.write(INTSTATUS, 1);
    }
    /// Loads `cycles` (also the reload value) and runs with its interrupt.
    fn start(self, cycles: u32) {
        self.write(RELOAD, cycles);
        self.write(CTRL, CTRL_ENABLE | CTRL_IRQ_ENABLE);
    }
    fn wrapped(self) -> bool {
        self.read(INTSTATUS) & 1 != 0
    }
}

struct CmsdkDriver {
    /// Wraps of timer 0 handled so far.
    periods: Mutex<Cell<u32>>,
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: CmsdkDriver = CmsdkDriver {
    periods: Mutex::new(Cell::new(0)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

impl CmsdkDriver {
    /// Cycles of timer 0 since `init`.
    fn cycles(&self, cs: CriticalSection) -> u64 {
        let periods = u64::from(self.periods.borrow(cs).get());
        let value = COUNTER.read(VALUE);
        // A wrap not handled yet (interrupts are off here) shows as the
        // pending flag, read after the count. If it is set, the count tells
        // which side of the wrap it was read on: just after the reload it
        // is near the top, just before near zero. (The wrap's handler runs
        // long before half a period, ~86 s, has passed.)
        let periods = if COUNTER.wrapped() && value > u32::MAX / 2 {
            periods + 1
        } else {
            periods
        };
        (periods << 32) | u64::from(u32::MAX - value)
    }

    fn ticks(&self, cs: CriticalSection) -> u64 {
        self.cycles(cs) / CYCLES_PER_TICK
    }

    /// Arms the alarm for tick `at`; false if `at` has passed already. (An
    /// alarm interrupt left pending at the NVIC by the stopped alarm only
    /// makes its handler look at the queue once more.)
    fn set_alarm(&self, cs: CriticalSection, at: u64) -> bool {
        ALARM.stop();
        if at == u64::MAX {
            return true; // nothing waits
        }
        let now = self.cycles(cs);
        let due = at.saturating_mul(CYCLES_PER_TICK);
        if due <= now {
            return false;
        }
        // Farther than one timer period (~171 s): fire at its end, re-arm.
        let left = u32::try_from(due - now).unwrap_or(u32::MAX);
        ALARM.start(left);
        true
    }

    /// Wakes what is due and arms the alarm for what is left.
    fn rearm(&self, cs: CriticalSection, queue: &mut Queue) {
        let mut next = queue.next_expiration(self.ticks(cs));
        while !self.set_alarm(cs, next) {
            next = queue.next_expiration(self.ticks(cs));
        }
    }

    fn on_wrap(&self) {
        critical_section::with(|cs| {
            if COUNTER.wrapped() {
                COUNTER.write(INTSTATUS, 1);
                let periods = self.periods.borrow(cs);
                periods.set(periods.get().wrapping_add(1));
            }
        });
    }

    fn on_alarm(&self) {
        critical_section::with(|cs| {
            ALARM.stop();
            let mut queue = self.queue.borrow_ref_mut(cs);
            self.rearm(cs, &mut queue);
        });
    }
}

impl Driver for CmsdkDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks(cs))
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            if queue.schedule_wake(at, waker) {
                self.rearm(cs, &mut queue);
            }
        });
    }
}

/// Starts the clock at 0 and enables the timers' interrupts. Call once,
/// before anything reads the time.
pub fn init() {
    ALARM.stop();
    COUNTER.stop();
    COUNTER.start(u32::MAX);
    irq::unmask(Interrupt::TIMER0);
    irq::unmask(Interrupt::TIMER1);
}

#[interrupt]
fn TIMER0() {
    DRIVER.on_wrap();
}

#[interrupt]
fn TIMER1() {
    DRIVER.on_alarm();
}
