//! `dca enroll --cloud URL --token T`: trade a one-time enrollment token for
//! this agent's id and secret, and keep them in the state directory.

use crate::agent_state::{AgentState, StateDir, state_dir};
use crate::cloud_link::{CloudUrl, Link, LinkError};
use crate::cloud_session::{AGENT_VERSION, proxy_for, trust_of};
use crate::cloud_tls;
use crate::journal::lock_state_dir;
use dca_core::sync::message::Request;
use dca_core::sync::session::{self, Enrolled, Failure};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct EnrollArgs {
    /// The cloud, as https://host[:port].
    #[arg(long)]
    pub cloud: String,
    /// The one-time enrollment token the cloud's operator created.
    #[arg(long)]
    pub token: String,
    /// Trust only the server key (or certificate) with this SHA-256
    /// fingerprint; repeat it to allow several (a key rollover).
    #[arg(long, value_name = "SHA256")]
    pub pin: Vec<String>,
    /// Trust certificates issued by the CA certificates in this PEM file
    /// (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Where the agent keeps its identity and journal.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// HTTP proxy (http://[user:password@]host:port); default HTTPS_PROXY.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Replace an existing enrollment in the state directory.
    #[arg(long)]
    pub force: bool,
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

pub fn run(args: &EnrollArgs) -> ExitCode {
    match enroll(args) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err((code, e)) => {
            eprintln!("dca enroll: {e}");
            ExitCode::from(code)
        }
    }
}

pub fn enroll(args: &EnrollArgs) -> Result<String, (u8, String)> {
    let dir = StateDir::new(state_dir(args.state_dir.as_deref()));
    // Not while a `dca run` or `dca push` works in the directory: it would
    // keep the old identity in memory and write it back.
    let _lock = lock_state_dir(dir.path()).map_err(|e| (1, e.to_string()))?;
    if dir.is_enrolled() && !args.force {
        let who = dir
            .load()
            .map_or_else(|_| "an agent".into(), |s| format!("agent {}", s.agent_id));
        return Err((
            2,
            format!(
                "{} already holds {who}; give --force to replace it",
                dir.path().display()
            ),
        ));
    }
    let url = CloudUrl::parse(&args.cloud).map_err(|e| (2, e))?;
    let pins = args
        .pin
        .iter()
        .map(|p| cloud_tls::parse_pin(p).map(hex::encode))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| (2, e))?;
    let trust = trust_of(&pins, args.ca.as_ref()).map_err(|e| (2, e))?;
    let tls = cloud_tls::client_config(&trust).map_err(|e| (2, e))?;
    let proxy = proxy_for(args.proxy.as_deref(), &url).map_err(|e| (2, e))?;
    let mut link = Link::new(url.clone(), tls, proxy);
    let host = hostname();
    let req = Request::Enroll {
        token: args.token.trim(),
        agent_version: AGENT_VERSION,
        hostname: &host,
    };
    let mut body = vec![0u8; req.encoded_len()];
    let n = req.encode(&mut body).map_err(|e| (1, e.to_string()))?;
    let answer = link.exchange(None, &body[..n]).map_err(|e| match e {
        LinkError::Untrusted(_) => (5, e.to_string()),
        _ => (3, e.to_string()),
    })?;
    let Enrolled {
        agent_id,
        secret,
        customer,
    } = session::enrollment(answer.status, &answer.body).map_err(
        |(failure, why)| match failure {
            Failure::Credentials => (4, format!("the cloud refused the token ({why})")),
            Failure::Version => (
                4,
                format!("the cloud speaks another protocol version ({why}): upgrade this agent"),
            ),
            Failure::Unreachable => (3, format!("HTTP {}: {why}", answer.status)),
        },
    )?;
    let state = AgentState {
        cloud: url.to_url(),
        agent_id: agent_id.to_string(),
        secret: secret.to_string(),
        customer: customer.to_string(),
        pins,
        ca: args.ca.clone(),
        targets: Vec::new(),
        schedule_s: None,
        log_level: None,
    };
    dir.save(&state).map_err(|e| (1, e))?;
    Ok(format!(
        "enrolled as agent {} for customer {} at {}; identity kept in {}",
        state.agent_id,
        state.customer,
        state.cloud,
        dir.path().display()
    ))
}
