//! `apcdb stats FILE [--json]`: the store's counters, for people or for machines.

use crate::json::{self, Value};
use apcdb::{Options, Store};

pub fn run(path: &str, as_json: bool) -> Result<String, String> {
    let store = Store::open(path, Options::default().create(false)).map_err(|e| e.to_string())?;
    let s = store.stats().map_err(|e| e.to_string())?;
    let fields: Vec<(&str, u64)> = vec![
        ("entries", s.entries),
        ("used_bytes", s.used_bytes),
        ("file_size", s.file_size),
        ("max_size", s.max_size),
        ("free_bytes", s.max_size.saturating_sub(s.used_bytes)),
        ("journal_size", s.journal_size),
        ("journal_used", s.journal_used),
        ("checkpoints", s.checkpoints),
        ("checkpoint_epoch", s.checkpoint_epoch),
        ("generation", s.generation),
        ("index_slots", s.index_slots),
        ("index_tombstones", s.index_tombstones),
        ("hits", s.hits),
        ("misses", s.misses),
        ("inserts", s.inserts),
        ("deletes", s.deletes),
        ("recovered_records", s.recovered_records),
        ("recoveries", s.recoveries),
        ("recovered_at_open", store.recovered_at_open() as u64),
        ("max_value_len", store.max_value_len() as u64),
    ];
    if as_json {
        let mut obj: Vec<(&str, Value)> = vec![("file", Value::Str(path.to_string()))];
        obj.extend(fields.iter().map(|(n, v)| (*n, Value::Num(*v))));
        return Ok(json::object(&obj) + "\n");
    }
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    let mut out = format!("file: {path}\n");
    for (name, v) in &fields {
        out.push_str(&format!("{name}: {v}\n"));
    }
    out.push_str(&format!(
        "data file fill: {:.1}% of its current size, {:.1}% of its maximum\n",
        pct(s.used_bytes, s.file_size),
        pct(s.used_bytes, s.max_size)
    ));
    out.push_str(&format!(
        "fragmentation (bytes in the file not holding live entries): {:.1}%\n",
        100.0 - pct(s.used_bytes, s.file_size)
    ));
    out.push_str(&format!(
        "journal fill: {:.1}%\n",
        pct(s.journal_used, s.journal_size)
    ));
    out.push_str(&format!(
        "index: {} slots, {:.1}% tombstones\n",
        s.index_slots,
        pct(s.index_tombstones, s.index_slots)
    ));
    Ok(out)
}
