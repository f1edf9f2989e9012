//! Operators' sign-in, sessions and dealers, over real TLS in this process
//! (loopback 127.60.0.0/16): the form and its cookie, every refusal alike,
//! sessions that end, forms that must come from the cloud's own pages, and
//! each dealer's operators seeing that dealer's customers only.
//!
//! Before, the pages took one password for the whole cloud (HTTP Basic):
//! no second factor, no sign-out, every customer of every dealer to
//! everyone who had it. Each test here fails on that code.

mod inproc;

use dca_cloud::limits::Limits;
use dca_cloud::store::{Role, SESSION_IDLE_MS};
use inproc::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const REFUSED: &str = "wrong name, password or code";
const SESSION: &str = "__Host-dca_session";

fn limits() -> Limits {
    Limits {
        idle: Duration::from_secs(5),
        write: Duration::from_secs(5),
        ..Limits::default()
    }
}

async fn get(server: &Server, from: &str, path: &str, headers: &str) -> Answer {
    request(server, from, "GET", path, headers, b"")
        .await
        .unwrap()
}

/// `POST path` with a form body `body`, from `from`, with `headers`.
async fn post(server: &Server, from: &str, path: &str, headers: &str, body: &str) -> Answer {
    let headers = format!("{headers}Content-Type: application/x-www-form-urlencoded\r\n");
    request(server, from, "POST", path, &headers, body.as_bytes())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_sets_a_secure_session_cookie_and_shows_who_is_signed_in() {
    let server = start("signin-ok", "127.60.1.1", limits()).await;
    let from = "127.60.1.2";
    // The form: its token comes as a cookie too, for ten minutes.
    let a = get(&server, from, "/signin", "").await;
    assert_eq!(a.status, 200);
    let token = a.cookie("__Host-dca_signin").unwrap();
    assert_eq!(token.len(), 64);
    assert_eq!(
        a.set_cookie("__Host-dca_signin"),
        Some(
            format!(
                "__Host-dca_signin={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=600"
            )
            .as_str()
        )
    );
    for field in ["name=name", "name=password", "name=code", "name=csrf"] {
        assert!(a.text().contains(field), "{field}: {}", a.text());
    }
    let jo = server.add_operator(Role::Dealer, "north");
    let code = server.code(&jo.totp);
    let a = server
        .post_signin(
            from,
            &token,
            [
                ("name", &jo.name),
                ("password", &jo.password),
                ("code", &code),
            ],
            "Origin: https://cloud\r\n",
        )
        .await;
    assert_eq!(a.status, 303, "{a:?}");
    assert_eq!(a.header("Location"), Some("/"));
    let session = a.cookie(SESSION).unwrap();
    assert!(
        session.len() == 64 && session.bytes().all(|b| b.is_ascii_hexdigit()),
        "{session}"
    );
    assert_eq!(
        a.set_cookie(SESSION),
        Some(
            format!(
                "{SESSION}={session}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=43200"
            )
            .as_str()
        )
    );
    // The form's cookie is spent.
    assert!(
        a.set_cookie("__Host-dca_signin")
            .unwrap()
            .ends_with("Max-Age=0")
    );
    // The database keeps the token's SHA-256, never the token.
    let hash = dca_cloud::secret::sha256_hex(session.as_bytes());
    assert_eq!(
        server.count(&format!(
            "SELECT COUNT(*) FROM operator_sessions WHERE hex(token_hash) = upper('{hash}')"
        )),
        1
    );
    assert_eq!(
        server.count(&format!(
            "SELECT COUNT(*) FROM operator_sessions WHERE CAST(token_hash AS TEXT) = '{session}' OR csrf = '{session}'"
        )),
        0
    );
    assert_eq!(
        server.count(&format!(
            "SELECT COUNT(*) FROM audit WHERE event = 'operator_signed_in' AND detail = '{}' AND remote = '{from}'",
            jo.name
        )),
        1
    );
    // The page says who is signed in and offers to sign out; it is kept
    // in no cache.
    let page = get(
        &server,
        from,
        "/",
        &format!("Cookie: {SESSION}={session}\r\n"),
    )
    .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("Cache-Control"), Some("no-store"));
    let text = page.text();
    assert!(
        text.contains(&format!("{} (dealer, dealer north)", jo.name)),
        "{text}"
    );
    assert!(text.contains("action=\"/signout\""), "{text}");
    assert_eq!(hidden_csrf(&page.body).len(), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refused_sign_in_reads_the_same() {
    let server = start("signin-refused", "127.60.2.1", limits()).await;
    let from = "127.60.2.2";
    let jo = server.add_operator(Role::Viewer, "default");
    let code = server.code(&jo.totp);
    let wrong_code = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let token = server.signin_token(from).await;
    let cases: [(&str, [(&str, &str); 3]); 5] = [
        (
            "wrong password",
            [("name", &jo.name), ("password", "0123"), ("code", &code)],
        ),
        (
            "wrong code",
            [
                ("name", &jo.name),
                ("password", &jo.password),
                ("code", &wrong_code),
            ],
        ),
        (
            "no code",
            [("name", &jo.name), ("password", &jo.password), ("code", "")],
        ),
        (
            "no second factor at all",
            [
                ("name", &jo.name),
                ("password", &jo.password),
                ("other", "x"),
            ],
        ),
        (
            "unknown name",
            [
                ("name", "nobody"),
                ("password", &jo.password),
                ("code", &code),
            ],
        ),
    ];
    let mut bodies = Vec::new();
    for (what, fields) in cases {
        let a = server.post_signin(from, &token, fields, "").await;
        assert_eq!(a.status, 401, "{what}: {a:?}");
        assert_eq!(a.cookie(SESSION), None, "{what}");
        // The form again, with a fresh token; the same words whichever
        // factor was wrong.
        let fresh = a.cookie("__Host-dca_signin").unwrap();
        assert_eq!(hidden_csrf(&a.body), fresh, "{what}");
        bodies.push(a.text().replace(&fresh, "TOKEN"));
    }
    assert!(bodies[0].contains(REFUSED), "{}", bodies[0]);
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:#?}");
    // The right code once: in. The same code again: refused alike.
    let right = [
        ("name", jo.name.as_str()),
        ("password", jo.password.as_str()),
        ("code", code.as_str()),
    ];
    let a = server.post_signin(from, &token, right, "").await;
    assert_eq!(a.status, 303, "{a:?}");
    let a = server.post_signin(from, &token, right, "").await;
    assert_eq!(a.status, 401, "a replayed code: {a:?}");
    let fresh = a.cookie("__Host-dca_signin").unwrap();
    assert_eq!(a.text().replace(&fresh, "TOKEN"), bodies[0]);
    assert!(
        server.count("SELECT COUNT(*) FROM audit WHERE event = 'operator_signin_refused'") >= 1
    );
}

/// Argon2 runs outside the store's lock, so two sign-ins with one code can
/// both get past the password at once: spending the code lets one in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sign_ins_with_one_code_at_once_let_one_in() {
    let server = start("signin-race", "127.60.3.1", limits()).await;
    for round in 0..3 {
        let jo = server.add_operator(Role::Viewer, "default");
        let code = server.code(&jo.totp);
        let (t1, t2) = (
            server.signin_token("127.60.3.2").await,
            server.signin_token("127.60.3.3").await,
        );
        let fields = [
            ("name", jo.name.as_str()),
            ("password", jo.password.as_str()),
            ("code", code.as_str()),
        ];
        let (a, b) = tokio::join!(
            server.post_signin("127.60.3.2", &t1, fields, ""),
            server.post_signin("127.60.3.3", &t2, fields, ""),
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [303, 401], "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_their_own_dealers_customers_only() {
    let server = start("dealers", "127.60.4.1", limits()).await;
    // acme is dealer north's customer, globex dealer south's.
    let (acme, globex) = {
        let mut store = server.shared.store.lock().unwrap();
        let acme = store.create_token_for("acme", Some("north")).unwrap();
        let globex = store.create_token_for("globex", Some("south")).unwrap();
        (acme, globex)
    };
    let agents: Vec<String> = [acme, globex]
        .iter()
        .map(|t| {
            let e = server
                .shared
                .store
                .lock()
                .unwrap()
                .enroll(t, "host", "0.2.0", "test")
                .unwrap();
            format!("Bearer {}:{}", e.agent_id, e.secret)
        })
        .collect();
    deliver(&server, &agents[0], "ACME1").await;
    deliver(&server, &agents[1], "GLOBEX1").await;
    let acme_device = server.count(
        "SELECT d.id FROM devices d JOIN customers c ON c.id = d.customer_id WHERE c.name = 'acme'",
    );
    let globex_device = server.count(
        "SELECT d.id FROM devices d JOIN customers c ON c.id = d.customer_id WHERE c.name = 'globex'",
    );
    let from = "127.60.4.2";
    let north_viewer = server.sign_in(from, Role::Viewer, "north").await;
    let north_dealer = server.sign_in(from, Role::Dealer, "north").await;
    let south = server.sign_in(from, Role::Dealer, "south").await;
    let customers = |a: &Answer| -> Vec<String> {
        a.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let serials = |a: &Answer| -> Vec<String> {
        a.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["serial"].as_str().unwrap().to_string())
            .collect()
    };
    for north in [&north_viewer, &north_dealer] {
        let a = get(&server, from, "/api/devices", &north.cookie).await;
        assert_eq!(serials(&a), ["ACME1"], "{}", north.name);
        let a = get(&server, from, "/api/customers", &north.cookie).await;
        assert_eq!(customers(&a), ["acme"]);
        let page = get(&server, from, "/", &north.cookie).await.text();
        assert!(
            page.contains("ACME1") && !page.contains("GLOBEX1"),
            "{page}"
        );
        let a = get(
            &server,
            from,
            &format!("/api/devices/id:{acme_device}/readings"),
            &north.cookie,
        )
        .await;
        assert_eq!(a.status, 200, "{a:?}");
    }
    let a = get(&server, from, "/api/devices", &south.cookie).await;
    assert_eq!(serials(&a), ["GLOBEX1"]);
    let a = get(&server, from, "/api/customers", &south.cookie).await;
    assert_eq!(customers(&a), ["globex"]);
    let page = get(&server, from, "/", &south.cookie).await.text();
    assert!(
        page.contains("GLOBEX1") && !page.contains("ACME1"),
        "{page}"
    );
    // Another dealer's device is as absent as one that does not exist,
    // by any of its names.
    for name in [
        format!("id:{acme_device}"),
        "serial:ACME1".into(),
        "ACME1".into(),
    ] {
        let a = get(
            &server,
            from,
            &format!("/api/devices/{name}/readings"),
            &south.cookie,
        )
        .await;
        assert_eq!(a.status, 404, "{name}: {a:?}");
        assert_eq!(
            a.json()["error"],
            format!("not found: device {name}"),
            "the answer to a name nobody has"
        );
    }
    let a = get(
        &server,
        from,
        &format!("/api/devices/id:{globex_device}/readings"),
        &south.cookie,
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_session() {
    let server = start("signout", "127.60.5.1", limits()).await;
    let from = "127.60.5.2";
    let jo = server.sign_in(from, Role::Viewer, "default").await;
    let a = post(
        &server,
        from,
        "/signout",
        &format!("{}Origin: https://cloud\r\n", jo.cookie),
        &format!("csrf={}", jo.csrf),
    )
    .await;
    assert_eq!(a.status, 303, "{a:?}");
    assert_eq!(a.header("Location"), Some("/signin"));
    assert_eq!(
        a.set_cookie(SESSION),
        Some(format!("{SESSION}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0").as_str())
    );
    assert_eq!(server.count("SELECT COUNT(*) FROM operator_sessions"), 0);
    assert_eq!(
        server.count(&format!(
            "SELECT COUNT(*) FROM audit WHERE event = 'operator_signed_out' AND detail = '{}'",
            jo.name
        )),
        1
    );
    // The old cookie: a browser is sent to the form (and told to drop
    // it), a program gets 401.
    let a = get(&server, from, "/", &jo.cookie).await;
    assert_eq!(a.status, 303);
    assert_eq!(a.header("Location"), Some("/signin"));
    assert!(a.set_cookie(SESSION).unwrap().ends_with("Max-Age=0"));
    let a = get(&server, from, "/api/devices", &jo.cookie).await;
    assert_eq!(a.status, 401);
    // Without any cookie, or with one never issued, the same.
    for cookie in [
        String::new(),
        format!("Cookie: {SESSION}={}\r\n", "ab".repeat(32)),
    ] {
        let a = get(&server, from, "/", &cookie).await;
        assert_eq!(a.status, 303, "{cookie:?}");
        assert_eq!(a.header("Location"), Some("/signin"));
        assert_eq!(
            get(&server, from, "/api/customers", &cookie).await.status,
            401
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_its_token_or_from_another_site_is_refused() {
    let server = start("csrf", "127.60.6.1", limits()).await;
    let from = "127.60.6.2";
    let jo = server.sign_in(from, Role::Dealer, "default").await;
    let cases = [
        ("no token", jo.cookie.clone(), String::new()),
        (
            "a wrong token",
            jo.cookie.clone(),
            format!("csrf={}", "0".repeat(64)),
        ),
        (
            "another site's page",
            format!("{}Origin: https://evil.example\r\n", jo.cookie),
            format!("csrf={}", jo.csrf),
        ),
        (
            "the right host over http",
            format!("{}Origin: http://cloud\r\n", jo.cookie),
            format!("csrf={}", jo.csrf),
        ),
        (
            "an opaque origin",
            format!("{}Origin: null\r\n", jo.cookie),
            format!("csrf={}", jo.csrf),
        ),
    ];
    for (what, headers, body) in cases {
        let a = post(&server, from, "/signout", &headers, &body).await;
        assert_eq!(a.status, 403, "{what}: {a:?}");
        assert!(a.text().contains("cross-site request refused"), "{what}");
    }
    assert_eq!(
        get(&server, from, "/", &jo.cookie).await.status,
        200,
        "still signed in"
    );
    // The sign-in form: its token must match its cookie, and come from
    // this cloud's page.
    let account = server.add_operator(Role::Viewer, "default");
    let token = server.signin_token(from).await;
    let code = server.code(&account.totp);
    let fields = [
        ("name", account.name.as_str()),
        ("password", account.password.as_str()),
        ("code", code.as_str()),
    ];
    let other = server.signin_token(from).await;
    let body = |csrf: &str| {
        format!(
            "csrf={csrf}&name={}&password={}&code={code}",
            account.name, account.password
        )
    };
    for (what, headers, body) in [
        ("no cookie", String::new(), body(&token)),
        (
            "another form's cookie",
            format!("Cookie: __Host-dca_signin={other}\r\n"),
            body(&token),
        ),
        (
            "no token",
            format!("Cookie: __Host-dca_signin={token}\r\n"),
            body(""),
        ),
    ] {
        let a = post(&server, from, "/signin", &headers, &body).await;
        assert_eq!(a.status, 403, "{what}: {a:?}");
        assert!(a.text().contains("cross-site request refused"), "{what}");
        assert_eq!(a.cookie(SESSION), None, "{what}");
    }
    let a = server
        .post_signin(from, &token, fields, "Origin: https://evil.example\r\n")
        .await;
    assert_eq!(a.status, 403, "{a:?}");
    // None of these spent the code.
    let a = server
        .post_signin(from, &token, fields, "Origin: https://cloud\r\n")
        .await;
    assert_eq!(a.status, 303, "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_idle_past_its_timeout_is_refused() {
    let server = start("idle", "127.60.7.1", limits()).await;
    let from = "127.60.7.2";
    // The store's clock, moved by the test.
    let now = Arc::new(AtomicI64::new(dca_cloud::store::now_ms()));
    let clock = now.clone();
    server
        .shared
        .store
        .lock()
        .unwrap()
        .set_clock(move || clock.load(Ordering::SeqCst));
    let jo = server.sign_in(from, Role::Viewer, "default").await;
    let minute = 60_000;
    // Used within the timeout, again and again: still signed in.
    for _ in 0..3 {
        now.fetch_add(SESSION_IDLE_MS - minute, Ordering::SeqCst);
        assert_eq!(get(&server, from, "/", &jo.cookie).await.status, 200);
    }
    // Idle past it: refused, and the row is gone.
    now.fetch_add(SESSION_IDLE_MS + minute, Ordering::SeqCst);
    let a = get(&server, from, "/", &jo.cookie).await;
    assert_eq!(a.status, 303);
    assert_eq!(a.header("Location"), Some("/signin"));
    assert_eq!(server.count("SELECT COUNT(*) FROM operator_sessions"), 0);
    assert_eq!(get(&server, from, "/", &jo.cookie).await.status, 303);
}

/// A person's request carries no credentials before its body: only a
/// form's few bytes are taken; more is refused unread, and the connection
/// ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_body_to_the_pages_is_refused_unread() {
    let server = start("web-body", "127.60.8.1", limits()).await;
    let jo = server.session(Role::Viewer, "default");
    for (path, headers) in [("/signin", String::new()), ("/signout", jo.cookie.clone())] {
        let mut s = server.tls("127.60.8.2").await.unwrap();
        let headers = format!("{headers}Content-Type: application/x-www-form-urlencoded\r\n");
        s.write_all(&head("POST", path, &headers, 8 * 1024 * 1024))
            .await
            .unwrap();
        s.flush().await.unwrap();
        let a = read_answer(&mut s, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("{path}: no answer before the body: {e}"));
        assert_eq!(a.status, 413, "{path}: {a:?}");
        assert!(
            closed_within(&mut s, Duration::from_secs(5)).await,
            "{path}"
        );
    }
}

#[test]
fn dealers_are_named_when_customers_and_operators_are_made() {
    let dir = fresh_dir("dealer-cli");
    let db = dir.join("cloud.db");
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_dca-cloud"))
            .args(args)
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap()
    };
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let out = cli(&["token", "create", "--customer", "acme", "--dealer", "north"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("of dealer north"), "{}", text(&out));
    // Another token for acme: its dealer by default, or named.
    for extra in [&[][..], &["--dealer", "north"]] {
        let mut args = vec!["token", "create", "--customer", "acme"];
        args.extend_from_slice(extra);
        let out = cli(&args);
        assert!(out.status.success(), "{}", text(&out));
    }
    // Another dealer for acme: refused, naming both.
    let out = cli(&["token", "create", "--customer", "acme", "--dealer", "south"]);
    assert!(!out.status.success());
    let err = text(&out);
    assert!(err.contains("north") && err.contains("south"), "{err}");
    // A new customer without a dealer: the default one.
    let out = cli(&["token", "create", "--customer", "globex"]);
    assert!(text(&out).contains("of dealer default"), "{}", text(&out));
    for (name, dealer) in [("jo", Some("north")), ("vi", None)] {
        let mut args = vec!["operator", "add", name, "--role", "viewer"];
        if let Some(d) = dealer {
            args.extend_from_slice(&["--dealer", d]);
        }
        let out = cli(&args);
        assert!(out.status.success(), "{}", text(&out));
    }
    let list = text(&cli(&["operator", "list"]));
    assert!(list.contains("jo viewer dealer=north"), "{list}");
    assert!(list.contains("vi viewer dealer=default"), "{list}");
}

/// Uploads one reading of a corpus printer with serial `serial` from
/// `auth`, as a journal's first batch.
async fn deliver(server: &Server, auth: &str, serial: &str) {
    use dca_core::printer::Text;
    use dca_core::sync::batch::BatchId;
    use dca_core::sync::message::{Readings, Request};
    use dca_core::sync::{Clock, reading};
    let corpus = std::env::var_os("DCA_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
        });
    let path = corpus.join("librenms/snmprec/jetdirect_m130nw.snmprec");
    let mut s = dca_core::snmprec::parse(&std::fs::read_to_string(&path).unwrap()).snapshot();
    s.identity.serial = Text::from_str_lossy(serial);
    let at = Clock {
        wall_ms: Some(1_795_000_000_000),
        boot_id: [1; 16],
        mono_ms: 1,
    };
    let mut buf = vec![0u8; 16 * 1024];
    let len = reading::encode(&s, &at, Some("10.0.0.5"), &mut buf).unwrap();
    let readings = Readings::new(&buf[..len], 1);
    let mut body = vec![0u8; 32 * 1024];
    let n = Request::Upload {
        batch: BatchId::of(&readings),
        after: None,
        position: 1,
        sent: at,
        readings,
    }
    .encode(&mut body)
    .unwrap();
    body.truncate(n);
    let a = request(
        server,
        "127.60.0.2",
        "POST",
        "/v1/sync",
        &format!("Content-Type: application/cbor\r\nAuthorization: {auth}\r\n"),
        &body,
    )
    .await
    .unwrap();
    assert_eq!(a.status, 200, "{a:?}");
}
