//! Board support for the reference board, QEMU's mps2-an386 (Cortex-M4,
//! 25 MHz): interrupt vectors, the embassy-time driver, the random source,
//! the stack's high-water mark, the panic and fault handlers, and leaving
//! the run.
//!
//! Logs go out as defmt frames over semihosting (defmt-semihosting); the
//! host decodes them with `defmt-print -e <image>`. Nothing else may write
//! to the semihosting console, or the frames are corrupted.

pub mod entropy;
pub mod flash;
pub mod irq;
pub mod stack;
pub mod time;

// What the application's `#[interrupt] fn ETHERNET()` will use (see irq.rs).
#[allow(unused_imports)]
pub use irq::{Interrupt, interrupt};

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};
use cortex_m_rt::{ExceptionFrame, exception};

/// Brings the board up: the clock starts at 0 with its interrupts enabled.
pub fn init() {
    time::init();
}

/// The image's flash (.text + .rodata + .data's initial values) and
/// statically allocated RAM (.data + .bss), from the linker's symbols: the
/// figures ci/nostd.sh reads from the ELF with `size -A`.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub struct Footprint {
    pub flash: usize,
    pub static_ram: usize,
}

unsafe extern "C" {
    static __stext: u8;
    static __etext: u8;
    static __srodata: u8;
    static __erodata: u8;
    static __sdata: u8;
    static __edata: u8;
    static __sbss: u8;
    static __ebss: u8;
}

pub fn footprint() -> Footprint {
    let len = |start: *const u8, end: *const u8| end as usize - start as usize;
    let text = len(&raw const __stext, &raw const __etext);
    let rodata = len(&raw const __srodata, &raw const __erodata);
    let data = len(&raw const __sdata, &raw const __edata);
    let bss = len(&raw const __sbss, &raw const __ebss);
    Footprint {
        flash: text + rodata + data,
        static_ram: data + bss,
    }
}

/// Where the provisioning block lives: the last 4 KiB of the code memory,
/// reserved in memory.x.in (which checks these figures at link time).
pub const PROVISION_ADDR: usize = 0x003F_F000;
pub const PROVISION_LEN: usize = 4096;

/// The provisioning area as bytes: erased (0xFF), zero, or a block that
/// starts with `DCAP` (dca_core::provision). Under QEMU it is zero unless a
/// `-device loader,...,addr=0x003FF000,force-raw=on` put a block there.
pub fn provisioning_area() -> &'static [u8] {
    // SAFETY: memory.x.in reserves [PROVISION_ADDR, +PROVISION_LEN) in the code
    // memory, outside every section of the image; nothing writes it at run
    // time, so a shared slice over it stays valid for the program's life.
    unsafe { core::slice::from_raw_parts(PROVISION_ADDR as *const u8, PROVISION_LEN) }
}

/// Ends the QEMU run with the status `ok` (semihosting SYS_EXIT); on a
/// board without a debugger this would halt, so it is for QEMU and tests.
pub fn exit(ok: bool) -> ! {
    use cortex_m_semihosting::debug;
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

/// What a panic or fault ends in: a reset with the `reset-on-panic`
/// feature (for a real board), a failed QEMU run otherwise.
fn fail() -> ! {
    if cfg!(feature = "reset-on-panic") {
        cortex_m::peripheral::SCB::sys_reset()
    }
    exit(false)
}

static PANICKED: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    cortex_m::interrupt::disable();
    // A panic while logging the first one (the logger itself, say) goes
    // straight to the end.
    if !PANICKED.swap(true, Ordering::Relaxed) {
        defmt::error!("panic: {}", defmt::Display2Format(info));
    }
    fail()
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    if !PANICKED.swap(true, Ordering::Relaxed) {
        defmt::error!(
            "hard fault at pc {=u32:#010x}, lr {=u32:#010x}",
            frame.pc(),
            frame.lr()
        );
    }
    fail()
}

/// Every exception or interrupt without a handler of its own.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    panic!("unexpected exception or interrupt {}", irqn);
}
