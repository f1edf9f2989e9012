//! OpenDCA firmware for the reference board (QEMU mps2-an386).
//!
//! The network stack and the agent arrive with later work. Today the image
//! proves that the core runs on the target: it encodes a GetRequest for
//! sysDescr with the core's codec and decodes it again, then frames a sync
//! `hello` as the HTTP POST the agent sends and parses it back as the cloud
//! does; then runs a round of the agent's cloud session (journal, hello,
//! upload, task poll) against answers made on the board. It reports over
//! semihosting and exits with success only if all of them held.
#![no_std]
#![no_main]

#[cfg(feature = "session")]
mod session_check;

use core::panic::PanicInfo;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use dca_core::ber::Oid;
use dca_core::snmp::{CommunityMessage, Message, Pdu, PduType, Pdus, Value, VarBind, Version};
use dca_core::sync::message::Request;
use dca_core::sync::{CONTENT_TYPE, Clock, ENDPOINT, http};

#[entry]
fn main() -> ! {
    let codec = codec_round_trip();
    hprintln!(
        "dca-firmware: codec round trip {}",
        if codec { "ok" } else { "FAILED" }
    );
    let sync = sync_round_trip();
    hprintln!(
        "dca-firmware: sync round trip {}",
        if sync { "ok" } else { "FAILED" }
    );
    #[cfg(feature = "session")]
    let session = session_check::round();
    #[cfg(not(feature = "session"))]
    let session = true;
    hprintln!(
        "dca-firmware: session round {}",
        if session { "ok" } else { "FAILED" }
    );
    let ok = codec && sync && session;
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

/// A `hello` in CBOR behind an HTTP/1.1 head, then read back.
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
    hprintln!(
        "dca-firmware: POST {} with {} bytes of CBOR",
        parsed.path,
        received.len()
    );
    parsed.authorization == Some("Bearer agent:secret") && Request::decode(received) == Ok(hello)
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
