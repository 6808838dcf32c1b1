//! Which entries an `APCIterator`/`APCUIterator` selects, in which order, and how they are paged
//! (SPEC §10, the iterator paragraph). A regular expression is matched by PHP's own `preg_grep`
//! (so the syntax and errors are PHP's); everything else is decided here.

use apcdb::{EntryMeta, Visit};
use std::collections::HashSet;

// APCu 5.1's values (APC 3.1 numbered them differently; code uses the names).
pub const APC_ITER_TYPE: i64 = 1;
pub const APC_ITER_KEY: i64 = 2;
pub const APC_ITER_VALUE: i64 = 4;
pub const APC_ITER_NUM_HITS: i64 = 8;
pub const APC_ITER_MTIME: i64 = 16;
pub const APC_ITER_CTIME: i64 = 32;
pub const APC_ITER_DTIME: i64 = 64;
pub const APC_ITER_ATIME: i64 = 128;
pub const APC_ITER_REFCOUNT: i64 = 256;
pub const APC_ITER_MEM_SIZE: i64 = 512;
pub const APC_ITER_TTL: i64 = 1024;
pub const APC_ITER_NONE: i64 = 0;
pub const APC_ITER_ALL: i64 = 0xffff_ffff;
pub const APC_LIST_ACTIVE: i64 = 1;
pub const APC_LIST_DELETED: i64 = 2;

/// The constants the extension defines, by PHP name.
pub const CONSTANTS: &[(&str, i64)] = &[
    ("APC_ITER_TYPE", APC_ITER_TYPE),
    ("APC_ITER_KEY", APC_ITER_KEY),
    ("APC_ITER_VALUE", APC_ITER_VALUE),
    ("APC_ITER_NUM_HITS", APC_ITER_NUM_HITS),
    ("APC_ITER_MTIME", APC_ITER_MTIME),
    ("APC_ITER_CTIME", APC_ITER_CTIME),
    ("APC_ITER_DTIME", APC_ITER_DTIME),
    ("APC_ITER_ATIME", APC_ITER_ATIME),
    ("APC_ITER_REFCOUNT", APC_ITER_REFCOUNT),
    ("APC_ITER_MEM_SIZE", APC_ITER_MEM_SIZE),
    ("APC_ITER_TTL", APC_ITER_TTL),
    ("APC_ITER_NONE", APC_ITER_NONE),
    ("APC_ITER_ALL", APC_ITER_ALL),
    ("APC_LIST_ACTIVE", APC_LIST_ACTIVE),
    ("APC_LIST_DELETED", APC_LIST_DELETED),
];

/// Entries per page when `$chunk_size` is 0 or less (APCu's default).
pub const DEFAULT_CHUNK: usize = 100;

/// What the iterator's `$search` selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Search {
    /// `null` (or no argument): every live entry.
    All,
    /// A PCRE pattern, matched against the keys by PHP's `preg_grep`.
    Regex(Vec<u8>),
    /// An array of keys: exactly these (elements that are not strings select nothing).
    Keys(HashSet<Vec<u8>>),
    /// Nothing at all (the pattern did not compile, another cache type, an invalid list).
    Nothing,
}

impl Search {
    /// Whether scanning the store can select anything for list `list`: apcdb frees a deleted
    /// entry at once, so the deleted list is always empty.
    pub fn scans(&self, list: i64) -> bool {
        list != APC_LIST_DELETED && !matches!(self, Search::Nothing)
    }

    /// The first pass, in the store's scan: a key list is applied there (keys and metadata only
    /// are copied, never values); a pattern is applied afterwards, outside the scan, because it
    /// runs PHP code.
    pub fn visit(&self, key: &[u8]) -> Visit {
        match self {
            Search::Keys(keys) if !keys.contains(key) => Visit::Skip,
            Search::Nothing => Visit::Skip,
            _ => Visit::Meta,
        }
    }

    /// The pattern still to be applied after the scan, if any.
    pub fn pattern(&self) -> Option<&[u8]> {
        match self {
            Search::Regex(p) => Some(p),
            _ => None,
        }
    }
}

/// Whether `$list` is one APCu accepts (otherwise: warning, the iterator selects nothing).
pub fn list_is_valid(list: i64) -> bool {
    list == APC_LIST_ACTIVE || list == APC_LIST_DELETED
}

/// Entries per page for `$chunk_size`: 0 or less means [`DEFAULT_CHUNK`].
pub fn page_entries(chunk_size: i64) -> usize {
    usize::try_from(chunk_size)
        .ok()
        .filter(|&c| c > 0)
        .unwrap_or(DEFAULT_CHUNK)
}

/// Sorts scanned entries into the order the iterator presents them: write order (the version of
/// the entry's last write), the key as tie-breaker so that the order is total.
pub fn sort_in_write_order<K: Ord>(entries: &mut [(K, EntryMeta)]) {
    entries.sort_by(|a, b| a.1.version.cmp(&b.1.version).then_with(|| a.0.cmp(&b.0)));
}

/// The elements of `batch` whose index `preg_grep` returned, in order.
pub fn keep_matched<T: Clone>(batch: &[T], matched: &HashSet<usize>) -> Vec<T> {
    batch
        .iter()
        .enumerate()
        .filter(|(i, _)| matched.contains(i))
        .map(|(_, e)| e.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(version: u64) -> EntryMeta {
        EntryMeta {
            value_len: 1,
            expires_at_ms: 0,
            modified_at_ms: 0,
            version,
        }
    }

    #[test]
    fn key_lists_select_exactly_their_keys() {
        let s = Search::Keys([b"a".to_vec(), b"b\0c".to_vec()].into_iter().collect());
        assert_eq!(s.visit(b"a"), Visit::Meta);
        assert_eq!(s.visit(b"b\0c"), Visit::Meta, "keys are binary-safe");
        assert_eq!(s.visit(b"b"), Visit::Skip);
        assert_eq!(s.visit(b"A"), Visit::Skip, "case-sensitive");
        assert_eq!(s.pattern(), None);
        let empty = Search::Keys(HashSet::new());
        assert_eq!(empty.visit(b"a"), Visit::Skip);
    }

    #[test]
    fn all_selects_everything_and_patterns_are_left_to_preg_grep() {
        assert_eq!(Search::All.visit(b"x"), Visit::Meta);
        assert_eq!(Search::All.pattern(), None);
        let r = Search::Regex(b"/^user_/".to_vec());
        // The scan copies every key's metadata; the pattern filters afterwards.
        assert_eq!(r.visit(b"other"), Visit::Meta);
        assert_eq!(r.pattern(), Some(&b"/^user_/"[..]));
    }

    #[test]
    fn nothing_and_the_deleted_list_select_nothing() {
        assert!(!Search::Nothing.scans(APC_LIST_ACTIVE));
        assert_eq!(Search::Nothing.visit(b"x"), Visit::Skip);
        assert!(!Search::All.scans(APC_LIST_DELETED));
        assert!(Search::All.scans(APC_LIST_ACTIVE));
        assert!(Search::Regex(b"/x/".to_vec()).scans(APC_LIST_ACTIVE));
    }

    #[test]
    fn list_and_chunk_arguments() {
        assert!(list_is_valid(APC_LIST_ACTIVE));
        assert!(list_is_valid(APC_LIST_DELETED));
        assert!(!list_is_valid(0));
        assert!(!list_is_valid(3));
        assert_eq!(page_entries(0), DEFAULT_CHUNK);
        assert_eq!(page_entries(-5), DEFAULT_CHUNK);
        assert_eq!(page_entries(1), 1);
        assert_eq!(page_entries(250), 250);
    }

    #[test]
    fn write_order_then_key() {
        let mut v = vec![
            (b"c".to_vec(), meta(3)),
            (b"b".to_vec(), meta(1)),
            (b"z".to_vec(), meta(2)),
            (b"a".to_vec(), meta(1)),
        ];
        sort_in_write_order(&mut v);
        let keys: Vec<&[u8]> = v.iter().map(|(k, _)| &k[..]).collect();
        assert_eq!(keys, [&b"a"[..], b"b", b"z", b"c"]);
    }

    #[test]
    fn matched_indices_keep_batch_order() {
        let batch = ["k0", "k1", "k2", "k3"];
        let hit: HashSet<usize> = [3, 1, 9].into_iter().collect();
        assert_eq!(keep_matched(&batch, &hit), ["k1", "k3"]);
        assert!(keep_matched(&batch, &HashSet::new()).is_empty());
    }

    #[test]
    fn constants_have_apcu_values() {
        let get = |n: &str| CONSTANTS.iter().find(|(k, _)| *k == n).unwrap().1;
        assert_eq!(get("APC_ITER_VALUE"), 4);
        assert_eq!(get("APC_ITER_TTL"), 1024);
        assert_eq!(get("APC_ITER_ALL"), 0xffff_ffff);
        assert_eq!(get("APC_LIST_DELETED"), 2);
        assert_eq!(CONSTANTS.len(), 15);
    }
}
