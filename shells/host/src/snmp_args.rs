//! The SNMP security options of `dca scan`, `poll`, `push` and `run`, in
//! net-snmp's words (`-v -c -u -l -a -A -x -X -n -e`), turned into the
//! core's credential sets.

use dca_core::poll::Credentials;
use dca_core::snmp::Version;
use dca_core::snmp::usm::{AuthProtocol, PrivProtocol, SecurityLevel, User};

#[derive(clap::Args, Clone, Debug, Default)]
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
}

impl SnmpArgs {
    /// The credential sets to try, in order; an error names the option.
    pub fn credentials(&self) -> Result<Vec<Credentials>, String> {
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
            Some(l) => SecurityLevel::parse(l).ok_or_else(|| {
                format!("-l {l}: the level is noAuthNoPriv, authNoPriv or authPriv")
            })?,
            None if self.priv_password.is_some() => SecurityLevel::AuthPriv,
            None if self.auth_password.is_some() => SecurityLevel::AuthNoPriv,
            None => SecurityLevel::NoAuthNoPriv,
        };
        let mut user = User::new(name.as_bytes()).map_err(|e| format!("-u: {}", e.describe()))?;
        if level >= SecurityLevel::AuthNoPriv {
            let proto = match self.auth_protocol.as_deref() {
                None => AuthProtocol::Md5,
                Some(a) => AuthProtocol::parse(a).ok_or_else(|| {
                    format!(
                        "-a {a}: the protocol is MD5, SHA, SHA-224, SHA-256, SHA-384 or SHA-512"
                    )
                })?,
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
                Some(x) => PrivProtocol::parse(x).ok_or_else(|| {
                    format!(
                        "-x {x}: the protocol is DES, AES, AES-192, AES-256, AES-192C or AES-256C"
                    )
                })?,
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
