//! The `apcdb` PHP extension: APC's user-cache functions over the durable store.
//!
//! * `apc_*` functions and `APCIterator` always (APC 3.1 / apcu_bc semantics);
//! * with `apcdb.apcu_compat=1`, also `apcu_*` and `APCUIterator` (APCu 5.1 semantics), registered
//!   at module start only if the APCu extension is not loaded (otherwise a startup warning says
//!   why they are missing);
//! * values encoded as described in [`codec`]; the store chosen and opened as in [`handle`];
//! * the APC rules themselves (TTL, inc/dec/cas, iterator selection, info arrays) are plain Rust
//!   in the `apc` crate (`php-binding/apc-semantics`, tested by `cargo test`): this crate only
//!   converts between PHP values and them.

mod backend;
mod codec;
mod config;
mod ffi;
mod funcs;
mod handle;
mod iter;
mod util;

use config::{format_size, Config};
use ext_php_rs::builders::{FunctionBuilder, ModuleBuilder};
use ext_php_rs::prelude::*;
use ext_php_rs::zend::{IniEntryDef, ModuleEntry};
use ext_php_rs::{info_table_end, info_table_row, info_table_start};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// What module start decided about drop-in mode, for phpinfo().
static COMPAT_STATE: OnceLock<&'static str> = OnceLock::new();
static APCU_LOADED: AtomicBool = AtomicBool::new(false);

/// Objects that must outlive the process once handed to the engine (function tables).
static KEEP: std::sync::Mutex<Vec<Box<dyn std::any::Any + Send>>> =
    std::sync::Mutex::new(Vec::new());

fn apcu_extension_loaded() -> bool {
    extension_loaded(c"apcu")
}

/// Whether the extension with this (lower-case) module name is loaded.
pub fn extension_loaded(name: &std::ffi::CStr) -> bool {
    // SAFETY: called on PHP's thread at module start or during a request, after the engine filled
    // its module registry (every `extension=` is loaded before any module starts) and while
    // nothing changes it; the registry is reached by address, never by a Rust reference to the
    // `static mut`, and the key length is the name's.
    unsafe {
        let ht = std::ptr::addr_of_mut!(ffi::module_registry);
        !ext_php_rs::ffi::zend_hash_str_find(ht, name.as_ptr(), name.count_bytes()).is_null()
    }
}

fn constant_defined(name: &str) -> bool {
    // SAFETY: the engine reads exactly `len` bytes of `name` (no NUL needed) and only looks the
    // name up; module startup runs after the constants table exists.
    unsafe { !ffi::zend_get_constant_str(name.as_ptr().cast(), name.len()).is_null() }
}

/// Register the `apcu_*` functions at module start (they cannot be in the static function table:
/// that is registered when the module is loaded, before the INI is known, and would make the
/// extension fail to load beside APCu).
fn register_apcu_functions(ty: i32, mod_num: i32) -> Result<(), String> {
    let mut b = ModuleBuilder::new("apcdb-apcu-compat", env!("CARGO_PKG_VERSION"));
    for f in funcs::functions(funcs::Mode::Apcu) {
        b = b.function(f);
    }
    b = b.class::<iter::ApcuIterator>();
    let (entry, startup, owned): (ModuleEntry, _, _) = b
        .try_into()
        .map_err(|e: ext_php_rs::error::Error| e.to_string())?;
    // SAFETY: `entry.functions` is the end-marked table built above; it and the memory it points
    // into (`owned`, `startup`) are kept for the life of the process below, as the engine keeps
    // pointers into them. Null scope and table mean global functions; we are in module startup.
    let r = unsafe {
        ffi::zend_register_functions(
            std::ptr::null_mut(),
            entry.functions,
            std::ptr::null_mut(),
            ffi::MODULE_PERSISTENT,
        )
    };
    if r != 0 {
        return Err("zend_register_functions failed".into());
    }
    startup.startup(ty, mod_num).map_err(|e| e.to_string())?;
    iter::APCU_ITERATOR_REGISTERED.store(true, Ordering::Relaxed);
    // The engine keeps pointers into the entry's tables for the life of the process.
    let _ = entry;
    std::mem::forget(startup);
    KEEP.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Box::new(SendBox(Box::new(owned))));
    Ok(())
}

struct SendBox(#[allow(dead_code)] Box<dyn std::any::Any>);
// SAFETY: a SendBox is only moved into KEEP and never opened again, so no thread but the one that
// made it ever touches its contents.
unsafe impl Send for SendBox {}

fn install_panic_hook() {
    // Panics on PHP's thread are caught at every entry point and turned into a warning; keep the
    // default report for other threads (e.g. the engine's periodic flusher).
    let main = std::thread::current().id();
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != main {
            default(info);
        }
    }));
}

pub extern "C" fn startup(ty: i32, mod_num: i32) -> i32 {
    let r = std::panic::catch_unwind(|| {
        IniEntryDef::register(config::INI_ENTRIES.as_slice(), mod_num);
        install_panic_hook();
        let apcu = apcu_extension_loaded();
        APCU_LOADED.store(apcu, Ordering::Relaxed);
        let compat = config::parse_bool(&config::ini_str(c"apcdb.apcu_compat"));
        if compat && !apcu {
            // APCu's own apc.* settings, read as aliases of ours (APCu registers them itself
            // when it is loaded, and then its functions are the ones in use anyway).
            IniEntryDef::register(config::APCU_INI_ENTRIES.as_slice(), mod_num);
            config::APCU_ALIASES.store(true, Ordering::Relaxed);
        }
        let cfg = Config::read();
        // APCu defines the same APC_ITER_*/APC_LIST_* constants with the same values.
        for (name, value) in iter::CONSTANTS {
            if !apcu && !constant_defined(name) {
                let _ = ext_php_rs::constant::IntoConst::register_constant(value, name, mod_num);
            }
        }
        let state = if !compat {
            "off"
        } else if apcu {
            util::error_docref(
                ffi::E_CORE_WARNING,
                "apcdb.apcu_compat=1 is ignored because the APCu extension is loaded in this PHP: \
                 the apcu_* functions and APCUIterator remain APCu's (in memory, not durable). \
                 Remove extension=apcu.so to run APCu code on apcdb, or set apcdb.apcu_compat=0",
            );
            "on, but inactive: the APCu extension is loaded"
        } else {
            match register_apcu_functions(ty, mod_num) {
                Ok(()) => "on (apcu_* functions and APCUIterator provided)",
                Err(e) => {
                    util::error_docref(
                        ffi::E_CORE_WARNING,
                        &format!("apcdb: cannot register the apcu_* functions: {e}"),
                    );
                    "on, but registration failed"
                }
            }
        };
        let _ = COMPAT_STATE.set(state);
        handle::module_startup(&cfg);
    });
    match r {
        Ok(()) => 0,
        Err(_) => {
            util::error_docref(
                ffi::E_CORE_WARNING,
                "apcdb: module startup failed (internal error)",
            );
            0
        }
    }
}

pub extern "C" fn shutdown(_ty: i32, mod_num: i32) -> i32 {
    // Before PHP unloads this library: no thread of ours may outlive its code.
    let _ = std::panic::catch_unwind(handle::module_shutdown);
    // SAFETY: `mod_num` is this module's number, under which startup registered its INI entries;
    // the engine calls module shutdown once, on its own thread.
    unsafe { ffi::zend_unregister_ini_entries(mod_num) };
    0
}

pub extern "C" fn request_startup(_ty: i32, _mod_num: i32) -> i32 {
    let _ = std::panic::catch_unwind(iter::install_object_creators);
    let _ = std::panic::catch_unwind(handle::request_startup);
    0
}

pub extern "C" fn request_shutdown(_ty: i32, _mod_num: i32) -> i32 {
    let _ = std::panic::catch_unwind(handle::request_shutdown);
    0
}

extern "C" fn info(module: *mut ModuleEntry) {
    let r = std::panic::catch_unwind(|| {
        let cfg = handle::config();
        info_table_start!();
        info_table_row!(
            "apcdb support",
            if cfg.enabled { "enabled" } else { "disabled" }
        );
        info_table_row!("Version", env!("CARGO_PKG_VERSION"));
        info_table_row!(
            "File",
            if cfg.file.is_empty() {
                "(anonymous, not durable)".to_string()
            } else {
                backend::redacted(&cfg.file)
            }
        );
        info_table_row!("Size", format_size(cfg.size));
        let d = match cfg.durability {
            config::DurabilityMode::Periodic => format!("periodic ({} ms)", cfg.sync_interval_ms),
            m => m.name().to_string(),
        };
        info_table_row!("Durability", d);
        info_table_row!(
            "Reset on start",
            if cfg.reset_on_start { "yes" } else { "no" }
        );
        info_table_row!("Serializer", cfg.serializer.name());
        info_table_row!(
            "APCu compatibility",
            COMPAT_STATE.get().copied().unwrap_or("off")
        );
        // phpinfo() is where an operator looks first: open the store as a call would, but show
        // why it cannot be opened in the table rather than as a warning.
        if cfg.enabled && backend::is_redis_url(&cfg.file) {
            // Not connected from here: phpinfo() must not wait for a server that is down.
            let mut extra = String::new();
            if !cfg.redis_password_file.is_empty() {
                // The file's name only: the password is never shown.
                extra.push_str(&format!(", password from {}", cfg.redis_password_file));
            }
            if cfg.durability == config::DurabilityMode::Sync && cfg.redis_replicas > 0 {
                extra.push_str(&format!(
                    ", each write waits for {} replicas",
                    cfg.redis_replicas
                ));
            }
            info_table_row!(
                "Store",
                format!(
                    "a Redis server, connected on first use (keys under \"{}\", timeout {} ms{extra})",
                    String::from_utf8_lossy(&cfg.redis_prefix),
                    cfg.redis_timeout_ms
                )
            );
        } else {
            match if cfg.enabled {
                handle::open_quiet()
            } else {
                Err("disabled (apcdb.enabled=0)".into())
            } {
                Ok(s) => {
                    match s.stats() {
                        Ok(st) => {
                            info_table_row!("Entries", st.entries.to_string());
                            info_table_row!("Hits", st.hits.to_string());
                            info_table_row!("Misses", st.misses.to_string());
                            info_table_row!(
                                "Used",
                                format!("{} of {} bytes", st.used_bytes, st.max_size)
                            );
                        }
                        Err(e) => info_table_row!("Store", format!("stats unavailable: {e}")),
                    }
                    info_table_row!(
                        "Recovered at open",
                        if s.recovered_at_open() { "yes" } else { "no" }
                    );
                }
                Err(e) => info_table_row!("Store", format!("not available: {e}")),
            }
        }
        info_table_end!();
        // SAFETY: `module` is the live module entry the engine passed to this phpinfo() callback.
        unsafe { ffi::display_ini_entries(module) };
    });
    let _ = r;
}

#[php_module]
#[php(startup = "startup")]
pub fn get_module(module: ModuleBuilder) -> ModuleBuilder {
    let mut m = module
        .name("apcdb")
        .version(env!("CARGO_PKG_VERSION"))
        .shutdown_function(shutdown)
        .request_startup_function(request_startup)
        .request_shutdown_function(request_shutdown)
        .info_function(info)
        .class::<iter::ApcIterator>();
    for f in funcs::functions(funcs::Mode::Apc) {
        m = m.function(f);
    }
    m.function(FunctionBuilder::new("apcdb_stats", funcs::apcdb_stats))
}
