//! The `apcdb.*` INI settings: their table, and parsing the current values into a [`Config`].

use crate::ffi;
use apcdb::{Durability, Options, WhenFull};
use ext_php_rs::flags::IniEntryPermission;
use ext_php_rs::zend::{IniEntryDef, IniEntryDefs};
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Every setting is `PHP_INI_SYSTEM`: php.ini, `-d`, FPM's `php_admin_value` and Apache's
/// `php_admin_value` (per virtual host) can set it; `ini_set()` and `.user.ini` cannot, so a script
/// cannot point itself at another site's store.
pub static INI_ENTRIES: IniEntryDefs<19> = IniEntryDefs::new([
    IniEntryDef::new(c"apcdb.enabled", c"1", IniEntryPermission::System),
    IniEntryDef::new(c"apcdb.file", c"", IniEntryPermission::System),
    IniEntryDef::new(c"apcdb.size", c"128M", IniEntryPermission::System),
    IniEntryDef::new(c"apcdb.durability", c"sync", IniEntryPermission::System),
    IniEntryDef::new(
        c"apcdb.sync_interval_ms",
        c"100",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(c"apcdb.reset_on_start", c"0", IniEntryPermission::System),
    IniEntryDef::new(c"apcdb.apcu_compat", c"0", IniEntryPermission::System),
    IniEntryDef::new(c"apcdb.serializer", c"php", IniEntryPermission::System),
    // Empty: the engine sizes a new store's journal from its maximum size (SPEC §3).
    IniEntryDef::new(c"apcdb.journal_size", c"", IniEntryPermission::System),
    IniEntryDef::new(
        c"apcdb.background_checkpoints",
        c"1",
        IniEntryPermission::System,
    ),
    // Empty: evict for the anonymous store (a cache, as APCu), refuse for a file.
    IniEntryDef::new(c"apcdb.when_full", c"", IniEntryPermission::System),
    // Only read when apcdb.file is a redis:// URL (SPEC §10, "Redis backend").
    IniEntryDef::new(c"apcdb.redis_prefix", c"apcdb:", IniEntryPermission::System),
    IniEntryDef::new(c"apcdb.redis_timeout", c"1", IniEntryPermission::System),
    IniEntryDef::new(c"apcdb.redis_lease", c"5", IniEntryPermission::System),
    IniEntryDef::new(c"apcdb.redis_replicas", c"0", IniEntryPermission::System),
    IniEntryDef::new(
        c"apcdb.redis_password_file",
        c"",
        IniEntryPermission::System,
    ),
    IniEntryDef::new(c"apcdb.redis_ca_file", c"", IniEntryPermission::System),
    IniEntryDef::new(c"apcdb.redis_cluster", c"0", IniEntryPermission::System),
    IniEntryDef::end(),
]);

/// APCu's own settings, registered at module start in drop-in mode when APCu is not loaded, with
/// APCu's defaults: the values of `apc::ini::APCU_SETTINGS`, from which "is it set" is judged
/// (phpt 050 checks that `ini_get` shows them). They are read as aliases of apcdb's (see
/// [`Config::read`]). `apc.use_request_time` may change at run time, as
/// in APCu; the others are `PHP_INI_SYSTEM`.
pub static APCU_INI_ENTRIES: IniEntryDefs<10> = IniEntryDefs::new([
    IniEntryDef::new(c"apc.enabled", c"1", IniEntryPermission::System),
    IniEntryDef::new(c"apc.shm_size", c"32M", IniEntryPermission::System),
    IniEntryDef::new(c"apc.entries_hint", c"4096", IniEntryPermission::System),
    IniEntryDef::new(c"apc.ttl", c"0", IniEntryPermission::System),
    IniEntryDef::new(c"apc.gc_ttl", c"3600", IniEntryPermission::System),
    IniEntryDef::new(c"apc.use_request_time", c"0", IniEntryPermission::All),
    IniEntryDef::new(c"apc.serializer", c"php", IniEntryPermission::System),
    IniEntryDef::new(c"apc.enable_cli", c"0", IniEntryPermission::System),
    IniEntryDef::new(c"apc.preload_path", c"", IniEntryPermission::System),
    IniEntryDef::end(),
]);

/// Set once [`APCU_INI_ENTRIES`] are registered: only then are the `apc.*` aliases read.
pub static APCU_ALIASES: AtomicBool = AtomicBool::new(false);

/// The built-in default of an `apcdb.*` setting.
fn apcdb_default(name: &CStr) -> &'static str {
    match name.to_bytes() {
        b"apcdb.enabled" => "1",
        b"apcdb.size" => "128M",
        b"apcdb.serializer" => "php",
        b"apcdb.background_checkpoints" => "1",
        b"apcdb.redis_prefix" => "apcdb:",
        b"apcdb.redis_timeout" => "1",
        b"apcdb.redis_lease" => "5",
        b"apcdb.redis_replicas" => "0",
        b"apcdb.redis_cluster" => "0",
        b"apcdb.durability" => "sync",
        _ => "",
    }
}

/// The APCu default of an `apc.*` setting.
fn apcu_default(name: &CStr) -> &'static str {
    let n = name.to_str().unwrap_or("");
    apc::ini::APCU_SETTINGS
        .iter()
        .find(|(k, _)| *k == n)
        .map_or("", |(_, d)| d)
}

/// Whether php.ini or `-d` names this setting.
fn named_in_config(name: &CStr) -> bool {
    // SAFETY: the engine reads `len` bytes of the NUL-terminated name and only looks it up in its
    // configuration table (filled before module start, read-only afterwards).
    unsafe { !ffi::cfg_get_entry(name.as_ptr(), name.count_bytes()).is_null() }
}

/// An `apcdb.*` setting's value if it is set (`apc::ini::is_set`).
fn own_setting(name: &CStr) -> Option<String> {
    let v = ini_str(name);
    apc::ini::is_set(named_in_config(name), &v, apcdb_default(name)).then_some(v)
}

/// An `apc.*` alias's value if the aliases are registered and it is set.
pub fn apcu_setting(name: &CStr) -> Option<String> {
    if !APCU_ALIASES.load(Ordering::Relaxed) {
        return None;
    }
    let v = ini_str(name);
    apc::ini::is_set(named_in_config(name), &v, apcu_default(name)).then_some(v)
}

/// Whether writes count their TTL from the request's start (`apc.use_request_time=1`, read at
/// each write since a script may change it).
pub fn use_request_time() -> bool {
    if !APCU_ALIASES.load(Ordering::Relaxed) {
        return false;
    }
    // Read on every write of a store in APCu mode: looked up without copying the string.
    let name = c"apc.use_request_time";
    let mut exists = false;
    // SAFETY: as in `ini_str`; the value is only read here, on PHP's thread.
    let v = unsafe {
        let p = ffi::zend_ini_string_ex(name.as_ptr(), name.count_bytes(), 0, &mut exists);
        if p.is_null() || !exists {
            return false;
        }
        CStr::from_ptr(p)
    };
    match v.to_bytes() {
        b"0" | b"" => false,
        b"1" => true,
        other => parse_bool(&String::from_utf8_lossy(other)),
    }
}

/// The current value of an INI setting, as PHP holds it (empty if unset).
pub fn ini_str(name: &CStr) -> String {
    let mut exists = false;
    // SAFETY: `name` is NUL-terminated and `len` leaves the NUL out, as the engine expects; a
    // non-null result is the entry's NUL-terminated value, owned by the engine and unchanged
    // while it is copied here on PHP's thread.
    unsafe {
        let p = ffi::zend_ini_string_ex(name.as_ptr(), name.count_bytes(), 0, &mut exists);
        if p.is_null() || !exists {
            return String::new();
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// PHP's boolean INI reading: "1", "on", "yes", "true" are true (case-insensitive); a number is
/// true when non-zero.
pub fn parse_bool(s: &str) -> bool {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" => true,
        "" | "off" | "no" | "false" | "none" => false,
        _ => t.parse::<i64>().map(|n| n != 0).unwrap_or(false),
    }
}

/// A size with an optional K/M/G suffix (PHP's shorthand, as in `memory_limit`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty size".into());
    }
    let (num, mult) = match t.as_bytes()[t.len() - 1].to_ascii_lowercase() {
        b'k' => (&t[..t.len() - 1], 1u64 << 10),
        b'm' => (&t[..t.len() - 1], 1u64 << 20),
        b'g' => (&t[..t.len() - 1], 1u64 << 30),
        _ => (t, 1u64),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("\"{s}\" is not a size such as 64M or 1G"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("\"{s}\" is too large"))
}

/// The settings as read at the start of a request (or of the module).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub enabled: bool,
    pub file: String,
    pub size: u64,
    /// `Options::journal_size` of a new store (an existing one keeps its own); `None`: the
    /// engine's choice, which follows `size`.
    pub journal_size: Option<u64>,
    /// `apcdb.background_checkpoints`: a thread of this process flushes checkpoints, not the
    /// next write (`Options::background_checkpoints`).
    pub background_checkpoints: bool,
    pub durability: DurabilityMode,
    /// `apcdb.when_full`, resolved (its empty default depends on `file`).
    pub when_full: WhenFull,
    pub sync_interval_ms: u64,
    pub reset_on_start: bool,
    /// Index slots of a new store (`apc.entries_hint`), if given.
    pub index_slots: Option<u64>,
    /// `apc.preload_path`: a directory of `*.data` files loaded into an empty store.
    pub preload_path: String,
    /// How arrays and objects are written (`apcdb.serializer`, or `apc.serializer`).
    pub serializer: apc::ini::Serializer,
    /// `apcdb.redis_prefix`: every key of this pool lives under it on a Redis server.
    pub redis_prefix: Vec<u8>,
    /// `apcdb.redis_timeout` in milliseconds: connect, read and write timeout of a Redis server.
    pub redis_timeout_ms: u64,
    /// `apcdb.redis_lease` in milliseconds: how long an `apc_entry` generator lock on a Redis
    /// server outlives a worker that stopped renewing it (one killed while generating).
    pub redis_lease_ms: u64,
    /// `apcdb.redis_password_file`: a file holding the password of the URL's user, read at each
    /// connect (so php.ini need not hold it).
    pub redis_password_file: String,
    /// `apcdb.redis_ca_file`: for `rediss://`, a PEM file of the certificate authorities that
    /// may sign the server's certificate (empty: the system's).
    pub redis_ca_file: String,
    /// `apcdb.redis_cluster`: the URL names a node of a Redis Cluster; the pool lives in the
    /// hash slot of its prefix's hash tag.
    pub redis_cluster: bool,
    /// `apcdb.redis_replicas`: with `apcdb.durability=sync`, the replicas that must have a
    /// write (`WAIT`) before it is acknowledged.
    pub redis_replicas: u32,
    /// Whether `apcdb.durability` was set (php.ini, `-d`, or a value other than the default):
    /// only then does a Redis pool check that the server can give it.
    pub durability_set: bool,
    /// Messages about invalid settings (reported once, defaults used instead).
    pub problems: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DurabilityMode {
    Sync,
    Periodic,
    None,
}

impl DurabilityMode {
    pub fn name(self) -> &'static str {
        match self {
            DurabilityMode::Sync => "sync",
            DurabilityMode::Periodic => "periodic",
            DurabilityMode::None => "none",
        }
    }
}

pub const DEFAULT_SIZE: u64 = 128 << 20;
/// What the engine accepts as a journal size (`apcdb::format::{MIN,MAX}_JOURNAL_SIZE`).
pub const JOURNAL_SIZES: std::ops::RangeInclusive<u64> =
    apcdb::format::MIN_JOURNAL_SIZE..=apcdb::format::MAX_JOURNAL_SIZE;
/// The smallest store accepted (the engine's journal alone takes 8 MiB of address space).
pub const MIN_SIZE: u64 = 1 << 20;

impl Config {
    pub fn read() -> Config {
        let mut problems = Vec::new();
        // apcdb.size, or APCu's apc.shm_size when apcdb.size is not set (with APCu's reading of
        // a suffix-less number under 1M as MiB).
        let (size_name, size_value, apcu_size) = match own_setting(c"apcdb.size") {
            Some(v) => ("apcdb.size", v, false),
            None => match apcu_setting(c"apc.shm_size") {
                Some(v) => ("apc.shm_size", v, true),
                None => ("apcdb.size", ini_str(c"apcdb.size"), false),
            },
        };
        let has_suffix = size_value
            .trim()
            .ends_with(|c: char| matches!(c.to_ascii_lowercase(), 'k' | 'm' | 'g'));
        let size = match parse_size(&size_value) {
            Ok(n) if apcu_size && apc::ini::shm_size_bytes(n, has_suffix) >= MIN_SIZE => {
                apc::ini::shm_size_bytes(n, has_suffix)
            }
            Ok(n) if n >= MIN_SIZE => n,
            Ok(n) => {
                problems.push(format!(
                    "{size_name}={n} is below the minimum of 1M; using 1M"
                ));
                MIN_SIZE
            }
            Err(e) => {
                problems.push(format!("{size_name}: {e}; using 128M"));
                DEFAULT_SIZE
            }
        };
        let jv = ini_str(c"apcdb.journal_size");
        let journal_size = match parse_size(&jv) {
            _ if jv.trim().is_empty() => None,
            Ok(n) if JOURNAL_SIZES.contains(&n) => Some(n),
            Ok(_) => {
                problems.push(format!(
                    "apcdb.journal_size=\"{jv}\" is outside 64K to 1G; using the default (from apcdb.size)"
                ));
                None
            }
            Err(e) => {
                problems.push(format!(
                    "apcdb.journal_size: {e}; using the default (from apcdb.size)"
                ));
                None
            }
        };
        let enabled = apc::ini::enabled(
            own_setting(c"apcdb.enabled").map(|v| parse_bool(&v)),
            apcu_setting(c"apc.enabled").map(|v| parse_bool(&v)),
            apcu_setting(c"apc.enable_cli").map(|v| parse_bool(&v)),
            crate::handle::sapi_is_cli(),
        );
        let index_slots = apcu_setting(c"apc.entries_hint").and_then(|v| match v.trim().parse() {
            Ok(n) => apc::ini::index_slots(n),
            Err(_) => {
                problems.push(format!(
                    "apc.entries_hint=\"{v}\" is not a number; using the default"
                ));
                None
            }
        });
        let (ser_name, ser_value) = match own_setting(c"apcdb.serializer") {
            Some(v) => ("apcdb.serializer", v),
            None => match apcu_setting(c"apc.serializer") {
                Some(v) => ("apc.serializer", v),
                None => ("apcdb.serializer", String::new()),
            },
        };
        let igbinary = crate::extension_loaded(c"igbinary");
        let serializer = apc::ini::serializer(ser_name, &ser_value, igbinary).unwrap_or_else(|e| {
            problems.push(e);
            apc::ini::Serializer::Php
        });
        let preload_path = apcu_setting(c"apc.preload_path")
            .map(|v| v.trim().to_string())
            .unwrap_or_default();
        let d = ini_str(c"apcdb.durability");
        // PHP's INI parser turns an unquoted `none` (like `off`, `no`, `false`) into an empty
        // string, so an explicitly empty value means "none"; the default is "sync".
        let durability = match d.trim().to_ascii_lowercase().as_str() {
            "sync" => DurabilityMode::Sync,
            "periodic" => DurabilityMode::Periodic,
            "none" | "" | "off" | "0" => DurabilityMode::None,
            other => {
                problems.push(format!(
                    "apcdb.durability=\"{other}\" is not one of sync, periodic, none; using sync"
                ));
                DurabilityMode::Sync
            }
        };
        let file = ini_str(c"apcdb.file").trim().to_string();
        let wv = ini_str(c"apcdb.when_full");
        let when_full = match wv.trim().to_ascii_lowercase().as_str() {
            "refuse" => WhenFull::Refuse,
            "evict" => WhenFull::Evict,
            "" if file.is_empty() => WhenFull::Evict,
            "" => WhenFull::Refuse,
            other => {
                problems.push(format!(
                    "apcdb.when_full=\"{other}\" is not one of refuse, evict; using {}",
                    if file.is_empty() { "evict" } else { "refuse" }
                ));
                if file.is_empty() {
                    WhenFull::Evict
                } else {
                    WhenFull::Refuse
                }
            }
        };
        let iv = ini_str(c"apcdb.sync_interval_ms");
        let sync_interval_ms = match iv.trim().parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                problems.push(format!(
                    "apcdb.sync_interval_ms=\"{iv}\" is not a positive number of milliseconds; using 100"
                ));
                100
            }
        };
        let tv = ini_str(c"apcdb.redis_timeout");
        let redis_timeout_ms = match tv.trim().parse::<f64>() {
            Ok(t) if t.is_finite() && t > 0.0 && t <= 3600.0 => ((t * 1000.0) as u64).max(1),
            _ => {
                problems.push(format!(
                    "apcdb.redis_timeout=\"{tv}\" is not a number of seconds in (0, 3600]; using 1"
                ));
                1000
            }
        };
        let lv = ini_str(c"apcdb.redis_lease");
        let redis_lease_ms = match lv.trim().parse::<f64>() {
            // At least 0.1 s: it is renewed every third of itself, which must stay well above
            // the time one renewal takes.
            Ok(t) if t.is_finite() && (0.1..=3600.0).contains(&t) => (t * 1000.0) as u64,
            _ => {
                problems.push(format!(
                    "apcdb.redis_lease=\"{lv}\" is not a number of seconds in [0.1, 3600]; using 5"
                ));
                5000
            }
        };
        let rv = ini_str(c"apcdb.redis_replicas");
        let redis_replicas = match rv.trim().parse::<u32>() {
            Ok(n) if n <= 1000 => n,
            _ => {
                problems.push(format!(
                    "apcdb.redis_replicas=\"{rv}\" is not a number of replicas from 0 to 1000; using 0"
                ));
                0
            }
        };
        Config {
            enabled,
            durability_set: own_setting(c"apcdb.durability").is_some(),
            redis_replicas,
            redis_lease_ms,
            redis_password_file: ini_str(c"apcdb.redis_password_file"),
            redis_ca_file: ini_str(c"apcdb.redis_ca_file"),
            redis_cluster: matches!(
                ini_str(c"apcdb.redis_cluster")
                    .trim()
                    .to_ascii_lowercase()
                    .as_str(),
                "1" | "on" | "yes" | "true"
            ),
            redis_prefix: ini_str(c"apcdb.redis_prefix").into_bytes(),
            redis_timeout_ms,
            file,
            size,
            journal_size,
            background_checkpoints: parse_bool(&ini_str(c"apcdb.background_checkpoints")),
            durability,
            when_full,
            sync_interval_ms,
            reset_on_start: parse_bool(&ini_str(c"apcdb.reset_on_start")),
            index_slots,
            preload_path,
            serializer,
            problems,
        }
    }

    pub fn engine_durability(&self) -> Durability {
        match self.durability {
            DurabilityMode::Sync => Durability::Sync,
            DurabilityMode::Periodic => {
                Durability::Periodic(Duration::from_millis(self.sync_interval_ms))
            }
            DurabilityMode::None => Durability::None,
        }
    }

    /// Engine options for this configuration. `generation` is the server generation used by
    /// `apcdb.reset_on_start`.
    pub fn options(&self, generation: u64) -> Options {
        let mut o = Options::default()
            .durability(self.engine_durability())
            .max_size(self.size)
            .background_checkpoints(self.background_checkpoints)
            .when_full(self.when_full);
        if let Some(n) = self.journal_size {
            o = o.journal_size(n);
        }
        if self.reset_on_start {
            o = o.reset_on_start(generation);
        }
        if let Some(n) = self.index_slots {
            o = o.index_slots(n);
        }
        o
    }

    /// Identifies the engine options that matter when choosing a cached handle.
    pub fn handle_key(&self) -> (String, u64, DurabilityMode, u64, bool, WhenFull, bool) {
        (
            self.file.clone(),
            self.size,
            self.durability,
            self.sync_interval_ms,
            self.reset_on_start,
            self.when_full,
            self.background_checkpoints,
        )
    }
}

pub fn format_size(n: u64) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{}G", n >> 30)
    } else if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{}M", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{}K", n >> 10)
    } else {
        n.to_string()
    }
}
