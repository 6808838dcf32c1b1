//! `apcdb stats FILE [--format text|json|prometheus]`: the store's counters, for people, for
//! scripts and for a Prometheus textfile collector.

use crate::args::StatsFormat;
use crate::json::Ordered;
use apcdb::{Options, Store};

/// Prometheus' two kinds: a counter only goes up (until the store's shared state is rebuilt,
/// which Prometheus reads as a counter reset); a gauge is a level.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Counter,
    Gauge,
}

/// One figure: its name in text and JSON, its Prometheus name (without `apcdb_`), kind and help.
pub struct Metric {
    pub name: &'static str,
    pub prom: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub value: u64,
}

pub fn metrics(store: &Store) -> Result<Vec<Metric>, String> {
    use Kind::{Counter, Gauge};
    let s = store.stats().map_err(|e| e.to_string())?;
    let m = |name, prom, kind, help, value| Metric {
        name,
        prom,
        kind,
        help,
        value,
    };
    Ok(vec![
        m(
            "entries",
            "entries",
            Gauge,
            "Entries in the index, including expired ones not yet reclaimed.",
            s.entries,
        ),
        m(
            "used_bytes",
            "used_bytes",
            Gauge,
            "Bytes of blocks holding live entries.",
            s.used_bytes,
        ),
        m(
            "file_size",
            "file_size_bytes",
            Gauge,
            "Current size of the data file.",
            s.file_size,
        ),
        m(
            "max_size",
            "max_size_bytes",
            Gauge,
            "The most the data file may grow to.",
            s.max_size,
        ),
        m(
            "free_bytes",
            "free_bytes",
            Gauge,
            "Bytes the data file can still take (maximum size minus used bytes).",
            s.max_size.saturating_sub(s.used_bytes),
        ),
        m(
            "journal_size",
            "journal_size_bytes",
            Gauge,
            "Size of the journal file.",
            s.journal_size,
        ),
        m(
            "journal_used",
            "journal_used_bytes",
            Gauge,
            "Journal bytes written since the last checkpoint.",
            s.journal_used,
        ),
        m(
            "journal_records",
            "journal_records",
            Gauge,
            "Journal records written since the last checkpoint (each counts for at least 256 bytes of the journal).",
            s.journal_records,
        ),
        m(
            "checkpoints",
            "checkpoints_total",
            Counter,
            "Checkpoints taken since the shared state was built.",
            s.checkpoints,
        ),
        m(
            "checkpoint_epoch",
            "checkpoint_epoch",
            Gauge,
            "Sequence number of the last durable checkpoint.",
            s.checkpoint_epoch,
        ),
        m(
            "generation",
            "generation",
            Gauge,
            "Reset-on-restart generation recorded in the store.",
            s.generation,
        ),
        m(
            "index_slots",
            "index_slots",
            Gauge,
            "Slots in the live index.",
            s.index_slots,
        ),
        m(
            "index_tombstones",
            "index_tombstones",
            Gauge,
            "Index slots holding deletion markers.",
            s.index_tombstones,
        ),
        m(
            "hits",
            "hits_total",
            Counter,
            "Lookups that found a live entry, by every process.",
            s.hits,
        ),
        m(
            "misses",
            "misses_total",
            Counter,
            "Lookups that found nothing or an expired entry.",
            s.misses,
        ),
        m(
            "inserts",
            "inserts_total",
            Counter,
            "Entries written, replacements included.",
            s.inserts,
        ),
        m(
            "deletes",
            "deletes_total",
            Counter,
            "Entries removed by deletes and by reclaiming expired ones.",
            s.deletes,
        ),
        m(
            "recovered_records",
            "recovered_records",
            Gauge,
            "Journal records replayed by the most recent recovery.",
            s.recovered_records,
        ),
        m(
            "recoveries",
            "recoveries_total",
            Counter,
            "Recoveries run (first open, and after a process died holding the lock).",
            s.recoveries,
        ),
        m(
            "recovered_at_open",
            "recovered_at_open",
            Gauge,
            "1 if opening the store for this reading ran recovery.",
            store.recovered_at_open() as u64,
        ),
        m(
            "max_value_len",
            "max_value_bytes",
            Gauge,
            "Largest key plus value the store accepts.",
            store.max_value_len() as u64,
        ),
    ])
}

/// Opens the store read-only (SPEC.md §6.8): nothing is created, locked or written, so it works
/// on a live store and for root on another user's files.
pub fn open_read_only(path: &str) -> Result<Store, String> {
    Store::open(path, Options::default().read_only()).map_err(|e| e.to_string())
}

/// What the read-only view holds, for people: whether the store is in use, closed cleanly, or
/// needs recovery (whose result the view shows by replaying the journal in memory).
pub fn view_note(store: &Store) -> String {
    let Some(v) = store.read_only_view() else {
        return String::new();
    };
    let replayed = match v.journal_records {
        0 => String::new(),
        n => format!(", plus {n} journal records replayed in memory"),
    };
    let state = if v.in_use {
        "in use by other processes; read as of their last checkpoint"
    } else if v.closed_cleanly {
        "closed cleanly"
    } else {
        "not closed cleanly: the next read-write open will run recovery; shown as recovery will leave it"
    };
    format!("{state} (checkpoint {}{replayed})", v.epoch)
}

pub fn run(path: &str, format: StatsFormat) -> Result<String, String> {
    let store = open_read_only(path)?;
    let fields = metrics(&store)?;
    Ok(match format {
        StatsFormat::Json => json(path, &fields),
        StatsFormat::Prometheus => prometheus(path, &fields),
        StatsFormat::Text => text(path, &fields) + &format!("state: {}\n", view_note(&store)),
    })
}

fn json(path: &str, fields: &[Metric]) -> String {
    let mut obj = vec![("file", serde_json::Value::from(path))];
    obj.extend(fields.iter().map(|m| (m.name, m.value.into())));
    Ordered(obj).line()
}

/// The text exposition format: `# HELP`, `# TYPE`, then `apcdb_NAME{store="PATH"} VALUE`.
pub fn prometheus(path: &str, fields: &[Metric]) -> String {
    // Label values escape backslash, double quote and newline; nothing else.
    let label = path
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    let mut out = String::new();
    for m in fields {
        let kind = match m.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        out.push_str(&format!(
            "# HELP apcdb_{p} {h}\n# TYPE apcdb_{p} {kind}\napcdb_{p}{{store=\"{label}\"}} {v}\n",
            p = m.prom,
            h = m.help,
            v = m.value
        ));
    }
    out
}

fn text(path: &str, fields: &[Metric]) -> String {
    let get = |name: &str| {
        fields
            .iter()
            .find(|m| m.name == name)
            .map_or(0, |m| m.value)
    };
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    let (used, file_size, max_size) = (get("used_bytes"), get("file_size"), get("max_size"));
    let mut out = format!("file: {path}\n");
    for m in fields {
        out.push_str(&format!("{}: {}\n", m.name, m.value));
    }
    out.push_str(&format!(
        "data file fill: {:.1}% of its current size, {:.1}% of its maximum\n",
        pct(used, file_size),
        pct(used, max_size)
    ));
    out.push_str(&format!(
        "fragmentation (bytes in the file not holding live entries): {:.1}%\n",
        100.0 - pct(used, file_size)
    ));
    out.push_str(&format!(
        "journal fill: {:.1}%\n",
        // Bytes, or 256 per record if more: what the journal is full by (SPEC.md §3).
        pct(
            get("journal_used").max(get("journal_records") * 256),
            get("journal_size")
        )
    ));
    out.push_str(&format!(
        "index: {} slots, {:.1}% tombstones\n",
        get("index_slots"),
        pct(get("index_tombstones"), get("index_slots"))
    ));
    out
}
