//! What the agent keeps on disk, in its state directory: its identity and
//! the settings the cloud may change (`agent.json`, readable by its owner
//! only). The batches waiting for the cloud are the journal's
//! (`crate::journal`), which also locks the directory.
//!
//! Every file is written to a temporary name of this process, synced, then
//! renamed, so a crash or a full disk leaves either the old file or the new
//! one.

use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The state directory: `--state-dir`, else `DCA_STATE_DIR`, else the
/// platform's place for a service's state.
pub fn state_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("DCA_STATE_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if cfg!(windows) {
        let base = std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
        return PathBuf::from(base).join("OpenDCA");
    }
    if cfg!(target_os = "macos") {
        return PathBuf::from("/Library/Application Support/OpenDCA");
    }
    match std::env::var_os("XDG_STATE_HOME").filter(|p| !p.is_empty()) {
        Some(x) => PathBuf::from(x).join("opendca"),
        None => match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
            Some(h) => PathBuf::from(h).join(".local/state/opendca"),
            None => PathBuf::from("/var/lib/opendca"),
        },
    }
}

/// The agent's identity and the settings the cloud may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentState {
    pub cloud: String,
    pub agent_id: String,
    pub secret: String,
    pub customer: String,
    /// SHA-256 of the cloud's key or certificate, hex: any of them.
    pub pins: Vec<String>,
    /// CA file trusted for the cloud, when given.
    pub ca: Option<PathBuf>,
    /// Targets set by the cloud (`set_targets`), used when none are given.
    pub targets: Vec<String>,
    /// Seconds between collections, set by the cloud (`set_schedule`).
    pub schedule_s: Option<u64>,
    /// Log level set by the cloud (`set_log_level`).
    pub log_level: Option<String>,
}

impl AgentState {
    fn to_json(&self) -> Value {
        json!({
            "cloud": self.cloud,
            "agent_id": self.agent_id,
            "secret": self.secret,
            "customer": self.customer,
            "pins": self.pins,
            // What an older agent reads, after a downgrade.
            "pin": self.pins.first(),
            "ca": self.ca.as_ref().map(|p| p.display().to_string()),
            "targets": self.targets,
            "schedule_s": self.schedule_s,
            "log_level": self.log_level,
        })
    }

    /// Reads `agent.json`; fields it does not know (version 1's `next_seq`)
    /// are ignored.
    fn from_json(v: &Value, path: &Path) -> Result<AgentState, String> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let need =
            |k: &str| text(k).ok_or_else(|| format!("{}: field {k} is missing", path.display()));
        Ok(AgentState {
            cloud: need("cloud")?,
            agent_id: need("agent_id")?,
            secret: need("secret")?,
            customer: text("customer").unwrap_or_default(),
            pins: match v.get("pins").and_then(Value::as_array) {
                Some(a) => a
                    .iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect(),
                None => text("pin").into_iter().collect(),
            },
            ca: text("ca").map(PathBuf::from),
            targets: v
                .get("targets")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            schedule_s: v.get("schedule_s").and_then(Value::as_u64),
            log_level: text("log_level"),
        })
    }

    pub fn authorization(&self) -> String {
        format!("Bearer {}:{}", self.agent_id, self.secret)
    }
}

/// Writes `bytes` to `path` atomically and durably.
fn write_durably(path: &Path, bytes: &[u8], private: bool) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Never a name another process could be writing too.
    let tmp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let result = opts
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path))
        // The rename is durable once the directory is synced.
        .and_then(|()| match std::fs::File::open(dir) {
            Ok(d) => d.sync_all(),
            // Windows cannot open a directory to sync it.
            Err(_) if cfg!(windows) => Ok(()),
            Err(e) => Err(e),
        });
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: PathBuf) -> StateDir {
        StateDir { dir }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn identity_path(&self) -> PathBuf {
        self.dir.join("agent.json")
    }

    pub fn is_enrolled(&self) -> bool {
        self.identity_path().exists()
    }

    pub fn load(&self) -> Result<AgentState, String> {
        let path = self.identity_path();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "not enrolled: no {} (run `dca enroll` first)",
                    path.display()
                )
            } else {
                format!("cannot read {}: {e}", path.display())
            }
        })?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        AgentState::from_json(&v, &path)
    }

    pub fn save(&self, s: &AgentState) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let text = serde_json::to_string_pretty(&s.to_json()).map_err(|e| e.to_string())?;
        write_durably(&self.identity_path(), text.as_bytes(), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dca-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn identity_and_settings_survive_a_reload() {
        let dir = StateDir::new(temp("reload"));
        assert!(dir.load().unwrap_err().contains("not enrolled"));
        let s = AgentState {
            cloud: "https://c:8443".into(),
            agent_id: "agt_1".into(),
            secret: "s".into(),
            customer: "acme".into(),
            pins: vec!["ab".repeat(32), "cd".repeat(32)],
            ca: None,
            targets: vec!["10.0.0.0/24".into()],
            schedule_s: Some(900),
            log_level: Some("debug".into()),
        };
        dir.save(&s).unwrap();
        assert_eq!(dir.load().unwrap(), s);
        let text = std::fs::read_to_string(dir.path().join("agent.json")).unwrap();
        assert!(!text.contains("next_seq"), "{text}");
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["agent.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("agent.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the secret must not be readable by others");
        }
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn a_version_1_file_loads_without_its_sequence_number() {
        let dir = StateDir::new(temp("v1"));
        std::fs::create_dir_all(dir.path()).unwrap();
        std::fs::write(
            dir.path().join("agent.json"),
            r#"{"cloud": "https://c", "agent_id": "agt_1", "secret": "s",
                "customer": "acme", "pin": null, "ca": null, "next_seq": 42,
                "targets": ["10.0.0.1"], "schedule_s": null, "log_level": null}"#,
        )
        .unwrap();
        let s = dir.load().unwrap();
        assert_eq!(s.targets, ["10.0.0.1"]);
        dir.save(&s).unwrap();
        let text = std::fs::read_to_string(dir.path().join("agent.json")).unwrap();
        assert!(!text.contains("next_seq"), "{text}");
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn a_failed_save_says_which_file_and_why() {
        let dir = StateDir::new(temp("unwritable").join("agent.json-is-a-dir"));
        std::fs::create_dir_all(dir.path().join("agent.json")).unwrap();
        let s = AgentState {
            cloud: "https://c".into(),
            agent_id: "a".into(),
            secret: "s".into(),
            customer: String::new(),
            pins: Vec::new(),
            ca: None,
            targets: Vec::new(),
            schedule_s: None,
            log_level: None,
        };
        let e = dir.save(&s).unwrap_err();
        assert!(e.contains("agent.json"), "{e}");
        let _ = std::fs::remove_dir_all(temp("unwritable"));
    }
}
