//! Which store a call uses, and opening it.
//!
//! * `apcdb.file` empty: one anonymous store, opened at module start (MINIT) so that the workers a
//!   server forks afterwards share it, as APCu's shared memory is shared.
//! * `apcdb.file` set: opened lazily, on the first use in a worker process, so that a chroot or
//!   setuid done by the server after module start applies to the path and to the created file.
//!   Handles are cached per process by path and options: Apache's prefork children serve many
//!   virtual hosts, each with its own `php_admin_value apcdb.file`.
//!
//! The configuration is read at the start of each request (after the SAPI has applied per-vhost
//! and per-pool values), and the store is resolved at the first call of the request.

use crate::config::{Config, DurabilityMode};
use crate::util::warn;
use apcdb::Store;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

type HandleKey = (String, u64, DurabilityMode, u64, bool);

/// Handles opened by this process, by path and options.
static FILE_STORES: Mutex<Option<HashMap<HandleKey, Arc<Store>>>> = Mutex::new(None);

/// The anonymous store opened at module start (when `apcdb.file` was empty), or why it failed.
static ANON: OnceLock<Result<Arc<Store>, String>> = OnceLock::new();

/// Server generation for `apcdb.reset_on_start`, fixed at module start.
static GENERATION: OnceLock<u64> = OnceLock::new();

pub struct Request {
    pub cfg: Config,
    /// Resolved on first use in this request.
    store: Option<Arc<Store>>,
    /// The open failed in this request: it was reported once, calls return false.
    failed: bool,
    problems_reported: bool,
}

thread_local! {
    static REQ: RefCell<Option<Request>> = const { RefCell::new(None) };
}

/// Module start: fix the generation and open the anonymous store if that is the configuration.
pub fn module_startup(cfg: &Config) {
    let _ = GENERATION.get_or_init(server_generation);
    if cfg.enabled && cfg.file.is_empty() {
        let _ = ANON.get_or_init(|| {
            Store::open_anonymous(cfg.options(generation()))
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
    }
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
    let cfg = Config::read();
    REQ.with(|r| {
        *r.borrow_mut() = Some(Request {
            cfg,
            store: None,
            failed: false,
            problems_reported: false,
        })
    });
}

pub fn request_shutdown() {
    REQ.with(|r| *r.borrow_mut() = None);
}

/// The configuration of this request (read now if no request started, e.g. during MINIT).
pub fn config() -> Config {
    REQ.with(|r| r.borrow().as_ref().map(|q| q.cfg.clone()))
        .unwrap_or_else(Config::read)
}

/// The store for this request, opening it on first use. `None` after reporting why (once per
/// request) — the caller then returns false.
pub fn store() -> Option<Arc<Store>> {
    REQ.with(|r| {
        let mut b = r.borrow_mut();
        if b.is_none() {
            *b = Some(Request {
                cfg: Config::read(),
                store: None,
                failed: false,
                problems_reported: false,
            });
        }
        let q = b.as_mut().unwrap();
        if let Some(s) = &q.store {
            return Some(s.clone());
        }
        if q.failed || !q.cfg.enabled {
            return None;
        }
        if !q.problems_reported {
            q.problems_reported = true;
            for p in &q.cfg.problems {
                warn(&format!("apcdb: {p}"));
            }
        }
        match open_for(&q.cfg) {
            Ok(s) => {
                q.store = Some(s.clone());
                Some(s)
            }
            Err(msg) => {
                q.failed = true;
                warn(&msg);
                None
            }
        }
    })
}

/// Whether the store of this request is usable, without reporting anything.
pub fn enabled() -> bool {
    REQ.with(|r| r.borrow().as_ref().map(|q| q.cfg.enabled))
        .unwrap_or_else(|| Config::read().enabled)
}

fn open_for(cfg: &Config) -> Result<Arc<Store>, String> {
    if cfg.file.is_empty() {
        return match ANON.get() {
            Some(Ok(s)) => Ok(s.clone()),
            Some(Err(e)) => Err(format!("apcdb: cannot create the anonymous store: {e}")),
            None => {
                // Enabled after module start only if MINIT saw it disabled; open it now.
                let r = ANON.get_or_init(|| {
                    Store::open_anonymous(cfg.options(generation()))
                        .map(Arc::new)
                        .map_err(|e| e.to_string())
                });
                r.clone()
                    .map_err(|e| format!("apcdb: cannot create the anonymous store: {e}"))
            }
        };
    }
    let key = cfg.handle_key();
    let mut map = FILE_STORES.lock().unwrap_or_else(|p| p.into_inner());
    let map = map.get_or_insert_with(HashMap::new);
    if let Some(s) = map.get(&key) {
        return Ok(s.clone());
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
    if let Some(s) = REQ.with(|r| r.borrow().as_ref().and_then(|q| q.store.clone())) {
        return Ok(s);
    }
    open_for(&config())
}
