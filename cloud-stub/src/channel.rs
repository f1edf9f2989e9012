//! The push channel's cloud side: an agent's `listen` is held until a task
//! for it exists or its wait ends. Each held request parks on its agent's
//! [`Notify`]; a watcher looks for new tasks in the database a few times a
//! second (tasks are also made by `dca-cloud task create`, another process)
//! and wakes their agents. An idle channel costs one connection and one
//! parked task: no thread, no timer per agent beyond the wait itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// How often the watcher looks for new tasks: the most a task waits in the
/// database before its agent is woken.
pub const WATCH_EVERY: Duration = Duration::from_millis(100);

/// The agents' wake-up calls, by agent id. Entries are weak: a channel that
/// ends drops its [`Notify`], and housekeeping forgets the entry.
#[derive(Debug, Default)]
pub struct Channels {
    waiting: Mutex<HashMap<String, Weak<Notify>>>,
    /// The newest task id the watcher has seen (`None`: not started).
    seen: Mutex<Option<i64>>,
}

impl Channels {
    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<Notify>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The wake-up call of `agent`, shared by its held requests, which
    /// register for it (`Notified::enable`) before they look for tasks, so
    /// a task made in between still wakes them.
    pub fn listener(&self, agent: &str) -> Arc<Notify> {
        let mut waiting = self.waiting();
        if let Some(n) = waiting.get(agent).and_then(Weak::upgrade) {
            return n;
        }
        let n = Arc::new(Notify::new());
        waiting.insert(agent.to_string(), Arc::downgrade(&n));
        n
    }

    /// Wakes every held request of `agent`: all of them, since one may be
    /// an orphan whose connection is gone (the cloud learns that only when
    /// it answers), and a single wake-up could go to it.
    pub fn wake(&self, agent: &str) {
        if let Some(n) = self.waiting().get(agent).and_then(Weak::upgrade) {
            n.notify_waiters();
        }
    }

    /// How many agents hold a channel now.
    pub fn held(&self) -> usize {
        self.waiting()
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// Forgets the entries of channels that ended.
    pub fn tidy(&self) {
        self.waiting().retain(|_, w| w.strong_count() > 0);
    }

    /// One look for new tasks, through `newest` (the newest id when first
    /// called) and `after` (the agents of tasks made after an id, and the
    /// newest id among them): wakes those agents.
    pub fn look<E>(
        &self,
        newest: impl FnOnce() -> Result<i64, E>,
        after: impl FnOnce(i64) -> Result<(Vec<String>, i64), E>,
    ) -> Result<usize, E> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let Some(from) = *seen else {
            *seen = Some(newest()?);
            return Ok(0);
        };
        let (agents, to) = after(from)?;
        *seen = Some(to);
        for a in &agents {
            self.wake(a);
        }
        Ok(agents.len())
    }
}

/// The agent id of a Bearer credential (`Bearer <agent id>:<secret>`), as
/// the request's credentials were already checked.
pub fn agent_of(authorization: &str) -> Option<&str> {
    authorization
        .strip_prefix("Bearer ")?
        .trim()
        .split_once(':')
        .map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_made_before_the_wait_begins_still_wakes_it() {
        let c = Channels::default();
        let n = c.listener("a1");
        {
            // Registered first, as `held` does, then the wake-up comes
            // between the look for tasks and the wait.
            let live = n.notified();
            tokio::pin!(live);
            live.as_mut().enable();
            let orphan = n.notified();
            tokio::pin!(orphan);
            orphan.as_mut().enable();
            c.wake("a1");
            tokio::time::timeout(Duration::from_secs(5), live)
                .await
                .expect("the wake-up reached the live request");
            tokio::time::timeout(Duration::from_secs(5), orphan)
                .await
                .expect("and the orphan, which cannot take it from the other");
        }
        assert_eq!(c.held(), 1);
        drop(n);
        c.tidy();
        assert_eq!(c.held(), 0);
        // Nobody listens: nothing kept, nothing grows.
        c.wake("a1");
        assert!(c.waiting().is_empty());
    }

    #[test]
    fn the_watcher_starts_at_the_newest_task_and_wakes_each_agent_once() {
        let c = Channels::default();
        let n1 = c.listener("a1");
        let woken = c
            .look(|| Ok::<_, ()>(41), |_| unreachable!("first look"))
            .unwrap();
        assert_eq!(woken, 0, "older tasks were there before anyone listened");
        let woken = c
            .look(
                || unreachable!(),
                |from| {
                    assert_eq!(from, 41);
                    Ok::<_, ()>((vec!["a1".into(), "a2".into()], 43))
                },
            )
            .unwrap();
        assert_eq!(woken, 2);
        let woken = c
            .look(
                || unreachable!(),
                |from| {
                    assert_eq!(from, 43);
                    Ok::<_, ()>((vec![], 43))
                },
            )
            .unwrap();
        assert_eq!(woken, 0);
        drop(n1);
    }

    #[test]
    fn the_agent_id_is_read_from_bearer_credentials_only() {
        assert_eq!(agent_of("Bearer agt_1:s3cret"), Some("agt_1"));
        assert_eq!(agent_of("Basic agt_1:s3cret"), None);
        assert_eq!(agent_of("Bearer nocolon"), None);
    }
}
