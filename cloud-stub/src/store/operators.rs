//! The people of the cloud: operator accounts, each with a role, a
//! password kept as an Argon2id hash and a TOTP second factor.
//!
//! Argon2id with 19 MiB of memory, 2 passes and 1 lane (OWASP's first
//! recommended setting): about 30 ms per check on this project's 2-core
//! machine, and a guess costs an attacker with the database as much memory.
//! The TOTP secret is kept as it must be (the cloud computes codes from
//! it); the database is the cloud's own and never leaves it.

use super::{Store, audit_in};
use crate::totp::Totp;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rusqlite::{OptionalExtension, params};

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sees every customer's devices and may open a device's web page.
    Dealer,
    /// Sees, and nothing more.
    Viewer,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "dealer" => Some(Role::Dealer),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Role::Dealer => "dealer",
            Role::Viewer => "viewer",
        }
    }
}

/// An operator as listed (never the secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    pub role: Role,
    pub created_ms: i64,
}

/// What `operator add` hands over once: the password and the second
/// factor's secret, which the cloud never shows again.
#[derive(Debug)]
pub struct NewOperator {
    pub password: String,
    pub totp: Totp,
}

/// The Argon2id instance of every hash this cloud makes.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .unwrap_or_else(|_| unreachable!("OWASP's parameters are valid"));
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of `password` with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `stored` (whatever Argon2
/// parameters it was made with).
pub fn password_matches(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// A name people can type and logs can show.
fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "operator name {name:?}: 1 to 64 letters, digits, '.', '_', '-' or '@'"
        ))
    }
}

impl Store {
    /// Adds an operator with a generated password and TOTP secret.
    pub fn add_operator(&mut self, name: &str, role: Role) -> Result<NewOperator, String> {
        check_name(name)?;
        // 128 bits, in words a person can copy: 32 hex digits.
        let password = self.random_hex(16);
        let totp = Totp::generate()?;
        let hash = hash_password(&password)?;
        let now = self.now();
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let added = tx
            .execute(
                "INSERT OR IGNORE INTO operators (name, role, password_hash, totp_secret, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, role.id(), hash, totp.secret_base32(), now],
            )
            .map_err(|e| e.to_string())?;
        if added == 0 {
            return Err(format!("an operator named {name} exists already"));
        }
        audit_in(
            &tx,
            now,
            None,
            None,
            "cli",
            "operator_added",
            &format!("{name} ({})", role.id()),
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        Ok(NewOperator { password, totp })
    }

    pub fn operators(&self) -> Result<Vec<Operator>, String> {
        let mut q = self
            .conn
            .prepare("SELECT name, role, created_ms FROM operators ORDER BY name")
            .map_err(|e| e.to_string())?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for row in rows {
            let (name, role, created_ms) = row.map_err(|e| e.to_string())?;
            let role =
                Role::parse(&role).ok_or_else(|| format!("operator {name}: role {role:?}"))?;
            out.push(Operator {
                name,
                role,
                created_ms,
            });
        }
        Ok(out)
    }

    pub fn remove_operator(&mut self, name: &str) -> Result<(), String> {
        let now = self.now();
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let n = tx
            .execute("DELETE FROM operators WHERE name = ?1", params![name])
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("no operator named {name}"));
        }
        audit_in(&tx, now, None, None, "cli", "operator_removed", name)
            .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())
    }

    /// Checks a sign-in: the password, then the TOTP code, which is used up
    /// (a code is taken once). `None` for any refusal, whichever factor
    /// failed: the caller says "wrong name, password or code".
    pub fn sign_in(
        &mut self,
        name: &str,
        password: &str,
        code: &str,
        unix_secs: u64,
    ) -> Result<Option<Role>, String> {
        let row: Option<(String, String, String, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT role, password_hash, totp_secret, totp_last_step FROM operators WHERE name = ?1",
                params![name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(|e| e.to_string())?;
        let Some((role, hash, secret, last)) = row else {
            // As slow as a known name: the time taken says nothing.
            let _ = password_matches(password, dummy_hash());
            return Ok(None);
        };
        if !password_matches(password, &hash) {
            return Ok(None);
        }
        let totp = Totp::from_base32(&secret)?;
        let last = last.and_then(|l| u64::try_from(l).ok());
        let Some(step) = totp.verify(code, unix_secs, last) else {
            return Ok(None);
        };
        self.conn
            .execute(
                "UPDATE operators SET totp_last_step = ?1 WHERE name = ?2",
                params![i64::try_from(step).unwrap_or(i64::MAX), name],
            )
            .map_err(|e| e.to_string())?;
        Ok(Role::parse(&role))
    }
}

/// A hash of a password nobody has, checked when the name is unknown.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no operator has this password").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        let dir = std::env::temp_dir().join(format!("dca-cloud-operators-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Store::open(&dir.join("cloud.db")).unwrap()
    }

    #[test]
    fn hashes_are_argon2id_with_the_stated_parameters() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(password_matches("correct horse", &h));
        assert!(!password_matches("correct horse!", &h));
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
        assert!(PasswordHash::new(dummy_hash()).is_ok());
    }

    #[test]
    fn an_operator_signs_in_with_password_and_a_fresh_code() {
        let mut s = store();
        let new = s.add_operator("jo@dealer.example", Role::Dealer).unwrap();
        assert!(s.add_operator("jo@dealer.example", Role::Viewer).is_err());
        assert!(s.add_operator("bad name", Role::Viewer).is_err());
        s.add_operator("vi", Role::Viewer).unwrap();
        let names: Vec<_> = s
            .operators()
            .unwrap()
            .into_iter()
            .map(|o| (o.name, o.role))
            .collect();
        assert_eq!(
            names,
            [
                ("jo@dealer.example".to_string(), Role::Dealer),
                ("vi".to_string(), Role::Viewer)
            ]
        );
        let t = 1_800_000_000;
        let code = new.totp.code_at(t);
        let jo = "jo@dealer.example";
        assert_eq!(s.sign_in(jo, "wrong", &code, t).unwrap(), None);
        assert_eq!(s.sign_in(jo, &new.password, "000000", t).unwrap(), None);
        assert_eq!(s.sign_in("nobody", &new.password, &code, t).unwrap(), None);
        assert_eq!(
            s.sign_in(jo, &new.password, &code, t).unwrap(),
            Some(Role::Dealer)
        );
        // The same code again: refused.
        assert_eq!(s.sign_in(jo, &new.password, &code, t).unwrap(), None);
        s.remove_operator(jo).unwrap();
        assert!(s.remove_operator(jo).is_err());
        assert_eq!(
            s.sign_in(jo, &new.password, &new.totp.code_at(t + 30), t + 30)
                .unwrap(),
            None
        );
    }
}
