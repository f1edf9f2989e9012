//! The Windows service: registered with the service control manager as
//! "OpenDCA", running `dca service run --config FILE` as LocalService, which
//! hands the control manager's stop to the agent's loop.

// The service entry point the control manager calls is an `extern "system"`
// function made by the crate's macro, whose body converts raw pointers.
#![allow(unsafe_code)]

use super::{Failure, State};
use crate::run_cmd::{RunArgs, Stop, run_until};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceErrorControl, ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

pub const NAME: &str = "OpenDCA";
const DISPLAY_NAME: &str = "OpenDCA data collection agent";
/// A built-in account with the rights of a user and anonymous network
/// credentials: enough for SNMP and HTTPS.
const ACCOUNT: &str = "NT AUTHORITY\\LocalService";
/// The same account as icacls names it.
const ACCOUNT_ACL: &str = "*S-1-5-19";

fn manager(access: ServiceManagerAccess) -> Result<ServiceManager, Failure> {
    ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT | access).map_err(
        |e| {
            Failure::local(format!(
                "cannot open the service control manager (run as Administrator): {e}"
            ))
        },
    )
}

/// Runs icacls on `path`; fails naming both.
fn icacls(path: &Path, args: &[&str]) -> Result<(), Failure> {
    let status = std::process::Command::new("icacls")
        .arg(path)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| Failure::local(format!("cannot run icacls: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::local(format!(
            "icacls {} {} failed ({status})",
            path.display(),
            args.join(" ")
        )))
    }
}

pub fn install(bin: &Path, config: &Path) -> Result<(), Failure> {
    // The state directory (the configuration's, by default) must be the
    // service account's to write; the configuration, with its secrets,
    // readable by it and the administrators only.
    let state = crate::agent_state::state_dir(None);
    std::fs::create_dir_all(&state)
        .map_err(|e| Failure::local(format!("cannot create {}: {e}", state.display())))?;
    icacls(&state, &["/grant", &format!("{ACCOUNT_ACL}:(OI)(CI)M")])?;
    println!("granted LocalService {}", state.display());
    let advice = super::config_advice(config);
    if config.is_file() {
        icacls(
            config,
            &[
                "/inheritance:r",
                "/grant:r",
                "*S-1-5-18:F",
                "*S-1-5-32-544:F",
                &format!("{ACCOUNT_ACL}:R"),
            ],
        )?;
        println!(
            "{}: readable by LocalService and administrators only",
            config.display()
        );
    }

    let scm = manager(ServiceManagerAccess::CREATE_SERVICE)?;
    let info = ServiceInfo {
        name: NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: bin.to_path_buf(),
        launch_arguments: ["service", "run", "--config"]
            .into_iter()
            .map(OsString::from)
            .chain([config.as_os_str().to_owned()])
            .collect(),
        dependencies: vec![],
        account_name: Some(ACCOUNT.into()),
        account_password: None,
    };
    let service = scm
        .create_service(
            &info,
            ServiceAccess::CHANGE_CONFIG
                | ServiceAccess::START
                | ServiceAccess::QUERY_STATUS
                | ServiceAccess::DELETE,
        )
        .map_err(|e| Failure::local(format!("cannot create the service {NAME}: {e}")))?;
    if let Err(e) = configure(&service) {
        // Half a service would not restart when it fails: take it away.
        let _ = service.delete();
        return Err(e);
    }
    println!(
        "installed the service {NAME} (runs {} as LocalService)",
        bin.display()
    );
    if advice.is_none() {
        service
            .start::<&OsStr>(&[])
            .map_err(|e| Failure::local(format!("cannot start {NAME}: {e}")))?;
        println!("started {NAME}");
    }
    if let Some(a) = advice {
        println!("next: {a}; then `sc.exe start {NAME}`");
    }
    Ok(())
}

/// Its description, and what the manager does when it fails: restart it
/// after 30 s, three times a day; an exit with an error counts as a failure,
/// not only a crash.
fn configure(service: &windows_service::service::Service) -> Result<(), Failure> {
    let step = |what: &str, r: windows_service::Result<()>| {
        r.map_err(|e| Failure::local(format!("cannot set the {what} of {NAME}: {e}")))
    };
    step(
        "description",
        service.set_description("Collects printer counters and supplies over SNMP"),
    )?;
    let restart = ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(30),
    };
    step(
        "failure actions",
        service.update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 3600)),
            reboot_msg: None,
            command: None,
            actions: Some(vec![restart.clone(), restart.clone(), restart]),
        }),
    )?;
    // Without the flag the actions still follow a crash; Windows has it
    // since Vista, some emulations do not.
    if let Err(e) = service.set_failure_actions_on_non_crash_failures(true) {
        eprintln!("warning: {NAME} restarts after a crash only, not after an error exit: {e}");
    }
    Ok(())
}

pub fn uninstall() -> Result<(), Failure> {
    let scm = manager(ServiceManagerAccess::empty())?;
    let access = ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE;
    let service = match scm.open_service(NAME, access) {
        Ok(s) => s,
        Err(windows_service::Error::Winapi(e))
            if e.raw_os_error() == Some(ERROR_SERVICE_DOES_NOT_EXIST) =>
        {
            println!("not installed: there is no service {NAME}");
            return Ok(());
        }
        Err(e) => return Err(Failure::local(format!("cannot open {NAME}: {e}"))),
    };
    // Marked for deletion, it goes once stopped and every handle is closed.
    service
        .delete()
        .map_err(|e| Failure::local(format!("cannot delete {NAME}: {e}")))?;
    let running = service
        .query_status()
        .is_ok_and(|s| s.current_state != ServiceState::Stopped);
    if running {
        service
            .stop()
            .map_err(|e| Failure::local(format!("cannot stop {NAME}: {e}")))?;
        wait_stopped(&service)?;
        println!("stopped {NAME}");
    }
    println!(
        "removed the service {NAME}; kept the configuration and the state in {}",
        crate::agent_state::state_dir(None).display()
    );
    Ok(())
}

const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;

/// Waits for the agent to finish its step and exit, as long as the manager
/// itself would before it gives up on a stop. The manager has no call that
/// blocks until then, so its status is asked again at short intervals.
fn wait_stopped(service: &windows_service::service::Service) -> Result<(), Failure> {
    const PATIENCE: Duration = Duration::from_secs(30);
    let started = std::time::Instant::now();
    loop {
        match service.query_status() {
            // Gone (deleted once stopped) is stopped.
            Err(_) => return Ok(()),
            Ok(s) if s.current_state == ServiceState::Stopped => return Ok(()),
            Ok(_) if started.elapsed() > PATIENCE => {
                return Err(Failure::local(format!(
                    "{NAME} did not stop within {} s; it is marked for deletion and goes \
                     when it stops",
                    PATIENCE.as_secs()
                )));
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

pub fn status() -> Result<State, Failure> {
    let scm = manager(ServiceManagerAccess::empty())?;
    let service = match scm.open_service(NAME, ServiceAccess::QUERY_STATUS) {
        Ok(s) => s,
        Err(windows_service::Error::Winapi(e))
            if e.raw_os_error() == Some(ERROR_SERVICE_DOES_NOT_EXIST) =>
        {
            println!("not installed: there is no service {NAME}");
            return Ok(State::NotInstalled);
        }
        Err(e) => return Err(Failure::local(format!("cannot open {NAME}: {e}"))),
    };
    let s = service
        .query_status()
        .map_err(|e| Failure::local(format!("cannot query {NAME}: {e}")))?;
    println!("service: {NAME}, {:?}", s.current_state);
    println!("state: {}", crate::agent_state::state_dir(None).display());
    Ok(if s.current_state == ServiceState::Running {
        State::Running
    } else {
        State::Stopped
    })
}

/// The configuration `dca service run` was started with, for the service's
/// main function, which the dispatcher calls on a thread of its own.
static CONFIG: OnceLock<PathBuf> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// Hands this process to the service control manager until the service
/// stops; fails at once if it was not started by the manager.
pub fn run(config: &Path) -> Result<u8, Failure> {
    let _ = CONFIG.set(config.to_path_buf());
    service_dispatcher::start(NAME, ffi_service_main).map_err(|e| {
        Failure::usage(format!(
            "not started by the service control manager ({e}): to run in a console, use \
             `dca run --config {}`",
            config.display()
        ))
    })?;
    Ok(0)
}

/// The agent's arguments for `config`, as `dca run --config FILE` takes them.
fn run_args(config: &Path) -> Result<RunArgs, String> {
    #[derive(clap::Parser)]
    #[command(name = "dca")]
    enum Cli {
        Run(RunArgs),
    }
    let argv = ["dca", "run", "--config"]
        .into_iter()
        .map(OsString::from)
        .chain([config.as_os_str().to_owned()]);
    <Cli as clap::Parser>::try_parse_from(argv)
        .map(|Cli::Run(args)| args)
        .map_err(|e| e.to_string())
}

fn service_main(_arguments: Vec<OsString>) {
    if let Err(e) = serve() {
        eprintln!("dca service run: {e}");
    }
}

fn serve() -> windows_service::Result<()> {
    let stop = Arc::new(Stop::default());
    let on_stop = stop.clone();
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            on_stop.stop();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let status = service_control_handler::register(NAME, handler)?;
    let report = |state, accept, exit_code| {
        status.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accept,
            exit_code,
            checkpoint: 0,
            wait_hint: Duration::default(),
            process_id: None,
        })
    };
    report(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        ServiceExitCode::Win32(0),
    )?;
    let config = CONFIG
        .get()
        .cloned()
        .unwrap_or_else(crate::config::default_path);
    let code = match run_args(&config) {
        Ok(args) => run_until(&args, &stop),
        Err(e) => {
            eprintln!("dca service run: {e}");
            ExitCode::from(2)
        }
    };
    // A service-specific code makes the manager apply its failure actions.
    let exit = if code == ExitCode::SUCCESS {
        ServiceExitCode::Win32(0)
    } else {
        ServiceExitCode::ServiceSpecific(1)
    };
    report(ServiceState::Stopped, ServiceControlAccept::empty(), exit)
}
