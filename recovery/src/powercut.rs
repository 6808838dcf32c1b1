//! `apcdb powercut`: the power-loss simulator.
//!
//! A single-threaded random workload runs on a store opened with a recording [`apcdb::StorageIo`]
//! (the engine's seam for every byte and flush that reaches the disk) that wraps the real files and
//! sees every write to the data file (map stores) and to the journal, every growth, and every flush
//! from its start to its end. The recorder keeps what the disk holds for sure (the bytes as of
//! their last flush) and what is only in the page cache. At random moments — inside those calls,
//! i.e. in the middle of a write, a commit, a checkpoint or a file growth, and between operations
//! — it builds a crash image: the durable bytes, plus for each data page written since its last flush either the old
//! page, the new page, or a mix of the two at 512-byte sectors, plus the journal's unflushed writes
//! cut at any byte. Each image gets the engine's offline check, is opened (which runs recovery) and
//! read back, and its whole content is compared with the workload's model:
//!
//! - `sync`: the image must hold exactly the state before or after the operation in flight —
//!   nothing acknowledged lost, nothing torn, batches whole;
//! - `periodic`/`none`: it must hold a state the workload actually passed through since its last
//!   explicit `sync()` (a prefix of the history: consistent, nothing torn, batches whole).
//!
//! A flush covers what was written before it started: the recorder notes, when a flush starts,
//! which journal writes and which data pages (with their content then) it covers, and persists
//! exactly those when it returns; a page written again while it runs stays unflushed, and a
//! journal write made meanwhile stays pending. So a write racing a flush is never counted as
//! flushed, which is what a multi-threaded workload needs from the recorder. A flush that ends
//! after a later one of the same page keeps the later one's bytes.
//!
//! **Writes racing a flush.** The workload is single-threaded (the checker's model of acceptable
//! states assumes one operation at a time), but a flush that runs without the write lock (a
//! checkpoint's, which a write runs before it takes the lock) lets other writers commit. To put
//! writes there, the recorder itself, between a data flush's start and its end, sometimes runs a
//! put of a racer key (`r/…`) on the store, outside the lock, as another thread would: its pages
//! and journal record land while the flush is in progress and are not covered by it. A racer
//! attempted while the write lock is held (a flush inside a checkpoint) is refused as re-entrant
//! and changes nothing. The states a racer adds are acceptable from its start (with the operation
//! in flight's before and after: the racer may land before that operation commits), and once it
//! returns in sync mode only the states with it are. No racer runs during a clear.
//!
//! A growth of the data file (`fallocate`) is lost or kept at random until a data flush follows it
//! (`msync` persists the file size like `fdatasync`). The lock file holds no durable state: images
//! start with an empty one.

use crate::crash::value::{self, WriteId};
use crate::rng::Rng;
use apcdb::{
    Durability, FileKind, MappedRange, Options, Paths, RealIo, StorageIo, Store, SyncKind, Update,
};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PAGE: u64 = 4096;
const SECTOR: usize = 512;
const KEYS: u64 = 48;
const COUNTERS: u64 = 3;
const RACE_KEYS: u64 = 8;
/// Chance, per mille, that a data flush gets a racing write.
const RACE_PER_MILLE: u64 = 1000;

pub struct PowercutConfig {
    pub images: u64,
    pub durability: Durability,
    pub seed: u64,
    pub dir: PathBuf,
    /// Chance, per mille, that a call through the I/O seam becomes a crash moment.
    pub per_mille: u64,
    /// Simulate a disk that acknowledges journal flushes and then loses them: the simulator must
    /// report failures in sync mode (a check of the checker).
    pub lying_disk: bool,
}

#[derive(Default)]
pub struct PowercutTotals {
    pub images: u64,
    pub operations: u64,
    /// Images with unflushed data pages, with an unflushed journal tail, with a lost growth.
    pub with_dirty_pages: u64,
    pub with_journal_cut: u64,
    pub with_growth_lost: u64,
    /// Racer puts committed while a data flush was in progress.
    pub racing_writes: u64,
    pub failures: Vec<String>,
}

/// What the workload's state may legitimately be on a crash image.
struct Allowed {
    /// Sync mode: the state before and after the operation in flight.
    pre: u64,
    post: u64,
    /// Sync mode: the states a racing write in progress adds.
    racing: Vec<u64>,
    /// Relaxed modes: every state since the last explicit `sync()`.
    history: HashSet<u64>,
}

struct Recorder {
    data_path: PathBuf,
    durable_data: Vec<u8>,
    /// The data file length that is surely on disk; `durable_data` may be longer (unflushed growth).
    synced_len: u64,
    durable_journal: Vec<u8>,
    /// Data pages written since their last flush, each with the serial number of its last write.
    dirty: BTreeMap<u64, u64>,
    writes: u64,
    pending_journal: Vec<(u64, Vec<u8>)>,
    rng: Rng,
    per_mille: u64,
    strict: bool,
    allowed: Allowed,
    image_dir: PathBuf,
    keep_dir: PathBuf,
    totals: PowercutTotals,
    max_images: u64,
    /// Set once the durable baseline is taken; calls before that change nothing.
    armed: bool,
    lying_disk: bool,
    /// Serial number of the write whose bytes `durable_data` holds, per flushed page.
    durable_serial: BTreeMap<u64, u64>,
    /// A racer is in progress (no racer inside it).
    racing: bool,
    /// No racer during this operation (a clear: a racer before its commit would be cleared).
    no_race: bool,
    /// What the racers of the operation in flight changed, not yet in `allowed.pre`.
    raced_before: u64,
    race_seq: u64,
    /// The racer keys' values in the store, and the racer puts made during the operation in
    /// flight (the workload adds them to its model when the operation returns).
    race_model: BTreeMap<Vec<u8>, Vec<u8>>,
    raced: Vec<(Vec<u8>, Vec<u8>)>,
}

struct Shared {
    recorder: Mutex<Recorder>,
    /// The store, for racer writes (set once it is open).
    store: std::sync::OnceLock<std::sync::Weak<Store>>,
}

/// A data flush in progress: the dirty pages of its range as they were when it started, with
/// their write serial numbers, and the file length then.
struct DataFlush {
    pages: Vec<(u64, u64, Vec<u8>)>,
    len: usize,
}

impl Shared {
    fn recorder(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.recorder.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn journal_written(&self, off: u64, bytes: &[u8]) {
        let mut r = self.recorder();
        if !r.armed {
            return;
        }
        r.pending_journal.push((off, bytes.to_vec()));
        r.maybe_crash("journal written");
    }

    /// What a data flush of `[off, off+len)` starting now covers.
    fn data_flush_started(&self, off: u64, len: u64) -> Option<DataFlush> {
        let mut r = self.recorder();
        if !r.armed {
            return None;
        }
        r.maybe_crash("during a data flush");
        let (first, end) = (off / PAGE, (off + len).div_ceil(PAGE));
        let pages: Vec<(u64, u64)> = r.dirty.range(first..end).map(|(&p, &w)| (p, w)).collect();
        let pages = pages
            .into_iter()
            .map(|(p, w)| (p, w, r.current(p * PAGE, (p + 1) * PAGE)))
            .collect();
        Some(DataFlush {
            pages,
            len: r.durable_data.len(),
        })
    }

    /// Sometimes, while a data flush is in progress, a put of a racer key, as another writer
    /// would make it (see the module comment).
    fn maybe_race(&self) {
        let Some(store) = self.store.get().and_then(std::sync::Weak::upgrade) else {
            return;
        };
        let (key, value, after) = {
            let mut r = self.recorder();
            if !r.armed || r.racing || r.no_race || !r.rng.chance(RACE_PER_MILLE) {
                return;
            }
            r.racing = true;
            r.race_seq += 1;
            let key = format!("r/{}", r.rng.below(RACE_KEYS));
            let filler = r.rng.below(600) as usize;
            let id = WriteId {
                inc: 2,
                seq: r.race_seq,
            };
            let value = value::make(&key, id, filler);
            let key = key.into_bytes();
            let old = r.race_model.get(&key).map_or(0, |v| entry_hash(&key, v, 0));
            // The racer may land before the operation in flight commits (a checkpoint's flush
            // runs before a write takes the lock) or after it: both are states it passes through.
            let change = old ^ entry_hash(&key, &value, 0);
            let before = r.allowed.pre ^ r.raced_before ^ change;
            let after = r.allowed.post ^ change;
            for s in [before, after] {
                r.allowed.racing.push(s);
                r.allowed.history.insert(s);
            }
            (key, value, (before, after))
        };
        let result = store.put(&key, &value);
        let mut r = self.recorder();
        r.racing = false;
        match result {
            Ok(()) => {
                let (before, after) = after;
                if r.strict {
                    // Acknowledged in sync mode: the states without it are no longer acceptable.
                    r.allowed.pre = before;
                } else {
                    // The states without it stay acceptable; a later racer's "before" has it.
                    r.raced_before = before ^ r.allowed.pre;
                }
                r.allowed.post = after;
                r.allowed.racing.clear();
                r.race_model.insert(key.clone(), value.clone());
                r.raced.push((key, value));
                r.totals.racing_writes += 1;
                // A power cut now: the flush still in progress, the racer's writes not covered.
                if r.totals.images < r.max_images {
                    r.crash("a write racing a data flush done");
                }
            }
            Err(apcdb::Error::Reentrant) => {
                // The flush runs under this thread's write lock: nothing was changed.
                let (before, after) = after;
                r.allowed.racing.clear();
                for s in [before, after] {
                    if s != r.allowed.pre && s != r.allowed.post {
                        r.allowed.history.remove(&s);
                    }
                }
            }
            Err(e) => r.totals.failures.push(format!("racing write failed: {e}")),
        }
    }

    fn data_flush_done(&self, flush: DataFlush) {
        let mut r = self.recorder();
        for (page, write, bytes) in flush.pages {
            // A flush that started later and ended first already persisted newer bytes.
            if r.durable_serial.get(&page).is_some_and(|&d| d > write) {
                continue;
            }
            write_into(&mut r.durable_data, page * PAGE, &bytes);
            r.durable_serial.insert(page, write);
            if r.dirty.get(&page) == Some(&write) {
                r.dirty.remove(&page);
            }
        }
        r.synced_len = r.synced_len.max(flush.len as u64);
    }

    /// How many pending journal writes a journal flush starting now covers.
    fn journal_flush_started(&self) -> Option<usize> {
        let mut r = self.recorder();
        if !r.armed {
            return None;
        }
        r.maybe_crash("during a journal flush");
        Some(r.pending_journal.len())
    }

    fn journal_flush_done(&self, covered: usize) {
        let mut r = self.recorder();
        let flushed: Vec<_> = r.pending_journal.drain(..covered).collect();
        if r.lying_disk {
            return;
        }
        for (off, bytes) in flushed {
            write_into(&mut r.durable_journal, off, &bytes);
        }
    }
}

/// The real files, with every write, growth and flush recorded. A flush is recorded as started
/// before the real call and as done after it succeeded.
impl StorageIo for Shared {
    fn allocate(&self, kind: FileKind, file: &File, len: u64) -> io::Result<()> {
        RealIo.allocate(kind, file, len)?;
        let mut r = self.recorder();
        if kind == FileKind::Data && r.armed && r.durable_data.len() < len as usize {
            r.durable_data.resize(len as usize, 0);
            r.maybe_crash("file grown");
        }
        Ok(())
    }

    fn write_at(&self, kind: FileKind, file: &File, off: u64, bytes: &[u8]) -> io::Result<usize> {
        let n = RealIo.write_at(kind, file, off, bytes)?;
        // The data file is written with `pwrite` only when created, before the baseline.
        if kind == FileKind::Journal {
            self.journal_written(off, &bytes[..n]);
        }
        Ok(n)
    }

    fn sync_file(&self, kind: FileKind, file: &File, what: SyncKind) -> io::Result<()> {
        if kind != FileKind::Journal {
            return RealIo.sync_file(kind, file, what);
        }
        let covered = self.journal_flush_started();
        RealIo.sync_file(kind, file, what)?;
        if let Some(n) = covered {
            self.journal_flush_done(n);
        }
        Ok(())
    }

    fn sync_map(&self, kind: FileKind, range: &MappedRange<'_>) -> io::Result<()> {
        let flush = self.data_flush_started(range.offset(), range.len());
        if flush.is_some() {
            self.maybe_race();
        }
        RealIo.sync_map(kind, range)?;
        if let Some(f) = flush {
            self.data_flush_done(f);
        }
        Ok(())
    }

    fn wants_mapped_writes(&self) -> bool {
        true
    }

    fn data_written(&self, off: u64, len: u64) {
        let mut r = self.recorder();
        if !r.armed {
            return;
        }
        r.writes += 1;
        let write = r.writes;
        for page in off / PAGE..(off + len).div_ceil(PAGE) {
            r.dirty.insert(page, write);
        }
        r.maybe_crash("data written");
    }

    fn journal_copied(&self, off: u64, bytes: &[u8]) {
        self.journal_written(off, bytes);
    }
}

fn write_into(buf: &mut Vec<u8>, off: u64, bytes: &[u8]) {
    let end = off as usize + bytes.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[off as usize..end].copy_from_slice(bytes);
}

impl Recorder {
    /// The data file's bytes `[start, end)` as they are now (page cache).
    fn current(&self, start: u64, end: u64) -> Vec<u8> {
        let file = std::fs::File::open(&self.data_path).expect("data file readable");
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let end = end.min(len);
        let mut buf = vec![0u8; end.saturating_sub(start) as usize];
        if !buf.is_empty() {
            file.read_exact_at(&mut buf, start).expect("read data file");
        }
        buf
    }

    fn maybe_crash(&mut self, moment: &str) {
        if self.totals.images < self.max_images && self.rng.chance(self.per_mille) {
            self.crash(moment);
        }
    }

    /// Builds one crash image from the current moment and checks it.
    fn crash(&mut self, moment: &str) {
        let mut data = self.durable_data.clone();
        let mut choices = Vec::new();
        let dirty: Vec<u64> = self.dirty.keys().copied().collect();
        for page in dirty {
            let new = self.current(page * PAGE, (page + 1) * PAGE);
            let old_len = data.len();
            match self.rng.below(10) {
                0..=3 => choices.push(format!("{page}:old")),
                4..=7 => {
                    write_into(&mut data, page * PAGE, &new);
                    choices.push(format!("{page}:new"));
                }
                _ => {
                    let mut mask = String::new();
                    for (i, sector) in new.chunks(SECTOR).enumerate() {
                        if self.rng.chance(500) {
                            write_into(&mut data, page * PAGE + (i * SECTOR) as u64, sector);
                            mask.push('n');
                        } else {
                            mask.push('o');
                        }
                    }
                    choices.push(format!("{page}:torn[{mask}]"));
                }
            }
            data.truncate(old_len.max(self.durable_data.len()));
        }
        if (data.len() as u64) > self.synced_len && self.rng.chance(500) {
            choices.push(format!("growth lost: file cut to {}", self.synced_len));
            self.totals.with_growth_lost += 1;
            data.truncate(self.synced_len as usize);
        }
        let mut journal = self.durable_journal.clone();
        let total: usize = self.pending_journal.iter().map(|(_, b)| b.len()).sum();
        let mut cut = self.rng.below(total as u64 + 1) as usize;
        let journal_cut = format!("journal cut at {cut} of {total} unflushed bytes");
        self.totals.with_journal_cut += (total > 0) as u64;
        self.totals.with_dirty_pages += (!self.dirty.is_empty()) as u64;
        for (off, bytes) in &self.pending_journal {
            let n = cut.min(bytes.len());
            write_into(&mut journal, *off, &bytes[..n]);
            cut -= n;
            if cut == 0 {
                break;
            }
        }
        self.totals.images += 1;
        let n = self.totals.images;
        if let Err(why) = self.check_image(&data, &journal) {
            let keep = self.keep_dir.join(format!("image-{n}"));
            let _ = std::fs::create_dir_all(&keep);
            let kept = Paths::new(keep.join("store.db"));
            let _ = std::fs::write(&kept.data, &data);
            let _ = std::fs::write(&kept.journal, &journal);
            self.totals.failures.push(format!(
                "image {n} ({moment}; {} dirty pages {}; {journal_cut}): {why} (kept in {})",
                choices.len(),
                summarize(&choices),
                keep.display()
            ));
        }
    }

    fn check_image(&self, data: &[u8], journal: &[u8]) -> Result<(), String> {
        let path = self.image_dir.join("store.db");
        let files = Paths::new(&path);
        std::fs::write(&files.data, data).map_err(|e| e.to_string())?;
        std::fs::write(&files.journal, journal).map_err(|e| e.to_string())?;
        for f in files.durable() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| e.to_string())?;
        }
        // The lock file holds no durable state: after a power cut it is there but its content is
        // meaningless (and from another boot, so never resumed, SPEC.md §7.5); an empty one is
        // what a first opener initialises, and it runs the full recovery this simulator tests.
        let lock = files.lock;
        let _ = std::fs::remove_file(&lock);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&lock)
            .map_err(|e| format!("creating {}: {e}", lock.display()))?;
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.read_image(&path)));
        let state = match outcome {
            Ok(r) => r?,
            Err(_) => return Err("the engine panicked".into()),
        };
        if self.strict {
            if state != self.allowed.pre
                && state != self.allowed.post
                && !self.allowed.racing.contains(&state)
            {
                return Err("the recovered state is neither the one before nor the one after the operation in \
                            flight (acknowledged data lost, or torn)"
                    .into());
            }
        } else if !self.allowed.history.contains(&state) {
            return Err(
                "the recovered state is not one the workload passed through since its last sync() \
                        (torn, reordered, or older than a sync)"
                    .into(),
            );
        }
        Ok(())
    }

    /// Opens the image like a restarted server would and returns the hash of its whole content.
    fn read_image(&self, path: &Path) -> Result<u64, String> {
        let report =
            apcdb::verify::check(path).map_err(|e| format!("offline check failed: {e}"))?;
        if let Some(p) = report.problems.first() {
            return Err(format!(
                "offline check: {p} ({} problems)",
                report.problems.len()
            ));
        }
        let store = Store::open(
            path,
            Options::default()
                .create(false)
                .durability(Durability::None),
        )
        .map_err(|e| format!("does not open: {e}"))?;
        let entries = store
            .scan_prefix(b"")
            .map_err(|e| format!("scan failed: {e}"))?;
        let mut state = 0u64;
        for (key, entry) in &entries {
            let name = String::from_utf8_lossy(key);
            let genuine = if name.starts_with("c/") {
                std::str::from_utf8(&entry.value).is_ok_and(|s| s.parse::<u64>().is_ok())
            } else {
                value::parse(&name, &entry.value).is_ok()
            };
            if !genuine {
                return Err(format!("{name} holds a torn or foreign value"));
            }
            state ^= entry_hash(key, &entry.value, entry.expires_at_ms);
        }
        // Opened without a size in the options: the one recorded, whatever this process reserved.
        let max_size = store.stats().map_err(|e| e.to_string())?.max_size;
        Ok(state ^ size_hash(max_size))
    }
}

fn summarize(choices: &[String]) -> String {
    if choices.len() <= 12 {
        format!("[{}]", choices.join(" "))
    } else {
        format!("[{} ...]", choices[..12].join(" "))
    }
}

fn entry_hash(key: &[u8], value: &[u8], exp: u64) -> u64 {
    let mut h = DefaultHasher::new();
    (key, value, exp).hash(&mut h);
    h.finish()
}

/// The workload's model: the store's exact content and its order-free hash, and its maximum size.
#[derive(Default)]
struct Model {
    map: BTreeMap<Vec<u8>, (Vec<u8>, u64)>,
    hash: u64,
    max_size: u64,
}

/// The part of a state that says the maximum size (a crash during a resize must leave the old or
/// the new one, like any other operation's before and after).
fn size_hash(max_size: u64) -> u64 {
    entry_hash(b"\0max_size", &max_size.to_le_bytes(), 0)
}

impl Model {
    fn state(&self) -> u64 {
        self.hash ^ size_hash(self.max_size)
    }
    fn put(&mut self, key: &[u8], value: &[u8], exp: u64) {
        self.delete(key);
        self.hash ^= entry_hash(key, value, exp);
        self.map.insert(key.to_vec(), (value.to_vec(), exp));
    }
    fn delete(&mut self, key: &[u8]) {
        if let Some((v, e)) = self.map.remove(key) {
            self.hash ^= entry_hash(key, &v, e);
        }
    }
}

enum Op {
    Put(Vec<u8>, Vec<u8>, u64),
    Add(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Inc(Vec<u8>),
    Clear,
    Sync,
    Checkpoint,
    /// `Store::set_max_size`, raising or lowering (always above the file, which stays small).
    Resize(u64),
}

fn choose(rng: &mut Rng, seq: u64) -> Op {
    let idx = rng.below(KEYS);
    let key = format!("k/{idx}");
    let filler = |rng: &mut Rng| match rng.below(100) {
        0..=79 => rng.below(300) as usize,
        80..=96 => rng.range(300, 8192) as usize,
        _ => rng.range(8192, 60 << 10) as usize,
    };
    let make = |rng: &mut Rng, key: &str| value::make(key, WriteId { inc: 1, seq }, filler(rng));
    match rng.below(1000) {
        // Puts, and explicit checkpoints rare enough that the journal often passes half and
        // seven eighths full: the flushes that run without the lock, which racers need.
        0..=349 | 975..=994 => {
            let exp = if rng.chance(100) {
                4_000_000_000_000
            } else {
                0
            };
            Op::Put(key.clone().into_bytes(), make(rng, &key), exp)
        }
        350..=449 => Op::Add(key.clone().into_bytes(), make(rng, &key)),
        450..=579 => Op::Delete(key.into_bytes()),
        580..=699 => {
            let mut items: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
            for _ in 0..rng.range(2, 6) {
                let k = format!("k/{}", rng.below(KEYS));
                if items.iter().any(|(x, _)| x == k.as_bytes()) {
                    continue;
                }
                let v = if rng.chance(250) {
                    None
                } else {
                    Some(value::make(
                        &k,
                        WriteId { inc: 1, seq },
                        rng.below(2000) as usize,
                    ))
                };
                items.push((k.into_bytes(), v));
            }
            Op::Batch(items)
        }
        700..=949 => Op::Inc(format!("c/{}", rng.below(COUNTERS)).into_bytes()),
        950..=969 => Op::Sync,
        970..=974 => Op::Checkpoint,
        995..=997 => Op::Resize(64 << (20 + rng.below(4))),
        _ => Op::Clear,
    }
}

/// The model after `op`.
fn apply(model: &Model, op: &Op) -> Model {
    let mut m = Model {
        map: model.map.clone(),
        hash: model.hash,
        max_size: model.max_size,
    };
    match op {
        Op::Put(k, v, e) => m.put(k, v, *e),
        Op::Add(k, v) => {
            if !m.map.contains_key(k) {
                m.put(k, v, 0)
            }
        }
        Op::Delete(k) => m.delete(k),
        Op::Batch(items) => {
            for (k, v) in items {
                match v {
                    Some(v) => m.put(k, v, 0),
                    None => m.delete(k),
                }
            }
        }
        Op::Inc(k) => {
            let n = m
                .map
                .get(k)
                .and_then(|(v, _)| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
                .unwrap_or(0);
            m.put(k, (n + 1).to_string().as_bytes(), 0);
        }
        Op::Clear => {
            m = Model {
                max_size: m.max_size,
                ..Model::default()
            }
        }
        Op::Resize(n) => m.max_size = *n,
        Op::Sync | Op::Checkpoint => {}
    }
    m
}

fn execute(store: &Store, op: &Op) -> apcdb::Result<()> {
    match op {
        Op::Put(k, v, e) => store.put_with_expiry(k, v, *e),
        Op::Add(k, v) => store.add(k, v).map(|_| ()),
        Op::Delete(k) => store.delete(k).map(|_| ()),
        Op::Batch(items) => store.batch(|b| {
            for (k, v) in items {
                match v {
                    Some(v) => b.put(k, v),
                    None => b.delete(k),
                }
            }
        }),
        Op::Inc(k) => store.update(k, |cur| {
            let n = cur
                .and_then(|e| std::str::from_utf8(&e.value).ok()?.parse::<u64>().ok())
                .unwrap_or(0);
            (
                Update::Put {
                    value: (n + 1).to_string().into_bytes(),
                    expires_at_ms: 0,
                },
                (),
            )
        }),
        Op::Clear => store.clear(),
        Op::Sync => store.sync(),
        Op::Checkpoint => store.checkpoint(),
        Op::Resize(n) => store.set_max_size(*n),
    }
}

pub fn run(cfg: &PowercutConfig) -> Result<PowercutTotals, String> {
    let replay_case = replay_out_of_space_case(&cfg.dir.join("replay-out-of-space"))
        .map_err(|e| format!("replay-out-of-space case: {e}"));
    let work = cfg.dir.join("live");
    let image_dir = cfg.dir.join("image");
    for d in [&work, &image_dir] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    let path = work.join("store.db");
    let strict = cfg.durability == Durability::Sync;
    let shared = Arc::new(Shared {
        store: std::sync::OnceLock::new(),
        recorder: Mutex::new(Recorder {
            data_path: path.clone(),
            durable_data: Vec::new(),
            synced_len: 0,
            durable_journal: Vec::new(),
            dirty: BTreeMap::new(),
            writes: 0,
            pending_journal: Vec::new(),
            rng: Rng::derive(cfg.seed, 1),
            per_mille: cfg.per_mille,
            strict,
            allowed: Allowed {
                pre: 0,
                post: 0,
                racing: Vec::new(),
                history: HashSet::from([0]),
            },
            image_dir,
            keep_dir: cfg.dir.clone(),
            totals: PowercutTotals::default(),
            max_images: cfg.images,
            armed: false,
            lying_disk: cfg.lying_disk,
            durable_serial: BTreeMap::new(),
            racing: false,
            race_seq: 0,
            no_race: false,
            raced_before: 0,
            race_model: BTreeMap::new(),
            raced: Vec::new(),
        }),
    });
    // Small sizes: images are cheap to write and the journal wraps and the file grows often.
    let opts = Options::default()
        .durability(cfg.durability)
        .initial_size(256 << 10)
        .journal_size(512 << 10)
        .max_size(256 << 20)
        .io(shared.clone());
    let store = Arc::new(Store::open(&path, opts).map_err(|e| e.to_string())?);
    store.checkpoint().map_err(|e| e.to_string())?;
    let _ = shared.store.set(Arc::downgrade(&store));
    {
        // Baseline: everything so far is on disk.
        let mut r = shared.recorder();
        let len = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
        r.durable_data = r.current(0, len);
        r.synced_len = len;
        r.durable_journal = std::fs::read(Paths::new(&path).journal).map_err(|e| e.to_string())?;
        r.armed = true;
    }
    let mut rng = Rng::derive(cfg.seed, 2);
    let mut model = Model {
        max_size: 256 << 20,
        ..Model::default()
    };
    {
        let mut r = shared.recorder();
        r.allowed.pre = model.state();
        r.allowed.post = model.state();
        r.allowed.history = HashSet::from([model.state()]);
    }
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut seq = 0u64;
    loop {
        {
            let r = shared.recorder();
            if r.totals.images >= cfg.images || r.totals.failures.len() >= 20 {
                break;
            }
        }
        seq += 1;
        let op = choose(&mut rng, seq);
        let next = apply(&model, &op);
        {
            let mut r = shared.recorder();
            r.allowed.pre = model.state();
            r.allowed.post = next.state();
            r.allowed.racing.clear();
            r.allowed.history.insert(next.state());
            if matches!(op, Op::Clear) {
                // No racer runs during a clear (it could land before or after it).
                r.race_model.clear();
            }
            r.no_race = matches!(op, Op::Clear);
            r.raced_before = 0;
        }
        match execute(&store, &op) {
            Ok(()) => {}
            Err(e) if e.is_full() => return Err(format!("the simulated store filled up: {e}")),
            Err(e) => return Err(format!("operation {seq} failed: {e}")),
        }
        // A resize to the size the store already has changes nothing, so it checkpoints nothing.
        let resized = matches!(op, Op::Resize(n) if n != model.max_size);
        model = next;
        let mut r = shared.recorder();
        for (k, v) in std::mem::take(&mut r.raced) {
            model.put(&k, &v, 0);
        }
        if model.state() != r.allowed.post {
            return Err(format!(
                "operation {seq}: the checker lost track of racing writes"
            ));
        }
        r.allowed.racing.clear();
        r.allowed.pre = model.state();
        if matches!(op, Op::Sync | Op::Checkpoint) || resized {
            // Everything before is durable now: older states are no longer acceptable.
            r.allowed.history = HashSet::from([model.state()]);
        }
        r.totals.operations += 1;
        r.maybe_crash("between operations");
        if last_progress.elapsed() >= Duration::from_secs(2) {
            last_progress = Instant::now();
            eprintln!(
                "powercut: {:>4.0}s {} operations, {} images, {} failed",
                started.elapsed().as_secs_f64(),
                r.totals.operations,
                r.totals.images,
                r.totals.failures.len()
            );
        }
    }
    drop(store);
    let mut r = shared.recorder();
    let mut totals = std::mem::take(&mut r.totals);
    match replay_case {
        Ok(()) => eprintln!("powercut: replay-out-of-space case passed"),
        Err(e) => totals.failures.insert(0, e),
    }
    Ok(totals)
}

/// A power cut during the recovery of a store whose journal replay ran out
/// of space. When a replayed transaction found no block, recovery rebuilt the free lists from the
/// live index, freeing blocks of entries the replay had deleted or replaced although the durable
/// index (the last checkpoint) still referenced them; a later replayed write then overwrote one,
/// and a power cut before recovery's checkpoint left the durable index pointing at another key's
/// entry.
///
/// The layout is built so that the live process has exact-size free blocks where recovery, which
/// rebuilds free space coalesced, has differently cut ones: a 448- and a 128-byte block side by
/// side (recovery: 512 + 64) and one isolated 64-byte block, in a store with no other free byte.
/// The cycle replayed: delete D (a 64-byte entry above the isolated block), put E (448), F (128),
/// G (64). The live process never runs out of space; the replay does at F. The crash image is taken
/// when recovery's checkpoint starts flushing, before its superblock is written; it must recover
/// to exactly the acknowledged state.
pub fn replay_out_of_space_case(dir: &Path) -> Result<(), String> {
    let (live_dir, first, second) = (dir.join("live"), dir.join("image1"), dir.join("image2"));
    for d in [&live_dir, &first, &second] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    let path = live_dir.join("store.db");
    let size = 512 << 10;
    let opts = Options::default()
        .durability(Durability::None)
        .initial_size(size)
        .max_size(size)
        .journal_size(64 << 10)
        .index_slots(16384);
    let store = Store::open(&path, opts).map_err(|e| format!("setup: {e}"))?;
    fn e(what: &'static str) -> impl Fn(apcdb::Error) -> String {
        move |err| format!("setup, {what}: {err}")
    }
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let put = |model: &mut BTreeMap<_, _>, store: &Store, key: &[u8], value: Vec<u8>| {
        store.put(key, &value)?;
        model.insert(key.to_vec(), value);
        apcdb::Result::Ok(())
    };
    let fill = |i: u64| (format!("f/{i:05}").into_bytes(), i.to_le_bytes().to_vec());
    // A (448-byte block) and B (128) side by side, then 64-byte entries until the store is full.
    put(&mut model, &store, b"A", vec![b'a'; 400]).map_err(e("A"))?;
    put(&mut model, &store, b"B", vec![b'b'; 80]).map_err(e("B"))?;
    let mut n = 0;
    loop {
        let (k, v) = fill(n);
        match put(&mut model, &store, &k, v) {
            Ok(()) => n += 1,
            Err(err) if err.is_full() => break,
            Err(err) => return Err(format!("setup, filling: {err}")),
        }
    }
    if n < 100 {
        return Err(format!("setup: only {n} entries fit"));
    }
    // Free A, B and f/1 (isolated: f/0 and f/2 stay), durably.
    for key in [b"A".to_vec(), b"B".to_vec(), fill(1).0] {
        store.delete(&key).map_err(e("delete"))?;
        model.remove(&key);
    }
    store.checkpoint().map_err(e("checkpoint"))?;
    let checkpoints = store.stats().map_err(e("stats"))?.checkpoints;
    // The journal cycle recovery will replay.
    let d = fill(n / 2).0;
    store.delete(&d).map_err(e("delete D"))?;
    model.remove(&d);
    put(&mut model, &store, b"E", vec![b'e'; 400]).map_err(e("E"))?;
    put(&mut model, &store, b"F", vec![b'f'; 80]).map_err(e("F"))?;
    put(&mut model, &store, b"G", b"g".repeat(8)).map_err(e("G"))?;
    store.sync().map_err(e("sync"))?;
    if store.stats().map_err(e("stats"))?.checkpoints != checkpoints {
        return Err("setup: the live process needed a checkpoint to find room".into());
    }
    // Power cut now: the files as they are, with an empty lock file.
    let copy = |from: &Path, to: &Path| -> Result<(), String> {
        for (a, b) in Paths::new(from)
            .durable()
            .into_iter()
            .zip(Paths::new(to).durable())
        {
            std::fs::copy(a, b).map_err(|e| format!("copying {}: {e}", a.display()))?;
        }
        fresh_lock(to)
    };
    let image1 = first.join("store.db");
    copy(&path, &image1)?;
    drop(store);

    // Recovery of the first image, cut when its checkpoint's data flush is done (before its
    // superblock is written).
    struct CutAtFirstFlush {
        from: PathBuf,
        to: PathBuf,
        taken: Mutex<Option<Result<(), String>>>,
    }
    impl StorageIo for CutAtFirstFlush {
        fn sync_map(&self, kind: FileKind, range: &MappedRange<'_>) -> io::Result<()> {
            RealIo.sync_map(kind, range)?;
            let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
            if taken.is_none() {
                let mut r = Ok(());
                let (from, to) = (Paths::new(&self.from), Paths::new(&self.to));
                for (a, b) in from.durable().into_iter().zip(to.durable()) {
                    if let Err(e) = std::fs::copy(a, b) {
                        r = Err(format!("copying {}: {e}", a.display()));
                    }
                }
                *taken = Some(r);
            }
            Ok(())
        }
    }
    let image2 = second.join("store.db");
    let cut = Arc::new(CutAtFirstFlush {
        from: image1.clone(),
        to: image2.clone(),
        taken: Mutex::new(None),
    });
    let opened = Store::open(
        &image1,
        Options::default()
            .create(false)
            .durability(Durability::None)
            .io(cut.clone()),
    )
    .map_err(|e| format!("the first image does not open: {e}"))?;
    drop(opened);
    let taken = cut.taken.lock().unwrap_or_else(|p| p.into_inner()).take();
    taken.ok_or("recovery of the first image did not checkpoint")??;
    fresh_lock(&image2)?;

    // The second image must hold exactly the acknowledged state.
    let report = apcdb::verify::check(&image2).map_err(|e| format!("offline check failed: {e}"))?;
    if let Some(p) = report.problems.first() {
        return Err(format!(
            "second image, offline check: {p} ({} problems)",
            report.problems.len()
        ));
    }
    let store = Store::open(
        &image2,
        Options::default()
            .create(false)
            .durability(Durability::None),
    )
    .map_err(|e| format!("the second image does not open: {e}"))?;
    let mut found = BTreeMap::new();
    for (key, entry) in store.scan_prefix(b"").map_err(|e| e.to_string())? {
        if found.insert(key.clone(), entry.value).is_some() {
            return Err(format!(
                "second image lists {} twice",
                String::from_utf8_lossy(&key)
            ));
        }
    }
    if found != model {
        let wrong: Vec<String> = model
            .iter()
            .filter(|(k, v)| found.get(*k) != Some(v))
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .chain(
                found
                    .keys()
                    .filter(|k| !model.contains_key(*k))
                    .map(|k| format!("{} (deleted)", String::from_utf8_lossy(k))),
            )
            .take(5)
            .collect();
        return Err(format!(
            "second image differs from the acknowledged state at {wrong:?}"
        ));
    }
    Ok(())
}

/// A power cut leaves the lock file's content meaningless: start the image with an empty one.
fn fresh_lock(path: &Path) -> Result<(), String> {
    let lock = Paths::new(path).lock;
    let _ = std::fs::remove_file(&lock);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&lock)
        .map(|_| ())
        .map_err(|e| format!("creating {}: {e}", lock.display()))
}
