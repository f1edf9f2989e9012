//! The launchd daemon on macOS: a property list in /Library/LaunchDaemons
//! that runs `dca run --config FILE` as the `_opendca` user.

use super::Failure;
#[cfg(target_os = "macos")]
use super::{State, config_advice, manager, remove_definition, write_definition};
use std::path::Path;

pub const LABEL: &str = "org.opendca.agent";
/// A role account: no login, no home, no other files.
pub const USER: &str = "_opendca";
/// Its state, and the configuration beside it, both the user's own.
pub const STATE_DIR: &str = "/Library/Application Support/OpenDCA";
pub const LOG_DIR: &str = "/Library/Logs/OpenDCA";
#[cfg(target_os = "macos")]
const SYSTEM_DIR: &str = "/Library/LaunchDaemons";

/// The property list for `bin` running with the configuration `config`.
pub fn plist(bin: &Path, config: &Path) -> Result<String, Failure> {
    let bin = xml_text(bin)?;
    let config = xml_text(config)?;
    let state = xml_text(Path::new(STATE_DIR))?;
    let log = xml_text(&Path::new(LOG_DIR).join("dca.log"))?;
    Ok(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>{LABEL}</string>
	<key>ProgramArguments</key>
	<array>
		<string>{bin}</string>
		<string>run</string>
		<string>--config</string>
		<string>{config}</string>
	</array>
	<key>UserName</key>
	<string>{USER}</string>
	<key>GroupName</key>
	<string>{USER}</string>
	<key>EnvironmentVariables</key>
	<dict>
		<key>DCA_STATE_DIR</key>
		<string>{state}</string>
	</dict>
	<key>Umask</key>
	<integer>63</integer>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<true/>
	<key>ThrottleInterval</key>
	<integer>30</integer>
	<key>ProcessType</key>
	<string>Background</string>
	<key>StandardOutPath</key>
	<string>{log}</string>
	<key>StandardErrorPath</key>
	<string>{log}</string>
</dict>
</plist>
"#
    ))
}

/// An absolute path as XML character data.
fn xml_text(path: &Path) -> Result<String, Failure> {
    let text = path
        .to_str()
        .ok_or_else(|| Failure::usage(format!("{}: not UTF-8", path.display())))?;
    if !path.is_absolute() {
        return Err(Failure::usage(format!("{text}: not an absolute path")));
    }
    if text.chars().any(char::is_control) {
        return Err(Failure::usage(format!(
            "{text:?}: a path with control characters"
        )));
    }
    Ok(text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;"))
}

/// The user's numeric id and primary group, if it exists.
#[cfg(target_os = "macos")]
fn account() -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = std::process::Command::new("id")
            .args([flag, USER])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// A directory of the service's user, that only it may read.
#[cfg(target_os = "macos")]
fn private_dir(dir: &Path, uid: u32, gid: u32) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |e: std::io::Error| Failure::local(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(fail)?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(fail)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)
}

#[cfg(target_os = "macos")]
fn loaded() -> bool {
    std::process::Command::new("launchctl")
        .args(["print", &format!("system/{LABEL}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(target_os = "macos")]
pub fn install(bin: &Path, config: &Path, unit_dir: Option<&Path>) -> Result<(), Failure> {
    let text = plist(bin, config)?;
    let path = unit_dir
        .unwrap_or(Path::new(SYSTEM_DIR))
        .join(format!("{LABEL}.plist"));
    if unit_dir.is_some() {
        write_definition(&path, &text)?;
        println!("wrote {}; launchd left alone (--unit-dir)", path.display());
        return Ok(());
    }
    let Some((uid, gid)) = account() else {
        return Err(Failure::usage(format!(
            "there is no user {USER} to run the service: create it first (see the README's \
             macOS steps)"
        )));
    };
    private_dir(Path::new(STATE_DIR), uid, gid)?;
    private_dir(Path::new(LOG_DIR), uid, gid)?;
    if loaded() {
        manager("launchctl", &["bootout", &format!("system/{LABEL}")])?;
    }
    write_definition(&path, &text)?;
    println!(
        "wrote {} (runs {} as {USER})",
        path.display(),
        bin.display()
    );
    match config_advice(config) {
        None => {
            manager(
                "launchctl",
                &["bootstrap", "system", &path.to_string_lossy()],
            )?;
            println!("started {LABEL}; its log is {LOG_DIR}/dca.log");
        }
        Some(a) => println!(
            "next: {a} (the file owned by {USER}); then `sudo launchctl bootstrap system {}`",
            path.display()
        ),
    }
    Ok(())
}

#[cfg(target_os = "macos")]
pub fn uninstall(unit_dir: Option<&Path>) -> Result<(), Failure> {
    let path = unit_dir
        .unwrap_or(Path::new(SYSTEM_DIR))
        .join(format!("{LABEL}.plist"));
    if unit_dir.is_none() && loaded() {
        manager("launchctl", &["bootout", &format!("system/{LABEL}")])?;
        println!("stopped {LABEL}");
    }
    if remove_definition(&path)? {
        println!("removed {}", path.display());
    } else {
        println!("not installed: there is no {}", path.display());
    }
    println!("kept: the configuration and state in {STATE_DIR}, the log in {LOG_DIR}");
    Ok(())
}

#[cfg(target_os = "macos")]
pub fn status(unit_dir: Option<&Path>) -> Result<State, Failure> {
    let path = unit_dir
        .unwrap_or(Path::new(SYSTEM_DIR))
        .join(format!("{LABEL}.plist"));
    if !path.exists() {
        println!("not installed: there is no {}", path.display());
        return Ok(State::NotInstalled);
    }
    println!("daemon: {}", path.display());
    let running = unit_dir.is_none() && loaded();
    println!(
        "service: {} (sudo launchctl print system/{LABEL})",
        if running { "loaded" } else { "not loaded" }
    );
    println!("state: {STATE_DIR}; log: {LOG_DIR}/dca.log");
    Ok(if running {
        State::Running
    } else {
        State::Stopped
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use plist::Value;

    fn parsed(bin: &str, config: &str) -> plist::Dictionary {
        let text = plist(Path::new(bin), Path::new(config)).unwrap();
        match Value::from_reader_xml(text.as_bytes()) {
            Ok(Value::Dictionary(d)) => d,
            other => panic!("{other:?}\n{text}"),
        }
    }

    fn string<'a>(d: &'a plist::Dictionary, key: &str) -> &'a str {
        d.get(key)
            .and_then(Value::as_string)
            .unwrap_or_else(|| panic!("{key}"))
    }

    #[test]
    fn service_plist_runs_dca_as_its_own_user_and_keeps_it_alive() {
        let config = "/Library/Application Support/OpenDCA/dca.toml";
        let d = parsed("/usr/local/bin/dca", config);
        assert_eq!(string(&d, "Label"), "org.opendca.agent");
        let args: Vec<&str> = d["ProgramArguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_string().unwrap())
            .collect();
        assert_eq!(args, ["/usr/local/bin/dca", "run", "--config", config]);
        assert_eq!(string(&d, "UserName"), "_opendca");
        assert_eq!(string(&d, "GroupName"), "_opendca");
        assert_eq!(d["RunAtLoad"].as_boolean(), Some(true));
        assert_eq!(d["KeepAlive"].as_boolean(), Some(true));
        assert_eq!(
            string(&d, "StandardErrorPath"),
            "/Library/Logs/OpenDCA/dca.log"
        );
        // Files the agent makes are its user's alone (umask 077).
        assert_eq!(d["Umask"].as_signed_integer(), Some(0o077));
        let env = d["EnvironmentVariables"].as_dictionary().unwrap();
        assert_eq!(string(env, "DCA_STATE_DIR"), STATE_DIR);
    }

    #[test]
    fn service_plist_escapes_paths() {
        let d = parsed("/Applications/A&B <x>/dca", "/etc/dca.toml");
        let args = d["ProgramArguments"].as_array().unwrap();
        assert_eq!(args[0].as_string(), Some("/Applications/A&B <x>/dca"));
        let e = plist(Path::new("dca"), Path::new("/etc/dca.toml")).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.msg.contains("dca: not an absolute path"), "{}", e.msg);
    }
}
