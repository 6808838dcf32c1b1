//! `apcdb dump` / `apcdb load`: every entry as one JSON line
//! `{"key":"<base64>","value":"<base64>","expires_at_ms":N}` (0 = never expires), so a store can be
//! moved through a shell pipe, between machines or versions.

use crate::clock;
use crate::json::{DumpLine, LoadLine};
use apcdb::{Durability, Options, Store};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::io::{BufRead, Write};

/// Writes every entry; returns how many, and what the read-only view held (`stats::view_note`).
pub fn dump(path: &str, out: &mut impl Write) -> Result<(u64, String), String> {
    let store = crate::stats::open_read_only(path)?;
    let mut entries = store.scan_prefix(b"").map_err(|e| e.to_string())?;
    // Sorted, so two dumps of the same data are byte-identical.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, entry) in &entries {
        write_line(out, key, &entry.value, entry.expires_at_ms)?;
    }
    out.flush().map_err(|e| format!("writing the dump: {e}"))?;
    Ok((entries.len() as u64, crate::stats::view_note(&store)))
}

/// One entry as a dump line (shared with the Redis dump, so both write the same bytes).
pub fn write_line(
    out: &mut impl Write,
    key: &[u8],
    value: &[u8],
    expires_at_ms: u64,
) -> Result<(), String> {
    let line = DumpLine {
        key: B64.encode(key),
        value: B64.encode(value),
        expires_at_ms,
    };
    serde_json::to_writer(&mut *out, &line).map_err(|e| format!("writing the dump: {e}"))?;
    writeln!(out).map_err(|e| format!("writing the dump: {e}"))
}

/// A parsed input line: its number, key, value and expiry.
pub type Line = (usize, Vec<u8>, Vec<u8>, u64);

/// Every line of a dump, parsed, with keys checked against the key limit; the first bad line is
/// an error naming it.
pub fn parse(input: impl BufRead) -> Result<Vec<Line>, String> {
    let mut entries = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("reading input: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = |e: String| format!("line {}: {e}", n + 1);
        let obj: LoadLine = serde_json::from_str(&line).map_err(|e| at(e.to_string()))?;
        let decode = |name: &str, text: &str| {
            B64.decode(text)
                .map_err(|e| at(format!("\"{name}\" is not base64: {e}")))
        };
        let key = decode("key", &obj.key)?;
        if key.len() > apcdb::MAX_KEY_LEN {
            return Err(at(format!(
                "key of {} bytes exceeds the limit of {} bytes",
                key.len(),
                apcdb::MAX_KEY_LEN
            )));
        }
        entries.push((n + 1, key, decode("value", &obj.value)?, obj.expires_at_ms));
    }
    Ok(entries)
}

pub struct Loaded {
    pub stored: u64,
    /// Entries whose expiry had already passed: not stored.
    pub expired: u64,
}

/// Stores every line's entry (overwriting keys that exist). The whole input is parsed and every
/// size checked before the first write, so a malformed or oversized line changes nothing.
pub fn load(path: &str, input: impl BufRead) -> Result<Loaded, String> {
    let entries = parse(input)?;
    let store = Store::open(path, Options::default().durability(Durability::None))
        .map_err(|e| e.to_string())?;
    // The value limit is the store's own (it follows its journal size): checked now that it is
    // open, still before the first write.
    let max = store.max_value_len();
    for (line, key, value, _) in &entries {
        if key.len() + value.len() > max {
            return Err(format!(
                "line {line}: value of {} bytes (with a {}-byte key) exceeds the store's limit of {max} bytes",
                value.len(),
                key.len()
            ));
        }
    }
    let now = clock::unix_ms();
    let mut loaded = Loaded {
        stored: 0,
        expired: 0,
    };
    for (_, key, value, expires) in &entries {
        if *expires != 0 && *expires <= now {
            loaded.expired += 1;
            continue;
        }
        store
            .put_with_expiry(key, value, *expires)
            .map_err(|e| e.to_string())?;
        loaded.stored += 1;
    }
    // Loaded without a flush per entry; one checkpoint makes all of it durable.
    store.checkpoint().map_err(|e| e.to_string())?;
    Ok(loaded)
}
