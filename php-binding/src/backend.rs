//! The seam between the user-cache functions and where entries live: [`Backend`], implemented by
//! the local apcdb [`Store`] and by [`Redis`], a Redis-protocol server named by
//! `apcdb.file = redis://...` (SPEC §10, "Redis backend").
//!
//! Values are the bytes of the codec (SPEC §10, "Value encoding") on both, so what PHP reads back
//! does not depend on the backend.

use crate::config::{Config, DurabilityMode};
use apcdb::{Entry, Error as StoreError, Store, Update};
use redis::IntoConnectionInfo;
use std::cell::{Cell, RefCell};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a backend call failed.
pub enum BackendError {
    /// The local store's error (reported as before the seam existed).
    Store(StoreError),
    /// A Redis server could not be reached or answered with an error; the message is reported
    /// once per request.
    Remote(String),
    /// The server already failed in this request: already reported, and not retried until the
    /// next request so that a dead server costs at most one timeout per request.
    Down,
}

impl From<StoreError> for BackendError {
    fn from(e: StoreError) -> Self {
        BackendError::Store(e)
    }
}

pub type Result<T> = std::result::Result<T, BackendError>;

/// What the `apc_*` functions need from a place that holds entries. Expiries are Unix
/// milliseconds, 0 meaning never, as in the engine.
pub trait Backend {
    /// Calls `f` with the live value of `key`, if there is one; whether there was. `f` may run
    /// more than once (the local store retries a read overtaken by a writer): the last run counts.
    fn get_with(&self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<bool>;
    /// Stores `value`, dated `modified_at_ms` (the local store's `mtime`; a Redis server keeps
    /// no such date); with `only_if_absent`, only where no live entry exists. Whether it stored.
    fn put(
        &self,
        key: &[u8],
        value: &[u8],
        expires_at_ms: u64,
        modified_at_ms: u64,
        only_if_absent: bool,
    ) -> Result<bool>;
    fn contains(&self, key: &[u8]) -> Result<bool>;
    /// Whether a live entry was removed.
    fn delete(&self, key: &[u8]) -> Result<bool>;
    /// One atomic read-modify-write: `f` sees the live entry and decides (it may run more than
    /// once when another writer got in between; the last run is the one applied).
    fn update(&self, key: &[u8], f: &mut dyn FnMut(Option<&Entry>) -> Update) -> Result<()>;
    /// Removes every entry of this pool.
    fn clear(&self) -> Result<()>;
    /// Whether this pool holds no live entry (`apc.preload_path` fills only an empty one).
    fn is_empty(&self) -> Result<bool>;
}

impl Backend for Store {
    fn get_with(&self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<bool> {
        Ok(Store::get_with(self, key, |v| f(v))?.is_some())
    }

    fn put(
        &self,
        key: &[u8],
        value: &[u8],
        expires_at_ms: u64,
        modified_at_ms: u64,
        only_if_absent: bool,
    ) -> Result<bool> {
        Ok(if only_if_absent {
            self.add_at(key, value, expires_at_ms, modified_at_ms)?
        } else {
            self.put_at(key, value, expires_at_ms, modified_at_ms)?;
            true
        })
    }

    fn contains(&self, key: &[u8]) -> Result<bool> {
        Ok(Store::contains(self, key)?)
    }

    fn delete(&self, key: &[u8]) -> Result<bool> {
        Ok(Store::delete(self, key)?)
    }

    fn update(&self, key: &[u8], f: &mut dyn FnMut(Option<&Entry>) -> Update) -> Result<()> {
        Store::update(self, key, |cur| (f(cur), ()))?;
        Ok(())
    }

    fn clear(&self) -> Result<()> {
        Ok(Store::clear(self)?)
    }

    fn is_empty(&self) -> Result<bool> {
        Ok(self.stats()?.entries == 0)
    }
}

/// Whether `name` has a Redis Cluster hash tag: a `{` followed later by a `}` with something
/// between them (then only that something decides the key's slot).
fn has_hash_tag(name: &[u8]) -> bool {
    name.iter().position(|&b| b == b'{').is_some_and(|open| {
        name[open + 1..]
            .iter()
            .position(|&b| b == b'}')
            .is_some_and(|n| n > 0)
    })
}

/// Whether `apcdb.file` names a Redis-protocol server rather than a file.
pub fn is_redis_url(file: &str) -> bool {
    ["redis://", "rediss://", "redis+unix://", "unix://"]
        .iter()
        .any(|p| file.starts_with(p))
}

/// `url` with its password replaced by `***` (for phpinfo(): a status page may be public).
pub fn redacted(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let mut out = match url[start..end].rfind('@') {
        Some(at) => {
            let user = &url[start..start + at];
            let user = user.split_once(':').map_or("", |(u, _)| u);
            format!("{}{user}:***{}", &url[..start], &url[start + at..])
        }
        None => url.to_string(),
    };
    // redis+unix:// carries the password as a query parameter.
    if let Some(p) = out.find("pass=") {
        let v = p + "pass=".len();
        let e = out[v..].find('&').map_or(out.len(), |i| v + i);
        out.replace_range(v..e, "***");
    }
    out
}

/// The worker's connection, kept across requests (opened on first use), with the URL it was
/// opened for and the process that opened it.
struct Conn {
    url: String,
    pid: u32,
    con: redis::Connection,
}

thread_local! {
    static CONN: RefCell<Option<Conn>> = const { RefCell::new(None) };
    /// Set when a call of this request failed to reach the server: later calls of the request
    /// fail at once (no second timeout, no second warning).
    static DOWN: Cell<bool> = const { Cell::new(false) };
    /// What the check of a new connection found wrong, to report once the connection is no
    /// longer borrowed.
    static PENDING: Cell<Option<String>> = const { Cell::new(None) };
}

/// Forgets the failure of the previous request: the next call tries the server again.
pub fn request_startup() {
    DOWN.set(false);
}

/// A pool on a Redis-protocol server: the URL, the key prefix, the timeout and the `apc_entry`
/// lease of `cfg`.
#[derive(Clone)]
pub struct Redis {
    url: String,
    prefix: Vec<u8>,
    timeout: Duration,
    lease_ms: u64,
    password_file: String,
    ca_file: String,
    /// `apcdb.redis_cluster`: the URL names a node of a Redis Cluster.
    cluster: bool,
    durability: DurabilityMode,
    /// Whether the pool asked for `durability` explicitly (then the server's settings are
    /// checked at connect).
    durability_set: bool,
    replicas: u32,
}

/// Key names under a pool's prefix that start with these bytes are the extension's own (the
/// `apc_entry` generator locks): user keys may not start with them, so no user key can take or
/// break a lock, and iterators and `apc_clear_cache` can tell them apart.
pub const RESERVED: &[u8] = b"\0apcdb:";

/// What follows the prefix in the name of a key's generator lock (then the key).
const LOCK_MARK: &[u8] = b"\0apcdb:lock:";

/// Extends a lease that still holds this worker's token (a lease lost to expiry or to a clear is
/// not taken back: another worker may hold the key's lock by now).
const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";

/// Removes a lock only if it still holds this worker's token.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('DEL', KEYS[1]) end return 0";

/// A generator lock this thread holds, with the thread that renews its lease.
struct Held {
    lock: Vec<u8>,
    token: Vec<u8>,
    /// The process that took it: a child forked inside the generator inherits this list but must
    /// neither release nor renew its parent's lock.
    pid: u32,
    redis: Redis,
    /// Dropped to stop the renewer.
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

thread_local! {
    static HELD: RefCell<Vec<Held>> = const { RefCell::new(Vec::new()) };
}

/// A key's generator lock on the server, held until dropped (SPEC §10, "Redis backend").
pub struct Lease {
    lock: Vec<u8>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        release(&self.lock);
    }
}

/// Stops the renewer of `lock` and deletes the lock if it still holds our token. A failure is
/// not reported: the lease then expires by itself.
fn release(lock: &[u8]) {
    let held = HELD.with(|h| {
        let mut h = h.borrow_mut();
        let i = h.iter().position(|x| x.lock == lock)?;
        Some(h.remove(i))
    });
    let Some(mut held) = held else { return };
    drop(held.stop.take());
    if held.pid != std::process::id() {
        // A child forked inside the generator: the renewer thread exists only in the parent
        // (joining it here would wait for good), and the lock is the parent's to release.
        std::mem::forget(held.renewer.take());
        return;
    }
    if let Some(t) = held.renewer.take() {
        let _ = t.join();
    }
    let _ = held.redis.with_quiet(|c| {
        redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(&held.lock)
            .arg(&held.token)
            .query::<i64>(c)
    });
}

/// Releases every generator lock left by this request (a bailout that skipped a [`Lease`]'s
/// drop must not keep other workers waiting until the lease expires; its renewer would otherwise
/// renew it for the worker's life).
pub fn release_leases() {
    while let Some(lock) = HELD.with(|h| h.borrow().first().map(|x| x.lock.clone())) {
        release(&lock);
    }
}

/// An unguessable token naming this holder of a lock.
fn new_token() -> Vec<u8> {
    let mut b = [0u8; 16];
    // SAFETY: `b` is a writable buffer of exactly `b.len()` bytes; getrandom writes at most that.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // No entropy source: the pid and the clock still tell holders apart.
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b.copy_from_slice(&(t ^ (u128::from(std::process::id()) << 96)).to_le_bytes());
    }
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<String>()
        .into_bytes()
}

/// Renews `lock` every third of the lease on a connection of its own (the worker's connection
/// belongs to the PHP thread, which is busy running the generator), until told to stop or the
/// lease turns out lost.
fn renew_loop(r: Redis, lock: Vec<u8>, token: Vec<u8>, stop: mpsc::Receiver<()>) {
    let every = Duration::from_millis((r.lease_ms / 3).max(1));
    let mut con = r.connect().ok();
    loop {
        match stop.recv_timeout(every) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        if con.is_none() {
            con = r.connect().ok();
        }
        let Some(c) = con.as_mut() else { continue };
        let renewed: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(RENEW)
            .arg(1)
            .arg(&lock)
            .arg(&token)
            .arg(r.lease_ms)
            .query(c);
        match renewed {
            Ok(0) => return,
            Ok(_) => {}
            // Try again with a new connection at the next tick; the lease outlives two misses.
            Err(_) => con = None,
        }
    }
}

/// Runs one `WATCH`ed read-modify-write: `EXEC` fails if another client wrote the key meanwhile,
/// and the decision is taken again on what that writer left. Bounded so a key written without
/// pause cannot hold a worker forever.
const UPDATE_ATTEMPTS: usize = 1000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `pattern` with Redis glob characters escaped, so that the prefix matches only itself.
fn glob_escape(pattern: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pattern.len() + 1);
    for &b in pattern {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

impl Redis {
    pub fn new(cfg: &Config) -> Redis {
        let mut prefix = cfg.redis_prefix.clone();
        if cfg.redis_cluster && !has_hash_tag(&prefix) {
            // Without a hash tag the pool's keys would spread over every node, where a
            // transaction or a script cannot span them: the whole prefix becomes the tag.
            prefix.insert(0, b'{');
            prefix.push(b'}');
        }
        Redis {
            url: cfg.file.clone(),
            prefix,
            cluster: cfg.redis_cluster,
            timeout: Duration::from_millis(cfg.redis_timeout_ms),
            lease_ms: cfg.redis_lease_ms,
            password_file: cfg.redis_password_file.clone(),
            ca_file: cfg.redis_ca_file.clone(),
            durability: cfg.durability,
            durability_set: cfg.durability_set,
            replicas: cfg.redis_replicas,
        }
    }

    fn lock_key(&self, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + LOCK_MARK.len() + key.len());
        k.extend_from_slice(&self.prefix);
        k.extend_from_slice(LOCK_MARK);
        k.extend_from_slice(key);
        k
    }

    /// Whether this thread holds `key`'s generator lock (a nested `apc_entry` of the key whose
    /// generator is running, also in a child forked inside it).
    pub fn holds(&self, key: &[u8]) -> bool {
        let lock = self.lock_key(key);
        HELD.with(|h| h.borrow().iter().any(|x| x.lock == lock))
    }

    /// Whether this thread holds any generator lock: it then never waits for another key's,
    /// since two workers each waiting for the other's key would wait for good.
    pub fn holds_any(&self) -> bool {
        HELD.with(|h| !h.borrow().is_empty())
    }

    /// Takes `key`'s generator lock if no one holds it (`SET NX PX`, the lease), and starts
    /// renewing it; `None` if another worker holds it.
    pub fn try_lease(&self, key: &[u8]) -> Result<Option<Lease>> {
        self.key(key)?;
        let lock = self.lock_key(key);
        let token = new_token();
        let set: redis::Value = self.with(|c| {
            redis::cmd("SET")
                .arg(&lock)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(self.lease_ms)
                .query(c)
        })?;
        if matches!(set, redis::Value::Nil) {
            return Ok(None);
        }
        let (tx, rx) = mpsc::channel();
        let (r, l, t) = (self.clone(), lock.clone(), token.clone());
        // Without a thread (a resource limit) the lease is not renewed: a generator that runs
        // longer than it may then be run a second time by a waiter, which stores nothing over
        // the first one's value (add semantics).
        let renewer = std::thread::Builder::new()
            .name("apcdb-lease".into())
            .spawn(move || renew_loop(r, l, t, rx))
            .ok();
        HELD.with(|h| {
            h.borrow_mut().push(Held {
                lock: lock.clone(),
                token,
                pid: std::process::id(),
                redis: self.clone(),
                stop: Some(tx),
                renewer,
            })
        });
        Ok(Some(Lease { lock }))
    }

    /// For a worker waiting on `key`: its live value, if any, and whether its generator lock is
    /// still held by someone (one round trip).
    pub fn entry_state(&self, key: &[u8]) -> Result<(Option<Vec<u8>>, bool)> {
        let k = self.key(key)?;
        let lock = self.lock_key(key);
        let (v, n): (Option<Vec<u8>>, i64) = self.with(|c| {
            redis::pipe()
                .cmd("GET")
                .arg(&k)
                .cmd("EXISTS")
                .arg(&lock)
                .query(c)
        })?;
        Ok((v, n > 0))
    }

    /// The server's name of `key`; keys are limited as on the local store, so that a pool
    /// accepts the same keys on either backend.
    fn key(&self, key: &[u8]) -> Result<Vec<u8>> {
        if key.len() > apcdb::MAX_KEY_LEN {
            return Err(BackendError::Store(StoreError::KeyTooLarge {
                len: key.len(),
                max: apcdb::MAX_KEY_LEN,
            }));
        }
        if key.starts_with(RESERVED) {
            return Err(BackendError::Remote(
                "apcdb: keys beginning with \"\\0apcdb:\" are reserved on a Redis server (apc_entry's locks)"
                    .to_string(),
            ));
        }
        let mut k = Vec::with_capacity(self.prefix.len() + key.len());
        k.extend_from_slice(&self.prefix);
        k.extend_from_slice(key);
        Ok(k)
    }

    /// An error in words; a timeout names the setting that bounds it (the OS says "resource
    /// temporarily unavailable").
    fn why(&self, e: &redis::RedisError) -> String {
        if e.is_timeout() {
            format!(
                "no answer within apcdb.redis_timeout ({} s)",
                self.timeout.as_secs_f64()
            )
        } else {
            e.to_string()
        }
    }

    /// The URL's connection settings with the password file applied.
    fn info(&self) -> std::result::Result<redis::ConnectionInfo, String> {
        let bad = |e: redis::RedisError| format!("apcdb: invalid Redis URL in apcdb.file: {e}");
        let info = self.url.as_str().into_connection_info().map_err(bad)?;
        // No CLIENT SETINFO at connect: one reply fewer to wait for, so a server that accepts
        // connections but never answers costs one timeout, not one per setup command.
        let mut settings = info.redis_settings().clone().set_skip_set_lib_name();
        if !self.password_file.is_empty() {
            settings = settings.set_password(
                apc::secret::read_password_file(&self.password_file).map_err(|why| {
                    format!(
                        "apcdb: apcdb.redis_password_file \"{}\" {why}",
                        self.password_file
                    )
                })?,
            );
        }
        if settings.username().is_some() && settings.password().is_none() {
            // A user named without a password (none in the URL, no file): log in as that user
            // with an empty one, which only a `nopass` user accepts, rather than silently as
            // the default user (the client skips AUTH when it has no password).
            settings = settings.set_password("");
        }
        Ok(info.set_redis_settings(settings))
    }

    fn connect(&self) -> std::result::Result<redis::Connection, String> {
        let info = self.info()?;
        let con = self.open(info.clone())?;
        if !self.cluster {
            return Ok(con);
        }
        // Redis Cluster: every key of the pool is in the one hash slot of its prefix's hash tag
        // (see `Redis::new`), so the whole pool lives on the node serving that slot, where WATCH,
        // MULTI, scripts and SCAN work as on a single server. The URL names any node; talk to
        // that one. A slot moved later answers MOVED or ASK: `with_quiet` follows it.
        let mut con = con;
        let (host, port) = self.slot_owner(&mut con)?;
        let same = match info.addr() {
            redis::ConnectionAddr::Tcp(h, p)
            | redis::ConnectionAddr::TcpTls {
                host: h, port: p, ..
            } => *h == host && *p == port,
            _ => false,
        };
        if same {
            return Ok(con);
        }
        self.open_node(info, host, port)
    }

    /// A connection to another node of the cluster, with the URL's settings (TLS included).
    fn open_node(
        &self,
        info: redis::ConnectionInfo,
        host: String,
        port: u16,
    ) -> std::result::Result<redis::Connection, String> {
        let addr = match info.addr() {
            redis::ConnectionAddr::TcpTls { insecure, .. } => redis::ConnectionAddr::TcpTls {
                host,
                port,
                insecure: *insecure,
                tls_params: None,
            },
            _ => redis::ConnectionAddr::Tcp(host, port),
        };
        self.open(info.set_addr(addr))
    }

    /// The node (host, port) serving the hash slot of this pool's keys, as `con`'s node sees
    /// the cluster.
    fn slot_owner(
        &self,
        con: &mut redis::Connection,
    ) -> std::result::Result<(String, u16), String> {
        let failed = |e: redis::RedisError| {
            format!("apcdb: apcdb.redis_cluster: cannot find the node of the pool's slot: {e}")
        };
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(&self.prefix)
            .query(con)
            .map_err(failed)?;
        // [[first, last, [host, port, id, ...] (the primary), replicas...], ...]
        let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(con)
            .map_err(failed)?;
        for r in &ranges {
            let (Some(first), Some(last), Some(node)) = (r.first(), r.get(1), r.get(2)) else {
                continue;
            };
            let first: i64 = redis::from_redis_value_ref(first).unwrap_or(-1);
            let last: i64 = redis::from_redis_value_ref(last).unwrap_or(-1);
            if !(first..=last).contains(&slot) {
                continue;
            }
            let node: Vec<redis::Value> = redis::from_redis_value_ref(node).unwrap_or_default();
            let host: Option<String> = node
                .first()
                .and_then(|v| redis::from_redis_value_ref(v).ok());
            let port: Option<u16> = node
                .get(1)
                .and_then(|v| redis::from_redis_value_ref(v).ok());
            if let (Some(host), Some(port)) = (host, port) {
                return Ok((host, port));
            }
        }
        Err(format!(
            "apcdb: apcdb.redis_cluster: no node serves the pool's hash slot {slot} (is the cluster complete?)"
        ))
    }

    /// A connection to `info`'s server, with `apcdb.redis_ca_file` for TLS and the timeouts.
    fn open(&self, info: redis::ConnectionInfo) -> std::result::Result<redis::Connection, String> {
        let client = if self.ca_file.is_empty() {
            redis::Client::open(info)
                .map_err(|e| format!("apcdb: invalid Redis URL in apcdb.file: {e}"))?
        } else {
            // Read at each connect, like the password file: a renewed CA needs no restart.
            let pem = std::fs::read(&self.ca_file).map_err(|e| {
                format!(
                    "apcdb: apcdb.redis_ca_file \"{}\" cannot be read: {e}",
                    self.ca_file
                )
            })?;
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            };
            redis::Client::build_with_tls(info, certs).map_err(|e| {
                format!(
                    "apcdb: apcdb.redis_ca_file \"{}\" is not usable: {e}",
                    self.ca_file
                )
            })?
        };
        let con = client
            .get_connection_with_timeout(self.timeout)
            .map_err(|e| {
                format!(
                    "apcdb: cannot connect to the Redis server: {}",
                    self.why(&e)
                )
            })?;
        con.set_read_timeout(Some(self.timeout))
            .and_then(|()| con.set_write_timeout(Some(self.timeout)))
            .map_err(|e| format!("apcdb: cannot set the Redis timeout: {e}"))?;
        Ok(con)
    }

    /// Runs `f` on the worker's connection, opening it if need be. A failure of the connection
    /// drops it (the next request reconnects) and marks the server down for this request; a
    /// server's error reply (a command it refused) leaves the connection as it is.
    fn with<T>(&self, f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>) -> Result<T> {
        if DOWN.get() {
            return Err(BackendError::Down);
        }
        let r = self.with_quiet(f);
        if matches!(r, Err(BackendError::Remote(_))) && CONN.with(|c| c.borrow().is_none()) {
            DOWN.set(true);
        }
        if let Some(w) = PENDING.take() {
            crate::util::warn(&w);
        }
        r
    }

    /// After a write in `sync` with `apcdb.redis_replicas = n`: `WAIT` until n replicas have it.
    /// Fewer within the time allowed: the write is not acknowledged (an error: it is on the
    /// primary, and may still reach them, but a failover now could lose it).
    fn replicated(&self) -> Result<()> {
        if self.durability != DurabilityMode::Sync || self.replicas == 0 {
            return Ok(());
        }
        // Less than the read timeout, so that the answer is read rather than timed out.
        let wait_ms = (self.timeout.as_millis() as u64 * 3 / 4).max(1);
        let n: i64 = self.with(|c| redis::cmd("WAIT").arg(self.replicas).arg(wait_ms).query(c))?;
        if n < i64::from(self.replicas) {
            return Err(BackendError::Remote(format!(
                "apcdb: the write reached {n} of the {} replicas apcdb.redis_replicas asks for \
                 within {wait_ms} ms: not acknowledged (the primary has it)",
                self.replicas
            )));
        }
        Ok(())
    }

    /// What is wrong with the server's persistence for this pool's `apcdb.durability`, if it
    /// was set: `sync` needs the append-only file fsynced at every write (`appendonly yes`,
    /// `appendfsync always`), `periodic` at least every second (`everysec`).
    fn persistence_problem(&self, con: &mut redis::Connection) -> Option<String> {
        let (want, fsync) = match self.durability {
            _ if !self.durability_set => return None,
            DurabilityMode::None => return None,
            DurabilityMode::Periodic => ("periodic", "everysec or always"),
            DurabilityMode::Sync => ("sync", "always"),
        };
        let got: redis::RedisResult<(Vec<String>, Vec<String>)> = redis::pipe()
            .cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .cmd("CONFIG")
            .arg("GET")
            .arg("appendfsync")
            .query(con);
        let (ao, af) = match got {
            Ok((ao, af)) => (
                ao.get(1).cloned().unwrap_or_default(),
                af.get(1).cloned().unwrap_or_default(),
            ),
            Err(e) => {
                return Some(format!(
                    "apcdb: cannot check that the Redis server gives apcdb.durability={want} \
                     (CONFIG GET: {e}); an acknowledged write is as durable as the server's \
                     configuration makes it"
                ))
            }
        };
        let ok = ao == "yes"
            && (af == "always"
                || (self.durability == DurabilityMode::Periodic && af == "everysec"));
        (!ok).then(|| {
            format!(
                "apcdb: apcdb.durability={want} needs the Redis server to run with appendonly yes \
                 and appendfsync {fsync}, but it has appendonly {ao}, appendfsync {af}: an \
                 acknowledged write can be lost if the server or its machine stops"
            )
        })
    }

    /// As [`Redis::with`], but a failure does not mark the server down for the request: for
    /// work whose failure is not reported (releasing a lock that then expires by itself), so
    /// that the next reported call still warns.
    fn with_quiet<T>(
        &self,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        CONN.with(|c| {
            let mut slot = c.borrow_mut();
            // A child forked after the connection was opened must not talk on its parent's
            // socket (their replies would interleave): it drops its copy of the descriptor, which
            // leaves the parent's open, and connects anew.
            let pid = std::process::id();
            if slot
                .as_ref()
                .is_some_and(|c| c.url != self.url || c.pid != pid)
            {
                *slot = None;
            }
            if slot.is_none() {
                match self.connect() {
                    Ok(mut con) => {
                        if let Some(w) = self.persistence_problem(&mut con) {
                            PENDING.set(Some(w));
                        }
                        *slot = Some(Conn {
                            url: self.url.clone(),
                            pid,
                            con,
                        })
                    }
                    Err(m) => return Err(BackendError::Remote(m)),
                }
            }
            let conn = slot.as_mut().expect("connected above");
            let mut r = f(&mut conn.con);
            if self.cluster {
                if let Err(e) = &r {
                    if let Some(again) = self.redirected(e, &mut slot, pid, &mut f) {
                        r = again;
                    }
                }
            }
            match r {
                Ok(v) => Ok(v),
                Err(e) => {
                    // MOVED/ASK again: the cluster is still moving the pool's slot; the next
                    // request connects anew.
                    let broken = e.is_io_error()
                        || e.is_timeout()
                        || e.is_connection_dropped()
                        || e.is_unrecoverable_error()
                        || matches!(
                            e.kind(),
                            redis::ErrorKind::Server(
                                redis::ServerErrorKind::Moved | redis::ServerErrorKind::Ask
                            )
                        );
                    if broken {
                        *slot = None;
                        Err(BackendError::Remote(format!(
                            "apcdb: the Redis server failed: {}",
                            self.why(&e)
                        )))
                    } else {
                        // A refused command (e.g. GET of a key another client made a list) may
                        // leave a transaction or a WATCH open: reset the connection's state
                        // before it serves another call.
                        if let Some(conn) = slot.as_mut() {
                            let _ = redis::cmd("DISCARD").query::<redis::Value>(&mut conn.con);
                            let _ = redis::cmd("UNWATCH").query::<redis::Value>(&mut conn.con);
                        }
                        Err(BackendError::Remote(format!(
                            "apcdb: the Redis server refused a command: {e}"
                        )))
                    }
                }
            }
        })
    }

    /// A cluster's redirect of a call: the call again, once, on the node the error names, or
    /// `None` when `e` is no redirect. MOVED (the pool's slot now lives on that node) and ASK
    /// (the slot is being moved there and this key already left) both mean the command was not
    /// run; every call's write is one command or one MULTI/EXEC, which runs whole or not at all,
    /// and its other commands are reads or idempotent (`clear`'s UNLINK), so running the call
    /// again does nothing twice. After MOVED the worker keeps talking to the new node; ASK is
    /// answered on a connection of its own, after ASKING (which covers the next command only:
    /// a call of several commands, e.g. an update's WATCH, may still fail during a migration).
    fn redirected<T>(
        &self,
        e: &redis::RedisError,
        slot: &mut Option<Conn>,
        pid: u32,
        f: &mut impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Option<redis::RedisResult<T>> {
        let kind = match e.kind() {
            redis::ErrorKind::Server(
                k @ (redis::ServerErrorKind::Moved | redis::ServerErrorKind::Ask),
            ) => k,
            _ => return None,
        };
        // The client gives (address, slot); the address is host:port ([host]:port for IPv6).
        let (addr, _slot) = e.redirect_node()?;
        let (host, port) = addr.rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let connect = |host: String| {
            self.info()
                .and_then(|info| self.open_node(info, host, port))
                .map_err(|m| redis::RedisError::from((redis::ErrorKind::Io, "redirect", m)))
        };
        if kind == redis::ServerErrorKind::Moved {
            *slot = None;
            let con = match connect(host) {
                Ok(con) => con,
                Err(err) => return Some(Err(err)),
            };
            let conn = slot.insert(Conn {
                url: self.url.clone(),
                pid,
                con,
            });
            Some(f(&mut conn.con))
        } else {
            let mut con = match connect(host) {
                Ok(con) => con,
                Err(err) => return Some(Err(err)),
            };
            Some(
                redis::cmd("ASKING")
                    .query::<()>(&mut con)
                    .and_then(|()| f(&mut con)),
            )
        }
    }
}

/// An entry of a pool as the info functions and iterators see it on a Redis server.
pub struct RemoteEntry {
    /// The key without the pool's prefix.
    pub key: Vec<u8>,
    pub value_len: u64,
    /// Unix milliseconds, 0 = never.
    pub expires_at_ms: u64,
    /// Unix seconds of the last read or write the server remembers (`OBJECT IDLETIME`), 0 when
    /// it does not say (an LFU eviction policy).
    pub access_s: u64,
    /// The value, when asked for.
    pub value: Option<Vec<u8>>,
}

impl Redis {
    /// One step of a `SCAN` over this pool's string keys: the next cursor (0: done) and the
    /// keys found, without the prefix, apc_entry's locks left out. A step may find none.
    pub fn scan_step(&self, cursor: u64, count: usize) -> Result<(u64, Vec<Vec<u8>>)> {
        let mut pattern = glob_escape(&self.prefix);
        pattern.push(b'*');
        let (next, keys): (u64, Vec<Vec<u8>>) = self.with(|c| {
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(count.max(1))
                .arg("TYPE")
                .arg("string")
                .query(c)
        })?;
        let keys = keys
            .into_iter()
            .filter_map(|k| {
                let k = k.strip_prefix(self.prefix.as_slice())?.to_vec();
                (!k.starts_with(RESERVED)).then_some(k)
            })
            .collect();
        Ok((next, keys))
    }

    /// The metadata (and with `values`, the values) of `keys` that are live, in their order, in
    /// one round trip.
    pub fn describe(&self, keys: &[Vec<u8>], values: bool) -> Result<Vec<RemoteEntry>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut names = Vec::with_capacity(keys.len());
        for k in keys {
            names.push(self.key(k)?);
        }
        let mut p = redis::pipe();
        for k in &names {
            p.cmd(if values { "GET" } else { "STRLEN" }).arg(k);
            p.cmd("PEXPIRETIME").arg(k);
            p.cmd("OBJECT").arg("IDLETIME").arg(k);
        }
        let replies: Vec<redis::Value> = self.with(|c| p.query(c))?;
        let now_s = now_ms() / 1000;
        let mut out = Vec::with_capacity(keys.len());
        for (k, r) in keys.iter().zip(replies.chunks(3)) {
            let [v, exp, idle] = r else { continue };
            let exp: i64 = redis::from_redis_value_ref(exp).unwrap_or(-2);
            if exp == -2 {
                continue; // gone since it was listed
            }
            let (value_len, value) = if values {
                match redis::from_redis_value_ref::<Option<Vec<u8>>>(v) {
                    Ok(Some(v)) => (v.len() as u64, Some(v)),
                    _ => continue,
                }
            } else {
                (redis::from_redis_value_ref::<u64>(v).unwrap_or(0), None)
            };
            let idle: Option<u64> = redis::from_redis_value_ref(idle).unwrap_or(None);
            out.push(RemoteEntry {
                key: k.clone(),
                value_len,
                expires_at_ms: u64::try_from(exp).unwrap_or(0),
                access_s: idle.map_or(0, |i| now_s.saturating_sub(i)),
                value,
            });
        }
        Ok(out)
    }

    /// The server's `used_memory` and `maxmemory` (0: no limit), from `INFO memory`; zeros when
    /// the server does not say (a user not allowed `INFO`).
    pub fn memory(&self) -> Result<(u64, u64)> {
        let info: String = match self.with(|c| redis::cmd("INFO").arg("memory").query(c)) {
            Ok(s) => s,
            Err(BackendError::Remote(_)) if CONN.with(|c| c.borrow().is_some()) => {
                return Ok((0, 0));
            }
            Err(e) => return Err(e),
        };
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok((field("used_memory"), field("maxmemory")))
    }
}

/// `SET`'s expiry arguments for an engine expiry (none for "never").
fn with_expiry(cmd: &mut redis::Cmd, expires_at_ms: u64) {
    if expires_at_ms != 0 {
        // PXAT: the same absolute millisecond the local store would use, so an entry lives
        // exactly as long on either backend.
        cmd.arg("PXAT").arg(expires_at_ms);
    }
}

impl Backend for Redis {
    fn get_with(&self, key: &[u8], f: &mut dyn FnMut(&[u8])) -> Result<bool> {
        let k = self.key(key)?;
        let v: Option<Vec<u8>> = self.with(|c| redis::cmd("GET").arg(&k).query(c))?;
        Ok(match v {
            Some(v) => {
                f(&v);
                true
            }
            None => false,
        })
    }

    fn put(
        &self,
        key: &[u8],
        value: &[u8],
        expires_at_ms: u64,
        _modified_at_ms: u64,
        only_if_absent: bool,
    ) -> Result<bool> {
        let k = self.key(key)?;
        if expires_at_ms != 0 && expires_at_ms <= now_ms() {
            // Already expired (a negative TTL): the key reads as absent afterwards, as on the
            // local store; Redis refuses to SET with such an expiry on some versions.
            let (ok, wrote) = self.with(|c| {
                if only_if_absent {
                    let n: i64 = redis::cmd("EXISTS").arg(&k).query(c)?;
                    Ok((n == 0, false))
                } else {
                    let n: i64 = redis::cmd("UNLINK").arg(&k).query(c)?;
                    Ok((true, n > 0))
                }
            })?;
            if wrote {
                self.replicated()?;
            }
            return Ok(ok);
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(&k).arg(value);
        with_expiry(&mut cmd, expires_at_ms);
        if only_if_absent {
            cmd.arg("NX");
        }
        let r: redis::Value = self.with(|c| cmd.query(c))?;
        let stored = !matches!(r, redis::Value::Nil);
        if stored {
            self.replicated()?;
        }
        Ok(stored)
    }

    fn contains(&self, key: &[u8]) -> Result<bool> {
        let k = self.key(key)?;
        let n: i64 = self.with(|c| redis::cmd("EXISTS").arg(&k).query(c))?;
        Ok(n > 0)
    }

    fn delete(&self, key: &[u8]) -> Result<bool> {
        let k = self.key(key)?;
        let n: i64 = self.with(|c| redis::cmd("UNLINK").arg(&k).query(c))?;
        if n > 0 {
            self.replicated()?;
        }
        Ok(n > 0)
    }

    fn update(&self, key: &[u8], f: &mut dyn FnMut(Option<&Entry>) -> Update) -> Result<()> {
        let k = self.key(key)?;
        // Whether a change was applied (then replicated in `sync`).
        let wrote = self.with(|c| {
            for _ in 0..UPDATE_ATTEMPTS {
                // One round trip: WATCH (executed first, so any write after it aborts the EXEC),
                // the value and its absolute expiry (PEXPIRETIME: -1 for none).
                let (v, exp): (Option<Vec<u8>>, i64) = redis::pipe()
                    .cmd("WATCH")
                    .arg(&k)
                    .ignore()
                    .cmd("GET")
                    .arg(&k)
                    .cmd("PEXPIRETIME")
                    .arg(&k)
                    .query(c)?;
                let cur = v.map(|value| Entry {
                    value,
                    expires_at_ms: u64::try_from(exp).unwrap_or(0),
                    modified_at_ms: 0,
                    version: 0,
                });
                let decision = f(cur.as_ref());
                let mut tx = redis::pipe();
                tx.atomic();
                match decision {
                    Update::Keep => {
                        redis::cmd("UNWATCH").query::<()>(c)?;
                        return Ok(false);
                    }
                    Update::Put {
                        value,
                        expires_at_ms,
                    } => {
                        let mut set = redis::cmd("SET");
                        set.arg(&k).arg(value);
                        with_expiry(&mut set, expires_at_ms);
                        tx.add_command(set).ignore();
                    }
                    Update::Delete => {
                        tx.cmd("UNLINK").arg(&k).ignore();
                    }
                    // Update is non_exhaustive: a decision this backend does not know changes
                    // nothing.
                    _ => {
                        redis::cmd("UNWATCH").query::<()>(c)?;
                        return Ok(false);
                    }
                }
                // EXEC answers nil when the watched key changed: decide again.
                let done: Option<()> = tx.query(c)?;
                if done.is_some() {
                    return Ok(true);
                }
            }
            Err(redis::RedisError::from((
                redis::ErrorKind::Client,
                "the key kept changing",
                format!("gave up after {UPDATE_ATTEMPTS} attempts"),
            )))
        })?;
        if wrote {
            self.replicated()?;
        }
        Ok(())
    }

    fn clear(&self) -> Result<()> {
        let mut pattern = glob_escape(&self.prefix);
        pattern.push(b'*');
        self.with(|c| {
            // SCAN + UNLINK of this pool's keys only: other pools (and other data) on the same
            // database are left alone, which FLUSHDB would not do.
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query(c)?;
                // apc_entry's locks stay: a generator running now keeps its key's lock, so a
                // waiter does not start a second one.
                let mut ours = self.prefix.clone();
                ours.extend_from_slice(RESERVED);
                let keys: Vec<_> = keys.into_iter().filter(|k| !k.starts_with(&ours)).collect();
                if !keys.is_empty() {
                    redis::cmd("UNLINK").arg(&keys).query::<i64>(c)?;
                }
                if next == 0 {
                    return Ok(());
                }
                cursor = next;
            }
        })?;
        self.replicated()
    }

    fn is_empty(&self) -> Result<bool> {
        // SCAN may answer a step with no key while more follow: go on until a key or the end.
        let mut cursor = 0;
        loop {
            let (next, keys) = self.scan_step(cursor, 1000)?;
            if !keys.is_empty() {
                return Ok(false);
            }
            if next == 0 {
                return Ok(true);
            }
            cursor = next;
        }
    }
}
