//! The dealer's service as installed: `dca run --config FILE` enrolls with
//! the file's token, collects and delivers; pins rotate by an edit of the
//! file; a pin mismatch is told apart from an outage.

mod support;

use std::path::Path;
use std::process::Command;
use support::*;

fn write_config(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn config(cloud: &Cloud, token: &str, pins: &[&str], state: &Path) -> String {
    let pins: Vec<String> = pins.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        r#"state_dir = "{}"

[cloud]
url = "{}"
token = "{token}"
pins = [{}]

[collect]
targets = ["127.59.1.0/24"]
every_s = 3
tasks_every_s = 1
port = 1161
timeout_ms = 500

[[snmp]]
communities = ["public"]
"#,
        state.display(),
        cloud.url,
        pins.join(", ")
    )
}

fn run_with(file: &Path) -> Proc {
    Proc::start(
        Command::new(sibling("dca"))
            .args(["run", "--config"])
            .arg(file)
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy"),
        "dca run: started",
    )
    .0
}

#[test]
fn the_service_runs_from_its_file_and_tells_a_wrong_pin_from_an_outage() {
    let dir = temp_dir("service-config");
    let cloud = start_cloud(&dir, "127.59.0.1:0");
    let _sim = start_sim("127.59.1.0/24");
    let state = dir.join("agent");
    let file = dir.join("dca.toml");
    let wrong = "ab".repeat(32);

    // First start: not enrolled, so it enrolls with the file's token (the
    // right pin second in the list: either admits the cloud), then
    // collects from the file's targets and delivers.
    let t = token(&cloud.db, "acme");
    write_config(
        &file,
        &config(&cloud, &t, &[&wrong, &cloud.fingerprint], &state),
    );
    let service = run_with(&file);
    wait_for(&service, "batches delivered");
    stop_run(service);
    assert!(count(&cloud.db, "SELECT COUNT(*) FROM readings") > 0);
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM agents"), 1);

    // A restart keeps its identity: the token, used up, is not sent again.
    let service = run_with(&file);
    wait_for(&service, "batches delivered");
    stop_run(service);
    assert_eq!(count(&cloud.db, "SELECT COUNT(*) FROM agents"), 1);

    // The file's pins win over those kept at enrollment: with only a wrong
    // one, the service says it is a trust failure, not an outage, and
    // keeps running.
    write_config(&file, &config(&cloud, &t, &[&wrong], &state));
    let service = run_with(&file);
    let line = wait_for(&service, "TRUST FAILURE");
    assert!(line.contains("not the pinned"), "{line}");
    stop_run(service);

    // `dca push` with a wrong pin kept: exit 5, not 3 (unreachable).
    let agent_json = state.join("agent.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&agent_json).unwrap()).unwrap();
    v["pins"] = serde_json::json!([wrong]);
    std::fs::write(&agent_json, v.to_string()).unwrap();
    let out = push("127.59.1.0/24", &state, &[]);
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TRUST FAILURE"));
    // An outage stays exit 3.
    let mut down = v.clone();
    down["cloud"] = "https://127.59.0.2:9".into();
    std::fs::write(&agent_json, down.to_string()).unwrap();
    assert_eq!(push("127.59.1.0/24", &state, &[]).status.code(), Some(3));

    // Enrolling with a wrong pin: exit 5 too, and nothing kept.
    let e = dir.join("e");
    let out = enroll_with(
        &cloud,
        &token(&cloud.db, "acme"),
        ["--pin", &wrong],
        &e,
        &[],
    );
    assert_eq!(out.status.code(), Some(5));
    assert!(!e.join("agent.json").exists());
}

#[test]
fn a_file_without_a_token_or_naming_another_cloud_is_refused_at_start() {
    let dir = temp_dir("service-config-refused");
    let file = dir.join("dca.toml");
    let state = dir.join("agent");
    write_config(
        &file,
        &format!(
            "state_dir = \"{}\"\n[cloud]\nurl = \"https://127.59.0.3:9\"\n",
            state.display()
        ),
    );
    let out = dca(&["run", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gives no [cloud] token"), "{err}");
    // A broken file is named with its line.
    write_config(&file, "[collect]\nevery_s = \"x\"\n");
    let out = dca(&["run", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dca.toml:2:11: collect.every_s"), "{err}");
}
