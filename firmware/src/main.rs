//! OpenDCA firmware for the reference board (QEMU mps2-an386).
//!
//! The network stack and the agent arrive with later work. Today the image
//! proves that the core runs on the target: it encodes a GetRequest for
//! sysDescr with the core's codec, decodes it again, reports over
//! semihosting, and exits with success only if the round trip held.
#![no_std]
#![no_main]

use core::panic::PanicInfo;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use dca_core::ber::Oid;
use dca_core::snmp::{CommunityMessage, Message, Pdu, PduType, Pdus, Value, VarBind, Version};

#[entry]
fn main() -> ! {
    let ok = codec_round_trip();
    hprintln!(
        "dca-firmware: codec round trip {}",
        if ok { "ok" } else { "FAILED" }
    );
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

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
    hprintln!("dca-firmware: {} bytes, request-id {}", len, pdu.request_id);
    first_ok && names.next().is_none() && pdu.request_id == 0x1234 && m.community == b"public"
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
