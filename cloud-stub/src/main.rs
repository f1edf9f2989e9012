//! `dca-cloud`: a minimal but real cloud receiver for OpenDCA agents.
//!
//! HTTPS (rustls) on one endpoint for the CBOR sync protocol, SQLite for
//! storage, a read-only web page and JSON API for people, and the operator
//! commands that create enrollment tokens and tasks.

use dca_cloud::limits::Limits;
use dca_cloud::{report, server, store, tls, web};

use clap::{Parser, Subcommand};
use dca_core::sync::message::TaskKind;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use store::{Scope, Store};

#[derive(Parser)]
#[command(
    name = "dca-cloud",
    version,
    about = "OpenDCA's minimal cloud receiver: HTTPS, CBOR, SQLite"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve agents (POST /v1/sync) and people (sign-in at /signin, then
    /// GET / and /api/) over HTTPS.
    Serve {
        /// Address and port to listen on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        /// The SQLite database (created when missing).
        #[arg(long)]
        db: PathBuf,
        /// Certificate chain (PEM); without it a self-signed certificate is
        /// generated on first start and kept in --tls-dir.
        #[arg(long, requires = "key")]
        cert: Option<PathBuf>,
        /// Private key (PEM) of --cert.
        #[arg(long, requires = "cert")]
        key: Option<PathBuf>,
        /// Where the self-signed certificate lives (default: beside --db).
        #[arg(long)]
        tls_dir: Option<PathBuf>,
        /// Host names and addresses the self-signed certificate names.
        #[arg(long = "name", default_values = ["localhost", "127.0.0.1", "::1"])]
        names: Vec<String>,
        /// How often agents call for tasks, in seconds (told in `welcome`).
        #[arg(long, default_value_t = dca_cloud::store::DEFAULT_POLL_INTERVAL_S)]
        poll_interval: u32,
        /// Connections held at once; past it new ones are closed at accept.
        #[arg(long, default_value_t = Limits::default().max_connections)]
        max_connections: usize,
        /// Connections held at once from one source address.
        #[arg(long, default_value_t = Limits::default().max_per_address)]
        max_per_address: usize,
        /// How long an agent's push channel (`listen`) is held at most, in
        /// seconds; 0 offers no channel (agents poll for tasks).
        #[arg(long, default_value_t = Limits::default().hold.as_secs())]
        hold: u64,
        /// A Device Web Access session with no request for this many
        /// seconds ends (its entry point closes).
        #[arg(long, default_value_t = Limits::default().web_idle.as_secs())]
        web_idle: u64,
    },
    /// Enrollment tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Every device, with its billing page counts, and the open identity
    /// conflicts.
    Devices {
        #[arg(long)]
        db: PathBuf,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Counter values stored for one device, a page at a time (newest
    /// page first, oldest value first within it).
    Readings {
        /// The device: id:N, key:KEY, serial:SERIAL, or bare (a name that
        /// fits several devices lists them instead).
        device: String,
        #[arg(long)]
        db: PathBuf,
        /// Values per page (at most 5000).
        #[arg(long, default_value_t = report::DEFAULT_PAGE)]
        limit: usize,
        /// The page before this reading id (printed at the end of a page).
        #[arg(long)]
        before: Option<i64>,
    },
    /// Identity conflicts of devices.
    Conflict {
        #[command(subcommand)]
        command: ConflictCommand,
    },
    /// Tasks for agents.
    Task {
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// Agents.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// The people who sign in to the cloud: a password and a TOTP second
    /// factor each.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Add an operator: prints a generated password and the second
    /// factor's otpauth URI, with its QR code for an authenticator app,
    /// once.
    Add {
        name: String,
        /// dealer: sees its dealer's customers' devices and may open a
        /// device's web page; viewer: sees them.
        #[arg(long, value_parser = ["dealer", "viewer"])]
        role: String,
        /// The dealer whose customers the operator sees (created if new).
        #[arg(long, default_value = store::DEFAULT_DEALER)]
        dealer: String,
        #[arg(long)]
        db: PathBuf,
    },
    /// Every operator, role and dealer.
    List {
        #[arg(long)]
        db: PathBuf,
    },
    /// Remove an operator.
    Remove {
        name: String,
        #[arg(long)]
        db: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a one-time enrollment token for a customer (printed on the last line).
    Create {
        #[arg(long)]
        customer: String,
        /// The dealer a new customer belongs to (created if new; default:
        /// "default"); an existing customer must belong to it already.
        #[arg(long)]
        dealer: Option<String>,
        #[arg(long)]
        db: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConflictCommand {
    /// Accept what a device's open conflicts held back (a counter reset
    /// after a board swap, a new network card, another agent): the flagged
    /// readings become its billing counters.
    Resolve {
        id: i64,
        #[arg(long)]
        db: PathBuf,
    },
}

#[derive(Subcommand)]
enum TaskCommand {
    /// Queue a task: rescan, poll_device ADDRESS, set_targets TARGETS,
    /// set_schedule SECONDS, set_log_level LEVEL.
    Create {
        #[arg(long)]
        agent: String,
        #[arg(long)]
        kind: String,
        #[arg(long, default_value = "")]
        arg: String,
        #[arg(long)]
        db: PathBuf,
    },
    /// Every task and how it stands: queued, delivered, or its result.
    List {
        #[arg(long)]
        db: PathBuf,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Every agent: id, customer, host name, version.
    List {
        #[arg(long)]
        db: PathBuf,
    },
    /// Revoke an agent: its requests get 401 from now on.
    Revoke {
        id: String,
        #[arg(long)]
        db: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dca-cloud: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve {
            listen,
            db,
            cert,
            key,
            tls_dir,
            names,
            poll_interval,
            max_connections,
            max_per_address,
            hold,
            web_idle,
        } => {
            let limits = Limits {
                max_connections: max_connections.max(1),
                max_per_address: max_per_address.max(1),
                hold: std::time::Duration::from_secs(hold),
                web_idle: std::time::Duration::from_secs(web_idle.max(1)),
                ..Limits::default()
            };
            serve(
                &listen,
                &db,
                cert,
                key,
                tls_dir,
                &names,
                poll_interval,
                limits,
            )
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    customer,
                    dealer,
                    db,
                },
        } => {
            let mut store = Store::open(&db)?;
            let token = store.create_token_for(&customer, dealer.as_deref())?;
            let dealer = store.dealer_of(customer.trim())?.unwrap_or_default();
            println!("enrollment token for customer {customer} of dealer {dealer} (one use):");
            println!("{token}");
            Ok(())
        }
        Command::Devices { db, json } => {
            let store = Store::open(&db)?;
            let devices = report::devices(&store, Scope::All).map_err(|e| e.to_string())?;
            if json {
                for d in &devices {
                    println!("{}", d.to_json());
                }
                return Ok(());
            }
            println!(
                "{:<12} {:<28} {:<24} {:<16} {:>10} {:<20}",
                "customer", "device", "model", "address", "total", "last seen"
            );
            for d in &devices {
                let total = d.counter("total").or_else(|| d.counter("total_vendor"));
                println!(
                    "{:<12} {:<28} {:<24} {:<16} {:>10} {:<20}",
                    d.customer,
                    d.key,
                    d.model,
                    d.address,
                    total.map_or_else(|| "-".into(), |t| t.to_string()),
                    web::utc(d.last_seen_ms)
                );
            }
            println!("{} devices", devices.len());
            let conflicts: Vec<_> = devices
                .iter()
                .flat_map(|d| d.conflicts.iter().map(move |c| (d, c)))
                .collect();
            if !conflicts.is_empty() {
                println!(
                    "{} identity conflicts (billing counters held at the last good values; accept with `dca-cloud conflict resolve ID`):",
                    conflicts.len()
                );
                for (d, c) in conflicts {
                    println!(
                        "  conflict {} {} {} {}: {} ({} readings flagged since {})",
                        c.id,
                        d.customer,
                        d.key,
                        c.kind,
                        c.detail,
                        c.readings,
                        web::utc(c.first_ms)
                    );
                }
            }
            Ok(())
        }
        Command::Readings {
            device,
            db,
            limit,
            before,
        } => {
            let store = Store::open(&db)?;
            let d = match report::lookup(&store, Scope::All, &device).map_err(|e| e.to_string())? {
                report::Lookup::Found(d) => d,
                report::Lookup::Missing => {
                    return Err(format!(
                        "no device {device} (give id:N, key:KEY, serial:SERIAL, or its key, id or serial)"
                    ));
                }
                report::Lookup::Ambiguous(all) => {
                    let names: Vec<String> = all
                        .iter()
                        .map(|d| {
                            format!(
                                "id:{} ({} {} serial {:?})",
                                d.id, d.customer, d.key, d.serial
                            )
                        })
                        .collect();
                    return Err(format!(
                        "{} devices answer to {device:?}; name one: {}",
                        all.len(),
                        names.join(", ")
                    ));
                }
            };
            if !(1..=report::MAX_PAGE).contains(&limit) {
                return Err(format!("--limit must be 1 to {}", report::MAX_PAGE));
            }
            println!("{} {} {} ({})", d.key, d.vendor, d.model, d.customer);
            let mut rows = report::readings_page(&store, d.id, before, limit + 1)
                .map_err(|e| e.to_string())?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next = rows.last().map(|r| r.id);
            for r in rows.iter().rev() {
                let at = r.at_ms.map_or_else(|| "time unknown".into(), web::utc);
                println!(
                    "{:>6} {:<22} {:<24} {:>12}{}",
                    r.batch,
                    at,
                    r.counter,
                    r.value,
                    if r.flagged {
                        "  flagged (identity conflict)"
                    } else {
                        ""
                    }
                );
            }
            if let (true, Some(next)) = (more, next) {
                println!("older values: --before {next}");
            }
            Ok(())
        }
        Command::Conflict {
            command: ConflictCommand::Resolve { id, db },
        } => {
            let (key, n) = Store::open(&db)?.resolve_conflict(id)?;
            println!("device {key}: {n} conflicts resolved; its flagged readings are billed now");
            Ok(())
        }
        Command::Task {
            command:
                TaskCommand::Create {
                    agent,
                    kind,
                    arg,
                    db,
                },
        } => {
            if TaskKind::parse(&kind).is_none() {
                let known: Vec<_> = TaskKind::ALL.iter().map(|k| k.id()).collect();
                return Err(format!(
                    "unknown task kind {kind:?} (known: {})",
                    known.join(", ")
                ));
            }
            let id = Store::open(&db)?.create_task(&agent, &kind, &arg)?;
            println!("task {id} queued for {agent}");
            Ok(())
        }
        Command::Task {
            command: TaskCommand::List { db },
        } => {
            for t in Store::open(&db)?.tasks()? {
                println!(
                    "task {} for {}: {} {:?}: {}",
                    t.id, t.agent, t.kind, t.arg, t.state
                );
            }
            Ok(())
        }
        Command::Agent {
            command: AgentCommand::List { db },
        } => {
            for (id, customer, host, version) in Store::open(&db)?.agents()? {
                println!("{id} customer={customer} host={host} version={version}");
            }
            Ok(())
        }
        Command::Agent {
            command: AgentCommand::Revoke { id, db },
        } => {
            Store::open(&db)?.revoke(&id)?;
            println!("agent {id} revoked");
            Ok(())
        }
        Command::Operator { command } => operator(command),
    }
}

fn operator(command: OperatorCommand) -> Result<(), String> {
    match command {
        OperatorCommand::Add {
            name,
            role,
            dealer,
            db,
        } => {
            let role = store::Role::parse(&role).ok_or("--role is dealer or viewer")?;
            let new = Store::open(&db)?.add_operator(&name, role, &dealer)?;
            let uri = new.totp.uri("OpenDCA", &name);
            println!(
                "operator {name} ({} of dealer {dealer}) added; shown this once:",
                role.id()
            );
            println!("password: {}", new.password);
            println!("second factor (scan it with an authenticator app): {uri}");
            println!("{}", qr_text(&uri)?);
            Ok(())
        }
        OperatorCommand::List { db } => {
            for o in Store::open(&db)?.operators()? {
                println!(
                    "{} {} dealer={} since {}",
                    o.name,
                    o.role.id(),
                    o.dealer,
                    web::utc(o.created_ms)
                );
            }
            Ok(())
        }
        OperatorCommand::Remove { name, db } => {
            Store::open(&db)?.remove_operator(&name)?;
            println!("operator {name} removed");
            Ok(())
        }
    }
}

/// `text` as a QR code a terminal shows: two rows of modules per line.
fn qr_text(text: &str) -> Result<String, String> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| format!("QR code: {e}"))?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build())
}

#[allow(clippy::too_many_arguments)]
fn serve(
    listen: &str,
    db: &std::path::Path,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    tls_dir: Option<PathBuf>,
    names: &[String],
    poll_interval_s: u32,
    limits: Limits,
) -> Result<(), String> {
    let mut store = Store::open(db)?;
    store.set_poll_interval_s(poll_interval_s);
    let dir = tls_dir.unwrap_or_else(|| {
        db.parent()
            .map_or_else(|| PathBuf::from("."), |p| p.to_path_buf())
    });
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    // A self-signed certificate also names the address it is served on, so
    // that clients checking names (curl, agents with --ca) accept it.
    let mut names = names.to_vec();
    if let Ok(addr) = listen.parse::<std::net::SocketAddr>()
        && !addr.ip().is_unspecified()
        && !names.contains(&addr.ip().to_string())
    {
        names.push(addr.ip().to_string());
    }
    let identity = tls::identity(cert.as_deref(), key.as_deref(), &dir, &names)?;
    let shared = Arc::new(server::Shared::with_limits(store, limits));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        // Once the address is this process's: a second `serve` started by
        // mistake on the same database fails above, before it could end
        // the sessions of the one running.
        let left_open = shared
            .lock_store()
            .close_web_sessions_left_open("the cloud restarted")?;
        println!("dca-cloud: {}", identity.source);
        println!("dca-cloud: database {}", db.display());
        println!("dca-cloud: certificate sha256 {}", identity.fingerprint);
        println!(
            "dca-cloud: key pin (sha256 of the public key) {}",
            identity.key_pin
        );
        println!(
            "dca-cloud: operators sign in at https://{local}/signin (accounts: dca-cloud operator add)"
        );
        if left_open > 0 {
            println!(
                "dca-cloud: {left_open} web access sessions left open by the last run closed"
            );
        }
        println!("dca-cloud: listening on https://{local}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let acceptor = tokio_rustls::TlsAcceptor::from(identity.config);
        server::serve(listener, acceptor, shared, shutdown_signal()).await;
        eprintln!("dca-cloud: stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
