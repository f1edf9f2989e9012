//! What wakes an agent's push channel: the tasks made since the last look,
//! by this process (an operator's page) or another (`dca-cloud task
//! create` on the same database).

use super::Store;
use rusqlite::params;

impl Store {
    /// The newest task's id (0: none yet): where watching starts.
    pub fn newest_task_id(&self) -> Result<i64, String> {
        self.conn
            .query_row("SELECT COALESCE(MAX(id), 0) FROM tasks", [], |r| r.get(0))
            .map_err(|e| format!("reading the newest task: {e}"))
    }

    /// The agents of the tasks made after task `after`, each once, and the
    /// newest id among those tasks (`after` when none). Task ids only grow
    /// (SQLite's rowid with no deletions of the newest), so one indexed
    /// range read per look, however many agents listen.
    pub fn agents_with_tasks_after(&self, after: i64) -> Result<(Vec<String>, i64), String> {
        let mut q = self
            .conn
            .prepare_cached("SELECT id, agent_id FROM tasks WHERE id > ?1 ORDER BY id")
            .map_err(|e| e.to_string())?;
        let rows = q
            .query_map(params![after], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| e.to_string())?;
        let mut agents = Vec::new();
        let mut newest = after;
        for row in rows {
            let (id, agent) = row.map_err(|e| e.to_string())?;
            newest = newest.max(id);
            if !agents.contains(&agent) {
                agents.push(agent);
            }
        }
        Ok((agents, newest))
    }
}
