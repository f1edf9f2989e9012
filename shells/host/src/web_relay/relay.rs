//! One session's relay loop: `relay` to the cloud (held there until a
//! browser request comes), the request judged and, if admitted, sent to
//! the device, the answer judged and carried by the next `relay`.

use super::device::{self, Reply};
use super::{Clock, IdentityReader, Limits};
use crate::cloud_link::{Answer, LinkError};
use crate::cloud_session::{Log, Transport};
use dca_core::sync::message::{RelayAnswer, Request, Response};
use dca_core::sync::web_access::{self, Opening, Redirect, Refusal, Window};

/// Why a relay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The cloud closed the session (`relay closed`).
    Closed,
    /// The session's window ended: its expiry, or an idle spell.
    Window,
    /// The cloud refused the relay for good.
    Rejected { code: u16, reason: String },
    /// The cloud could not be reached, try after try.
    Unreachable { tries: u32, last: String },
    /// The cloud's certificate was refused: no retry mends that.
    Untrusted(String),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Closed => f.write_str("the cloud closed the session"),
            Ended::Window => f.write_str("the session's time is over (expired or idle)"),
            Ended::Rejected { code, reason } => {
                write!(f, "the cloud refused the relay (HTTP {code}: {reason})")
            }
            Ended::Unreachable { tries, last } => {
                write!(
                    f,
                    "the cloud could not be reached in {tries} tries ({last})"
                )
            }
            Ended::Untrusted(e) => write!(f, "refusing the cloud's certificate: {e}"),
        }
    }
}

/// A relay's parts: what the session is, and what it talks through.
pub struct Relay {
    pub opening: Opening,
    /// The agent's credentials, as every request to the cloud carries them.
    pub authorization: String,
    /// A connection to the cloud of the relay's own.
    pub link: Box<dyn Transport + Send>,
    pub identity: IdentityReader,
    /// The web ports the agent relays to: a device that redirects to
    /// itself on one of these is followed there.
    pub ports: Vec<u16>,
    /// Where the session was before a redirect moved it: it goes back there
    /// if the device cannot be reached where it moved to.
    pub moved_from: Option<(std::net::SocketAddr, bool)>,
    pub limits: Limits,
    pub clock: Clock,
    pub log: Log,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("opening", &self.opening)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// An answer waiting to go to the cloud.
struct Pending {
    seq: u64,
    reply: Reply,
}

/// How one exchange with the cloud went.
enum Exchanged {
    Answered(Answer),
    /// Worth another try (the network, a proxy's page, a busy cloud).
    Failed(String),
    Ended(Ended),
}

/// A path as the log shows it: without its query (a form sent by GET
/// carries its values there), control characters escaped (they would
/// forge log lines), and cut short.
fn shown(text: &str) -> String {
    let bare = match text.split_once('?') {
        Some((p, _)) => format!("{p}?…"),
        None => text.to_string(),
    };
    let mut out = String::new();
    for c in bare.chars().take(200) {
        if c.is_ascii_graphic() || c == '…' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out
}

impl Relay {
    fn now(&self) -> dca_core::time::Instant {
        (self.clock)()
    }

    /// Relays until the session ends; says why it ended.
    pub fn run(mut self) -> Ended {
        let mut window = Window::new(self.now(), self.opening.ttl);
        let mut pending: Option<Pending> = None;
        // A request came after the window ended: it is answered 410, and
        // the relay ends with that answer.
        let mut ending = false;
        let mut failures = 0u32;
        loop {
            if pending.is_none() && (ending || !window.is_open(self.now())) {
                return Ended::Window;
            }
            let answer = match self.exchange(pending.as_ref()) {
                Exchanged::Answered(a) => a,
                Exchanged::Ended(end) => return end,
                Exchanged::Failed(why) => {
                    failures += 1;
                    if failures >= self.limits.tries {
                        return Ended::Unreachable {
                            tries: failures,
                            last: why,
                        };
                    }
                    let pause = self
                        .limits
                        .backoff
                        .saturating_mul(1 << (failures - 1).min(4));
                    self.log.debug(format!(
                        "web access {}: relay failed ({why}); trying again in {} ms",
                        self.opening.session,
                        pause.as_millis()
                    ));
                    std::thread::sleep(pause);
                    continue;
                }
            };
            failures = 0;
            pending = None;
            if ending {
                return Ended::Window;
            }
            // `exchange` decoded it already: only a relay's answers and
            // refusals for good come here.
            match Response::decode(&answer.body) {
                Ok(Response::RelayIdle) => {}
                Ok(Response::RelayClosed) => return Ended::Closed,
                Ok(Response::Forward {
                    seq,
                    method,
                    path,
                    head,
                    body,
                }) => {
                    let now = self.now();
                    let reply = if window.is_open(now) {
                        window.touch(now);
                        self.serve(method, path, head, body)
                    } else {
                        ending = true;
                        Reply::refusal(Refusal::Closed)
                    };
                    pending = Some(Pending { seq, reply });
                }
                Ok(Response::Rejected { code, reason }) => {
                    return Ended::Rejected {
                        code,
                        reason: reason.to_string(),
                    };
                }
                Ok(other) => {
                    return Ended::Rejected {
                        code: answer.status,
                        reason: format!("an answer that is not a relay's: {other:?}"),
                    };
                }
                Err(e) => {
                    return Ended::Rejected {
                        code: answer.status,
                        reason: format!("an answer that is not the protocol: {e}"),
                    };
                }
            }
        }
    }

    /// Posts one `relay`, carrying `pending` when there is an answer.
    fn exchange(&mut self, pending: Option<&Pending>) -> Exchanged {
        let request = Request::Relay {
            session: self.opening.session,
            answer: pending.map(|p| RelayAnswer {
                seq: p.seq,
                status: p.reply.status,
                head: &p.reply.head,
                body: &p.reply.body,
                refused: p.reply.refused.as_deref(),
            }),
        };
        let mut body = vec![0u8; request.encoded_len()];
        let n = match request.encode(&mut body) {
            Ok(n) => n,
            Err(e) => {
                return Exchanged::Ended(Ended::Rejected {
                    code: 0,
                    reason: format!("the relay request could not be encoded: {e}"),
                });
            }
        };
        body.truncate(n);
        match self
            .link
            .exchange(Some(&self.authorization), &body, Some(self.limits.hold))
        {
            Ok(a) => {
                // A refusal the cloud may get over, and a page that is not
                // the protocol (a proxy's), are tried again.
                let again = match Response::decode(&a.body) {
                    Ok(Response::Rejected { code, reason }) if code >= 500 => {
                        Some(format!("HTTP {code}: {reason}"))
                    }
                    Ok(_) => None,
                    Err(e) => Some(format!("HTTP {}: not the protocol: {e}", a.status)),
                };
                match again {
                    Some(why) => Exchanged::Failed(why),
                    None => Exchanged::Answered(a),
                }
            }
            Err(LinkError::Untrusted(e)) => Exchanged::Ended(Ended::Untrusted(e)),
            Err(e) => Exchanged::Failed(e.to_string()),
        }
    }

    /// One browser request: judged, the device's identity checked, sent to
    /// the device, its answer judged. Every outcome is logged.
    fn serve(&mut self, method: &str, path: &str, head: &[u8], body: &[u8]) -> Reply {
        let o = &self.opening;
        let what = format!(
            "web access {}: {} {}",
            o.session,
            shown(method),
            shown(path)
        );
        // The agent's own judgement first: a refused request never reaches
        // the device, nor costs an SNMP read.
        let request = web_access::check_request(method, path, head, body.len())
            .map_err(Reply::refusal)
            .and_then(|()| device::request(o.target, method, path, head, body));
        let request = match request {
            Ok(r) => r,
            Err(refused) => {
                self.log.warn(format!(
                    "{what} refused: {}",
                    refused.refused.as_deref().unwrap_or("")
                ));
                return refused;
            }
        };
        let ip = o.target.ip();
        let seen = (self.identity)(ip);
        if !seen
            .as_deref()
            .is_ok_and(|s| web_access::same_device(&o.serial, s))
        {
            let saw = match &seen {
                Ok(s) => format!("the device there reports serial {s:?}"),
                Err(e) => e.clone(),
            };
            self.log.warn(format!(
                "{what} refused: identity mismatch at {ip}: the session is for serial {:?}, \
                 {saw}; the device was not contacted",
                o.serial.as_str()
            ));
            return Reply::refusal(Refusal::OtherDevice);
        }
        let mut reply =
            device::exchange(o.target, o.https, &request, method == "HEAD", &self.limits);
        if (300..400).contains(&reply.status) {
            self.keep_redirect_in_session(&mut reply);
        }
        // Connection-level failures (502, 504 from the agent itself) where a
        // redirect moved the session: a printer whose HTTPS is broken must
        // not leave the session stuck there.
        if reply.refused.is_some()
            && matches!(reply.status, 502 | 504)
            && let Some((target, https)) = self.moved_from.take()
        {
            self.log.warn(format!(
                "web access session {}: {}://{} failed; the session goes back to {}://{target}",
                self.opening.session,
                self.opening.scheme(),
                self.opening.target,
                web_access::scheme(https)
            ));
            self.opening.target = target;
            self.opening.https = https;
        }
        match &reply.refused {
            None => self.log.info(format!(
                "{what} -> {} ({} bytes)",
                reply.status,
                reply.body.len()
            )),
            Some(why) => self
                .log
                .warn(format!("{what} -> {} refused: {why}", reply.status)),
        }
        reply
    }

    /// A device that redirects to its own address (as printers do, by IP,
    /// and from HTTP to HTTPS) would send the browser out of the session to
    /// an address it cannot reach: its `Location` becomes a path in the
    /// session, and when the device moved to another scheme or port the
    /// agent relays to, the session follows it there.
    fn keep_redirect_in_session(&mut self, reply: &mut Reply) {
        let Ok(head) = std::str::from_utf8(&reply.head) else {
            return;
        };
        let is_location = |line: &str| {
            line.split_once(':')
                .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("location"))
        };
        // Browsers refuse an answer with differing Locations: left as it is,
        // and the session does not move on one of them.
        if head.split("\r\n").filter(|l| is_location(l)).count() != 1 {
            return;
        }
        let mut kept = String::with_capacity(head.len());
        for line in head.split_inclusive("\r\n") {
            let location = line
                .split_once(':')
                .filter(|_| is_location(line))
                .map(|(_, value)| value.trim());
            let Some(location) = location else {
                kept.push_str(line);
                continue;
            };
            let o = &mut self.opening;
            let rest = match web_access::redirect(location, o.target, o.https) {
                Redirect::Here { rest } if rest != location => rest,
                Redirect::Moved { to, https, rest } if self.ports.contains(&to.port()) => {
                    self.log.info(format!(
                        "web access session {}: the device moved to {}://{to}; the session follows",
                        o.session,
                        web_access::scheme(https)
                    ));
                    self.moved_from.get_or_insert((o.target, o.https));
                    o.target = to;
                    o.https = https;
                    rest
                }
                _ => {
                    kept.push_str(line);
                    continue;
                }
            };
            let slash = if rest.starts_with('/') { "" } else { "/" };
            kept.push_str(&format!("Location: {slash}{rest}\r\n"));
        }
        reply.head = kept.into_bytes();
    }
}
