//! The layout of every info array, as plain data (SPEC §10, "Functions" and the iterator
//! paragraph): field names in APCu's order and each value with the PHP type APCu gives it. The
//! extension turns a [`Fields`] list into a PHP array in one place, filling the [`Slot`]s (the
//! key, the decoded value, the list of entries) that need PHP.
//!
//! Hit counts and access times come from the store's access table (`Store::access`, per bucket
//! of keys, not durable); without them hits are 0 and `access_time` is `mtime`. apcdb keeps no
//! reference counts (0) and `creation_time` equals `mtime` (the time of the last write).

use crate::filter::{
    APC_ITER_ATIME, APC_ITER_CTIME, APC_ITER_DTIME, APC_ITER_KEY, APC_ITER_MEM_SIZE,
    APC_ITER_MTIME, APC_ITER_NUM_HITS, APC_ITER_REFCOUNT, APC_ITER_TTL, APC_ITER_TYPE,
    APC_ITER_VALUE,
};
use crate::ttl::reported_ttl;
use apcdb::{Entry, EntryMeta, Stats};

/// One element of an info array.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    Int(i64),
    Float(f64),
    Str(&'static str),
    /// A value only the extension can make.
    Slot(Slot),
    /// A PHP list (keys 0, 1, ...).
    List(Vec<Field>),
    /// A PHP array with string keys.
    Map(Fields),
}

/// A place in an info array that the extension fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The entry's key, as a binary-safe string.
    Key,
    /// The entry's decoded value (`false` if it cannot be decoded).
    Value,
    /// `apc_cache_info()`'s `cache_list`: one [`EntryInfo::cache_list_fields`] per live entry.
    EntryList,
}

/// An info array: names in order, with their values.
pub type Fields = Vec<(&'static str, Field)>;

/// Size in bytes an entry is reported to take: its key and its encoded value (the value need not
/// be read).
pub fn mem_size(key_len: usize, value_len: u64) -> u64 {
    key_len as u64 + value_len
}

/// The metadata of an entry read with its value.
pub fn meta_of(e: &Entry) -> EntryMeta {
    EntryMeta {
        value_len: e.value.len() as u64,
        expires_at_ms: e.expires_at_ms,
        modified_at_ms: e.modified_at_ms,
        version: e.version,
    }
}

/// What the info functions say about one entry, from its key length and metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryInfo {
    /// Second of the last write.
    pub mtime: i64,
    /// The TTL as [`reported_ttl`] recovers it.
    pub ttl: i64,
    pub mem_size: i64,
    /// Reads since the last write.
    pub hits: i64,
    /// Second of the last read or write.
    pub atime: i64,
}

impl EntryInfo {
    pub fn new(key_len: usize, meta: &EntryMeta) -> EntryInfo {
        let mtime = (meta.modified_at_ms / 1000) as i64;
        EntryInfo {
            mtime,
            ttl: reported_ttl(meta.expires_at_ms, meta.modified_at_ms),
            mem_size: mem_size(key_len, meta.value_len) as i64,
            hits: 0,
            atime: mtime,
        }
    }

    /// With the hits and last access (Unix seconds, 0 = unknown) that `Store::access` gives.
    pub fn with_access(mut self, (hits, atime): (u64, u64)) -> EntryInfo {
        self.hits = hits as i64;
        // The table is not durable: after a restart it knows nothing, and the write is the
        // last access known.
        self.atime = self.mtime.max(atime as i64);
        self
    }

    /// An element of `apc_cache_info()['cache_list']` (APCu gives `num_hits` as a float here).
    pub fn cache_list_fields(&self) -> Fields {
        vec![
            ("info", Field::Slot(Slot::Key)),
            ("ttl", Field::Int(self.ttl)),
            ("num_hits", Field::Float(self.hits as f64)),
            ("mtime", Field::Int(self.mtime)),
            ("creation_time", Field::Int(self.mtime)),
            ("deletion_time", Field::Int(0)),
            ("access_time", Field::Int(self.atime)),
            ("ref_count", Field::Int(0)),
            ("mem_size", Field::Int(self.mem_size)),
        ]
    }

    /// `apc_key_info()`.
    pub fn key_info_fields(&self) -> Fields {
        vec![
            ("hits", Field::Int(self.hits)),
            ("access_time", Field::Int(self.atime)),
            ("mtime", Field::Int(self.mtime)),
            ("creation_time", Field::Int(self.mtime)),
            ("deletion_time", Field::Int(0)),
            ("ttl", Field::Int(self.ttl)),
            ("refs", Field::Int(0)),
        ]
    }

    /// The iterator's `current()`: the fields `format` selects (`APC_ITER_*` bits), in APCu's
    /// order.
    pub fn iterator_fields(&self, format: i64) -> Fields {
        let all = [
            (APC_ITER_TYPE, "type", Field::Str("user")),
            (APC_ITER_KEY, "key", Field::Slot(Slot::Key)),
            (APC_ITER_VALUE, "value", Field::Slot(Slot::Value)),
            (APC_ITER_NUM_HITS, "num_hits", Field::Int(self.hits)),
            (APC_ITER_MTIME, "mtime", Field::Int(self.mtime)),
            (APC_ITER_CTIME, "creation_time", Field::Int(self.mtime)),
            (APC_ITER_DTIME, "deletion_time", Field::Int(0)),
            (APC_ITER_ATIME, "access_time", Field::Int(self.atime)),
            (APC_ITER_REFCOUNT, "ref_count", Field::Int(0)),
            (APC_ITER_MEM_SIZE, "mem_size", Field::Int(self.mem_size)),
            (APC_ITER_TTL, "ttl", Field::Int(self.ttl)),
        ];
        all.into_iter()
            .filter(|(bit, _, _)| format & bit != 0)
            .map(|(_, name, f)| (name, f))
            .collect()
    }
}

/// `apc_cache_info()`. `start_time_ms` is the server generation's start; `limited` leaves out
/// the lists.
pub fn cache_info_fields(st: &Stats, start_time_ms: u64, limited: bool) -> Fields {
    let mut f = vec![
        ("num_slots", Field::Int(st.index_slots as i64)),
        ("ttl", Field::Int(0)),
        ("num_hits", Field::Float(st.hits as f64)),
        ("num_misses", Field::Float(st.misses as f64)),
        ("num_inserts", Field::Float(st.inserts as f64)),
        ("num_entries", Field::Int(st.entries as i64)),
        ("expunges", Field::Float(st.expunges as f64)),
        ("start_time", Field::Int((start_time_ms / 1000) as i64)),
        ("mem_size", Field::Float(st.used_bytes as f64)),
        ("memory_type", Field::Str("mmap")),
    ];
    if !limited {
        f.push(("cache_list", Field::Slot(Slot::EntryList)));
        // Deleted entries are freed at once; there are no hash-slot statistics.
        f.push(("deleted_list", Field::List(Vec::new())));
        f.push(("slot_distribution", Field::List(Vec::new())));
    }
    f
}

/// `apc_sma_info()`: the store as one segment whose free space is one block after the used
/// bytes.
pub fn sma_info_fields(st: &Stats, limited: bool) -> Fields {
    let avail = st.max_size.saturating_sub(st.used_bytes);
    let mut f = vec![
        ("num_seg", Field::Int(1)),
        ("seg_size", Field::Float(st.max_size as f64)),
        ("avail_mem", Field::Float(avail as f64)),
    ];
    if !limited {
        let block = Field::Map(vec![
            ("size", Field::Int(avail as i64)),
            ("offset", Field::Int(st.used_bytes as i64)),
        ]);
        f.push(("block_lists", Field::List(vec![Field::List(vec![block])])));
    }
    f
}

/// `apcdb_stats()`: the store's own counters, under the names `apcdb stats --json` uses (without
/// its `file`), so one dashboard reads either, then the writers' checkpoint counters:
/// `flushes_by_writes` (this process's), `paced_writes`, `full_half_waits`, `pace_overruns`, and
/// this process's waits: `write_lock_contended`, `write_lock_slept`, `pace_wait_max_ns`. Every
/// value is an int.
pub fn apcdb_stats_fields(st: &Stats, recovered_at_open: bool, max_value_len: usize) -> Fields {
    let int = |v: u64| Field::Int(v.min(i64::MAX as u64) as i64);
    vec![
        ("entries", int(st.entries)),
        ("used_bytes", int(st.used_bytes)),
        ("file_size", int(st.file_size)),
        ("max_size", int(st.max_size)),
        ("free_bytes", int(st.max_size.saturating_sub(st.used_bytes))),
        ("journal_size", int(st.journal_size)),
        ("journal_used", int(st.journal_used)),
        ("checkpoints", int(st.checkpoints)),
        ("checkpoint_epoch", int(st.checkpoint_epoch)),
        ("generation", int(st.generation)),
        ("index_slots", int(st.index_slots)),
        ("index_tombstones", int(st.index_tombstones)),
        ("hits", int(st.hits)),
        ("misses", int(st.misses)),
        ("inserts", int(st.inserts)),
        ("deletes", int(st.deletes)),
        ("recovered_records", int(st.recovered_records)),
        ("recoveries", int(st.recoveries)),
        ("recovered_at_open", int(recovered_at_open as u64)),
        ("max_value_len", int(max_value_len as u64)),
        ("flushes_by_writes", int(st.flushes_by_writes)),
        ("paced_writes", int(st.paced_writes)),
        ("full_half_waits", int(st.full_half_waits)),
        ("pace_overruns", int(st.pace_overruns)),
        ("write_lock_contended", int(st.write_lock_contended)),
        ("write_lock_slept", int(st.write_lock_slept)),
        ("pace_wait_max_ns", int(st.pace_wait_max_ns)),
    ]
}

/// `getTotalHits()`, `getTotalSize()`, `getTotalCount()` of an iterator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub hits: i64,
    pub size: i64,
    pub count: i64,
}

/// The totals over the entries an iterator selects, from each one's key length and metadata.
pub fn totals<'a>(entries: impl IntoIterator<Item = (usize, &'a EntryMeta)>) -> Totals {
    let mut size = 0u64;
    let mut count = 0i64;
    for (key_len, meta) in entries {
        size += mem_size(key_len, meta.value_len);
        count += 1;
    }
    Totals {
        hits: 0, // not kept per key
        size: size as i64,
        count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::APC_ITER_ALL;
    use crate::ttl::expiry_for_ttl;

    fn meta(value_len: u64, ttl: i64, modified_at_ms: u64) -> EntryMeta {
        EntryMeta {
            value_len,
            expires_at_ms: expiry_for_ttl(ttl, modified_at_ms),
            modified_at_ms,
            version: 1,
        }
    }

    fn names(f: &Fields) -> Vec<&'static str> {
        f.iter().map(|(n, _)| *n).collect()
    }

    fn get<'a>(f: &'a Fields, name: &str) -> &'a Field {
        &f.iter().find(|(n, _)| *n == name).unwrap().1
    }

    #[test]
    fn metadata_of_an_entry_read_with_its_value() {
        let e = Entry {
            value: vec![5, b'a', b'b'],
            expires_at_ms: 3_000,
            modified_at_ms: 1_000,
            version: 42,
        };
        assert_eq!(
            meta_of(&e),
            EntryMeta {
                value_len: 3,
                expires_at_ms: 3_000,
                modified_at_ms: 1_000,
                version: 42
            }
        );
    }

    #[test]
    fn entry_info_from_metadata() {
        let e = EntryInfo::new(3, &meta(10, 60, 1_700_000_000_500));
        assert_eq!(
            e,
            EntryInfo {
                mtime: 1_700_000_000,
                ttl: 60,
                mem_size: 13,
                hits: 0,
                atime: 1_700_000_000,
            }
        );
        // The access table's numbers; an access before the write (a table rebuilt since) is
        // not reported as later than the write.
        let a = e.with_access((4, 1_700_000_010));
        assert_eq!((a.hits, a.atime), (4, 1_700_000_010));
        let a = e.with_access((0, 0));
        assert_eq!((a.hits, a.atime), (0, 1_700_000_000));
        let list = a.with_access((2, 1_700_000_020)).cache_list_fields();
        assert_eq!(get(&list, "num_hits"), &Field::Float(2.0));
        assert_eq!(get(&list, "access_time"), &Field::Int(1_700_000_020));
        assert_eq!(EntryInfo::new(0, &meta(0, 0, 999)).ttl, 0);
        assert_eq!(EntryInfo::new(0, &meta(0, 0, 999)).mtime, 0);
    }

    #[test]
    fn the_three_entry_arrays_agree() {
        let e = EntryInfo::new(4, &meta(6, 30, 2_000_000));
        let list = e.cache_list_fields();
        let key = e.key_info_fields();
        let it = e.iterator_fields(APC_ITER_ALL);
        assert_eq!(
            names(&list),
            [
                "info",
                "ttl",
                "num_hits",
                "mtime",
                "creation_time",
                "deletion_time",
                "access_time",
                "ref_count",
                "mem_size"
            ]
        );
        assert_eq!(
            names(&key),
            [
                "hits",
                "access_time",
                "mtime",
                "creation_time",
                "deletion_time",
                "ttl",
                "refs"
            ]
        );
        assert_eq!(
            names(&it),
            [
                "type",
                "key",
                "value",
                "num_hits",
                "mtime",
                "creation_time",
                "deletion_time",
                "access_time",
                "ref_count",
                "mem_size",
                "ttl"
            ]
        );
        for f in [&list, &key, &it] {
            assert_eq!(get(f, "mtime"), &Field::Int(2_000));
            assert_eq!(get(f, "access_time"), &Field::Int(2_000));
            assert_eq!(get(f, "creation_time"), &Field::Int(2_000));
            assert_eq!(get(f, "ttl"), &Field::Int(30));
            assert_eq!(get(f, "deletion_time"), &Field::Int(0));
        }
        assert_eq!(get(&list, "mem_size"), &Field::Int(10));
        assert_eq!(get(&it, "mem_size"), &Field::Int(10));
        // APCu's types: a float hit count in cache_list, ints elsewhere.
        assert_eq!(get(&list, "num_hits"), &Field::Float(0.0));
        assert_eq!(get(&it, "num_hits"), &Field::Int(0));
        assert_eq!(get(&list, "info"), &Field::Slot(Slot::Key));
        assert_eq!(get(&it, "type"), &Field::Str("user"));
        assert_eq!(get(&it, "value"), &Field::Slot(Slot::Value));
    }

    #[test]
    fn iterator_format_bits_select_fields() {
        let e = EntryInfo::new(1, &meta(1, 0, 0));
        assert!(e.iterator_fields(0).is_empty());
        assert_eq!(names(&e.iterator_fields(APC_ITER_KEY)), ["key"]);
        assert_eq!(
            names(&e.iterator_fields(APC_ITER_TTL | APC_ITER_KEY | APC_ITER_VALUE)),
            ["key", "value", "ttl"],
            "APCu's order, not the order of the bits asked"
        );
        assert_eq!(
            names(&e.iterator_fields(APC_ITER_MEM_SIZE | APC_ITER_TYPE)),
            ["type", "mem_size"]
        );
        // Bits apcdb does not know are ignored.
        assert_eq!(
            names(&e.iterator_fields(1 << 20 | APC_ITER_MTIME)),
            ["mtime"]
        );
    }

    fn stats() -> Stats {
        Stats {
            entries: 7,
            used_bytes: 4096,
            max_size: 1 << 20,
            hits: 5,
            misses: 2,
            inserts: 9,
            index_slots: 64,
            write_lock_contended: 11,
            write_lock_slept: 3,
            pace_wait_max_ns: 15_000,
            ..Stats::default()
        }
    }

    #[test]
    fn cache_info_header_and_lists() {
        let f = cache_info_fields(&stats(), 1_700_000_000_999, false);
        assert_eq!(
            names(&f),
            [
                "num_slots",
                "ttl",
                "num_hits",
                "num_misses",
                "num_inserts",
                "num_entries",
                "expunges",
                "start_time",
                "mem_size",
                "memory_type",
                "cache_list",
                "deleted_list",
                "slot_distribution"
            ]
        );
        assert_eq!(get(&f, "num_slots"), &Field::Int(64));
        assert_eq!(get(&f, "num_hits"), &Field::Float(5.0));
        assert_eq!(get(&f, "num_misses"), &Field::Float(2.0));
        assert_eq!(get(&f, "num_inserts"), &Field::Float(9.0));
        assert_eq!(get(&f, "num_entries"), &Field::Int(7));
        assert_eq!(get(&f, "start_time"), &Field::Int(1_700_000_000));
        assert_eq!(get(&f, "mem_size"), &Field::Float(4096.0));
        assert_eq!(get(&f, "cache_list"), &Field::Slot(Slot::EntryList));
        assert_eq!(get(&f, "deleted_list"), &Field::List(vec![]));
        let limited = cache_info_fields(&stats(), 0, true);
        assert_eq!(limited.len(), 10);
        assert_eq!(names(&limited), names(&f)[..10]);
    }

    #[test]
    fn sma_info_is_one_segment_with_one_free_block() {
        let f = sma_info_fields(&stats(), false);
        assert_eq!(
            names(&f),
            ["num_seg", "seg_size", "avail_mem", "block_lists"]
        );
        assert_eq!(get(&f, "num_seg"), &Field::Int(1));
        assert_eq!(get(&f, "seg_size"), &Field::Float(1048576.0));
        assert_eq!(get(&f, "avail_mem"), &Field::Float((1048576 - 4096) as f64));
        let block = Field::Map(vec![
            ("size", Field::Int(1048576 - 4096)),
            ("offset", Field::Int(4096)),
        ]);
        assert_eq!(
            get(&f, "block_lists"),
            &Field::List(vec![Field::List(vec![block])])
        );
        assert_eq!(
            names(&sma_info_fields(&stats(), true)),
            ["num_seg", "seg_size", "avail_mem"]
        );
        // Used past the maximum (a store reopened smaller): no free space, never a wrap-around.
        let over = Stats {
            used_bytes: 2 << 20,
            ..stats()
        };
        assert_eq!(
            get(&sma_info_fields(&over, true), "avail_mem"),
            &Field::Float(0.0)
        );
    }

    #[test]
    fn totals_sum_key_and_value_sizes() {
        let a = meta(10, 0, 0);
        let b = meta(0, 5, 0);
        assert_eq!(
            totals([(3, &a), (2, &b)]),
            Totals {
                hits: 0,
                size: 15,
                count: 2
            }
        );
        assert_eq!(totals([]), Totals::default());
    }

    #[test]
    fn apcdb_stats_names_and_values() {
        let f = apcdb_stats_fields(&stats(), true, 1000);
        // The names of `apcdb stats --json`, in its order, then the writers' checkpoint counters
        // (of a handle that writes: the tool's read-only view has none).
        assert_eq!(
            names(&f),
            [
                "entries",
                "used_bytes",
                "file_size",
                "max_size",
                "free_bytes",
                "journal_size",
                "journal_used",
                "checkpoints",
                "checkpoint_epoch",
                "generation",
                "index_slots",
                "index_tombstones",
                "hits",
                "misses",
                "inserts",
                "deletes",
                "recovered_records",
                "recoveries",
                "recovered_at_open",
                "max_value_len",
                "flushes_by_writes",
                "paced_writes",
                "full_half_waits",
                "pace_overruns",
                "write_lock_contended",
                "write_lock_slept",
                "pace_wait_max_ns"
            ]
        );
        assert_eq!(get(&f, "write_lock_contended"), &Field::Int(11));
        assert_eq!(get(&f, "write_lock_slept"), &Field::Int(3));
        assert_eq!(get(&f, "pace_wait_max_ns"), &Field::Int(15_000));
        assert_eq!(get(&f, "free_bytes"), &Field::Int((1 << 20) - 4096));
        assert_eq!(get(&f, "hits"), &Field::Int(5));
        assert_eq!(get(&f, "recovered_at_open"), &Field::Int(1));
        assert_eq!(get(&f, "max_value_len"), &Field::Int(1000));
    }
}
