//! `dca push TARGET...`: collect once and deliver to the cloud. The readings
//! are journaled before anything is sent; whatever the cloud has not
//! acknowledged stays in the outbox for the next push. Then the tasks the
//! cloud has queued for this agent are run and their results reported.

use crate::agent_state::{StateDir, state_dir};
use crate::cloud_session::{Clocks, Gathered, Session, SessionError, TaskOrder};
use crate::scan_cmd::describe;
use crate::sweep::{self, SweepArgs};
use dca_core::poll::Target;
use dca_core::sync::message::TaskKind;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct PushArgs {
    #[command(flatten)]
    sweep: SweepArgs,
    /// Where the agent keeps its identity and outbox.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// HTTP proxy (http://[user:password@]host:port); default HTTPS_PROXY.
    #[arg(long, value_name = "URL")]
    proxy: Option<String>,
    /// Leave the devices' addresses out of the readings (data minimisation).
    #[arg(long)]
    mask_addresses: bool,
}

/// Why a round stopped, with the exit code `dca push` reports: 1 local
/// trouble; 2 bad arguments or not enrolled; 3 the cloud is unreachable
/// (readings kept for the next round); 4 the cloud refused (credentials,
/// sequence).
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    fn usage(message: String) -> Failure {
        Failure { code: 2, message }
    }

    fn session(e: &SessionError, dir: &StateDir) -> Failure {
        let code = match e {
            SessionError::Link(_) => 3,
            SessionError::Refused { .. } => 4,
            SessionError::Local(_) => 1,
        };
        let waiting = dir.pending().map_or(0, |p| p.len());
        Failure {
            code,
            message: format!(
                "{e}; {waiting} batches kept in {} for the next push",
                dir.path().display()
            ),
        }
    }

    /// The cloud could not be reached; trying again later may help.
    pub fn is_transient(&self) -> bool {
        self.code == 3
    }
}

fn gather(args: &SweepArgs, mask: bool, clocks: &Clocks) -> Result<(Gathered, String), String> {
    let mut g = Gathered::default();
    let mut failure = None;
    let mut add = |addr: std::net::SocketAddr, snap: &dca_core::printer::Snapshot| {
        let address = addr.ip().to_string();
        if let Err(e) = g.add(clocks.now(), (!mask).then_some(address.as_str()), snap) {
            failure.get_or_insert(e);
        }
    };
    let summary =
        sweep::sweep(args, std::io::stderr().is_terminal(), &mut add).map_err(|e| e.to_string())?;
    if let Some(e) = failure {
        return Err(e);
    }
    for a in &g.unkeyed {
        eprintln!(
            "dca push: the printer at {a} offers no serial, MAC or address; the cloud cannot key it"
        );
    }
    Ok((g, describe(&summary)))
}

pub fn run(args: &PushArgs) -> ExitCode {
    match round(args, &Clocks::new(), true) {
        Ok(line) => {
            println!("dca push: {line}");
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("dca push: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// One round: when `collect`, sweep the targets and journal the readings;
/// then deliver every waiting batch and run the cloud's tasks. Returns the
/// one-line account of it.
pub fn round(args: &PushArgs, clocks: &Clocks, collect: bool) -> Result<String, Failure> {
    let dir = StateDir::new(state_dir(args.state_dir.as_deref()));
    let mut session = Session::open(&dir, args.proxy.as_deref(), clocks)
        .map_err(|e| Failure::usage(e.to_string()))?;
    let mut sweep_args = args.sweep.clone();
    if sweep_args.targets.is_empty() {
        sweep_args.targets = session.state.targets.clone();
    }
    if sweep_args.targets.is_empty() {
        return Err(Failure::usage(
            "no targets given, and the cloud has set none".into(),
        ));
    }
    let mut collected = String::from("nothing collected");
    if collect {
        let (gathered, summary) =
            gather(&sweep_args, args.mask_addresses, clocks).map_err(Failure::usage)?;
        eprintln!("dca: {summary}");
        let queued = session
            .queue(&gathered)
            .map_err(|e| Failure::session(&e, &dir))?;
        collected = format!("{} readings in batches {queued:?}", gathered.count);
    }
    let report = converse(&mut session, &sweep_args, args.mask_addresses, clocks)
        .map_err(|e| Failure::session(&e, &dir))?;
    Ok(format!(
        "{collected}; {} batches delivered, {} readings stored; {}",
        report.batches, report.stored, report.tasks
    ))
}

/// The collection interval the cloud has set, if any.
pub fn schedule(args: &PushArgs) -> Option<u64> {
    StateDir::new(state_dir(args.state_dir.as_deref()))
        .load()
        .ok()
        .and_then(|s| s.schedule_s)
}

struct Report {
    batches: u64,
    stored: u64,
    tasks: String,
}

fn converse(
    session: &mut Session<'_>,
    sweep_args: &SweepArgs,
    mask: bool,
    clocks: &Clocks,
) -> Result<Report, SessionError> {
    session.hello()?;
    let (mut batches, mut stored) = session.deliver()?;
    let mut done = Vec::new();
    // A task may queue readings (rescan, poll_device); each round delivers
    // them. Bounded: the cloud hands out at most 16 tasks per poll.
    for _ in 0..4 {
        let tasks = session.tasks()?;
        if tasks.is_empty() {
            break;
        }
        for t in tasks {
            let (ok, detail) = run_task(session, &t, sweep_args, mask, clocks);
            session.report(t.id, ok, &detail)?;
            done.push(format!("{} {}", t.kind, if ok { "done" } else { "failed" }));
        }
        let (b, s) = session.deliver()?;
        batches += b;
        stored += s;
    }
    let tasks = if done.is_empty() {
        "no tasks".to_string()
    } else {
        format!("tasks: {}", done.join(", "))
    };
    Ok(Report {
        batches,
        stored,
        tasks,
    })
}

fn run_task(
    session: &mut Session<'_>,
    t: &TaskOrder,
    sweep_args: &SweepArgs,
    mask: bool,
    clocks: &Clocks,
) -> (bool, String) {
    let collect = |session: &mut Session<'_>, targets: Vec<String>| -> (bool, String) {
        let mut a = sweep_args.clone();
        a.targets = targets;
        match gather(&a, mask, clocks) {
            Ok((g, summary)) => match session.queue(&g) {
                Ok(seqs) => (
                    true,
                    format!(
                        "{} readings queued in batches {seqs:?} ({summary})",
                        g.count
                    ),
                ),
                Err(e) => (false, e.to_string()),
            },
            Err(e) => (false, e),
        }
    };
    match TaskKind::parse(&t.kind) {
        Some(TaskKind::Rescan) => collect(session, sweep_args.targets.clone()),
        Some(TaskKind::PollDevice) => match Target::parse(t.arg.trim()) {
            Ok(Target::Single(ip)) => collect(session, vec![ip.to_string()]),
            _ => (
                false,
                format!("poll_device wants one address, not {:?}", t.arg),
            ),
        },
        Some(TaskKind::SetTargets) => {
            let targets: Vec<String> = t
                .arg
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if let Some(bad) = targets.iter().find(|s| Target::parse(s).is_err()) {
                return (false, format!("bad target {bad:?}"));
            }
            session.state.targets = targets;
            saved(session, format!("targets set to {}", t.arg))
        }
        Some(TaskKind::SetSchedule) => match t.arg.trim().parse::<u64>() {
            Ok(s) if s >= 60 => {
                session.state.schedule_s = Some(s);
                saved(session, format!("collection every {s} s"))
            }
            _ => (
                false,
                format!("set_schedule wants seconds (at least 60), not {:?}", t.arg),
            ),
        },
        Some(TaskKind::SetLogLevel) => match t.arg.trim() {
            level @ ("error" | "warn" | "info" | "debug" | "trace") => {
                session.state.log_level = Some(level.to_string());
                saved(session, format!("log level {level}"))
            }
            other => (false, format!("unknown log level {other:?}")),
        },
        None => (
            false,
            format!("this agent does not know task kind {:?}", t.kind),
        ),
    }
}

fn saved(session: &Session<'_>, what: String) -> (bool, String) {
    match session.save() {
        Ok(()) => (true, what),
        Err(e) => (false, e.to_string()),
    }
}
