//! The server under hostile clients, in this process over real TLS on
//! loopback (127.58.0.0/16): connection slots, deadlines a dribbling
//! client cannot renew, credentials before bodies, failed sign-ins limited
//! and audited per window, unambiguous device names, paged readings,
//! security headers, and log lines an agent cannot forge.
//!
//! Deadlines are shortened here (`Limits`) so that each test takes a few
//! seconds; every wait is bounded.

mod inproc;

use dca_cloud::guard::Guard;
use dca_cloud::limits::Limits;
use dca_cloud::store::Role;
use dca_core::sync::message::{Request, Response};
use inproc::*;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

fn short() -> Limits {
    Limits {
        idle: Duration::from_secs(5),
        head: Duration::from_secs(1),
        body: Duration::from_secs(1),
        body_rate: 1_000_000,
        write: Duration::from_secs(2),
        ..Limits::default()
    }
}

fn cbor(request: &Request<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = request.encode(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn sync_headers(auth: &str) -> String {
    format!("Content-Type: application/cbor\r\nAuthorization: {auth}\r\n")
}

fn hello() -> Vec<u8> {
    cbor(&Request::Hello {
        agent_version: "0.2.0",
        capabilities: 0,
        clock: Default::default(),
    })
}

/// Version 1 waited 30 s per read, renewed by every byte: a byte every 29 s
/// held a connection for ever. The head now has one deadline from its
/// first byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_dribbled_a_byte_at_a_time_is_closed_at_its_deadline() {
    let server = start("slow-head", "127.58.1.1", short()).await;
    let mut s = server.tls("127.58.1.2").await.unwrap();
    let head = head(
        "POST",
        "/v1/sync",
        "X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
        10,
    );
    let start = Instant::now();
    let mut closed = false;
    // A byte every 100 ms, far quicker than the idle time (5 s), for 6 s
    // at most.
    for b in head.iter().cycle().take(60) {
        if s.write_all(&[*b]).await.is_err() || s.flush().await.is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut s, Duration::from_millis(100)).await {
            closed = true;
            break;
        }
    }
    let took = start.elapsed();
    assert!(closed, "the connection is still open after {took:?}");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("request head not whole within")),
        "{:?}",
        server.log.lock().unwrap()
    );
}

/// The body has one deadline too, from the end of its head, by its length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_dribbled_slowly_is_closed_at_its_deadline() {
    let server = start("slow-body", "127.58.2.1", short()).await;
    let auth = server.agent("acme");
    let mut s = server.tls("127.58.2.2").await.unwrap();
    s.write_all(&head("POST", "/v1/sync", &sync_headers(&auth), 200_000))
        .await
        .unwrap();
    let start = Instant::now();
    let mut closed = false;
    for _ in 0..60 {
        if s.write_all(&[0u8; 10]).await.is_err() || s.flush().await.is_err() {
            closed = true;
            break;
        }
        if closed_within(&mut s, Duration::from_millis(100)).await {
            closed = true;
            break;
        }
    }
    let took = start.elapsed();
    assert!(closed, "the connection is still open after {took:?}");
    assert!(took < Duration::from_secs(4), "closed after {took:?}");
}

/// Version 1 took every connection: a client holding thousands of idle
/// ones took the descriptors every agent needed. Connections past the cap
/// (in all, or from one address) are closed at accept; those held go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_and_those_held_are_served() {
    let limits = Limits {
        max_connections: 4,
        max_per_address: 3,
        ..short()
    };
    let server = start("cap", "127.58.3.1", limits).await;
    let op = server.session(Role::Viewer, "default").cookie;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(server.tls("127.58.3.2").await.unwrap());
    }
    // The address's share is taken: a fourth from it is closed at once.
    let start = Instant::now();
    assert!(server.tls("127.58.3.2").await.is_err());
    assert!(start.elapsed() < Duration::from_secs(2));
    // Another address gets the last slot; then the server is full.
    held.push(server.tls("127.58.3.3").await.unwrap());
    let start = Instant::now();
    assert!(server.tls("127.58.3.4").await.is_err());
    assert!(start.elapsed() < Duration::from_secs(2));
    // A connection held is served all the same.
    let s = &mut held[0];
    s.write_all(&head("GET", "/api/customers", &op, 0))
        .await
        .unwrap();
    let answer = read_answer(s, Duration::from_secs(5)).await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    // A slot given back is taken again: the last connection asks to be
    // closed, and is, which frees its slot (given back just after the
    // close: a few quick attempts, bounded).
    let mut last = held.pop().unwrap();
    let close = format!("{op}Connection: close\r\n");
    last.write_all(&head("GET", "/api/customers", &close, 0))
        .await
        .unwrap();
    assert_eq!(
        read_answer(&mut last, Duration::from_secs(5))
            .await
            .unwrap()
            .status,
        200
    );
    assert!(closed_within(&mut last, Duration::from_secs(5)).await);
    let mut again = None;
    for _ in 0..100 {
        if let Ok(s) = server.tls("127.58.3.4").await {
            again = Some(s);
            break;
        }
    }
    assert!(again.is_some(), "the freed slot is taken again");
}

/// Version 1 read a body whole before looking at its credentials: anyone
/// could make it take 8 MiB. Wrong or missing credentials are answered 401
/// after the head, without reading the body, and the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_checked_before_the_body_is_read() {
    let server = start("auth-first", "127.58.4.1", short()).await;
    let auth = server.agent("acme");
    for (from, headers) in [
        ("127.58.4.2", sync_headers("Bearer agt_nobody:wrong")),
        (
            "127.58.4.3",
            "Content-Type: application/cbor\r\n".to_string(),
        ),
    ] {
        let mut s = server.tls(from).await.unwrap();
        s.write_all(&head("POST", "/v1/sync", &headers, 8 * 1024 * 1024))
            .await
            .unwrap();
        s.flush().await.unwrap();
        let answer = read_answer(&mut s, Duration::from_secs(3))
            .await
            .unwrap_or_else(|e| panic!("{headers:?}: no answer before the body: {e}"));
        assert_eq!(answer.status, 401, "{headers:?}");
        assert!(matches!(
            Response::decode(&answer.body),
            Ok(Response::Rejected { code: 401, .. })
        ));
        assert_eq!(answer.header("Connection"), Some("close"));
        assert!(closed_within(&mut s, Duration::from_secs(3)).await);
    }
    // The agent's own request goes through.
    let answer = request(
        &server,
        "127.58.4.4",
        "POST",
        "/v1/sync",
        &sync_headers(&auth),
        &hello(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 200);
}

/// Version 1 wrote one fsynced audit row per wrong secret and answered
/// every one: a flood of them was a flood of transactions. Failures are
/// counted per address and window (one row each), and past the allowance
/// the address gets 429 with Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secrets_are_limited_and_audited_once_a_window() {
    let server = start("bad-secrets", "127.58.5.1", short()).await;
    let auth = server.agent("acme");
    let tries = 3 * Guard::ALLOWED as usize;
    let mut statuses = Vec::new();
    for i in 0..tries {
        let a = request(
            &server,
            "127.58.5.2",
            "POST",
            "/v1/sync",
            &sync_headers(&format!("Bearer agt_guess{i}:wrong")),
            &hello(),
        )
        .await
        .unwrap();
        statuses.push(a.status);
        if a.status == 429 {
            assert!(a.header("Retry-After").is_some(), "{a:?}");
        }
    }
    let allowed = Guard::ALLOWED as usize;
    assert!(
        statuses[..allowed].iter().all(|s| *s == 401),
        "{statuses:?}"
    );
    assert!(
        statuses[allowed..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    // The right secret from another address is not concerned.
    let ok = request(
        &server,
        "127.58.5.3",
        "POST",
        "/v1/sync",
        &sync_headers(&auth),
        &hello(),
    )
    .await
    .unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(
        server.count("SELECT COUNT(*) FROM audit WHERE event = 'auth_refused'"),
        1,
        "the first failure is written, not one row per failure"
    );
    let shared = server.shared.clone();
    server.stop().await;
    let store = shared.store.lock().unwrap();
    let rows: Vec<(String, String)> = store
        .connection()
        .prepare("SELECT remote, detail FROM audit WHERE event = 'auth_refused' ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r.0 == "127.58.5.2"), "{rows:?}");
    assert!(
        rows[0].1.starts_with("unknown agent agt_guess0"),
        "{rows:?}"
    );
    assert!(
        rows[1]
            .1
            .starts_with(&format!("{tries} failures from 127.58.5.2")),
        "{rows:?}"
    );
}

/// Version 1 wrote an audit row for every request without credentials
/// (a small `hello` passes the unauthenticated body limit): they are
/// counted per window and limited like wrong secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_credentials_are_limited_and_audited_once_a_window() {
    let server = start("no-credentials", "127.58.11.1", short()).await;
    let headers = "Content-Type: application/cbor\r\n";
    let mut statuses = Vec::new();
    for _ in 0..2 * Guard::ALLOWED {
        let a = request(
            &server,
            "127.58.11.2",
            "POST",
            "/v1/sync",
            headers,
            &hello(),
        )
        .await
        .unwrap();
        statuses.push(a.status);
    }
    let allowed = Guard::ALLOWED as usize;
    assert!(
        statuses[..allowed].iter().all(|s| *s == 401),
        "{statuses:?}"
    );
    assert!(
        statuses[allowed..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    assert_eq!(
        server.count("SELECT COUNT(*) FROM audit WHERE event = 'auth_refused'"),
        1
    );
}

/// A stranger's request that fails for another reason than credentials (a
/// wrong content type, a wrong method) used to keep its connection: one
/// such request just inside the idle deadline held a slot forever, and
/// never met a lockout. Now the connection ends with the answer, and the
/// failures count against the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_failed_request_ends_its_connection_and_counts() {
    let server = start("stranger-failed", "127.58.13.1", short()).await;
    let mut s = server.tls("127.58.13.2").await.unwrap();
    s.write_all(&head("POST", "/v1/sync", "Content-Type: text/plain\r\n", 0))
        .await
        .unwrap();
    s.flush().await.unwrap();
    let a = read_answer(&mut s, Duration::from_secs(10)).await.unwrap();
    assert_eq!(a.status, 415);
    assert!(
        closed_within(&mut s, Duration::from_secs(2)).await,
        "kept open"
    );
    let mut statuses = Vec::new();
    for _ in 0..2 * Guard::ALLOWED {
        let a = request(&server, "127.58.13.2", "GET", "/v1/sync", "", b"")
            .await
            .unwrap();
        statuses.push(a.status);
    }
    assert!(statuses.contains(&405), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [405, 429].contains(s)),
        "{statuses:?}"
    );
}

/// Version 1 let anyone try operator passwords as fast as it answered and
/// kept no trace. Past the allowance the address is locked out (429), even
/// with the right password and code; the lockout and the failures are
/// audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_operator_sign_ins_lock_the_address_out_and_are_audited() {
    let server = start("sign-in", "127.58.6.1", short()).await;
    let jo = server.add_operator(Role::Dealer, "default");
    let token = server.signin_token("127.58.6.2").await;
    let wrong = [
        ("name", jo.name.as_str()),
        ("password", "wrong"),
        ("code", "000000"),
    ];
    for i in 0..Guard::ALLOWED {
        let a = server.post_signin("127.58.6.2", &token, wrong, "").await;
        assert_eq!(a.status, 401, "try {i}");
        assert!(a.text().contains("wrong name, password or code"), "{a:?}");
    }
    let a = server.post_signin("127.58.6.2", &token, wrong, "").await;
    assert_eq!(a.status, 429);
    assert!(a.header("Retry-After").is_some(), "{a:?}");
    let code = server.code(&jo.totp);
    let right = [
        ("name", jo.name.as_str()),
        ("password", jo.password.as_str()),
        ("code", code.as_str()),
    ];
    let a = server.post_signin("127.58.6.2", &token, right, "").await;
    assert_eq!(a.status, 429, "locked out, the right credentials included");
    assert_eq!(a.cookie("__Host-dca_session"), None);
    let other = server.signin_token("127.58.6.3").await;
    let a = server.post_signin("127.58.6.3", &other, right, "").await;
    assert_eq!(a.status, 303, "another address signs in: {a:?}");
    assert_eq!(
        server.count("SELECT COUNT(*) FROM audit WHERE event = 'operator_locked_out' AND remote = '127.58.6.2'"),
        1
    );
    let shared = server.shared.clone();
    server.stop().await;
    let detail: String = shared
        .store
        .lock()
        .unwrap()
        .connection()
        .query_row(
            "SELECT detail FROM audit WHERE event = 'operator_signin_refused' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        detail.starts_with(&format!("{} failures", Guard::ALLOWED + 1)),
        "{detail}"
    );
}

const SECURITY: [(&str, &str); 4] = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
];

/// Version 1 sent no security headers: its pages could be framed, sniffed
/// or leak their address. Every answer carries them, errors included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers() {
    let server = start("headers", "127.58.7.1", short()).await;
    let auth = server.agent("acme");
    let op = server.sign_in("127.58.7.3", Role::Viewer, "default").await;
    let cases = [
        ("GET", "/", op.cookie.clone(), Vec::new(), 200),
        ("GET", "/api/devices", op.cookie.clone(), Vec::new(), 200),
        ("GET", "/nothing", op.cookie.clone(), Vec::new(), 404),
        ("GET", "/", String::new(), Vec::new(), 303),
        ("GET", "/api/devices", String::new(), Vec::new(), 401),
        ("GET", "/signin", String::new(), Vec::new(), 200),
        (
            "POST",
            "/signout",
            op.cookie.clone(),
            b"csrf=wrong".to_vec(),
            403,
        ),
        ("POST", "/v1/sync", sync_headers(&auth), hello(), 200),
        (
            "POST",
            "/v1/sync",
            sync_headers(&auth),
            b"garbage".to_vec(),
            400,
        ),
    ];
    for (i, (method, path, headers, body, status)) in cases.into_iter().enumerate() {
        let a = request(&server, "127.58.7.2", method, path, &headers, &body)
            .await
            .unwrap();
        assert_eq!(a.status, status, "case {i}: {a:?}");
        for (name, value) in SECURITY {
            let got = a
                .header(name)
                .unwrap_or_else(|| panic!("case {i}: no {name}: {}", a.head));
            assert!(got.contains(value), "case {i}: {name}: {got}");
        }
        let csp = a.header("Content-Security-Policy").unwrap();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script-src"),
            "{csp}"
        );
        // The pages have forms now (sign-in, sign-out): posted here only.
        assert!(csp.contains("form-action 'self'"), "{csp}");
        assert_eq!(a.header("Cache-Control"), Some("no-store"), "case {i}");
    }
}

/// Version 1 printed what agents sent as it came: a task detail (or a
/// model) with a newline forged a log line of its own. It is escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cannot_forge_a_log_line() {
    let server = start("logs", "127.58.8.1", short()).await;
    let auth = server.agent("acme");
    let agent = auth
        .strip_prefix("Bearer ")
        .and_then(|c| c.split_once(':'))
        .unwrap()
        .0
        .to_string();
    let task = server
        .shared
        .store
        .lock()
        .unwrap()
        .create_task(&agent, "rescan", "")
        .unwrap();
    let body = cbor(&Request::TaskResult {
        task,
        ok: true,
        detail: "x\n[fake] dca-cloud: agent agt_0 enrolled\x1b[31m",
    });
    let a = request(
        &server,
        "127.58.8.2",
        "POST",
        "/v1/sync",
        &sync_headers(&auth),
        &body,
    )
    .await
    .unwrap();
    assert_eq!(a.status, 200);
    let log = server.log.lock().unwrap().clone();
    // Each sink call is one line as printed: none may hold a line break or
    // an escape character.
    let line = log
        .iter()
        .find(|l| l.contains(&format!("task {task} of")))
        .unwrap_or_else(|| panic!("{log:?}"));
    assert!(
        line.contains("x\\n[fake] dca-cloud: agent agt_0 enrolled\\u{1b}[31m"),
        "{line}"
    );
    assert!(
        log.iter().all(|l| !l.chars().any(char::is_control)),
        "{log:?}"
    );
}

/// Version 1 answered a name with the first device of any customer whose
/// key, id or serial it was, ordered by customer name: customer "aaa"'s
/// printer with serial "1" answered the operator's lookup of device id 1.
/// A bare name that fits several devices is now a 409 listing them; `id:`
/// names an id only; an agent sees its own customer's devices only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_name_never_lands_on_another_customers_device() {
    let server = start("lookup", "127.58.9.1", short()).await;
    let zzz = server.agent("zzz");
    let aaa = server.agent("aaa");
    // zzz's printer is device 1; aaa's has serial "1".
    deliver(&server, &zzz, "ZZZSERIAL", &[("total", 100)], 1).await;
    deliver(&server, &aaa, "1", &[("total", 200)], 1).await;
    let op = server
        .sign_in("127.58.9.3", Role::Viewer, "default")
        .await
        .cookie;
    let get = |path: String, headers: String| {
        let server = &server;
        async move {
            request(server, "127.58.9.2", "GET", &path, &headers, b"")
                .await
                .unwrap()
        }
    };
    let a = get("/api/devices/1/readings".into(), op.clone()).await;
    assert_eq!(a.status, 409, "{}", String::from_utf8_lossy(&a.body));
    let candidates = a.json()["candidates"].as_array().unwrap().clone();
    let mut customers: Vec<&str> = candidates
        .iter()
        .map(|c| c["customer"].as_str().unwrap())
        .collect();
    customers.sort();
    assert_eq!(customers, ["aaa", "zzz"]);
    let a = get("/api/devices/id:1/readings".into(), op.clone()).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["device"]["customer"], "zzz");
    let a = get("/api/devices/serial:1/readings".into(), op.clone()).await;
    assert_eq!(a.json()["device"]["customer"], "aaa");
    // Each customer's agent sees its own device by the bare name.
    let a = get(
        "/api/devices/1/readings".into(),
        format!("Authorization: {aaa}\r\n"),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["device"]["serial"], "1");
    let a = get(
        "/api/devices/1/readings".into(),
        format!("Authorization: {zzz}\r\n"),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["device"]["serial"], "ZZZSERIAL");
    let a = get(
        "/api/devices/id:1/readings".into(),
        format!("Authorization: {aaa}\r\n"),
    )
    .await;
    assert_eq!(a.status, 404, "not aaa's device");
}

/// Version 1 answered every reading of a device at once. Pages of `limit`
/// (default 500, at most 5000), newest first, follow `next_before`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_come_in_pages() {
    let server = start("pages", "127.58.10.1", short()).await;
    let auth = server.agent("acme");
    for round in 1..=7u64 {
        deliver(&server, &auth, "PAGED1", &[("total", 1000 + round)], round).await;
    }
    let op = server
        .sign_in("127.58.10.3", Role::Dealer, "default")
        .await
        .cookie;
    let mut seen = Vec::new();
    let mut path = "/api/devices/serial:PAGED1/readings?limit=3".to_string();
    for _ in 0..10 {
        let a = request(&server, "127.58.10.2", "GET", &path, &op, b"")
            .await
            .unwrap();
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        let page = a.json();
        let rows = page["readings"].as_array().unwrap();
        assert!(rows.len() <= 3);
        seen.extend(rows.iter().map(|r| r["value"].as_i64().unwrap()));
        match page["next_before"].as_i64() {
            Some(next) => {
                path = format!("/api/devices/serial:PAGED1/readings?limit=3&before={next}")
            }
            None => break,
        }
    }
    assert_eq!(seen, [1007, 1006, 1005, 1004, 1003, 1002, 1001]);
    for bad in ["limit=0", "limit=5001", "before=x", "sort=asc"] {
        let a = request(
            &server,
            "127.58.10.2",
            "GET",
            &format!("/api/devices/serial:PAGED1/readings?{bad}"),
            &op,
            b"",
        )
        .await
        .unwrap();
        assert_eq!(a.status, 400, "{bad}");
    }
    let a = request(
        &server,
        "127.58.10.2",
        "GET",
        "/api/devices/serial:PAGED1/readings",
        &op,
        b"",
    )
    .await
    .unwrap();
    assert_eq!(a.json()["limit"], 500);
}

/// Uploads one reading of a corpus printer with serial `serial` and the
/// counters `counters`, as a new batch (its journal's first), from `auth`.
async fn deliver(
    server: &Server,
    auth: &str,
    serial: &str,
    counters: &[(&'static str, u64)],
    n: u64,
) {
    use dca_core::printer::Text;
    use dca_core::sync::batch::BatchId;
    use dca_core::sync::message::Readings;
    use dca_core::sync::{Clock, reading};
    let mut s = printer();
    s.identity.serial = Text::from_str_lossy(serial);
    s.counters
        .retain(|c| counters.iter().any(|(name, _)| *name == c.name));
    for c in s.counters.iter_mut() {
        c.value = counters.iter().find(|(name, _)| *name == c.name).unwrap().1;
    }
    assert_eq!(
        s.counters.len(),
        counters.len(),
        "the printer has {counters:?}"
    );
    let at = Clock {
        wall_ms: Some(1_795_000_000_000 + n * 1000),
        boot_id: [1; 16],
        mono_ms: n,
    };
    let mut buf = vec![0u8; 16 * 1024];
    let len = reading::encode(&s, &at, Some("10.0.0.5"), &mut buf).unwrap();
    let readings = Readings::new(&buf[..len], 1);
    let body = cbor(&Request::Upload {
        batch: BatchId::of(&readings),
        after: None,
        position: n,
        sent: at,
        readings,
    });
    let a = request(
        server,
        "127.58.0.2",
        "POST",
        "/v1/sync",
        &sync_headers(auth),
        &body,
    )
    .await
    .unwrap();
    assert_eq!(a.status, 200, "{:?}", Response::decode(&a.body));
}

fn printer() -> dca_core::printer::Snapshot {
    let corpus = std::env::var_os("DCA_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
        });
    let path = corpus.join("librenms/snmprec/jetdirect_m130nw.snmprec");
    dca_core::snmprec::parse(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .snapshot()
}
