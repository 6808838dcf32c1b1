//! `APCIterator` (APC 3.1 constructor) and `APCUIterator` (APCu 5.1 constructor, drop-in mode).
//!
//! The iterator takes a snapshot of the live entries whose key matches the search (a PCRE pattern,
//! run through PHP's own `preg_grep`, or a list of keys) at the first use after construction or
//! `rewind()`. Values are decoded only when `current()` asks for them (APC_ITER_VALUE).

use crate::codec;
use crate::funcs::{decode_or_warn, report, Mode};
use crate::handle;
use crate::util::{self, bool_zval, bytes_zval, ttl_of, warn};
use apcdb::Entry;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendClassObject, ZendHashTable, ZendObject, Zval};
use ext_php_rs::zend::ce;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Set when APCUIterator was registered (drop-in mode without APCu).
pub static APCU_ITERATOR_REGISTERED: AtomicBool = AtomicBool::new(false);

enum Search {
    All,
    Regex(Vec<u8>),
    Keys(HashSet<Vec<u8>>),
    /// A search that matches nothing (e.g. the pattern did not compile, or another cache type).
    Nothing,
}

pub struct IterState {
    search: Search,
    format: i64,
    list: i64,
    items: Option<Vec<(Vec<u8>, Entry)>>,
    pos: usize,
}

/// Coerce an optional int argument with PHP's rules; on failure the TypeError is pending.
fn long_arg(z: Option<&Zval>, argnum: u32, default: i64) -> Result<i64, ()> {
    let Some(z) = z else { return Ok(default) };
    // The engine's coercion takes a mutable zval; give it a copy of the borrowed argument.
    util::coerce_long(&mut z.dereference().shallow_clone(), argnum)
}

impl IterState {
    fn invalid() -> Self {
        IterState {
            search: Search::Nothing,
            format: 0,
            list: APC_LIST_ACTIVE,
            items: Some(Vec::new()),
            pos: 0,
        }
    }

    /// `search_pos` is the 1-based position of `$search` among the constructor's parameters.
    fn new(
        search: Option<&Zval>,
        format: Option<&Zval>,
        chunk: Option<&Zval>,
        list: Option<&Zval>,
        search_pos: u32,
    ) -> Self {
        let Ok(format) = long_arg(format, search_pos + 1, APC_ITER_ALL) else {
            return Self::invalid();
        };
        let Ok(_chunk) = long_arg(chunk, search_pos + 2, 0) else {
            return Self::invalid();
        };
        let Ok(list) = long_arg(list, search_pos + 3, APC_LIST_ACTIVE) else {
            return Self::invalid();
        };
        if list != APC_LIST_ACTIVE && list != APC_LIST_DELETED {
            warn("APCIterator list is invalid");
            return Self::invalid();
        }
        let search = match search.map(|z| z.dereference()) {
            None => Search::All,
            Some(z) if z.is_null() => Search::All,
            Some(z) if z.is_array() => {
                let mut keys = HashSet::new();
                for v in z.array().unwrap().values() {
                    if let Some(s) = v.dereference().zend_str() {
                        keys.insert(s.as_bytes().to_vec());
                    }
                }
                Search::Keys(keys)
            }
            Some(z) => match util::scalar_bytes(z) {
                Some(p) => {
                    // Compile once now so that a bad pattern is reported at construction.
                    match preg_grep(&p, &[]) {
                        Some(_) => Search::Regex(p),
                        None => {
                            warn(&format!(
                                "Could not compile regular expression: {}",
                                String::from_utf8_lossy(&p)
                            ));
                            Search::Nothing
                        }
                    }
                }
                None => Search::All,
            },
        };
        IterState {
            search,
            format,
            list,
            items: None,
            pos: 0,
        }
    }

    fn matching(&self) -> Vec<(Vec<u8>, Entry)> {
        if self.list == APC_LIST_DELETED {
            return Vec::new(); // apcdb frees deleted entries at once: the deleted list is always empty
        }
        if matches!(self.search, Search::Nothing) {
            return Vec::new();
        }
        let Some(store) = handle::store() else {
            return Vec::new();
        };
        let mut all = match store.scan_prefix(b"") {
            Ok(v) => v,
            Err(e) => {
                report(&e);
                return Vec::new();
            }
        };
        all.sort_by(|a, b| a.1.version.cmp(&b.1.version).then_with(|| a.0.cmp(&b.0)));
        match &self.search {
            Search::All => all,
            Search::Nothing => Vec::new(),
            Search::Keys(keys) => all.into_iter().filter(|(k, _)| keys.contains(k)).collect(),
            Search::Regex(p) => {
                let keys: Vec<&[u8]> = all.iter().map(|(k, _)| k.as_slice()).collect();
                let Some(hit) = preg_grep(p, &keys) else {
                    return Vec::new();
                };
                all.into_iter()
                    .enumerate()
                    .filter(|(i, _)| hit.contains(i))
                    .map(|(_, e)| e)
                    .collect()
            }
        }
    }

    fn ensure(&mut self) {
        if self.items.is_none() {
            self.items = Some(self.matching());
            self.pos = 0;
        }
    }

    pub fn keys(&mut self) -> Vec<Vec<u8>> {
        self.matching().into_iter().map(|(k, _)| k).collect()
    }

    fn rewind(&mut self) {
        self.items = None;
        self.ensure();
    }

    fn valid(&mut self) -> bool {
        self.ensure();
        self.pos < self.items.as_ref().map_or(0, Vec::len)
    }

    fn next(&mut self) {
        self.ensure();
        self.pos += 1;
    }

    fn key(&mut self) -> Zval {
        self.ensure();
        match self.items.as_ref().and_then(|v| v.get(self.pos)) {
            Some((k, _)) => bytes_zval(k),
            None => Zval::new(),
        }
    }

    fn current(&mut self) -> Zval {
        self.ensure();
        let Some((k, e)) = self.items.as_ref().and_then(|v| v.get(self.pos)) else {
            return bool_zval(false);
        };
        let f = self.format;
        let m = (e.modified_at_ms / 1000) as i64;
        let mut h = ZendHashTable::new();
        if f & APC_ITER_TYPE != 0 {
            let _ = h.insert("type", "user");
        }
        if f & APC_ITER_KEY != 0 {
            let _ = h.insert("key", bytes_zval(k));
        }
        if f & APC_ITER_VALUE != 0 {
            let v = decode_or_warn(&e.value).unwrap_or_else(|| bool_zval(false));
            let _ = h.insert("value", v);
        }
        if f & APC_ITER_NUM_HITS != 0 {
            let _ = h.insert("num_hits", 0i64);
        }
        if f & APC_ITER_MTIME != 0 {
            let _ = h.insert("mtime", m);
        }
        if f & APC_ITER_CTIME != 0 {
            let _ = h.insert("creation_time", m);
        }
        if f & APC_ITER_DTIME != 0 {
            let _ = h.insert("deletion_time", 0i64);
        }
        if f & APC_ITER_ATIME != 0 {
            let _ = h.insert("access_time", m);
        }
        if f & APC_ITER_REFCOUNT != 0 {
            let _ = h.insert("ref_count", 0i64);
        }
        if f & APC_ITER_MEM_SIZE != 0 {
            let _ = h.insert("mem_size", codec::stored_size(k, &e.value) as i64);
        }
        if f & APC_ITER_TTL != 0 {
            let _ = h.insert("ttl", ttl_of(e.expires_at_ms, e.modified_at_ms));
        }
        let mut z = Zval::new();
        z.set_hashtable(h);
        z
    }

    fn totals(&self) -> (i64, i64, i64) {
        let items = self.matching();
        let size: u64 = items
            .iter()
            .map(|(k, e)| codec::stored_size(k, &e.value))
            .sum();
        (0, size as i64, items.len() as i64)
    }
}

/// Indices of `subjects` matched by `pattern`, via PHP's `preg_grep` (so the pattern syntax and
/// its errors are PHP's). `None` if the pattern does not compile.
fn preg_grep(pattern: &[u8], subjects: &[&[u8]]) -> Option<HashSet<usize>> {
    let f = ZendCallable::try_from_name("preg_grep").ok()?;
    let pz = bytes_zval(pattern);
    let mut arr = ZendHashTable::new();
    for s in subjects {
        let _ = arr.push(bytes_zval(s));
    }
    let mut az = Zval::new();
    az.set_hashtable(arr);
    let r = f.try_call(vec![&pz, &az]).ok()?;
    let ht = r.array()?;
    let mut out = HashSet::new();
    for (k, _) in ht.iter() {
        if let ext_php_rs::types::ArrayKey::Long(i) = k {
            out.insert(i as usize);
        }
    }
    Some(out)
}

/// One PHP iterator class over [`IterState`]; the two classes differ only in their constructor.
macro_rules! iterator_class {
    ($ty:ident, $php_name:tt, $($ctor:tt)*) => {
        #[php_class]
        #[php(name = $php_name)]
        #[php(implements(ce = ce::iterator, stub = "\\Iterator"))]
        pub struct $ty {
            st: IterState,
        }

        #[php_impl]
        impl $ty {
            $($ctor)*
            pub fn rewind(&mut self) {
                self.st.rewind()
            }
            pub fn valid(&mut self) -> bool {
                self.st.valid()
            }
            pub fn next(&mut self) {
                self.st.next()
            }
            pub fn key(&mut self) -> Zval {
                self.st.key()
            }
            pub fn current(&mut self) -> Zval {
                self.st.current()
            }
            pub fn get_total_hits(&mut self) -> i64 {
                self.st.totals().0
            }
            pub fn get_total_size(&mut self) -> i64 {
                self.st.totals().1
            }
            pub fn get_total_count(&mut self) -> i64 {
                self.st.totals().2
            }
        }
    };
}

iterator_class!(
    ApcIterator,
    "APCIterator",
    /// APC 3.1: `new APCIterator($cache = 'user', $search = null, $format = APC_ITER_ALL,
    /// $chunk_size = 100, $list = APC_LIST_ACTIVE)`.
    pub fn __construct(
        cache: Option<&Zval>,
        search: Option<&Zval>,
        format: Option<&Zval>,
        chunk_size: Option<&Zval>,
        list: Option<&Zval>,
    ) -> Self {
        let cache_ok = match cache.map(|z| z.dereference()) {
            None => true,
            Some(z) if z.is_null() => true,
            Some(z) => util::scalar_bytes(z).is_some_and(|c| c.eq_ignore_ascii_case(b"user")),
        };
        let mut st = IterState::new(search, format, chunk_size, list, 2);
        if !cache_ok && !util::has_exception() {
            warn("APCIterator: the cache type must be 'user' (apcdb has no opcode cache)");
            st = IterState::invalid();
        }
        ApcIterator { st }
    }
);

iterator_class!(
    ApcuIterator,
    "APCUIterator",
    /// APCu 5.1: `new APCUIterator($search = null, $format = APC_ITER_ALL, $chunk_size = 0,
    /// $list = APC_LIST_ACTIVE)`.
    pub fn __construct(
        search: Option<&Zval>,
        format: Option<&Zval>,
        chunk_size: Option<&Zval>,
        list: Option<&Zval>,
    ) -> Self {
        ApcuIterator {
            st: IterState::new(search, format, chunk_size, list, 1),
        }
    }
);

/// The keys an iterator object passed to `apc_delete()` selects: `None` if it is not one of our
/// iterator classes.
pub fn keys_of(obj: &mut ZendObject, _mode: Mode) -> Option<Result<Vec<Vec<u8>>, ()>> {
    if let Some(it) = ZendClassObject::<ApcIterator>::from_zend_obj_mut(obj) {
        return Some(Ok(it.st.keys()));
    }
    if APCU_ITERATOR_REGISTERED.load(Ordering::Relaxed) {
        if let Some(it) = ZendClassObject::<ApcuIterator>::from_zend_obj_mut(obj) {
            return Some(Ok(it.st.keys()));
        }
    }
    None
}
