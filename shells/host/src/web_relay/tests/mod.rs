//! The relay against a cloud in memory and devices on loopback addresses
//! (127.64.0.0/16): what reaches a device, what comes back, what never
//! does, and when a relay ends.

mod agent;
mod fleet;
mod support;
mod tls;

use super::Ended;
use super::device::{self, answer_head};
use dca_core::sync::web_access::Refusal;
use support::*;

#[test]
fn a_forwarded_get_reaches_the_device_and_its_answer_comes_back_in_the_next_relay() {
    let dev = Device::start(
        [127, 64, 1, 1],
        answer(
            "200 OK",
            "Content-Type: text/html\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
             X-Printer: ready\r\n",
            "<h1>Ready</h1>",
        ),
    );
    let cloud = FakeCloud::new(vec![
        forward(
            "GET",
            "/status?page=1",
            b"Accept: text/html\r\nHost: cloud.example:9443\r\nConnection: keep-alive\r\n\
              Proxy-Authorization: Basic eDp5\r\nUpgrade: h2c\r\nCookie: lang=en\r\n",
            b"",
        ),
        forward(
            "POST",
            "/network",
            b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n",
            b"hostname=p1",
        ),
        Step::Idle,
    ]);
    let ids = Identities::always(SERIAL);
    let end = relay(&cloud, opening(dev.addr, 600), &ids).run();
    assert_eq!(end, Ended::Closed);
    let relays = cloud.relays();
    assert_eq!(relays.len(), 4, "{relays:?}");
    assert_eq!(relays[0], None, "the first relay carries no answer");
    let first = relays[1].clone().unwrap();
    assert_eq!((first.seq, first.status), (1, 200));
    assert_eq!(first.body, b"<h1>Ready</h1>");
    assert_eq!(first.refused, None);
    assert!(first.head.contains("Content-Type: text/html\r\n"));
    assert!(first.head.contains("X-Printer: ready\r\n"));
    for hop in ["Connection", "Keep-Alive", "Content-Length"] {
        assert!(!first.head.contains(hop), "{hop} in {:?}", first.head);
    }
    assert_eq!(
        relays[2].as_ref().map(|a| (a.seq, a.status)),
        Some((2, 200))
    );
    assert_eq!(relays[3], None, "after an idle hold");
    // One connection and one identity read per request.
    assert_eq!((dev.connections(), ids.reads()), (2, 2));
    let got = dev.requests();
    let host = format!("Host: {}\r\n", dev.addr);
    assert!(
        got[0].starts_with("GET /status?page=1 HTTP/1.0\r\n"),
        "{got:?}"
    );
    for (i, r) in got.iter().enumerate() {
        assert!(r.contains(&host), "{r}");
        assert!(r.contains("Connection: close\r\n"), "{r}");
        assert_eq!(r.matches("Host:").count(), 1, "{r}");
        for never in [
            "cloud.example",
            "keep-alive",
            "Proxy-",
            "Upgrade",
            "chunked",
        ] {
            assert!(!r.contains(never), "request {i} holds {never}: {r}");
        }
    }
    assert!(got[0].contains("Cookie: lang=en\r\n"));
    assert!(got[1].starts_with("POST /network HTTP/1.0\r\n"), "{got:?}");
    assert!(got[1].contains("Content-Length: 11\r\n"));
    assert!(got[1].ends_with("\r\n\r\nhostname=p1"));
}

#[test]
fn uploads_other_methods_and_other_hosts_are_refused_without_a_connection() {
    let dev = Device::start([127, 64, 2, 1], answer("200 OK", "", "taken"));
    let form = b"Content-Type: application/x-www-form-urlencoded\r\n";
    let cases: Vec<(Step, u16)> = vec![
        (forward("PUT", "/firmware", b"", b"image"), 405),
        (forward("DELETE", "/jobs/1", b"", b""), 405),
        (
            forward(
                "POST",
                "/firmware",
                b"Content-Type: multipart/form-data; boundary=x\r\n",
                b"--x\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nFW\r\n--x--\r\n",
            ),
            403,
        ),
        (
            forward(
                "POST",
                "/firmware",
                b"Content-Type: application/octet-stream\r\n",
                b"FW",
            ),
            403,
        ),
        (forward("GET", "http://10.0.0.9:22/", b"", b""), 403),
        (forward("GET", "//10.0.0.9:22/", b"", b""), 403),
        (forward("GET", "/", b"", b"a body"), 403),
        // Framing the rules pass but a device would read otherwise.
        (forward("GET", "/ HTTP/1.0\r\nX:", b"", b""), 400),
        (forward("GET", "/a b", b"", b""), 400),
        (
            forward(
                "POST",
                "/network",
                b"Content-Type: application/x-www-form-urlencoded\r\n\
                  Content-Type: multipart/form-data; boundary=x\r\n",
                b"--x--",
            ),
            // Two types: refused as an upload by core's rules.
            403,
        ),
        (
            forward("POST", "/network", b"X-A: 1\rPUT /f HTTP/1.0\r\n", b""),
            400,
        ),
        (forward("POST", "/network", b"Bad Name: 1\r\n", b""), 400),
        (forward("POST", "/network", b"no colon\r\n", b""), 400),
        (forward("POST", "/network", &[0xff, b':', b'\n'], b""), 400),
    ];
    let (steps, statuses): (Vec<Step>, Vec<u16>) = cases.into_iter().unzip();
    let cloud = FakeCloud::new(steps);
    let ids = Identities::always(SERIAL);
    assert_eq!(
        relay(&cloud, opening(dev.addr, 600), &ids).run(),
        Ended::Closed
    );
    let answers = cloud.answers();
    assert_eq!(answers.len(), statuses.len());
    for (a, want) in answers.iter().zip(statuses) {
        assert_eq!(a.status, want, "{a:?}");
        assert!(a.refused.is_some(), "{a:?}");
        assert!(a.head.is_empty() && a.body.is_empty(), "{a:?}");
    }
    assert_eq!(
        answers[0].refused.as_deref(),
        Some(Refusal::Method.reason())
    );
    assert_eq!(
        answers[2].refused.as_deref(),
        Some(Refusal::Upload.reason())
    );
    assert_eq!(
        answers[4].refused.as_deref(),
        Some(Refusal::OtherHost.reason())
    );
    // Nothing reached the device, and no identity was read for it.
    assert_eq!((dev.connections(), ids.reads()), (0, 0));
    // A plain form still goes through afterwards.
    let cloud = FakeCloud::new(vec![forward("POST", "/network", form, b"a=1")]);
    relay(&cloud, opening(dev.addr, 600), &ids).run();
    assert_eq!(cloud.answers()[0].status, 200);
    assert_eq!(dev.connections(), 1);
}

#[test]
fn an_attachment_is_refused_and_its_body_not_relayed() {
    for headers in [
        "Content-Type: text/plain\r\nContent-Disposition: attachment; filename=\"printer.log\"\r\n",
        "Content-Type: application/octet-stream\r\n",
        // Repeated: the rules read the first, a browser may act on another.
        "Content-Type: text/html\r\nContent-Type: application/octet-stream\r\n",
    ] {
        let dev = Device::start(
            [127, 64, 3, 1],
            answer("200 OK", headers, "job log: SECRET-CONTENT"),
        );
        let cloud = FakeCloud::new(vec![get("/log")]);
        let ids = Identities::always(SERIAL);
        relay(&cloud, opening(dev.addr, 600), &ids).run();
        let a = &cloud.answers()[0];
        assert_eq!(a.status, 403, "{headers}");
        assert_eq!(a.refused.as_deref(), Some(Refusal::Download.reason()));
        assert!(a.body.is_empty() && a.head.is_empty(), "{a:?}");
        assert_eq!(dev.connections(), 1);
    }
}

#[test]
fn answer_heads_lose_their_hop_by_hop_lines_and_are_judged_line_by_line() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: x\r\n\
                 Proxy-Connection: keep-alive\r\nSet-Cookie: s=1\r\nTrailer: x\r\nTE: x\r\n\r\n";
    assert_eq!(
        answer_head(head).unwrap(),
        b"Content-Type: text/html\r\nSet-Cookie: s=1\r\n"
    );
    // A byte the rules cannot read does not hide the attachment.
    let latin1 =
        b"HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename=\xe9t\xe9.log\r\n\r\n";
    assert_eq!(answer_head(latin1), Err(Refusal::Download));
    // LF alone ends lines too.
    assert_eq!(
        answer_head(b"HTTP/1.0 200 OK\nContent-Type: text/plain\n\n").unwrap(),
        b"Content-Type: text/plain\r\n"
    );
}

#[test]
fn an_answer_too_large_or_framed_otherwise_is_refused() {
    let chunks_of = |n: usize| {
        let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..n {
            raw.extend_from_slice(b"64\r\n");
            raw.extend_from_slice(&[b'x'; 100]);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        raw
    };
    let cases: [(Vec<u8>, u16, &str); 8] = [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\nshort".to_vec(),
            502,
            "answer too large",
        ),
        (
            [&b"HTTP/1.0 200 OK\r\n\r\n"[..], &[b'x'; 2000]].concat(),
            502,
            "answer too large",
        ),
        (chunks_of(11), 502, "answer too large"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello, world\r\n0\r\n\r\n"
                .to_vec(),
            502,
            "chunks are broken",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel".to_vec(),
            502,
            "mid-answer",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello"
                .to_vec(),
            502,
            "cannot be read",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec(),
            502,
            "cannot be read",
        ),
        (b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(), 502, "not HTTP"),
    ];
    for (raw, status, why) in cases {
        let dev = Device::start([127, 64, 5, 1], raw);
        let cloud = FakeCloud::new(vec![get("/big")]);
        let ids = Identities::always(SERIAL);
        let mut r = relay(&cloud, opening(dev.addr, 600), &ids);
        r.limits.max_answer = 1000;
        r.run();
        let a = &cloud.answers()[0];
        assert_eq!(a.status, status, "{:?}", a.refused);
        assert!(
            a.refused.as_deref().unwrap().contains(why),
            "{:?}",
            a.refused
        );
        assert!(a.body.is_empty());
    }
    // An answer without a length, under the bound, is read to its end;
    // an interim 100 is skipped.
    let dev = Device::start(
        [127, 64, 5, 2],
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"
            .to_vec(),
    );
    let cloud = FakeCloud::new(vec![get("/")]);
    relay(&cloud, opening(dev.addr, 600), &Identities::always(SERIAL)).run();
    let a = &cloud.answers()[0];
    assert_eq!((a.status, a.body.as_slice()), (200, &b"until close"[..]));
    // Chunks, which some embedded servers send even to HTTP/1.0, are read
    // and relayed as one body, without their framing.
    let dev = Device::start(
        [127, 64, 5, 4],
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n\
          6;name=x\r\n<p>sta\r\nA\r\ntus ok</p>\r\n0\r\nX-Checksum: 1\r\n\r\n"
            .to_vec(),
    );
    let cloud = FakeCloud::new(vec![get("/")]);
    relay(&cloud, opening(dev.addr, 600), &Identities::always(SERIAL)).run();
    let a = &cloud.answers()[0];
    assert_eq!(a.refused, None);
    assert_eq!(
        (a.status, a.body.as_slice()),
        (200, &b"<p>status ok</p>"[..])
    );
    assert!(!a.head.contains("Transfer-Encoding"), "{}", a.head);
    // A 304 has no body, chunked or not (the device closes without one).
    let dev = Device::start(
        [127, 64, 5, 5],
        b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nETag: \"7\"\r\n\r\n".to_vec(),
    );
    let cloud = FakeCloud::new(vec![get("/")]);
    relay(&cloud, opening(dev.addr, 600), &Identities::always(SERIAL)).run();
    let a = &cloud.answers()[0];
    assert_eq!(
        (a.status, a.body.len(), a.refused.as_deref()),
        (304, 0, None)
    );
}

#[test]
fn a_head_request_reads_no_body_whatever_the_length_says() {
    let dev = Device::start(
        [127, 64, 5, 3],
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100\r\n\r\n".to_vec(),
    );
    let cloud = FakeCloud::new(vec![forward("HEAD", "/", b"", b"")]);
    relay(&cloud, opening(dev.addr, 600), &Identities::always(SERIAL)).run();
    let a = &cloud.answers()[0];
    assert_eq!((a.status, a.body.len(), a.refused.clone()), (200, 0, None));
    assert!(dev.requests()[0].starts_with("HEAD / HTTP/1.0\r\n"));
}

#[test]
fn another_device_at_the_address_is_refused_without_a_connection() {
    let dev = Device::start([127, 64, 6, 1], answer("200 OK", "", "the other one"));
    let cloud = FakeCloud::new(vec![get("/"), get("/"), get("/")]);
    let ids = Identities::default();
    {
        let mut script = ids.script.lock().unwrap();
        script.push_back(Ok("XYZ0000001".into()));
        script.push_back(Err("no printer answered SNMP at 127.64.6.1".into()));
        script.push_back(Ok(format!(" {} ", SERIAL.to_lowercase())));
    }
    relay(&cloud, opening(dev.addr, 600), &ids).run();
    let answers = cloud.answers();
    for a in &answers[..2] {
        assert_eq!(a.status, 502);
        assert_eq!(a.refused.as_deref(), Some(Refusal::OtherDevice.reason()));
        assert!(a.body.is_empty());
    }
    // Only the third, its serial the session's, was sent on.
    assert_eq!(answers[2].status, 200);
    assert_eq!((ids.reads(), dev.connections()), (3, 1));
}

#[test]
fn an_unreachable_device_is_a_gateway_error() {
    // Nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.64.6.2:0").unwrap();
        l.local_addr().unwrap()
    };
    let cloud = FakeCloud::new(vec![get("/")]);
    relay(&cloud, opening(closed, 600), &Identities::always(SERIAL)).run();
    let a = &cloud.answers()[0];
    assert_eq!(a.status, 502);
    assert!(a.refused.as_deref().unwrap().contains("device unreachable"));
}

#[test]
fn the_relay_ends_when_the_cloud_closes_the_session() {
    let cloud = FakeCloud::new(vec![Step::Idle, Step::Idle, Step::Closed, Step::Idle]);
    let target = "127.64.7.1:80".parse().unwrap();
    let ids = Identities::always(SERIAL);
    assert_eq!(
        relay(&cloud, opening(target, 600), &ids).run(),
        Ended::Closed
    );
    assert_eq!(cloud.relays(), vec![None, None, None]);
}

#[test]
fn the_relay_ends_with_its_window() {
    let target = "127.64.7.1:80".parse().unwrap();
    let ids = Identities::always(SERIAL);
    // Expiry: each hold takes 30 s of a 60 s session.
    let cloud = FakeCloud::new(vec![Step::Idle; 10]);
    cloud.state.lock().unwrap().step_ms = 30_000;
    assert_eq!(
        relay(&cloud, opening(target, 60), &ids).run(),
        Ended::Window
    );
    assert_eq!(cloud.relays().len(), 2);
    // An idle spell: ten minutes without a request end an hour's session.
    let cloud = FakeCloud::new(vec![Step::Idle; 30]);
    cloud.state.lock().unwrap().step_ms = 60_000;
    assert_eq!(
        relay(&cloud, opening(target, 3600), &ids).run(),
        Ended::Window
    );
    assert_eq!(cloud.relays().len(), 10);
    // A request that comes after the end is answered 410, and the device
    // is not contacted.
    let dev = Device::start([127, 64, 7, 2], answer("200 OK", "", "late"));
    let cloud = FakeCloud::new(vec![Step::Idle, get("/"), get("/")]);
    cloud.state.lock().unwrap().step_ms = 40_000;
    assert_eq!(
        relay(&cloud, opening(dev.addr, 60), &ids).run(),
        Ended::Window
    );
    let relays = cloud.relays();
    assert_eq!(relays.len(), 3, "{relays:?}");
    let last = relays[2].clone().unwrap();
    assert_eq!(last.status, 410);
    assert_eq!(last.refused.as_deref(), Some(Refusal::Closed.reason()));
    assert_eq!(dev.connections(), 0);
    // A zero-length session relays nothing at all.
    let cloud = FakeCloud::new(vec![Step::Idle]);
    assert_eq!(relay(&cloud, opening(target, 0), &ids).run(), Ended::Window);
    assert!(cloud.relays().is_empty());
}

#[test]
fn the_relay_tries_again_after_failures_then_gives_up() {
    let dev = Device::start([127, 64, 8, 1], answer("200 OK", "", "hi"));
    let ids = Identities::always(SERIAL);
    // The answer is carried again until a relay gets through.
    let cloud = FakeCloud::new(vec![get("/"), Step::Down, Step::Refuse(503), Step::Closed]);
    assert_eq!(
        relay(&cloud, opening(dev.addr, 600), &ids).run(),
        Ended::Closed
    );
    let seqs: Vec<Option<u64>> = cloud
        .relays()
        .iter()
        .map(|r| r.as_ref().map(|a| a.seq))
        .collect();
    assert_eq!(seqs, [None, Some(1), Some(1), Some(1)]);
    assert_eq!(dev.connections(), 1, "the device is asked once");
    // Five failures in a row end it.
    let cloud = FakeCloud::new(vec![Step::Down; 8]);
    let end = relay(&cloud, opening(dev.addr, 600), &ids).run();
    assert!(
        matches!(&end, Ended::Unreachable { tries: 5, last } if last.contains("reset")),
        "{end:?}"
    );
    assert_eq!(cloud.relays().len(), 5);
    // A refusal for good ends it at once.
    let cloud = FakeCloud::new(vec![Step::Refuse(403), Step::Idle]);
    let end = relay(&cloud, opening(dev.addr, 600), &ids).run();
    assert!(matches!(end, Ended::Rejected { code: 403, .. }), "{end:?}");
    assert_eq!(cloud.relays().len(), 1);
}

#[test]
fn a_request_is_written_for_the_device_alone() {
    let target = "[::1]:8443".parse().unwrap();
    let r = device::request(target, "GET", "/", b"Accept: */*\n", b"").unwrap();
    assert_eq!(
        String::from_utf8(r).unwrap(),
        "GET / HTTP/1.0\r\nHost: [::1]:8443\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn a_device_redirecting_to_itself_keeps_the_browser_in_the_session() {
    // The device's HTTPS side, as the redirect names it: its own address,
    // another port.
    let moved = Device::start([127, 64, 11, 1], answer("200 OK", "", "sign in"));
    let to = moved.addr;
    let plain = Device::serve([127, 64, 11, 1], move |mut s| {
        let request = read_request_from(&mut s);
        let path = String::from_utf8_lossy(&request)
            .split(' ')
            .nth(1)
            .unwrap_or("")
            .to_string();
        let head = match path.as_str() {
            "/away" => "Location: http://127.64.11.2/\r\n".to_string(),
            "/closed" => format!("Location: http://{}:9/\r\n", to.ip()),
            "/two" => format!("Location: http://{to}/a\r\nLocation: http://{to}/b\r\n"),
            _ => format!("Location: http://{to}/login?next=%2F\r\n"),
        };
        std::io::Write::write_all(&mut s, &answer("302 Found", &head, "")).unwrap();
        request
    });
    let cloud = FakeCloud::new(vec![
        get("/away"),
        get("/closed"),
        get("/two"),
        get("/"),
        get("/login?next=%2F"),
        Step::Idle,
    ]);
    let ids = Identities::always(SERIAL);
    let mut r = relay(&cloud, opening(plain.addr, 600), &ids);
    r.ports = vec![plain.addr.port(), to.port()];
    assert_eq!(r.run(), Ended::Closed);
    let a = cloud.answers();
    assert_eq!(a.len(), 5, "{a:?}");
    let location = |i: usize| {
        a[i].head
            .lines()
            .find_map(|l| l.strip_prefix("Location: "))
            .map(str::to_string)
    };
    // Another host, and the device on a port the agent does not relay to:
    // left to the browser, the session stays where it was.
    assert_eq!(location(0).as_deref(), Some("http://127.64.11.2/"));
    assert_eq!(location(1), Some(format!("http://{}:9/", to.ip())));
    // Two Locations, which browsers refuse: left as they are, no move.
    assert_eq!(location(2), Some(format!("http://{to}/a")));
    assert_eq!(a[2].head.matches("Location:").count(), 2);
    // Its own address on a web port: a path in the session, which follows.
    assert_eq!(a[3].status, 302);
    assert_eq!(location(3).as_deref(), Some("/login?next=%2F"));
    assert_eq!((a[4].status, a[4].body.as_slice()), (200, &b"sign in"[..]));
    assert_eq!(plain.connections(), 4);
    assert_eq!(moved.connections(), 1);
    assert!(
        moved.requests()[0].starts_with("GET /login?next=%2F HTTP/1.0\r\n"),
        "{:?}",
        moved.requests()
    );
    assert!(moved.requests()[0].contains(&format!("Host: {to}\r\n")));
}

#[test]
fn a_session_moved_where_nothing_answers_goes_back() {
    // A port of the device's address with nothing listening (taken, then
    // let go): its "HTTPS" is broken.
    let dead = std::net::TcpListener::bind(("127.64.12.1", 0))
        .unwrap()
        .local_addr()
        .unwrap();
    let plain = Device::serve([127, 64, 12, 1], move |mut s| {
        let request = read_request_from(&mut s);
        let head = format!("Location: http://{dead}/\r\n");
        std::io::Write::write_all(&mut s, &answer("302 Found", &head, "")).unwrap();
        request
    });
    let cloud = FakeCloud::new(vec![get("/"), get("/"), get("/again"), Step::Idle]);
    let ids = Identities::always(SERIAL);
    let mut r = relay(&cloud, opening(plain.addr, 600), &ids);
    r.ports = vec![plain.addr.port(), dead.port()];
    assert_eq!(r.run(), Ended::Closed);
    let a = cloud.answers();
    let statuses: Vec<u16> = a.iter().map(|a| a.status).collect();
    // Moved by the first answer; the second request finds nothing there
    // and the session goes back, so the third reaches the device again.
    assert_eq!(statuses, [302, 502, 302], "{a:?}");
    assert!(a[1].refused.as_deref().unwrap().contains("unreachable"));
    assert_eq!(plain.connections(), 2);
    assert!(plain.requests()[1].starts_with("GET /again HTTP/1.0\r\n"));
}
