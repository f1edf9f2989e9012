//! OpenDCA firmware for the reference board (QEMU mps2-an386).
//!
//! With a provisioning block (see `dca provision`) the image is the agent
//! (agent.rs): it takes an address, sweeps the block's targets, and, when
//! the block names a cloud, journals the readings in flash and delivers
//! them over TLS (delivery.rs, cloud.rs). Without one it runs its
//! self-checks on embassy (a thread-mode executor and a time driver on the
//! board's CMSDK timers): it encodes a GetRequest for sysDescr with the
//! core's codec and decodes it again, then frames a sync `hello` as the
//! HTTP POST the agent sends and parses it back as the cloud does; then
//! sleeps on embassy timers and checks the clock advanced; then draws
//! twice from the board's random source. It
//! reports with defmt over semihosting (decode with `defmt-print -e
//! <image>`; the log level is set at build time with DEFMT_LOG, see
//! .cargo/config.toml) and exits with success only if all of them held.
#![no_std]
#![no_main]

mod agent;
mod board;
mod cloud;
mod delivery;

// Links the defmt global logger (frames over semihosting).
use defmt_semihosting as _;

use dca_core::ber::Oid;
use dca_core::provision::Provisioning;
use dca_core::snmp::{CommunityMessage, Message, Pdu, PduType, Pdus, Value, VarBind, Version};
use dca_core::sync::message::Request;
use dca_core::sync::{CONTENT_TYPE, Clock, ENDPOINT, http};
use embassy_executor::Spawner;
use embassy_time::{Duration, Instant, Timer};
use static_cell::StaticCell;

/// Each of the timer check's sleeps.
const NAP: Duration = Duration::from_millis(50);

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    board::init();
    defmt::info!("dca-firmware: embassy up on mps2-an386");
    match Provisioning::decode(board::provisioning_area()) {
        None => defmt::info!("dca-firmware: no provisioning block, running the self-checks"),
        Some(Ok(prov)) => {
            defmt::info!(
                "dca-firmware: provisioning block found at {=usize:#x}, agent mode",
                board::PROVISION_ADDR
            );
            // Its own task: its state lives in the task's static storage,
            // and its stack frames do not stack on this one's self-checks.
            // Kept in static memory: the agent's task holds a reference,
            // not a copy of a block that can run to kilobytes.
            static PROVISIONING: StaticCell<Provisioning> = StaticCell::new();
            let prov = PROVISIONING.init(prov);
            spawner.spawn(agent::unwrap_spawn(agent::task(spawner, prov)));
            return;
        }
        Some(Err(e)) => {
            defmt::error!(
                "dca-firmware: the provisioning block at {=usize:#x} cannot be read: {}",
                board::PROVISION_ADDR,
                defmt::Debug2Format(&e)
            );
            board::exit(false)
        }
    }

    let codec = codec_round_trip();
    defmt::println!("dca-firmware: codec round trip {=str}", verdict(codec));
    let sync = sync_round_trip();
    defmt::println!("dca-firmware: sync round trip {=str}", verdict(sync));
    let timer = timer_check().await;
    defmt::println!("dca-firmware: timer check {=str}", verdict(timer));
    let entropy = entropy_check();
    defmt::println!("dca-firmware: entropy check {=str}", verdict(entropy));

    report_footprint();
    board::exit(codec && sync && timer && entropy);
}

/// Flash, static RAM and the stack's high-water mark, as ci/nostd.sh greps them.
fn report_footprint() {
    let footprint = board::footprint();
    let stack = board::stack::usage();
    defmt::println!(
        "dca-firmware: flash {=usize} bytes, static RAM {=usize} bytes, stack high-water mark {=usize} of {=usize} bytes",
        footprint.flash,
        footprint.static_ram,
        stack.stack_used,
        stack.stack_size
    );
    defmt::println!(
        "dca-firmware: RAM in use {=usize} bytes (static + stack high-water mark)",
        footprint.static_ram + stack.stack_used
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "FAILED" }
}

/// The board's random source gives bytes, and different bytes each time.
#[inline(never)]
fn entropy_check() -> bool {
    use board::entropy::EntropySource;
    let mut source = board::entropy::HostUrandom;
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    match (source.fill(&mut a), source.fill(&mut b)) {
        (Ok(()), Ok(())) => {
            defmt::info!("dca-firmware: random source: {=str}", source.describe());
            a != b && a != [0; 32] && b != [0; 32]
        }
        (Err(e), _) | (_, Err(e)) => {
            defmt::error!("dca-firmware: no random source: {}", e);
            false
        }
    }
}

/// Two naps on the embassy clock: each must last at least its duration.
async fn timer_check() -> bool {
    let start = Instant::now();
    Timer::after(NAP).await;
    let first = Instant::now();
    Timer::after(NAP).await;
    let second = Instant::now();
    let (a, b) = (first - start, second - first);
    defmt::println!(
        "dca-firmware: slept {=u64} us and {=u64} us (asked {=u64} us each), clock at {=u64} us",
        a.as_micros(),
        b.as_micros(),
        NAP.as_micros(),
        second.as_micros()
    );
    a >= NAP && b >= NAP
}

// The self-checks are kept out of line: inlined, their buffers would
// enlarge the main task's frame, which the agent's start runs on.
#[inline(never)]
fn codec_round_trip() -> bool {
    let Ok(sys_descr) = "1.3.6.1.2.1.1.1.0".parse::<Oid>() else {
        return false;
    };
    let varbinds = [VarBind::null(sys_descr.as_oid_ref())];
    let request = CommunityMessage {
        version: Version::V2c,
        community: b"public",
        pdu: Pdus::Pdu(Pdu::new(PduType::GetRequest, 0x1234, &varbinds[..])),
    };
    let mut buf = [0u8; 484];
    let Ok(len) = request.encode(&mut buf) else {
        return false;
    };
    let Some(datagram) = buf.get(..len) else {
        return false;
    };
    let Ok(Message::Community(m)) = Message::decode(datagram) else {
        return false;
    };
    let Pdus::Pdu(pdu) = m.pdu else {
        return false;
    };
    let mut names = pdu
        .varbinds
        .map(|vb| vb.map(|vb| (vb.name == sys_descr.as_oid_ref(), vb.value)));
    let first_ok = matches!(names.next(), Some(Ok((true, Value::Null))));
    defmt::debug!(
        "dca-firmware: {=usize} bytes, request-id {=i32}",
        len,
        pdu.request_id
    );
    first_ok && names.next().is_none() && pdu.request_id == 0x1234 && m.community == b"public"
}

/// A `hello` in CBOR behind an HTTP/1.1 head, then read back.
#[inline(never)]
fn sync_round_trip() -> bool {
    let hello = Request::Hello {
        agent_version: "firmware",
        capabilities: 0,
        clock: Clock {
            wall_ms: None,
            boot_id: [0x5a; 16],
            mono_ms: 1234,
        },
    };
    let mut body = [0u8; 128];
    let Ok(body_len) = hello.encode(&mut body) else {
        return false;
    };
    let mut wire = [0u8; 512];
    let head = http::PostHead {
        host: "cloud.example",
        path: ENDPOINT,
        authorization: Some("Bearer agent:secret"),
        content_type: CONTENT_TYPE,
        content_length: body_len,
        user_agent: "dca-firmware",
    };
    let Ok(head_len) = http::write_post(&mut wire, &head) else {
        return false;
    };
    let (Some(dst), Some(src)) = (
        wire.get_mut(head_len..head_len + body_len),
        body.get(..body_len),
    ) else {
        return false;
    };
    dst.copy_from_slice(src);
    let Some(request) = wire.get(..head_len + body_len) else {
        return false;
    };
    let Ok(Some(parsed)) = http::parse_request(request) else {
        return false;
    };
    let Some(received) = request.get(parsed.head_len..parsed.head_len + parsed.content_length)
    else {
        return false;
    };
    defmt::debug!(
        "dca-firmware: POST {=str} with {=usize} bytes of CBOR",
        parsed.path,
        received.len()
    );
    parsed.authorization == Some("Bearer agent:secret") && Request::decode(received) == Ok(hello)
}
