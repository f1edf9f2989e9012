//! The SNMP security options of `dca scan`, `poll`, `push` and `run`, in
//! net-snmp's words (`-v -c -u -l -a -A -x -X -n -e`), turned into the
//! core's credential sets.

use dca_core::poll::Credentials;
use dca_core::snmp::Version;
use dca_core::snmp::usm::{AuthProtocol, PrivProtocol, SecurityLevel, User};

#[derive(clap::Args, Clone, Default, PartialEq, Eq)]
pub struct SnmpArgs {
    /// SNMP version: 1, 2c (falls back to 1 by itself) or 3. Default: 3
    /// when a user is given, else 2c.
    #[arg(short = 'v', long = "snmp-version", value_name = "1|2c|3")]
    pub version: Option<String>,
    /// v1/v2c: communities to try on each device, in order (default: public).
    #[arg(long = "community", short = 'c', value_name = "COMMUNITY")]
    pub communities: Vec<String>,
    /// v3: the user name.
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// v3: noAuthNoPriv, authNoPriv or authPriv (default: what the passwords given allow).
    #[arg(short = 'l', long = "level", value_name = "LEVEL")]
    pub level: Option<String>,
    /// v3: MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512 (default MD5, as net-snmp).
    #[arg(short = 'a', long = "auth-protocol", value_name = "PROTOCOL")]
    pub auth_protocol: Option<String>,
    /// v3: the authentication password (8 characters at least).
    #[arg(short = 'A', long = "auth-password", value_name = "PASSWORD")]
    pub auth_password: Option<String>,
    /// v3: DES, AES, AES-192, AES-256, AES-192C or AES-256C (default DES, as net-snmp).
    #[arg(short = 'x', long = "priv-protocol", value_name = "PROTOCOL")]
    pub priv_protocol: Option<String>,
    /// v3: the privacy password (8 characters at least).
    #[arg(short = 'X', long = "priv-password", value_name = "PASSWORD")]
    pub priv_password: Option<String>,
    /// v3: the context name (HP printers want "Jetdirect").
    #[arg(short = 'n', long = "context", value_name = "CONTEXT")]
    pub context: Option<String>,
    /// v3: the device's engine id in hex, to skip discovery.
    #[arg(short = 'e', long = "engine-id", value_name = "HEX")]
    pub engine_id: Option<String>,
    /// Credential sets, one per line in the words above (e.g.
    /// `-v 3 -u mps -a SHA-256 -A ... -x AES -X ...`), tried in order: keeps
    /// secrets off the command line. Must be readable by its owner only.
    #[arg(long = "credentials", value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
    /// The sets of a configuration file, each as if given on its own.
    #[arg(skip)]
    pub configured: Vec<SnmpArgs>,
}

/// Shows the options without their secrets (passwords and communities).
impl std::fmt::Debug for SnmpArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |o: &Option<String>| o.as_ref().map(|_| "(hidden)");
        f.debug_struct("SnmpArgs")
            .field("version", &self.version)
            .field("communities", &self.communities.len())
            .field("user", &self.user)
            .field("level", &self.level)
            .field("auth_protocol", &self.auth_protocol)
            .field("auth_password", &hidden(&self.auth_password))
            .field("priv_protocol", &self.priv_protocol)
            .field("priv_password", &hidden(&self.priv_password))
            .field("context", &self.context)
            .field("engine_id", &self.engine_id)
            .field("file", &self.file)
            .field("configured", &self.configured)
            .finish()
    }
}

/// One line of a credentials file, parsed as the command line is.
#[derive(clap::Parser)]
#[command(no_binary_name = true, disable_help_flag = true)]
struct FileLine {
    #[command(flatten)]
    snmp: SnmpArgs,
}

/// At most this many sets (the scan's table).
pub const MAX_SETS: usize = 8;

impl SnmpArgs {
    /// [`SnmpArgs::credentials`], kept between calls: a service sweeping
    /// every few minutes makes each password's key (a mebibyte hashed)
    /// once, not per sweep. A credentials file changed since is read again.
    pub fn credentials_cached(&self) -> Result<Vec<Credentials>, String> {
        type Cached = (SnmpArgs, Option<std::time::SystemTime>, Vec<Credentials>);
        static CACHE: std::sync::Mutex<Option<Cached>> = std::sync::Mutex::new(None);
        let stamp = self
            .file
            .as_ref()
            .and_then(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok());
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((args, at, sets)) = cache.as_ref()
            && args == self
            && *at == stamp
        {
            return Ok(sets.clone());
        }
        let sets = self.credentials()?;
        *cache = Some((self.clone(), stamp, sets.clone()));
        Ok(sets)
    }

    /// The credential sets to try, in order; an error names the option
    /// (and the file and line).
    pub fn credentials(&self) -> Result<Vec<Credentials>, String> {
        let sets = match &self.file {
            Some(path) => {
                if *self
                    != (SnmpArgs {
                        file: self.file.clone(),
                        ..Default::default()
                    })
                {
                    return Err(format!(
                        "--credentials {}: give the sets in the file or on the command line, not both",
                        path.display()
                    ));
                }
                from_file(path)?
            }
            None if !self.configured.is_empty() => {
                let mut sets = Vec::new();
                for c in &self.configured {
                    sets.extend(c.sets()?);
                }
                sets
            }
            None => self.sets()?,
        };
        if sets.len() > MAX_SETS {
            return Err(format!(
                "{} credential sets: at most {MAX_SETS}",
                sets.len()
            ));
        }
        Ok(sets)
    }

    fn sets(&self) -> Result<Vec<Credentials>, String> {
        if self.file.is_some() {
            return Err("--credentials cannot be given inside a credentials file".into());
        }
        let version = match self.version.as_deref() {
            None if self.user.is_some() => Version::V3,
            None | Some("2c" | "2") => Version::V2c,
            Some("1") => Version::V1,
            Some("3") => Version::V3,
            Some(other) => return Err(format!("-v {other}: the version is 1, 2c or 3")),
        };
        if version != Version::V3 {
            let v3_only = [
                ("-u", self.user.is_some()),
                ("-l", self.level.is_some()),
                ("-a", self.auth_protocol.is_some()),
                ("-A", self.auth_password.is_some()),
                ("-x", self.priv_protocol.is_some()),
                ("-X", self.priv_password.is_some()),
                ("-n", self.context.is_some()),
                ("-e", self.engine_id.is_some()),
            ];
            if let Some((opt, _)) = v3_only.iter().find(|(_, set)| *set) {
                return Err(format!("{opt} is an SNMPv3 option: add -v 3"));
            }
            let communities = if self.communities.is_empty() {
                vec!["public".to_string()]
            } else {
                self.communities.clone()
            };
            return Ok(communities
                .iter()
                .map(|c| Credentials::community_in(version, c.as_bytes()))
                .collect());
        }
        if !self.communities.is_empty() {
            return Err("-c is for v1 and v2c; SNMPv3 uses -u and its passwords".into());
        }
        Ok(vec![Credentials::Usm(self.user()?)])
    }

    fn user(&self) -> Result<User, String> {
        let name = self
            .user
            .as_deref()
            .ok_or("-v 3 needs a user name (-u USER)")?;
        let level = match self.level.as_deref() {
            // The value is not echoed: a password given in its place
            // would end up in a log.
            Some(l) => SecurityLevel::parse(l)
                .ok_or("-l: the level is noAuthNoPriv, authNoPriv or authPriv")?,
            None if self.priv_password.is_some() => SecurityLevel::AuthPriv,
            None if self.auth_password.is_some() => SecurityLevel::AuthNoPriv,
            None => SecurityLevel::NoAuthNoPriv,
        };
        let mut user = User::new(name.as_bytes()).map_err(|e| format!("-u: {}", e.describe()))?;
        if level >= SecurityLevel::AuthNoPriv {
            let proto = match self.auth_protocol.as_deref() {
                None => AuthProtocol::Md5,
                Some(a) => AuthProtocol::parse(a)
                    .ok_or("-a: the protocol is MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512")?,
            };
            let password = self.auth_password.as_deref().ok_or_else(|| {
                format!("-l {}: needs an authentication password (-A)", level.name())
            })?;
            user = user
                .with_auth(proto, password.as_bytes())
                .map_err(|e| format!("-A: {}", e.describe()))?;
        }
        if level == SecurityLevel::AuthPriv {
            let proto = match self.priv_protocol.as_deref() {
                None => PrivProtocol::Des,
                Some(x) => PrivProtocol::parse(x).ok_or(
                    "-x: the protocol is DES, AES, AES-192, AES-256, AES-192C or AES-256C",
                )?,
            };
            let password = self
                .priv_password
                .as_deref()
                .ok_or("-l authPriv: needs a privacy password (-X)")?;
            user = user
                .with_privacy(proto, password.as_bytes())
                .map_err(|e| format!("-X: {}", e.describe()))?;
        }
        if let Some(n) = &self.context {
            user = user
                .with_context(n.as_bytes())
                .map_err(|e| format!("-n: {}", e.describe()))?;
        }
        if let Some(e) = &self.engine_id {
            let hex = e.trim_start_matches("0x").trim_start_matches("0X");
            let id = hex::decode(hex).map_err(|_| format!("-e {e}: not an engine id in hex"))?;
            user = user
                .with_engine_id(&id)
                .map_err(|err| format!("-e {e}: {}", err.describe()))?;
        }
        Ok(user)
    }
}

/// Reads a credentials file: refused unless only its owner can read it.
fn from_file(path: &std::path::Path) -> Result<Vec<Credentials>, String> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("--credentials {shown}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("--credentials {shown}: {e}"))?;
    if let Some(mode) = crate::secret_file::shared_mode(&meta) {
        return Err(format!(
            "--credentials {shown}: others may read it (mode {mode:o}); it holds secrets: chmod 600 it"
        ));
    }
    let text = std::io::read_to_string(file).map_err(|e| format!("--credentials {shown}: {e}"))?;
    let mut sets = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |e: String| format!("{shown}:{}: {e}", n + 1);
        let words = split_words(line).map_err(|e| at(e.to_string()))?;
        // clap's own message would quote the word it did not expect: a
        // password cut at a space, say.
        let parsed = <FileLine as clap::Parser>::try_parse_from(words).map_err(|e| {
            at(format!(
                "not a credential set ({}; quote a password that has spaces)",
                e.kind()
            ))
        })?;
        sets.extend(parsed.snmp.sets().map_err(at)?);
    }
    if sets.is_empty() {
        return Err(format!("--credentials {shown}: no credential set in it"));
    }
    Ok(sets)
}

/// Splits a line into words; double quotes keep spaces in a password.
fn split_words(line: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut in_word) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err("a quote is not closed");
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str, mode: u32) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("dca-cred-{name}-{}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
        p
    }

    fn with_file(p: &std::path::Path) -> SnmpArgs {
        SnmpArgs {
            file: Some(p.to_path_buf()),
            ..Default::default()
        }
    }

    #[test]
    fn a_file_gives_its_sets_in_order() {
        let p = write(
            "ok",
            "# the dealer's sets\n-v 3 -u mps -a SHA-256 -A \"pass word1\" -x AES -X privpass123 -n Jetdirect\n\n-c public -c private\n-v 1 -c old\n",
            0o600,
        );
        let sets = with_file(&p).credentials().unwrap();
        assert_eq!(sets.len(), 4);
        match &sets[0] {
            Credentials::Usm(u) => {
                assert_eq!(u.name.as_slice(), b"mps");
                assert_eq!(u.level(), SecurityLevel::AuthPriv);
                assert_eq!(u.context_name.as_slice(), b"Jetdirect");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(sets[1], Credentials::community(b"public"));
        assert_eq!(sets[2], Credentials::community(b"private"));
        assert_eq!(sets[3], Credentials::community_in(Version::V1, b"old"));
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused() {
        let p = write("open", "-c public\n", 0o644);
        let e = with_file(&p).credentials().unwrap_err();
        assert!(e.contains("others may read it (mode 644)"), "{e}");
    }

    #[test]
    fn a_bad_line_is_named() {
        let p = write(
            "bad",
            "-c public\n-v 3 -u mps -a SHA-3 -A authpass123\n",
            0o600,
        );
        let e = with_file(&p).credentials().unwrap_err();
        assert!(
            e.ends_with(":2: -a: the protocol is MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512"),
            "{e}"
        );
        // A password cut at a space is not quoted back.
        let p = write("space", "-v 3 -u mps -A pass word123\n", 0o600);
        let e = with_file(&p).credentials().unwrap_err();
        assert!(
            e.contains(":1: not a credential set") && !e.contains("word123"),
            "{e}"
        );
        let dbg = format!(
            "{:?}",
            SnmpArgs {
                auth_password: Some("s3cret-pass".into()),
                ..Default::default()
            }
        );
        assert!(!dbg.contains("s3cret"), "{dbg}");
        let p = write("short", "-v 3 -u mps -A short\n", 0o600);
        let e = with_file(&p).credentials().unwrap_err();
        assert!(
            e.contains(":1: -A: a v3 password has at least 8 characters"),
            "{e}"
        );
        let p = write("both", "-c public\n", 0o600);
        let mut args = with_file(&p);
        args.communities = vec!["x".into()];
        assert!(args.credentials().unwrap_err().contains("not both"));
    }
}
