//! Arbitrary bytes through Device Web Access's rules, as the agent and the
//! cloud judge browsers' requests, devices' answers and `open_web` tasks:
//! nothing may panic, and what is let through keeps its promises (a path
//! on the device, no control characters, no attachment, a redirect kept
//! in the session only when it names the device).
#![no_main]

use dca_core::sync::message::Task;
use dca_core::sync::web_access::{self, Opening};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Head and answer rules on the raw bytes.
    if web_access::check_response(data).is_ok() {
        let text = core::str::from_utf8(data).expect("a clean head is text");
        for line in text.lines() {
            if let Some((n, v)) = line.split_once(':')
                && n.trim().eq_ignore_ascii_case("content-disposition")
            {
                let kind = v.split(';').next().unwrap_or("").trim();
                assert!(kind.eq_ignore_ascii_case("inline"), "{text:?}");
            }
        }
    }
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    // "METHOD PATH\nHEAD" as a request.
    let (line, head) = text.split_once('\n').unwrap_or((text, ""));
    let (method, path) = line.split_once(' ').unwrap_or((line, "/"));
    if web_access::check_request(method, path, head.as_bytes(), head.len() % 3).is_ok() {
        assert!(path.starts_with('/') && !path.starts_with("//"));
        assert!(!path.bytes().any(|b| b <= 0x20));
        assert!(matches!(method, "GET" | "HEAD" | "POST"));
    }
    // The text as a device's redirect, against a session on 10.1.2.3:80.
    let session = core::net::SocketAddr::from(([10, 1, 2, 3], 80));
    // What the session makes a path of never reads as another host.
    let stays = |rest: &str| {
        let seen: String = rest.chars().filter(|c| !c.is_ascii_control()).collect();
        !(seen.starts_with("//") || seen.starts_with('\\') || seen.starts_with("/\\"))
    };
    match web_access::redirect(text, session, false) {
        web_access::Redirect::Here { rest } => {
            assert!(text.contains(rest));
            assert!(rest == text.trim() || stays(rest), "{text:?}");
        }
        web_access::Redirect::Moved { to, https, rest } => {
            assert_eq!(to.ip(), session.ip());
            assert!(to.port() != 80 || https);
            assert!(text.contains(rest) && stays(rest), "{text:?}");
        }
        web_access::Redirect::Elsewhere => {}
    }
    let task = Task {
        id: 1,
        kind: "open_web",
        arg: text,
    };
    if let Ok(o) = Opening::parse(&task) {
        assert!(o.ttl <= web_access::MAX_TTL);
        assert!(!o.serial.is_empty());
    }
});
