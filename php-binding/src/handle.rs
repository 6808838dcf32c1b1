//! Which store a call uses, and opening it.
//!
//! * `apcdb.file` empty: one anonymous store, made before the workers fork so that a server's
//!   workers share it, as APCu's shared memory is shared: at module start (MINIT) in a server
//!   SAPI, on first use in the CLI (so that `php -r ';'` creates nothing). The first process that
//!   uses it claims it for its effective uid; a process with another euid (another FPM pool) is
//!   refused, so no two users share entries.
//! * `apcdb.file` set: opened lazily, on the first use in a worker process, so that a chroot or
//!   setuid done by the server after module start applies to the path and to the created file.
//!   Handles are cached per process by path and options: Apache's prefork children serve many
//!   virtual hosts, each with its own `php_admin_value apcdb.file`. A cached handle that a failed
//!   flush poisoned is dropped and the file reopened on the next call.
//!
//! The configuration is read at the start of each request (after the SAPI has applied per-vhost
//! and per-pool values), and the store is resolved at the first call of the request.
//!
//! No `RefCell` borrow of the request state is held while PHP code can run (a warning runs the
//! user's error handler, which may call `apc_*` or longjmp out with a fatal error): decide under
//! the borrow, release it, then warn.

use crate::config::{Config, DurabilityMode};
use crate::util::warn;
use apcdb::Store;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

type HandleKey = (
    String,
    u64,
    DurabilityMode,
    u64,
    bool,
    apcdb::WhenFull,
    bool,
);

/// Handles opened by this process, by path and options.
static FILE_STORES: Mutex<Option<HashMap<HandleKey, Arc<Store>>>> = Mutex::new(None);

/// The anonymous store (when `apcdb.file` is empty), or why it could not be made.
static ANON: OnceLock<Result<Anon, String>> = OnceLock::new();

/// Server generation for `apcdb.reset_on_start`, fixed at module start.
static GENERATION: OnceLock<u64> = OnceLock::new();

/// The anonymous store and the word that records which effective uid it belongs to.
struct Anon {
    store: Arc<Store>,
    owner: &'static AtomicU32,
}

/// The owner word's value before any process claimed the store (no uid is `u32::MAX`: it is
/// `(uid_t)-1`, "no change" for setreuid).
const UNCLAIMED: u32 = u32::MAX;

impl Anon {
    fn make(cfg: &Config) -> Result<Anon, String> {
        // The owner word lives in shared anonymous memory made together with the store, so every
        // process forked afterwards (the workers of every pool) sees one word.
        // SAFETY: a fresh anonymous shared mapping of one page, not backed by any file; the
        // result is checked against MAP_FAILED before use.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!(
                "mmap of the owner word failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: the page is readable, writable, aligned, and never unmapped (the store lives
        // as long as the process), so a 'static AtomicU32 at its start is valid; atomics make
        // access from every process that shares the page defined.
        let owner: &'static AtomicU32 = unsafe { &*(p as *const AtomicU32) };
        owner.store(UNCLAIMED, Ordering::Release);
        let store = Store::open_anonymous(cfg.options(generation())).map_err(|e| e.to_string())?;
        Ok(Anon {
            store: Arc::new(store),
            owner,
        })
    }

    /// The store, if it is unclaimed (then claimed for this process's euid) or already this
    /// euid's; otherwise the refusal, naming the fix.
    fn claim(&self) -> Result<Arc<Store>, String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        match self
            .owner
            .compare_exchange(UNCLAIMED, euid, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(self.store.clone()),
            Err(owner) if owner == euid => Ok(self.store.clone()),
            Err(owner) => Err(format!(
                "apcdb: the anonymous store (apcdb.file is empty) belongs to uid {owner}, which \
                 used it first, and this process runs as uid {euid}: processes of different users \
                 never share entries. Give each PHP-FPM pool its own store, e.g. \
                 php_admin_value[apcdb.file] = /var/lib/apcdb/<pool>/cache.db"
            )),
        }
    }
}

pub struct Request {
    pub cfg: Config,
    /// Resolved on first use in this request.
    store: Option<Arc<Store>>,
    /// The open failed in this request: it was reported once, calls return false.
    failed: bool,
    /// A call of this request reported an error of its poisoned handle, or was given the
    /// poisoned handle to report one (a flush that failed in the checkpoint thread failed in no
    /// call): the next call reopens the store.
    poison_reported: bool,
    problems_reported: bool,
    /// `apc.preload_path` was looked at for the Redis pool in this request.
    preload_checked: bool,
}

impl Request {
    fn new(cfg: Config) -> Request {
        Request {
            cfg,
            store: None,
            failed: false,
            poison_reported: false,
            problems_reported: false,
            preload_checked: false,
        }
    }
}

type ReqCell = RefCell<Option<Request>>;

thread_local! {
    /// This thread's request state. A cell, not the state itself, so that request startup can
    /// replace a cell left borrowed by a longjmp (a bailout skips the borrow's destructor): that
    /// must not make every later request of the worker fail. Nothing holds a borrow across PHP
    /// code, so this is a second line of defence.
    static REQ: Cell<Option<&'static ReqCell>> = const { Cell::new(None) };
}

fn req() -> &'static ReqCell {
    REQ.with(|c| match c.get() {
        Some(r) => r,
        None => {
            let r: &'static ReqCell = Box::leak(Box::new(RefCell::new(None)));
            c.set(Some(r));
            r
        }
    })
}

/// Sets the request state, replacing a stuck cell by a fresh one (the stuck one is leaked).
fn set_request(q: Option<Request>) {
    let cell = req();
    match cell.try_borrow_mut() {
        Ok(mut b) => *b = q,
        Err(_) => REQ.with(|c| c.set(Some(Box::leak(Box::new(RefCell::new(q)))))),
    }
}

/// Module start: fix the generation; in a server SAPI, make the anonymous store now if that is
/// the configuration, so that the workers forked afterwards share it. The CLI makes it on first
/// use instead: most CLI runs never touch the cache.
pub fn module_startup(cfg: &Config) {
    let _ = GENERATION.get_or_init(server_generation);
    if cfg.enabled && cfg.file.is_empty() && !sapi_is_cli() {
        let _ = ANON.get_or_init(|| Anon::make(cfg));
    }
}

/// Module shutdown: stops the engine's threads of this process (the background checkpoint
/// thread, the periodic flusher) for every store it opened. PHP unloads the extension after
/// module shutdown, and a thread left running would then execute unmapped code. The handles stay
/// open (the process is ending; the next opener resumes or recovers as after any exit), and in a
/// forked child the parent's threads, which do not run here, are only forgotten.
pub fn module_shutdown() {
    let stores: Vec<Arc<Store>> = FILE_STORES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|m| m.values().cloned().collect())
        .unwrap_or_default();
    for s in stores {
        s.stop_threads();
    }
    if let Some(Ok(a)) = ANON.get() {
        a.store.stop_threads();
    }
}

/// Whether PHP runs as the command-line SAPI (one process, no workers forked by the SAPI).
pub fn sapi_is_cli() -> bool {
    // SAFETY: the SAPI sets `sapi_module` before it starts the engine and never changes it; its
    // name is a NUL-terminated static string (or null, checked).
    let name = unsafe { (*std::ptr::addr_of!(ext_php_rs::ffi::sapi_module)).name };
    if name.is_null() {
        return false;
    }
    // SAFETY: non-null, NUL-terminated (see above).
    let name = unsafe { std::ffi::CStr::from_ptr(name) };
    matches!(name.to_bytes(), b"cli" | b"phpdbg")
}

pub fn generation() -> u64 {
    *GENERATION.get_or_init(server_generation)
}

/// The generation of the running server: the wall-clock time (ms) at which the process that loaded
/// the module ran its module startup. Under PHP-FPM and Apache that is the master process, and the
/// workers it forks inherit the value, so all workers of one server agree, and any (re)start of the
/// server, including FPM's reload and Apache's graceful restart (both run module startup again),
/// yields a newer one. In the CLI it is the process's own start.
fn server_generation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
        .max(1)
}

pub fn request_startup() {
    crate::backend::request_startup();
    set_request(Some(Request::new(Config::read())));
}

pub fn request_shutdown() {
    // A bailout that skipped an apc_entry() frame would have skipped its generator-lock guard
    // too; the request's end must not leave other processes waiting for that key.
    let store = req()
        .try_borrow()
        .ok()
        .and_then(|b| b.as_ref().and_then(|q| q.store.clone()));
    if let Some(s) = store {
        s.release_entry_locks();
    }
    crate::backend::release_leases();
    set_request(None);
}

/// The configuration of this request (read now if no request started, e.g. during MINIT).
pub fn config() -> Config {
    req()
        .try_borrow()
        .ok()
        .and_then(|b| b.as_ref().map(|q| q.cfg.clone()))
        .unwrap_or_else(Config::read)
}

/// The Redis backend of this request when `apcdb.file` names a Redis server (and apcdb is
/// enabled), else `None`. Invalid settings are reported once per request, as for a file.
pub fn redis() -> Option<crate::backend::Redis> {
    let (r, problems, preload) = {
        let Ok(mut b) = req().try_borrow_mut() else {
            return None;
        };
        let q = b.get_or_insert_with(|| Request::new(Config::read()));
        if !(q.cfg.enabled && crate::backend::is_redis_url(&q.cfg.file)) {
            return None;
        }
        let problems = if q.problems_reported {
            Vec::new()
        } else {
            q.problems_reported = true;
            q.cfg.problems.clone()
        };
        // apc.preload_path: looked at once per request, then once per process and pool.
        let preload = if q.preload_checked || q.cfg.preload_path.is_empty() {
            None
        } else {
            q.preload_checked = true;
            Some((
                q.cfg.preload_path.clone(),
                q.cfg.file.clone(),
                q.cfg.redis_prefix.clone(),
            ))
        };
        (crate::backend::Redis::new(&q.cfg), problems, preload)
    };
    // After the borrow: a warning runs the user's error handler, which may call apc_* again.
    for p in &problems {
        warn(&format!("apcdb: {p}"));
    }
    if let Some((dir, file, prefix)) = preload {
        let pool = (file, prefix);
        if first_use_of_pool(&pool, true) && !crate::funcs::preload(&r, &dir) {
            // The server could not say whether the pool is empty: try again in a later request.
            first_use_of_pool(&pool, false);
        }
    }
    Some(r)
}

/// A Redis pool: its URL and key prefix.
type PoolKey = (String, Vec<u8>);

/// With `mark`, whether this process uses the Redis pool (URL and prefix) for the first time,
/// remembering it; without, forgets it.
fn first_use_of_pool(pool: &PoolKey, mark: bool) -> bool {
    static SEEN: Mutex<Option<std::collections::HashSet<PoolKey>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    let seen = seen.get_or_insert_with(Default::default);
    if mark {
        seen.insert(pool.clone())
    } else {
        seen.remove(pool)
    }
}

/// Called before a call warns about an engine error: if the request's handle is poisoned, that
/// warning is the report of it, and the next call reopens the store. Runs no PHP code.
pub fn error_reported() {
    if let Ok(mut b) = req().try_borrow_mut() {
        if let Some(q) = b.as_mut() {
            if q.store.as_ref().is_some_and(|s| s.is_poisoned()) {
                q.poison_reported = true;
            }
        }
    }
}

/// The request's store when this request already opened it and it is usable, with the
/// request's serializer: one thread-local access and no configuration check, the per-call fast
/// path of every function (a request whose `apcdb.file` names a Redis server never has a store).
pub fn ready_store() -> Option<(Arc<Store>, apc::ini::Serializer)> {
    let b = req().try_borrow().ok()?;
    let q = b.as_ref()?;
    let s = q.store.as_ref().filter(|s| !s.is_poisoned())?;
    Some((s.clone(), q.cfg.serializer))
}

/// Runs `f` on the request's store when this request already opened it and it is usable,
/// without cloning its `Arc` (two locked operations per call) and without holding the request
/// cell's borrow while `f` runs. `f` must run no PHP code: see the SAFETY note.
pub fn with_ready_store<R>(f: impl FnOnce(&Store) -> R) -> Option<R> {
    let p: *const Store = {
        let b = req().try_borrow().ok()?;
        let q = b.as_ref()?;
        Arc::as_ptr(q.store.as_ref().filter(|s| !s.is_poisoned())?)
    };
    // SAFETY: the request's `Arc` keeps the store alive until something replaces or drops it:
    // request shutdown, or `store()` reopening a poisoned handle, both reached only from PHP
    // code (the request's end, another apc_* call). `f` runs no PHP code, so neither can happen
    // while the reference lives; a bailout inside `f` (memory exhausted) jumps past every use.
    Some(f(unsafe { &*p }))
}

/// As [`with_ready_store`], also handing `f` the request's serializer (a fast path that encodes
/// arrays needs it).
pub fn with_ready_store_and_serializer<R>(
    f: impl FnOnce(&Store, apc::ini::Serializer) -> R,
) -> Option<R> {
    let (p, ser): (*const Store, _) = {
        let b = req().try_borrow().ok()?;
        let q = b.as_ref()?;
        (
            Arc::as_ptr(q.store.as_ref().filter(|s| !s.is_poisoned())?),
            q.cfg.serializer,
        )
    };
    // SAFETY: as in `with_ready_store`: `f` runs no PHP code, so nothing can replace or drop the
    // request's `Arc` while the reference lives.
    Some(f(unsafe { &*p }, ser))
}

/// What `store()` decided under the borrow, to act on after releasing it.
enum Step {
    Ready(Arc<Store>),
    Unavailable,
    /// `apcdb.file` names a Redis server, which this function does not support yet.
    RemoteUnsupported,
    Open {
        // Boxed: the configuration is large beside the other variants.
        cfg: Box<Config>,
        problems: Vec<String>,
    },
}

/// The store for this request, opening it on first use. `None` after reporting why (once per
/// request) — the caller then returns false.
pub fn store() -> Option<Arc<Store>> {
    let step = {
        let Ok(mut b) = req().try_borrow_mut() else {
            // Only reachable if a borrow was left behind; never report under one.
            return None;
        };
        let q = b.get_or_insert_with(|| Request::new(Config::read()));
        if q.store.as_ref().is_some_and(|s| s.is_poisoned()) {
            // A flush failed during this request: reopen rather than refuse every later call;
            // but first let one call report it (its write fails with the engine's error), as
            // the write that ran a failed flush itself does: the disk may still be failing.
            if q.poison_reported {
                q.store = None;
                q.poison_reported = false;
            } else {
                q.poison_reported = true;
            }
        }
        if let Some(s) = &q.store {
            Step::Ready(s.clone())
        } else if q.cfg.enabled && crate::backend::is_redis_url(&q.cfg.file) {
            Step::RemoteUnsupported
        } else if q.failed || !q.cfg.enabled {
            Step::Unavailable
        } else {
            let problems = if q.problems_reported {
                Vec::new()
            } else {
                q.problems_reported = true;
                q.cfg.problems.clone()
            };
            Step::Open {
                cfg: Box::new(q.cfg.clone()),
                problems,
            }
        }
    };
    let (cfg, problems) = match step {
        Step::Ready(s) => return Some(s),
        Step::Unavailable => return None,
        Step::RemoteUnsupported => {
            warn(REMOTE_UNSUPPORTED);
            return None;
        }
        Step::Open { cfg, problems } => (*cfg, problems),
    };
    // Opening runs no PHP code; record the outcome before any warning can re-enter.
    let opened = open_for(&cfg);
    if let Ok(mut b) = req().try_borrow_mut() {
        if let Some(q) = b.as_mut() {
            match &opened {
                Ok(s) => q.store = Some(s.clone()),
                Err(_) => q.failed = true,
            }
        }
    }
    for p in &problems {
        warn(&format!("apcdb: {p}"));
    }
    match opened {
        Ok(s) => {
            if !cfg.preload_path.is_empty() && first_use_of(&cfg) {
                crate::funcs::preload(&*s, &cfg.preload_path);
            }
            Some(s)
        }
        Err(msg) => {
            warn(&msg);
            None
        }
    }
}

/// Whether this process uses the store of `cfg` for the first time (`apc.preload_path` is
/// applied then, as APCu applies it once at start, not after every clear).
fn first_use_of(cfg: &Config) -> bool {
    static SEEN: Mutex<Option<std::collections::HashSet<HandleKey>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    seen.get_or_insert_with(Default::default)
        .insert(cfg.handle_key())
}

/// How this request writes arrays and objects (PHP's serializer outside a request).
pub fn serializer() -> apc::ini::Serializer {
    req()
        .try_borrow()
        .ok()
        .and_then(|b| b.as_ref().map(|q| q.cfg.serializer))
        .unwrap_or(apc::ini::Serializer::Php)
}

/// Whether the store of this request is usable, without reporting anything.
pub fn enabled() -> bool {
    req()
        .try_borrow()
        .ok()
        .and_then(|b| b.as_ref().map(|q| q.cfg.enabled))
        .unwrap_or_else(|| Config::read().enabled)
}

/// What a function the Redis backend does not offer yet says (SPEC §10, "Redis backend").
const REMOTE_UNSUPPORTED: &str =
    "apcdb: this function is not supported yet when apcdb.file names a Redis server";

fn open_for(cfg: &Config) -> Result<Arc<Store>, String> {
    if crate::backend::is_redis_url(&cfg.file) {
        // Never a path: "redis://..." must not become a directory and a store file.
        return Err(REMOTE_UNSUPPORTED.to_string());
    }
    if cfg.file.is_empty() {
        // Made at module start in a server SAPI; made here in the CLI (on first use), or if
        // module start saw the extension disabled.
        return match ANON.get_or_init(|| Anon::make(cfg)) {
            Ok(a) => a.claim(),
            Err(e) => Err(format!("apcdb: cannot create the anonymous store: {e}")),
        };
    }
    let key = cfg.handle_key();
    let mut map = FILE_STORES.lock().unwrap_or_else(|p| p.into_inner());
    let map = map.get_or_insert_with(HashMap::new);
    if let Some(s) = map.get(&key) {
        if !s.is_poisoned() {
            return Ok(s.clone());
        }
        // A failed flush poisoned this handle for good: drop it (with no other user left, its
        // close skips the checkpoint it could not make durable), so that a new handle recovers
        // the store from its journal, instead of failing every write of this worker's life.
        map.remove(&key);
    }
    match Store::open(&cfg.file, cfg.options(generation())) {
        Ok(s) => {
            let s = Arc::new(s);
            map.insert(key, s.clone());
            Ok(s)
        }
        Err(e) => Err(format!(
            "apcdb: cannot open the store file \"{}\": {e}",
            cfg.file
        )),
    }
}

/// The store of this request, opened if need be, without reporting a failure (for phpinfo()).
pub fn open_quiet() -> Result<Arc<Store>, String> {
    let cached = req()
        .try_borrow()
        .ok()
        .and_then(|b| b.as_ref().and_then(|q| q.store.clone()));
    if let Some(s) = cached {
        return Ok(s);
    }
    open_for(&config())
}
