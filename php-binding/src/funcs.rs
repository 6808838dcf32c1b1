//! The user-cache functions, once for `apc_*` (APC 3.1 / apcu_bc) and once for `apcu_*` (APCu 5.1).
//! Each PHP function is a thin `extern "C"` handler that runs its body under [`guard`]: a Rust panic
//! becomes a warning and `false`, a PHP bailout (fatal error, `exit()` in a callback) is re-raised
//! only after every Rust frame and store lock below it is gone.

use crate::backend::{Backend, BackendError};
use crate::codec::{self, EncodeError};
use crate::handle;
use crate::iter;
use crate::util::{
    self, bailout_safe, bool_zval, bytes_zval, expiry_for_ttl, info_array, scalar_bytes,
    set_ref_bool, warn, write_times, Args,
};
use apc::counter::{self, Direction, OnMissing};
use apc::info::{self, EntryInfo, Slot};
use apcdb::{Error as StoreError, Store, Visit};
use ext_php_rs::args::Arg;
use ext_php_rs::builders::FunctionBuilder;
use ext_php_rs::flags::DataType;
use ext_php_rs::types::{ArrayKey, ZendCallable, ZendHashTable, Zval};
use ext_php_rs::zend::{try_catch, CatchError, ExecuteData};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// `apc_*`: APC 3.1 semantics (apcu_bc): `apc_inc` on a missing key fails.
    Apc,
    /// `apcu_*`: APCu 5.1 semantics: `apcu_inc` creates a missing key.
    Apcu,
}

impl Mode {
    fn cache_word(self) -> &'static str {
        match self {
            Mode::Apc => "apc",
            Mode::Apcu => "apcu",
        }
    }
}

/// Runs a handler body: panics become a warning and `false`; a bailout is re-raised after the
/// body's frames are gone.
pub fn guard(rv: &mut Zval, f: impl FnOnce(&mut Zval)) {
    match try_catch(AssertUnwindSafe(|| f(&mut *rv))) {
        Ok(()) => {}
        // SAFETY: the body's frames are gone (try_catch returned) and this frame owns nothing
        // that needs dropping; the engine's own zend_try around the call receives the jump.
        Err(CatchError::Bailout) => unsafe { ext_php_rs::zend::bailout() },
        Err(CatchError::Panic(msg)) => {
            rv.set_bool(false);
            warn(&format!(
                "apcdb: internal error ({msg}); the call returned false"
            ));
        }
        Err(_) => {
            rv.set_bool(false);
        }
    }
}

/// Report a store error as a warning. A full store says so; nothing else was changed.
pub fn report(e: &StoreError) {
    handle::error_reported();
    if matches!(e, StoreError::Reentrant) {
        warn("apcdb: refused: this process already holds the store's write lock (a call from inside a store callback)");
    } else if e.is_full() && handle::config().when_full == apcdb::WhenFull::Evict {
        warn(&format!(
            "apcdb: unable to store the value: {e} (even after evicting other entries)"
        ));
    } else if e.is_full() {
        warn(&format!(
            "apcdb: unable to store the value: {e} (no other entry was removed)"
        ));
    } else {
        warn(&format!("apcdb: {e}"));
    }
}

/// Decode a stored value; on failure warn (unless the decoder left an exception) and give `None`.
pub fn decode_or_warn(bytes: &[u8]) -> Option<Zval> {
    match codec::decode(bytes) {
        Ok(z) => Some(z),
        Err(m) => {
            if !util::has_exception() {
                warn(&format!("apcdb: cannot decode the value of this key: {m}"));
            }
            None
        }
    }
}

/// The request's store, or `None` after setting the return value to `false` ([`handle::store`]
/// reports why, once per request).
fn open_store(rv: &mut Zval) -> Option<Arc<Store>> {
    if let Some((s, _)) = handle::ready_store() {
        return Some(s);
    }
    let store = handle::store();
    if store.is_none() {
        rv.set_bool(false);
    }
    store
}

/// Report a backend error: the local store's as [`report`], a Redis server's failure once per
/// request (later calls of the request get [`BackendError::Down`] and say nothing more).
pub fn report_backend(e: &BackendError) {
    match e {
        BackendError::Store(e) => report(e),
        BackendError::Remote(m) => warn(m),
        BackendError::Down => {}
    }
}

/// The request's backend (a Redis server if `apcdb.file` names one, else the store), or `None`
/// after setting the return value to `false`.
fn open_backend(rv: &mut Zval) -> Option<Arc<dyn Backend>> {
    if let Some((s, _)) = handle::ready_store() {
        return Some(s);
    }
    if let Some(r) = handle::redis() {
        return Some(Arc::new(r));
    }
    open_store(rv).map(|s| s as Arc<dyn Backend>)
}

/// The value of a backend call, or `None` after reporting its error and returning `false`.
fn be_or_false<T>(rv: &mut Zval, r: Result<T, BackendError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            report_backend(&e);
            rv.set_bool(false);
            None
        }
    }
}

/// Return a backend call's bool, or `false` after reporting its error.
fn set_be_bool(rv: &mut Zval, r: Result<bool, BackendError>) {
    if let Some(b) = be_or_false(rv, r) {
        rv.set_bool(b);
    }
}

/// The value of a store call, or `None` after reporting its error and returning `false`.
fn ok_or_false<T>(rv: &mut Zval, r: Result<T, StoreError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            report(&e);
            rv.set_bool(false);
            None
        }
    }
}

/// Insert `v` under the binary-safe string key `key` (numeric strings become int keys, as PHP does).
fn insert_bytes_key(ht: &mut ZendHashTable, key: &[u8], v: Zval) {
    let kz = bytes_zval(key);
    let s = kz.zend_str().unwrap();
    let k = match std::str::from_utf8(key) {
        Ok(s) => ArrayKey::from(s.to_string()),
        Err(_) => ArrayKey::ZendString(s),
    };
    let _ = ht.insert(k, v);
}

/// The string elements of a PHP array of keys (references resolved), copied into Rust memory;
/// `None` for an element that is not a string. Taken before anything can run PHP code (an
/// `unserialize()`, a warning's error handler): such code could reassign a key that is a
/// reference and free the string a borrow would still point at.
fn key_list(ht: &ZendHashTable) -> Vec<Option<Vec<u8>>> {
    ht.values()
        .map(|v| v.dereference().zend_str().map(|s| s.as_bytes().to_vec()))
        .collect()
}

/// A key of an `apc_store(array)` argument, owned, to name it again in the result.
enum OwnedKey {
    Long(i64),
    Bytes(Vec<u8>),
}

/// Store one value; `Ok(stored)`, or `Err(())` when an exception is pending.
fn put_one(
    store: &dyn Backend,
    mode: Mode,
    key: &[u8],
    val: &Zval,
    ttl: i64,
    exclusive: bool,
) -> Result<bool, ()> {
    // The request's serializer matters only for arrays and objects: a scalar store skips the
    // lookup of the request state.
    let d = val.dereference();
    let ser = if d.is_array() || d.is_object() {
        handle::serializer()
    } else {
        apc::ini::Serializer::Php
    };
    let bytes = match codec::encode(val, ser) {
        Ok(b) => b,
        Err(EncodeError::Resource) => {
            warn(&format!(
                "Cannot store resources in {} cache",
                mode.cache_word()
            ));
            return Ok(false);
        }
        Err(EncodeError::Exception) => return Err(()),
        Err(EncodeError::Other(m)) => {
            warn(&format!("apcdb: {m}"));
            return Ok(false);
        }
    };
    let (exp, at) = write_times(ttl);
    match store.put(key, &bytes, exp, at, exclusive) {
        Ok(b) => Ok(b),
        Err(e) => {
            report_backend(&e);
            Ok(false)
        }
    }
}

fn store_impl(ex: &mut ExecuteData, rv: &mut Zval, mode: Mode, exclusive: bool) {
    let mut a = Args::new(ex);
    if !a.check_count(1, 3) {
        return;
    }
    let Ok(ttl) = a.long(2) else { return };
    let ttl = ttl.unwrap_or(0);
    let nargs = a.count();
    let key = a.get(0).unwrap();
    if let Some(ht) = key.array() {
        // Own every key and value before serialize() runs user code (__serialize, __sleep) that
        // could change a referenced element: each value keeps its own reference count.
        let pairs: Vec<(OwnedKey, Zval)> = ht
            .iter()
            .map(|(k, v)| {
                let k = match k {
                    ArrayKey::Long(l) => OwnedKey::Long(l),
                    ArrayKey::String(s) => OwnedKey::Bytes(s.into_bytes()),
                    ArrayKey::Str(s) => OwnedKey::Bytes(s.as_bytes().to_vec()),
                    ArrayKey::ZendString(s) => OwnedKey::Bytes(s.as_bytes().to_vec()),
                };
                (k, v.dereference().shallow_clone())
            })
            .collect();
        let Some(store) = open_backend(rv) else {
            return;
        };
        let mut failed = ZendHashTable::new();
        for (k, v) in pairs {
            let kb = match &k {
                OwnedKey::Long(l) => l.to_string().into_bytes(),
                OwnedKey::Bytes(b) => b.clone(),
            };
            match put_one(&*store, mode, &kb, &v, ttl, exclusive) {
                Ok(true) => {}
                Ok(false) => match k {
                    OwnedKey::Long(l) => {
                        let _ = failed.insert(l, -1i64);
                    }
                    OwnedKey::Bytes(b) => {
                        let mut m = Zval::new();
                        m.set_long(-1);
                        insert_bytes_key(&mut failed, &b, m);
                    }
                },
                Err(()) => {
                    rv.set_bool(false);
                    return;
                }
            }
        }
        rv.set_hashtable(failed);
    } else if key.zend_str().is_some() {
        let kb = key.shallow_clone();
        let kb = kb.zend_str().map_or(&[][..], |s| s.as_bytes());
        if nargs < 2 {
            rv.set_bool(false);
            return;
        }
        let Some(store) = open_backend(rv) else {
            return;
        };
        // An owned copy (one more reference): serialize() may run code that changes the argument.
        let v = a.get(1).unwrap().shallow_clone();
        match put_one(&*store, mode, kb, &v, ttl, exclusive) {
            Ok(b) => rv.set_bool(b),
            Err(()) => rv.set_bool(false),
        }
    } else {
        warn("apc_store expects key parameter to be a string or an array of key/value pairs.");
        rv.set_bool(false);
    }
}

/// APCu's `apc.preload_path`: into an empty store, each `<key>.data` file of `dir` (in name
/// order), whose content is a value in PHP's `serialize()` format, is added under `<key>` with no
/// TTL. A file that cannot be read or unserialized is skipped with a warning. `false` when the
/// store could not be asked whether it is empty (reported), so nothing was tried.
pub fn preload(store: &dyn Backend, dir: &str) -> bool {
    match store.is_empty() {
        Ok(true) => {}
        Ok(false) => return true,
        Err(e) => {
            report_backend(&e);
            return false;
        }
    }
    let mut names: Vec<std::ffi::OsString> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect(),
        Err(e) => {
            warn(&format!(
                "apcdb: apc.preload_path: cannot read the directory \"{dir}\": {e}"
            ));
            return true;
        }
    };
    names.sort();
    for name in names {
        use std::os::unix::ffi::OsStrExt;
        let Some(key) = apc::ini::preload_key(name.as_bytes()) else {
            continue;
        };
        if key.is_empty() {
            continue;
        }
        let path = std::path::Path::new(dir).join(&name);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                warn(&format!(
                    "apcdb: apc.preload_path: cannot read {}: {e}",
                    path.display()
                ));
                continue;
            }
        };
        let mut tagged = Vec::with_capacity(data.len() + 1);
        tagged.push(apc::value::TAG_SERIALIZED);
        tagged.extend_from_slice(&data);
        // unserialize() answers false for data it cannot read (with its own notice).
        let value = match codec::decode(&tagged) {
            Ok(v) if !(v.is_false() && data.trim_ascii() != b"b:0;") => v,
            _ => {
                if util::has_exception() {
                    return true;
                }
                warn(&format!(
                    "apcdb: apc.preload_path: {} is not a serialized PHP value; skipped",
                    path.display()
                ));
                continue;
            }
        };
        if put_one(store, Mode::Apcu, key, &value, 0, true).is_err() {
            return true; // an exception is pending
        }
    }
    true
}

thread_local! {
    /// The buffer fetches read values into, kept between calls so that a fetch allocates nothing
    /// on the Rust side.
    static FETCH_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A buffer larger than this is not kept for the next fetch (a long-lived worker that once
/// fetched a big value should not hold its size for good).
const FETCH_BUF_KEEP: usize = 64 << 10;

/// Fetch one key and decode it (outside the store's lock). `None` on a miss or failure.
fn fetch_one(store: &dyn Backend, key: &[u8]) -> Option<Zval> {
    // Strings and scalars are built from the mapped bytes (one copy, into the PHP string);
    // anything that runs user code to decode is copied out first, into the kept buffer, and
    // decoded after the read. The buffer is taken out only then (a scalar fetch does not touch
    // it) and while in use: decoding runs user code (__wakeup) that may fetch again, and that
    // nested fetch then gets an empty buffer of its own.
    // The closure may run more than once (a read overtaken by a writer): a value it built on a
    // discarded run is simply dropped.
    let mut buf: Option<Vec<u8>> = None;
    let mut plain = None;
    let read = store.get_with(key, &mut |v| {
        plain = Some(codec::decode_plain(v).ok_or_else(|| {
            let b = buf.get_or_insert_with(|| FETCH_BUF.take());
            b.clear();
            b.extend_from_slice(v);
        }));
    });
    let r = match read {
        Ok(true) => match plain {
            Some(Ok(z)) => Some(z),
            Some(Err(())) => decode_or_warn(buf.as_deref().unwrap_or_default()),
            None => None,
        },
        Ok(false) => None,
        Err(e) => {
            report_backend(&e);
            None
        }
    };
    if let Some(buf) = buf.filter(|b| b.capacity() <= FETCH_BUF_KEEP) {
        FETCH_BUF.set(buf);
    }
    r
}

/// A key's bytes, kept valid without copying them: a string holds one more reference to the PHP
/// string (so user code run later, which may reassign the variable, cannot free it); other
/// scalars are converted.
enum KeyArg {
    Php(Zval),
    Owned(Vec<u8>),
}

impl KeyArg {
    fn of(z: &Zval) -> Option<KeyArg> {
        if z.zend_str().is_some() {
            return Some(KeyArg::Php(z.shallow_clone()));
        }
        scalar_bytes(z).map(KeyArg::Owned)
    }

    fn bytes(&self) -> &[u8] {
        match self {
            KeyArg::Php(z) => z.zend_str().map_or(&[], |s| s.as_bytes()),
            KeyArg::Owned(b) => b,
        }
    }
}

/// The key argument of `apc_fetch`, copied: an array of keys (`None` for a non-string element),
/// or one key (`None` if it cannot be a string).
enum FetchKeys {
    Many(Vec<Option<Vec<u8>>>),
    One(Option<KeyArg>),
}

fn fetch_impl(ex: &mut ExecuteData, rv: &mut Zval, _mode: Mode) {
    let mut a = Args::new(ex);
    if !a.check_count(1, 2) {
        return;
    }
    // The keys are copied (or, for one string key, referenced) first: unserialize() in
    // fetch_one() runs user code (__wakeup, __unserialize, autoloaders) that may reassign a key
    // passed by reference and free it.
    let keys = {
        let key = a.get(0).unwrap();
        match key.array() {
            Some(ht) => FetchKeys::Many(key_list(ht)),
            None => FetchKeys::One(KeyArg::of(key)),
        }
    };
    set_ref_bool(a.raw(1), false);
    let Some(store) = open_backend(rv) else {
        return;
    };
    match keys {
        FetchKeys::Many(list) => {
            let mut out = ZendHashTable::new();
            for k in list {
                match k {
                    Some(kb) => {
                        if let Some(z) = fetch_one(&*store, &kb) {
                            insert_bytes_key(&mut out, &kb, z);
                        }
                        if util::has_exception() || util::has_oom() {
                            break;
                        }
                    }
                    None => warn("apc_fetch() expects a string or array of strings."),
                }
            }
            rv.set_hashtable(out);
            // Read the by-reference argument again: the frame's slot is stable, a borrow is not.
            set_ref_bool(a.raw(1), true);
        }
        FetchKeys::One(None) => {
            warn("apc_fetch() expects a string or array of strings.");
            rv.set_bool(false);
        }
        FetchKeys::One(Some(kb)) => match fetch_one(&*store, kb.bytes()) {
            Some(z) => {
                *rv = z;
                set_ref_bool(a.raw(1), true);
            }
            None => rv.set_bool(false),
        },
    }
}

/// `apc_fetch(string $key [, &$success])` from an open local store; `false` (nothing done) to
/// leave the call to [`fetch_impl`]. A plain value is built from the mapped bytes; anything
/// that needs `unserialize()` (which runs user code) is copied out first and decoded under a
/// bailout guard of its own, the only one of the call.
fn fetch_fast(ex: &mut ExecuteData, rv: &mut Zval) -> bool {
    let mut a = Args::new(ex);
    let n = a.count();
    if n == 2 {
        // A reference held by a typed property needs the engine's checked assignment (and its
        // TypeError at the general path's moments); a plain reference is set directly below.
        match a.raw(1) {
            // SAFETY: a reference zval's `value.ref_` points at its live zend_reference.
            Some(z) if z.is_reference() && unsafe { (*z.value.ref_).sources.ptr.is_null() } => {}
            _ => return false,
        }
    } else if n != 1 {
        return false;
    }
    let key: *const [u8] = match a.get(0).and_then(|z| z.zend_str()) {
        Some(s) => s.as_bytes(),
        None => return false,
    };
    let mut buf: Option<Vec<u8>> = None;
    let mut plain = None;
    let read = handle::with_ready_store(|s| {
        // SAFETY: the argument's string lives in the call frame until the handler returns, and
        // nothing can reassign it meanwhile: no PHP code runs inside this closure.
        let key = unsafe { &*key };
        // Through the `Backend` entry, as `fetch_one`: one compiled copy of the lookup, which
        // measured faster for arrays than a second one specialised for this closure.
        Backend::get_with(s, key, &mut |v| {
            plain = codec::decode_plain(v);
            if plain.is_none() {
                // Taken out while in use: decoding runs user code that may fetch again.
                let b = buf.get_or_insert_with(|| FETCH_BUF.take());
                b.clear();
                b.extend_from_slice(v);
            }
        })
        .map(|hit| hit.then(|| plain.take()))
    });
    let success = |a: &mut Args, v: bool| {
        if let Some(z) = a.raw(1) {
            z.dereference_mut().set_bool(v);
        }
    };
    let found = match read {
        Some(Ok(found)) => found,
        // Not open yet: the general path opens it.
        None => {
            keep_fetch_buf(buf);
            return false;
        }
        // Reported here, as the general path would: a retry there could see another state (a
        // poisoned handle reopened) and say something else.
        Some(Err(e)) => {
            keep_fetch_buf(buf);
            rv.set_bool(false);
            success(&mut a, false);
            report_backend(&e);
            return true;
        }
    };
    match found {
        None => {
            rv.set_bool(false);
            success(&mut a, false);
        }
        Some(Some(z)) => {
            *rv = z;
            success(&mut a, true);
        }
        Some(None) => {
            let b = buf.unwrap_or_default();
            success(&mut a, false);
            let z = match try_catch(AssertUnwindSafe(|| decode_or_warn(&b))) {
                Ok(z) => z,
                Err(CatchError::Bailout) => {
                    drop(b);
                    // SAFETY: this frame owns nothing else that needs dropping (the rest are
                    // borrows and plain values); the engine's zend_try receives the jump.
                    unsafe { ext_php_rs::zend::bailout() }
                }
                Err(e) => panic!("{e}"),
            };
            keep_fetch_buf(Some(b));
            match z {
                Some(z) => {
                    *rv = z;
                    // Read the by-reference argument again: user code may have changed it.
                    set_ref_bool(a.raw(1), true);
                }
                None => rv.set_bool(false),
            }
        }
    }
    true
}

fn keep_fetch_buf(buf: Option<Vec<u8>>) {
    if let Some(buf) = buf.filter(|b| b.capacity() <= FETCH_BUF_KEEP) {
        FETCH_BUF.set(buf);
    }
}

/// `apc_store`/`apc_add(string $key, $value [, int $ttl])` of a scalar or an array of plain
/// values into an open local store; `false` (nothing done) to leave the call to [`store_impl`].
/// Their encoding runs no PHP code, so only the error report (a warning, which runs the user's
/// handler) can.
fn store_fast(ex: &mut ExecuteData, rv: &mut Zval, exclusive: bool) -> bool {
    let mut a = Args::new(ex);
    let n = a.count();
    if !(2..=3).contains(&n) {
        return false;
    }
    let ttl = if n == 3 {
        // Anything but an int takes PHP's coercion (and its deprecation notices) on the way.
        match a.get(2).and_then(|z| z.long()) {
            Some(t) => t,
            None => return false,
        }
    } else {
        0
    };
    let key: *const [u8] = match a.get(0).and_then(|z| z.zend_str()) {
        Some(s) => s.as_bytes(),
        None => return false,
    };
    let value: *const Zval = match a.get(1) {
        Some(v) if !(v.is_object() || v.is_resource()) => v,
        _ => return false,
    };
    let mut small = [0u8; codec::SMALL];
    let r = handle::with_ready_store_and_serializer(|s, ser| {
        // SAFETY: the arguments live in the call frame until the handler returns, and no PHP
        // code runs inside this closure to reassign them.
        let (key, value) = unsafe { (&*key, (*value).dereference()) };
        if let Some(bytes) = codec::encode_small(value, &mut small) {
            let (exp, at) = write_times(ttl);
            return Some(Backend::put(s, key, bytes, exp, at, exclusive));
        }
        let bytes = if value.is_array() {
            // Only an array of plain values, in the native form (no user code runs for it);
            // anything the serializer must see goes the general way.
            if ser != apc::ini::Serializer::Php {
                return None;
            }
            codec::encode_native(value)?
        } else {
            codec::encode(value, ser).ok()?
        };
        let (exp, at) = write_times(ttl);
        Some(Backend::put(s, key, &bytes, exp, at, exclusive))
    });
    match r {
        None | Some(None) => return false,
        Some(Some(Ok(b))) => rv.set_bool(b),
        Some(Some(Err(e))) => {
            rv.set_bool(false);
            report_backend(&e);
        }
    }
    true
}

fn exists_impl(ex: &mut ExecuteData, rv: &mut Zval, _mode: Mode) {
    let mut a = Args::new(ex);
    if !a.check_count(1, 1) {
        return;
    }
    let key = a.get(0).unwrap();
    if let Some(ht) = key.array() {
        // Copied first: a warning runs the user's error handler, which may change the keys.
        let list = key_list(ht);
        let Some(store) = open_backend(rv) else {
            return;
        };
        let mut out = ZendHashTable::new();
        for k in list {
            if util::has_oom() {
                break;
            }
            match k {
                Some(kb) => match store.contains(&kb) {
                    Ok(true) => insert_bytes_key(&mut out, &kb, bool_zval(true)),
                    Ok(false) => {}
                    Err(e) => report_backend(&e),
                },
                None => warn("apc_exists() expects a string or array of strings."),
            }
        }
        rv.set_hashtable(out);
    } else if let Some(s) = key.zend_str() {
        let Some(store) = open_backend(rv) else {
            return;
        };
        set_be_bool(rv, store.contains(s.as_bytes()));
    } else {
        rv.set_bool(false);
    }
}

fn delete_impl(ex: &mut ExecuteData, rv: &mut Zval, mode: Mode) {
    let mut a = Args::new(ex);
    if !a.check_count(1, 1) {
        return;
    }
    let key = a.get(0).unwrap();
    if let Some(s) = key.zend_str() {
        let Some(store) = open_backend(rv) else {
            return;
        };
        set_be_bool(rv, store.delete(s.as_bytes()));
    } else if let Some(ht) = key.array() {
        // Owned copies (one more reference each) before a warning can run the error handler.
        let list: Vec<Zval> = ht
            .values()
            .map(|v| v.dereference().shallow_clone())
            .collect();
        let Some(store) = open_backend(rv) else {
            return;
        };
        let mut failed = ZendHashTable::new();
        for v in list {
            let kb = v.zend_str().map(|s| s.as_bytes().to_vec());
            let ok = match kb {
                Some(kb) => match store.delete(&kb) {
                    Ok(b) => b,
                    Err(e) => {
                        report_backend(&e);
                        false
                    }
                },
                None => {
                    warn(
                        "apc_delete() expects a string, array of strings, or APCIterator instance",
                    );
                    false
                }
            };
            if !ok {
                let _ = failed.push(v);
            }
        }
        rv.set_hashtable(failed);
    } else if key.is_object() {
        let obj = key.object().unwrap();
        match iter::keys_of(obj, mode) {
            Some(Ok(keys)) => {
                let Some(store) = open_backend(rv) else {
                    return;
                };
                let mut ok = true;
                for k in keys {
                    if let Err(e) = store.delete(&k) {
                        report_backend(&e);
                        ok = false;
                        if matches!(e, BackendError::Down | BackendError::Remote(_)) {
                            break; // the server is gone for this request (or refuses): stop
                        }
                    }
                }
                rv.set_bool(ok);
            }
            Some(Err(())) => rv.set_bool(false),
            None => {
                let cls = if mode == Mode::Apc {
                    "APCIterator"
                } else {
                    "APCUIterator"
                };
                warn(&format!(
                    "apc_delete object argument must be instance of {cls}."
                ));
                rv.set_bool(false);
            }
        }
    } else {
        warn("apc_delete() expects a string, array of strings, or APCIterator instance");
        rv.set_bool(false);
    }
}

fn incdec_impl(ex: &mut ExecuteData, rv: &mut Zval, mode: Mode, dec: bool) {
    let mut a = Args::new(ex);
    let max = if mode == Mode::Apcu { 4 } else { 3 };
    if !a.check_count(1, max) {
        return;
    }
    let Ok(Some(key)) = a.string(0) else { return };
    let Ok(step) = a.long(1) else { return };
    let step = step.unwrap_or(1);
    let ttl = if mode == Mode::Apcu {
        let Ok(t) = a.long(3) else { return };
        t.unwrap_or(0)
    } else {
        0
    };
    let mut success = a.raw(2);
    set_ref_bool(success.as_deref_mut(), false);
    let Some(store) = open_backend(rv) else {
        return;
    };
    let on_missing = match mode {
        Mode::Apc => OnMissing::Fail,
        Mode::Apcu => OnMissing::Create {
            expires_at_ms: expiry_for_ttl(ttl),
        },
    };
    let dir = if dec { Direction::Dec } else { Direction::Inc };
    let mut out = None;
    let r = store.update(&key, &mut |cur| {
        let (u, n) = counter::step(cur, dir, step, on_missing);
        out = n;
        u
    });
    match r {
        Ok(()) => match out {
            Some(n) => {
                rv.set_long(n);
                set_ref_bool(success, true);
            }
            None => rv.set_bool(false),
        },
        Err(e) => {
            report_backend(&e);
            rv.set_bool(false)
        }
    }
}

fn cas_impl(ex: &mut ExecuteData, rv: &mut Zval, _mode: Mode) {
    let mut a = Args::new(ex);
    if !a.check_count(3, 3) {
        return;
    }
    let Ok(Some(key)) = a.string(0) else { return };
    let Ok(Some(old)) = a.long(1) else { return };
    let Ok(Some(new)) = a.long(2) else { return };
    let Some(store) = open_backend(rv) else {
        return;
    };
    let mut swapped = false;
    let r = store.update(&key, &mut |cur| {
        let (u, b) = counter::cas(cur, old, new);
        swapped = b;
        u
    });
    set_be_bool(rv, r.map(|()| swapped));
}

enum EntryOutcome {
    Generated(Zval),
    GeneratedNotStored(Zval, String),
    Threw,
    Bailout,
    Panicked(String),
}

/// A live value of `key` decoded into the return value; `false` when there is none (or it
/// cannot be read: reported).
fn entry_hit(rv: &mut Zval, store: &Store, key: &[u8]) -> bool {
    match store.get_entry(key) {
        Ok(Some(e)) => {
            match decode_or_warn(&e.value) {
                Some(z) => *rv = z,
                None => rv.set_bool(false),
            }
            true
        }
        Ok(None) => false,
        Err(e) => {
            report(&e);
            rv.set_bool(false);
            true
        }
    }
}

fn entry_impl(ex: &mut ExecuteData, rv: &mut Zval, mode: Mode) {
    let mut a = Args::new(ex);
    if !a.check_count(2, 3) {
        return;
    }
    let Ok(Some(key)) = a.string(0) else { return };
    // Owned (one more reference), so reading the next argument cannot alias it.
    let Ok(callback) = a.callable(1).map(|z| z.shallow_clone()) else {
        return;
    };
    let Ok(ttl) = a.long(2) else { return };
    // Dated at the call, as APCu dates it (the generator may run a while).
    let (exp, at) = write_times(ttl.unwrap_or(0));
    if let Some(r) = handle::redis() {
        return entry_redis(rv, mode, r, key, callback, exp);
    }
    let Some(store) = open_store(rv) else { return };
    if entry_hit(rv, &store, &key) {
        return;
    }
    // A miss: wait for this key's generator lock (SPEC.md §10, "apc_entry"), which only other
    // apc_entry() callers of the same key (or of its hash bucket) wait for; the store itself is
    // not locked while the generator runs, so it may read and write the cache.
    let held = match store.lock_entry(&key) {
        Ok(h) => h,
        Err(e) => {
            report(&e);
            rv.set_bool(false);
            return;
        }
    };
    // `None`: not taken (a nested apc_entry() of the key whose generator is running, or one
    // that would have to wait while this process holds another key's lock): the generator runs
    // directly. Otherwise another process may have generated it while we waited.
    let held = if let Some(g) = { held } {
        // Decoding can run user code (which may call apc_entry() of this key): not under the lock.
        let hit = store.peek_entry(&key); // the miss was counted above
        if let Ok(Some(_)) | Err(_) = hit {
            drop(g);
            entry_hit(rv, &store, &key);
            return;
        }
        Some(g)
    } else {
        None
    };
    if run_generator(rv, mode, &*store, &key, &callback, (exp, at), held) {
        // Nothing owned may be left in this frame when the jump skips it.
        drop((store, key, callback));
        // SAFETY: the key's generator lock is released (run_generator dropped it) and this
        // frame now owns nothing; the jump lands in guard's try_catch, which re-raises it past
        // the handler.
        unsafe { ext_php_rs::zend::bailout() }
    }
}

/// A value read by `apc_entry` from a Redis server decoded into the return value.
fn entry_value(rv: &mut Zval, v: &[u8]) {
    match decode_or_warn(v) {
        Some(z) => *rv = z,
        None => rv.set_bool(false),
    }
}

/// `apc_entry` on a Redis server (SPEC §10, "Redis backend"): the key's generator lock is a
/// lease on the server, so workers of every machine wait for one generator; a waiter polls until
/// the value appears or the lock is gone (released, or expired with a dead holder) and then
/// tries to take it.
fn entry_redis(
    rv: &mut Zval,
    mode: Mode,
    r: crate::backend::Redis,
    key: Vec<u8>,
    callback: Zval,
    exp: u64,
) {
    let fail = |rv: &mut Zval, e: BackendError| {
        report_backend(&e);
        rv.set_bool(false);
    };
    let mut backoff = Duration::from_millis(1);
    let lease = loop {
        let (v, locked) = match r.entry_state(&key) {
            Ok(s) => s,
            Err(e) => return fail(rv, e),
        };
        if let Some(v) = v {
            return entry_value(rv, &v);
        }
        // Nested in this key's own generator: run it directly rather than wait for ourselves.
        if r.holds(&key) {
            break None;
        }
        if !locked {
            match r.try_lease(&key) {
                Ok(Some(l)) => break Some(l),
                Ok(None) => {}
                Err(e) => return fail(rv, e),
            }
        }
        // Busy, and this worker holds another key's lock: waiting could close a cycle between
        // workers (as the local store, it generates without the lock instead).
        if r.holds_any() {
            break None;
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(ENTRY_POLL_MAX);
    };
    if let Some(l) = lease {
        // Generated by another worker between our read and our lock.
        match r.entry_state(&key) {
            Ok((Some(v), _)) => {
                drop(l);
                entry_value(rv, &v);
            }
            Ok((None, _)) => {
                if run_generator(rv, mode, &r, &key, &callback, (exp, 0), Some(l)) {
                    drop((r, key, callback));
                    // SAFETY: as in entry_impl: the lease is released (run_generator dropped
                    // it) and this frame owns nothing.
                    unsafe { ext_php_rs::zend::bailout() }
                }
            }
            Err(e) => {
                drop(l);
                fail(rv, e);
            }
        }
    } else if run_generator::<crate::backend::Lease>(rv, mode, &r, &key, &callback, (exp, 0), None)
    {
        drop((r, key, callback));
        // SAFETY: no lease is held by this frame and it owns nothing.
        unsafe { ext_php_rs::zend::bailout() }
    }
}

/// The longest pause between two polls of a waiting `apc_entry` on a Redis server.
const ENTRY_POLL_MAX: Duration = Duration::from_millis(20);

/// Calls the generator (holding `g`, the key's generator lock, unless nested) and stores its
/// result unless a live value appeared meanwhile (APCu's rule: the generated value is returned
/// either way). A bailout inside it is caught here and the lock released; `true` then: the
/// caller re-raises it.
fn run_generator<G>(
    rv: &mut Zval,
    mode: Mode,
    store: &dyn Backend,
    key: &[u8],
    cb: &Zval,
    (exp, at): (u64, u64),
    g: Option<G>,
) -> bool {
    let ser = handle::serializer();
    let called = try_catch(AssertUnwindSafe(|| {
        let kz = bytes_zval(key);
        let f = ZendCallable::new(cb).ok()?;
        let v = f.try_call(vec![&kz]).ok()?;
        if util::has_exception() {
            return None;
        }
        let enc = codec::encode(&v, ser);
        Some((v, enc))
    }));
    let outcome = match called {
        Ok(Some((v, Ok(bytes)))) => match store.put(key, &bytes, exp, at, true) {
            Ok(_) => EntryOutcome::Generated(v),
            Err(e) => {
                drop(g);
                report_backend(&e);
                *rv = v;
                return false;
            }
        },
        Ok(Some((v, Err(EncodeError::Resource)))) => EntryOutcome::GeneratedNotStored(
            v,
            format!("Cannot store resources in {} cache", mode.cache_word()),
        ),
        Ok(Some((_, Err(EncodeError::Exception)))) | Ok(None) => EntryOutcome::Threw,
        Ok(Some((v, Err(EncodeError::Other(m))))) => EntryOutcome::GeneratedNotStored(v, m),
        Err(CatchError::Bailout) => EntryOutcome::Bailout,
        Err(CatchError::Panic(m)) => EntryOutcome::Panicked(m),
        Err(_) => EntryOutcome::Panicked("no result".into()),
    };
    // Released before anything below can run user code (a warning's error handler).
    drop(g);
    match outcome {
        EntryOutcome::Generated(v) => *rv = v,
        EntryOutcome::GeneratedNotStored(v, m) => {
            warn(&m);
            *rv = v;
        }
        EntryOutcome::Threw => rv.set_null(),
        EntryOutcome::Bailout => return true,
        EntryOutcome::Panicked(m) => {
            warn(&format!("apcdb: internal error ({m}); nothing was stored"));
            rv.set_bool(false);
        }
    }
    false
}

fn clear_impl(ex: &mut ExecuteData, rv: &mut Zval, mode: Mode) {
    let mut a = Args::new(ex);
    let max = if mode == Mode::Apc { 1 } else { 0 };
    if !a.check_count(0, max) {
        return;
    }
    if mode == Mode::Apc {
        // APC 3.1: "user" (or, as apcu_bc, no argument) clears the user cache; any other cache type
        // named the opcode cache, which apcdb does not have: nothing to clear.
        let Ok(t) = a.string(0) else { return };
        let t = t.unwrap_or_default();
        if !(t.is_empty() || t.eq_ignore_ascii_case(b"user")) {
            rv.set_bool(true);
            return;
        }
    }
    let Some(store) = open_backend(rv) else {
        return;
    };
    set_be_bool(rv, store.clear().map(|()| true));
}

fn cache_info_impl(ex: &mut ExecuteData, rv: &mut Zval, mode: Mode) {
    let mut a = Args::new(ex);
    let (max, li) = if mode == Mode::Apc { (2, 1) } else { (1, 0) };
    if !a.check_count(0, max) {
        return;
    }
    if mode == Mode::Apc && a.string(0).is_err() {
        return;
    }
    let Ok(limited) = a.bool(li) else { return };
    let limited = limited.unwrap_or(false);
    if let Some(r) = handle::redis() {
        return cache_info_redis(rv, &r, limited);
    }
    let Some(store) = open_store(rv) else { return };
    let Some(st) = ok_or_false(rv, store.stats()) else {
        return;
    };
    let fields = info::cache_info_fields(&st, handle::generation(), limited);
    let h = info_array(fields, &mut |slot| {
        let mut z = Zval::new();
        if slot != Slot::EntryList {
            return z;
        }
        // Keys and metadata only: the values are never copied. The PHP arrays built from them
        // count against memory_limit: building stops once PHP reports it exceeded (PHP raises
        // the error when this call returns), and a bailout frees the Rust list first.
        // The scan streams: the Rust side holds one chunk of keys at a time.
        let scan = std::cell::RefCell::new(store.scan_with(b"", |_, _| Visit::Meta));
        let (list, failed) = bailout_safe(scan, |scan| {
            let mut list = ZendHashTable::new();
            for e in &mut *scan.borrow_mut() {
                let e = match e {
                    Ok(e) => e,
                    Err(err) => return (ZendHashTable::new(), Some(err)),
                };
                if util::has_oom() {
                    break; // PHP raises its memory_limit error when we return
                }
                let fields = EntryInfo::new(e.key.len(), &e.meta)
                    .with_access(store.access(&e.key))
                    .cache_list_fields();
                let _ = list.push(info_array(fields, &mut |_| bytes_zval(&e.key)));
            }
            (list, None)
        });
        if let Some(e) = failed {
            // As before the scan streamed: an error gives an empty list and a warning.
            report(&e);
        }
        z.set_hashtable(list);
        z
    });
    rv.set_hashtable(h);
}

/// `apc_cache_info` on a Redis server: the pool's entries counted and listed by one streaming
/// `SCAN` (the list is built as it goes, then the counts are known).
fn cache_info_redis(rv: &mut Zval, r: &crate::backend::Redis, limited: bool) {
    let mut st = apcdb::Stats::default();
    let mut cursor = 0u64;
    let mut err = None;
    let list = bailout_safe((), |()| {
        let mut list = ZendHashTable::new();
        loop {
            let step = r
                .scan_step(cursor, 1000)
                .and_then(|(next, keys)| Ok((next, r.describe(&keys, false)?)));
            let (next, entries) = match step {
                Ok(s) => s,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            };
            for e in &entries {
                let i = iter::remote_info(e);
                st.entries += 1;
                st.used_bytes += i.mem_size as u64;
                if !limited && !util::has_oom() {
                    let _ = list.push(info_array(i.cache_list_fields(), &mut |_| {
                        bytes_zval(&e.key)
                    }));
                }
            }
            if next == 0 || util::has_oom() {
                break;
            }
            cursor = next;
        }
        list
    });
    if let Some(e) = err {
        report_backend(&e);
        rv.set_bool(false);
        return;
    }
    let mut fields = info::cache_info_fields(&st, handle::generation(), limited);
    for (name, f) in &mut fields {
        if *name == "memory_type" {
            *f = apc::info::Field::Str("redis");
        }
    }
    let mut list = Some(list);
    let h = info_array(fields, &mut |slot| {
        let mut z = Zval::new();
        if slot == Slot::EntryList {
            if let Some(l) = list.take() {
                z.set_hashtable(l);
            }
        }
        z
    });
    rv.set_hashtable(h);
}

fn sma_info_impl(ex: &mut ExecuteData, rv: &mut Zval, _mode: Mode) {
    let mut a = Args::new(ex);
    if !a.check_count(0, 1) {
        return;
    }
    let Ok(limited) = a.bool(0) else { return };
    if let Some(r) = handle::redis() {
        // The server's memory, as APCu's one segment: maxmemory (0 when unlimited) and what
        // is left of it; not this pool's share.
        let Some((used, max)) = be_or_false(rv, r.memory()) else {
            return;
        };
        let st = apcdb::Stats {
            used_bytes: used,
            max_size: max,
            ..Default::default()
        };
        let fields = info::sma_info_fields(&st, limited.unwrap_or(false));
        rv.set_hashtable(info_array(fields, &mut |_| Zval::new()));
        return;
    }
    let Some(store) = open_store(rv) else { return };
    let Some(st) = ok_or_false(rv, store.stats()) else {
        return;
    };
    let fields = info::sma_info_fields(&st, limited.unwrap_or(false));
    rv.set_hashtable(info_array(fields, &mut |_| Zval::new()));
}

fn key_info_impl(ex: &mut ExecuteData, rv: &mut Zval, _mode: Mode) {
    let mut a = Args::new(ex);
    if !a.check_count(1, 1) {
        return;
    }
    let Ok(Some(key)) = a.string(0) else { return };
    if let Some(r) = handle::redis() {
        let Some(found) = be_or_false(rv, r.describe(std::slice::from_ref(&key), false)) else {
            return;
        };
        match found.first() {
            Some(e) => {
                let fields = iter::remote_info(e).key_info_fields();
                rv.set_hashtable(info_array(fields, &mut |_| Zval::new()));
            }
            None => rv.set_null(),
        }
        return;
    }
    let Some(store) = open_store(rv) else { return };
    // Not a read of the value: not counted as a hit.
    match store.peek_entry(&key) {
        Ok(Some(e)) => {
            let fields = EntryInfo::new(key.len(), &info::meta_of(&e))
                .with_access(store.access(&key))
                .key_info_fields();
            rv.set_hashtable(info_array(fields, &mut |_| Zval::new()));
        }
        Ok(None) => rv.set_null(),
        Err(e) => {
            report(&e);
            rv.set_bool(false)
        }
    }
}

fn enabled_impl(ex: &mut ExecuteData, rv: &mut Zval, _mode: Mode) {
    let a = Args::new(ex);
    if !a.check_count(0, 0) {
        return;
    }
    rv.set_bool(handle::enabled() && (handle::redis().is_some() || handle::store().is_some()));
}

/// `apcdb_stats(): array|false`: the store's counters (see [`info::apcdb_stats_fields`]); false,
/// like every cache function, when there is no store.
pub extern "C" fn apcdb_stats(ex: &mut ExecuteData, rv: &mut Zval) {
    guard(rv, |rv| {
        if !Args::new(ex).check_count(0, 0) {
            return;
        }
        if let Some(r) = handle::redis() {
            return stats_redis(rv, &r);
        }
        let Some(store) = open_store(rv) else { return };
        let Some(st) = ok_or_false(rv, store.stats()) else {
            return;
        };
        let fields =
            info::apcdb_stats_fields(&st, store.recovered_at_open(), store.max_value_len());
        rv.set_hashtable(info_array(fields, &mut |_| Zval::new()));
    });
}

/// `apcdb_stats()` on a Redis server: the same names, the pool's entries (one `SCAN`) and the
/// server's memory (`INFO memory`, as `apc_sma_info()`); a server has no file, journal, index or
/// counters of ours, so those are 0, and so is `max_value_len` (the server's
/// `proto-max-bulk-len` decides).
fn stats_redis(rv: &mut Zval, r: &crate::backend::Redis) {
    let mut entries = 0u64;
    let mut cursor = 0u64;
    loop {
        let Some((next, keys)) = be_or_false(rv, r.scan_step(cursor, 1000)) else {
            return;
        };
        entries += keys.len() as u64;
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let Some((used, max)) = be_or_false(rv, r.memory()) else {
        return;
    };
    let st = apcdb::Stats {
        entries,
        used_bytes: used,
        max_size: max,
        ..Default::default()
    };
    let fields = info::apcdb_stats_fields(&st, false, 0);
    rv.set_hashtable(info_array(fields, &mut |_| Zval::new()));
}

type Handler = extern "C" fn(&mut ExecuteData, &mut Zval);

/// Defines each function's `apc_*` and `apcu_*` handler: the same body, run under [`guard`] with
/// the mode of its name.
macro_rules! handlers {
    ($($apc:ident, $apcu:ident => $body:expr;)*) => {
        $(
            pub extern "C" fn $apc(ex: &mut ExecuteData, rv: &mut Zval) {
                guard(rv, |rv| $body(ex, rv, Mode::Apc));
            }
            pub extern "C" fn $apcu(ex: &mut ExecuteData, rv: &mut Zval) {
                guard(rv, |rv| $body(ex, rv, Mode::Apcu));
            }
        )*
    };
}

handlers! {
    apc_exists, apcu_exists => exists_impl;
    apc_delete, apcu_delete => delete_impl;
    apc_inc, apcu_inc => |ex, rv, mode| incdec_impl(ex, rv, mode, false);
    apc_dec, apcu_dec => |ex, rv, mode| incdec_impl(ex, rv, mode, true);
    apc_cas, apcu_cas => cas_impl;
    apc_entry, apcu_entry => entry_impl;
    apc_clear_cache, apcu_clear_cache => clear_impl;
    apc_cache_info, apcu_cache_info => cache_info_impl;
    apc_sma_info, apcu_sma_info => sma_info_impl;
    apc_key_info, apcu_key_info => key_info_impl;
    apc_enabled, apcu_enabled => enabled_impl;
}

/// The common calls first try a fast path that runs no PHP code (no `setjmp` guard, no `Arc`
/// clone of the store, the arguments read straight from the frame); anything it does not take
/// on (another argument type, a store not open yet, an error to recheck) goes the general way,
/// which has done nothing yet when the fast path declines.
macro_rules! fast_handlers {
    ($($name:ident, $mode:expr => $fast:expr, $slow:expr;)*) => {
        $(
            pub extern "C" fn $name(ex: &mut ExecuteData, rv: &mut Zval) {
                match std::panic::catch_unwind(AssertUnwindSafe(|| $fast(&mut *ex, &mut *rv))) {
                    Ok(true) => {}
                    Ok(false) => guard(rv, |rv| $slow(ex, rv, $mode)),
                    Err(_) => {
                        rv.set_bool(false);
                        warn("apcdb: internal error; the call returned false");
                    }
                }
            }
        )*
    };
}

fast_handlers! {
    apc_store, Mode::Apc => |ex, rv| store_fast(ex, rv, false),
        |ex, rv, mode| store_impl(ex, rv, mode, false);
    apcu_store, Mode::Apcu => |ex, rv| store_fast(ex, rv, false),
        |ex, rv, mode| store_impl(ex, rv, mode, false);
    apc_add, Mode::Apc => |ex, rv| store_fast(ex, rv, true),
        |ex, rv, mode| store_impl(ex, rv, mode, true);
    apcu_add, Mode::Apcu => |ex, rv| store_fast(ex, rv, true),
        |ex, rv, mode| store_impl(ex, rv, mode, true);
    apc_fetch, Mode::Apc => fetch_fast, fetch_impl;
    apcu_fetch, Mode::Apcu => fetch_fast, fetch_impl;
}

fn mixed(name: &str) -> Arg<'static> {
    Arg::new(name, DataType::Mixed)
}

/// The function table of one naming mode, with APCu's parameter names (they appear in PHP's
/// TypeError messages: "Argument #3 ($ttl) must be of type int").
pub fn functions(mode: Mode) -> Vec<FunctionBuilder<'static>> {
    type H = ext_php_rs::builders::FunctionBuilder<'static>;
    let apc = mode == Mode::Apc;
    let p = if apc { "apc_" } else { "apcu_" };
    let n = |s: &str| format!("{p}{s}");
    let h = |a: Handler, b: Handler| if apc { a } else { b };
    let mut v: Vec<H> = Vec::new();
    let opt_long = |name: &str, def: &str| Arg::new(name, DataType::Long).default(def);
    for (name, a, b) in [
        ("store", apc_store as Handler, apcu_store as Handler),
        ("add", apc_add, apcu_add),
    ] {
        v.push(
            FunctionBuilder::new(n(name), h(a, b))
                .arg(mixed("key"))
                .not_required()
                .arg(mixed("value").default("null"))
                .arg(opt_long("ttl", "0")),
        );
    }
    v.push(
        FunctionBuilder::new(n("fetch"), h(apc_fetch, apcu_fetch))
            .arg(mixed("key"))
            .not_required()
            .arg(mixed("success").as_ref().default("null")),
    );
    v.push(FunctionBuilder::new(n("exists"), h(apc_exists, apcu_exists)).arg(mixed("key")));
    v.push(FunctionBuilder::new(n("delete"), h(apc_delete, apcu_delete)).arg(mixed("key")));
    for (name, a, b) in [
        ("inc", apc_inc as Handler, apcu_inc as Handler),
        ("dec", apc_dec, apcu_dec),
    ] {
        let mut f = FunctionBuilder::new(n(name), h(a, b))
            .arg(Arg::new("key", DataType::String))
            .not_required()
            .arg(opt_long("step", "1"))
            .arg(mixed("success").as_ref().default("null"));
        if !apc {
            f = f.arg(opt_long("ttl", "0"));
        }
        v.push(f);
    }
    v.push(
        FunctionBuilder::new(n("cas"), h(apc_cas, apcu_cas))
            .arg(Arg::new("key", DataType::String))
            .arg(Arg::new("old", DataType::Long))
            .arg(Arg::new("new", DataType::Long)),
    );
    v.push(
        FunctionBuilder::new(n("entry"), h(apc_entry, apcu_entry))
            .arg(Arg::new("key", DataType::String))
            .arg(Arg::new("callback", DataType::Callable))
            .not_required()
            .arg(opt_long("ttl", "0")),
    );
    let mut f = FunctionBuilder::new(n("clear_cache"), h(apc_clear_cache, apcu_clear_cache));
    if apc {
        f = f
            .not_required()
            .arg(Arg::new("cache_type", DataType::String).default("''"));
    }
    v.push(f);
    let mut f =
        FunctionBuilder::new(n("cache_info"), h(apc_cache_info, apcu_cache_info)).not_required();
    if apc {
        f = f.arg(Arg::new("cache_type", DataType::String).default("''"));
    }
    v.push(f.arg(Arg::new("limited", DataType::Bool).default("false")));
    v.push(
        FunctionBuilder::new(n("sma_info"), h(apc_sma_info, apcu_sma_info))
            .not_required()
            .arg(Arg::new("limited", DataType::Bool).default("false")),
    );
    v.push(
        FunctionBuilder::new(n("key_info"), h(apc_key_info, apcu_key_info))
            .arg(Arg::new("key", DataType::String)),
    );
    v.push(FunctionBuilder::new(
        n("enabled"),
        h(apc_enabled, apcu_enabled),
    ));
    v
}
