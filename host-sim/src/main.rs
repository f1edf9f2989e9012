//! `dca-sim`: emulated printer fleets for testing OpenDCA.

use clap::{Parser, Subcommand};
use dca_sim::serve::{self, Device, Fleet};
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
            gen_error: self.gen_error,
            asleep_after_s: self.asleep_after,
            malformed: self.malformed,
            counters_backwards: self.counters_backwards,
            counter32_wrap: self.counter32_wrap,
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
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let base_faults = args.faults.to_faults()?;
    let scenario = match &args.scenario {
        Some(path) => faults::Scenario::load(path)?,
        None => faults::Scenario::default(),
    };
    let behaviour = Arc::new(agent::Behaviour {
        community: args.community.clone().into_bytes(),
        max_response: args.max_response,
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
    let fleet = Fleet::start(devices, args.bind, args.port)?;
    if let Some(map) = &args.map {
        // Written once every socket is bound and served.
        serve::write_map(map, &names, &fleet.addresses)?;
    }
    eprintln!(
        "dca-sim: serving {} devices on {} port {}",
        fleet.addresses.len(),
        args.bind,
        args.port
    );
    fleet.block_on(shutdown_signal());
    let stats = fleet.stats();
    // stderr may be gone by now (a closed pipe); stopping must not panic.
    let _ = writeln!(
        std::io::stderr(),
        "dca-sim: stopped; {} requests, {} responses, {} dropped, {} faults injected",
        stats.requests.load(Ordering::Relaxed),
        stats.responses.load(Ordering::Relaxed),
        stats.dropped.load(Ordering::Relaxed),
        stats.faulted.load(Ordering::Relaxed)
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
