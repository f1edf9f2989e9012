//! The host's journal of batches ([`Journal`]): one file per batch in
//! `DIR/journal/`, named `<position, 20 digits>-<SHA-256, 64 hex>-<made ms
//! or x>.cbor`, so the index is rebuilt from the listing when the journal is
//! opened and there is no second file to keep in step with it. A record is
//! written to a temporary name of its own (the process id and a counter),
//! synced, renamed into place, and the directory synced, so a crash leaves
//! the old listing or the new one. Positions are local: the next one is the
//! greatest on disk plus one.
//!
//! Opening the journal locks the state directory (`DIR/lock`, an exclusive
//! advisory lock, flock or LockFileEx, held until the process ends), so a second `dca push` or
//! `dca run` on the same directory is refused rather than let two writers
//! interleave.
//!
//! The rules of what to send, keep or drop are the session's (dca-core); this
//! file only stores. Reading verifies nothing: the session checks each
//! record against its digest and quarantines what does not match.

use dca_core::sync::batch::{BatchId, parse_record};
use dca_core::sync::journal::{AppendError, Entry, Journal};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};

/// The lock file in the state directory.
const LOCK: &str = "lock";
/// How long a held lock is waited for before the directory is called in use.
/// A lock is held by an open file description, not a process: a child being
/// spawned by any thread of the process that just released it holds a copy
/// until its exec closes it, a moment in which a restart (or a test reopening
/// the directory) would otherwise be refused.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(20);
/// Journal records.
const RECORDS: &str = "journal";
/// Records the cloud refused, each with a `.reason.txt` beside it.
const QUARANTINE: &str = "quarantine";
/// Version 1's journal of request bodies, converted at open.
const V1_OUTBOX: &str = "outbox";

/// A storage failure: what was being done, to which file, and the system's
/// error.
#[derive(Debug)]
pub struct JournalError {
    pub action: &'static str,
    pub path: PathBuf,
    pub error: io::Error,
}

impl JournalError {
    fn new(action: &'static str, path: &Path, error: io::Error) -> JournalError {
        JournalError {
            action,
            path: path.to_path_buf(),
            error,
        }
    }
}

impl std::fmt::Display for JournalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The OS's words first: a log line cut short keeps the cause.
        write!(
            f,
            "cannot {} ({}): {}",
            self.action,
            self.error,
            self.path.display()
        )
    }
}

impl std::error::Error for JournalError {}

/// Why the journal could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another process holds the state directory.
    Locked(PathBuf),
    Io(JournalError),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Locked(dir) => write!(
                f,
                "the state directory {} is in use by another dca process (it holds {}); \
                 stop that one first, or give another --state-dir",
                dir.display(),
                dir.join(LOCK).display()
            ),
            OpenError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<JournalError> for OpenError {
    fn from(e: JournalError) -> Self {
        OpenError::Io(e)
    }
}

/// The exclusive lock on a state directory, held while this value lives.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// Locks `dir` (creating it) for this process, or says who holds it.
pub fn lock_state_dir(dir: &Path) -> Result<StateLock, OpenError> {
    fs::create_dir_all(dir).map_err(|e| JournalError::new("create", dir, e))?;
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| JournalError::new("open", &path, e))?;
    // flock on Unix, LockFileEx on Windows; released by the OS when the
    // process ends, however it ends.
    let deadline = std::time::Instant::now() + LOCK_PATIENCE;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(StateLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(LOCK_RETRY)
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OpenError::Locked(dir.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(JournalError::new("lock", &path, e).into());
            }
        }
    }
}

/// Where a record lives.
#[derive(Debug)]
enum Place {
    File(PathBuf),
    /// The disk refused it: kept for this run only.
    Memory(Vec<u8>),
}

#[derive(Debug)]
struct Held {
    entry: Entry,
    place: Place,
}

/// The journal over a state directory.
#[derive(Debug)]
pub struct FileJournal {
    records: PathBuf,
    quarantine: PathBuf,
    _lock: StateLock,
    entries: BTreeMap<u64, Held>,
    next_pos: u64,
    temp_counter: u64,
    /// Where each quarantined position went, for the shell to say.
    quarantined: BTreeMap<u64, PathBuf>,
    /// What opening found worth telling (recovered writes, converted or
    /// quarantined version 1 batches).
    notices: Vec<String>,
}

/// `<pos>-<digest>-<made>.cbor`.
fn record_name(pos: u64, id: &BatchId, made_ms: Option<u64>) -> String {
    let made = made_ms.map_or_else(|| "x".to_string(), |m| m.to_string());
    format!("{pos:020}-{}-{made}.cbor", hex::encode(id.0))
}

/// The position, id and made time a record's name carries.
fn parse_name(name: &str) -> Option<(u64, BatchId, Option<u64>)> {
    let stem = name.strip_suffix(".cbor")?;
    let mut parts = stem.split('-');
    let (pos, digest, made) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || pos.len() != 20 || digest.len() != 64 {
        return None;
    }
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(pos) {
        return None;
    }
    let made = match made {
        "x" => None,
        m if all_digits(m) => Some(m.parse().ok()?),
        _ => return None,
    };
    let id: [u8; 32] = hex::decode(digest).ok()?.try_into().ok()?;
    Some((pos.parse().ok()?, BatchId(id), made))
}

/// The record name a temporary file will be renamed to:
/// `.<record>.<pid>-<n>.tmp`.
fn temp_target(name: &str) -> Option<&str> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (record, _unique) = inner.rsplit_once('.')?;
    Some(record)
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    // Directories cannot be opened for syncing on every system (Windows);
    // there a rename is as durable as the system makes it.
    match File::open(dir) {
        Ok(d) => d
            .sync_all()
            .or_else(|e| if cfg!(windows) { Ok(()) } else { Err(e) })
            .map_err(|e| JournalError::new("sync", dir, e)),
        Err(_) if cfg!(windows) => Ok(()),
        Err(e) => Err(JournalError::new("open", dir, e)),
    }
}

fn wall_ms(t: std::time::SystemTime) -> Option<u64> {
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
}

/// A disk that is out of space (or over its quota) is full; anything else
/// is a failure naming the file.
fn append_error(action: &'static str, path: &Path, e: io::Error) -> AppendError<JournalError> {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => AppendError::Full,
        _ => AppendError::Failed(JournalError::new(action, path, e)),
    }
}

/// The readings array of a version 1 upload body (`{0: 1, 1: 3, ..., 8:
/// [readings]}`): the bytes of the value under key 8.
fn v1_readings(body: &[u8]) -> Result<&[u8], String> {
    let mut d = minicbor::Decoder::new(body);
    let entries = d
        .map()
        .map_err(|e| format!("not a CBOR map: {e}"))?
        .ok_or("an indefinite-length map")?;
    let (mut version, mut kind, mut readings) = (None, None, None);
    for _ in 0..entries {
        let key = d
            .u64()
            .map_err(|e| format!("a key that is not a number: {e}"))?;
        match key {
            0 => version = Some(d.u64().map_err(|e| format!("version: {e}"))?),
            1 => kind = Some(d.u64().map_err(|e| format!("kind: {e}"))?),
            8 => {
                let start = d.position();
                d.skip().map_err(|e| format!("readings: {e}"))?;
                readings = body.get(start..d.position());
            }
            _ => d.skip().map_err(|e| format!("key {key}: {e}"))?,
        }
    }
    if d.position() != body.len() {
        return Err(format!("trailing bytes after byte {}", d.position()));
    }
    match (version, kind) {
        (Some(1), Some(3)) => readings.ok_or_else(|| "no readings (key 8)".to_string()),
        (v, k) => Err(format!(
            "not a version 1 upload (version {v:?}, kind {k:?})"
        )),
    }
}

impl FileJournal {
    /// Locks the state directory `dir` and opens the journal in it: lists
    /// the records, finishes writes a crash interrupted, and converts
    /// version 1's outbox.
    pub fn open(dir: &Path) -> Result<FileJournal, OpenError> {
        let lock = lock_state_dir(dir)?;
        let records = dir.join(RECORDS);
        fs::create_dir_all(&records).map_err(|e| JournalError::new("create", &records, e))?;
        let mut j = FileJournal {
            records,
            quarantine: dir.join(QUARANTINE),
            _lock: lock,
            entries: BTreeMap::new(),
            next_pos: 1,
            temp_counter: 0,
            quarantined: BTreeMap::new(),
            notices: Vec::new(),
        };
        j.load()?;
        j.convert_v1(&dir.join(V1_OUTBOX));
        Ok(j)
    }

    /// The directory records live in.
    pub fn records_dir(&self) -> &Path {
        &self.records
    }

    /// Where the entry quarantined at `pos` was put.
    pub fn quarantined_at(&self, pos: u64) -> Option<&Path> {
        self.quarantined.get(&pos).map(PathBuf::as_path)
    }

    /// What opening did that a person should hear about.
    pub fn take_notices(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notices)
    }

    /// The length of the largest record held.
    pub fn largest_record(&self) -> usize {
        self.entries
            .values()
            .map(|h| h.entry.len)
            .max()
            .unwrap_or(0)
    }

    /// How many entries are held (delivered ones kept for retention
    /// included), and how many of them are in memory only.
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        let memory = self
            .entries
            .values()
            .filter(|h| matches!(h.place, Place::Memory(_)))
            .count();
        (self.entries.len(), memory)
    }

    fn load(&mut self) -> Result<(), JournalError> {
        let listing =
            fs::read_dir(&self.records).map_err(|e| JournalError::new("list", &self.records, e))?;
        let mut temps = Vec::new();
        let mut found = Vec::new();
        for item in listing {
            let item = item.map_err(|e| JournalError::new("list", &self.records, e))?;
            let Ok(name) = item.file_name().into_string() else {
                continue;
            };
            if let Some(parsed) = parse_name(&name) {
                found.push((parsed, item.path()));
            } else if temp_target(&name).and_then(parse_name).is_some() {
                temps.push(name);
            }
        }
        // A temporary file is a write that a crash interrupted before its
        // rename: finish it. If it was torn, the session finds the digest
        // wrong and quarantines it, so no reading is dropped unseen.
        for name in temps {
            let from = self.records.join(&name);
            let target = temp_target(&name).unwrap_or_default().to_string();
            let to = self.records.join(&target);
            let taken = to.exists()
                || parse_name(&target)
                    .is_some_and(|(pos, ..)| found.iter().any(|((p, ..), _)| *p == pos));
            if taken {
                let visible = name.trim_start_matches('.');
                self.set_aside(&from, visible, "a second write of a journal position")?;
                continue;
            }
            fs::rename(&from, &to).map_err(|e| JournalError::new("rename", &from, e))?;
            sync_dir(&self.records)?;
            self.notices.push(format!(
                "finished an interrupted journal write: {}",
                to.display()
            ));
            if let Some(parsed) = parse_name(&target) {
                found.push((parsed, to));
            }
        }
        found.sort_by_key(|((pos, ..), _)| *pos);
        for ((pos, id, made_ms), path) in found {
            if self.entries.contains_key(&pos) {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                self.set_aside(&path, &name, "a second record at the same journal position")?;
                continue;
            }
            let len = fs::metadata(&path)
                .map_err(|e| JournalError::new("read", &path, e))?
                .len();
            let entry = Entry {
                pos,
                id,
                len: usize::try_from(len).unwrap_or(usize::MAX),
                made_ms,
            };
            self.entries.insert(
                pos,
                Held {
                    entry,
                    place: Place::File(path),
                },
            );
        }
        self.next_pos = self
            .entries
            .keys()
            .next_back()
            .map_or(1, |p| p.saturating_add(1));
        Ok(())
    }

    /// Turns each of version 1's `outbox/<seq>.cbor` (a whole upload body)
    /// into a journal record of its readings, oldest first; a body that
    /// cannot be read that way is quarantined with the reason, never
    /// dropped. Whatever fails stays in place for the next start.
    fn convert_v1(&mut self, outbox: &Path) {
        let listing = match fs::read_dir(outbox) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                self.notices.push(format!(
                    "cannot list the version 1 outbox {}: {e}",
                    outbox.display()
                ));
                return;
            }
        };
        let mut batches = Vec::new();
        let mut unfinished = Vec::new();
        for item in listing.filter_map(Result::ok) {
            let Ok(name) = item.file_name().into_string() else {
                continue;
            };
            let seq = name
                .strip_suffix(".cbor")
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok());
            match seq {
                Some(seq) => batches.push((seq, name)),
                None if name.ends_with(".tmp") => unfinished.push(name),
                None => {}
            }
        }
        batches.sort();
        for (seq, name) in batches {
            let path = outbox.join(&name);
            let done = self.convert_one(&path, &name);
            match done {
                Ok(Some(pos)) => self.notices.push(format!(
                    "version 1 outbox batch {seq} is now journal position {pos}"
                )),
                Ok(None) => {}
                Err(e) => self.notices.push(format!(
                    "cannot convert version 1 outbox batch {}: {e}; left in place for the next start",
                    path.display()
                )),
            }
        }
        for name in unfinished {
            let path = outbox.join(&name);
            let why =
                "an unfinished version 1 outbox write (the agent stopped before it was renamed)";
            if let Err(e) = self.set_aside(&path, &name, why) {
                self.notices.push(format!("{e}"));
            }
        }
        // Only once empty: anything else in it stays where it was.
        let _ = fs::remove_dir(outbox);
    }

    /// Journals one version 1 body; `Ok(None)` when it was quarantined.
    fn convert_one(&mut self, path: &Path, name: &str) -> Result<Option<u64>, String> {
        let body = fs::read(path).map_err(|e| e.to_string())?;
        let record = v1_readings(&body).and_then(|r| {
            parse_record(r)
                .map(|readings| (r, BatchId::of(&readings)))
                .map_err(|e| format!("readings: {e}"))
        });
        let (record, id) = match record {
            Ok(r) => r,
            Err(why) => {
                let reason = format!("a version 1 outbox batch that cannot be converted: {why}");
                self.set_aside(path, name, &reason)
                    .map_err(|e| e.to_string())?;
                self.notices.push(format!(
                    "version 1 outbox batch {} quarantined: {why}",
                    path.display()
                ));
                return Ok(None);
            }
        };
        let made = fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(wall_ms);
        let pos = self.append(&id, made, record).map_err(|e| e.to_string())?;
        // The readings are in the journal now; the old copy goes.
        fs::remove_file(path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        Ok(Some(pos))
    }

    /// A name in the quarantine that is not taken.
    fn free_quarantine_name(&self, name: &str) -> PathBuf {
        let mut dest = self.quarantine.join(name);
        let mut n = 1u32;
        while dest.exists() || reason_path(&dest).exists() {
            dest = self.quarantine.join(format!("{name}.{n}"));
            n = n.saturating_add(1);
        }
        dest
    }

    /// Moves a file into the quarantine with `reason` beside it; returns
    /// where it went.
    fn set_aside(
        &mut self,
        from: &Path,
        name: &str,
        reason: &str,
    ) -> Result<PathBuf, JournalError> {
        fs::create_dir_all(&self.quarantine)
            .map_err(|e| JournalError::new("create", &self.quarantine, e))?;
        let dest = self.free_quarantine_name(name);
        self.write_reason(&dest, reason)?;
        fs::rename(from, &dest).map_err(|e| JournalError::new("move", from, e))?;
        sync_dir(&self.quarantine)?;
        if let Some(parent) = from.parent() {
            sync_dir(parent)?;
        }
        Ok(dest)
    }

    fn write_reason(&mut self, dest: &Path, reason: &str) -> Result<(), JournalError> {
        let text = format!(
            "{reason}\nquarantined_ms: {}\n",
            wall_ms(std::time::SystemTime::now())
                .map_or_else(|| "unknown".into(), |m| m.to_string())
        );
        self.write_file(&reason_path(dest), text.as_bytes())
            .map_err(|(action, path, e)| JournalError::new(action, &path, e))
    }

    /// Writes `bytes` to `path` through a temporary name of this process,
    /// synced, then renamed; the caller syncs the directory.
    fn write_file(
        &mut self,
        path: &Path,
        bytes: &[u8],
    ) -> Result<(), (&'static str, PathBuf, io::Error)> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.temp_counter = self.temp_counter.wrapping_add(1);
        let tmp = dir.join(format!(
            ".{name}.{}-{}.tmp",
            std::process::id(),
            self.temp_counter
        ));
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let written = opts
            .open(&tmp)
            .map_err(|e| ("create", e))
            .and_then(|mut f| {
                f.write_all(bytes)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| ("write", e))
            })
            .and_then(|()| fs::rename(&tmp, path).map_err(|e| ("rename", e)));
        written.map_err(|(action, e)| {
            let _ = fs::remove_file(&tmp);
            (action, tmp, e)
        })
    }

    /// Holds the entry at `pos` (the next position) and moves the next
    /// position past it.
    fn insert_at(
        &mut self,
        pos: u64,
        id: &BatchId,
        made_ms: Option<u64>,
        len: usize,
        place: Place,
    ) {
        self.next_pos = pos.saturating_add(1);
        self.entries.insert(
            pos,
            Held {
                entry: Entry {
                    pos,
                    id: *id,
                    len,
                    made_ms,
                },
                place,
            },
        );
    }
}

fn reason_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".reason.txt");
    PathBuf::from(s)
}

impl Journal for FileJournal {
    type Error = JournalError;

    fn append(
        &mut self,
        id: &BatchId,
        made_ms: Option<u64>,
        record: &[u8],
    ) -> Result<u64, AppendError<JournalError>> {
        let pos = self.next_pos;
        let path = self.records.join(record_name(pos, id, made_ms));
        self.write_file(&path, record)
            .map_err(|(action, at, e)| append_error(action, &at, e))?;
        if let Err(e) = sync_dir(&self.records) {
            // Not durable: take it back, so the session's copy in memory is
            // the only one.
            let _ = fs::remove_file(&path);
            return Err(append_error(e.action, &e.path, e.error));
        }
        self.insert_at(pos, id, made_ms, record.len(), Place::File(path));
        Ok(pos)
    }

    fn hold_in_memory(&mut self, id: &BatchId, made_ms: Option<u64>, record: &[u8]) -> Option<u64> {
        let pos = self.next_pos;
        self.insert_at(
            pos,
            id,
            made_ms,
            record.len(),
            Place::Memory(record.to_vec()),
        );
        Some(pos)
    }

    fn next(&mut self, after: Option<u64>) -> Result<Option<Entry>, JournalError> {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .entries
            .range((from, Bound::Unbounded))
            .next()
            .map(|(_, h)| h.entry))
    }

    fn read(&mut self, pos: u64, buf: &mut [u8]) -> Result<usize, JournalError> {
        let held = self.entries.get(&pos).ok_or_else(|| {
            JournalError::new(
                "find",
                &self.records,
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no entry at position {pos}"),
                ),
            )
        })?;
        let cap = buf.len();
        let too_small = |path: &Path, len: usize| {
            JournalError::new(
                "read",
                path,
                io::Error::other(format!(
                    "the record ({len} bytes or more) is larger than the buffer of {cap} bytes"
                )),
            )
        };
        match &held.place {
            Place::Memory(record) => {
                let dst = buf
                    .get_mut(..record.len())
                    .ok_or_else(|| too_small(&self.records, record.len()))?;
                dst.copy_from_slice(record);
                Ok(record.len())
            }
            Place::File(path) => {
                let mut f = File::open(path).map_err(|e| JournalError::new("open", path, e))?;
                let mut n = 0;
                while let Some(room) = buf.get_mut(n..).filter(|r| !r.is_empty()) {
                    match f.read(room) {
                        Ok(0) => return Ok(n),
                        Ok(k) => n += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(JournalError::new("read", path, e)),
                    }
                }
                // The buffer is full: the file must end here.
                let mut probe = [0u8; 1];
                match f.read(&mut probe) {
                    Ok(0) => {}
                    Ok(_) => return Err(too_small(path, n + 1)),
                    Err(e) => return Err(JournalError::new("read", path, e)),
                }
                Ok(n)
            }
        }
    }

    fn remove(&mut self, pos: u64) -> Result<(), JournalError> {
        if let Some(Held {
            place: Place::File(path),
            ..
        }) = self.entries.get(&pos)
        {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(JournalError::new("remove", path, e)),
            }
        }
        // A lost removal costs a copy the cloud already holds: no sync.
        self.entries.remove(&pos);
        Ok(())
    }

    fn quarantine(&mut self, pos: u64, reason: &str) -> Result<(), JournalError> {
        let Some(held) = self.entries.get(&pos) else {
            return Ok(());
        };
        let name = record_name(pos, &held.entry.id, held.entry.made_ms);
        let dest = match &held.place {
            Place::File(path) => {
                let path = path.clone();
                self.set_aside(&path, &name, reason)?
            }
            Place::Memory(record) => {
                let record = record.clone();
                fs::create_dir_all(&self.quarantine)
                    .map_err(|e| JournalError::new("create", &self.quarantine, e))?;
                let dest = self.free_quarantine_name(&name);
                self.write_reason(&dest, reason)?;
                self.write_file(&dest, &record)
                    .map_err(|(action, path, e)| JournalError::new(action, &path, e))?;
                sync_dir(&self.quarantine)?;
                dest
            }
        };
        self.entries.remove(&pos);
        self.quarantined.insert(pos, dest);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let d = std::env::temp_dir().join(format!("dca-journal-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            TempDir(d)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A record of `n` small readings-like items (the journal does not look
    /// inside; the digest is the one the session would compute).
    fn record(n: u64, tag: u8) -> (Vec<u8>, BatchId) {
        let mut items = Vec::new();
        for i in 0..n {
            // {0: i, 1: tag}
            items.extend_from_slice(&[0xa2, 0x00, (i % 24) as u8, 0x01, tag % 24]);
        }
        let mut rec = vec![0x80 | n as u8];
        rec.extend_from_slice(&items);
        let id = BatchId::of(&parse_record(&rec).unwrap());
        (rec, id)
    }

    fn read_all(j: &mut FileJournal) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut after = None;
        while let Some(e) = j.next(after).unwrap() {
            let mut buf = vec![0u8; e.len];
            let n = j.read(e.pos, &mut buf).unwrap();
            buf.truncate(n);
            out.push((e.pos, buf));
            after = Some(e.pos);
        }
        out
    }

    #[test]
    fn positions_and_records_survive_a_reopen() {
        let dir = TempDir::new("reopen");
        let (a, ida) = record(2, 1);
        let (b, idb) = record(3, 2);
        let (c, idc) = record(1, 3);
        {
            let mut j = FileJournal::open(&dir.0).unwrap();
            assert_eq!(j.append(&ida, Some(1_795_000_000_000), &a).unwrap(), 1);
            assert_eq!(j.append(&idb, None, &b).unwrap(), 2);
            assert_eq!(j.append(&idc, None, &c).unwrap(), 3);
            j.remove(1).unwrap();
        }
        let mut j = FileJournal::open(&dir.0).unwrap();
        let e = j.next(None).unwrap().unwrap();
        assert_eq!((e.pos, e.id, e.len, e.made_ms), (2, idb, b.len(), None));
        assert_eq!(read_all(&mut j), vec![(2, b.clone()), (3, c.clone())]);
        // The next position follows the greatest on disk.
        assert_eq!(j.append(&ida, Some(7), &a).unwrap(), 4);
        let names: Vec<String> = fs::read_dir(dir.0.join(RECORDS))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names.contains(&format!("{:020}-{}-7.cbor", 4, hex::encode(ida.0))),
            "{names:?}"
        );
        assert!(names.iter().all(|n| parse_name(n).is_some()), "{names:?}");
        // Removing everything and reopening starts again at 1: positions
        // are local and nothing else remembers them.
        for p in [2, 3, 4] {
            j.remove(p).unwrap();
        }
        drop(j);
        let mut j = FileJournal::open(&dir.0).unwrap();
        assert_eq!(j.next(None).unwrap(), None);
        assert_eq!(j.append(&ida, None, &a).unwrap(), 1);
    }

    #[test]
    fn names_parse_back() {
        let id = BatchId([0xab; 32]);
        let n = record_name(42, &id, Some(1_795_000_000_000));
        assert_eq!(parse_name(&n), Some((42, id, Some(1_795_000_000_000))));
        let n = record_name(u64::MAX, &id, None);
        assert_eq!(parse_name(&n), Some((u64::MAX, id, None)));
        for bad in [
            "1-ab-x.cbor",
            "notes.txt",
            &record_name(1, &id, None).replace(".cbor", ".tmp"),
            &record_name(1, &id, None).replace("-x.", "-1x."),
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn temporary_names_are_unique_and_interrupted_writes_are_finished() {
        let dir = TempDir::new("temps");
        let (a, ida) = record(2, 1);
        let mut j = FileJournal::open(&dir.0).unwrap();
        // Two writes of the same target get different temporary names,
        // each carrying this process's id.
        let target = dir.0.join("x");
        j.write_file(&target, b"1").unwrap();
        let first = j.temp_counter;
        j.write_file(&target, b"2").unwrap();
        assert_ne!(first, j.temp_counter);
        let pid = std::process::id().to_string();
        let tmp = format!(".x.{pid}-{}.tmp", j.temp_counter);
        assert_eq!(temp_target(&tmp), Some("x"));
        assert_eq!(fs::read(&target).unwrap(), b"2");
        drop(j);
        // A crash between the sync and the rename leaves a temporary file:
        // the next open finishes the rename.
        let name = record_name(5, &ida, None);
        let left = dir.0.join(RECORDS).join(format!(".{name}.999999-1.tmp"));
        fs::write(&left, &a).unwrap();
        let mut j = FileJournal::open(&dir.0).unwrap();
        assert_eq!(read_all(&mut j), vec![(5, a.clone())]);
        assert!(!left.exists());
        assert_eq!(j.take_notices().len(), 1);
        assert_eq!(j.append(&ida, None, &a).unwrap(), 6);
        // Nothing temporary is left behind by ordinary writes.
        let stray: Vec<_> = fs::read_dir(dir.0.join(RECORDS))
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().into_string().ok())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(stray.is_empty(), "{stray:?}");
    }

    #[test]
    fn a_second_opener_is_refused_while_the_first_holds_the_directory() {
        let dir = TempDir::new("lock");
        let j = FileJournal::open(&dir.0).unwrap();
        let err = FileJournal::open(&dir.0).unwrap_err();
        assert!(matches!(err, OpenError::Locked(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&dir.0.display().to_string()), "{text}");
        assert!(text.contains("in use by another dca process"), "{text}");
        assert!(matches!(lock_state_dir(&dir.0), Err(OpenError::Locked(_))));
        drop(j);
        FileJournal::open(&dir.0).unwrap();
    }

    /// A copy of the lock's descriptor outliving its holder for a moment (a
    /// child being spawned by another thread, before its exec closes it)
    /// does not make the directory look taken by another process.
    #[test]
    fn a_lock_released_while_a_copy_lingers_is_taken_once_the_copy_closes() {
        let dir = TempDir::new("lock-copy");
        let lock = lock_state_dir(&dir.0).unwrap();
        let copy = lock._file.try_clone().unwrap();
        drop(lock);
        // The copy still holds the lock: a reopen now has to wait for it.
        let lingering = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(copy);
        });
        let reopened = lock_state_dir(&dir.0);
        lingering.join().unwrap();
        assert!(reopened.is_ok(), "{reopened:?}");
    }

    #[test]
    fn quarantine_keeps_the_record_and_the_reason() {
        let dir = TempDir::new("quarantine");
        let (a, ida) = record(2, 1);
        let (b, idb) = record(2, 2);
        let mut j = FileJournal::open(&dir.0).unwrap();
        j.append(&ida, None, &a).unwrap();
        let mem = j.hold_in_memory(&idb, None, &b).unwrap();
        assert_eq!(mem, 2);
        j.quarantine(1, "400: malformed CBOR at byte 7").unwrap();
        j.quarantine(mem, "413: too large").unwrap();
        assert_eq!(j.next(None).unwrap(), None);
        for (pos, rec, why) in [(1, &a, "malformed CBOR"), (2, &b, "too large")] {
            let path = j.quarantined_at(pos).unwrap().to_path_buf();
            assert!(path.starts_with(dir.0.join(QUARANTINE)));
            assert_eq!(&fs::read(&path).unwrap(), rec);
            let reason = fs::read_to_string(reason_path(&path)).unwrap();
            assert!(reason.contains(why), "{reason}");
        }
        drop(j);
        // Quarantined records stay out of the journal after a reopen.
        let mut j = FileJournal::open(&dir.0).unwrap();
        assert_eq!(j.next(None).unwrap(), None);
    }

    #[test]
    fn memory_entries_are_delivered_in_order_and_not_kept() {
        let dir = TempDir::new("memory");
        let (a, ida) = record(1, 1);
        let (b, idb) = record(1, 2);
        let mut j = FileJournal::open(&dir.0).unwrap();
        assert_eq!(j.append(&ida, None, &a).unwrap(), 1);
        assert_eq!(j.hold_in_memory(&idb, None, &b), Some(2));
        assert_eq!(j.append(&ida, None, &a).unwrap(), 3);
        assert_eq!(j.counts(), (3, 1));
        assert_eq!(
            read_all(&mut j),
            vec![(1, a.clone()), (2, b.clone()), (3, a.clone())]
        );
        let mut small = [0u8; 1];
        assert!(j.read(2, &mut small).is_err());
        assert!(j.read(3, &mut small).is_err());
        drop(j);
        let mut j = FileJournal::open(&dir.0).unwrap();
        assert_eq!(read_all(&mut j), vec![(1, a.clone()), (3, a)]);
    }

    /// A v1 upload body: {0: 1, 1: 3, 7: seq, 6: clock, 8: readings}.
    fn v1_body(seq: u8, readings: &[u8]) -> Vec<u8> {
        let mut body = vec![0xa5, 0x00, 0x01, 0x01, 0x03, 0x07, seq & 0x17];
        body.extend_from_slice(&[0x06, 0xa2, 0x01, 0x50]);
        body.extend_from_slice(&[0x5a; 16]);
        body.extend_from_slice(&[0x02, 0x05, 0x08]);
        body.extend_from_slice(readings);
        body
    }

    #[test]
    fn a_version_1_outbox_is_converted_or_quarantined_never_dropped() {
        let dir = TempDir::new("v1");
        let outbox = dir.0.join(V1_OUTBOX);
        fs::create_dir_all(&outbox).unwrap();
        let (a, ida) = record(2, 1);
        let (b, idb) = record(3, 2);
        fs::write(outbox.join("00000000000000000010.cbor"), v1_body(10, &b)).unwrap();
        fs::write(outbox.join("00000000000000000002.cbor"), v1_body(2, &a)).unwrap();
        fs::write(outbox.join("00000000000000000011.cbor"), b"\xa1\x00").unwrap();
        fs::write(outbox.join("00000000000000000012.tmp"), b"half").unwrap();
        fs::write(outbox.join("notes.txt"), b"mine").unwrap();
        let mut j = FileJournal::open(&dir.0).unwrap();
        // Oldest first, as the cloud would have had them.
        assert_eq!(read_all(&mut j), vec![(1, a.clone()), (2, b.clone())]);
        assert_eq!(j.next(None).unwrap().unwrap().id, ida);
        assert_eq!(j.next(Some(1)).unwrap().unwrap().id, idb);
        let notices = j.take_notices().join("\n");
        assert!(
            notices.contains("batch 2 is now journal position 1"),
            "{notices}"
        );
        assert!(notices.contains("quarantined"), "{notices}");
        // The converted bodies are gone from the outbox; the rest is set
        // aside with reasons, or left alone when it is not ours.
        let left: Vec<String> = fs::read_dir(&outbox)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["notes.txt"]);
        let q = dir.0.join(QUARANTINE);
        let bad = q.join("00000000000000000011.cbor");
        assert_eq!(fs::read(&bad).unwrap(), b"\xa1\x00");
        assert!(
            fs::read_to_string(reason_path(&bad))
                .unwrap()
                .contains("cannot be converted")
        );
        assert!(reason_path(&q.join("00000000000000000012.tmp")).exists());
        drop(j);
        // Converted once: a reopen finds the same two records.
        let mut j = FileJournal::open(&dir.0).unwrap();
        assert_eq!(read_all(&mut j), vec![(1, a), (2, b)]);
    }

    #[test]
    fn v1_bodies_are_split_at_key_8() {
        let (a, _) = record(2, 1);
        assert_eq!(v1_readings(&v1_body(3, &a)).unwrap(), &a[..]);
        assert!(v1_readings(&[0xa2, 0x00, 0x02, 0x01, 0x03]).is_err());
        let mut trailing = v1_body(3, &a);
        trailing.push(0);
        assert!(v1_readings(&trailing).unwrap_err().contains("trailing"));
    }

    #[test]
    fn enospc_from_the_system_is_a_full_journal() {
        // /dev/full answers every write with ENOSPC: the kernel's own error,
        // through the same mapping the journal uses.
        let Ok(mut f) = OpenOptions::new().write(true).open("/dev/full") else {
            eprintln!("skipped: no /dev/full on this system");
            return;
        };
        let e = f.write_all(b"x").and_then(|()| f.sync_all()).unwrap_err();
        assert!(matches!(
            append_error("write", Path::new("/dev/full"), e),
            AppendError::Full
        ));
        let other = io::Error::from(io::ErrorKind::PermissionDenied);
        match append_error("write", Path::new("/x/y"), other) {
            AppendError::Failed(e) => {
                let text = e.to_string();
                assert!(text.contains("/x/y") && text.contains("denied"), "{text}");
            }
            AppendError::Full => panic!("permission denied is not a full disk"),
        }
    }

    /// A tiny tmpfs, mounted for the test and unmounted after it.
    pub(crate) struct Mount(pub PathBuf);

    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A 64 KiB tmpfs, or `None` (said on stderr) where this process
    /// cannot mount one.
    pub(crate) fn tmpfs(name: &str) -> Option<Mount> {
        let at = std::env::temp_dir().join(format!("dca-tmpfs-{name}-{}", std::process::id()));
        let _ = fs::create_dir_all(&at);
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,nr_inodes=64", "tmpfs"])
            .arg(&at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            let _ = fs::remove_dir_all(&at);
            eprintln!(
                "skipped: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN); \
                 enospc_from_the_system_is_a_full_journal covers the error mapping"
            );
            return None;
        }
        Some(Mount(at))
    }

    #[test]
    fn a_full_disk_is_reported_full_and_the_batch_is_held_in_memory() {
        let Some(mount) = tmpfs("full") else {
            return;
        };
        let mut j = FileJournal::open(&mount.0).unwrap();
        // 16 KiB records: the fifth cannot fit in 64 KiB with the
        // directories' own blocks.
        let big: Vec<u8> = {
            // An array of one byte string of 16,000 bytes.
            let mut r = vec![0x81, 0x59, 0x3e, 0x80];
            r.resize(4 + 16_000, 0x42);
            r
        };
        let id = BatchId::of(&parse_record(&big).unwrap());
        let mut full = false;
        for _ in 0..8 {
            match j.append(&id, None, &big) {
                Ok(_) => {}
                Err(AppendError::Full) => {
                    full = true;
                    break;
                }
                Err(AppendError::Failed(e)) => panic!("ENOSPC must be Full, got {e}"),
            }
        }
        assert!(full, "64 KiB held eight 16 KiB records");
        let pos = j.hold_in_memory(&id, None, &big).unwrap();
        let mut back = vec![0u8; big.len()];
        assert_eq!(j.read(pos, &mut back).unwrap(), big.len());
        assert_eq!(back, big);
        // The failed write left no temporary file behind.
        let stray = fs::read_dir(j.records_dir())
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().into_string().ok())
            .any(|n| n.ends_with(".tmp"));
        assert!(!stray);
        drop(j);
    }
}
