//! The stack's high-water mark. cortex-m-rt's `paint-stack` fills the whole
//! stack (from the end of .bss/.uninit up to the top of RAM) with
//! `STACK_PAINT_VALUE` before `main`; the deepest word no longer holding it
//! marks the most the stack has ever used.

use cortex_m_rt::STACK_PAINT_VALUE;

unsafe extern "C" {
    /// Lowest address of the stack (cortex-m-rt's link.x).
    static _stack_end: u32;
    /// Top of the stack, the initial stack pointer.
    static _stack_start: u32;
}

/// Stack use since reset, in bytes.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub struct Usage {
    /// The most stack used since reset.
    pub stack_used: usize,
    /// The room the stack has.
    pub stack_size: usize,
}

/// Scans the painted stack for the deepest word that was written.
pub fn usage() -> Usage {
    let bottom = (&raw const _stack_end).cast::<u32>();
    let top = (&raw const _stack_start) as usize;
    let mut p = bottom;
    // The scan stops at the first scrubbed word, well below the live frames.
    // SAFETY: every word in [_stack_end, _stack_start) is RAM.
    while (p as usize) < top && unsafe { p.read_volatile() } == STACK_PAINT_VALUE {
        p = p.wrapping_add(1);
    }
    Usage {
        stack_used: top - p as usize,
        stack_size: top - bottom as usize,
    }
}
