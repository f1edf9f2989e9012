//! The cloud's tasks, parsed and validated into what the agent does: the
//! shells run them, the rules of what is valid live here once.

use super::message::{Task, TaskKind};
use crate::poll::Target;
use crate::time::Duration;
use core::fmt::Write;
use core::net::IpAddr;
use heapless::String;

/// The longest target list `set_targets` may carry.
pub const MAX_TARGETS_TEXT: usize = 256;
/// The longest detail text a task result carries.
pub const MAX_DETAIL: usize = 160;
/// The shortest collection interval the cloud may set.
pub const MIN_SCHEDULE_S: u64 = 60;

/// A log level the cloud may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    pub fn id(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    pub fn parse(s: &str) -> Option<LogLevel> {
        LogLevel::ALL.into_iter().find(|l| l.id() == s.trim())
    }
}

/// What a task asks the agent to do, validated.
// The target list is held inline: the core has no allocator.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// Collect from the agent's targets now.
    Rescan,
    /// Collect from one device now.
    PollDevice(IpAddr),
    /// Replace the targets: expressions `Target::parse` accepts, separated
    /// by single commas.
    SetTargets(String<MAX_TARGETS_TEXT>),
    /// Collect this often.
    SetSchedule(Duration),
    SetLogLevel(LogLevel),
    /// Relay a dealer's browser to one device's web server
    /// ([`super::web_access`]).
    OpenWeb(super::web_access::Opening),
}

impl Order {
    /// Parses and checks a task; the error is the detail of the failed
    /// result the agent reports (an unknown kind is reported, not dropped).
    #[allow(clippy::result_large_err)]
    pub fn parse(task: &Task<'_>) -> Result<Order, String<MAX_DETAIL>> {
        let arg = task.arg.trim();
        match TaskKind::parse(task.kind) {
            Some(TaskKind::Rescan) => Ok(Order::Rescan),
            Some(TaskKind::PollDevice) => match Target::parse(arg) {
                Ok(Target::Single(ip)) => Ok(Order::PollDevice(ip)),
                Ok(Target::V4 { first, last }) if first == last => {
                    Ok(Order::PollDevice(IpAddr::V4(first.into())))
                }
                _ => Err(detail(format_args!(
                    "poll_device wants one address, not {arg:?}"
                ))),
            },
            Some(TaskKind::SetTargets) => {
                let mut list = String::new();
                for t in arg.split([',', ' ']).filter(|s| !s.is_empty()) {
                    if let Err(e) = Target::parse(t) {
                        return Err(detail(format_args!("bad target {t:?}: {}", e.describe())));
                    }
                    let sep = if list.is_empty() { "" } else { "," };
                    if list.push_str(sep).and_then(|()| list.push_str(t)).is_err() {
                        return Err(detail(format_args!(
                            "the target list is longer than {MAX_TARGETS_TEXT} bytes"
                        )));
                    }
                }
                if list.is_empty() {
                    return Err(detail(format_args!(
                        "set_targets needs at least one target"
                    )));
                }
                Ok(Order::SetTargets(list))
            }
            Some(TaskKind::SetSchedule) => match arg.parse::<u64>() {
                Ok(s) if s >= MIN_SCHEDULE_S => Ok(Order::SetSchedule(Duration::from_secs(s))),
                _ => Err(detail(format_args!(
                    "set_schedule wants seconds (at least {MIN_SCHEDULE_S}), not {arg:?}"
                ))),
            },
            Some(TaskKind::SetLogLevel) => LogLevel::parse(arg)
                .map(Order::SetLogLevel)
                .ok_or_else(|| detail(format_args!("unknown log level {arg:?}"))),
            Some(TaskKind::OpenWeb) => super::web_access::Opening::parse(task).map(Order::OpenWeb),
            None => Err(detail(format_args!(
                "this agent does not know task kind {:?}",
                task.kind
            ))),
        }
    }

    /// The task kind this order came from.
    pub fn kind(&self) -> TaskKind {
        match self {
            Order::Rescan => TaskKind::Rescan,
            Order::PollDevice(_) => TaskKind::PollDevice,
            Order::SetTargets(_) => TaskKind::SetTargets,
            Order::SetSchedule(_) => TaskKind::SetSchedule,
            Order::SetLogLevel(_) => TaskKind::SetLogLevel,
            Order::OpenWeb(_) => TaskKind::OpenWeb,
        }
    }
}

/// Formats a detail text, cut at [`MAX_DETAIL`] bytes on a character
/// boundary.
pub fn detail(args: core::fmt::Arguments<'_>) -> String<MAX_DETAIL> {
    let mut out = Truncating(String::new());
    let _ = out.write_fmt(args);
    out.0
}

/// Writes what fits and drops the rest.
struct Truncating<const N: usize>(String<N>);

impl<const N: usize> Write for Truncating<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for c in s.chars() {
            if self.0.push(c).is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// Copies `s` into a fixed-capacity string, cut on a character boundary.
pub fn truncated<const N: usize>(s: &str) -> String<N> {
    let mut out = Truncating(String::new());
    let _ = out.write_str(s);
    out.0
}
