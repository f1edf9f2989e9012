//! Device Web Access in the database: the sessions operators open (who,
//! which device, through which agent, until when, how they ended) and the
//! access log of every request (relayed or refused), shown on the device's
//! page. The entry key is kept as a SHA-256, like every secret here.

use super::{Refusal, Store, audit_in};
use dca_core::sync::message::capability;
use dca_core::sync::web_access::{self, MAX_TTL};
use rusqlite::{OptionalExtension, params};

/// The tables, created with the rest of the schema.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS web_sessions (
    id INTEGER PRIMARY KEY,
    operator TEXT NOT NULL,
    device_id INTEGER NOT NULL REFERENCES devices(id),
    agent_id TEXT NOT NULL REFERENCES agents(id),
    target TEXT NOT NULL,
    serial TEXT NOT NULL,
    key_hash BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    closed_ms INTEGER,
    close_reason TEXT
);
CREATE TABLE IF NOT EXISTS web_requests (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES web_sessions(id),
    at_ms INTEGER NOT NULL,
    operator TEXT NOT NULL,
    device_id INTEGER NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    refused TEXT
);
CREATE INDEX IF NOT EXISTS web_requests_by_device ON web_requests (device_id, id);
";

/// A session just opened: what the cloud needs to serve it.
#[derive(Debug, Clone)]
pub struct OpenedWeb {
    pub id: u64,
    /// The one-time entry key (shown once, in the operator's redirect).
    pub key: String,
    pub device_id: i64,
    pub agent_id: String,
    /// The device's web server as the agent will reach it.
    pub target: String,
    /// Over TLS (the device's own certificate, self-signed on most
    /// printers) or plain HTTP.
    pub https: bool,
    pub serial: String,
    pub expires_ms: i64,
    pub ttl_s: u64,
}

/// One line of a device's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebRequest {
    pub session: u64,
    pub at_ms: i64,
    pub operator: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub bytes: u64,
    pub refused: Option<String>,
}

impl OpenedWeb {
    /// "https" or "http", as the agent's task and the logs say it.
    pub fn scheme(&self) -> &'static str {
        web_access::scheme(self.https)
    }
}

impl Store {
    /// Opens a session on `device_id` for `operator` of dealer `dealer_id`
    /// (a device of another dealer's customer is "no such device"), with
    /// the device's web server on `port` (over TLS with `https`), for
    /// `ttl_s` seconds; [`Store::queue_open_web`] then tells the agent that
    /// last reported the device.
    pub fn open_web_session(
        &mut self,
        operator: &str,
        dealer_id: i64,
        device_id: i64,
        port: u16,
        https: bool,
        ttl_s: u64,
    ) -> Result<OpenedWeb, Refusal> {
        let row: Option<(String, String, String, i64, u32)> = self
            .conn
            .query_row(
                "SELECT d.address, d.serial, d.agent_id, d.customer_id, a.capabilities
                 FROM devices d JOIN customers c ON c.id = d.customer_id
                 JOIN agents a ON a.id = d.agent_id
                 WHERE d.id = ?1 AND c.dealer_id = ?2",
                params![device_id, dealer_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((address, serial, agent, customer, caps)) = row else {
            return Err(Refusal::new(404, format!("no device {device_id}")));
        };
        if caps & capability::WEB_ACCESS == 0 {
            return Err(Refusal::new(
                409,
                format!("agent {agent} does not relay web pages (an older version): upgrade it"),
            ));
        }
        if serial.trim().is_empty() {
            return Err(Refusal::new(
                409,
                "the device reports no serial number, so its identity cannot be checked",
            ));
        }
        // The serial travels in the agent's task: one with the task's
        // separators or control characters could add fields to it.
        if !dca_core::sync::web_access::serial_allowed(&serial) {
            return Err(Refusal::new(
                409,
                format!("the device's serial {serial:?} cannot name a web access session"),
            ));
        }
        let ip: std::net::IpAddr = address.parse().map_err(|_| {
            Refusal::new(
                409,
                format!("the device's address {address:?} is not an IP address"),
            )
        })?;
        let target = std::net::SocketAddr::new(ip, port).to_string();
        let ttl_s = ttl_s.clamp(60, MAX_TTL.millis() / 1000);
        let key = self.random_hex(32);
        let now = self.now();
        let expires_ms = now.saturating_add(i64::try_from(ttl_s * 1000).unwrap_or(i64::MAX));
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO web_sessions (operator, device_id, agent_id, target, serial, key_hash,
                                       created_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                operator,
                device_id,
                agent,
                target,
                serial,
                crate::secret::hash(&key),
                now,
                expires_ms
            ],
        )?;
        let id = tx.last_insert_rowid();
        audit_in(
            &tx,
            now,
            Some(&agent),
            Some(customer),
            operator,
            "web_session_opened",
            &format!(
                "session {id}: {operator} opened device {device_id} ({serial}) at {}://{target} for {ttl_s} s",
                web_access::scheme(https)
            ),
        )?;
        tx.commit()?;
        Ok(OpenedWeb {
            id: u64::try_from(id).unwrap_or(0),
            key,
            device_id,
            agent_id: agent,
            target,
            https,
            serial,
            expires_ms,
            ttl_s,
        })
    }

    /// Queues `open_web` for the session's agent: once its entry point is
    /// open, so the agent's first `relay` finds the session.
    pub fn queue_open_web(&self, o: &OpenedWeb) -> Result<u64, String> {
        let arg = format!(
            "session={};target={};scheme={};serial={};ttl={}",
            o.id,
            o.target,
            o.scheme(),
            o.serial,
            o.ttl_s
        );
        self.create_task(&o.agent_id, "open_web", &arg)
    }

    /// Marks a closed session's `open_web` task done, if the agent has not
    /// taken it yet: an agent that comes back later is not handed it.
    pub fn drop_open_web_task(&self, id: u64) -> Result<(), String> {
        let now = self.now();
        self.conn
            .execute(
                "UPDATE tasks SET done_ms = ?1, ok = 0, detail = 'the session closed first'
                 WHERE kind = 'open_web' AND done_ms IS NULL AND delivered_ms IS NULL
                   AND arg LIKE ?2",
                params![now, format!("session={id};%")],
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The session an `open_web` task opened, if `task` is one.
    pub fn web_session_of_task(&self, task: u64) -> Option<u64> {
        let arg: String = self
            .conn
            .query_row(
                "SELECT arg FROM tasks WHERE id = ?1 AND kind = 'open_web'",
                params![task as i64],
                |r| r.get(0),
            )
            .optional()
            .ok()??;
        arg.split(';')
            .find_map(|f| f.trim().strip_prefix("session="))
            .and_then(|v| v.parse().ok())
    }

    /// Ends a session (idempotent: the first reason stays).
    pub fn close_web_session(&mut self, id: u64, reason: &str) -> Result<(), String> {
        let now = self.now();
        let n = self
            .conn
            .execute(
                "UPDATE web_sessions SET closed_ms = ?1, close_reason = ?2
                 WHERE id = ?3 AND closed_ms IS NULL",
                params![now, reason, id as i64],
            )
            .map_err(|e| e.to_string())?;
        if n > 0 {
            self.audit(
                None,
                None,
                "cloud",
                "web_session_closed",
                &format!("session {id}: {reason}"),
            );
        }
        self.drop_open_web_task(id)
    }

    /// Ends every session still open, as a cloud starting does: their
    /// entry points lived in the process that stopped (or crashed), so
    /// none can be reached, and their untaken `open_web` tasks must not
    /// start relays for them. Returns how many were ended.
    pub fn close_web_sessions_left_open(&mut self, reason: &str) -> Result<usize, String> {
        let open: Vec<i64> = self
            .conn
            .prepare("SELECT id FROM web_sessions WHERE closed_ms IS NULL ORDER BY id")
            .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| e.to_string())?;
        for id in &open {
            self.close_web_session(u64::try_from(*id).unwrap_or(0), reason)?;
        }
        Ok(open.len())
    }

    /// Writes one line of the access log.
    pub fn log_web_request(&self, device_id: i64, r: &WebRequest) -> Result<(), String> {
        self.conn
            .execute(
                "INSERT INTO web_requests (session_id, at_ms, operator, device_id, method, path,
                                           status, bytes, refused)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    r.session as i64,
                    r.at_ms,
                    r.operator,
                    device_id,
                    r.method,
                    r.path,
                    r.status,
                    i64::try_from(r.bytes).unwrap_or(i64::MAX),
                    r.refused
                ],
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// A device's access log, newest first, `limit` lines at most.
    pub fn web_requests(&self, device_id: i64, limit: usize) -> Result<Vec<WebRequest>, String> {
        let mut q = self
            .conn
            .prepare(
                "SELECT session_id, at_ms, operator, method, path, status, bytes, refused
                 FROM web_requests WHERE device_id = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(|e| e.to_string())?;
        let rows = q
            .query_map(params![device_id, limit as i64], |r| {
                Ok(WebRequest {
                    session: r.get::<_, i64>(0)? as u64,
                    at_ms: r.get(1)?,
                    operator: r.get(2)?,
                    method: r.get(3)?,
                    path: r.get(4)?,
                    status: r.get::<_, i64>(5)? as u16,
                    bytes: r.get::<_, i64>(6)? as u64,
                    refused: r.get(7)?,
                })
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| e.to_string())
    }
}
