//! `apcdb check FILE` and `apcdb recover FILE`.
//!
//! The engine does not (yet) expose a read-only structural checker or a salvage routine, so both
//! work through the public API: `check` opens the store (which runs journal recovery, so it is not
//! strictly read-only), reads every entry twice (scan and point lookup) and cross-checks them and
//! the entry count; `recover` copies every entry that reads back consistently into a fresh store.

use apcdb::{Durability, Options, Store};
use std::path::Path;

pub struct CheckReport {
    pub entries: u64,
    pub problems: Vec<String>,
}

pub fn check(path: &str) -> Result<CheckReport, String> {
    if !Path::new(path).exists() {
        return Err(format!("{path} does not exist"));
    }
    let store = match Store::open(path, Options::default().create(false)) {
        Ok(s) => s,
        Err(e) => {
            return Ok(CheckReport {
                entries: 0,
                problems: vec![format!("the store does not open: {e}")],
            })
        }
    };
    let mut problems = Vec::new();
    let entries = match store.scan_prefix(b"") {
        Ok(e) => e,
        Err(e) => {
            return Ok(CheckReport {
                entries: 0,
                problems: vec![format!("scanning failed: {e}")],
            })
        }
    };
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
        Ok(s) if s.entries != entries.len() as u64 => problems.push(format!(
            "the header counts {} entries, a scan finds {}",
            s.entries,
            entries.len()
        )),
        Ok(s) if s.used_bytes > s.file_size || s.file_size > s.max_size.max(s.file_size) => {
            problems.push(format!(
                "sizes out of order: used {} file {} max {}",
                s.used_bytes, s.file_size, s.max_size
            ))
        }
        Ok(s) if s.journal_used > s.journal_size => problems.push(format!(
            "journal use {} exceeds its size {}",
            s.journal_used, s.journal_size
        )),
        Ok(_) => {}
        Err(e) => problems.push(format!("stats failed: {e}")),
    }
    Ok(CheckReport {
        entries: entries.len() as u64,
        problems,
    })
}

pub struct Salvage {
    pub copied: u64,
    pub lost: Vec<String>,
}

/// Copies every readable entry of `from` into a new store at `to` (which must not exist).
pub fn recover(from: &str, to: &str) -> Result<Salvage, String> {
    if Path::new(to).exists() {
        return Err(format!(
            "{to} already exists; recover writes a fresh store and never overwrites"
        ));
    }
    let src = Store::open(from, Options::default().create(false)).map_err(|e| {
        format!(
            "{from} does not open ({e}); salvaging a store that fails to open needs the engine's salvage \
             routine, which this build does not have"
        )
    })?;
    let dst = Store::open(to, Options::default().durability(Durability::None))
        .map_err(|e| e.to_string())?;
    let entries = src
        .scan_prefix(b"")
        .map_err(|e| format!("scanning {from}: {e}"))?;
    let mut s = Salvage {
        copied: 0,
        lost: Vec::new(),
    };
    for (key, entry) in entries {
        match src.get_entry(&key) {
            Ok(Some(again)) if again == entry => {
                dst.put_with_expiry(&key, &entry.value, entry.expires_at_ms)
                    .map_err(|e| e.to_string())?;
                s.copied += 1;
            }
            Ok(_) => s.lost.push(format!(
                "{}: inconsistent between scan and lookup",
                show(&key)
            )),
            Err(e) => s.lost.push(format!("{}: {e}", show(&key))),
        }
    }
    dst.checkpoint().map_err(|e| e.to_string())?;
    Ok(s)
}

fn show(key: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(&key[..key.len().min(80)]))
}
