//! What the agent keeps on disk, in its state directory: its identity
//! (`agent.json`, readable by its owner only) and the outbox, a journal of
//! batches not yet acknowledged by the cloud (`outbox/<seq>.cbor`, each the
//! exact request body, so a re-send is byte for byte the same batch).
//!
//! Every file is written to a temporary name, synced, then renamed, so a
//! crash or a full disk leaves either the old file or the new one.

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
    /// SHA-256 of the cloud's certificate, hex, when pinned.
    pub pin: Option<String>,
    /// CA file trusted for the cloud, when given.
    pub ca: Option<PathBuf>,
    /// The next batch's sequence number.
    pub next_seq: u64,
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
            "pin": self.pin,
            "ca": self.ca.as_ref().map(|p| p.display().to_string()),
            "next_seq": self.next_seq,
            "targets": self.targets,
            "schedule_s": self.schedule_s,
            "log_level": self.log_level,
        })
    }

    fn from_json(v: &Value, path: &Path) -> Result<AgentState, String> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let need =
            |k: &str| text(k).ok_or_else(|| format!("{}: field {k} is missing", path.display()));
        Ok(AgentState {
            cloud: need("cloud")?,
            agent_id: need("agent_id")?,
            secret: need("secret")?,
            customer: text("customer").unwrap_or_default(),
            pin: text("pin"),
            ca: text("ca").map(PathBuf::from),
            next_seq: v
                .get("next_seq")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .max(1),
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
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
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
        .and_then(|()| {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .or(Ok(()))
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

    fn outbox(&self) -> PathBuf {
        self.dir.join("outbox")
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

    /// Journals batch `seq` (its request body) until the cloud acknowledges it.
    pub fn journal(&self, seq: u64, body: &[u8]) -> Result<(), String> {
        let dir = self.outbox();
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        write_durably(&dir.join(format!("{seq:020}.cbor")), body, true)
    }

    /// The journaled batches, oldest first; files that are not batches are
    /// left alone.
    pub fn pending(&self) -> Result<Vec<(u64, PathBuf)>, String> {
        let dir = self.outbox();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
        };
        let mut out: Vec<(u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let p = e.path();
                let seq = p
                    .extension()
                    .filter(|x| *x == "cbor")
                    .and(p.file_stem())?
                    .to_str()?
                    .parse()
                    .ok()?;
                Some((seq, p))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Drops the journaled batches the cloud has acknowledged.
    pub fn acknowledge(&self, acked: u64) -> Result<usize, String> {
        let mut n = 0;
        for (seq, path) in self.pending()? {
            if seq <= acked {
                std::fs::remove_file(&path)
                    .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
                n += 1;
            }
        }
        Ok(n)
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
    fn identity_and_outbox_survive_a_reload() {
        let dir = StateDir::new(temp("reload"));
        assert!(dir.load().unwrap_err().contains("not enrolled"));
        let s = AgentState {
            cloud: "https://c:8443".into(),
            agent_id: "agt_1".into(),
            secret: "s".into(),
            customer: "acme".into(),
            pin: Some("ab".repeat(32)),
            ca: None,
            next_seq: 3,
            targets: vec!["10.0.0.0/24".into()],
            schedule_s: Some(900),
            log_level: None,
        };
        dir.save(&s).unwrap();
        assert_eq!(dir.load().unwrap(), s);
        dir.journal(2, b"two").unwrap();
        dir.journal(10, b"ten").unwrap();
        std::fs::write(dir.path().join("outbox/notes.txt"), "x").unwrap();
        let seqs: Vec<u64> = dir.pending().unwrap().iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [2, 10]);
        assert_eq!(dir.acknowledge(9).unwrap(), 1);
        assert_eq!(std::fs::read(&dir.pending().unwrap()[0].1).unwrap(), b"ten");
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
}
