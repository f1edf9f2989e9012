//! One sync exchange: a decoded request in, a response out. Runs on a
//! blocking thread because every exchange is a database transaction.

use crate::store::{Refusal, Store, Upload};
use dca_core::sync::VERSION;
use dca_core::sync::message::{MAX_TASKS, Request, Response, Task};

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

/// The answer to a request in protocol `version`, which this cloud does not
/// speak: `426` with a `rejected` body in that version's framing, so that an
/// agent of another version can still read why it was refused.
pub fn refuse_version(version: u64) -> Answer {
    let what = if version < VERSION {
        "upgrade the agent"
    } else {
        "upgrade the cloud (dca-cloud)"
    };
    let r = Refusal::new(
        426,
        format!(
            "this cloud speaks sync protocol {VERSION} and this agent speaks {version}: {what}"
        ),
    );
    let mut body = vec![0u8; r.reason.len() + 64];
    let n = Response::encode_rejection(version, r.status, &r.reason, &mut body).unwrap_or(0);
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
            let (last_batch, held) = store.hello(&agent, agent_version, *capabilities, clock)?;
            let last = last_batch.map_or_else(|| "none".into(), |b| b.to_string());
            encode(
                200,
                &Response::Welcome {
                    server_ms: u64::try_from(store.now()).unwrap_or(0),
                    last_batch,
                    held,
                    poll_interval_s: store.poll_interval_s(),
                    hold_max_s: store.hold_max_s(),
                },
                format!(
                    "hello from {} ({agent_version}): {held} batches held, last {last}",
                    agent.id
                ),
            )
        }
        Request::Upload {
            batch,
            after,
            position,
            sent,
            readings,
        } => {
            let upload = Upload {
                batch,
                after: after.as_ref(),
                position: *position,
                sent,
                readings,
            };
            let done = store.ingest(&agent, &upload, remote)?;
            let log = if done.duplicate {
                format!(
                    "agent {} batch {batch} (position {position}): duplicate, already held",
                    agent.id
                )
            } else {
                format!(
                    "agent {} batch {batch} (position {position}): {} readings stored, {} without any key skipped",
                    agent.id, done.stored, done.skipped
                )
            };
            encode(
                200,
                &Response::Ack {
                    batch: *batch,
                    stored: done.stored,
                    duplicate: done.duplicate,
                },
                log,
            )
        }
        // A listen that reached here has waited (the server holds it until
        // a task is made or its wait ends): it is answered as a poll.
        Request::TaskPoll | Request::Listen { .. } => {
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
        // The server answers relays itself (they wait on a browser); one
        // that reaches the store alone has no session to relay for.
        Request::Relay { session, .. } => encode(
            200,
            &Response::RelayClosed,
            format!(
                "relay for session {session} of {}: no such open session",
                agent.id
            ),
        ),
        Request::TaskResult { task, ok, detail } => {
            store.finish_task(&agent, *task, *ok, detail)?;
            encode(
                200,
                &Response::Noted,
                format!(
                    "task {task} of {}: {} {detail}",
                    agent.id,
                    if *ok { "done" } else { "failed" }
                ),
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dca_core::sync::Clock;
    use dca_core::sync::batch::BatchId;
    use dca_core::sync::message::Readings;

    fn store(name: &str) -> Store {
        let path =
            std::env::temp_dir().join(format!("dca-exchange-{name}-{}.db", std::process::id()));
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
        }
        let mut store = Store::open(&path).unwrap();
        store.set_clock(|| 1_800_000_000_000);
        store
    }

    fn exchange(store: &mut Store, request: &Request<'_>, auth: Option<&str>) -> (u16, Vec<u8>) {
        let a = handle(store, request, auth, "test");
        (a.status, a.body)
    }

    #[test]
    fn answers_speak_protocol_2() {
        let mut store = store("v2");
        let token = store.create_token("acme").unwrap();
        let (status, body) = exchange(
            &mut store,
            &Request::Enroll {
                token: &token,
                agent_version: "0.2.0",
                hostname: "h",
            },
            None,
        );
        assert_eq!(status, 200);
        let Ok(Response::Enrolled {
            agent_id, secret, ..
        }) = Response::decode(&body)
        else {
            panic!("{:?}", Response::decode(&body));
        };
        let auth = format!("Bearer {agent_id}:{secret}");
        let auth = Some(auth.as_str());
        let clock = Clock::default();
        let hello = Request::Hello {
            agent_version: "0.2.0",
            capabilities: 7,
            clock,
        };
        let (status, body) = exchange(&mut store, &hello, auth);
        assert_eq!(status, 200);
        assert_eq!(
            Response::decode(&body).unwrap(),
            Response::Welcome {
                server_ms: 1_800_000_000_000,
                last_batch: None,
                held: 0,
                poll_interval_s: crate::store::DEFAULT_POLL_INTERVAL_S,
                hold_max_s: 0,
            }
        );

        // An empty batch is a batch like any other: held once.
        let readings = Readings::new(&[], 0);
        let batch = BatchId::of(&readings);
        let upload = Request::Upload {
            batch,
            after: None,
            position: 1,
            sent: clock,
            readings,
        };
        for duplicate in [false, true] {
            let (status, body) = exchange(&mut store, &upload, auth);
            assert_eq!(status, 200);
            assert_eq!(
                Response::decode(&body).unwrap(),
                Response::Ack {
                    batch,
                    stored: 0,
                    duplicate,
                }
            );
        }
        let (_, body) = exchange(&mut store, &hello, auth);
        let Ok(Response::Welcome {
            last_batch, held, ..
        }) = Response::decode(&body)
        else {
            panic!("{:?}", Response::decode(&body));
        };
        assert_eq!((last_batch, held), (Some(batch), 1));

        // A batch whose predecessor the cloud does not hold (it was lost to a
        // restore) is refused with 409, so the agent says hello again.
        let one = [0xa1, 0x01, 0x62, b'h', b'p'];
        let readings_after = Readings::new(&one, 1);
        let orphan = Request::Upload {
            batch: BatchId::of(&readings_after),
            after: Some(BatchId([9; 32])),
            position: 3,
            sent: clock,
            readings: readings_after,
        };
        let (status, body) = exchange(&mut store, &orphan, auth);
        assert_eq!(status, 409);
        assert!(matches!(
            Response::decode(&body),
            Ok(Response::Rejected { code: 409, .. })
        ));
        let (_, body) = exchange(&mut store, &hello, auth);
        assert!(matches!(
            Response::decode(&body),
            Ok(Response::Welcome { held: 1, .. })
        ));

        let id = store.create_task(agent_id, "rescan", "").unwrap();
        let result = Request::TaskResult {
            task: id,
            ok: true,
            detail: "done",
        };
        let (status, body) = exchange(&mut store, &result, auth);
        assert_eq!(status, 200);
        assert_eq!(Response::decode(&body).unwrap(), Response::Noted);
        let (status, body) = exchange(
            &mut store,
            &Request::TaskResult {
                task: id + 1,
                ok: true,
                detail: "",
            },
            auth,
        );
        assert_eq!(status, 404);
        assert!(matches!(
            Response::decode(&body),
            Ok(Response::Rejected { code: 404, .. })
        ));

        // A batch named by other readings' digest is refused.
        let forged = Request::Upload {
            batch: BatchId([7; 32]),
            after: None,
            position: 2,
            sent: clock,
            readings,
        };
        let (status, body) = exchange(&mut store, &forged, auth);
        assert_eq!(status, 400);
        assert_eq!(
            Response::decode(&body).unwrap(),
            Response::Rejected {
                code: 400,
                reason: "batch id does not match its readings",
            }
        );
    }

    /// Sixteen long tasks do not make an answer larger than an MFP reads:
    /// they come a share at a time, each share once the last is done, and
    /// an argument longer than any agent takes is refused at creation.
    #[test]
    fn task_lists_come_in_shares_a_device_can_read() {
        let mut store = store("task-shares");
        let token = store.create_token("acme").unwrap();
        let enroll = Request::Enroll {
            token: &token,
            agent_version: "0.2.0",
            hostname: "h",
        };
        let (_, body) = exchange(&mut store, &enroll, None);
        let Ok(Response::Enrolled {
            agent_id, secret, ..
        }) = Response::decode(&body)
        else {
            panic!("{:?}", Response::decode(&body));
        };
        let (agent_id, auth) = (agent_id.to_string(), format!("Bearer {agent_id}:{secret}"));
        let long = "10.0.0.1-10.0.0.254,".repeat(13);
        let long = &long[..250];
        let mut queued: Vec<u64> = (0..MAX_TASKS)
            .map(|_| store.create_task(&agent_id, "set_targets", long).unwrap())
            .collect();
        let too_long = "1".repeat(crate::store::MAX_TASK_ARG + 1);
        let refused = store.create_task(&agent_id, "set_targets", &too_long);
        assert!(refused.unwrap_err().contains("at most 256"));
        let mut shares = 0;
        // Bounded: each share takes at least one task.
        while !queued.is_empty() && shares < MAX_TASKS {
            let (status, body) = exchange(&mut store, &Request::TaskPoll, Some(&auth));
            assert_eq!(status, 200);
            assert!(body.len() <= 2048 + 512, "{} bytes", body.len());
            let Ok(Response::Tasks(tasks)) = Response::decode(&body) else {
                panic!("{:?}", Response::decode(&body));
            };
            assert!(!tasks.is_empty());
            for t in &tasks {
                assert_eq!(Some(t.id), queued.first().copied(), "in order, once each");
                queued.remove(0);
                let result = Request::TaskResult {
                    task: t.id,
                    ok: true,
                    detail: "set",
                };
                assert_eq!(exchange(&mut store, &result, Some(&auth)).0, 200);
            }
            shares += 1;
        }
        assert!(queued.is_empty() && shares > 1, "{shares} shares");
    }

    #[test]
    fn other_versions_are_refused_in_their_own_framing() {
        let a = refuse_version(1);
        assert_eq!(a.status, 426);
        // {0: 1, 1: 69, 20: 426, 21: "..."}: what a version 1 agent reads.
        assert_eq!(
            a.body[..9],
            [0xa4, 0x00, 0x01, 0x01, 0x18, 0x45, 0x14, 0x19, 0x01]
        );
        assert_eq!(a.body[9], 0xaa, "426 = 0x01aa");
        let reason = "this cloud speaks sync protocol 2 and this agent speaks 1: upgrade the agent";
        assert!(a.body.ends_with(reason.as_bytes()));
        assert!(String::from_utf8_lossy(&refuse_version(3).body).contains("upgrade the cloud"));
    }
}
