//! `apcdb check FILE [--open]` and `apcdb recover FILE --out NEW [--replace]`.
//!
//! `check` runs the engine's offline checker (`apcdb::verify::check`: reads the files, takes no
//! lock, changes nothing). With `--open` it then also opens the store through the normal API —
//! which runs journal recovery, so the files may change — and cross-checks every entry read by a
//! scan against a point lookup and the entry count in stats. `recover` runs the engine's salvage
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
    match apcdb::verify::check(Path::new(path)) {
        Ok(report) => {
            r.entries = report.entries;
            r.journal_records = report.journal_records;
            r.problems = report.problems;
            r.notes = report.notes;
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

/// Problems and notes from reading the store through the API.
fn open_and_cross_check(path: &str) -> (Vec<String>, Vec<String>) {
    let store = match Store::open(path, Options::default().create(false)) {
        Ok(s) => s,
        Err(e) => return (vec![format!("the store does not open: {e}")], vec![]),
    };
    let entries = match store.scan_prefix(b"") {
        Ok(e) => e,
        Err(e) => return (vec![format!("scanning failed: {e}")], vec![]),
    };
    let (mut problems, mut notes) = (Vec::new(), Vec::new());
    let mut keys = std::collections::HashSet::new();
    for (key, entry) in &entries {
        if !keys.insert(key.clone()) {
            problems.push(format!("key {} is listed twice", show(key)));
        }
        match store.get_entry(key) {
            Ok(Some(again)) if again == *entry => {}
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
    match store.stats() {
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
    let dst = Store::open(to, Options::default().durability(Durability::None))
        .map_err(|e| e.to_string())?;
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
        // The salvaged store's own lock file is not needed: FILE.lock serves the new files.
        let _ = std::fs::remove_file(&news.lock);
        sync_dir(from);
        drop(exclusive);
        r.damaged_kept_as = Some(kept);
    }
    Ok(r)
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
