//! The agent's log. Lines are `tracing` events at their level, filtered by
//! the level the configuration or the cloud sets (live: `set_log_level`
//! changes [`Log::level`]). One subscriber writes them where the platform
//! keeps a service's words:
//!
//! - under systemd (its journal holds our stderr), each line starts with the
//!   journal's priority, `<3>` for an error to `<7>` for debug, so
//!   `journalctl -p warning` works and timestamps are the journal's;
//! - where there is no journal and a file is configured, to that file with
//!   a timestamp and the level, rotated by size;
//! - otherwise to stderr as `dca run: what happened`.

use dca_core::sync::task::LogLevel;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tracing::Level;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

fn rank(l: LogLevel) -> usize {
    LogLevel::ALL.iter().position(|x| *x == l).unwrap_or(2)
}

/// Lines filtered by the level the cloud may set.
#[derive(Debug, Clone, Copy)]
pub struct Log {
    pub prefix: &'static str,
    pub level: LogLevel,
}

impl Log {
    pub fn new(prefix: &'static str) -> Log {
        init(None);
        Log {
            prefix,
            level: LogLevel::Info,
        }
    }

    pub fn at(&self, level: LogLevel, msg: impl std::fmt::Display) {
        if rank(level) <= rank(self.level) {
            emit(level, self.prefix, &msg);
        }
    }

    /// A line whatever the level (start and stop).
    pub fn say(&self, msg: impl std::fmt::Display) {
        emit(LogLevel::Info, self.prefix, &msg);
    }

    pub fn error(&self, msg: impl std::fmt::Display) {
        self.at(LogLevel::Error, msg);
    }

    pub fn warn(&self, msg: impl std::fmt::Display) {
        self.at(LogLevel::Warn, msg);
    }

    pub fn info(&self, msg: impl std::fmt::Display) {
        self.at(LogLevel::Info, msg);
    }

    pub fn debug(&self, msg: impl std::fmt::Display) {
        self.at(LogLevel::Debug, msg);
    }
}

fn emit(level: LogLevel, prefix: &str, msg: &dyn std::fmt::Display) {
    match level {
        LogLevel::Error => tracing::error!("{prefix}: {msg}"),
        LogLevel::Warn => tracing::warn!("{prefix}: {msg}"),
        LogLevel::Info => tracing::info!("{prefix}: {msg}"),
        LogLevel::Debug => tracing::debug!("{prefix}: {msg}"),
        LogLevel::Trace => tracing::trace!("{prefix}: {msg}"),
    }
}

/// A file log: where, how large before it is rotated, how many old files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLog {
    pub path: PathBuf,
    pub max_bytes: u64,
    pub keep: u32,
}

/// Installs the subscriber once per process; the first call decides where
/// lines go. `file` is used only where there is no journal.
pub fn init(file: Option<&FileLog>) {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let (sink, trouble) = choose(file);
        let subscriber = tracing_subscriber::registry().with(Lines {
            sink: Mutex::new(sink),
        });
        // Fails only if another subscriber is set: then lines go there.
        let _ = tracing::subscriber::set_global_default(subscriber);
        if let Some(t) = trouble {
            tracing::warn!("{t}");
        }
    });
}

fn choose(file: Option<&FileLog>) -> (Sink, Option<String>) {
    if under_journal() {
        return (Sink::Journal, None);
    }
    match file {
        None => (Sink::Stderr, None),
        Some(f) => match Rotating::open(f.clone()) {
            Ok(r) => (Sink::File(r), None),
            Err(e) => (
                Sink::Stderr,
                Some(format!(
                    "cannot log to {}: {e}; logging to stderr instead",
                    f.path.display()
                )),
            ),
        },
    }
}

/// True when stderr is the journal's stream: systemd says which one in
/// JOURNAL_STREAM (`device:inode`), and a child whose stderr was redirected
/// elsewhere must not take it for the journal.
fn under_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let stream = stream.to_string_lossy();
        let Some((dev, ino)) = stream.split_once(':') else {
            return false;
        };
        let fd = if Path::new("/proc/self/fd/2").exists() {
            "/proc/self/fd/2"
        } else {
            "/dev/fd/2"
        };
        std::fs::metadata(fd)
            .is_ok_and(|m| dev.parse() == Ok(m.dev()) && ino.parse() == Ok(m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = stream;
        false
    }
}

enum Sink {
    Stderr,
    Journal,
    File(Rotating),
}

/// The journal's priority of a level (sd-daemon's `<n>` prefixes).
pub fn journal_line(level: Level, line: &str) -> String {
    let priority = match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    };
    // One event, one entry: a newline inside would start an entry of its
    // own, at the default priority.
    format!("<{priority}>{}\n", line.replace('\n', " "))
}

/// The subscriber's one layer: each event's message, as one line.
struct Lines {
    sink: Mutex<Sink>,
}

#[derive(Default)]
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Lines {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut m = Message::default();
        event.record(&mut m);
        let level = *event.metadata().level();
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *sink {
            Sink::Stderr => eprintln!("{}", m.0),
            Sink::Journal => {
                let _ = std::io::stderr().write_all(journal_line(level, &m.0).as_bytes());
            }
            Sink::File(f) => {
                let line = format!("{} {level:>5} {}\n", utc_now(), m.0);
                if let Err(e) = f.write(line.as_bytes()) {
                    // The disk is full or gone: the line still goes
                    // somewhere, and the next one tries the file again.
                    eprintln!("{}", m.0);
                    eprintln!("(cannot write the log {}: {e})", f.cfg.path.display());
                }
            }
        }
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let t = dca_core::time::UtcDateTime::from_unix_secs(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// A log file rotated by size: `dca.log` becomes `dca.log.1`, which
/// becomes `dca.log.2`, up to `keep` old files.
pub struct Rotating {
    cfg: FileLog,
    file: std::fs::File,
    size: u64,
}

impl Rotating {
    pub fn open(cfg: FileLog) -> std::io::Result<Rotating> {
        if let Some(dir) = cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = Self::append(&cfg.path)?;
        let size = file.metadata()?.len();
        Ok(Rotating { cfg, file, size })
    }

    fn append(path: &Path) -> std::io::Result<std::fs::File> {
        let mut o = std::fs::OpenOptions::new();
        o.create(true).append(true);
        // The log names devices and addresses of the customer's network.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        o.open(path)
    }

    fn old(&self, n: u32) -> PathBuf {
        let mut p = self.cfg.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    pub fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 > self.cfg.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.cfg.keep == 0 {
            let _ = std::fs::remove_file(&self.cfg.path);
        } else {
            let _ = std::fs::remove_file(self.old(self.cfg.keep));
            for n in (1..self.cfg.keep).rev() {
                let from = self.old(n);
                if from.exists() {
                    std::fs::rename(&from, self.old(n + 1))?;
                }
            }
            // Deleted by someone else meanwhile: nothing to keep, and the
            // new file below is the fresh start.
            match std::fs::rename(&self.cfg.path, self.old(1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        self.file = Self::append(&self.cfg.path)?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_lines_carry_the_priority_and_stay_one_entry() {
        assert_eq!(journal_line(Level::ERROR, "dca run: x"), "<3>dca run: x\n");
        assert_eq!(journal_line(Level::WARN, "a"), "<4>a\n");
        assert_eq!(journal_line(Level::INFO, "a"), "<6>a\n");
        assert_eq!(
            journal_line(Level::DEBUG, "a\n<3>forged"),
            "<7>a <3>forged\n"
        );
    }

    #[test]
    fn the_file_log_rotates_by_size_and_keeps_so_many() {
        let dir = std::env::temp_dir().join(format!("dca-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = FileLog {
            path: dir.join("logs/dca.log"),
            max_bytes: 100,
            keep: 2,
        };
        let mut r = Rotating::open(cfg.clone()).unwrap();
        for i in 0..30 {
            r.write(format!("line {i:02} of the log, twenty-nine bytes\n").as_bytes())
                .unwrap();
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        // 38-byte lines, 100 bytes a file: two lines each; the newest two
        // files and the current one are kept.
        assert_eq!(read(&cfg.path).lines().count(), 2);
        assert!(read(&cfg.path).ends_with("line 29 of the log, twenty-nine bytes\n"));
        assert!(read(&r.old(1)).starts_with("line 26"));
        assert!(read(&r.old(2)).starts_with("line 24"));
        assert!(!r.old(3).exists());
        // Reopened, it appends and counts what is there.
        let mut again = Rotating::open(cfg.clone()).unwrap();
        assert_eq!(again.size, 76);
        again.write(b"x\n").unwrap();
        assert_eq!(read(&cfg.path).lines().count(), 3);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&cfg.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        // The current file deleted under it (by an admin, a cleaner): the
        // next rotation starts a new one instead of failing on every line.
        std::fs::remove_file(&cfg.path).unwrap();
        for _ in 0..3 {
            again
                .write(b"after the file was deleted: 37 bytes\n")
                .unwrap();
        }
        assert!(read(&cfg.path).starts_with("after the file was deleted"));
    }

    #[test]
    fn utc_timestamps_read_as_dates() {
        let t = utc_now();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
