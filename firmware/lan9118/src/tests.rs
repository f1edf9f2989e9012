//! Host tests of the driver against the register model.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};

use embassy_net_driver::{Driver, HardwareAddress, LinkState, RxToken as _, TxToken as _};

use crate::model::{FAKE_CRC, MODEL_MAC, Model};
use crate::regs::*;
use crate::{Counters, Frames, InitError, Lan9118, MTU, State, on_interrupt};

/// A waker that counts its wake-ups.
struct Flag(AtomicUsize);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn flag() -> (Arc<Flag>, Waker) {
    let f = Arc::new(Flag(AtomicUsize::new(0)));
    (f.clone(), Waker::from(f))
}

fn woken(f: &Flag) -> usize {
    f.0.load(Ordering::SeqCst)
}

fn up<'a>(model: &'a Model, state: &'a State) -> Lan9118<'a, &'a Model> {
    let mut eth = Lan9118::new(model, state, Box::leak(Box::new(Frames::new())));
    eth.init().expect("init");
    eth
}

/// A frame to us (or broadcast) of `len` bytes with a recognisable payload.
fn frame(len: usize, seed: u8) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&MODEL_MAC);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    f[12] = 0x08;
    for (i, b) in f.iter_mut().enumerate().skip(14) {
        *b = seed.wrapping_add(i as u8);
    }
    f
}

fn recv(eth: &mut Lan9118<'_, &Model>, cx: &mut Context) -> Option<Vec<u8>> {
    let (rx, _tx) = eth.receive(cx)?;
    Some(rx.consume(|buf| buf.to_vec()))
}

fn drain(eth: &mut Lan9118<'_, &Model>, cx: &mut Context) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    // Bounded: the driver returns None after a drop budget, with a self-wake.
    for _ in 0..10_000 {
        match recv(eth, cx) {
            Some(f) => got.push(f),
            None if (eth.regs.read(RX_FIFO_INF) >> 16) & 0xFF == 0 => return got,
            None => {}
        }
    }
    panic!("RX path wedged");
}

#[test]
fn bring_up_sequence() {
    let model = Model::new();
    // Power-on state as QEMU has it: promiscuous, interrupt line active-low (asserted).
    assert_ne!(model.with(|m| m.mac_cr) & MAC_CR_PRMS, 0);
    assert!(
        model.irq_line(),
        "QEMU's line is asserted before IRQ_CFG is set"
    );

    let state = State::new();
    let eth = up(&model, &state);

    let srst = model.write_index(HW_CFG, HW_CFG_SRST).expect("soft reset");
    let irq_cfg = model.write_index(IRQ_CFG, 0x111).expect("IRQ_CFG = 0x111");
    assert!(
        srst < irq_cfg,
        "IRQ_CFG must follow the soft reset, which clears it"
    );
    assert_eq!(model.writes_to(IRQ_CFG), vec![0x111]);
    let clear = model
        .write_index(INT_STS, u32::MAX)
        .expect("INT_STS cleared");
    assert!(irq_cfg < clear);
    assert_eq!(model.writes_to(0x78), Vec::<u32>::new(), "no RX_DP_CTRL");

    model.with(|m| {
        assert_eq!(m.irq_cfg, 0x111);
        assert_eq!(m.mac_cr & MAC_CR_PRMS, 0, "promiscuous mode cleared");
        assert_eq!(m.mac_cr & (1 << 19), 0, "MCPAS cleared");
        assert_eq!(
            m.mac_cr,
            MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_FDPX,
            "MAC_CR = TXEN|RXEN|FDPX"
        );
        assert_eq!(m.tx_cfg, 0x6);
        assert_eq!(m.rx_cfg, 0);
        assert_eq!(m.int_en, INT_RSFL | INT_RXE | INT_TXE | INT_PHY);
        assert_eq!(m.int_sts, 0, "nothing pending after bring-up");
        assert_eq!(m.anar, 0x01E1);
        assert_eq!(m.bmcr, 0x1000, "auto-negotiation enabled");
        assert_eq!(m.phy_int_mask, PHY_INT_LINK);
    });
    assert!(!model.irq_line(), "line idle after bring-up");
    assert_eq!(eth.mac_address(), MODEL_MAC);
    assert_eq!(eth.hardware_address(), HardwareAddress::Ethernet(MODEL_MAC));
    assert!(eth.link_up());
    let caps = eth.capabilities();
    assert_eq!(caps.max_transmission_unit, MTU);
}

#[test]
fn bring_up_errors() {
    let state = State::new();

    let model = Model::new();
    model.with(|m| m.byte_test = 0x4321_8765);
    let err = Lan9118::new(&model, &state, &mut Frames::new())
        .init()
        .unwrap_err();
    assert_eq!(err, InitError::ByteTest(0x4321_8765));
    assert!(err.to_string().contains("BYTE_TEST"));
    assert_eq!(
        model.writes_to(HW_CFG),
        Vec::<u32>::new(),
        "nothing written"
    );

    let model = Model::new();
    model.with(|m| m.id_rev = 0x1234_0001);
    let err = Lan9118::new(&model, &state, &mut Frames::new())
        .init()
        .unwrap_err();
    assert_eq!(err, InitError::UnknownChip(0x1234_0001));
    assert!(err.to_string().contains("0x12340001"));

    let model = Model::new();
    model.with(|m| m.reset_delay = 10);
    assert!(
        Lan9118::new(&model, &state, &mut Frames::new())
            .init()
            .is_ok(),
        "a slow reset is waited for"
    );

    let model = Model::new();
    model.with(|m| m.reset_delay = u32::MAX);
    let err = Lan9118::new(&model, &state, &mut Frames::new())
        .init()
        .unwrap_err();
    assert_eq!(err, InitError::ResetTimeout);

    let model = Model::new();
    model.with(|m| m.mac = [0; 6]);
    let err = Lan9118::new(&model, &state, &mut Frames::new())
        .init()
        .unwrap_err();
    assert_eq!(err, InitError::NoMacAddress([0; 6]));
}

#[test]
fn uninitialised_driver_is_inert() {
    let model = Model::new();
    let state = State::new();
    let mut frames = Frames::new();
    let mut eth = Lan9118::new(&model, &state, &mut frames);
    let (_, w) = flag();
    let mut cx = Context::from_waker(&w);
    assert!(eth.receive(&mut cx).is_none());
    assert!(eth.transmit(&mut cx).is_none());
    assert!(eth.link_state(&mut cx) == LinkState::Down);
    assert_eq!(
        model.accesses(),
        0,
        "new() and the Driver touch no register before init"
    );
}

#[test]
fn frame_received_whole_with_crc_stripped() {
    let model = Model::new();
    let state = State::new();
    let mut eth = up(&model, &state);
    let (_, w) = flag();
    let mut cx = Context::from_waker(&w);

    let f = frame(64, 1);
    assert!(model.receive(&f));
    let got = recv(&mut eth, &mut cx).expect("frame");
    assert_eq!(got, f);
    assert!(!got.ends_with(&FAKE_CRC));
    assert!(recv(&mut eth, &mut cx).is_none());
    model.with(|m| {
        assert!(m.rx_data.is_empty() && m.rx_status.is_empty());
        assert_eq!(m.rx_underruns, 0);
    });
    assert_eq!(state.counters().rx_frames, 1);
}

#[test]
fn odd_lengths() {
    let model = Model::new();
    let state = State::new();
    let mut eth = up(&model, &state);
    let (_, w) = flag();
    let mut cx = Context::from_waker(&w);

    let lens = [14, 15, 16, 17, 60, 61, 62, 63, 64, 65, 1513, 1514];
    for (i, &len) in lens.iter().enumerate() {
        assert!(model.receive(&frame(len, i as u8)));
    }
    let got = drain(&mut eth, &mut cx);
    assert_eq!(got.len(), lens.len());
    for (i, (g, &len)) in got.iter().zip(&lens).enumerate() {
        assert_eq!(g, &frame(len, i as u8), "frame of {len} bytes");
    }
    model.with(|m| assert_eq!(m.rx_underruns, 0));
    assert_eq!(state.counters().rx_dropped(), 0);
}

#[test]
fn errored_frame_skipped() {
    let model = Model::new();
    let state = State::new();
    let mut eth = up(&model, &state);
    let (_, w) = flag();
    let mut cx = Context::from_waker(&w);

    // 64 bytes + CRC with the error summary bit, then a good frame.
    model.receive_raw((68 << 16) | RXS_ERROR, &[0xDEAD_BEEF; 17]);
    let good = frame(100, 7);
    model.receive(&good);
    assert_eq!(drain(&mut eth, &mut cx), vec![good]);
    assert_eq!(state.counters().rx_errors, 1);
    assert_eq!(state.counters().rx_dropped(), 1);
    model.with(|m| assert_eq!(m.rx_underruns, 0));
}

#[test]
fn oversized_frame_dropped_and_next_received() {
    let model = Model::new();
    let state = State::new();
    let mut eth = up(&model, &state);
    let (_, w) = flag();
    let mut cx = Context::from_waker(&w);

    assert!(
        model.receive(&frame(1515, 3)),
        "QEMU passes up to 2047 bytes"
    );
    assert!(model.receive(&frame(2000, 4)));
    let good = frame(1514, 5);
    model.receive(&good);
    assert_eq!(drain(&mut eth, &mut cx), vec![good]);
    let c = state.counters();
    assert_eq!(c.rx_oversized, 2);
    assert_eq!(c.rx_frames, 1);
    model.with(|m| {
        assert_eq!(m.rx_underruns, 0);
        assert!(m.rx_data.is_empty());
    });
}

#[test]
fn runts_zero_length_and_filtered_frames_dropped() {
    let model = Model::new();
    let state = State::new();
    let mut eth = up(&model, &state);
    let (_, w) = flag();
    let mut cx = Context::from_waker(&w);

    model.receive_raw(0, &[]);
    model.receive_raw(3 << 16, &[0x11]);
    model.receive_raw(17 << 16, &[1, 2, 3, 4, 5]);
    model.receive_raw((68 << 16) | RXS_FILTER_FAIL, &[0; 17]);
    let good = frame(18, 9);
    model.receive(&good);
    assert_eq!(drain(&mut eth, &mut cx), vec![good]);
    let c = state.counters();
    assert_eq!(c.rx_runts, 3);
    assert_eq!(c.rx_filtered, 1);
    assert_eq!(c.rx_dropped(), 4);
    model.with(|m| assert_eq!(m.rx_underruns, 0));
}

#[test]
fn status_claiming_more_than_the_data_fifo_holds() {
    let model = Model::new();
    let state = State::new();
    let mut eth = up(&model, &state);
    let (_, w) = flag();
    let mut cx = Context::from_waker(&w);

    model.receive_raw(400 << 16, &[0; 5]);
    model.receive_raw(64 << 16, &[0; 16]);
    assert!(recv(&mut eth, &mut cx).is_none());
    let c = state.counters();
    assert_eq!(c.rx_fifo_resets, 1);
    assert_eq!(c.rx_flushed, 2);
    model.with(|m| {
        assert!(m.rx_status.is_empty() && m.rx_data.is_empty());
        assert_eq!(m.rx_underruns, 0, "never reads past the data FIFO");
    });

    // A short frame stealing the next frame's words: garbage out, but no wedge.
    model.receive_raw(40 << 16, &[0; 2]);
    model.receive(&frame(64, 1));
    let _ = drain(&mut eth, &mut cx);
    let good = frame(80, 2);
    model.receive(&good);
    assert_eq!(drain(&mut eth, &mut cx), vec![good], "RX path recovers");
    model.with(|m| assert_eq!(m.rx_underruns, 0));
}

/// Random status words (any length, any flag) over data the size their length field says,
/// or less (a status claiming more than the data FIFO holds). Data with no status word at
/// all cannot come out of the controller (it writes both) and cannot be detected through
/// its FIFO interface, so it is not generated.
#[test]
fn garbage_never_panics_nor_wedges() {
    let model = Model::new();
    let state = State::new();
    let mut eth = up(&model, &state);
    let (_, w) = flag();
    let mut cx = Context::from_waker(&w);

    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u32
    };
    for round in 0..300 {
        for _ in 0..(rnd() % 8) {
            let mut status = rnd();
            if rnd() % 2 == 0 {
                // Plausible lengths, around the MTU.
                status = (status & !(RXS_LEN_MASK << 16)) | ((rnd() % 1600) << 16);
            }
            let len = (status >> 16) & RXS_LEN_MASK;
            let mut n = len.div_ceil(4).min(600);
            if rnd() % 8 == 0 {
                n = rnd() % (n + 1);
            }
            let words: Vec<u32> = (0..n).map(|_| rnd()).collect();
            model.receive_raw(status, &words);
        }
        let _ = drain(&mut eth, &mut cx);
        let good = frame(60 + round % 50, round as u8);
        model.receive(&good);
        assert_eq!(drain(&mut eth, &mut cx), vec![good], "round {round}");
    }
    model.with(|m| assert_eq!(m.rx_underruns, 0));
    let c = state.counters();
    assert!(c.rx_fifo_resets > 0 && c.rx_oversized > 0 && c.rx_errors > 0 && c.rx_runts > 0);
}

#[test]
fn flood() {
    let model = Model::new();
    let state = State::new();
    let mut eth = up(&model, &state);
    let (_, w) = flag();
    let mut cx = Context::from_waker(&w);

    let mut offered = 0;
    let mut taken = 0;
    for i in 0..5000usize {
        let len = 60 + (i * 37) % 1455;
        offered += 1;
        if model.receive(&frame(len, i as u8)) {
            taken += 1;
        }
        if i % 500 == 499 {
            let got = drain(&mut eth, &mut cx);
            assert!(!got.is_empty());
        }
    }
    drain(&mut eth, &mut cx);
    assert!(taken < offered, "the model's FIFOs overflowed");
    assert_eq!(state.counters().rx_frames, taken);
    assert!(model.receive(&frame(64, 0)));
    assert_eq!(drain(&mut eth, &mut cx).len(), 1);
}

#[test]
fn idle_receive_waits_for_the_interrupt() {
    let model = Model::new();
    let state = State::new();
    let mut eth = up(&model, &state);
    let (flag, w) = flag();
    let mut cx = Context::from_waker(&w);

    assert!(recv(&mut eth, &mut cx).is_none());
    let before = model.accesses();
    assert!(recv(&mut eth, &mut cx).is_none());
    assert_eq!(
        model.accesses() - before,
        1,
        "armed and idle: one RX_FIFO_INF read"
    );
    let before = model.accesses();
    assert_eq!(woken(&flag), 0, "idle: no self-wake, no busy polling");
    assert_ne!(model.with(|m| m.int_en) & INT_RSFL, 0, "RX interrupt armed");

    let f = frame(90, 4);
    model.receive(&f);
    assert!(model.irq_line());
    on_interrupt(&model, &state);
    assert_eq!(woken(&flag), 1, "RX waker woken");
    model.with(|m| {
        assert_eq!(m.int_sts & INT_RSFL, 0, "acknowledged");
        assert_eq!(m.int_en & INT_RSFL, 0, "masked until the FIFO is drained");
    });
    assert!(!model.irq_line());
    assert!(model.accesses() - before <= 6, "the handler is short");

    // More frames while masked: no interrupt, the driver drains them.
    model.receive(&frame(70, 5));
    assert!(!model.irq_line());
    assert_eq!(recv(&mut eth, &mut cx), Some(f));
    assert_eq!(recv(&mut eth, &mut cx), Some(frame(70, 5)));
    assert!(recv(&mut eth, &mut cx).is_none());
    model.with(|m| {
        assert_ne!(m.int_en & INT_RSFL, 0, "re-armed when empty");
        assert_eq!(
            m.int_sts & INT_RSFL,
            0,
            "stale events of drained frames acknowledged"
        );
    });
    assert!(!model.irq_line());

    // Spurious interrupt: nothing happens.
    let wakes = woken(&flag);
    on_interrupt(&model, &state);
    assert_eq!(woken(&flag), wakes);
    assert_eq!(state.counters().interrupts, 2);
}

#[test]
fn tx_framing_words_exact() {
    let model = Model::new();
    let state = State::new();
    let mut eth = up(&model, &state);
    let (_, w) = flag();
    let mut cx = Context::from_waker(&w);

    let payload: Vec<u8> = (0..61u8).collect();
    let tok = eth.transmit(&mut cx).expect("room");
    tok.consume(61, |buf| buf.copy_from_slice(&payload));
    let tok = eth.transmit(&mut cx).expect("room");
    tok.consume(64, |buf| buf.fill(0xAB));

    model.with(|m| {
        let mut expect = vec![(1 << 13) | (1 << 12) | 61, (1 << 16) | 61];
        for c in payload.chunks(4) {
            let mut b = [0u8; 4];
            b[..c.len()].copy_from_slice(c);
            expect.push(u32::from_le_bytes(b));
        }
        assert_eq!(expect[17], 0x0000_003C, "last word zero-padded");
        expect.push(0x3000 | 64);
        expect.push((2 << 16) | 64);
        expect.extend([0xABAB_ABABu32; 16]);
        assert_eq!(m.tx_words, expect);
        assert_eq!(m.sent, vec![payload.clone(), vec![0xAB; 64]]);
        assert!(m.tx_status.is_empty(), "TX status popped");
        assert_eq!(m.tx_overflows, 0);
    });
    let c = state.counters();
    assert_eq!(c.tx_frames, 2);
    assert_eq!(c.tx_errors, 0);

    model.with(|m| m.tx_fail_next = true);
    eth.transmit(&mut cx).unwrap().consume(60, |b| b.fill(1));
    assert_eq!(state.counters().tx_errors, 1);

    // Lengths the stack should never ask for are dropped, not sent.
    eth.transmit(&mut cx).unwrap().consume(0, |_| ());
    eth.transmit(&mut cx).unwrap().consume(MTU + 1, |_| ());
    assert_eq!(state.counters().tx_dropped, 2);
    assert_eq!(model.with(|m| m.sent.len()), 3);
}

#[test]
fn tx_without_room_waits_for_the_interrupt() {
    let model = Model::new();
    let state = State::new();
    let mut eth = up(&model, &state);
    let (flag, w) = flag();
    let mut cx = Context::from_waker(&w);

    model.with(|m| m.tx_room = 1000);
    assert!(eth.transmit(&mut cx).is_none());
    assert_eq!(state.counters().tx_waits, 1);
    assert_ne!(
        model.with(|m| m.int_en) & INT_TDFA,
        0,
        "TX room interrupt armed"
    );
    assert_eq!(model.with(|m| m.tx_words.len()), 0);
    assert_eq!(woken(&flag), 0);

    // The transmitter drains; the FIFO level interrupt fires.
    model.with(|m| {
        m.tx_room = 4608;
        m.int_sts |= INT_TDFA;
    });
    assert!(model.irq_line());
    on_interrupt(&model, &state);
    assert_eq!(woken(&flag), 1);
    assert_eq!(model.with(|m| m.int_en) & INT_TDFA, 0, "masked again");
    assert!(!model.irq_line());
    eth.transmit(&mut cx)
        .expect("room now")
        .consume(100, |b| b.fill(7));
    assert_eq!(model.with(|m| m.sent.len()), 1);

    // The TX token lent with a received frame drops rather than overflows.
    model.receive(&frame(64, 0));
    model.with(|m| m.tx_room = 40);
    let (rx, tx) = eth.receive(&mut cx).unwrap();
    rx.consume(|_| ());
    tx.consume(64, |b| b.fill(1));
    assert_eq!(state.counters().tx_dropped, 1);
    model.with(|m| {
        assert_eq!(m.sent.len(), 1);
        assert_eq!(m.tx_overflows, 0);
    });
}

#[test]
fn link_state_follows_phy_interrupts() {
    let model = Model::new();
    let state = State::new();
    let mut eth = up(&model, &state);
    let (flag, w) = flag();
    let mut cx = Context::from_waker(&w);

    assert!(eth.link_state(&mut cx) == LinkState::Up);
    let before = model.accesses();
    for _ in 0..10 {
        assert!(eth.link_state(&mut cx) == LinkState::Up);
    }
    assert_eq!(
        model.accesses(),
        before,
        "cached: no PHY access without an interrupt"
    );

    model.set_link(false);
    assert!(model.irq_line());
    on_interrupt(&model, &state);
    assert_eq!(woken(&flag), 1, "link waker woken");
    assert!(!model.irq_line());
    assert_eq!(model.with(|m| m.int_en) & INT_PHY, 0);
    assert!(eth.link_state(&mut cx) == LinkState::Down);
    model.with(|m| {
        assert_ne!(m.int_en & INT_PHY, 0, "PHY interrupt re-armed");
        assert_eq!(m.phy_int, 0, "PHY interrupt source read (cleared)");
    });

    model.set_link(true);
    on_interrupt(&model, &state);
    assert!(eth.link_state(&mut cx) == LinkState::Up);
    assert!(!model.irq_line());
    assert_eq!(state.counters().mii_timeouts, 0);
}

#[test]
fn rx_error_interrupt_counted() {
    let model = Model::new();
    let state = State::new();
    let _eth = up(&model, &state);
    model.with(|m| m.int_sts |= INT_RXE | INT_TXE);
    on_interrupt(&model, &state);
    let c = state.counters();
    assert_eq!((c.rx_error_irqs, c.tx_error_irqs), (1, 1));
    assert!(!model.irq_line());
    assert_eq!(Counters::default().rx_dropped(), 0);
}
