//! The push channel end to end: `dca run` against a real cloud holds a
//! `listen` between rounds, so a task made with `dca-cloud task create`
//! reaches it long before its task poll (an hour away here) would.

mod support;

use support::*;

#[test]
fn tasks_reach_a_listening_service_without_waiting_for_its_poll() {
    // The cloud holds a listen longer than a test waits for a stop: the
    // stop at the end must cut it, not wait it out.
    let dir = temp_dir("push-channel");
    let site = Site {
        cloud: start_cloud_with(&dir, "127.63.0.1:0", &["--hold", "120"]),
        sim: start_sim("127.63.1.0/24"),
        state: dir.join("agent"),
        dir,
    };
    enroll(&site.cloud, "acme", &site.state);
    // Collections and task polls an hour apart: only the channel can bring
    // a task within the test's bounds.
    let service = start_run(&site.state, &["127.63.1.0/24"], 3600, 3600);
    wait_for(&service, "batches delivered");
    let agent = agent_id(&site.state);
    for (n, level) in [(1, "debug"), (2, "info")] {
        let out = create_task(&site.cloud, &agent, "set_log_level", level);
        show("task create", &out);
        assert!(out.status.success());
        wait_for(&service, &format!("task {n} set_log_level started"));
        // The result's round reached the cloud.
        wait_for(&site.cloud.proc, &format!("task {n} of {agent}: done"));
    }
    // Both results reached the cloud, in the rounds the tasks started.
    assert_eq!(
        count(
            &site.cloud.db,
            "SELECT COUNT(*) FROM tasks WHERE done_ms IS NOT NULL AND ok = 1"
        ),
        2
    );
    // A stop while the channel is held ends at once (the connection is
    // cut), and cleanly.
    stop_run(service);
}
