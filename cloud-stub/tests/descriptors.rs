//! Out of file descriptors, the server's accept fails (EMFILE) for as long
//! as the process has none free. Version 1 tried again every 50 ms, twenty
//! failed accepts and log lines a second for as long as it lasted; the
//! server now waits longer after each failure (up to a second), and serves
//! again as soon as descriptors are free.
//!
//! The test runs itself again as a child under `prlimit --nofile`, so that
//! lowering the limit does not touch the other tests.

mod inproc;

use dca_cloud::limits::Limits;
use std::process::Command;
use std::time::Duration;

const NAME: &str = "out_of_descriptors_the_server_backs_off_and_keeps_serving";
const CHILD: &str = "DCA_CLOUD_EMFILE_CHILD";

#[test]
fn out_of_descriptors_the_server_backs_off_and_keeps_serving() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if !std::env::split_paths(&path).any(|d| d.join("prlimit").is_file()) {
        let what = format!("{NAME} needs prlimit (util-linux)");
        assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{what}");
        eprintln!("skipped: {what}");
        return;
    }
    let out = Command::new("prlimit")
        .args(["--nofile=256:256", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the child failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
}

fn child() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let limits = Limits {
            max_connections: 100_000,
            max_per_address: 100_000,
            // The connections taken stay in their handshake for the test.
            handshake: Duration::from_secs(60),
            ..Limits::default()
        };
        let server = inproc::start("emfile", "127.58.20.1", limits).await;
        let op = server
            .sign_in("127.58.20.4", dca_cloud::store::Role::Viewer, "default")
            .await;
        // Connections until the process (client and server alike) has no
        // descriptor left; bounded by the limit.
        let mut held = Vec::new();
        let mut out_of_descriptors = false;
        for _ in 0..1000 {
            match server.tcp("127.58.20.2").await {
                Ok(s) => held.push(s),
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(24), "EMFILE, not {e}");
                    out_of_descriptors = true;
                    break;
                }
            }
        }
        assert!(out_of_descriptors, "{} connections, no EMFILE", held.len());
        // A connection waiting in the backlog that the server cannot take:
        // one of ours gives its descriptor to a new one (the server may
        // win that descriptor instead; then again, a few times at most).
        for _ in 0..20 {
            if server
                .wait_for_line("accept failed", Duration::from_millis(500))
                .await
            {
                break;
            }
            held.pop();
            if let Ok(s) = server.tcp("127.58.20.2").await {
                held.push(s);
            }
        }
        assert!(
            server.logged_lines("accept failed") > 0,
            "the server never failed to accept: {:?}",
            server.log.lock().unwrap()
        );
        // Three seconds out of descriptors (a measuring window, not a
        // wait for anything): a few accept attempts, not sixty.
        let before = server.logged_lines("accept failed");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let failures = server.logged_lines("accept failed") - before;
        assert!(
            (1..=12).contains(&failures),
            "{failures} failed accepts in 3 s"
        );
        // Descriptors come back: the server takes connections again.
        held.clear();
        let answer = inproc::request(
            &server,
            "127.58.20.3",
            "GET",
            "/api/customers",
            &op.cookie,
            b"",
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 200);
    });
}
