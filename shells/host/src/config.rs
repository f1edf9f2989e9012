//! The configuration file a service runs from (`dca run --config FILE`,
//! checked by `dca config check FILE`): TOML, every key known, every error
//! naming the file, the line, the column and the key.
//!
//! It is the admin's word at install time. The cloud's later settings
//! (`set_targets`, `set_schedule`, `set_log_level`) win over it and persist
//! in the state directory; the file's pins and CA win over the ones kept at
//! enrollment, so rotating a pin is an edit and a restart.

use crate::cloud_link::{CloudUrl, Proxy};
use crate::cloud_tls;
use crate::snmp_args::SnmpArgs;
use crate::sweep::{self, SweepArgs};
use dca_core::sync::task::LogLevel;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where an installed service reads its configuration.
pub fn default_path() -> PathBuf {
    if cfg!(windows) {
        let base = std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
        return PathBuf::from(base).join("OpenDCA").join("dca.toml");
    }
    if cfg!(target_os = "macos") {
        return PathBuf::from("/Library/Application Support/OpenDCA/dca.toml");
    }
    PathBuf::from("/etc/opendca/dca.toml")
}

/// Where the Windows service logs when the file names no log file.
pub fn default_log_path() -> PathBuf {
    let base = std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
    PathBuf::from(base).join("OpenDCA").join("dca.log")
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the identity and journal live (default: the platform's).
    pub state_dir: Option<PathBuf>,
    pub cloud: Option<Cloud>,
    #[serde(default)]
    pub collect: Collect,
    /// Credential sets, tried in order (default: v2c `public`).
    #[serde(default)]
    pub snmp: Vec<Snmp>,
    #[serde(default)]
    pub log: Log,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cloud {
    /// https://host[:port]
    pub url: String,
    /// A one-time enrollment token: used at the first start only.
    pub token: Option<String>,
    /// SHA-256 pins of the cloud's key (or certificate); any one admits it.
    #[serde(default)]
    pub pins: Vec<String>,
    /// A PEM file of CA certificates (when no pins).
    pub ca: Option<PathBuf>,
    /// http://[user:password@]host:port (default: HTTPS_PROXY).
    pub proxy: Option<String>,
    /// Leave the devices' addresses out of the readings.
    #[serde(default)]
    pub mask_addresses: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Collect {
    pub targets: Vec<String>,
    pub exclude: Vec<String>,
    /// Seconds between collections, until the cloud sets a schedule.
    pub every_s: u64,
    /// Seconds between calls to the cloud for tasks.
    pub tasks_every_s: u64,
    pub port: u16,
    /// Probes per second (0: as fast as the network takes them).
    pub rate: u32,
    pub timeout_ms: u64,
    pub retries: u8,
    pub parallel: usize,
    /// Web ports Device Web Access may relay to, beside 80, 443, 8080 and
    /// 8443.
    pub web_ports: Vec<u16>,
}

impl Default for Collect {
    fn default() -> Self {
        let sweep = SweepArgs::new(Vec::new(), 161);
        Collect {
            targets: Vec::new(),
            exclude: Vec::new(),
            every_s: 900,
            tasks_every_s: 300,
            port: sweep.port,
            rate: sweep.rate,
            timeout_ms: sweep.timeout,
            retries: sweep.retries,
            parallel: sweep.parallel,
            web_ports: Vec::new(),
        }
    }
}

/// One credential set, in the words of the command line's options.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snmp {
    pub version: Option<String>,
    #[serde(default)]
    pub communities: Vec<String>,
    pub user: Option<String>,
    pub level: Option<String>,
    pub auth_protocol: Option<String>,
    pub auth_password: Option<String>,
    pub priv_protocol: Option<String>,
    pub priv_password: Option<String>,
    pub context: Option<String>,
    pub engine_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// error, warn, info, debug or trace, until the cloud sets one.
    pub level: String,
    /// A file to log to, rotated by size, where there is no journal.
    pub file: Option<PathBuf>,
    pub max_bytes: u64,
    /// Rotated files kept beside the current one.
    pub keep: u32,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            file: None,
            max_bytes: 10 * 1024 * 1024,
            keep: 5,
        }
    }
}

/// Keys whose values are never repeated in an error.
const SECRET_KEYS: [&str; 5] = [
    "token",
    "proxy",
    "communities",
    "auth_password",
    "priv_password",
];

/// The command-line option each credential key stands for, so the shared
/// checks' messages can be said in the file's words.
const SNMP_KEYS: [(&str, &str); 9] = [
    ("-u", "user"),
    ("-l", "level"),
    ("-a", "auth_protocol"),
    ("-A", "auth_password"),
    ("-x", "priv_protocol"),
    ("-X", "priv_password"),
    ("-n", "context"),
    ("-e", "engine_id"),
    ("-c", "communities"),
];

impl Snmp {
    fn args(&self) -> SnmpArgs {
        SnmpArgs {
            version: self.version.clone(),
            communities: self.communities.clone(),
            user: self.user.clone(),
            level: self.level.clone(),
            auth_protocol: self.auth_protocol.clone(),
            auth_password: self.auth_password.clone(),
            priv_protocol: self.priv_protocol.clone(),
            priv_password: self.priv_password.clone(),
            context: self.context.clone(),
            engine_id: self.engine_id.clone(),
            ..Default::default()
        }
    }

    fn has_secrets(&self) -> bool {
        !self.communities.is_empty() || self.auth_password.is_some() || self.priv_password.is_some()
    }
}

/// A configuration error: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// 1-based line and column of byte `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The dotted key at byte `at`: the table header above it and the key
/// the line assigns, e.g. `collect.every_s` or `snmp[2].auth_protocol`.
fn key_at(text: &str, at: usize) -> Option<String> {
    let before = text.get(..at)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(line_start..)?.lines().next()?;
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string());
    let mut table = None;
    let mut counts = std::collections::HashMap::<String, usize>::new();
    // Up to and with the error's own line: an error on a table's header
    // (an unknown table, a key missing from it) is about that table.
    let line_end = text
        .get(line_start..)?
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    for l in text.get(..line_end)?.lines() {
        let l = l.trim();
        if let Some(name) = l.strip_prefix("[[").and_then(|r| r.split_once("]]")) {
            let name = name.0.trim().to_string();
            let n = counts.entry(name.clone()).or_default();
            *n += 1;
            table = Some(format!("{name}[{n}]"));
        } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.split_once(']')) {
            table = Some(name.0.trim().to_string());
        }
    }
    match (table, key) {
        (Some(t), Some(k)) => Some(format!("{t}.{k}")),
        (None, Some(k)) => Some(k),
        (Some(t), None) => Some(t),
        (None, None) => None,
    }
}

/// Where `key` (of the `index`th `[[table]]`, or of `[table]`) is written,
/// for errors found after parsing; the table's header when the key is not.
fn locate(text: &str, table: &str, index: Option<usize>, key: &str) -> Option<(usize, usize)> {
    let mut seen = 0;
    let mut inside = false;
    let mut header = None;
    for (n, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            let name = t.trim_start_matches('[');
            let name = name.split(']').next().unwrap_or("").trim();
            inside = name == table
                && match index {
                    Some(i) => {
                        seen += 1;
                        seen == i
                    }
                    None => true,
                };
            if inside {
                header = Some((n + 1, 1));
            }
            continue;
        }
        if inside
            && let Some((k, _)) = t.split_once('=')
            && k.trim().trim_matches('"') == key
        {
            let col = l.len() - l.trim_start().len() + 1;
            return Some((n + 1, col));
        }
    }
    header
}

impl Config {
    /// Reads and checks `path`: the syntax, every key, every value, and
    /// that a file holding secrets is readable by its owner only.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = read_text(path)?;
        let config: Config = toml::from_str(&text).map_err(|e| {
            let (line, col) = line_col(&text, e.span().map_or(0, |s| s.start));
            let key = e.span().and_then(|s| key_at(&text, s.start));
            // The parser quotes the value it did not expect: not a secret's.
            let secret = key
                .as_deref()
                .is_some_and(|k| SECRET_KEYS.contains(&k.rsplit('.').next().unwrap_or(k)));
            let message = if secret {
                "not a valid value (not shown: this key holds a secret)".to_string()
            } else {
                e.message().trim_end().to_string()
            };
            let key = key.map_or_else(String::new, |k| format!("{k}: "));
            ConfigError(format!("{shown}:{line}:{col}: {key}{message}"))
        })?;
        config.check().map_err(|(table, index, key, why)| {
            let at = locate(&text, table, index, key)
                .map_or_else(String::new, |(l, c)| format!(":{l}:{c}"));
            let name = match (table, index) {
                ("", _) => key.to_string(),
                (t, Some(i)) => format!("{t}[{i}].{key}"),
                (t, None) => format!("{t}.{key}"),
            };
            ConfigError(format!("{shown}{at}: {name}: {why}"))
        })?;
        if config.has_secrets() {
            refuse_if_shared(path)?;
        }
        Ok(config)
    }

    fn has_secrets(&self) -> bool {
        self.snmp.iter().any(Snmp::has_secrets)
            || self.cloud.as_ref().is_some_and(|c| {
                c.token.is_some() || c.proxy.as_deref().is_some_and(|p| p.contains('@'))
            })
    }

    /// The values' own rules, each error as (table, index, key, why).
    #[allow(clippy::type_complexity)]
    fn check(&self) -> Result<(), (&'static str, Option<usize>, &'static str, String)> {
        if let Some(c) = &self.cloud {
            CloudUrl::parse(&c.url).map_err(|e| ("cloud", None, "url", e))?;
            for p in &c.pins {
                cloud_tls::parse_pin(p).map_err(|e| ("cloud", None, "pins", e))?;
            }
            if !c.pins.is_empty() && c.ca.is_some() {
                return Err((
                    "cloud",
                    None,
                    "ca",
                    "give pins or a CA file, not both".into(),
                ));
            }
            if let Some(ca) = &c.ca
                && !ca.is_file()
            {
                return Err((
                    "cloud",
                    None,
                    "ca",
                    format!("{}: no such file", ca.display()),
                ));
            }
            if let Some(p) = &c.proxy {
                Proxy::parse(p).map_err(|e| ("cloud", None, "proxy", e))?;
            }
        }
        let t = &self.collect;
        sweep::check_syntax(&t.targets).map_err(|e| ("collect", None, "targets", e))?;
        sweep::check_syntax(&t.exclude).map_err(|e| ("collect", None, "exclude", e))?;
        for (key, value) in [
            ("every_s", t.every_s),
            ("tasks_every_s", t.tasks_every_s),
            ("timeout_ms", t.timeout_ms),
            ("parallel", t.parallel as u64),
        ] {
            if value == 0 {
                return Err(("collect", None, key, "must be at least 1".into()));
            }
        }
        if t.web_ports.contains(&0) {
            return Err(("collect", None, "web_ports", "ports are 1 to 65535".into()));
        }
        for (i, set) in self.snmp.iter().enumerate() {
            set.args().credentials().map_err(|e| {
                // "-a: the protocol is ..." said as the file's key.
                let (key, why) = SNMP_KEYS
                    .iter()
                    .find_map(|(opt, key)| {
                        e.strip_prefix(opt)
                            .filter(|r| r.starts_with([':', ' ']))
                            .map(|r| (*key, r.trim_start_matches(':').trim().to_string()))
                    })
                    .unwrap_or(("version", e.clone()));
                ("snmp", Some(i + 1), key, why)
            })?;
        }
        if self.snmp.len() > crate::snmp_args::MAX_SETS {
            return Err((
                "",
                None,
                "snmp",
                format!(
                    "{} credential sets: at most {}",
                    self.snmp.len(),
                    crate::snmp_args::MAX_SETS
                ),
            ));
        }
        if LogLevel::parse(&self.log.level).is_none() {
            return Err((
                "log",
                None,
                "level",
                format!("{:?}: error, warn, info, debug or trace", self.log.level),
            ));
        }
        Ok(())
    }

    /// The sweep this configuration asks for (its targets are defaults:
    /// the cloud's `set_targets` wins over them).
    pub fn sweep(&self) -> SweepArgs {
        let t = &self.collect;
        let mut sweep = SweepArgs::new(Vec::new(), t.port);
        sweep.exclude = t.exclude.clone();
        sweep.rate = t.rate;
        sweep.timeout = t.timeout_ms;
        sweep.retries = t.retries;
        sweep.parallel = t.parallel;
        sweep.snmp = SnmpArgs {
            configured: self.snmp.iter().map(Snmp::args).collect(),
            ..Default::default()
        };
        sweep
    }

    pub fn log_level(&self) -> Option<LogLevel> {
        LogLevel::parse(&self.log.level)
    }
}

/// Reads the file, naming it in the error.
fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
}

/// A file with secrets must be readable by its owner only. systemd's
/// credentials directory is private to the service by construction, even
/// where it grants the read with an ACL (which shows in the group bits).
fn refuse_if_shared(path: &Path) -> Result<(), ConfigError> {
    if std::env::var_os("CREDENTIALS_DIRECTORY")
        .is_some_and(|dir| !dir.is_empty() && path.starts_with(dir))
    {
        return Ok(());
    }
    let meta =
        std::fs::metadata(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
    match crate::secret_file::shared_mode(&meta) {
        Some(mode) => Err(ConfigError(format!(
            "{}: it holds secrets and others may read it (mode {mode:o}): chmod 600 it",
            path.display()
        ))),
        None => Ok(()),
    }
}

/// `dca config check FILE`.
pub fn check_cmd(path: &Path) -> std::process::ExitCode {
    match Config::load(path) {
        Ok(c) => {
            let sets = c.snmp.len().max(1);
            let cloud = c
                .cloud
                .as_ref()
                .map_or_else(|| "no cloud".to_string(), |c| format!("cloud {}", c.url));
            println!(
                "{}: valid; {cloud}, {} targets, {sets} credential sets, collecting every {} s",
                path.display(),
                c.collect.targets.len(),
                c.collect.every_s
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dca config check: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests;
