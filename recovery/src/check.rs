//! `apcdb check FILE [--open]` and `apcdb recover FILE --out NEW [--replace]`.
//!
//! `check` runs the engine's offline checker (`apcdb::verify::check`: reads the files, takes no
//! lock, changes nothing). With `--open` it then also opens the store through a read-only handle
//! (SPEC.md §6.8: the journal replayed in memory, nothing written or locked) and cross-checks
//! every entry read by a scan against a point lookup and the entry count in stats. `recover` runs the engine's salvage
//! (`apcdb::verify::salvage`) and writes what it saved into a fresh store.

use apcdb::{Durability, Options, Paths, Store};
use std::path::{Path, PathBuf};

#[derive(Default)]
pub struct CheckReport {
    pub entries: u64,
    pub journal_records: u64,
    /// Problems found by the offline checker.
    pub problems: Vec<String>,
    /// Problems found by opening the store and reading it through the API (`--open`).
    pub open_problems: Vec<String>,
    pub notes: Vec<String>,
}

impl CheckReport {
    pub fn clean(&self) -> bool {
        self.problems.is_empty() && self.open_problems.is_empty()
    }
}

pub fn check(path: &str, open: bool) -> Result<CheckReport, String> {
    if !Path::new(path).exists() {
        return Err(format!("{path} does not exist"));
    }
    let mut r = CheckReport::default();
    match consistent_check(Path::new(path), &mut r.notes) {
        Ok(report) => {
            r.entries = report.entries;
            r.journal_records = report.journal_records;
            r.problems = report.problems;
            // SAFETY: geteuid has no preconditions and cannot fail.
            let root = unsafe { libc::geteuid() } == 0;
            r.notes.extend(report.notes.into_iter().map(|n| {
                match n.strip_prefix("an open would refuse the store: ") {
                    // Root inspects through a read-only handle and writes as the owner: only a
                    // program opening the store read-write as root would meet this.
                    Some(why) if root => format!(
                        "a read-write open as root would refuse the store (this tool's writing \
                     commands run as the files' owner instead): {why}"
                    ),
                    _ => n,
                }
            }));
        }
        Err(e) => r.problems.push(format!("cannot be read: {e}")),
    }
    if open {
        let (problems, notes) = open_and_cross_check(path);
        r.open_problems = problems;
        r.notes.extend(notes);
    }
    Ok(r)
}

/// How long, and at least how many times, the offline check of a store that writers keep
/// checkpointing runs again before the last attempt is reported as it is.
const CHECK_FOR: std::time::Duration = std::time::Duration::from_secs(5);
const CHECK_ATTEMPTS: u32 = 10;

/// The offline check, run again while a checkpoint ran during it. The checker reads the newest
/// checkpoint (its durable index and entries), which nothing writes until a newer superblock is
/// written (SPEC.md §7.1): a check during which neither superblock slot's epoch changed saw one
/// checkpoint whole, even while writers use the store.
fn consistent_check(path: &Path, notes: &mut Vec<String>) -> apcdb::Result<apcdb::verify::Report> {
    let started = std::time::Instant::now();
    for attempt in 1.. {
        let before = epoch_words(path);
        let report = apcdb::verify::check(path);
        if before.is_some() && epoch_words(path) == before {
            return report;
        }
        if attempt >= CHECK_ATTEMPTS && started.elapsed() >= CHECK_FOR {
            notes.push(format!(
                "writers checkpointed during each of {attempt} checks: problems below \
                 may be changes made during the check rather than damage; check again when the \
                 store is quieter"
            ));
            return report;
        }
    }
    unreachable!()
}

/// The epoch fields of both superblock slots, as they are now.
fn epoch_words(path: &Path) -> Option<[u64; 2]> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).ok()?;
    let word = |at: u64| {
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, at)
            .ok()
            .map(|()| u64::from_le_bytes(b))
    };
    let at = apcdb::format::superblock_at::EPOCH as u64;
    Some([
        word(apcdb::format::SUPERBLOCK_OFFSETS[0] + at)?,
        word(apcdb::format::SUPERBLOCK_OFFSETS[1] + at)?,
    ])
}

/// Problems and notes from reading the store through the API.
fn open_and_cross_check(path: &str) -> (Vec<String>, Vec<String>) {
    let store = match crate::stats::open_read_only(path) {
        Ok(s) => s,
        Err(e) => return (vec![format!("the store does not open: {e}")], vec![]),
    };
    let entries = match store.scan_prefix(b"") {
        Ok(e) => e,
        Err(e) => return (vec![format!("scanning failed: {e}")], vec![]),
    };
    let (mut problems, mut notes) = (
        Vec::new(),
        vec![format!(
            "read through a read-only handle: the store is {}",
            crate::stats::view_note(&store)
        )],
    );
    // Writers may change the store between the scan and the lookups (and during the scan, whose
    // chunks may come from several views): a newer version, or on a store in use a key gone, is
    // their doing, not damage. (Versions only grow, so a quiet store never shows either.)
    let live = store.read_only_view().is_some_and(|v| v.in_use);
    let mut changed = 0u64;
    let mut keys = std::collections::HashSet::new();
    for (key, entry) in &entries {
        if !keys.insert(key.clone()) {
            problems.push(format!("key {} is listed twice", show(key)));
        }
        match store.get_entry(key) {
            Ok(Some(again)) if again == *entry => {}
            Ok(Some(again)) if again.version > entry.version => changed += 1,
            Ok(None) if live => changed += 1,
            Ok(Some(_)) => problems.push(format!(
                "key {}: scan and lookup return different entries",
                show(key)
            )),
            Ok(None) => problems.push(format!(
                "key {}: listed by scan but not found by lookup",
                show(key)
            )),
            Err(e) => problems.push(format!("key {}: {e}", show(key))),
        }
    }
    if changed > 0 {
        notes.push(format!(
            "{changed} entries were changed by writers between the scan and their lookup"
        ));
    }
    match store.stats() {
        // On a store in use the count is of a later view than parts of the scan.
        Ok(_) if live => {}
        // Expired entries still count until their space is reclaimed; scans hide them.
        Ok(s) if s.entries < entries.len() as u64 => problems.push(format!(
            "stats count {} entries, a scan finds {}",
            s.entries,
            entries.len()
        )),
        Ok(s) if s.entries > entries.len() as u64 => notes.push(format!(
            "{} entries are expired and not yet reclaimed",
            s.entries - entries.len() as u64
        )),
        Ok(s) if s.journal_used > s.journal_size => problems.push(format!(
            "journal use {} exceeds its size {}",
            s.journal_used, s.journal_size
        )),
        Ok(_) => {}
        Err(e) => problems.push(format!("stats failed: {e}")),
    }
    (problems, notes)
}

pub struct Recovered {
    pub copied: u64,
    pub expired: u64,
    pub lost: Vec<String>,
    /// With `--replace`: where the damaged original files were moved.
    pub damaged_kept_as: Option<PathBuf>,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Salvages `from` into a fresh store at `to`. With `replace`, then moves the damaged files aside
/// (`FILE.damaged`, ...) and puts the salvaged store in their place, holding the store
/// exclusively throughout: refused while any process has it open, and openers wait meanwhile.
pub fn recover(from: &str, to: &str, replace: bool) -> Result<Recovered, String> {
    let (from, to) = (Path::new(from), Path::new(to));
    if to.exists() {
        return Err(format!(
            "{} already exists; recover writes a fresh store and never overwrites",
            to.display()
        ));
    }
    // Before anything is read or written: a writer that has the store open would go on writing
    // into the files moved aside, and its acknowledged writes would be lost.
    let exclusive = match replace {
        true => Some(apcdb::Exclusive::acquire(from).map_err(|e| {
            format!("{e}; --replace needs every process using the store stopped first (nothing was changed)")
        })?),
        false => None,
    };
    let salvage = apcdb::verify::salvage(from).map_err(|e| e.to_string())?;
    // The new store gets the original's limits (its maximum size, its journal's size, so the
    // same values fit), when a superblock copy still says what they were.
    let mut opts = Options::default().durability(Durability::None);
    if let Some((max_size, journal_size)) = recorded_sizes(from) {
        opts = opts
            .max_size(max_size)
            .initial_size((1 << 20).min(max_size))
            .journal_size(journal_size.min(1 << 30));
    }
    let dst = Store::open(to, opts).map_err(|e| e.to_string())?;
    let now = crate::clock::unix_ms();
    let mut r = Recovered {
        copied: 0,
        expired: 0,
        lost: salvage.lost,
        damaged_kept_as: None,
    };
    for (key, entry) in &salvage.entries {
        if entry.expires_at_ms != 0 && entry.expires_at_ms <= now {
            r.expired += 1;
            continue;
        }
        dst.put_with_expiry(key, &entry.value, entry.expires_at_ms)
            .map_err(|e| e.to_string())?;
        r.copied += 1;
    }
    dst.checkpoint().map_err(|e| e.to_string())?;
    drop(dst);
    if let Some(exclusive) = exclusive {
        let kept = with_suffix(from, ".damaged");
        let modes: Vec<_> = Paths::new(from)
            .durable()
            .iter()
            .map(|p| std::fs::metadata(p).ok())
            .collect();
        let (olds, asides, news) = (Paths::new(from), Paths::new(&kept), Paths::new(to));
        // The durable files are swapped. The lock file stays: it holds no durable state, and
        // processes waiting to open the store hold it open, so they must find the new files
        // behind the same one.
        for ((old, aside), new) in olds
            .durable()
            .into_iter()
            .zip(asides.durable())
            .zip(news.durable())
        {
            if old.exists() {
                std::fs::rename(old, aside)
                    .map_err(|e| format!("moving {} aside: {e}", old.display()))?;
            }
            std::fs::rename(new, old).map_err(|e| format!("installing {}: {e}", old.display()))?;
        }
        // The installed files keep the originals' mode and group (their owner is this process,
        // which runs as the originals' owner: `owner::become_owner`).
        for (installed, old) in olds.durable().into_iter().zip(&modes) {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            if let Some(md) = old {
                std::fs::set_permissions(installed, std::fs::Permissions::from_mode(md.mode()))
                    .map_err(|e| format!("keeping the mode of {}: {e}", installed.display()))?;
                let _ = std::os::unix::fs::chown(installed, None, Some(md.gid()));
            }
        }
        // The salvaged store's own lock file is not needed: FILE.lock serves the new files.
        let _ = std::fs::remove_file(&news.lock);
        sync_dir(from);
        drop(exclusive);
        r.damaged_kept_as = Some(kept);
    }
    Ok(r)
}

/// The maximum size and journal size recorded by the newest superblock copy of `path` that
/// decodes and validates, if any.
fn recorded_sizes(path: &Path) -> Option<(u64, u64)> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut b = vec![0u8; 8192];
    f.read_exact(&mut b).ok()?;
    let newest = [&b[..4096], &b[4096..]]
        .into_iter()
        .filter_map(|c| apcdb::UncheckedSuperblock::decode(c).ok())
        .max_by_key(|sb| sb.epoch())?;
    let sb = newest.validate(len).ok()?;
    Some((sb.max_size, sb.journal_size))
}

/// Makes the renames durable before anyone is let in (best effort: the data is in both places).
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn show(key: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(&key[..key.len().min(80)]))
}
