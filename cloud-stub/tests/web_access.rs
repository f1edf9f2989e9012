//! Device Web Access end to end: a real cloud, emulated printers with web
//! pages, a real `dca run`, and operators signed in with password and
//! code. A dealer opens a printer's page through the cloud and sees it;
//! every refusal the security officer expects holds, and the printers'
//! own counts show that nothing reached them when it must not.

mod support;

use std::process::Command;
use support::*;

/// Posts a form of page `page` (its token taken from it) to `action` as
/// the operator of `cookie`, with `fields`: status and the whole answer.
fn post_form(
    site: &WebSite,
    cookie: &str,
    page: &str,
    action: &str,
    fields: &[String],
) -> (u16, String) {
    let (status, body) = curl(
        &site.cloud,
        &["-H", cookie, &format!("{}{page}", site.cloud.url)],
    );
    assert_eq!(status, 200);
    let token = format!("csrf={}", csrf(&String::from_utf8(body).unwrap()));
    let url = format!("{}{action}", site.cloud.url);
    let mut args = vec!["-i", "-H", cookie, "--data-urlencode", token.as_str()];
    for f in fields {
        args.extend(["--data-urlencode", f.as_str()]);
    }
    args.push(&url);
    let (status, answer) = curl(&site.cloud, &args);
    (status, String::from_utf8(answer).unwrap())
}

/// `POST /devices/{id}/web` as the operator of `cookie`: status and the
/// whole answer (head and body).
fn open(site: &WebSite, cookie: &str, device: i64, port: u16) -> (u16, String) {
    post_form(
        site,
        cookie,
        &format!("/devices/{device}"),
        &format!("/devices/{device}/web"),
        &[format!("port={port}")],
    )
}

/// Opens device `device` as a dealer and enters its session: the entry
/// point's base URL and the session cookie's header line.
fn enter(site: &WebSite, cookie: &str, device: i64) -> (String, String, u64) {
    enter_on(site, cookie, device, 8080)
}

/// [`enter`] with the device's web server on `port`.
fn enter_on(site: &WebSite, cookie: &str, device: i64, port: u16) -> (String, String, u64) {
    let (status, answer) = open(site, cookie, device, port);
    assert_eq!(status, 200, "{answer}");
    let entry = answer
        .split_once("id=enter href=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .expect("a link to the session's entry point")
        .0
        .to_string();
    let (base, _) = entry.split_once("/.dwa/").unwrap();
    let base = base.to_string();
    let (status, answer) = curl(&site.cloud, &["-i", &entry]);
    let answer = String::from_utf8(answer).unwrap();
    assert_eq!(status, 303, "{answer}");
    let set = header(&answer, "set-cookie").expect("the session's cookie");
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    let pair = set.split(';').next().unwrap();
    let session: u64 = pair
        .strip_prefix("__Host-dca_web_")
        .and_then(|r| r.split_once('='))
        .and_then(|(id, _)| id.parse().ok())
        .expect("the cookie names its session");
    // The key works once.
    let (again, _) = curl(&site.cloud, &[&entry]);
    assert_eq!(again, 403);
    (base, format!("Cookie: {pair}"), session)
}

/// curl's exit code and HTTP status for `args`, not asserting success.
fn try_curl(site: &WebSite, args: &[&str]) -> (i32, String) {
    let cert = site.cloud.db.parent().unwrap().join("dca-cloud-cert.pem");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(cert)
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

/// The printer's status page through the session at `base` must be
/// answered, and name `serial`.
fn assert_status_page_names(site: &WebSite, cookie: &str, base: &str, serial: &str) {
    let (status, page) = curl(&site.cloud, &["-H", cookie, &format!("{base}/")]);
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(serial), "the page names {serial}: {page}");
}

fn access_log(site: &WebSite) -> Vec<(String, String, i64, i64, Option<String>)> {
    let conn = rusqlite::Connection::open(&site.cloud.db).unwrap();
    let mut q = conn
        .prepare("SELECT method, path, status, bytes, refused FROM web_requests ORDER BY id")
        .unwrap();
    q.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn a_dealer_sees_the_printers_own_page_and_the_access_log_lists_it() {
    let mut site = WebSite::start("dwa-open", 1);
    let (device, serial, address) = site.device();
    let dealer = sign_in(&site.cloud, "dealer", "default");
    let (base, cookie, session) = enter(&site, &dealer, device);
    // The printer's status page, through cloud and agent.
    assert_status_page_names(&site, &cookie, &base, &serial);
    wait_for(
        site.service(),
        &format!("web access {session}: GET / -> 200"),
    );
    // Without the session's cookie, nothing.
    let (status, _) = curl(&site.cloud, &[&format!("{base}/")]);
    assert_eq!(status, 403);
    // The device's page in the cloud lists the requests.
    let (status, page) = curl(
        &site.cloud,
        &[
            "-H",
            &dealer,
            &format!("{}/devices/{device}", site.cloud.url),
        ],
    );
    let page = String::from_utf8(page).unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("GET /</td><td class=n>200</td>"), "{page}");
    assert!(page.contains(&address));
    let log = access_log(&site);
    assert!(
        log.iter().any(|(m, p, st, bytes, refused)| m == "GET"
            && p == "/"
            && *st == 200
            && *bytes > 0
            && refused.is_none()),
        "{log:?}"
    );
    // The operator closes it: the entry point is gone (the port refuses),
    // and the agent's relay ends.
    let (status, _) = post_form(
        &site,
        &dealer,
        &format!("/devices/{device}"),
        &format!("/web/{session}/close"),
        &[],
    );
    assert_eq!(status, 303);
    let (code, _) = try_curl(&site, &["-H", &cookie, &format!("{base}/")]);
    assert_eq!(code, 7, "curl: connection refused, the listener is gone");
    wait_for(
        site.service(),
        &format!("web access session {session} ended"),
    );
    let closed: i64 = count(
        &site.cloud.db,
        &format!(
            "SELECT COUNT(*) FROM web_sessions WHERE id = {session} AND closed_ms IS NOT NULL"
        ),
    );
    assert_eq!(closed, 1);
    let seen = site.printers_saw();
    assert_eq!(seen.requests, 1, "one page, one request: {seen:?}");
}

#[test]
fn viewers_other_dealers_and_operators_without_their_code_open_nothing() {
    let mut site = WebSite::start("dwa-who", 2);
    let (device, _, _) = site.device();
    // A viewer sees the device but may not open it.
    let viewer = sign_in(&site.cloud, "viewer", "default");
    let (status, answer) = open(&site, &viewer, device, 8080);
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("only dealer operators"));
    // A dealer operator of another dealer does not even see it.
    let stranger = sign_in(&site.cloud, "dealer", "south");
    let (status, _) = curl(
        &site.cloud,
        &[
            "-H",
            &stranger,
            &format!("{}/devices/{device}", site.cloud.url),
        ],
    );
    assert_eq!(status, 404);
    // Without the second factor there is no session, so no form to post:
    // a post without one is sent to sign in.
    let (status, answer) = curl(
        &site.cloud,
        &[
            "-i",
            "--data-urlencode",
            "csrf=x",
            &format!("{}/devices/{device}/web", site.cloud.url),
        ],
    );
    assert_eq!(status, 303, "{}", String::from_utf8_lossy(&answer));
    assert!(String::from_utf8_lossy(&answer).contains("Location: /signin"));
    assert_eq!(
        count(&site.cloud.db, "SELECT COUNT(*) FROM web_sessions"),
        0
    );
    assert_eq!(
        count(
            &site.cloud.db,
            "SELECT COUNT(*) FROM tasks WHERE kind = 'open_web'"
        ),
        0
    );
    let seen = site.printers_saw();
    assert_eq!(seen.requests, 0, "{seen:?}");
}

#[test]
fn transfers_and_other_hosts_are_refused_and_logged() {
    let mut site = WebSite::start("dwa-transfer", 3);
    let (device, _, _) = site.device();
    let dealer = sign_in(&site.cloud, "dealer", "default");
    let (base, cookie, session) = enter(&site, &dealer, device);
    // A firmware upload (multipart): refused by the cloud.
    let firmware = site.state.parent().unwrap().join("firmware.bin");
    std::fs::write(&firmware, vec![0x5a; 4096]).unwrap();
    let (status, _) = curl(
        &site.cloud,
        &[
            "-H",
            &cookie,
            "-F",
            &format!("image=@{}", firmware.display()),
            &format!("{base}/firmware"),
        ],
    );
    assert_eq!(status, 403);
    // PUT: refused.
    let (status, _) = curl(
        &site.cloud,
        &[
            "-H",
            &cookie,
            "-X",
            "PUT",
            "--data",
            "x",
            &format!("{base}/firmware"),
        ],
    );
    assert_eq!(status, 405);
    // Another host and port, in the request line: refused.
    let (status, _) = curl(
        &site.cloud,
        &[
            "-H",
            &cookie,
            "--request-target",
            "http://127.0.0.1:22/",
            &format!("{base}/"),
        ],
    );
    assert_eq!(status, 403);
    // The log download: the request reaches the printer (the answer alone
    // says it is a file), and the agent refuses the answer: no byte of it
    // leaves.
    let (status, body) = curl(&site.cloud, &["-H", &cookie, &format!("{base}/log")]);
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("download refused"));
    wait_for(site.service(), &format!("web access {session}: GET /log"));
    let log = access_log(&site);
    let refused: Vec<_> = log
        .iter()
        .filter_map(|(m, p, st, bytes, r)| {
            r.as_ref()
                .map(|r| (m.as_str(), p.as_str(), *st, *bytes, r.as_str()))
        })
        .collect();
    // The entry key's second use, and the four transfers.
    assert_eq!(refused.len(), 5, "{log:?}");
    assert!(
        log.iter().all(|(_, p, ..)| !p.contains("key=")),
        "no entry key in the log: {log:?}"
    );
    assert!(refused.iter().all(|(_, _, _, bytes, _)| *bytes == 0));
    assert!(
        refused
            .iter()
            .any(|(m, p, _, _, r)| *m == "POST" && *p == "/firmware" && r.contains("upload"))
    );
    assert!(
        refused
            .iter()
            .any(|(m, _, _, _, r)| *m == "PUT" && r.contains("method"))
    );
    assert!(
        refused
            .iter()
            .any(|(_, p, _, _, r)| p.contains("127.0.0.1:22") && r.contains("another host"))
    );
    assert!(
        refused
            .iter()
            .any(|(_, p, _, _, r)| *p == "/log" && r.contains("download"))
    );
    // Signing out ends the operator's sessions: the entry point is gone.
    let (status, _) = post_form(&site, &dealer, "/", "/signout", &[]);
    assert_eq!(status, 303);
    let (code, _) = try_curl(&site, &["-H", &cookie, &format!("{base}/")]);
    assert_eq!(code, 7, "curl: connection refused after sign-out");
    let seen = site.printers_saw();
    assert_eq!(
        seen,
        WebCounts {
            requests: 1,
            uploads: 0,
            downloads: 1
        },
        "only the log's GET reached the printer"
    );
}

#[test]
fn a_printer_serving_https_is_reached_over_its_own_tls() {
    let site = WebSite::start("dwa-https", 7);
    let (device, serial, address) = site.device();
    let dealer = sign_in(&site.cloud, "dealer", "default");
    // Port 8443: the cloud asks the agent for https (443 and 8443 are
    // printers' TLS ports); the printer's certificate is self-signed.
    let (base, cookie, session) = enter_on(&site, &dealer, device, 8443);
    assert_status_page_names(&site, &cookie, &base, &serial);
    wait_for(
        site.service(),
        &format!("web access session {session}: relaying to https://{address}:8443"),
    );
    wait_for(
        &site.cloud.proc,
        &format!("for device {device} ({serial}) at https://{address}:8443"),
    );
}

#[test]
fn a_printer_that_sends_http_to_https_is_followed_there() {
    let mut site = WebSite::start("dwa-redirect", 8);
    let (device, serial, address) = site.device();
    // The same printers, now sending every plain HTTP request to HTTPS by
    // their own address, which the browser could never reach.
    site.printers_saw();
    site.sim = Some(start_web_sim_with(
        &site.net,
        2,
        1,
        8080,
        &["--web-redirect-to-tls"],
    ));
    let dealer = sign_in(&site.cloud, "dealer", "default");
    let (base, cookie, session) = enter(&site, &dealer, device);
    let (status, head) = curl(
        &site.cloud,
        &["-i", "-H", &cookie, &format!("{base}/network?tab=2")],
    );
    let head = String::from_utf8(head).unwrap();
    assert_eq!(status, 301, "{head}");
    assert_eq!(header(&head, "location"), Some("/network?tab=2"), "{head}");
    wait_for(
        site.service(),
        &format!(
            "web access session {session}: the device moved to https://{address}:8443; \
             the session follows"
        ),
    );
    // The session now reaches the printer's HTTPS side.
    assert_status_page_names(&site, &cookie, &base, &serial);
}

#[test]
fn a_port_that_is_no_web_port_and_another_printer_at_the_address_are_refused() {
    let mut site = WebSite::start("dwa-identity", 4);
    let (device, serial, _) = site.device();
    let dealer = sign_in(&site.cloud, "dealer", "default");
    // Port 22: the agent refuses the task, connecting to nothing.
    let (status, _) = open(&site, &dealer, device, 22);
    assert_eq!(status, 200);
    wait_for(site.service(), "port refused");
    // The failed task's result reached the cloud, which closed the
    // session (and its entry point) at once.
    wait_for(&site.cloud.proc, "closed: the agent refused: port refused");
    // Another printer takes the address: the same network, printers of
    // another seed (other serials).
    let before = site.printers_saw();
    assert_eq!(before.requests, 0, "{before:?}");
    site.sim = Some(start_web_sim(&site.net, 2, 99, 8080));
    let (base, cookie, session) = enter(&site, &dealer, device);
    let (status, body) = curl(&site.cloud, &["-H", &cookie, &format!("{base}/")]);
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("identity mismatch"));
    let line = wait_for(site.service(), "identity mismatch");
    assert!(line.contains(&serial), "{line}");
    let _ = session;
    let seen = site.printers_saw();
    assert_eq!(
        seen.requests, 0,
        "the other printer was never asked: {seen:?}"
    );
}

#[test]
fn an_idle_session_ends_and_its_entry_point_closes() {
    let site = WebSite::start_with("dwa-idle", 6, &["--web-idle", "2"]);
    let (device, _, _) = site.device();
    let dealer = sign_in(&site.cloud, "dealer", "default");
    let (base, cookie, session) = enter(&site, &dealer, device);
    let (status, _) = curl(&site.cloud, &["-H", &cookie, &format!("{base}/")]);
    assert_eq!(status, 200);
    // Two seconds without a request: the cloud ends it, the agent's relay
    // is told, and the port refuses.
    wait_for(
        &site.cloud.proc,
        &format!("web access session {session} closed: idle"),
    );
    wait_for(
        site.service(),
        &format!("web access session {session} ended"),
    );
    let (code, _) = try_curl(&site, &["-H", &cookie, &format!("{base}/")]);
    assert_eq!(code, 7, "curl: connection refused, the listener is gone");
    assert_eq!(
        count(
            &site.cloud.db,
            &format!(
                "SELECT COUNT(*) FROM web_sessions WHERE id = {session} AND close_reason = 'idle'"
            ),
        ),
        1
    );
}

#[test]
fn sessions_a_crashed_cloud_left_open_are_closed_when_it_starts_again() {
    let mut site = WebSite::start("dwa-restart", 9);
    let (device, _, _) = site.device();
    // The agent is stopped first, so the session's task stays untaken.
    stop_run(site.service.take().unwrap());
    let dealer = sign_in(&site.cloud, "dealer", "default");
    let (status, answer) = open(&site, &dealer, device, 8080);
    assert_eq!(status, 200, "{answer}");
    // Killed, as by a crash or a power cut: nothing was closed.
    site.cloud.proc.child.kill().unwrap();
    site.cloud.proc.child.wait().unwrap();
    let dir = site.cloud.db.parent().unwrap().to_path_buf();
    let again = start_cloud_with(&dir, "127.65.9.1:0", &[]);
    assert!(
        again
            .banner
            .iter()
            .any(|l| l.contains("1 web access sessions left open by the last run closed")),
        "{:?}",
        again.banner
    );
    let conn = rusqlite::Connection::open(&again.db).unwrap();
    let (closed, reason): (Option<i64>, Option<String>) = conn
        .query_row(
            "SELECT closed_ms, close_reason FROM web_sessions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(closed.is_some());
    assert_eq!(reason.as_deref(), Some("the cloud restarted"));
    // Its task will not start a relay when the agent comes back.
    let (done, delivered): (Option<i64>, Option<i64>) = conn
        .query_row(
            "SELECT done_ms, delivered_ms FROM tasks WHERE kind = 'open_web'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        done.is_some() && delivered.is_none(),
        "{done:?} {delivered:?}"
    );
}
