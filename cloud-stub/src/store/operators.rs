//! The people of the cloud: operator accounts, each of one dealer, with a
//! role, a password kept as an Argon2id hash and a TOTP second factor.
//!
//! A sign-in is three steps so that Argon2 never runs under the store's
//! lock (a few guesses would otherwise stall every agent's upload):
//! [`Store::sign_in_candidate`] reads the account, [`verify_sign_in`]
//! checks password and code without the store, and
//! [`Store::take_totp_step`] spends the code, compare-and-set, so that of
//! two sign-ins racing with one code only one passes.
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
    /// Sees its dealer's customers' devices and may open a device's web
    /// page.
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
    pub dealer: String,
    pub created_ms: i64,
}

/// An account as a sign-in reads it, under the store's lock; checked by
/// [`verify_sign_in`] without it.
pub struct Candidate {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub dealer: String,
    password_hash: String,
    totp_secret: String,
    totp_last_step: Option<u64>,
}

/// Never shows the hash or the secret.
impl std::fmt::Debug for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Candidate")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("dealer", &self.dealer)
            .finish_non_exhaustive()
    }
}

/// Checks `password`, then `code` at `unix_secs`, against `candidate`
/// (`None`: no such name) without the store: the TOTP step the code
/// belongs to when both hold, to be spent with [`Store::take_totp_step`].
/// Slow (Argon2) whatever the outcome, an unknown name included, so that
/// the time taken says nothing.
pub fn verify_sign_in(
    candidate: Option<&Candidate>,
    password: &str,
    code: &str,
    unix_secs: u64,
) -> Option<u64> {
    let Some(c) = candidate else {
        let _ = password_matches(password, dummy_hash());
        return None;
    };
    if !password_matches(password, &c.password_hash) {
        return None;
    }
    Totp::from_base32(&c.totp_secret)
        .ok()?
        .verify(code, unix_secs, c.totp_last_step)
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
    /// Adds an operator of `dealer` (created if new) with a generated
    /// password and TOTP secret.
    pub fn add_operator(
        &mut self,
        name: &str,
        role: Role,
        dealer: &str,
    ) -> Result<NewOperator, String> {
        check_name(name)?;
        // 128 bits, in words a person can copy: 32 hex digits.
        let password = self.random_hex(16);
        let totp = Totp::generate()?;
        let hash = hash_password(&password)?;
        let now = self.now();
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let dealer_id = Self::dealer_id(&tx, dealer, now)?;
        let added = tx
            .execute(
                "INSERT OR IGNORE INTO operators (name, role, password_hash, totp_secret, created_ms, dealer_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, role.id(), hash, totp.secret_base32(), now, dealer_id],
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
            &format!("{name} ({} of dealer {dealer})", role.id()),
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        Ok(NewOperator { password, totp })
    }

    pub fn operators(&self) -> Result<Vec<Operator>, String> {
        let mut q = self
            .conn
            .prepare(
                "SELECT o.name, o.role, d.name, o.created_ms FROM operators o
                 JOIN dealers d ON d.id = o.dealer_id ORDER BY o.name",
            )
            .map_err(|e| e.to_string())?;
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for row in rows {
            let (name, role, dealer, created_ms) = row.map_err(|e| e.to_string())?;
            let role =
                Role::parse(&role).ok_or_else(|| format!("operator {name}: role {role:?}"))?;
            out.push(Operator {
                name,
                role,
                dealer,
                created_ms,
            });
        }
        Ok(out)
    }

    /// The role and dealer of operator row `id`, if it still exists:
    /// asked on every request of a web access session, so one row, not
    /// the list.
    pub fn operator_standing(&self, id: i64) -> Result<Option<(Role, i64)>, String> {
        let row: Option<(String, i64)> = self
            .conn
            .query_row(
                "SELECT role, dealer_id FROM operators WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| e.to_string())?;
        row.map(|(r, dealer)| {
            Role::parse(&r)
                .map(|role| (role, dealer))
                .ok_or_else(|| format!("operator {id}: role {r:?}"))
        })
        .transpose()
    }

    /// Removes an operator and ends its sessions.
    pub fn remove_operator(&mut self, name: &str) -> Result<(), String> {
        let now = self.now();
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let sessions = tx
            .execute(
                "DELETE FROM operator_sessions WHERE operator_id IN (SELECT id FROM operators WHERE name = ?1)",
                params![name],
            )
            .map_err(|e| e.to_string())?;
        let n = tx
            .execute("DELETE FROM operators WHERE name = ?1", params![name])
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("no operator named {name}"));
        }
        audit_in(
            &tx,
            now,
            None,
            None,
            "cli",
            "operator_removed",
            &format!("{name} ({sessions} sessions ended)"),
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())
    }

    /// The account a sign-in as `name` checks, if there is one: the first
    /// step of a sign-in, the only one under the store's lock before the
    /// code is spent.
    pub fn sign_in_candidate(&self, name: &str) -> Result<Option<Candidate>, String> {
        let row: Option<(i64, String, String, String, String, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT o.id, o.role, d.name, o.password_hash, o.totp_secret, o.totp_last_step
                 FROM operators o JOIN dealers d ON d.id = o.dealer_id WHERE o.name = ?1",
                params![name],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| e.to_string())?;
        let Some((id, role, dealer, password_hash, totp_secret, last)) = row else {
            return Ok(None);
        };
        let role = Role::parse(&role).ok_or_else(|| format!("operator {name}: role {role:?}"))?;
        Ok(Some(Candidate {
            id,
            name: name.to_string(),
            role,
            dealer,
            password_hash,
            totp_secret,
            totp_last_step: last.and_then(|l| u64::try_from(l).ok()),
        }))
    }

    /// Spends TOTP step `step` of operator `operator_id`: true when it is
    /// later than the last one spent (and is now the last), false when
    /// that step or a later one was spent meanwhile (the same code used
    /// twice, perhaps by two sign-ins at once) or the operator is gone.
    pub fn take_totp_step(&mut self, operator_id: i64, step: u64) -> Result<bool, String> {
        let step = i64::try_from(step).map_err(|_| format!("TOTP step {step} out of range"))?;
        let n = self
            .conn
            .execute(
                "UPDATE operators SET totp_last_step = ?1
                 WHERE id = ?2 AND (totp_last_step IS NULL OR totp_last_step < ?1)",
                params![step, operator_id],
            )
            .map_err(|e| e.to_string())?;
        Ok(n == 1)
    }

    /// Checks a sign-in: the password, then the TOTP code, which is used up
    /// (a code is taken once). `None` for any refusal, whichever factor
    /// failed: the caller says "wrong name, password or code". All three
    /// steps at once, for callers that hold the store alone (the server
    /// runs them apart, see the module's comment).
    pub fn sign_in(
        &mut self,
        name: &str,
        password: &str,
        code: &str,
        unix_secs: u64,
    ) -> Result<Option<Candidate>, String> {
        let candidate = self.sign_in_candidate(name)?;
        let Some(step) = verify_sign_in(candidate.as_ref(), password, code, unix_secs) else {
            return Ok(None);
        };
        match candidate {
            Some(c) if self.take_totp_step(c.id, step)? => Ok(Some(c)),
            _ => Ok(None),
        }
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

    fn store(name: &str) -> Store {
        let dir =
            std::env::temp_dir().join(format!("dca-cloud-operators-{name}-{}", std::process::id()));
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

    fn signed_in(c: Option<Candidate>) -> Option<(String, Role, String)> {
        c.map(|c| (c.name, c.role, c.dealer))
    }

    #[test]
    fn an_operator_signs_in_with_password_and_a_fresh_code() {
        let mut s = store("sign-in");
        let new = s
            .add_operator("jo@dealer.example", Role::Dealer, "north")
            .unwrap();
        assert!(
            s.add_operator("jo@dealer.example", Role::Viewer, "north")
                .is_err()
        );
        assert!(s.add_operator("bad name", Role::Viewer, "north").is_err());
        assert!(s.add_operator("ok", Role::Viewer, "<b>").is_err());
        s.add_operator("vi", Role::Viewer, "default").unwrap();
        let names: Vec<_> = s
            .operators()
            .unwrap()
            .into_iter()
            .map(|o| (o.name, o.role, o.dealer))
            .collect();
        assert_eq!(
            names,
            [
                (
                    "jo@dealer.example".to_string(),
                    Role::Dealer,
                    "north".to_string()
                ),
                ("vi".to_string(), Role::Viewer, "default".to_string())
            ]
        );
        let standing = |s: &Store, name: &str| {
            let id: i64 = s
                .connection()
                .query_row("SELECT id FROM operators WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .unwrap();
            s.operator_standing(id).unwrap().map(|(role, _)| role)
        };
        assert_eq!(standing(&s, "vi"), Some(Role::Viewer));
        assert_eq!(standing(&s, "jo@dealer.example"), Some(Role::Dealer));
        assert_eq!(s.operator_standing(9999), Ok(None));
        let t = 1_800_000_000;
        let code = new.totp.code_at(t);
        let jo = "jo@dealer.example";
        assert_eq!(
            s.sign_in(jo, "wrong", &code, t).unwrap().map(|c| c.id),
            None
        );
        assert!(s.sign_in(jo, &new.password, "000000", t).unwrap().is_none());
        assert!(s.sign_in(jo, &new.password, "", t).unwrap().is_none());
        assert!(
            s.sign_in("nobody", &new.password, &code, t)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            signed_in(s.sign_in(jo, &new.password, &code, t).unwrap()),
            Some((jo.to_string(), Role::Dealer, "north".to_string()))
        );
        // The same code again: refused.
        assert!(s.sign_in(jo, &new.password, &code, t).unwrap().is_none());
        s.remove_operator(jo).unwrap();
        assert!(s.remove_operator(jo).is_err());
        assert!(
            s.sign_in(jo, &new.password, &new.totp.code_at(t + 30), t + 30)
                .unwrap()
                .is_none()
        );
    }

    /// Two sign-ins with the same code, both verified before either spent
    /// it (the server verifies outside the store's lock): one passes.
    #[test]
    fn of_two_sign_ins_racing_with_one_code_one_passes() {
        let mut s = store("race");
        let new = s.add_operator("jo", Role::Viewer, "default").unwrap();
        let t = 1_800_000_000;
        let code = new.totp.code_at(t);
        let first = s.sign_in_candidate("jo").unwrap().unwrap();
        let second = s.sign_in_candidate("jo").unwrap().unwrap();
        let a = verify_sign_in(Some(&first), &new.password, &code, t).unwrap();
        let b = verify_sign_in(Some(&second), &new.password, &code, t).unwrap();
        assert_eq!(a, b);
        assert!(s.take_totp_step(first.id, a).unwrap());
        assert!(!s.take_totp_step(second.id, b).unwrap(), "spent already");
        // An earlier step, after a later one was spent: refused too.
        assert!(!s.take_totp_step(first.id, a - 1).unwrap());
        assert!(s.take_totp_step(first.id, a + 1).unwrap());
        assert!(verify_sign_in(None, &new.password, &code, t).is_none());
    }
}
