//! The virtual clock and the event queue: events run in the order of their
//! time, and events of the same time in the order they were scheduled (an
//! insertion counter breaks ties), so one seed always gives one order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Virtual milliseconds since the simulation started.
pub type Millis = u64;

struct Item<E> {
    at: Millis,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Item<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Item<E> {}

impl<E> PartialOrd for Item<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Item<E> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Events of type `E` ordered by (time, insertion counter).
pub struct Scheduler<E> {
    now: Millis,
    seq: u64,
    queue: BinaryHeap<Reverse<Item<E>>>,
}

impl<E> std::fmt::Debug for Scheduler<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("now", &self.now)
            .field("queued", &self.queue.len())
            .finish()
    }
}

impl<E> Default for Scheduler<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> Scheduler<E> {
    pub fn new() -> Self {
        Scheduler {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
        }
    }

    /// The time of the event being run (or of the last one).
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Schedules `event` at `at` (never in the past: then it runs now).
    pub fn at(&mut self, at: Millis, event: E) {
        self.seq += 1;
        self.queue.push(Reverse(Item {
            at: at.max(self.now),
            seq: self.seq,
            event,
        }));
    }

    /// Schedules `event` `delay` ms from now.
    pub fn after(&mut self, delay: Millis, event: E) {
        self.at(self.now.saturating_add(delay), event);
    }

    /// The next event, advancing the clock to its time.
    pub fn pop(&mut self) -> Option<E> {
        let Reverse(item) = self.queue.pop()?;
        self.now = item.at;
        Some(item.event)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_then_insertion_order() {
        let mut s = Scheduler::new();
        s.at(10, "b");
        s.at(5, "a");
        s.at(10, "c");
        s.at(5, "a2");
        let order: Vec<_> = std::iter::from_fn(|| s.pop().map(|e| (s.now(), e))).collect();
        assert_eq!(order, [(5, "a"), (5, "a2"), (10, "b"), (10, "c")]);
    }
}
