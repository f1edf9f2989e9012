//! Where `dca run` writes its log: the journal's priorities when its stderr
//! is the journal's stream, a rotated file where there is no journal, and
//! plain lines otherwise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dca-logs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A configuration whose cloud refuses connections: the service logs an
/// error and waits to try enrolling again.
fn config(dir: &Path, log_file: Option<&Path>) -> PathBuf {
    let log = log_file.map_or_else(String::new, |f| {
        format!("[log]\nfile = \"{}\"\n", f.display())
    });
    let text = format!(
        "state_dir = \"{}\"\n[cloud]\nurl = \"https://127.59.6.1:9\"\ntoken = \"dcat_x\"\n{log}",
        dir.join("state").display()
    );
    let path = dir.join("dca.toml");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// Waits (bounded) until `file` holds a line containing `what`.
fn line_in(file: &Path, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains(what)) {
            return l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no {what:?} in {}: {text}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(config: &Path, stderr: &Path, journal: Option<String>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dca"));
    cmd.args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("JOURNAL_STREAM");
    if let Some(j) = journal {
        cmd.env("JOURNAL_STREAM", j);
    }
    cmd.spawn().unwrap()
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dca run did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn under_the_journal_lines_carry_their_priority() {
    use std::os::unix::fs::MetadataExt;
    let dir = temp_dir("journal");
    let cfg = config(&dir, None);
    let err = dir.join("stderr");
    std::fs::write(&err, "").unwrap();
    let m = std::fs::metadata(&err).unwrap();
    // File::create truncates the same inode, so the stream stays this one.
    let child = start(&cfg, &err, Some(format!("{}:{}", m.dev(), m.ino())));
    let line = line_in(&err, "cannot enroll yet");
    assert!(
        line.starts_with("<3>dca run: cannot enroll yet: cloud unreachable"),
        "{line}"
    );
    stop(child);
    // A JOURNAL_STREAM that is not our stderr (inherited by a child whose
    // output was redirected) is not taken for the journal.
    let other = dir.join("stderr2");
    let child = start(&cfg, &other, Some(format!("{}:{}", m.dev(), m.ino())));
    let line = line_in(&other, "cannot enroll yet");
    assert!(line.starts_with("dca run: cannot enroll yet"), "{line}");
    stop(child);
}

#[test]
fn without_a_journal_the_configured_file_gets_the_lines() {
    let dir = temp_dir("file");
    let log = dir.join("logs/dca.log");
    let cfg = config(&dir, Some(&log));
    let err = dir.join("stderr");
    let child = start(&cfg, &err, None);
    let line = line_in(&log, "cannot enroll yet");
    // `2026-11-30T23:59:59Z ERROR dca run: ...`
    let (stamp, rest) = line.split_once(' ').unwrap();
    assert!(stamp.len() == 20 && stamp.ends_with('Z'), "{line}");
    assert!(
        rest.trim_start()
            .starts_with("ERROR dca run: cannot enroll yet"),
        "{line}"
    );
    stop(child);
    assert!(
        !std::fs::read_to_string(&err)
            .unwrap()
            .contains("cannot enroll yet")
    );
}
