//! The SNMPv3 side of an emulated printer: its own engine (id, boots,
//! time), its users, and the checks an authoritative engine makes (RFC
//! 3414 3.2), refusing with the Reports real agents send.
//!
//! Messages are read and written with rasn-snmp; the cryptography is
//! dca-core's USM (proven against net-snmp by the host's tests). So a v3
//! poll of the simulator checks the agent's message handling against
//! another codec, and its keys against itself: net-snmp's tools, run
//! against the simulator by the tests, check both.

use crate::agent::{Behaviour, DropReason, Reply, View, answer_v2};
use dca_core::snmp::usm::{
    self, Engine, OpenError, Opened, SealParams, SecurityLevel, User, UsmError,
};
use dca_core::time::Instant;
use rasn::types::{Integer, ObjectIdentifier, OctetString};
use rasn_smi::{v1 as smi1, v2 as smi2};
use rasn_snmp::{v2, v3};
use std::time::Duration;

/// What every v3 device of a fleet is configured with.
#[derive(Debug, Clone)]
pub struct V3Config {
    pub users: Vec<User>,
    /// The context name requests must name (HP printers use "Jetdirect");
    /// empty for the default context.
    pub context: Vec<u8>,
    /// The engine reboots (boots + 1, time from 0) this often.
    pub reboot_every: Option<Duration>,
    /// Device N knows only user N modulo their number (a fleet whose
    /// printers have different users), rather than all of them.
    pub spread: bool,
}

impl V3Config {
    /// A user from `NAME`, `NAME:AUTH:PASSWORD` or
    /// `NAME:AUTH:PASSWORD:PRIV:PASSWORD`, protocols in net-snmp's words.
    pub fn parse_user(spec: &str) -> Result<User, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        let bad = |what: &str| format!("--v3-user {spec}: {what}");
        let user = User::new(parts[0].as_bytes()).map_err(|e| bad(e.describe()))?;
        let user = match parts.get(1..3) {
            Some([a, pass]) => {
                let a = usm::AuthProtocol::parse(a)
                    .ok_or_else(|| bad("unknown authentication protocol"))?;
                user.with_auth(a, pass.as_bytes())
                    .map_err(|e| bad(e.describe()))?
            }
            _ if parts.len() == 1 => return Ok(user),
            _ => {
                return Err(bad(
                    "NAME, NAME:AUTH:PASSWORD or NAME:AUTH:PASSWORD:PRIV:PASSWORD",
                ));
            }
        };
        match parts.get(3..) {
            Some([]) | None => Ok(user),
            Some([p, pass]) => {
                let p =
                    usm::PrivProtocol::parse(p).ok_or_else(|| bad("unknown privacy protocol"))?;
                user.with_privacy(p, pass.as_bytes())
                    .map_err(|e| bad(e.describe()))
            }
            Some(_) => Err(bad(
                "NAME, NAME:AUTH:PASSWORD or NAME:AUTH:PASSWORD:PRIV:PASSWORD",
            )),
        }
    }
}

/// usmStats counters (1.3.6.1.6.3.15.1.1.N.0) and snmpUnknownContexts.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    UnsupportedSecLevel = 1,
    NotInTimeWindow = 2,
    UnknownUserName = 3,
    UnknownEngineId = 4,
    WrongDigest = 5,
    DecryptionError = 6,
    UnknownContext = 100,
}

impl Refusal {
    fn oid(self) -> Vec<u32> {
        match self {
            Refusal::UnknownContext => vec![1, 3, 6, 1, 6, 3, 12, 1, 5, 0],
            other => vec![1, 3, 6, 1, 6, 3, 15, 1, 1, other as u32, 0],
        }
    }
}

/// One device's engine, owned by the task that answers for it.
#[derive(Debug)]
pub struct V3Agent {
    config: std::sync::Arc<V3Config>,
    engine_id: Vec<u8>,
    boots: u32,
    booted: std::time::Instant,
    origin: std::time::Instant,
    /// Each user's keys localised to this engine.
    keyed: Vec<Engine>,
    counters: [u32; 7],
    salt: u64,
}

impl V3Agent {
    /// Device `index`'s engine: its id is made of the index, unique in the
    /// fleet (enterprise 8072's "octets" format, as net-snmp's own).
    pub fn new(config: std::sync::Arc<V3Config>, index: u64) -> Self {
        let config = if config.spread && !config.users.is_empty() {
            let n = config.users.len() as u64;
            std::sync::Arc::new(V3Config {
                users: vec![config.users[(index % n) as usize].clone()],
                spread: false,
                ..(*config).clone()
            })
        } else {
            config
        };
        let mut engine_id = vec![0x80, 0x00, 0x1f, 0x88, 0x04];
        engine_id.extend_from_slice(b"dcasim");
        engine_id.extend_from_slice(&index.to_be_bytes());
        let now = std::time::Instant::now();
        let mut agent = Self {
            config,
            engine_id,
            boots: 1,
            booted: now,
            origin: now,
            keyed: Vec::new(),
            counters: [0; 7],
            salt: index << 32,
        };
        agent.key_users();
        agent
    }

    pub fn engine_id(&self) -> &[u8] {
        &self.engine_id
    }

    pub fn boots(&self) -> u32 {
        self.boots
    }

    fn core_now(&self) -> Instant {
        Instant::from_millis(self.origin.elapsed().as_millis() as u64)
    }

    fn key_users(&mut self) {
        let now = self.core_now();
        let time = self.booted.elapsed().as_secs() as u32;
        self.keyed = self
            .config
            .users
            .iter()
            .filter_map(|u| Engine::new(&self.engine_id, self.boots, time, now, u))
            .collect();
    }

    /// A simulated reboot: boots + 1, time from 0.
    pub fn reboot(&mut self) {
        self.boots = self.boots.saturating_add(1);
        self.booted = std::time::Instant::now();
        self.key_users();
    }

    fn time(&self) -> u32 {
        self.booted.elapsed().as_secs() as u32
    }

    /// Answers one v3 datagram (changed in place when it is decrypted).
    pub fn respond(&mut self, view: &View<'_>, b: &Behaviour, request: &mut [u8]) -> Reply {
        if let Some(every) = self.config.reboot_every
            && self.booted.elapsed() >= every
        {
            self.reboot();
        }
        let Ok(msg) = rasn::ber::decode::<v3::Message>(request) else {
            return Reply::Drop(DropReason::Undecodable);
        };
        if msg.global_data.security_model != Integer::from(3) {
            return Reply::Drop(DropReason::VersionRefused);
        }
        let Ok(sp) = rasn::ber::decode::<v3::USMSecurityParameters>(&msg.security_parameters)
        else {
            return Reply::Drop(DropReason::Undecodable);
        };
        let flags = msg.global_data.flags.first().copied().unwrap_or(0);
        let msg_id = i32::try_from(&msg.global_data.message_id).unwrap_or(0);
        let reportable = flags & 0x04 != 0;
        let request_id = match &msg.scoped_data {
            v3::ScopedPduData::CleartextPdu(s) => request_id_of(&s.data),
            v3::ScopedPduData::EncryptedPdu(_) => 0,
        };
        let refuse = |agent: &mut Self, why: Refusal, as_user: Option<usize>| {
            if !reportable {
                return Reply::Drop(DropReason::NotARequest);
            }
            agent.report(msg_id, request_id, why, as_user, &sp.user_name)
        };
        if sp.authoritative_engine_id.as_ref() != self.engine_id.as_slice() {
            return refuse(self, Refusal::UnknownEngineId, None);
        }
        let Some(ui) = self
            .config
            .users
            .iter()
            .position(|u| u.name.as_slice() == sp.user_name.as_ref())
        else {
            return refuse(self, Refusal::UnknownUserName, None);
        };
        let user = &self.config.users[ui];
        let level = match (flags & 0x01 != 0, flags & 0x02 != 0) {
            (false, false) => SecurityLevel::NoAuthNoPriv,
            (true, false) => SecurityLevel::AuthNoPriv,
            (true, true) => SecurityLevel::AuthPriv,
            (false, true) => return Reply::Drop(DropReason::Undecodable),
        };
        if level > user.level() {
            return refuse(self, Refusal::UnsupportedSecLevel, None);
        }
        // The user as this request speaks: at its level.
        let speaking = match level {
            SecurityLevel::AuthPriv => user.clone(),
            _ => user.without_privacy(),
        };
        let now = self.core_now();
        let Some(mut engine) = self.keyed.get(ui).cloned() else {
            return Reply::Drop(DropReason::NotARequest);
        };
        let engine_of = |keyed: &[Engine], i: usize| keyed.get(i).cloned();
        let scoped_bytes: Vec<u8> = if level == SecurityLevel::NoAuthNoPriv {
            match &msg.scoped_data {
                v3::ScopedPduData::CleartextPdu(s) => rasn::ber::encode(s).unwrap_or_default(),
                v3::ScopedPduData::EncryptedPdu(_) => {
                    return Reply::Drop(DropReason::Undecodable);
                }
            }
        } else {
            match usm::open(request, &speaking, Some(&mut engine), now) {
                Ok(Opened::Pdu { scoped, .. }) => {
                    // An agent's own timeliness rule (RFC 3414 3.2 step
                    // 7a): its boots, and a time within 150 s either way.
                    // (The manager's rule `open` applies would take a
                    // sender's newer clock as its own.)
                    let boots = u32::try_from(&sp.authoritative_engine_boots).unwrap_or(0);
                    let time = u32::try_from(&sp.authoritative_engine_time).unwrap_or(0);
                    if boots != self.boots || time.abs_diff(self.time()) > usm::TIME_WINDOW_SECS {
                        return refuse(self, Refusal::NotInTimeWindow, Some(ui));
                    }
                    scoped.to_vec()
                }
                Ok(Opened::Report { .. }) => return Reply::Drop(DropReason::NotARequest),
                Err(OpenError::Usm(UsmError::AnswerDigest)) => {
                    return refuse(self, Refusal::WrongDigest, None);
                }
                Err(OpenError::Usm(UsmError::AnswerNotInTimeWindow)) => {
                    // Authenticated, so the manager may trust our clock.
                    return refuse(self, Refusal::NotInTimeWindow, Some(ui));
                }
                Err(OpenError::Usm(_)) => return refuse(self, Refusal::DecryptionError, None),
                Err(OpenError::NotOurs) => return Reply::Drop(DropReason::Undecodable),
            }
        };
        // Answers go with the agent's own clock.
        let engine = engine_of(&self.keyed, ui);
        let Ok(scoped) = rasn::ber::decode::<v3::ScopedPdu>(&scoped_bytes) else {
            return Reply::Drop(DropReason::Undecodable);
        };
        let request_id = request_id_of(&scoped.data);
        if scoped.name.as_ref() != self.config.context.as_slice() {
            return self.report(
                msg_id,
                request_id,
                Refusal::UnknownContext,
                None,
                &sp.user_name,
            );
        }
        let max_size = usize::try_from(&msg.global_data.max_size).unwrap_or(484);
        let context = scoped.name.clone();
        let engine_id = OctetString::from(self.engine_id.clone());
        self.salt = self.salt.wrapping_add(1);
        let salt = self.salt;
        let seal = |pdu: v2::Pdus| -> Option<Vec<u8>> {
            let s = rasn::ber::encode(&v3::ScopedPdu {
                engine_id: engine_id.clone(),
                name: context.clone(),
                data: pdu,
            })
            .ok()?;
            if level == SecurityLevel::NoAuthNoPriv {
                return plain_message(
                    msg_id,
                    &engine_id,
                    self.boots,
                    self.time(),
                    &sp.user_name,
                    s,
                );
            }
            let mut buf = vec![0u8; s.len() + 256];
            let params = SealParams {
                msg_id,
                max_size: 65507,
                salt,
            };
            let n = usm::seal_scoped(
                &mut buf,
                &speaking,
                engine.as_ref()?,
                &params,
                now,
                &s,
                false,
            )
            .ok()?;
            buf.truncate(n);
            Some(buf)
        };
        if level < user.level() {
            // The user's access rule wants its own level (net-snmp's
            // `rouser NAME priv`): authorizationError, as snmpd answers.
            let vbs = match scoped.data {
                v2::Pdus::GetRequest(p) => p.0.variable_bindings,
                v2::Pdus::GetNextRequest(p) => p.0.variable_bindings,
                v2::Pdus::GetBulkRequest(p) => p.0.variable_bindings,
                _ => Vec::new(),
            };
            let pdu = v2::Pdu {
                request_id,
                error_status: 16,
                error_index: 0,
                variable_bindings: vbs,
            };
            return seal(v2::Pdus::Response(v2::Response(pdu)))
                .map_or(Reply::Drop(DropReason::Undecodable), Reply::Send);
        }
        let limited = Behaviour {
            max_response: b.max_response.min(max_size),
            ..b.clone()
        };
        answer_v2(view, &limited, scoped.data, |pdu| {
            seal(v2::Pdus::Response(v2::Response(pdu)))
        })
    }

    /// A Report: noAuthNoPriv, or authenticated as user `as_user` (a
    /// notInTimeWindow Report must be, for the manager to take our clock).
    fn report(
        &mut self,
        msg_id: i32,
        request_id: i32,
        why: Refusal,
        as_user: Option<usize>,
        user_name: &OctetString,
    ) -> Reply {
        let index = match why {
            Refusal::UnknownContext => 6,
            other => (other as usize).saturating_sub(1),
        };
        let counter = &mut self.counters[index];
        *counter = counter.wrapping_add(1);
        let value = v2::VarBindValue::Value(smi2::ObjectSyntax::ApplicationWide(
            smi2::ApplicationSyntax::Counter(smi1::Counter(*counter)),
        ));
        let name = ObjectIdentifier::new(why.oid()).expect("the counters' OIDs are valid");
        let pdu = v2::Pdus::Report(v2::Report(v2::Pdu {
            request_id,
            error_status: 0,
            error_index: 0,
            variable_bindings: vec![v2::VarBind { name, value }],
        }));
        let engine_id = OctetString::from(self.engine_id.clone());
        let Ok(scoped) = rasn::ber::encode(&v3::ScopedPdu {
            engine_id: engine_id.clone(),
            name: OctetString::from_static(b""),
            data: pdu,
        }) else {
            return Reply::Drop(DropReason::Undecodable);
        };
        let bytes =
            match as_user.and_then(|i| Some((self.config.users.get(i)?, self.keyed.get(i)?))) {
                Some((user, engine)) => {
                    let mut buf = vec![0u8; scoped.len() + 256];
                    self.salt = self.salt.wrapping_add(1);
                    let params = SealParams {
                        msg_id,
                        max_size: 65507,
                        salt: self.salt,
                    };
                    let now = self.core_now();
                    usm::seal_scoped(
                        &mut buf,
                        &user.without_privacy(),
                        engine,
                        &params,
                        now,
                        &scoped,
                        false,
                    )
                    .ok()
                    .map(|n| {
                        buf.truncate(n);
                        buf
                    })
                }
                None => plain_message(
                    msg_id,
                    &engine_id,
                    self.boots,
                    self.time(),
                    user_name,
                    scoped,
                ),
            };
        bytes.map_or(Reply::Drop(DropReason::Undecodable), Reply::Send)
    }
}

/// A noAuthNoPriv v3 message, written with rasn-snmp.
fn plain_message(
    msg_id: i32,
    engine_id: &OctetString,
    boots: u32,
    time: u32,
    user_name: &OctetString,
    scoped: Vec<u8>,
) -> Option<Vec<u8>> {
    let sp = rasn::ber::encode(&v3::USMSecurityParameters {
        authoritative_engine_id: engine_id.clone(),
        authoritative_engine_boots: Integer::from(boots),
        authoritative_engine_time: Integer::from(time),
        user_name: user_name.clone(),
        authentication_parameters: OctetString::from_static(b""),
        privacy_parameters: OctetString::from_static(b""),
    })
    .ok()?;
    let scoped = rasn::ber::decode::<v3::ScopedPdu>(&scoped).ok()?;
    rasn::ber::encode(&v3::Message {
        version: Integer::from(3),
        global_data: v3::HeaderData {
            message_id: Integer::from(msg_id),
            max_size: Integer::from(65507),
            flags: OctetString::from(vec![0u8]),
            security_model: Integer::from(3),
        },
        security_parameters: OctetString::from(sp),
        scoped_data: v3::ScopedPduData::CleartextPdu(scoped),
    })
    .ok()
}

fn request_id_of(p: &v2::Pdus) -> i32 {
    match p {
        v2::Pdus::GetRequest(p) => p.0.request_id,
        v2::Pdus::GetNextRequest(p) => p.0.request_id,
        v2::Pdus::GetBulkRequest(p) => p.0.request_id,
        v2::Pdus::SetRequest(p) => p.0.request_id,
        _ => 0,
    }
}
