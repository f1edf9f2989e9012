//! `dca-sim`: emulated printer fleets for testing OpenDCA.

use clap::{Parser, Subcommand};
use dca_sim::serve::{self, Device, Fleet};
#[cfg(feature = "simulate")]
use dca_sim::simulate;
use dca_sim::{agent, faults, quirks, recording};
use ipnet::Ipv4Net;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[derive(Parser)]
#[command(
    name = "dca-sim",
    about = "Emulated printer fleets for testing OpenDCA",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve emulated SNMP printers, each on its own loopback address.
    Serve(ServeArgs),
    /// Deterministic simulation of agents, printers and the cloud under
    /// faults, checking the delivery invariants (one seed, one trace).
    #[cfg(feature = "simulate")]
    Simulate(SimulateArgs),
}

#[cfg(feature = "simulate")]
#[derive(clap::Args)]
struct SimulateArgs {
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many consecutive seeds to run.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Agents (sites) in the world.
    #[arg(long, default_value_t = 3)]
    agents: usize,
    /// Printers per agent.
    #[arg(long, default_value_t = 5)]
    printers: usize,
    /// Customers the agents belong to (agent i to customer i mod N).
    #[arg(long, default_value_t = 2)]
    customers: usize,
    /// Virtual hours of faults before the final quiet period.
    #[arg(long, default_value_t = 6.0)]
    hours: f64,
    /// Seconds between collections.
    #[arg(long, default_value_t = 900)]
    interval: u64,
    /// Probability that an exchange loses its request or its answer (the
    /// answer after the cloud committed), during storms.
    #[arg(long, default_value_t = 0.05)]
    loss: f64,
    /// Probability that the cloud receives a request twice, during storms.
    #[arg(long, default_value_t = 0.03)]
    dup: f64,
    /// Probability that a message is delayed by seconds (at times beyond
    /// the agent's timeout), during storms.
    #[arg(long, default_value_t = 0.02)]
    delay: f64,
    /// Probability that an SNMP datagram is lost (always).
    #[arg(long, default_value_t = 0.01)]
    snmp_loss: f64,
    /// Partitions (an agent cut off from the cloud) per hour of storm.
    #[arg(long, default_value_t = 1.0)]
    partitions: f64,
    /// Cloud restarts per hour of storm.
    #[arg(long, default_value_t = 0.6)]
    cloud_restarts: f64,
    /// Restores of the cloud's database from an earlier snapshot per hour.
    #[arg(long, default_value_t = 0.5)]
    restores: f64,
    /// Agent crashes (at any step) per hour of storm.
    #[arg(long, default_value_t = 1.5)]
    crashes: f64,
    /// Agent disks filling up per hour of storm.
    #[arg(long, default_value_t = 0.6)]
    disk_full: f64,
    /// Agent disks failing (EIO) per hour of storm.
    #[arg(long, default_value_t = 0.6)]
    disk_errors: f64,
    /// Re-enrollments (new credentials, same journal) per hour of storm.
    #[arg(long, default_value_t = 0.5)]
    reenrolls: f64,
    /// Cloud tasks (rescan, poll_device, settings, unknown kinds) per hour.
    #[arg(long, default_value_t = 1.0)]
    tasks: f64,
    /// Printers (in the whole world) whose counters go backwards after an
    /// hour, as after a board swap: flagged in the report, not failed.
    #[arg(long, default_value_t = 0)]
    counters_backwards: usize,
    /// Seconds between snapshots of the cloud's database.
    #[arg(long, default_value_t = 3600)]
    snapshot_every: u64,
    /// Plant a bug on purpose, to see it caught: skip-dir-fsync.
    #[arg(long, value_name = "BUG")]
    plant: Option<String>,
    /// Print every event of the trace to stderr.
    #[arg(long)]
    trace: bool,
    /// Print a line per seed.
    #[arg(long, short)]
    verbose: bool,
}

#[cfg(feature = "simulate")]
impl SimulateArgs {
    fn config(&self) -> Result<simulate::Config, String> {
        for (name, p) in [
            ("--loss", self.loss),
            ("--dup", self.dup),
            ("--delay", self.delay),
            ("--snmp-loss", self.snmp_loss),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be a probability from 0 to 1, not {p}"));
            }
        }
        if self.agents == 0 || self.agents > 254 {
            return Err("--agents must be from 1 to 254".into());
        }
        if self.printers > 200 * 256 {
            return Err("--printers must be at most 51200".into());
        }
        if self.interval < 60 {
            return Err("--interval must be at least 60 seconds".into());
        }
        let plant = match &self.plant {
            None => None,
            Some(p) => Some(
                simulate::Plant::parse(p)
                    .ok_or_else(|| format!("unknown bug to plant {p:?} (skip-dir-fsync)"))?,
            ),
        };
        let d = simulate::Config::default();
        Ok(simulate::Config {
            agents: self.agents,
            printers: self.printers,
            customers: self.customers.max(1),
            hours: self.hours.max(0.0),
            interval_s: self.interval,
            rates: simulate::Rates {
                partitions: self.partitions,
                cloud_restarts: self.cloud_restarts,
                restores: self.restores,
                crashes: self.crashes,
                disk_full: self.disk_full,
                disk_errors: self.disk_errors,
                reenrolls: self.reenrolls,
                tasks: self.tasks,
            },
            wan: simulate::WanFaults {
                loss: self.loss,
                dup: self.dup,
                delay: self.delay,
            },
            lan: simulate::LanFaults {
                loss: self.snmp_loss,
                ..d.lan
            },
            counters_backwards: self.counters_backwards,
            snapshot_every_s: self.snapshot_every.max(60),
            plant,
            trace: self.trace,
            ..d
        })
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// A folder of snmpsim .snmprec recordings: one device per file.
    #[arg(long, value_name = "DIR")]
    recordings: Vec<PathBuf>,
    /// Addresses for the devices, one each, in order (e.g. 127.1.0.0/24).
    #[arg(long, value_name = "CIDR")]
    bind: Ipv4Net,
    /// UDP port every device listens on.
    #[arg(long, default_value_t = 1161)]
    port: u16,
    /// Write a JSON map of devices and addresses here once all are bound.
    #[arg(long, value_name = "FILE")]
    map: Option<PathBuf>,
    /// The community every device answers (others get no answer).
    #[arg(long, default_value = "public")]
    community: String,
    /// The largest response a device sends, in octets.
    #[arg(long, default_value_t = 1472)]
    max_response: usize,
    /// Also serve this many generated printers.
    #[arg(long, value_name = "N", default_value_t = 0)]
    generate: usize,
    /// Seed of the generated fleet: the same seed gives the same printers.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated seconds per real second for generated printers (counters
    /// grow, toner depletes, alerts come and go at this pace).
    #[arg(long, default_value_t = 60.0)]
    time_scale: f64,
    #[command(flatten)]
    faults: FaultArgs,
    /// Per-device faults: a JSON array of {"devices": "NAME" or "PREFIX*", ...}
    /// with the same fault names as the flags (loss, delay_ms, v1_only, ...).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// An SNMPv3 user every device knows: NAME, NAME:AUTH:PASSWORD or
    /// NAME:AUTH:PASSWORD:PRIV:PASSWORD (net-snmp's protocol names, e.g.
    /// u:SHA-256:authpass123:AES:privpass123). Repeatable; each device has
    /// its own engine id.
    #[arg(long = "v3-user", value_name = "SPEC")]
    v3_users: Vec<String>,
    /// Device N knows only the (N mod count)-th --v3-user.
    #[arg(long = "v3-spread")]
    v3_spread: bool,
    /// The context name v3 requests must name (HP printers: Jetdirect).
    #[arg(long = "v3-context", default_value = "")]
    v3_context: String,
    /// Each device also serves its embedded web pages (status, network
    /// settings, firmware upload, a downloadable log) on this TCP port of
    /// its address.
    #[arg(long, value_name = "PORT")]
    web_port: Option<u16>,
    /// ...and over HTTPS on this port, with a certificate each device signs
    /// itself (naming its serial), as printers ship.
    #[arg(long, value_name = "PORT")]
    web_tls_port: Option<u16>,
    /// The plain HTTP port redirects every request to the HTTPS one, by the
    /// device's address, as printers do once TLS is on.
    #[arg(long, requires_all = ["web_port", "web_tls_port"])]
    web_redirect_to_tls: bool,
    /// Devices answer SNMPv3 only.
    #[arg(long = "v3-only")]
    v3_only: bool,
    /// Each device's engine reboots this often: boots + 1, time from 0.
    #[arg(long = "v3-reboot-every", value_name = "SECONDS")]
    v3_reboot_every: Option<u64>,
}

/// Fleet-wide faults.
#[derive(clap::Args)]
struct FaultArgs {
    /// Probability that a request is dropped.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Delay of every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Up to this many milliseconds more, at random.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Answer SNMPv1 only.
    #[arg(long)]
    v1_only: bool,
    /// Answer GetBulk with genErr, as devices without GetBulk do.
    #[arg(long)]
    no_bulk: bool,
    /// Answer tooBig when a response would carry more varbinds than this.
    #[arg(long, value_name = "N")]
    too_big_above: Option<usize>,
    /// Responses longer than this many octets never arrive (lost IP fragments).
    #[arg(long, value_name = "OCTETS")]
    lost_above: Option<usize>,
    /// Probability of answering genErr.
    #[arg(long, default_value_t = 0.0)]
    gen_error: f64,
    /// Seconds of silence after which a device sleeps and drops the next request.
    #[arg(long, value_name = "SECONDS")]
    asleep_after: Option<u64>,
    /// Probability that a response is sent malformed.
    #[arg(long, default_value_t = 0.0)]
    malformed: f64,
    /// Generated printers' counters fall back after one simulated hour.
    #[arg(long)]
    counters_backwards: bool,
    /// Generated printers' Counter32 page counters wrap.
    #[arg(long)]
    counter32_wrap: bool,
    /// After each answer, send this many stray datagrams to the asker's port.
    #[arg(long, value_name = "N", default_value_t = 0)]
    flood: u32,
    /// Quirky encodings: unsigned-without-zero, long-lengths, padded-integers.
    #[arg(long = "quirk", value_name = "QUIRK")]
    quirks: Vec<String>,
}

impl FaultArgs {
    fn to_faults(&self) -> Result<faults::Faults, String> {
        for (name, p) in [
            ("--loss", self.loss),
            ("--gen-error", self.gen_error),
            ("--malformed", self.malformed),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be a probability from 0 to 1, not {p}"));
            }
        }
        let mut q = quirks::Quirks::default();
        for name in &self.quirks {
            match name.as_str() {
                "unsigned-without-zero" => q.unsigned_without_zero = true,
                "long-lengths" => q.long_lengths = true,
                "padded-integers" => q.padded_integers = true,
                other => {
                    return Err(format!(
                        "unknown quirk {other:?} (unsigned-without-zero, long-lengths, padded-integers)"
                    ));
                }
            }
        }
        Ok(faults::Faults {
            loss: self.loss,
            delay_ms: self.delay_ms,
            jitter_ms: self.jitter_ms,
            v1_only: self.v1_only,
            no_bulk: self.no_bulk,
            too_big_above: self.too_big_above,
            lost_above: self.lost_above,
            gen_error: self.gen_error,
            asleep_after_s: self.asleep_after,
            malformed: self.malformed,
            counters_backwards: self.counters_backwards,
            counter32_wrap: self.counter32_wrap,
            flood: self.flood,
            quirks: q,
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => match serve(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dca-sim: {e}");
                ExitCode::FAILURE
            }
        },
        #[cfg(feature = "simulate")]
        Command::Simulate(args) => simulate_cmd(&args),
    }
}

#[cfg(feature = "simulate")]
fn simulate_cmd(args: &SimulateArgs) -> ExitCode {
    let cfg = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dca-sim: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "simulating seeds {}..{}: {} agents x {} printers, {} customers, {} h, collecting every {} s{}",
        args.seed,
        args.seed.saturating_add(args.seeds.saturating_sub(1)),
        cfg.agents,
        cfg.printers,
        cfg.customers,
        cfg.hours,
        cfg.interval_s,
        cfg.plant
            .map_or_else(String::new, |p| format!(", planted bug: {}", p.name()))
    );
    let summary = simulate::run(&cfg, args.seed, args.seeds, |r| {
        if args.verbose || args.seeds == 1 {
            println!(
                "seed {}: {} in {:.2} s, {:.1} h simulated, {} events, {} checks, {} readings stored, trace {:016x}",
                r.seed,
                if r.passed() { "ok" } else { "FAILED" },
                r.real.as_secs_f64(),
                r.virtual_ms as f64 / 3.6e6,
                r.events,
                r.checks,
                r.readings_stored,
                r.trace_hash
            );
            for f in &r.flagged {
                println!("  flagged: counters went backwards on {f}");
            }
            for n in &r.notes {
                println!("  note: {n}");
            }
        }
        if !r.passed() {
            println!("seed {} FAILED:", r.seed);
            for v in &r.violations {
                println!("  {v}");
            }
            println!("  replay: {}", cfg.replay_command(r.seed));
        }
    });
    print!("{}", summary.render());
    if summary.passed() {
        ExitCode::SUCCESS
    } else {
        println!(
            "FAILED seeds: {}",
            summary
                .failed
                .iter()
                .map(|r| r.seed.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        ExitCode::FAILURE
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let base_faults = args.faults.to_faults()?;
    let scenario = match &args.scenario {
        Some(path) => faults::Scenario::load(path)?,
        None => faults::Scenario::default(),
    };
    let v3 = if args.v3_users.is_empty() {
        if args.v3_only {
            return Err("--v3-only needs at least one --v3-user".into());
        }
        None
    } else {
        let users = args
            .v3_users
            .iter()
            .map(|s| dca_sim::usm_agent::V3Config::parse_user(s))
            .collect::<Result<Vec<_>, _>>()?;
        Some(Arc::new(dca_sim::usm_agent::V3Config {
            users,
            context: args.v3_context.clone().into_bytes(),
            reboot_every: args.v3_reboot_every.map(std::time::Duration::from_secs),
            spread: args.v3_spread,
        }))
    };
    let behaviour = Arc::new(agent::Behaviour {
        community: args.community.clone().into_bytes(),
        max_response: args.max_response,
        v3,
        v3_only: args.v3_only,
        ..agent::Behaviour::default()
    });
    // Devices whose faults change the agent's behaviour get their own.
    let behaviour_for = |f: &faults::Faults| {
        if f.v1_only || f.no_bulk || f.too_big_above.is_some() {
            Arc::new(agent::Behaviour {
                v1_only: f.v1_only,
                no_bulk: f.no_bulk,
                too_big_above: f.too_big_above,
                ..(*behaviour).clone()
            })
        } else {
            behaviour.clone()
        }
    };
    let mut devices = Vec::new();
    for dir in &args.recordings {
        let (loaded, problems) = recording::load_dir(dir)?;
        for p in problems {
            eprintln!("dca-sim: {p} (skipped)");
        }
        for l in loaded {
            for w in &l.warnings {
                eprintln!("dca-sim: {w} (skipped)");
            }
            let faults = scenario.faults_for(&l.name, &base_faults);
            devices.push(Device {
                behaviour: behaviour_for(&faults),
                seed: args.seed ^ devices.len() as u64,
                name: l.name,
                source: "recording",
                template: l.template,
                eval: None,
                faults,
            });
        }
    }
    let first = devices.len();
    devices.extend(serve::generated(
        args.generate,
        args.seed,
        args.time_scale,
        first,
        |name| scenario.faults_for(name, &base_faults),
        behaviour_for,
    ));
    if devices.is_empty() {
        return Err("nothing to serve: give --recordings or --generate".into());
    }
    let names: Vec<(String, &'static str)> =
        devices.iter().map(|d| (d.name.clone(), d.source)).collect();
    let web = serve::WebPorts {
        http: args.web_port,
        https: args.web_tls_port,
        redirect_to_tls: args.web_redirect_to_tls,
    };
    let fleet = Fleet::start_with_web(devices, args.bind, args.port, web)?;
    if let Some(map) = &args.map {
        // Written once every socket is bound and served.
        serve::write_map(map, &names, &fleet.addresses)?;
    }
    eprintln!(
        "dca-sim: serving {} devices on {} port {}{}{}",
        fleet.addresses.len(),
        args.bind,
        args.port,
        web.http
            .map_or_else(String::new, |p| format!(", web pages on TCP port {p}")),
        web.https.map_or_else(String::new, |p| format!(
            ", web pages over TLS on TCP port {p}"
        ))
    );
    fleet.block_on(shutdown_signal());
    let stats = fleet.stats();
    let web = fleet.web_stats();
    // stderr may be gone by now (a closed pipe); stopping must not panic.
    let _ = writeln!(
        std::io::stderr(),
        "dca-sim: stopped; {} requests, {} responses, {} dropped, {} faults injected; \
         web: {} requests, {} firmware uploads, {} log downloads, {} settings saved",
        stats.requests.load(Ordering::Relaxed),
        stats.responses.load(Ordering::Relaxed),
        stats.dropped.load(Ordering::Relaxed),
        stats.faulted.load(Ordering::Relaxed),
        web.requests.load(Ordering::Relaxed),
        web.uploads.load(Ordering::Relaxed),
        web.downloads.load(Ordering::Relaxed),
        web.settings.load(Ordering::Relaxed)
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending::<()>().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
