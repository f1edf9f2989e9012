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

use crate::agent_state::StateDir;
use crate::cloud_link::Interrupter;
use crate::cloud_session::{AGENT_VERSION, Agent};
use crate::cloud_session::{Log, Options};
use crate::config::Config as FileConfig;
use crate::enroll_cmd;
use crate::push_cmd::{PushArgs, setup_code};
use crate::sweep;
use dca_core::sync::message::capability;
use dca_core::sync::session::Config;
use dca_core::time::Duration;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex};

#[derive(clap::Args)]
pub struct RunArgs {
    /// Run from this configuration file (TOML) instead of options: the
    /// cloud, its pins, targets, credentials, schedule and log. Enrolls
    /// with its token at the first start.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "targets", "state_dir", "proxy", "mask_addresses", "interval", "task_interval",
        "exclude", "communities", "user", "file", "version", "web_port",
    ])]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    push: PushArgs,
    /// Seconds between collections while the cloud has set no schedule.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    interval: u64,
    /// Seconds between calls to the cloud for tasks, between collections.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    task_interval: u64,
    /// A web port Device Web Access may relay to, beside 80, 443, 8080 and
    /// 8443 (repeat for more).
    #[arg(long = "web-port", value_name = "PORT",
          value_parser = clap::value_parser!(u16).range(1..))]
    web_port: Vec<u16>,
}

/// At a stop, the results of tasks already run go out first (a round's
/// hello, any batch before them, the results; a few exchanges at most, and
/// none once the cloud fails): otherwise the cloud would hand those tasks
/// out again at the next start.
fn finish(agent: &mut Agent) {
    for _ in 0..8 {
        if !agent.session.results_pending() || !agent.exchange() {
            return;
        }
        agent.drain();
    }
}

/// Does what the session says until stopped: its timers, its requests, its
/// events; between them, waits on the stop signal until the next timer.
fn serve(agent: &mut Agent, stop: &Stop) {
    stop.cuts(agent.interrupter());
    loop {
        let now = agent.now();
        if agent.session.poll_timeout().is_some_and(|t| t <= now.at) {
            agent.session.handle_timeout(now.at);
        }
        agent.drain();
        if stop.is_stopped() {
            finish(agent);
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

/// Set by a signal or a service manager; waits end early when it is.
#[derive(Default)]
pub struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
    /// Cuts the cloud connection, so a held push channel ends at once.
    cut: Mutex<Option<Interrupter>>,
}

impl Stop {
    /// Stops on SIGINT, SIGTERM or SIGHUP (Ctrl-C or a service stop on
    /// Windows).
    fn install() -> Result<Arc<Stop>, ctrlc::Error> {
        let stop = Arc::new(Stop::default());
        let s = stop.clone();
        ctrlc::set_handler(move || s.stop())?;
        Ok(stop)
    }

    /// Asks the service to stop: it ends its current step and returns.
    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
        if let Some(cut) = self.cut.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            cut.interrupt();
        }
    }

    /// Stopping also cuts the connection `cut` holds.
    fn cuts(&self, cut: Option<Interrupter>) {
        *self.cut.lock().unwrap_or_else(|p| p.into_inner()) = cut;
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
    match Stop::install() {
        Ok(stop) => run_until(args, &stop),
        Err(e) => {
            eprintln!("dca run: cannot handle signals: {e}");
            ExitCode::from(1)
        }
    }
}

/// What the service runs with, from the options or a configuration file.
struct Setup {
    dir: StateDir,
    opts: Options,
    interval: u64,
    task_interval: u64,
}

const NAME: &str = "dca run";

fn from_options(args: &RunArgs) -> Setup {
    Setup {
        dir: args.push.dir(),
        opts: Options {
            web_ports: args.web_port.clone(),
            ..args.push.options(NAME, false)
        },
        interval: args.interval,
        task_interval: args.task_interval,
    }
}

/// Reads the configuration file and enrolls with its token when the state
/// directory holds no agent yet; an unreachable cloud is waited out.
fn from_file(path: &std::path::Path, stop: &Stop) -> Result<Option<Setup>, (u8, String)> {
    let file = FileConfig::load(path).map_err(|e| (2, e.to_string()))?;
    // A Windows service has no console and no journal: without a file its
    // words, fatal ones included, would go nowhere.
    let log_path = file
        .log
        .file
        .clone()
        .or_else(|| cfg!(windows).then(crate::config::default_log_path));
    let file_log = log_path.as_ref().map(|f| crate::logging::FileLog {
        path: f.clone(),
        max_bytes: file.log.max_bytes,
        keep: file.log.keep,
    });
    crate::logging::init(file_log.as_ref());
    let log = Log::new(NAME);
    let dir = StateDir::new(crate::agent_state::state_dir(file.state_dir.as_deref()));
    let cloud = file.cloud.as_ref();
    if !dir.is_enrolled() {
        let Some((c, token)) = cloud.and_then(|c| c.token.as_ref().map(|t| (c, t))) else {
            return Err((
                2,
                format!(
                    "not enrolled: no {}, and {} gives no [cloud] token to enroll with",
                    dir.path().join("agent.json").display(),
                    path.display()
                ),
            ));
        };
        let args = enroll_cmd::EnrollArgs {
            cloud: c.url.clone(),
            token: token.clone(),
            pin: c.pins.clone(),
            ca: c.ca.clone(),
            state_dir: Some(dir.path().to_path_buf()),
            proxy: c.proxy.clone(),
            force: false,
        };
        let mut wait = std::time::Duration::from_secs(5);
        loop {
            match enroll_cmd::enroll(&args) {
                Ok(msg) => {
                    log.say(msg);
                    break;
                }
                // What can heal (the network, the cloud's certificate
                // being renewed) is tried again, with backoff.
                Err((3 | 5, e)) => {
                    log.error(format!(
                        "cannot enroll yet: {e}; trying again in {} s",
                        wait.as_secs()
                    ));
                    if stop.wait(wait) {
                        return Ok(None);
                    }
                    wait = (wait * 2).min(std::time::Duration::from_secs(600));
                }
                Err((code, e)) => return Err((code, format!("cannot enroll: {e}"))),
            }
        }
    } else if let Some(c) = cloud {
        let kept = dir.load().map_err(|e| (2, e))?;
        let same = crate::cloud_link::CloudUrl::parse(&kept.cloud)
            .ok()
            .zip(crate::cloud_link::CloudUrl::parse(&c.url).ok())
            .is_some_and(|(a, b)| a == b);
        if !same {
            return Err((
                2,
                format!(
                    "{} holds an agent of {}, but {} names {}: to move to that cloud, delete \
                     {} and give a token of it in the file; else mend the file",
                    dir.path().display(),
                    kept.cloud,
                    path.display(),
                    c.url,
                    dir.path().join("agent.json").display()
                ),
            ));
        }
    }
    let collect = &file.collect;
    let dir_json = dir.path().join("agent.json");
    Ok(Some(Setup {
        dir,
        opts: Options {
            log_prefix: NAME,
            sweep: file.sweep(),
            mask_addresses: cloud.is_some_and(|c| c.mask_addresses),
            proxy: cloud.and_then(|c| c.proxy.clone()),
            one_shot: false,
            default_targets: collect.targets.clone(),
            // The file's word on trust, even "no pins": the system's roots.
            trust: cloud.map(|c| (c.pins.clone(), c.ca.clone())),
            reenroll: Some(format!(
                "delete {} and give a new token in {}",
                dir_json.display(),
                path.display()
            )),
            log_level: file.log_level(),
            web_ports: collect.web_ports.clone(),
        },
        interval: collect.every_s,
        task_interval: collect.tasks_every_s,
    }))
}

/// The session's settings for the service, but for its collection
/// interval (the agent's state decides it).
fn session_config(task_interval: u64) -> Config {
    let mut cfg = Config::new(AGENT_VERSION);
    cfg.task_poll_every = Duration::from_secs(task_interval);
    // The service keeps the push channel open between rounds, and relays
    // Device Web Access sessions on threads of their own (one-shot pushes
    // do neither).
    cfg.capabilities |= capability::LISTEN | capability::WEB_ACCESS;
    cfg
}

/// Runs the service until `stop` is set (by a signal, or by the Windows
/// service manager).
pub fn run_until(args: &RunArgs, stop: &Stop) -> ExitCode {
    let setup = match &args.config {
        None => from_options(args),
        Some(path) => match from_file(path, stop) {
            Ok(Some(s)) => s,
            Ok(None) => return ExitCode::SUCCESS,
            Err((code, e)) => {
                Log::new(NAME).error(e);
                return ExitCode::from(code);
            }
        },
    };
    // Fatal errors at the journal's error priority, or in the log file.
    let log = Log::new(NAME);
    let sweep_args = &setup.opts.sweep;
    if let Err(e) = sweep::check_syntax(&sweep_args.targets)
        .and_then(|()| sweep::check_syntax(&sweep_args.exclude))
    {
        log.error(format!("bad target {e}"));
        return ExitCode::from(2);
    }
    if let Err(e) = sweep_args.snmp.credentials_cached() {
        log.error(e);
        return ExitCode::from(2);
    }
    let mut cfg = session_config(setup.task_interval);
    let interval = setup.interval;
    let opened = Agent::open(setup.dir, setup.opts, |state| {
        // The cloud's schedule, once it has set one, wins over --interval.
        let every = state.schedule_s.unwrap_or(interval);
        cfg.collect_every = Some(Duration::from_secs(every));
        cfg
    });
    let mut agent = match opened {
        Ok(a) => a,
        Err(e) => {
            let (code, msg) = setup_code(&e);
            log.error(msg);
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
    serve(&mut agent, stop);
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
            s.stop();
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
    fn the_service_announces_the_push_channel_and_web_access() {
        let run = session_config(300).capabilities;
        assert_eq!(
            run & (capability::LISTEN | capability::WEB_ACCESS),
            capability::LISTEN | capability::WEB_ACCESS
        );
        // A one-shot push announces neither.
        let push = Config::new(AGENT_VERSION).capabilities;
        assert_eq!(push & (capability::LISTEN | capability::WEB_ACCESS), 0);
    }

    #[test]
    fn web_ports_are_repeatable_options_of_run() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            run: RunArgs,
        }
        let cli = Cli::try_parse_from([
            "dca",
            "--web-port",
            "9443",
            "--web-port",
            "8000",
            "10.0.0.1",
        ])
        .unwrap();
        assert_eq!(cli.run.web_port, [9443, 8000]);
        assert_eq!(from_options(&cli.run).opts.web_ports, [9443, 8000]);
        assert!(Cli::try_parse_from(["dca", "--web-port", "0"]).is_err());
        assert!(Cli::try_parse_from(["dca", "--web-port", "1", "--config", "f.toml"]).is_err());
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
