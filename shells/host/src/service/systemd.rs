//! The systemd unit: the text the .deb ships, with this dca's path and the
//! configuration's put in when `dca service install` writes it.

use super::Failure;
#[cfg(target_os = "linux")]
use super::{State, config_advice, manager, remove_definition, write_definition};
use std::path::{Path, PathBuf};

/// The unit as packaged: one text for the package and for `install`.
pub const UNIT: &str = include_str!("../../packaging/linux/opendca.service");
#[cfg(target_os = "linux")]
pub const NAME: &str = "opendca.service";
/// The paths the packaged unit names, replaced by `unit`.
const PACKAGED_BIN: &str = "/usr/bin/dca";
const PACKAGED_CONFIG: &str = "/etc/opendca/dca.toml";
/// Where an administrator's units go, above those of packages.
#[cfg(target_os = "linux")]
const SYSTEM_DIR: &str = "/etc/systemd/system";
/// Where packages put theirs (the .deb's unit is found here).
#[cfg(target_os = "linux")]
const PACKAGE_DIRS: [&str; 2] = ["/usr/lib/systemd/system", "/lib/systemd/system"];
/// The state directory the unit gives the service (StateDirectory=opendca);
/// with DynamicUser= it is a link into /var/lib/private.
#[cfg(target_os = "linux")]
const STATE_DIR: &str = "/var/lib/opendca";

/// The unit for `bin` running with the configuration `config`.
pub fn unit(bin: &Path, config: &Path) -> Result<String, Failure> {
    let bin = unit_word(bin)?;
    let config = unit_word(config)?;
    let mut out = String::with_capacity(UNIT.len() + 64);
    let mut replaced = 0;
    for line in UNIT.lines() {
        let line = match line.split_once('=') {
            Some(("ExecStart", cmd)) if cmd.starts_with(PACKAGED_BIN) => {
                replaced += 1;
                format!("ExecStart={bin}{}", &cmd[PACKAGED_BIN.len()..])
            }
            Some((key @ ("LoadCredential" | "ConditionPathExists"), value))
                if value.ends_with(PACKAGED_CONFIG) =>
            {
                replaced += 1;
                let prefix = &value[..value.len() - PACKAGED_CONFIG.len()];
                format!("{key}={prefix}{config}")
            }
            _ => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    // The packaged unit names both paths; a change to it that drops one
    // must not yield a unit that runs another dca or another file.
    assert_eq!(replaced, 3, "packaging/linux/opendca.service changed shape");
    Ok(out)
}

/// A path as one word of a unit file. `%` starts a specifier, so it is
/// doubled; what the unit syntax would split, unquote or expand (blanks,
/// quotes, backslashes, `$`, `;`) is refused rather than escaped: the
/// administrator can move the file, and a mis-escaped path would run
/// something else.
fn unit_word(path: &Path) -> Result<String, Failure> {
    let text = path
        .to_str()
        .ok_or_else(|| Failure::usage(format!("{}: not UTF-8", path.display())))?;
    if !path.is_absolute() {
        return Err(Failure::usage(format!("{text}: not an absolute path")));
    }
    if let Some(c) = text
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "\"'\\$;".contains(*c))
    {
        return Err(Failure::usage(format!(
            "{text}: a systemd unit cannot name this path (it holds {c:?}); move the file"
        )));
    }
    Ok(text.replace('%', "%%"))
}

/// Directories the unit's sandbox hides from the service: an executable
/// there cannot start (status 203/EXEC).
fn hidden_from_service(bin: &Path) -> Option<&'static str> {
    [
        ("/home", "ProtectHome="),
        ("/root", "ProtectHome="),
        ("/run/user", "ProtectHome="),
        ("/tmp", "PrivateTmp="),
        ("/var/tmp", "PrivateTmp="),
    ]
    .into_iter()
    .find(|(dir, _)| bin.starts_with(dir))
    .map(|(_, why)| why)
}

/// The configuration file a written unit loads (its LoadCredential=).
pub fn configured(unit: &str) -> Option<PathBuf> {
    unit.lines().find_map(|l| {
        let v = l.strip_prefix("LoadCredential=dca.toml:")?;
        Some(PathBuf::from(v.replace("%%", "%")))
    })
}

/// Systemd is the running init system (what sd_booted() checks).
#[cfg(target_os = "linux")]
fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

#[cfg(target_os = "linux")]
pub fn install(bin: &Path, config: &Path, unit_dir: Option<&Path>) -> Result<(), Failure> {
    let text = unit(bin, config)?;
    let dir = unit_dir.unwrap_or(Path::new(SYSTEM_DIR));
    let path = dir.join(NAME);
    write_definition(&path, &text)?;
    println!("wrote {} (runs {})", path.display(), bin.display());
    if let Some(setting) = hidden_from_service(bin) {
        eprintln!(
            "warning: the unit's {setting} hides {} from the service; install dca in \
             /usr/local/bin (or use the package) and run `dca service install` from there",
            bin.display()
        );
    }
    let advice = config_advice(config);
    if unit_dir.is_some() {
        println!("systemd left alone (--unit-dir)");
    } else if !systemd_running() {
        println!(
            "systemd is not running here: on the next boot with systemd, `systemctl enable \
             --now opendca` starts it"
        );
    } else {
        manager("systemctl", &["daemon-reload"])?;
        if advice.is_some() {
            manager("systemctl", &["enable", "opendca"])?;
            println!("enabled opendca; not started until its configuration is ready");
        } else {
            // restart, not start: a reinstall runs the dca just written.
            manager("systemctl", &["enable", "opendca"])?;
            manager("systemctl", &["restart", "opendca"])?;
            println!("enabled and started opendca: `journalctl -u opendca` shows its log");
        }
    }
    if let Some(a) = advice {
        println!("next: {a}; then `systemctl start opendca`");
    }
    Ok(())
}

#[cfg(target_os = "linux")]
pub fn uninstall(unit_dir: Option<&Path>) -> Result<(), Failure> {
    let dir = unit_dir.unwrap_or(Path::new(SYSTEM_DIR));
    let path = dir.join(NAME);
    let tell_systemd = unit_dir.is_none() && systemd_running();
    if tell_systemd && path.exists() {
        manager("systemctl", &["disable", "--now", "opendca"])?;
        println!("stopped and disabled opendca");
    }
    if remove_definition(&path)? {
        println!("removed {}", path.display());
        if tell_systemd {
            manager("systemctl", &["daemon-reload"])?;
        }
    } else {
        println!("not installed: there is no {}", path.display());
    }
    if unit_dir.is_none()
        && let Some(p) = packaged_unit()
    {
        println!(
            "{} is the package's: remove the package to remove it",
            p.display()
        );
    }
    println!(
        "kept: the configuration, and the state in {STATE_DIR} (remove it to forget the \
         enrollment)"
    );
    Ok(())
}

#[cfg(target_os = "linux")]
fn packaged_unit() -> Option<PathBuf> {
    PACKAGE_DIRS
        .iter()
        .map(|d| Path::new(d).join(NAME))
        .find(|p| p.exists())
}

#[cfg(target_os = "linux")]
pub fn status(unit_dir: Option<&Path>) -> Result<State, Failure> {
    let found = match unit_dir {
        Some(d) => Some(d.join(NAME)).filter(|p| p.exists()),
        None => Some(Path::new(SYSTEM_DIR).join(NAME))
            .filter(|p| p.exists())
            .or_else(packaged_unit),
    };
    let Some(path) = found else {
        println!(
            "not installed: no {NAME} in {}",
            unit_dir.map_or_else(
                || format!("{SYSTEM_DIR} or {}", PACKAGE_DIRS.join(" or ")),
                |d| d.display().to_string()
            )
        );
        return Ok(State::NotInstalled);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::local(format!("cannot read {}: {e}", path.display())))?;
    println!("unit: {}", path.display());
    let state = if unit_dir.is_none() && systemd_running() {
        let out = std::process::Command::new("systemctl")
            .args(["is-active", "opendca"])
            .output()
            .map_err(|e| Failure::local(format!("cannot run systemctl is-active opendca: {e}")))?;
        let active = String::from_utf8_lossy(&out.stdout).trim().to_string();
        println!("service: {active} (systemctl status opendca; journalctl -u opendca)");
        if out.status.success() {
            State::Running
        } else {
            State::Stopped
        }
    } else {
        println!("service: not running (systemd is not managing it here)");
        State::Stopped
    };
    match configured(&text) {
        Some(config) => {
            let note = config_advice(&config).unwrap_or_else(|| "ready".into());
            println!("config: {} ({note})", config.display());
        }
        None => println!("config: the unit names none (no LoadCredential=dca.toml:)"),
    }
    println!("state: {STATE_DIR} (in /var/lib/private/opendca)");
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The unit's settings, section by section, each key's values in order.
    fn parse(text: &str) -> HashMap<String, HashMap<String, Vec<String>>> {
        let mut sections: HashMap<String, HashMap<String, Vec<String>>> = HashMap::new();
        let mut current = None;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = Some(name.to_string());
                continue;
            }
            let (k, v) = line.split_once('=').expect("key=value");
            let section = current.clone().expect("a setting outside a section");
            sections
                .entry(section)
                .or_default()
                .entry(k.trim().to_string())
                .or_default()
                .push(v.trim().to_string());
        }
        sections
    }

    fn service_unit() -> HashMap<String, Vec<String>> {
        let text = unit(
            Path::new("/opt/dca/bin/dca"),
            Path::new("/srv/conf/dca.toml"),
        )
        .unwrap();
        parse(&text).remove("Service").unwrap()
    }

    fn one<'a>(s: &'a HashMap<String, Vec<String>>, key: &str) -> &'a str {
        match s.get(key).map(Vec::as_slice) {
            Some([v]) => v,
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn service_unit_runs_this_dca_with_the_configuration_as_a_credential() {
        let s = service_unit();
        assert_eq!(
            one(&s, "ExecStart"),
            "/opt/dca/bin/dca run --config ${CREDENTIALS_DIRECTORY}/dca.toml"
        );
        assert_eq!(one(&s, "LoadCredential"), "dca.toml:/srv/conf/dca.toml");
        assert_eq!(one(&s, "Restart"), "on-failure");
        assert!(s.contains_key("RestartSec"));
        let text = unit(
            Path::new("/opt/dca/bin/dca"),
            Path::new("/srv/conf/dca.toml"),
        )
        .unwrap();
        let unit_section = parse(&text).remove("Unit").unwrap();
        assert_eq!(
            one(&unit_section, "ConditionPathExists"),
            "/srv/conf/dca.toml"
        );
        assert_eq!(
            configured(&text).as_deref(),
            Some(Path::new("/srv/conf/dca.toml"))
        );
        let install = parse(&text).remove("Install").unwrap();
        assert_eq!(one(&install, "WantedBy"), "multi-user.target");
    }

    #[test]
    fn service_unit_as_packaged_runs_usr_bin_dca_with_etc_opendca() {
        assert!(
            UNIT.contains(
                "\nExecStart=/usr/bin/dca run --config ${CREDENTIALS_DIRECTORY}/dca.toml\n"
            )
        );
        assert!(UNIT.contains("\nLoadCredential=dca.toml:/etc/opendca/dca.toml\n"));
        let same = unit(Path::new(PACKAGED_BIN), Path::new(PACKAGED_CONFIG)).unwrap();
        assert_eq!(same, UNIT);
    }

    #[test]
    fn service_unit_is_sandboxed() {
        let s = service_unit();
        for (key, value) in [
            ("DynamicUser", "yes"),
            ("StateDirectory", "opendca"),
            ("Environment", "DCA_STATE_DIR=%S/opendca"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("NoNewPrivileges", "yes"),
            ("CapabilityBoundingSet", ""),
            ("AmbientCapabilities", ""),
            ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
            ("MemoryDenyWriteExecute", "yes"),
            ("LockPersonality", "yes"),
            ("ProtectKernelTunables", "yes"),
            ("ProtectKernelModules", "yes"),
            ("ProtectKernelLogs", "yes"),
            ("ProtectControlGroups", "yes"),
            ("ProtectClock", "yes"),
            ("ProtectHostname", "yes"),
            ("RestrictNamespaces", "yes"),
            ("RestrictRealtime", "yes"),
            ("RestrictSUIDSGID", "yes"),
            ("UMask", "0077"),
        ] {
            assert_eq!(one(&s, key), value, "{key}");
        }
        // The allow list first, then what it must still not reach.
        assert_eq!(
            s["SystemCallFilter"],
            ["@system-service", "~@privileged @resources"]
        );
        // Nothing that would hand the service privileges back.
        for key in ["User", "Group", "SupplementaryGroups", "PrivateNetwork"] {
            assert!(!s.contains_key(key), "{key} is set");
        }
    }

    #[test]
    fn service_unit_paths_are_escaped_or_refused() {
        let text = unit(
            Path::new("/opt/100%/dca"),
            Path::new("/etc/opendca/dca.toml"),
        )
        .unwrap();
        assert!(text.contains("\nExecStart=/opt/100%%/dca run"), "{text}");
        for bad in [
            "/opt/my dca/dca",
            "/opt/$HOME/dca",
            "/opt/a;b/dca",
            "/opt/a\"b/dca",
        ] {
            let e = unit(Path::new(bad), Path::new("/etc/opendca/dca.toml")).unwrap_err();
            assert_eq!(e.code, 2);
            assert!(e.msg.contains(bad), "{}", e.msg);
        }
        let e = unit(Path::new("/usr/bin/dca"), Path::new("dca.toml")).unwrap_err();
        assert!(
            e.msg.contains("dca.toml: not an absolute path"),
            "{}",
            e.msg
        );
    }

    #[test]
    fn service_binaries_the_sandbox_hides_are_named() {
        assert_eq!(
            hidden_from_service(Path::new("/home/ann/.cargo/bin/dca")),
            Some("ProtectHome=")
        );
        assert_eq!(
            hidden_from_service(Path::new("/tmp/dca")),
            Some("PrivateTmp=")
        );
        assert_eq!(hidden_from_service(Path::new("/usr/local/bin/dca")), None);
        assert_eq!(hidden_from_service(Path::new("/homes/dca")), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn service_install_writes_the_unit_and_uninstall_removes_it() {
        use crate::service_cmd::tests::{Scratch, parse as cli};
        let dir = Scratch::new("systemd");
        let d = dir.0.to_str().unwrap();
        let config = dir.0.join("dca.toml");
        let c = config.to_str().unwrap();
        let path = dir.0.join(NAME);

        assert_eq!(status(Some(&dir.0)).unwrap(), State::NotInstalled);
        let code = crate::service_cmd::run(&cli(&["install", "--unit-dir", d, "--config", c]));
        assert_eq!(code, std::process::ExitCode::SUCCESS);
        let text = std::fs::read_to_string(&path).unwrap();
        let exe = std::env::current_exe().unwrap();
        let s = parse(&text).remove("Service").unwrap();
        assert_eq!(
            one(&s, "ExecStart"),
            format!(
                "{} run --config ${{CREDENTIALS_DIRECTORY}}/dca.toml",
                exe.display()
            )
        );
        assert_eq!(one(&s, "LoadCredential"), format!("dca.toml:{c}"));
        // Installed under a --unit-dir, systemd is not asked: not running.
        assert_eq!(status(Some(&dir.0)).unwrap(), State::Stopped);

        let code = crate::service_cmd::run(&cli(&["uninstall", "--unit-dir", d]));
        assert_eq!(code, std::process::ExitCode::SUCCESS);
        assert!(!path.exists());
        assert_eq!(status(Some(&dir.0)).unwrap(), State::NotInstalled);
        // Uninstalling twice is not an error.
        uninstall(Some(&dir.0)).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn service_install_into_a_missing_directory_names_it() {
        use crate::service_cmd::tests::Scratch;
        let dir = Scratch::new("systemd-missing");
        let missing = dir.0.join("no/such/dir");
        let e = install(
            Path::new("/usr/bin/dca"),
            Path::new("/etc/opendca/dca.toml"),
            Some(&missing),
        )
        .unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e.msg.contains(&*missing.to_string_lossy()), "{}", e.msg);
    }
}
