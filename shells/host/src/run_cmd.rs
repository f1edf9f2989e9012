//! `dca run TARGET...`: the agent as a service. Collects on a schedule (the
//! cloud's `set_schedule`, else `--interval`), delivers after each
//! collection, and between collections calls the cloud back for tasks. When
//! the cloud is unreachable the readings stay in the outbox and delivery is
//! retried with a growing delay, without collecting more often than the
//! schedule says. SIGINT or SIGTERM (Ctrl-C on Windows) stops it between
//! rounds.

use crate::cloud_session::Clocks;
use crate::push_cmd::{self, PushArgs};
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    push: PushArgs,
    /// Seconds between collections while the cloud has set no schedule.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    interval: u64,
    /// Seconds between calls to the cloud for tasks, between collections.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    task_interval: u64,
}

/// Set by a signal; waits end early when it is.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Stops on SIGINT, SIGTERM or SIGHUP (Ctrl-C or a service stop on
    /// Windows).
    fn install() -> Result<Arc<Stop>, ctrlc::Error> {
        let stop = Arc::new(Stop::default());
        let s = stop.clone();
        ctrlc::set_handler(move || {
            *s.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
            s.wake.notify_all();
        })?;
        Ok(stop)
    }

    /// Waits `d` or until stopped; true when stopped.
    fn wait(&self, d: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }
}

/// Delay before retrying an unreachable cloud: 30 s doubling to 15 min.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(30u64.saturating_mul(1 << failures.min(5)).min(900))
}

pub fn run(args: &RunArgs) -> ExitCode {
    let stop = match Stop::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dca run: cannot handle signals: {e}");
            return ExitCode::from(1);
        }
    };
    let clocks = Clocks::new();
    let mut next_collection = Instant::now();
    let mut failures = 0u32;
    eprintln!("dca run: started");
    loop {
        let now = Instant::now();
        let collect = now >= next_collection;
        if collect {
            let every = push_cmd::schedule(&args.push).unwrap_or(args.interval);
            next_collection = now + Duration::from_secs(every);
        }
        let wait = match push_cmd::round(&args.push, &clocks, collect) {
            Ok(line) => {
                failures = 0;
                println!("dca run: {line}");
                Duration::from_secs(args.task_interval)
            }
            Err(f) if f.is_transient() => {
                eprintln!("dca run: {}", f.message);
                failures = failures.saturating_add(1);
                backoff(failures - 1)
            }
            Err(f) => {
                eprintln!("dca run: {}", f.message);
                return ExitCode::from(f.code);
            }
        };
        // Wake for the next collection or call, whichever is first.
        let until_collection = next_collection.saturating_duration_since(Instant::now());
        if stop.wait(wait.min(until_collection)) {
            eprintln!("dca run: stopped");
            return ExitCode::SUCCESS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_cap() {
        let secs: Vec<u64> = (0..8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 900, 900, 900]);
    }
}
