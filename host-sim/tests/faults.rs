//! Injected faults, each observed with net-snmp's tools against the corpus
//! recordings they are put on by a scenario file.

mod support;

use std::process::{Command, Output};
use support::{Sim, expected, peer, walk};

fn run(tool: &std::path::Path, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("30")
        .arg(tool)
        .args(["-m", "", "-On"])
        .args(args)
        .output()
        .expect("the tool runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn each_fault_shows_as_real_tools_see_it() {
    let (Some(get), Some(bulkwalk), Some(walk_tool)) = (
        peer(&["snmpget"]),
        peer(&["snmpbulkwalk"]),
        peer(&["snmpwalk"]),
    ) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("dca-sim-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("scenario.json");
    std::fs::write(
        &scenario,
        r#"[
            {"devices": "jetdirect", "v1_only": true},
            {"devices": "sharp", "no_bulk": true},
            {"devices": "ricoh_mpc3002", "too_big_above": 5},
            {"devices": "konica", "asleep_after_s": 3600},
            {"devices": "utax", "gen_error": 1.0},
            {"devices": "epson", "malformed": 1.0},
            {"devices": "canonprinter_lbp", "delay_ms": 400},
            {"devices": "dell-laser_s5830dn", "loss": 1.0},
            {"devices": "jetdirect_m880", "quirks": ["unsigned-without-zero", "long-lengths", "padded-integers"]}
        ]"#,
    )
    .unwrap();
    let recordings = support::corpus().join("librenms/snmprec");
    let sim = Sim::start(
        "faults",
        &[
            "--recordings",
            recordings.to_str().unwrap(),
            "--bind",
            "127.14.0.0/24",
            "--port",
            "1161",
            "--scenario",
            scenario.to_str().unwrap(),
        ],
    );
    let at = |name: &str| sim.address_of(name).to_string();
    let sys_uptime = "1.3.6.1.2.1.1.3.0";

    // v1 only: v2c gets no answer, v1 does.
    let a = at("jetdirect");
    assert!(
        !run(
            &get,
            &[
                "-v2c", "-c", "public", "-t", "0.5", "-r", "0", &a, sys_uptime
            ]
        )
        .status
        .success()
    );
    assert!(
        run(&get, &["-v1", "-c", "public", &a, sys_uptime])
            .status
            .success()
    );

    // No GetBulk: genErr to GetBulk; GetNext walks still work.
    let a = at("sharp");
    let bulk = run(&bulkwalk, &["-v2c", "-c", "public", &a, "1.3.6.1.2.1.1"]);
    assert!(text(&bulk).contains("genErr"), "{}", text(&bulk));
    assert!(
        run(&walk_tool, &["-v2c", "-c", "public", &a, "1.3.6.1.2.1.1"])
            .status
            .success()
    );

    // tooBig above 5 varbinds: a bulk of 10 fails, a bulk of 4 works.
    let a = at("ricoh_mpc3002");
    let big = run(
        &bulkwalk,
        &["-v2c", "-c", "public", "-Cr10", &a, "1.3.6.1.2.1.43.11"],
    );
    assert!(text(&big).contains("tooBig"), "{}", text(&big));
    assert!(
        run(
            &bulkwalk,
            &["-v2c", "-c", "public", "-Cr4", &a, "1.3.6.1.2.1.43.11"]
        )
        .status
        .success()
    );

    // Asleep: the first request after idling is dropped, the retry answered.
    let a = at("konica");
    assert!(
        !run(
            &get,
            &[
                "-v2c", "-c", "public", "-t", "0.5", "-r", "0", &a, sys_uptime
            ]
        )
        .status
        .success()
    );
    assert!(
        run(
            &get,
            &[
                "-v2c", "-c", "public", "-t", "0.5", "-r", "0", &a, sys_uptime
            ]
        )
        .status
        .success()
    );

    // genErr always.
    let e = run(&get, &["-v2c", "-c", "public", &at("utax"), sys_uptime]);
    assert!(text(&e).contains("genErr"), "{}", text(&e));

    // Malformed responses are not accepted by net-snmp.
    assert!(
        !run(
            &get,
            &[
                "-v2c",
                "-c",
                "public",
                "-t",
                "0.5",
                "-r",
                "0",
                &at("epson"),
                sys_uptime
            ]
        )
        .status
        .success()
    );

    // Slow: a 0.1 s timeout misses the answer, a 2 s one gets it.
    let a = at("canonprinter_lbp");
    assert!(
        !run(
            &get,
            &[
                "-v2c", "-c", "public", "-t", "0.1", "-r", "0", &a, sys_uptime
            ]
        )
        .status
        .success()
    );
    assert!(
        run(
            &get,
            &["-v2c", "-c", "public", "-t", "2", "-r", "0", &a, sys_uptime]
        )
        .status
        .success()
    );

    // Total loss.
    assert!(
        !run(
            &get,
            &[
                "-v2c",
                "-c",
                "public",
                "-t",
                "0.3",
                "-r",
                "1",
                &at("dell-laser_s5830dn"),
                sys_uptime
            ]
        )
        .status
        .success()
    );

    // Quirky encodings still read as the same values by net-snmp.
    let file = recordings.join("jetdirect_m880.snmprec");
    let quirky = walk(&bulkwalk, "-v2c", "public", &at("jetdirect_m880"));
    support::assert_same(
        &quirky,
        &expected(&file, false),
        "quirky walk of jetdirect_m880",
    );

    // A device without faults is untouched.
    assert!(
        run(&get, &["-v2c", "-c", "public", &at("brother"), sys_uptime])
            .status
            .success()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_scenario_file_is_refused_with_its_name_and_entry() {
    let dir = std::env::temp_dir().join(format!("dca-sim-bad-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("bad.json");
    std::fs::write(&scenario, r#"[{"devices": "x", "loss": "lots"}]"#).unwrap();
    let recordings = support::corpus().join("librenms/snmprec");
    let out = Command::new(env!("CARGO_BIN_EXE_dca-sim"))
        .args([
            "serve",
            "--recordings",
            recordings.to_str().unwrap(),
            "--bind",
            "127.15.0.0/24",
            "--scenario",
            scenario.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.json: entry 0: \"loss\" must be a probability"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
