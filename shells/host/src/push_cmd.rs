//! `dca push TARGET...`: collect once and deliver to the cloud, then run the
//! tasks it has queued. The readings are journaled before anything is sent
//! and stay in the journal until the cloud holds them; the session (dca-core)
//! decides what to send and what each answer means, and this command stops
//! at the end of its one round or at its first failure.
//!
//! Exit codes: 0 delivered; 1 local trouble (the state directory is locked
//! or unusable, a batch could not be journaled, even if it was delivered, or
//! a setting from the cloud could not be saved); 2 bad arguments or not
//! enrolled; 3 the cloud is unreachable or refused for now (readings kept
//! for the next push); 4 the cloud refused this agent's credentials
//! (re-enroll) or its protocol version (upgrade); 5 the cloud's certificate
//! matched neither the pins nor the CA (readings kept).

use crate::agent_state::{StateDir, state_dir};
use crate::cloud_session::{AGENT_VERSION, Agent, Options, Outcome, SetupError};
use crate::sweep::{self, SweepArgs, SweepError};
use dca_core::sync::session::{Config, Failure};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// Where the agent keeps its identity and journal.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// HTTP proxy (http://[user:password@]host:port); default HTTPS_PROXY.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Leave the devices' addresses out of the readings (data minimisation).
    #[arg(long)]
    pub mask_addresses: bool,
}

impl PushArgs {
    pub fn options(&self, log_prefix: &'static str, one_shot: bool) -> Options {
        Options {
            log_prefix,
            sweep: self.sweep.clone(),
            mask_addresses: self.mask_addresses,
            proxy: self.proxy.clone(),
            one_shot,
            default_targets: Vec::new(),
            trust: None,
            log_level: None,
            reenroll: None,
            web_ports: Vec::new(),
        }
    }

    pub fn dir(&self) -> StateDir {
        StateDir::new(state_dir(self.state_dir.as_deref()))
    }
}

/// The exit code of a startup failure.
pub fn setup_code(e: &SetupError) -> (u8, &str) {
    match e {
        SetupError::Usage(m) => (2, m),
        SetupError::Local(m) => (1, m),
    }
}

pub fn run(args: &PushArgs) -> ExitCode {
    ExitCode::from(push(args))
}

fn push(args: &PushArgs) -> u8 {
    const NAME: &str = "dca push";
    if let Err(e) = sweep::check_syntax(&args.sweep.targets)
        .and_then(|()| sweep::check_syntax(&args.sweep.exclude))
    {
        eprintln!("{NAME}: bad target {e}");
        return 2;
    }
    if let Err(e) = args.sweep.snmp.credentials_cached() {
        eprintln!("{NAME}: {e}");
        return 2;
    }
    let mut cfg = Config::new(AGENT_VERSION);
    // This command collects once, on its own.
    cfg.collect_every = None;
    let mut agent = match Agent::open(args.dir(), args.options(NAME, true), |_| cfg) {
        Ok(a) => a,
        Err(e) => {
            let (code, msg) = setup_code(&e);
            eprintln!("{NAME}: {msg}");
            return code;
        }
    };
    let targets = agent.targets();
    if targets.is_empty() {
        agent
            .log
            .error("no targets given, and the cloud has set none");
        return 2;
    }
    match agent.collect(&targets) {
        Ok(c) => agent.log.info(format!("collected {}", c.long)),
        Err(e @ (SweepError::BadTarget(_) | SweepError::BadCredentials(_))) => {
            agent.log.error(e.to_string());
            return 2;
        }
        Err(e @ SweepError::System(_)) => {
            agent.log.error(format!("cannot sweep: {e}"));
            return 1;
        }
    }
    deliver(&mut agent)
}

/// Delivers what the journal holds and runs the cloud's tasks, in one
/// round; prints the account and returns the exit code.
pub fn deliver(agent: &mut Agent) -> u8 {
    const NAME: &str = "dca push";
    agent.session.sync_now();
    let outcome = agent.round();
    let code = match outcome {
        Some(Outcome::RoundDone { .. }) => 0,
        Some(Outcome::Failed(Failure::Unreachable)) => 3,
        Some(Outcome::Failed(Failure::Credentials | Failure::Version)) => 4,
        Some(Outcome::Untrusted) => 5,
        None => {
            agent
                .tally
                .trouble
                .push("the session stopped before its round ended".into());
            1
        }
    };
    let t = &agent.tally;
    let tasks = if t.tasks.is_empty() {
        "no tasks".to_string()
    } else {
        format!("tasks: {}", t.tasks.join(", "))
    };
    let account = format!(
        "{} readings collected in {} batches; {} batches delivered, {} readings stored{}; {tasks}",
        t.readings,
        t.batches,
        t.delivered,
        t.stored,
        if t.quarantined > 0 {
            format!(", {} quarantined", t.quarantined)
        } else {
            String::new()
        }
    );
    if t.trouble.is_empty() {
        if code == 0 {
            println!("{NAME}: {account}");
        } else {
            eprintln!("{NAME}: {account}");
        }
        return code;
    }
    eprintln!("{NAME}: {account}");
    let more = match t.trouble.len() {
        1 => String::new(),
        n => format!(" (and {} more above)", n - 1),
    };
    let journaled = if t.not_durable == 0 {
        String::new()
    } else if t.in_memory.is_empty() {
        format!(
            "; {} batches were never safely journaled (the cloud has them now)",
            t.not_durable
        )
    } else {
        format!(
            "; {} batches were never safely journaled, and the readings of the {} the cloud \
             did not take are lost as this push ends",
            t.not_durable,
            t.in_memory.len()
        )
    };
    eprintln!(
        "{NAME}: local trouble: {}{more}{journaled}",
        t.trouble.first().map_or("", String::as_str)
    );
    1
}
