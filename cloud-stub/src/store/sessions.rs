//! Operators' sessions on the web pages: a random token in a cookie, kept
//! here only as its SHA-256 (a copy of the database opens no session), with
//! the token that the session's forms must carry back (CSRF).
//!
//! A session ends after [`SESSION_IDLE_MS`] without a request, after
//! [`SESSION_LIFETIME_MS`] in any case, at sign-out, and when its operator
//! is removed. Times are the store's clock ([`Store::now`]), so that tests
//! and the simulator can move it.

use super::Store;
use super::operators::Role;
use crate::secret;
use rusqlite::{OptionalExtension, params};

/// A session unused this long is over.
pub const SESSION_IDLE_MS: i64 = 30 * 60 * 1000;
/// A session is over this long after its sign-in, used or not.
pub const SESSION_LIFETIME_MS: i64 = 12 * 3600 * 1000;
/// A session's last use is written at most this often: every request of a
/// page would otherwise be a synced write. The idle timeout may come this
/// much early.
const TOUCH_EVERY_MS: i64 = 60 * 1000;

/// What a sign-in hands to the browser: the cookie's token and the forms'
/// token.
pub struct NewSession {
    pub token: String,
    pub csrf: String,
}

/// Never shows the tokens.
impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession").finish_non_exhaustive()
    }
}

/// A live session: who is signed in, and what their forms must carry.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub operator_id: i64,
    pub operator: String,
    pub role: Role,
    pub dealer_id: i64,
    pub dealer: String,
    /// The token every state-changing form of this session carries.
    pub csrf: String,
}

/// Never shows the form token.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("operator", &self.operator)
            .field("role", &self.role)
            .field("dealer", &self.dealer)
            .finish_non_exhaustive()
    }
}

/// Whether `token` has the shape of the tokens this store makes: anything
/// else is refused before it costs a hash and a query.
fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Store {
    /// Opens a session for operator `operator_id` (whose sign-in was just
    /// checked). Sessions over by now, anyone's, are deleted on the way:
    /// the table stays small without a sweeper.
    pub fn create_session(&mut self, operator_id: i64) -> Result<NewSession, String> {
        let token = self.random_hex(32);
        let csrf = self.random_hex(32);
        let now = self.now();
        let fail = |e: rusqlite::Error| format!("cannot open a session: {e}");
        let tx = self.conn.transaction().map_err(fail)?;
        tx.execute(
            "DELETE FROM operator_sessions WHERE last_ms <= ?1 OR created_ms <= ?2",
            params![
                now.saturating_sub(SESSION_IDLE_MS),
                now.saturating_sub(SESSION_LIFETIME_MS)
            ],
        )
        .map_err(fail)?;
        tx.execute(
            "INSERT INTO operator_sessions (token_hash, operator_id, csrf, created_ms, last_ms)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![secret::hash(&token), operator_id, csrf, now],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(NewSession { token, csrf })
    }

    /// The live session of cookie token `token`, its last use now; `None`
    /// when there is none. A session found over is deleted.
    pub fn session(&mut self, token: &str) -> Result<Option<Session>, String> {
        if !well_formed(token) {
            return Ok(None);
        }
        let hash = secret::hash(token);
        let now = self.now();
        let fail = |e: rusqlite::Error| format!("cannot read a session: {e}");
        type Row = (i64, String, String, i64, String, String, i64, i64);
        let row: Option<Row> = self
            .conn
            .query_row(
                "SELECT s.operator_id, o.name, o.role, o.dealer_id, d.name, s.csrf, s.created_ms, s.last_ms
                 FROM operator_sessions s JOIN operators o ON o.id = s.operator_id
                 JOIN dealers d ON d.id = o.dealer_id WHERE s.token_hash = ?1",
                [&hash],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                },
            )
            .optional()
            .map_err(fail)?;
        let Some((operator_id, operator, role, dealer_id, dealer, csrf, created, last)) = row
        else {
            return Ok(None);
        };
        let idle = now.saturating_sub(last) >= SESSION_IDLE_MS;
        let old = now.saturating_sub(created) >= SESSION_LIFETIME_MS;
        let role = Role::parse(&role);
        let Some(role) = role.filter(|_| !idle && !old) else {
            self.conn
                .execute(
                    "DELETE FROM operator_sessions WHERE token_hash = ?1",
                    [&hash],
                )
                .map_err(fail)?;
            return Ok(None);
        };
        if now.saturating_sub(last) >= TOUCH_EVERY_MS {
            self.conn
                .execute(
                    "UPDATE operator_sessions SET last_ms = ?1 WHERE token_hash = ?2",
                    params![now, hash],
                )
                .map_err(fail)?;
        }
        Ok(Some(Session {
            operator_id,
            operator,
            role,
            dealer_id,
            dealer,
            csrf,
        }))
    }

    /// Ends the session of cookie token `token`; whether there was one.
    pub fn end_session(&mut self, token: &str) -> Result<bool, String> {
        if !well_formed(token) {
            return Ok(false);
        }
        let n = self
            .conn
            .execute(
                "DELETE FROM operator_sessions WHERE token_hash = ?1",
                [secret::hash(token)],
            )
            .map_err(|e| format!("cannot end a session: {e}"))?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn store(name: &str) -> (Store, Arc<AtomicI64>) {
        let dir =
            std::env::temp_dir().join(format!("dca-cloud-sessions-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut store = Store::open(&dir.join("cloud.db")).unwrap();
        let clock = Arc::new(AtomicI64::new(1_800_000_000_000));
        let c = clock.clone();
        store.set_clock(move || c.load(Ordering::SeqCst));
        (store, clock)
    }

    fn operator(store: &mut Store, name: &str) -> i64 {
        store.add_operator(name, Role::Viewer, "north").unwrap();
        store.sign_in_candidate(name).unwrap().unwrap().id
    }

    #[test]
    fn a_session_is_kept_as_a_hash_and_names_its_operator() {
        let (mut store, _) = store("hash");
        let id = operator(&mut store, "jo");
        let new = store.create_session(id).unwrap();
        assert_eq!(new.token.len(), 64);
        assert_ne!(new.token, new.csrf);
        let stored: Vec<u8> = store
            .connection()
            .query_row("SELECT token_hash FROM operator_sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, secret::hash(&new.token));
        let s = store.session(&new.token).unwrap().unwrap();
        assert_eq!(
            (s.operator.as_str(), s.role, s.dealer.as_str(), &s.csrf),
            ("jo", Role::Viewer, "north", &new.csrf)
        );
        for wrong in ["", "zz", &"0".repeat(64), &new.csrf] {
            assert!(store.session(wrong).unwrap().is_none(), "{wrong}");
        }
        assert!(!format!("{s:?}{new:?}").contains(&new.token));
        assert!(!format!("{s:?}").contains(&new.csrf));
    }

    #[test]
    fn a_session_ends_idle_old_signed_out_or_with_its_operator() {
        let (mut store, clock) = store("ends");
        let id = operator(&mut store, "jo");
        let minute = 60 * 1000;
        let rows = |store: &Store| -> i64 {
            store
                .connection()
                .query_row("SELECT COUNT(*) FROM operator_sessions", [], |r| r.get(0))
                .unwrap()
        };
        // Used every 29 minutes it lives on, up to its lifetime.
        let used = store.create_session(id).unwrap();
        let start = clock.load(Ordering::SeqCst);
        let mut at = start;
        while at + 29 * minute < start + SESSION_LIFETIME_MS {
            at += 29 * minute;
            clock.store(at, Ordering::SeqCst);
            assert!(store.session(&used.token).unwrap().is_some(), "at {at}");
        }
        clock.store(start + SESSION_LIFETIME_MS, Ordering::SeqCst);
        assert!(store.session(&used.token).unwrap().is_none(), "too old");
        assert_eq!(rows(&store), 0, "deleted when found over");
        // Idle past the timeout: over.
        let idle = store.create_session(id).unwrap();
        clock.fetch_add(SESSION_IDLE_MS, Ordering::SeqCst);
        assert!(store.session(&idle.token).unwrap().is_none());
        // Signed out.
        let out = store.create_session(id).unwrap();
        assert!(store.end_session(&out.token).unwrap());
        assert!(!store.end_session(&out.token).unwrap());
        assert!(store.session(&out.token).unwrap().is_none());
        // Sessions over are swept at the next sign-in.
        let _left = store.create_session(id).unwrap();
        clock.fetch_add(SESSION_IDLE_MS, Ordering::SeqCst);
        let live = store.create_session(id).unwrap();
        assert_eq!(rows(&store), 1);
        // The operator removed: its sessions end.
        store.remove_operator("jo").unwrap();
        assert!(store.session(&live.token).unwrap().is_none());
        assert_eq!(rows(&store), 0);
    }
}
