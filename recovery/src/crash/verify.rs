//! The verifier: runs in a fresh process after every worker is dead, opens the store (which runs
//! recovery), reads everything, and judges it against the harness's expectations.

use super::config::store_options;
use super::expect::{Expectations, KState, Observed};
use super::value::{self, Parsed};
use crate::clock::unix_ms;
use apcdb::{Durability, Store};
use std::collections::BTreeMap;
use std::path::Path;

/// One value as read back.
pub struct Found {
    pub value: Vec<u8>,
    /// None when the reader cannot see expiries (the PHP path).
    pub exp: Option<u64>,
}

/// Everything read from the store, plus problems noticed while reading.
#[derive(Default)]
pub struct Snapshot {
    pub keys: BTreeMap<String, Found>,
    /// True when `keys` lists every key in the store, so unknown keys can be flagged.
    pub complete: bool,
    pub problems: Vec<String>,
    /// Unix ms when the reading started and ended: entries expiring around then may be either.
    pub read_from_ms: u64,
    pub read_to_ms: u64,
}

/// Expiry is judged by wall-clock milliseconds in different processes: this much either way of
/// the reading window is treated as "may or may not have expired".
const EXPIRY_SLACK_MS: u64 = 1500;

fn expiring_around(exp: u64, from: u64, to: u64) -> bool {
    exp != 0 && exp + EXPIRY_SLACK_MS >= from && exp <= to + EXPIRY_SLACK_MS
}

#[derive(Debug, Default)]
pub struct Verdict {
    pub violations: Vec<String>,
    /// Acknowledged outcomes not found: keys not in any allowed state, counter increments missing.
    pub lost: u64,
    pub observed: Observed,
}

/// Reads the store through the engine API: a full scan, cross-checked key by key with get_entry
/// and against the entry count in stats.
pub fn snapshot_rust(
    path: &Path,
    durability: Durability,
    max_size: u64,
    exp: &Expectations,
) -> Result<Snapshot, String> {
    let store = Store::open(path, store_options(durability, max_size).create(false))
        .map_err(|e| format!("the store does not open after the crash: {e}"))?;
    let started = unix_ms();
    let scanned = store
        .scan_prefix(b"")
        .map_err(|e| format!("scan failed: {e}"))?;
    let mut snap = Snapshot {
        complete: true,
        read_from_ms: started,
        ..Default::default()
    };
    for (key, entry) in &scanned {
        let name = String::from_utf8_lossy(key).into_owned();
        snap.keys.insert(
            name,
            Found {
                value: entry.value.clone(),
                exp: Some(entry.expires_at_ms),
            },
        );
    }
    if snap.keys.len() != scanned.len() {
        snap.problems.push(format!(
            "scan returned {} entries for {} distinct keys",
            scanned.len(),
            snap.keys.len()
        ));
    }
    for name in exp.keys.keys().chain(exp.counters.keys()) {
        let got = store
            .get_entry(name.as_bytes())
            .map_err(|e| format!("get_entry({name}) failed: {e}"))?;
        let scanned = snap.keys.get(name);
        let now = unix_ms();
        let agree = match (&got, scanned) {
            (None, None) => true,
            (Some(g), Some(s)) => g.value == s.value && Some(g.expires_at_ms) == s.exp,
            // It may have expired between the scan and the lookup.
            (None, Some(s)) => expiring_around(s.exp.unwrap_or(0), started, now),
            (Some(_), None) => false,
        };
        if !agree {
            snap.problems.push(format!(
                "scan and get_entry disagree on {name}: get says {}, scan says {}",
                if got.is_some() { "present" } else { "absent" },
                if scanned.is_some() {
                    "present"
                } else {
                    "absent"
                }
            ));
        }
    }
    let stats = store.stats().map_err(|e| format!("stats failed: {e}"))?;
    // Expired entries still count until their space is reclaimed, so only fewer is wrong.
    if stats.entries < scanned.len() as u64 {
        snap.problems.push(format!(
            "stats says {} entries, a scan finds {}",
            stats.entries,
            scanned.len()
        ));
    }
    snap.read_to_ms = unix_ms();
    Ok(snap)
}

pub fn judge(exp: &Expectations, snap: &Snapshot) -> Verdict {
    let mut v = Verdict::default();
    v.violations.extend(snap.problems.iter().cloned());
    let (from, to) = (snap.read_from_ms, snap.read_to_ms);
    for (name, allowed) in &exp.keys {
        let allowed = &expire(allowed, from, to);
        if let Some(KState::Value { exp, .. }) = snap
            .keys
            .get(name)
            .and_then(|f| f.exp.map(|exp| KState::Value { id: None, exp }))
        {
            if exp != 0 && exp + EXPIRY_SLACK_MS < from {
                v.violations.push(format!(
                    "{name} expired at {exp} but was still readable at {from} (unix ms)"
                ));
            }
        }
        let state = match snap.keys.get(name) {
            None => KState::Absent,
            Some(found) => match value::parse(name, &found.value) {
                Ok(parsed) => {
                    let id = match parsed {
                        Parsed::Empty => None,
                        Parsed::Write(id) => Some(id),
                    };
                    // Without expiries (PHP) take the expiry of the matching candidate.
                    let exp = found.exp.unwrap_or_else(|| {
                        allowed
                            .iter()
                            .find_map(|s| match s {
                                KState::Value { id: i, exp } if *i == id => Some(*exp),
                                _ => None,
                            })
                            .unwrap_or(0)
                    });
                    KState::Value { id, exp }
                }
                Err(damage) => {
                    v.violations
                        .push(format!("torn value under {name}: {damage}"));
                    continue;
                }
            },
        };
        v.observed.keys.insert(name.clone(), state);
        if !allowed.contains(&state) {
            let newest_allowed = allowed.iter().filter_map(id_of).max();
            let unexpected_write = matches!((id_of(&state), newest_allowed), (Some(s), Some(n)) if s > n)
                || (id_of(&state).is_some() && newest_allowed.is_none());
            let list: Vec<String> = allowed.iter().map(KState::encode).collect();
            if unexpected_write {
                v.violations.push(format!(
                    "{name} holds {}, a write newer than any the workers reported (allowed: {})",
                    state.encode(),
                    list.join(" ")
                ));
            } else {
                v.lost += 1;
                v.violations.push(format!(
                    "LOST: {name} holds {} but an acknowledged write requires one of: {}",
                    state.encode(),
                    list.join(" ")
                ));
            }
        }
    }
    for (id, names) in &exp.batches {
        let applied: Vec<&String> = names
            .iter()
            .filter(|n| id_of_observed(&v.observed, n) == Some(*id))
            .collect();
        let missed: Vec<&String> = names
            .iter()
            .filter(|n| id_of_observed(&v.observed, n).is_some_and(|o| o < *id))
            .collect();
        if !applied.is_empty() && !missed.is_empty() {
            v.violations.push(format!(
                "batch {id} applied in part: {applied:?} hold its values, {missed:?} hold values from before it"
            ));
        }
    }
    for (name, (lo, hi)) in &exp.counters {
        let n = match snap.keys.get(name) {
            None => 0,
            Some(found) => match std::str::from_utf8(&found.value)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
            {
                Some(n) => n,
                None => {
                    v.violations.push(format!(
                        "torn counter {name}: {:?}",
                        String::from_utf8_lossy(&found.value)
                    ));
                    continue;
                }
            },
        };
        v.observed.counters.insert(name.clone(), n);
        if n < *lo {
            v.lost += lo - n;
            v.violations.push(format!(
                "LOST: counter {name} is {n}, but {lo} increments were acknowledged"
            ));
        } else if n > *hi {
            v.violations.push(format!(
                "counter {name} is {n}, more than the {hi} increments ever attempted"
            ));
        }
    }
    if snap.complete {
        for name in snap.keys.keys() {
            if !exp.keys.contains_key(name) && !exp.counters.contains_key(name) {
                v.violations.push(format!("unknown key {name:?} appeared"));
            }
        }
    }
    v
}

/// The allowed states as of the reading window: an entry whose expiry passed is absent, one
/// expiring around the window may be either.
fn expire(allowed: &[KState], from: u64, to: u64) -> Vec<KState> {
    let mut out = Vec::new();
    for s in allowed {
        match *s {
            KState::Value { exp, .. } if exp != 0 && exp + EXPIRY_SLACK_MS < from => {
                out.push(KState::Absent)
            }
            KState::Value { exp, .. } if expiring_around(exp, from, to) => {
                out.push(*s);
                out.push(KState::Absent);
            }
            _ => out.push(*s),
        }
    }
    out.sort();
    out.dedup();
    out
}

fn id_of(s: &KState) -> Option<value::WriteId> {
    match s {
        KState::Value { id, .. } => *id,
        KState::Absent => None,
    }
}

fn id_of_observed(o: &Observed, name: &str) -> Option<value::WriteId> {
    o.keys.get(name).and_then(id_of)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crash::value::WriteId;

    fn found(v: Vec<u8>) -> Found {
        Found {
            value: v,
            exp: Some(0),
        }
    }

    #[test]
    fn accepts_allowed_and_flags_loss_tears_and_strangers() {
        let id = WriteId { inc: 1, seq: 5 };
        let mut exp = Expectations::default();
        exp.keys.insert(
            "w0/0".into(),
            vec![KState::Value {
                id: Some(id),
                exp: 0,
            }],
        );
        exp.keys.insert("w0/1".into(), vec![KState::Absent]);
        exp.counters.insert("ctr/0".into(), (2, 3));
        let mut snap = Snapshot {
            complete: true,
            ..Default::default()
        };
        snap.keys
            .insert("w0/0".into(), found(value::make("w0/0", id, 100)));
        snap.keys.insert("ctr/0".into(), found(b"3".to_vec()));
        let v = judge(&exp, &snap);
        assert!(v.violations.is_empty(), "{:?}", v.violations);

        snap.keys.remove("w0/0");
        snap.keys.insert("ctr/0".into(), found(b"1".to_vec()));
        let v = judge(&exp, &snap);
        assert_eq!(v.lost, 2);

        let mut torn = value::make("w0/0", id, 100);
        torn[60] = b'x';
        snap.keys.insert("w0/0".into(), found(torn));
        snap.keys.insert("zzz".into(), found(vec![]));
        let v = judge(&exp, &snap);
        assert!(v.violations.iter().any(|m| m.contains("torn")));
        assert!(v.violations.iter().any(|m| m.contains("unknown key")));
    }

    #[test]
    fn partial_batch_is_flagged() {
        let old = WriteId { inc: 1, seq: 1 };
        let batch = WriteId { inc: 1, seq: 2 };
        let mut exp = Expectations::default();
        for k in ["w0/0", "w0/1"] {
            let states = vec![
                KState::Value {
                    id: Some(old),
                    exp: 0,
                },
                KState::Value {
                    id: Some(batch),
                    exp: 0,
                },
            ];
            exp.keys.insert(k.into(), states);
        }
        exp.batches
            .push((batch, vec!["w0/0".into(), "w0/1".into()]));
        let mut snap = Snapshot {
            complete: true,
            ..Default::default()
        };
        snap.keys
            .insert("w0/0".into(), found(value::make("w0/0", old, 3)));
        snap.keys
            .insert("w0/1".into(), found(value::make("w0/1", batch, 3)));
        assert!(judge(&exp, &snap)
            .violations
            .iter()
            .any(|m| m.contains("in part")));
        snap.keys
            .insert("w0/0".into(), found(value::make("w0/0", batch, 3)));
        assert!(judge(&exp, &snap).violations.is_empty());
    }
}
