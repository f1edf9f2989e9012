//! One sync exchange: a decoded request in, a response out. Runs on a
//! blocking thread because every exchange is a database transaction.

use crate::store::{Refusal, Store, now_ms};
use dca_core::sync::message::{MAX_TASKS, Request, Response, Task};

/// How often agents are told to call back, in seconds.
pub const POLL_INTERVAL_S: u32 = 300;

/// The status and CBOR body of an answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// What the log says about this exchange.
    pub log: String,
}

fn encode(status: u16, response: &Response<'_>, log: String) -> Answer {
    // Responses are small and bounded (a task list of at most MAX_TASKS
    // entries of operator-given strings); grow until it fits.
    let mut size = 1024;
    loop {
        let mut body = vec![0u8; size];
        match response.encode(&mut body) {
            Ok(n) => {
                body.truncate(n);
                return Answer { status, body, log };
            }
            Err(_) if size < 1 << 24 => size *= 4,
            Err(e) => {
                return refuse(&Refusal::new(
                    500,
                    format!("cannot encode the response: {e}"),
                ));
            }
        }
    }
}

/// The CBOR answer to a refused request.
pub fn refuse(r: &Refusal) -> Answer {
    let response = Response::Rejected {
        code: r.status,
        reason: &r.reason,
    };
    let mut body = vec![0u8; r.reason.len() + 64];
    let n = response.encode(&mut body).unwrap_or(0);
    body.truncate(n);
    Answer {
        status: r.status,
        body,
        log: format!("refused: {}", r.reason),
    }
}

/// Handles one decoded request from `remote`, authenticated by
/// `authorization` (all but enrollment need it).
pub fn handle(
    store: &mut Store,
    request: &Request<'_>,
    authorization: Option<&str>,
    remote: &str,
) -> Answer {
    match answer(store, request, authorization, remote) {
        Ok(a) => a,
        Err(r) => refuse(&r),
    }
}

fn answer(
    store: &mut Store,
    request: &Request<'_>,
    authorization: Option<&str>,
    remote: &str,
) -> Result<Answer, Refusal> {
    if let Request::Enroll {
        token,
        agent_version,
        hostname,
    } = request
    {
        let e = store.enroll(token, hostname, agent_version, remote)?;
        let log = format!("enrolled agent {} for customer {}", e.agent_id, e.customer);
        return Ok(encode(
            200,
            &Response::Enrolled {
                agent_id: &e.agent_id,
                secret: &e.secret,
                customer: &e.customer,
            },
            log,
        ));
    }
    let agent = store.authenticate(authorization, remote)?;
    Ok(match request {
        Request::Enroll { .. } => unreachable!("handled above"),
        Request::Hello {
            agent_version,
            capabilities,
            clock,
        } => {
            let acked = store.hello(&agent, agent_version, *capabilities, clock)?;
            encode(
                200,
                &Response::Welcome {
                    server_ms: u64::try_from(now_ms()).unwrap_or(0),
                    acked,
                    poll_interval_s: POLL_INTERVAL_S,
                },
                format!("hello from {} ({agent_version})", agent.id),
            )
        }
        Request::Upload {
            seq,
            sent,
            readings,
        } => {
            let done = store.ingest(&agent, *seq, sent, readings, remote)?;
            let log = if done.replay {
                format!("agent {} batch {seq}: replay, already stored", agent.id)
            } else {
                format!(
                    "agent {} batch {seq}: {} readings stored, {} without any key skipped",
                    agent.id, done.stored, done.skipped
                )
            };
            encode(
                200,
                &Response::Ack {
                    acked: done.acked,
                    stored: done.stored,
                },
                log,
            )
        }
        Request::TaskPoll => {
            let pending = store.pending_tasks(&agent, MAX_TASKS)?;
            let mut tasks = heapless::Vec::<Task<'_>, MAX_TASKS>::new();
            for t in &pending {
                // pending_tasks returns at most MAX_TASKS.
                let _ = tasks.push(Task {
                    id: t.id,
                    kind: &t.kind,
                    arg: &t.arg,
                });
            }
            encode(
                200,
                &Response::Tasks(tasks),
                format!("{} tasks to {}", pending.len(), agent.id),
            )
        }
        Request::TaskResult { task, ok, detail } => {
            store.finish_task(&agent, *task, *ok, detail)?;
            encode(
                200,
                &Response::Ack {
                    acked: store.last_seq(&agent.id)?,
                    stored: 0,
                },
                format!(
                    "task {task} of {}: {} {detail}",
                    agent.id,
                    if *ok { "done" } else { "failed" }
                ),
            )
        }
    })
}
