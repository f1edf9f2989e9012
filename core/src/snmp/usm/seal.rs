//! Outgoing messages sealed (authenticated, encrypted) for one engine, and
//! incoming ones opened (digest checked, time checked, decrypted) in
//! place, in the datagram's own buffer: no second buffer, which a device
//! with little RAM could not spare.

use super::UsmError;
use super::engine::Engine;
use super::report::ReportKind;
use super::user::{SecurityLevel, User};
use crate::ber::{EncodeError, Writer, tag, tlv_len};
use crate::snmp::{
    HeaderData, Message, Pdu, PduType, ScopedPdu, ScopedPduData, UsmSecurityParameters, V3Message,
    VarBind, VarBinds, flags,
};
use crate::time::Instant;

/// msgSecurityModel of USM.
const USM: i32 = 3;

/// The longest MAC (HMAC-SHA-512's 48 octets).
const MAX_MAC_LEN: usize = 48;

/// Room for msgSecurityParameters: engine id, user, MAC and salt at their
/// longest, with their framing.
const MAX_SECURITY_PARAMETERS_LEN: usize = 160;

/// The per-message numbers of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealParams {
    /// msgID; the walker uses its request-id, so that a Report (which
    /// carries the msgID) finds the request it answers.
    pub msg_id: i32,
    /// msgMaxSize: the largest answer we can take in.
    pub max_size: i32,
    /// A counter that never repeats for one key: the privacy salt.
    pub salt: u64,
}

/// Writes `pdu` as `user` would send it to `engine`, at the user's level;
/// returns the message's length.
pub fn seal(
    buf: &mut [u8],
    user: &User,
    engine: &Engine,
    params: &SealParams,
    now: Instant,
    pdu: Pdu<&[VarBind<'_>]>,
) -> Result<usize, EncodeError> {
    let scoped = ScopedPdu {
        context_engine_id: engine.id(),
        context_name: &user.context_name,
        pdu,
    };
    seal_with(
        buf,
        user,
        engine,
        params,
        now,
        true,
        scoped.encoded_len(),
        |data| scoped.encode(data).map(drop),
    )
}

/// The same for a ScopedPDU already encoded (an emulated agent's answer,
/// which its own codec made). Answers are not reportable.
pub fn seal_scoped(
    buf: &mut [u8],
    user: &User,
    engine: &Engine,
    params: &SealParams,
    now: Instant,
    scoped: &[u8],
    reportable: bool,
) -> Result<usize, EncodeError> {
    seal_with(
        buf,
        user,
        engine,
        params,
        now,
        reportable,
        scoped.len(),
        |data| {
            data.get_mut(..scoped.len())
                .ok_or(EncodeError::BufferTooSmall {
                    needed: scoped.len(),
                    available: 0,
                })?
                .copy_from_slice(scoped);
            Ok(())
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn seal_with(
    buf: &mut [u8],
    user: &User,
    engine: &Engine,
    params: &SealParams,
    now: Instant,
    reportable: bool,
    plain_len: usize,
    write_scoped: impl FnOnce(&mut [u8]) -> Result<(), EncodeError>,
) -> Result<usize, EncodeError> {
    let level = user.level();
    let auth = user
        .auth_protocol()
        .filter(|_| level >= SecurityLevel::AuthNoPriv);
    let privacy = user
        .priv_protocol()
        .filter(|_| level == SecurityLevel::AuthPriv);
    let mut msg_flags = if reportable { flags::REPORTABLE } else { 0 };
    if auth.is_some() {
        msg_flags |= flags::AUTH;
    }
    if privacy.is_some() {
        msg_flags |= flags::PRIV;
    }
    let boots = engine.boots();
    let time = engine.time_at(now);
    let salt = privacy.map(|p| p.salt(boots, params.salt));
    let zeros = [0u8; MAX_MAC_LEN];
    let mac_len = auth.map_or(0, |a| a.mac_len());
    let sp = UsmSecurityParameters {
        engine_id: engine.id(),
        engine_boots: i32::try_from(boots).unwrap_or(i32::MAX),
        engine_time: i32::try_from(time).unwrap_or(i32::MAX),
        user_name: &user.name,
        auth_params: zeros.get(..mac_len).unwrap_or_default(),
        priv_params: salt.as_ref().map_or(&[][..], |s| &s[..]),
    };
    let mut sp_buf = [0u8; MAX_SECURITY_PARAMETERS_LEN];
    let sp_len = sp.encode(&mut sp_buf)?;
    let sp_bytes = sp_buf.get(..sp_len).unwrap_or_default();
    let header = HeaderData {
        msg_id: params.msg_id,
        max_size: params.max_size,
        flags: msg_flags,
        security_model: USM,
    };
    let data_len = privacy.map_or(plain_len, |p| p.sealed_len(plain_len));
    // Encrypted data is wrapped in an OCTET STRING; a plaintext ScopedPDU
    // is its own SEQUENCE.
    let data_tlv = if privacy.is_some() {
        tlv_len(data_len)
    } else {
        data_len
    };
    let content = tlv_len(1)
        .saturating_add(tlv_len(header.content_len()))
        .saturating_add(tlv_len(sp_len))
        .saturating_add(data_tlv);
    let total = tlv_len(content);
    if total > buf.len() {
        return Err(EncodeError::BufferTooSmall {
            needed: total,
            available: buf.len(),
        });
    }
    let data_start = total.saturating_sub(data_len);
    let (head, data) = buf.split_at_mut(data_start);
    let data = data.get_mut(..data_len).unwrap_or_default();
    data.fill(0);
    write_scoped(data)?;
    if let (Some(p), Some(salt)) = (privacy, &salt)
        && !p.encrypt(engine.priv_key(), boots, time, salt, data)
    {
        // Never send the plaintext with the privacy flag set.
        return Err(EncodeError::BufferTooSmall {
            needed: data_len,
            available: 0,
        });
    }
    let mut w = Writer::new(head);
    w.header(tag::SEQUENCE, content)?;
    w.signed(tag::INTEGER, 3)?;
    header.write(&mut w)?;
    w.header(tag::OCTET_STRING, sp_len)?;
    let sp_at = w.position();
    w.bytes(sp_bytes)?;
    if privacy.is_some() {
        w.header(tag::OCTET_STRING, data_len)?;
    }
    if w.position() != data_start {
        // The lengths above and the writer disagree: a bug, reported as
        // the encoding not fitting rather than a malformed message sent.
        return Err(EncodeError::BufferTooSmall {
            needed: w.position(),
            available: data_start,
        });
    }
    if let Some(a) = auth {
        // The MAC's place: just before the salt's TLV, at the end of the
        // security parameters.
        let priv_tlv = tlv_len(salt.map_or(0, |s| s.len()));
        let mac_at = sp_at
            .saturating_add(sp_len)
            .saturating_sub(priv_tlv)
            .saturating_sub(mac_len);
        let mut mac = [0u8; MAX_MAC_LEN];
        a.sign(
            engine.auth_key(),
            buf.get(..total).unwrap_or_default(),
            &mut mac,
        );
        if let (Some(dst), Some(src)) = (
            buf.get_mut(mac_at..mac_at.saturating_add(mac_len)),
            mac.get(..mac_len),
        ) {
            dst.copy_from_slice(src);
        }
    }
    Ok(total)
}

/// The request that makes an engine tell its id, boots and time (RFC 3414
/// 4): no user, no keys, an empty GetRequest, reportable.
pub fn discovery_request(buf: &mut [u8], msg_id: i32, max_size: i32) -> Result<usize, EncodeError> {
    let sp = UsmSecurityParameters {
        engine_id: &[],
        engine_boots: 0,
        engine_time: 0,
        user_name: &[],
        auth_params: &[],
        priv_params: &[],
    };
    let mut sp_buf = [0u8; 16];
    let sp_len = sp.encode(&mut sp_buf)?;
    let empty: &[VarBind<'_>] = &[];
    let msg = V3Message {
        header: HeaderData {
            msg_id,
            max_size,
            flags: flags::REPORTABLE,
            security_model: USM,
        },
        security_parameters: sp_buf.get(..sp_len).unwrap_or_default(),
        data: ScopedPduData::Plaintext(ScopedPdu {
            context_engine_id: &[],
            context_name: &[],
            pdu: Pdu::new(PduType::GetRequest, msg_id, empty),
        }),
    };
    msg.encode(buf)
}

/// An incoming message that passed every check its level asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened<'a> {
    /// A PDU (normally a Response) at the user's own level, and the
    /// plaintext ScopedPDU it came in (for an emulated agent's own codec;
    /// DES may leave padding after it).
    Pdu {
        msg_id: i32,
        pdu: Pdu<VarBinds<'a>>,
        scoped: &'a [u8],
    },
    /// A Report, at whatever level the engine sent it, with the engine's
    /// id (msgAuthoritativeEngineID) and clock as it sent them.
    Report {
        msg_id: i32,
        kind: ReportKind,
        engine_id: &'a [u8],
        boots: u32,
        time: u32,
        authenticated: bool,
    },
}

/// Why an incoming message was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Not a USM message for this user and engine (or not SNMPv3 at all,
    /// or malformed): ignored like any stray datagram.
    NotOurs,
    /// It claims to be ours but failed a check.
    Usm(UsmError),
}

/// What the first read of a message finds, before the buffer is changed.
struct Outline {
    msg_id: i32,
    msg_flags: u8,
    boots: u32,
    time: u32,
    mac: [u8; MAX_MAC_LEN],
    mac_len: usize,
    mac_at: usize,
    salt: [u8; 8],
    salt_len: usize,
    /// Where the encrypted ScopedPDU lies.
    sealed: Option<(usize, usize)>,
    /// Where msgAuthoritativeEngineID lies.
    engine_id: (usize, usize),
    /// Where msgData starts: a plaintext ScopedPDU runs to the end.
    data_at: usize,
}

/// Where `inner`, a part of `outer`, starts in it.
fn offset_in(outer: &[u8], inner: &[u8]) -> Option<usize> {
    (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)
}

fn outline(bytes: &[u8], user: &User, engine: Option<&Engine>) -> Result<Outline, OpenError> {
    let Ok(Message::V3(m)) = Message::decode(bytes) else {
        return Err(OpenError::NotOurs);
    };
    if m.header.security_model != USM {
        return Err(OpenError::NotOurs);
    }
    let sp =
        UsmSecurityParameters::decode(m.security_parameters).map_err(|_| OpenError::NotOurs)?;
    let authenticated = m.header.flags & flags::AUTH != 0;
    if authenticated {
        // Only our user, from the engine we know, can be checked.
        let known = engine.is_some_and(|e| e.id() == sp.engine_id);
        if !known || sp.user_name != user.name.as_slice() || user.auth_protocol().is_none() {
            return Err(OpenError::NotOurs);
        }
    }
    let mut mac = [0u8; MAX_MAC_LEN];
    let mac_len = sp.auth_params.len();
    if authenticated {
        mac.get_mut(..mac_len)
            .ok_or(OpenError::Usm(UsmError::AnswerDigest))?
            .copy_from_slice(sp.auth_params);
    }
    let mut salt = [0u8; 8];
    if sp.priv_params.len() > salt.len() {
        return Err(OpenError::NotOurs);
    }
    let salt_len = sp.priv_params.len();
    if let (Some(d), Some(s)) = (salt.get_mut(..salt_len), sp.priv_params.get(..salt_len)) {
        d.copy_from_slice(s);
    }
    let sealed = match m.data {
        ScopedPduData::Encrypted(b) => {
            let at = offset_in(bytes, b).ok_or(OpenError::NotOurs)?;
            Some((at, at.saturating_add(b.len())))
        }
        ScopedPduData::Plaintext(_) => None,
    };
    let engine_at = offset_in(bytes, sp.engine_id).ok_or(OpenError::NotOurs)?;
    let data_at = offset_in(bytes, m.security_parameters)
        .ok_or(OpenError::NotOurs)?
        .saturating_add(m.security_parameters.len());
    Ok(Outline {
        engine_id: (engine_at, engine_at.saturating_add(sp.engine_id.len())),
        data_at,
        msg_id: m.header.msg_id,
        msg_flags: m.header.flags,
        boots: u32::try_from(sp.engine_boots).unwrap_or(0),
        time: u32::try_from(sp.engine_time).unwrap_or(0),
        mac,
        mac_len,
        mac_at: offset_in(bytes, sp.auth_params).ok_or(OpenError::NotOurs)?,
        salt,
        salt_len,
        sealed,
    })
}

/// Opens a message from `engine` (None before discovery) for `user`: the
/// digest is checked in constant time, the clock taken and checked, the
/// ScopedPDU decrypted in place. A message below the user's level is
/// taken only if it is a Report (engines send those without privacy, and
/// some without authentication).
pub fn open<'a>(
    bytes: &'a mut [u8],
    user: &User,
    mut engine: Option<&mut Engine>,
    now: Instant,
) -> Result<Opened<'a>, OpenError> {
    let o = outline(bytes, user, engine.as_deref())?;
    let authenticated = o.msg_flags & flags::AUTH != 0;
    let encrypted = o.msg_flags & flags::PRIV != 0;
    if encrypted != o.sealed.is_some() || (encrypted && !authenticated) {
        return Err(OpenError::NotOurs);
    }
    if authenticated {
        let (Some(proto), Some(e)) = (user.auth_protocol(), engine.as_deref_mut()) else {
            return Err(OpenError::NotOurs);
        };
        let mac = o.mac.get(..o.mac_len).unwrap_or_default();
        bytes
            .get_mut(o.mac_at..o.mac_at.saturating_add(o.mac_len))
            .ok_or(OpenError::NotOurs)?
            .fill(0);
        if !proto.verify(e.auth_key(), bytes, mac) {
            return Err(OpenError::Usm(UsmError::AnswerDigest));
        }
        if !e.accept_time(o.boots, o.time, now) {
            return Err(OpenError::Usm(UsmError::AnswerNotInTimeWindow));
        }
    }
    let level = match (authenticated, encrypted) {
        (false, _) => SecurityLevel::NoAuthNoPriv,
        (true, false) => SecurityLevel::AuthNoPriv,
        (true, true) => SecurityLevel::AuthPriv,
    };
    let (id_start, id_end) = o.engine_id;
    let scoped_pdu = if let Some((start, end)) = o.sealed {
        let (Some(proto), Some(e)) = (user.priv_protocol(), engine.as_deref()) else {
            return Err(OpenError::NotOurs);
        };
        let data = bytes.get_mut(start..end).ok_or(OpenError::NotOurs)?;
        let salt = o.salt.get(..o.salt_len).unwrap_or_default();
        proto
            .decrypt(e.priv_key(), o.boots, o.time, salt, data)
            .map_err(|_| OpenError::Usm(UsmError::AnswerDecryption))?;
        let bytes: &'a [u8] = bytes;
        let plain = bytes.get(start..end).unwrap_or_default();
        let s = ScopedPdu::decode(plain).map_err(|_| OpenError::Usm(UsmError::AnswerDecryption))?;
        (s, bytes.get(id_start..id_end).unwrap_or_default(), plain)
    } else {
        let bytes: &'a [u8] = bytes;
        match Message::decode(bytes) {
            Ok(Message::V3(V3Message {
                data: ScopedPduData::Plaintext(s),
                ..
            })) => (
                s,
                bytes.get(id_start..id_end).unwrap_or_default(),
                bytes.get(o.data_at..).unwrap_or_default(),
            ),
            _ => return Err(OpenError::NotOurs),
        }
    };
    let (scoped_pdu, engine_id, scoped) = scoped_pdu;
    if scoped_pdu.pdu.ty == PduType::Report {
        // A Report carries the msgID of the request it refuses (its
        // request-id may be 0: the engine could not read the PDU).
        return Ok(Opened::Report {
            msg_id: o.msg_id,
            kind: ReportKind::of(scoped_pdu.pdu.varbinds),
            engine_id,
            boots: o.boots,
            time: o.time,
            authenticated,
        });
    }
    if level < user.level() {
        return Err(OpenError::NotOurs);
    }
    Ok(Opened::Pdu {
        msg_id: o.msg_id,
        pdu: scoped_pdu.pdu,
        scoped,
    })
}
