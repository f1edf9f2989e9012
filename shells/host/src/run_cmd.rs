//! `dca run TARGET...`: the agent as a service. The session (dca-core)
//! schedules collections (the cloud's `set_schedule`, else `--interval`),
//! rounds of delivery and task calls (`--task-interval`, or the cloud's
//! poll interval), and retries with backoff; this loop does what it says and
//! otherwise sleeps on a condition variable until the session's next timer
//! or a stop signal.
//!
//! Nothing that can heal stops it: an unreachable cloud, refused
//! credentials or version, a failing journal, a target that does not
//! resolve, a failed sweep are all logged and tried again. It exits on
//! SIGINT or SIGTERM (Ctrl-C or a service stop on Windows) with 0, and at
//! startup when it cannot start: 2 not enrolled or bad arguments, 1 the
//! state directory is in use by another dca (or unusable).

use crate::cloud_session::{AGENT_VERSION, Agent};
use crate::push_cmd::{PushArgs, setup_code};
use crate::sweep;
use dca_core::sync::session::Config;
use dca_core::time::Duration;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex};

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

/// Does what the session says until stopped: its timers, its requests, its
/// events; between them, waits on the stop signal until the next timer.
fn serve(agent: &mut Agent, stop: &Stop) {
    loop {
        let now = agent.now();
        if agent.session.poll_timeout().is_some_and(|t| t <= now.at) {
            agent.session.handle_timeout(now.at);
        }
        agent.drain();
        if stop.is_stopped() {
            break;
        }
        if agent.exchange() {
            continue;
        }
        // Nothing to send now; what the session said meanwhile comes first.
        if agent.drain().0 > 0 {
            continue;
        }
        let wait = agent
            .session
            .poll_timeout()
            .map_or(std::time::Duration::from_secs(3600), |t| {
                agent.clocks().until(t)
            });
        if stop.wait(wait) {
            break;
        }
    }
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

    fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits `d` or until stopped; true when stopped.
    fn wait(&self, d: std::time::Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }
}

pub fn run(args: &RunArgs) -> ExitCode {
    const NAME: &str = "dca run";
    let sweep_args = &args.push.sweep;
    if let Err(e) = sweep::check_syntax(&sweep_args.targets)
        .and_then(|()| sweep::check_syntax(&sweep_args.exclude))
    {
        eprintln!("{NAME}: bad target {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = sweep_args.snmp.credentials_cached() {
        eprintln!("{NAME}: {e}");
        return ExitCode::from(2);
    }
    let stop = match Stop::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{NAME}: cannot handle signals: {e}");
            return ExitCode::from(1);
        }
    };
    let mut cfg = Config::new(AGENT_VERSION);
    cfg.task_poll_every = Duration::from_secs(args.task_interval);
    let opened = Agent::open(args.push.dir(), args.push.options(NAME, false), |state| {
        // The cloud's schedule, once it has set one, wins over --interval.
        let every = state.schedule_s.unwrap_or(args.interval);
        cfg.collect_every = Some(Duration::from_secs(every));
        cfg
    });
    let mut agent = match opened {
        Ok(a) => a,
        Err(e) => {
            let (code, msg) = setup_code(&e);
            eprintln!("{NAME}: {msg}");
            return ExitCode::from(code);
        }
    };
    let every = agent
        .session
        .config()
        .collect_every
        .map_or(0, |d| d.millis() / 1000);
    let targets = agent.targets();
    agent.log.say(format!(
        "started: collecting every {every} s from {}, journal in {}",
        if targets.is_empty() {
            "the targets the cloud sets (none yet)".to_string()
        } else {
            targets.join(" ")
        },
        agent.journal_dir().display()
    ));
    serve(&mut agent, &stop);
    agent.log.say("stopped");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud_session::tests::{Fake, TempDir, agent, collect, enrolled};

    fn stop_after(stop: &Arc<Stop>, ms: u64) -> std::thread::JoinHandle<()> {
        let s = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            *s.stopped.lock().unwrap() = true;
            s.wake.notify_all();
        })
    }

    fn config() -> Config {
        let mut cfg = Config::new(AGENT_VERSION);
        cfg.collect_every = Some(Duration::from_secs(3600));
        cfg.task_poll_every = Duration::from_secs(3600);
        cfg
    }

    #[test]
    fn the_service_waits_out_what_can_heal_and_stops_on_the_signal() {
        let dir = TempDir::new("serve-fail");
        enrolled(&dir.0);
        for refuse in [None, Some(401), Some(426), Some(503)] {
            let cloud = Fake::default();
            cloud.0.borrow_mut().down = refuse.is_none();
            cloud.0.borrow_mut().refuse = refuse;
            let mut a = agent(&dir.0, &cloud, config(), false);
            collect(&mut a, &["A1"]);
            let stop = Arc::new(Stop::default());
            let t = stop_after(&stop, 300);
            let started = std::time::Instant::now();
            serve(&mut a, &stop);
            t.join().unwrap();
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
            // One try, then a wait for the backoff on the condition
            // variable: no spinning, and no exit.
            assert_eq!(cloud.0.borrow().requests, 1, "{refuse:?}");
        }
    }

    #[test]
    fn the_service_delivers_then_sleeps_until_its_next_timer() {
        let dir = TempDir::new("serve-ok");
        enrolled(&dir.0);
        let cloud = Fake::default();
        let mut a = agent(&dir.0, &cloud, config(), false);
        collect(&mut a, &["A1", "B2"]);
        let stop = Arc::new(Stop::default());
        let t = stop_after(&stop, 300);
        serve(&mut a, &stop);
        t.join().unwrap();
        let c = cloud.0.borrow();
        assert_eq!((c.held.len(), c.readings), (1, 2));
        // hello, upload, task poll.
        assert_eq!(c.requests, 3);
    }
}
