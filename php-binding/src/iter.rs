//! `APCIterator` (APC 3.1 constructor) and `APCUIterator` (APCu 5.1 constructor, drop-in mode).
//!
//! The iterator takes a snapshot of the keys and metadata of the live entries whose key matches
//! the search (a PCRE pattern, run through PHP's own `preg_grep`, or a list of keys) at the first
//! use after construction or `rewind()`. Values are read a page at a time as iteration reaches
//! them, and decoded only when `current()` asks for them (APC_ITER_VALUE).
//!
//! Decoding and warnings run user code, which may call this iterator again (a `__wakeup` that
//! rewinds it, or even runs `__construct()` on it, which replaces the whole state in place). So
//! the methods take `&self`, keep the cursor in a `RefCell` borrowed only between PHP calls, copy
//! what they need before a PHP call, and check after one whether the state they were working on
//! is still the current one.

use crate::backend::{BackendError, Redis, RemoteEntry};
use crate::funcs::{decode_or_warn, report, report_backend, Mode};
use crate::handle;
use crate::util::{self, bailout_safe, bool_zval, bytes_zval, info_array, warn};
use apc::filter::{self, Search, APC_ITER_ALL, APC_ITER_VALUE, APC_LIST_ACTIVE, DEFAULT_CHUNK};
use apc::info::{self, EntryInfo, Slot};
use apcdb::EntryMeta;
use ext_php_rs::class::RegisteredClass;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendClassObject, ZendHashTable, ZendObject, Zval};
use ext_php_rs::zend::ce;
use ext_php_rs::zend::ClassEntry;
use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use apc::filter::CONSTANTS;

/// Set when APCUIterator was registered (drop-in mode without APCu).
pub static APCU_ITERATOR_REGISTERED: AtomicBool = AtomicBool::new(false);

/// A page stops growing once its values reach this many bytes (it always holds one entry).
const PAGE_BYTES: u64 = 1 << 20;
/// How often a method starts over when user code it ran rewound or rebuilt the iterator.
const REENTRY_RETRIES: usize = 4;
/// Keys handed to one `preg_grep()` call while filtering.
const GREP_BATCH: usize = 4096;

/// A matching entry as the snapshot saw it: key and metadata, no value.
type Listed = (Rc<[u8]>, EntryMeta);

/// One entry of the current page. Cheap to clone, so a method can take its own copy before it
/// runs PHP code.
#[derive(Clone)]
struct Item {
    key: Rc<[u8]>,
    meta: EntryMeta,
    /// On a Redis server: what the info fields say, as read (no write time, no hits there).
    remote: Option<EntryInfo>,
    /// The encoded value, when the format asks for it.
    value: Option<Rc<Vec<u8>>>,
}

/// Where a streaming iteration over a Redis server is (SPEC §10, "Redis backend").
#[derive(Clone, Default)]
struct Remote {
    /// The `SCAN` cursor of the next step.
    scan: u64,
    /// No more keys to list (the scan, or the list of keys, is through).
    done: bool,
    /// With a list of keys: those not looked up yet (no scan then).
    keys: Option<Vec<Vec<u8>>>,
    /// Keys listed and selected but not read yet: a page stops at about PAGE_BYTES of values.
    pending: std::collections::VecDeque<Vec<u8>>,
}

impl Remote {
    fn finished(&self) -> bool {
        self.done && self.pending.is_empty()
    }
}

/// Keys read per round trip while a page with values fills up (so a page overshoots PAGE_BYTES
/// by at most this many values).
const VALUE_BATCH: usize = 8;

/// Tells cursors apart: a method that ran PHP code checks that the cursor it worked on is
/// still the iterator's (user code may have rewound or rebuilt it meanwhile).
static CURSORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Where iteration is. Borrowed only briefly and never while PHP code runs, so that user code
/// run by `current()` (a `__wakeup`) or by a warning may call any method of the same iterator.
struct Cursor {
    id: u64,
    remote: Remote,
    /// The matching entries in write order (keys and metadata only), taken at first use.
    snap: Option<Rc<Vec<Listed>>>,
    /// Index in `snap` of the first entry not yet paged in.
    next: usize,
    page: Vec<Item>,
    /// Index in `page`.
    pos: usize,
}

impl Default for Cursor {
    fn default() -> Self {
        Cursor {
            id: CURSORS.fetch_add(1, Ordering::Relaxed),
            remote: Remote::default(),
            snap: None,
            next: 0,
            page: Vec::new(),
            pos: 0,
        }
    }
}

/// What the info fields say about an entry of a Redis server: no write time is kept there
/// (`mtime`, `creation_time` 0), `ttl` is the TTL that would give the expiry if written now (at
/// least 1), the access time is the server's last read or write, hits are not counted.
pub fn remote_info(e: &RemoteEntry) -> EntryInfo {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let ttl = if e.expires_at_ms == 0 {
        0
    } else {
        // Written with TTL t during second s, an entry expires at the start of second s + t + 1
        // (apc::ttl): this gives back t during the second of the write, then counts down.
        (e.expires_at_ms
            .saturating_sub(now)
            .div_ceil(1000)
            .saturating_sub(1))
        .max(1) as i64
    };
    EntryInfo {
        mtime: 0,
        ttl,
        mem_size: info::mem_size(e.key.len(), e.value_len) as i64,
        hits: 0,
        atime: e.access_s as i64,
    }
}

/// The next page of a streaming iteration over a Redis server, from `at`: the entries (values
/// too with `values`), where the iteration is after them, and an error to report. A page may be
/// empty before the end (a `SCAN` step found none of this pool's keys). Runs PHP code
/// (`preg_grep`).
fn remote_page(
    r: &Redis,
    search: &Search,
    list: i64,
    mut at: Remote,
    chunk: usize,
    values: bool,
) -> (Remote, Vec<Item>, Option<BackendError>) {
    if !search.scans(list) {
        at.done = true;
        return (at, Vec::new(), None);
    }
    if at.pending.is_empty() && !at.done {
        let keys = match next_keys(r, search, &mut at, chunk) {
            Ok(k) => k,
            Err(e) => {
                at.done = true;
                return (at, Vec::new(), Some(e));
            }
        };
        at.pending.extend(keys);
    }
    let mut page = Vec::new();
    let mut bytes = 0u64;
    while !at.pending.is_empty() && (page.is_empty() || bytes < PAGE_BYTES) {
        let n = if values {
            VALUE_BATCH.min(at.pending.len())
        } else {
            at.pending.len()
        };
        let batch: Vec<Vec<u8>> = at.pending.drain(..n).collect();
        match r.describe(&batch, values) {
            Ok(entries) => {
                for e in entries {
                    bytes += e.value_len;
                    page.push(Item {
                        remote: Some(remote_info(&e)),
                        meta: EntryMeta {
                            value_len: e.value_len,
                            expires_at_ms: e.expires_at_ms,
                            modified_at_ms: 0,
                            version: 0,
                        },
                        value: e.value.map(Rc::new),
                        key: Rc::from(e.key),
                    });
                }
            }
            Err(e) => {
                at.done = true;
                at.pending.clear();
                return (at, page, Some(e));
            }
        }
    }
    (at, page, None)
}

/// The next keys `search` selects: a `SCAN` step (or the next `chunk` of a key list), filtered
/// by the pattern. Runs PHP code (`preg_grep`).
fn next_keys(
    r: &Redis,
    search: &Search,
    at: &mut Remote,
    chunk: usize,
) -> Result<Vec<Vec<u8>>, BackendError> {
    let keys = match search {
        Search::Keys(set) => {
            let left = at.keys.get_or_insert_with(|| {
                let mut k: Vec<_> = set.iter().cloned().collect();
                k.sort_unstable_by(|a, b| b.cmp(a)); // taken from the end: ascending order
                k
            });
            let n = left.len().min(chunk);
            let mut batch = left.split_off(left.len() - n);
            batch.reverse();
            at.done = left.is_empty();
            batch
        }
        _ => {
            let (next, keys) = r.scan_step(at.scan, chunk)?;
            at.scan = next;
            at.done = next == 0;
            keys
        }
    };
    Ok(match search.pattern() {
        Some(p) if !keys.is_empty() => bailout_safe(keys, |keys| {
            let subjects: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
            match preg_grep(p, &subjects) {
                Some(hit) => filter::keep_matched(keys, &hit),
                None => Vec::new(),
            }
        }),
        _ => keys,
    })
}

/// Every entry `search` selects on a Redis server, a page at a time, without values: `f` sees
/// each page. Stops at the first error (reported). For the totals and `apc_delete()`.
fn remote_each(r: &Redis, search: &Search, list: i64, f: &mut dyn FnMut(Vec<Item>)) {
    let mut at = Remote::default();
    loop {
        let (next, page, err) = remote_page(r, search, list, at, 1000, false);
        if let Some(e) = err {
            report_backend(&e);
            return;
        }
        f(page);
        if next.finished() {
            return;
        }
        at = next;
    }
}

pub struct IterState {
    /// False when no constructor of ours ran on the object (a subclass whose constructor skips
    /// the parent's) or ours rejected its arguments: every method then throws, as in APCu.
    ready: bool,
    search: Rc<Search>,
    format: i64,
    list: i64,
    chunk: usize,
    cur: RefCell<Cursor>,
}

/// Coerce an optional int argument with PHP's rules; on failure the TypeError is pending.
fn long_arg(z: Option<&Zval>, argnum: u32, default: i64) -> Result<i64, ()> {
    let Some(z) = z else { return Ok(default) };
    // The engine's coercion takes a mutable zval; give it a copy of the borrowed argument.
    util::coerce_long(&mut z.dereference().shallow_clone(), argnum)
}

/// The live entries `search` selects from the request's store, keys and metadata only, in write
/// order. Runs PHP code (`preg_grep`, warnings), so it takes its inputs by value, not `&self`.
fn matching(search: &Search, list: i64) -> Vec<Listed> {
    if !search.scans(list) {
        return Vec::new();
    }
    let Some(store) = handle::store() else {
        return Vec::new();
    };
    // Only keys and metadata are copied: the values stay in the store until a page needs them.
    // The scan streams, so only the list kept here grows with the store.
    let mut all: Vec<Listed> = Vec::new();
    let mut failed = None;
    for r in store.scan_with(b"", |k, _| search.visit(k)) {
        match r {
            Ok(e) => all.push((Rc::from(e.key), e.meta)),
            Err(e) => failed = Some(e),
        }
    }
    if let Some(e) = failed {
        // Reported once the scan is over: a warning runs the user's error handler.
        report(&e);
        return Vec::new();
    }
    filter::sort_in_write_order(&mut all);
    let Some(p) = search.pattern() else {
        return all;
    };
    bailout_safe(all, |all| {
        let mut out = Vec::new();
        for batch in all.chunks(GREP_BATCH) {
            if util::has_oom() {
                return Vec::new(); // PHP raises its memory_limit error when we return
            }
            let keys: Vec<&[u8]> = batch.iter().map(|(k, _)| &k[..]).collect();
            let Some(hit) = preg_grep(p, &keys) else {
                return Vec::new();
            };
            out.extend(filter::keep_matched(batch, &hit));
        }
        out
    })
}

impl IterState {
    /// The state of an object no constructor of ours initialised.
    fn uninitialized() -> Self {
        IterState {
            ready: false,
            ..Self::invalid()
        }
    }

    fn invalid() -> Self {
        IterState {
            ready: true,
            search: Rc::new(Search::Nothing),
            format: 0,
            list: APC_LIST_ACTIVE,
            chunk: DEFAULT_CHUNK,
            cur: RefCell::default(),
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
        let Ok(chunk) = long_arg(chunk, search_pos + 2, 0) else {
            return Self::invalid();
        };
        let Ok(list) = long_arg(list, search_pos + 3, APC_LIST_ACTIVE) else {
            return Self::invalid();
        };
        if !filter::list_is_valid(list) {
            // APCu leaves the object uninitialised here, so later calls throw.
            warn("APCIterator list is invalid");
            return Self::uninitialized();
        }
        // Copied out of the argument first: compiling the pattern below runs PHP code.
        let pattern = match search.map(|z| z.dereference()) {
            Some(z) if z.is_array() => {
                let mut keys = HashSet::new();
                for v in z.array().unwrap().values() {
                    if let Some(s) = v.dereference().zend_str() {
                        keys.insert(s.as_bytes().to_vec());
                    }
                }
                Err(Search::Keys(keys))
            }
            Some(z) if !z.is_null() => Ok(util::scalar_bytes(z)),
            _ => Ok(None),
        };
        let search = match pattern {
            Err(keys) => keys,
            Ok(None) => Search::All,
            Ok(Some(p)) => {
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
        };
        IterState {
            ready: true,
            search: Rc::new(search),
            format,
            list,
            chunk: filter::page_entries(chunk),
            cur: RefCell::default(),
        }
    }

    /// The snapshot, taken now if there is none. No borrow is held while it is taken (that runs
    /// PHP code); if a re-entrant call installed one meanwhile, that one is kept, and if a
    /// re-entrant `__construct()` changed the search, the result is for the old one and is
    /// taken again.
    fn snapshot(&self) -> Rc<Vec<Listed>> {
        for _ in 0..REENTRY_RETRIES {
            if let Some(s) = self.cur.borrow().snap.clone() {
                return s;
            }
            let search = self.search.clone();
            let fresh = Rc::new(matching(&search, self.list));
            if !Rc::ptr_eq(&search, &self.search) {
                continue;
            }
            let mut c = self.cur.borrow_mut();
            return match &c.snap {
                Some(s) => s.clone(),
                None => {
                    *c = Cursor {
                        snap: Some(fresh.clone()),
                        ..Cursor::default()
                    };
                    fresh
                }
            };
        }
        Rc::new(Vec::new())
    }

    /// A copy of the entry under the cursor, reading the next page of values when the current
    /// one is used up; `None` past the end.
    fn item(&self) -> Option<Item> {
        if let Some(r) = handle::redis() {
            return self.remote_item(&r);
        }
        for _ in 0..REENTRY_RETRIES {
            let snap = self.snapshot();
            let want_value = self.format & APC_ITER_VALUE != 0;
            // May warn (run PHP code): asked before the cursor is borrowed.
            let store = if want_value { handle::store() } else { None };
            let mut errors = Vec::new();
            let mut c = self.cur.borrow_mut();
            if !c.snap.as_ref().is_some_and(|s| Rc::ptr_eq(s, &snap)) {
                continue; // user code rewound or rebuilt the iterator meanwhile: start again
            }
            let item = loop {
                if let Some(it) = c.page.get(c.pos) {
                    break Some(it.clone());
                }
                if c.next >= snap.len() {
                    break None;
                }
                if want_value && store.is_none() {
                    break None;
                }
                // The next page: up to `chunk` entries and about PAGE_BYTES of values. With
                // values, each entry is read as it is now; one deleted since the snapshot is
                // skipped.
                let mut page = Vec::new();
                let mut bytes = 0u64;
                let mut i = c.next;
                while i < snap.len() && page.len() < self.chunk && bytes < PAGE_BYTES {
                    let (key, meta) = &snap[i];
                    i += 1;
                    let Some(store) = &store else {
                        page.push(Item {
                            key: key.clone(),
                            meta: *meta,
                            remote: None,
                            value: None,
                        });
                        continue;
                    };
                    match store.peek_entry(key) {
                        Ok(Some(e)) => {
                            bytes += e.value.len() as u64;
                            page.push(Item {
                                key: key.clone(),
                                remote: None,
                                meta: info::meta_of(&e),
                                value: Some(Rc::new(e.value)),
                            });
                        }
                        Ok(None) => {}
                        Err(e) => errors.push(e),
                    }
                }
                c.next = i;
                c.page = page;
                c.pos = 0;
            };
            drop(c);
            for e in &errors {
                report(e);
            }
            return item;
        }
        None
    }

    /// [`IterState::item`] on a Redis server: pages are read as iteration reaches them, by
    /// `SCAN` steps of `$chunk_size` (no snapshot: memory stays bounded by a page).
    fn remote_item(&self, r: &Redis) -> Option<Item> {
        let want_value = self.format & APC_ITER_VALUE != 0;
        let mut restarts = 0;
        loop {
            let (id, at) = {
                let c = self.cur.borrow();
                if let Some(it) = c.page.get(c.pos) {
                    return Some(it.clone());
                }
                if c.remote.finished() {
                    return None;
                }
                (c.id, c.remote.clone())
            };
            let search = self.search.clone();
            let (at, page, err) = remote_page(r, &search, self.list, at, self.chunk, want_value);
            let mut c = self.cur.borrow_mut();
            if c.id != id || !Rc::ptr_eq(&search, &self.search) {
                // User code rewound or rebuilt the iterator meanwhile: start from its state.
                restarts += 1;
                if restarts > REENTRY_RETRIES {
                    return None;
                }
                continue;
            }
            c.remote = at;
            c.page = page;
            c.pos = 0;
            drop(c);
            if let Some(e) = err {
                report_backend(&e);
            }
        }
    }

    pub fn keys(&self) -> Vec<Vec<u8>> {
        if let Some(r) = handle::redis() {
            let mut out = Vec::new();
            remote_each(&r, &self.search.clone(), self.list, &mut |page| {
                out.extend(page.into_iter().map(|it| it.key.to_vec()))
            });
            return out;
        }
        matching(&self.search.clone(), self.list)
            .into_iter()
            .map(|(k, _)| k.to_vec())
            .collect()
    }

    fn rewind(&self) {
        *self.cur.borrow_mut() = Cursor::default();
        if handle::redis().is_none() {
            self.snapshot();
        }
    }

    fn valid(&self) -> bool {
        self.item().is_some()
    }

    fn next(&self) {
        // Page in the current entry first, so that the step is counted from it.
        self.item();
        self.cur.borrow_mut().pos += 1;
    }

    fn key(&self) -> PhpResult<Zval> {
        match self.item() {
            Some(it) => Ok(bytes_zval(&it.key)),
            None => Err(invalid_position("key")),
        }
    }

    fn current(&self) -> PhpResult<Zval> {
        // Everything needed is copied out before the value is decoded: unserialize() may run a
        // __wakeup that rewinds or reconstructs this very iterator. `self` is not used after.
        let Some(it) = self.item() else {
            return Err(invalid_position("current"));
        };
        let f = self.format;
        let wants_access = f & (apc::filter::APC_ITER_NUM_HITS | apc::filter::APC_ITER_ATIME) != 0;
        let access = if wants_access && it.remote.is_none() {
            handle::store().map(|s| s.access(&it.key))
        } else {
            None
        };
        bailout_safe(it, |it| {
            let mut info = EntryInfo::new(it.key.len(), &it.meta);
            if let Some(a) = access {
                info = info.with_access(a);
            }
            if let Some(r) = it.remote {
                info = r;
            }
            let fields = info.iterator_fields(f);
            let h = info_array(fields, &mut |slot| match slot {
                Slot::Key => bytes_zval(&it.key),
                Slot::Value => it
                    .value
                    .as_ref()
                    .and_then(|v| decode_or_warn(v))
                    .unwrap_or_else(|| bool_zval(false)),
                Slot::EntryList => Zval::new(),
            });
            let mut z = Zval::new();
            z.set_hashtable(h);
            Ok(z)
        })
    }

    fn totals(&self) -> info::Totals {
        if let Some(r) = handle::redis() {
            let mut metas = Vec::new();
            let mut t = info::Totals::default();
            remote_each(&r, &self.search.clone(), self.list, &mut |page| {
                metas.clear();
                metas.extend(page.iter().map(|it| (it.key.len(), it.meta)));
                let p = info::totals(metas.iter().map(|(l, m)| (*l, m)));
                t.size += p.size;
                t.count += p.count;
            });
            return t;
        }
        let items = matching(&self.search.clone(), self.list);
        info::totals(items.iter().map(|(k, e)| (k.len(), e)))
    }
}

/// APCu's Error for `key()`/`current()` past the end (or before a valid position).
fn invalid_position(method: &str) -> PhpException {
    PhpException::new(
        format!("Cannot call {method}() on invalid iterator"),
        0,
        ce::error(),
    )
}

/// APCu's Error for a method called on an object our constructor did not initialise.
fn uninitialized_error(class: &str) -> PhpException {
    PhpException::new(
        format!("Trying to use uninitialized {class}"),
        0,
        ce::error(),
    )
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

/// A class whose objects start in a state that its methods recognise as "not constructed".
trait Uninit: RegisteredClass {
    fn uninit() -> Self;
}

/// `create_object` for our iterator classes and every subclass of them (PHP copies a parent's
/// `create_object` into a subclass when it is declared): the object holds [`Uninit::uninit`]
/// until our constructor replaces it, so a subclass whose constructor skips the parent's gets
/// APCu's "Trying to use uninitialized ..." Error from every method. ext-php-rs would leave the
/// Rust state absent instead, and answer every call with its own generic exception.
extern "C" fn create_object<T: Uninit>(ce: *mut ClassEntry) -> *mut ZendObject {
    // SAFETY: the engine passes the live class entry of the object being created (ours or a
    // subclass's); it lives as long as the class. The object is initialised right away, so it
    // is never used uninitialised, and ownership passes to the engine through the raw pointer.
    unsafe {
        let mut obj = ZendClassObject::<T>::new_uninit(ce.as_ref());
        let _ = obj.initialize(T::uninit());
        let raw = obj.into_raw();
        (*raw).get_mut_zend_obj()
    }
}

fn install_create_object<T: Uninit>() {
    let meta = T::get_metadata();
    if !meta.has_ce() {
        return;
    }
    let ce = std::ptr::from_ref(meta.ce()).cast_mut();
    // SAFETY: the class entry is registered and lives until module shutdown; this runs on PHP's
    // thread in request startup, when no class is being declared or instantiated.
    unsafe { (*ce).__bindgen_anon_2.create_object = Some(create_object::<T>) };
}

/// Puts [`create_object`] on the registered iterator classes, once per process. Called at
/// request startup: ext-php-rs registers `APCIterator` only after our module startup returns, and
/// scripts (opcache preloading included) declare subclasses only after the first request started.
pub fn install_object_creators() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        install_create_object::<ApcIterator>();
        if APCU_ITERATOR_REGISTERED.load(Ordering::Relaxed) {
            install_create_object::<ApcuIterator>();
        }
    });
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

        impl Uninit for $ty {
            fn uninit() -> Self {
                $ty {
                    st: IterState::uninitialized(),
                }
            }
        }

        impl $ty {
            /// The state, or APCu's Error if no constructor of ours initialised it.
            fn st(&self) -> PhpResult<&IterState> {
                if self.st.ready {
                    Ok(&self.st)
                } else {
                    Err(uninitialized_error($php_name))
                }
            }
        }

        // `&self` methods: PHP code run inside one may call another on the same object (see the
        // module comment), so none of them may hold a `&mut` to the state.
        #[php_impl]
        impl $ty {
            $($ctor)*
            pub fn rewind(&self) -> PhpResult<()> {
                self.st()?.rewind();
                Ok(())
            }
            pub fn valid(&self) -> PhpResult<bool> {
                Ok(self.st()?.valid())
            }
            pub fn next(&self) -> PhpResult<()> {
                self.st()?.next();
                Ok(())
            }
            pub fn key(&self) -> PhpResult<Zval> {
                self.st()?.key()
            }
            pub fn current(&self) -> PhpResult<Zval> {
                self.st()?.current()
            }
            pub fn get_total_hits(&self) -> PhpResult<i64> {
                Ok(self.st()?.totals().hits)
            }
            pub fn get_total_size(&self) -> PhpResult<i64> {
                Ok(self.st()?.totals().size)
            }
            pub fn get_total_count(&self) -> PhpResult<i64> {
                Ok(self.st()?.totals().count)
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
/// iterator classes; `Err` after throwing APCu's Error for an uninitialised one.
pub fn keys_of(obj: &ZendObject, _mode: Mode) -> Option<Result<Vec<Vec<u8>>, ()>> {
    let keys = |r: PhpResult<&IterState>| match r {
        Ok(st) => Ok(st.keys()),
        Err(e) => {
            e.throw();
            Err(())
        }
    };
    if let Some(it) = ZendClassObject::<ApcIterator>::from_zend_obj(obj) {
        return Some(keys(it.st()));
    }
    if APCU_ITERATOR_REGISTERED.load(Ordering::Relaxed) {
        if let Some(it) = ZendClassObject::<ApcuIterator>::from_zend_obj(obj) {
            return Some(keys(it.st()));
        }
    }
    None
}
