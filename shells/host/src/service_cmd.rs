//! `dca service install|uninstall|status`: registers `dca run --config FILE`
//! with the system's service manager, which then starts it at boot, restarts
//! it when it fails and stops it at shutdown.
//!
//! - Linux: a sandboxed systemd unit (`packaging/linux/opendca.service`, the
//!   same text the .deb ships) under a throwaway user; systemd hands it the
//!   root-only configuration file as a credential.
//! - macOS: a launchd daemon running as the `_opendca` user.
//! - Windows: a service of the service control manager running as
//!   LocalService; `dca service run` is the process it starts.
//!
//! Each writes only the service's definition and its directories: the
//! configuration is the administrator's (from the sample), and enrollment
//! happens when the service first starts with it.

use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[cfg(target_os = "macos")]
#[path = "service/launchd.rs"]
mod launchd;
// Built on Linux too for its tests: the property list is checked everywhere.
#[cfg(all(test, not(target_os = "macos")))]
#[path = "service/launchd.rs"]
mod launchd;
#[cfg(any(target_os = "linux", test))]
#[path = "service/systemd.rs"]
mod systemd;
#[cfg(windows)]
#[path = "service/windows.rs"]
mod windows;

#[derive(Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Register the service, and start it if its configuration exists.
    ///
    /// Exit codes: 0 installed; 1 a file could not be written or the service
    /// manager refused; 2 bad arguments.
    Install(InstallArgs),
    /// Stop the service and remove it (its state and configuration stay).
    ///
    /// Exit codes: 0 removed, or was not installed; 1 the service manager
    /// refused or a file could not be removed; 2 bad arguments.
    Uninstall(Place),
    /// Say whether the service is installed and running, and where its
    /// configuration and state are.
    ///
    /// Exit codes (those of an init script's status): 0 running; 1 the
    /// service manager could not be asked; 2 bad arguments; 3 installed but
    /// not running; 4 not installed.
    Status(Place),
    /// The process the Windows service control manager starts.
    #[command(hide = true)]
    Run(RunServiceArgs),
}

#[derive(Args)]
struct InstallArgs {
    /// The configuration file the service runs with [default: the
    /// platform's, e.g. /etc/opendca/dca.toml].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    place: Place,
}

#[derive(Args)]
struct Place {
    /// Write (or look for) the service definition in DIR instead of the
    /// system's directory (/etc/systemd/system, /Library/LaunchDaemons), and
    /// leave the service manager alone: for packaging and tests.
    #[arg(long, value_name = "DIR")]
    unit_dir: Option<PathBuf>,
}

#[derive(Args)]
struct RunServiceArgs {
    /// The configuration file the service runs with.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Why a step failed, with the exit code it ends the command with.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub msg: String,
}

impl Failure {
    /// Local trouble: a file, a directory, the service manager.
    pub fn local(msg: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            msg: msg.into(),
        }
    }

    /// Arguments (or paths) that cannot work.
    pub fn usage(msg: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            msg: msg.into(),
        }
    }
}

/// What `status` found; its exit code follows an init script's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    Stopped,
    NotInstalled,
}

impl State {
    fn code(self) -> u8 {
        match self {
            State::Running => 0,
            State::Stopped => 3,
            State::NotInstalled => 4,
        }
    }
}

pub fn run(args: &ServiceArgs) -> ExitCode {
    let (name, result) = match &args.action {
        Action::Install(a) => (
            "dca service install",
            config_path(a.config.as_deref()).and_then(|config| install(&config, &a.place)),
        ),
        Action::Uninstall(p) => ("dca service uninstall", uninstall(p)),
        Action::Status(p) => ("dca service status", status(p).map(State::code)),
        Action::Run(a) => (
            "dca service run",
            config_path(a.config.as_deref()).and_then(|config| run_service(&config)),
        ),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("{name}: {}", f.msg);
            ExitCode::from(f.code)
        }
    }
}

/// The configuration's path as the service will see it: absolute, since a
/// service does not start where `install` ran.
fn config_path(flag: Option<&Path>) -> Result<PathBuf, Failure> {
    let path = flag.map_or_else(crate::config::default_path, Path::to_path_buf);
    std::path::absolute(&path)
        .map_err(|e| Failure::usage(format!("--config {}: {e}", path.display())))
}

/// This executable, which the service will run: an installed dca registers
/// itself, wherever the package or the administrator put it.
fn this_executable() -> Result<PathBuf, Failure> {
    std::env::current_exe()
        .map_err(|e| Failure::local(format!("cannot tell where this dca is: {e}")))
}

/// The sample configuration the packages ship.
const SAMPLE: &str = include_str!("../packaging/dca.toml");

/// What the administrator must do before the service can start with
/// `config`, if anything: a service started without a configuration, or
/// with the sample's placeholders, would only fail and be restarted.
fn config_advice(config: &Path) -> Option<String> {
    let shown = config.display();
    match std::fs::read_to_string(config) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "write {shown} from the sample, readable by its owner only, with the cloud's URL \
             and an enrollment token"
        )),
        Ok(text) if text == SAMPLE => Some(format!(
            "{shown} is still the sample: write the cloud's URL and an enrollment token in it"
        )),
        // The agent's own reading of it: syntax, values, permissions.
        _ => crate::config::Config::load(config)
            .err()
            .map(|e| format!("fix {shown}: {e}")),
    }
}

#[cfg(target_os = "linux")]
fn install(config: &Path, place: &Place) -> Result<u8, Failure> {
    systemd::install(&this_executable()?, config, place.unit_dir.as_deref()).map(|()| 0)
}

#[cfg(target_os = "linux")]
fn uninstall(place: &Place) -> Result<u8, Failure> {
    systemd::uninstall(place.unit_dir.as_deref()).map(|()| 0)
}

#[cfg(target_os = "linux")]
fn status(place: &Place) -> Result<State, Failure> {
    systemd::status(place.unit_dir.as_deref())
}

#[cfg(target_os = "macos")]
fn install(config: &Path, place: &Place) -> Result<u8, Failure> {
    launchd::install(&this_executable()?, config, place.unit_dir.as_deref()).map(|()| 0)
}

#[cfg(target_os = "macos")]
fn uninstall(place: &Place) -> Result<u8, Failure> {
    launchd::uninstall(place.unit_dir.as_deref()).map(|()| 0)
}

#[cfg(target_os = "macos")]
fn status(place: &Place) -> Result<State, Failure> {
    launchd::status(place.unit_dir.as_deref())
}

#[cfg(windows)]
fn install(config: &Path, place: &Place) -> Result<u8, Failure> {
    no_unit_dir(place)?;
    windows::install(&this_executable()?, config).map(|()| 0)
}

#[cfg(windows)]
fn uninstall(place: &Place) -> Result<u8, Failure> {
    no_unit_dir(place)?;
    windows::uninstall().map(|()| 0)
}

#[cfg(windows)]
fn status(place: &Place) -> Result<State, Failure> {
    no_unit_dir(place)?;
    windows::status()
}

#[cfg(windows)]
fn no_unit_dir(place: &Place) -> Result<(), Failure> {
    match &place.unit_dir {
        Some(d) => Err(Failure::usage(format!(
            "--unit-dir {}: Windows keeps services in its registry, not in files",
            d.display()
        ))),
        None => Ok(()),
    }
}

#[cfg(windows)]
fn run_service(config: &Path) -> Result<u8, Failure> {
    windows::run(config)
}

#[cfg(not(windows))]
fn run_service(config: &Path) -> Result<u8, Failure> {
    Err(Failure::usage(format!(
        "this is the Windows service's entry point; here run `dca run --config {}`",
        config.display()
    )))
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn unsupported() -> Failure {
    Failure::usage(
        "this system has no service manager dca knows: run `dca run --config FILE` from its own init system",
    )
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn install(_: &Path, _: &Place) -> Result<u8, Failure> {
    Err(unsupported())
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn uninstall(_: &Place) -> Result<u8, Failure> {
    Err(unsupported())
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn status(_: &Place) -> Result<State, Failure> {
    Err(unsupported())
}

/// Runs a program of the service manager; fails naming the command.
#[cfg(unix)]
fn manager(program: &str, args: &[&str]) -> Result<(), Failure> {
    let line = format!("{program} {}", args.join(" "));
    let status = std::process::Command::new(program)
        .args(args)
        .status()
        .map_err(|e| Failure::local(format!("cannot run {line}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::local(format!("{line} failed ({status})")))
    }
}

/// Writes `text` to `path` through a temporary file in the same directory,
/// so the service manager never reads half a definition.
#[cfg(unix)]
fn write_definition(path: &Path, text: &str) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(Failure::local(format!(
            "cannot write {}: {} is not a directory",
            path.display(),
            dir.display()
        )));
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            // Service managers refuse definitions others may write.
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Failure::local(format!("cannot write {}: {e}", path.display()))
    })
}

/// Removes a definition; false if there was none.
#[cfg(unix)]
fn remove_definition(path: &Path) -> Result<bool, Failure> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Failure::local(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    /// Parses `dca service ...` as main.rs would.
    #[cfg(target_os = "linux")]
    pub fn parse(args: &[&str]) -> ServiceArgs {
        #[derive(clap::Parser)]
        enum Cli {
            Service(ServiceArgs),
        }
        let argv = ["dca", "service"].iter().chain(args);
        match <Cli as clap::Parser>::try_parse_from(argv) {
            Ok(Cli::Service(s)) => s,
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    /// A directory of this test's own, removed when dropped.
    #[cfg(unix)]
    pub struct Scratch(pub PathBuf);

    #[cfg(unix)]
    impl Scratch {
        pub fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("dca-service-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    #[cfg(unix)]
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn service_status_codes_are_those_of_an_init_script() {
        assert_eq!(State::Running.code(), 0);
        assert_eq!(State::Stopped.code(), 3);
        assert_eq!(State::NotInstalled.code(), 4);
    }

    #[test]
    fn service_config_paths_are_made_absolute() {
        let p = config_path(Some(Path::new("dca.toml"))).unwrap();
        assert!(p.is_absolute(), "{}", p.display());
        assert!(p.ends_with("dca.toml"));
        assert_eq!(config_path(None).unwrap(), crate::config::default_path());
    }

    #[cfg(unix)]
    #[test]
    fn service_definitions_are_replaced_whole_and_removed_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Scratch::new("definition");
        let path = dir.0.join("x.service");
        write_definition(&path, "one").unwrap();
        write_definition(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o022, 0, "others may write it: {mode:o}");
        // No temporary file is left beside it.
        assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 1);
        assert!(remove_definition(&path).unwrap());
        assert!(!remove_definition(&path).unwrap());

        let nowhere = dir.0.join("missing/x.service");
        let e = write_definition(&nowhere, "x").unwrap_err();
        assert_eq!(e.code, 1);
        assert!(
            e.msg.contains(&*dir.0.join("missing").to_string_lossy()),
            "{}",
            e.msg
        );
    }

    #[cfg(unix)]
    #[test]
    fn service_starts_only_with_a_configuration_filled_in_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Scratch::new("advice");
        let config = dir.0.join("dca.toml");
        let shown = config.display().to_string();
        let advice = |mode: u32, text: Option<&str>| {
            if let Some(t) = text {
                std::fs::write(&config, t).unwrap();
                std::fs::set_permissions(&config, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            config_advice(&config)
        };
        let missing = advice(0, None).unwrap();
        assert!(missing.starts_with(&format!("write {shown} ")), "{missing}");
        let sample = advice(0o600, Some(SAMPLE)).unwrap();
        assert!(sample.contains("is still the sample"), "{sample}");
        let filled = SAMPLE.replace("dcat_replace_me", "dcat_issued_by_the_cloud");
        assert_ne!(filled, SAMPLE, "the sample's token placeholder changed");
        assert_eq!(advice(0o600, Some(&filled)), None);
        let shared = advice(0o644, Some(&filled)).unwrap();
        assert!(shared.starts_with(&format!("fix {shown}")), "{shared}");
        assert!(shared.contains("chmod 600"), "{shared}");
        let broken = advice(0o600, Some("[cloud\n")).unwrap();
        assert!(broken.starts_with(&format!("fix {shown}")), "{broken}");
    }

    #[cfg(not(windows))]
    #[test]
    fn service_run_is_only_the_windows_entry_point() {
        let e = run_service(Path::new("/etc/opendca/dca.toml")).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(
            e.msg.contains("dca run --config /etc/opendca/dca.toml"),
            "{}",
            e.msg
        );
    }
}
