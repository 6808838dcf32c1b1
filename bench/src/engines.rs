//! One adapter per store under test. Every adapter exposes the same small surface (point get,
//! single put, batched put/delete, "make everything durable"), implemented the way that store's
//! own documentation tells a user to do it, so the numbers compare what a user would get.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub type Res<T> = Result<T, String>;

fn e<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |err| format!("{what}: {err}")
}

/// The stores compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Apcdb,
    Lmdb,
    Redb,
    Sqlite,
    Fjall,
}

pub const FAMILIES: [Family; 5] = [
    Family::Apcdb,
    Family::Lmdb,
    Family::Redb,
    Family::Sqlite,
    Family::Fjall,
];

impl Family {
    pub fn key(self) -> &'static str {
        match self {
            Family::Apcdb => "apcdb",
            Family::Lmdb => "lmdb",
            Family::Redb => "redb",
            Family::Sqlite => "sqlite",
            Family::Fjall => "fjall",
        }
    }
    pub fn from_key(s: &str) -> Option<Family> {
        FAMILIES.iter().copied().find(|f| f.key() == s)
    }
    pub fn label(self) -> &'static str {
        match self {
            Family::Apcdb => "apcdb",
            Family::Lmdb => "LMDB (heed)",
            Family::Redb => "redb",
            Family::Sqlite => "SQLite WAL (rusqlite)",
            Family::Fjall => "fjall",
        }
    }
    /// Whether several processes may open the same store for writing at once.
    pub fn multi_process(self) -> bool {
        // redb 4.6 can share a file between processes in ConcurrencyMode::MultiWriter; fjall holds
        // an exclusive lock on its folder.
        !matches!(self, Family::Fjall)
    }
}

/// How writes are made safe. Each family maps these to its own documented settings (see
/// `config_label` and BENCHMARKS.md, "Settings").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every acknowledged write survives power loss.
    Durable,
    /// apcdb only: journal flushed at most `PERIODIC` after a write.
    Periodic,
    /// Acknowledged writes survive `kill -9` of the writer but not power loss (redb: not even that).
    Fast,
}

pub const PERIODIC: Duration = Duration::from_millis(100);

impl Mode {
    pub fn key(self) -> &'static str {
        match self {
            Mode::Durable => "durable",
            Mode::Periodic => "periodic",
            Mode::Fast => "fast",
        }
    }
    pub fn from_key(s: &str) -> Option<Mode> {
        [Mode::Durable, Mode::Periodic, Mode::Fast]
            .into_iter()
            .find(|m| m.key() == s)
    }
}

/// The name a (family, mode) pair has in the tables.
pub fn config_label(f: Family, m: Mode) -> &'static str {
    match (f, m) {
        (Family::Apcdb, Mode::Durable) => "apcdb Sync",
        (Family::Apcdb, Mode::Periodic) => "apcdb Periodic(100 ms)",
        (Family::Apcdb, Mode::Fast) => "apcdb None",
        (Family::Lmdb, Mode::Fast) => "LMDB NO_SYNC",
        (Family::Lmdb, _) => "LMDB default (sync)",
        (Family::Redb, Mode::Fast) => "redb Durability::None",
        (Family::Redb, _) => "redb Durability::Immediate",
        (Family::Sqlite, Mode::Fast) => "SQLite WAL sync=NORMAL",
        (Family::Sqlite, _) => "SQLite WAL sync=FULL",
        (Family::Fjall, Mode::Fast) => "fjall PersistMode::Buffer",
        (Family::Fjall, _) => "fjall PersistMode::SyncData",
    }
}

/// A store opened once per process; hands out per-thread handles.
pub trait Engine: Send + Sync {
    fn handle(&self) -> Res<Box<dyn Handle + '_>>;
    /// Make every acknowledged write durable and fold logs/journals into the main file, so that
    /// file sizes measured afterwards are comparable.
    fn sync(&self) -> Res<()>;
    /// Something worth printing next to an open-time figure (apcdb: records replayed).
    fn open_note(&self) -> String {
        String::new()
    }
    /// apcdb only: (journal bytes in use, journal size).
    fn journal_fill(&self) -> Option<(u64, u64)> {
        None
    }
    /// apcdb only: checkpoints run so far, to explain write rates (each one msyncs the data file).
    fn checkpoints(&self) -> Option<u64> {
        None
    }
    /// Writes a compacted copy of the store into the empty directory `dst`, the way the engine's
    /// own tool does it (apcdb: `backup_to`, which builds exactly the files `Store::compact`
    /// swaps in; LMDB: `mdb_copy -c`; SQLite: `VACUUM INTO`). Returns bytes the compacted store
    /// would also have beside the copy (apcdb: its lock file), or None if the engine has no such
    /// copy.
    fn compacted_copy(&self, _dst: &Path) -> Res<Option<u64>> {
        Ok(None)
    }
    /// Close, waiting until the files are released so the same process may reopen them.
    fn close(self: Box<Self>) {}
}

/// One thread's access to an engine.
pub trait Handle {
    /// Point read; the value is consumed (black_box) so no engine can skip producing it.
    fn get(&mut self, k: &[u8]) -> Res<bool>;
    fn put(&mut self, k: &[u8], v: &[u8]) -> Res<()>;
    /// All-or-nothing group of puts and deletes, committed with the engine's mode.
    fn batch(&mut self, puts: &[(&[u8], &[u8])], dels: &[&[u8]]) -> Res<()>;
}

pub struct OpenArgs<'a> {
    pub dir: &'a Path,
    pub mode: Mode,
    /// Expected number of keys, for sizing maps.
    pub keys: u64,
    /// Another process may have the store open (redb: use ConcurrencyMode::MultiWriter).
    pub multi_process: bool,
    /// apcdb only: journal size for a store created by this open (None: the default).
    pub journal_size: Option<u64>,
}

pub fn open(f: Family, a: &OpenArgs) -> Res<Box<dyn Engine>> {
    std::fs::create_dir_all(a.dir).map_err(e("mkdir"))?;
    Ok(match f {
        Family::Apcdb => Box::new(ApcEngine::open(a)?),
        Family::Lmdb => Box::new(LmdbEngine::open(a)?),
        Family::Redb => Box::new(RedbEngine::open(a)?),
        Family::Sqlite => Box::new(SqliteEngine::open(a)?),
        Family::Fjall => Box::new(FjallEngine::open(a)?),
    })
}

/// Room for `keys` entries of 24 + 150 bytes with generous overhead; memory maps only reserve
/// address space, so over-sizing costs nothing.
fn map_size(keys: u64) -> u64 {
    (keys.saturating_mul(1024)).max(1 << 30)
}

// ---------------------------------------------------------------------------------------------
// apcdb

struct ApcEngine {
    store: apcdb::Store,
}

impl ApcEngine {
    fn open(a: &OpenArgs) -> Res<Self> {
        let d = match a.mode {
            Mode::Durable => apcdb::Durability::Sync,
            Mode::Periodic => apcdb::Durability::Periodic(PERIODIC),
            Mode::Fast => apcdb::Durability::None,
        };
        // Default journal size (8 MiB); the data file may grow to hold the 1.5x key count that the
        // re-insert step reaches.
        // A checkpoint thread: writers then never wait for a checkpoint's flush (SPEC.md §5).
        let mut opts = apcdb::Options::default()
            .durability(d)
            .background_checkpoints(true)
            .max_size(map_size(a.keys));
        if let Some(j) = a.journal_size {
            opts = opts.journal_size(j);
        }
        let store = apcdb::Store::open(a.dir.join("store.apcdb"), opts).map_err(e("apcdb open"))?;
        Ok(ApcEngine { store })
    }
}

struct ApcHandle<'a>(&'a apcdb::Store);

impl Engine for ApcEngine {
    fn handle(&self) -> Res<Box<dyn Handle + '_>> {
        Ok(Box::new(ApcHandle(&self.store)))
    }
    fn sync(&self) -> Res<()> {
        self.store.sync().map_err(e("apcdb sync"))?;
        self.store.checkpoint().map_err(e("apcdb checkpoint"))
    }
    fn open_note(&self) -> String {
        match self.store.stats() {
            Ok(s) if self.store.recovered_at_open() => {
                format!("replayed {} records", s.recovered_records)
            }
            Ok(_) => "no replay".into(),
            Err(err) => format!("stats: {err}"),
        }
    }
    fn checkpoints(&self) -> Option<u64> {
        self.store.stats().ok().map(|s| s.checkpoints)
    }
    fn compacted_copy(&self, dst: &Path) -> Res<Option<u64>> {
        self.store
            .backup_to(dst.join("store.apcdb"))
            .map_err(e("apcdb backup_to"))?;
        let lock = apcdb::Paths::new(self.store.path()).lock;
        Ok(Some(
            std::fs::metadata(lock).map_err(e("apcdb lock file"))?.len(),
        ))
    }
    fn journal_fill(&self) -> Option<(u64, u64)> {
        self.store
            .stats()
            .ok()
            // The journal's fill: each record counts for at least 256 bytes (SPEC.md §3).
            .map(|s| (s.journal_used.max(s.journal_records * 256), s.journal_size))
    }
}

/// `APCDB_BENCH_READ=get_with` makes apcdb's point reads use `Store::get_with` (the value read
/// in place, as LMDB's slice is) instead of `get` (an owned copy); children inherit it.
fn reads_in_place() -> bool {
    static IN_PLACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN_PLACE.get_or_init(|| std::env::var("APCDB_BENCH_READ").is_ok_and(|v| v == "get_with"))
}

impl Handle for ApcHandle<'_> {
    fn get(&mut self, k: &[u8]) -> Res<bool> {
        if reads_in_place() {
            let r = self.0.get_with(k, |v| black_box(v).len());
            return Ok(black_box(r.map_err(e("apcdb get_with"))?).is_some());
        }
        Ok(black_box(self.0.get(k).map_err(e("apcdb get"))?).is_some())
    }
    fn put(&mut self, k: &[u8], v: &[u8]) -> Res<()> {
        self.0.put(k, v).map_err(e("apcdb put"))
    }
    fn batch(&mut self, puts: &[(&[u8], &[u8])], dels: &[&[u8]]) -> Res<()> {
        self.0
            .batch(|b| {
                for (k, v) in puts {
                    b.put(k, v);
                }
                for k in dels {
                    b.delete(k);
                }
            })
            .map_err(e("apcdb batch"))
    }
}

// ---------------------------------------------------------------------------------------------
// LMDB through heed

use heed::types::Bytes;

struct LmdbEngine {
    env: heed::Env,
    // The lifetime only ties the handle to `env` for the borrow checker; `env` outlives every use
    // because both live in this struct and `db` is a plain index (Copy, no Drop).
    db: heed::Database<'static, Bytes, Bytes>,
}

impl LmdbEngine {
    fn open(a: &OpenArgs) -> Res<Self> {
        let mut o = heed::EnvOpenOptions::new();
        o.map_size(map_size(a.keys) as usize).max_readers(512);
        if a.mode == Mode::Fast {
            // MDB_NOSYNC: commits write through the OS page cache but never fsync; a crashed
            // process loses nothing, an OS crash may lose the last commits.
            // SAFETY: heed marks flags unsafe because some weaken durability or need care with
            // the map; NO_SYNC only drops the fsync, which is what this mode measures.
            unsafe { o.flags(heed::EnvFlags::NO_SYNC) };
        }
        // SAFETY: heed requires that this process opens the environment only once; each engine
        // instance uses its own fresh directory.
        let env = unsafe { o.open(a.dir) }.map_err(e("lmdb open"))?;
        let wtxn = env.write_txn().map_err(e("lmdb txn"))?;
        let db = env
            .create_databases_and_commit(wtxn, |dbo, wtxn| {
                dbo.create_database::<Bytes, Bytes>(wtxn, None)
                    .map(heed::CommitOrAbort::<_, ()>::Commit)
            })
            .map_err(e("lmdb create db"))?
            .unwrap_commit();
        // SAFETY: only the lifetime parameter changes; `db` is a plain index into `env`, and both
        // live in the returned struct, so the database never outlives its environment.
        let db: heed::Database<'static, Bytes, Bytes> = unsafe { std::mem::transmute(db) };
        Ok(LmdbEngine { env, db })
    }
}

struct LmdbHandle<'a>(&'a LmdbEngine);

impl Engine for LmdbEngine {
    fn compacted_copy(&self, dst: &Path) -> Res<Option<u64>> {
        self.env
            .copy_to_path(dst.join("data.mdb"), heed::CompactionOption::Enabled)
            .map_err(e("lmdb copy -c"))?;
        Ok(Some(0))
    }
    fn handle(&self) -> Res<Box<dyn Handle + '_>> {
        Ok(Box::new(LmdbHandle(self)))
    }
    fn sync(&self) -> Res<()> {
        self.env.force_sync().map_err(e("lmdb sync"))
    }
    fn close(self: Box<Self>) {
        let LmdbEngine { env, .. } = *self;
        // heed refuses to reopen a path whose previous Env is still closing.
        env.prepare_for_closing().wait();
    }
}

impl Handle for LmdbHandle<'_> {
    fn get(&mut self, k: &[u8]) -> Res<bool> {
        let r = self.0.env.read_txn().map_err(e("lmdb read txn"))?;
        // LMDB hands out a slice of its map: no copy, which is its real advantage.
        let v = self.0.db.get(&r, k).map_err(e("lmdb get"))?;
        Ok(black_box(v).is_some())
    }
    fn put(&mut self, k: &[u8], v: &[u8]) -> Res<()> {
        let mut w = self.0.env.write_txn().map_err(e("lmdb write txn"))?;
        self.0.db.put(&mut w, k, v).map_err(e("lmdb put"))?;
        w.commit().map_err(e("lmdb commit"))
    }
    fn batch(&mut self, puts: &[(&[u8], &[u8])], dels: &[&[u8]]) -> Res<()> {
        let mut w = self.0.env.write_txn().map_err(e("lmdb write txn"))?;
        for (k, v) in puts {
            self.0.db.put(&mut w, k, v).map_err(e("lmdb put"))?;
        }
        for k in dels {
            self.0.db.delete(&mut w, k).map_err(e("lmdb delete"))?;
        }
        w.commit().map_err(e("lmdb commit"))
    }
}

// ---------------------------------------------------------------------------------------------
// redb

use redb::ReadableDatabase;

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("kv");

struct RedbEngine {
    db: redb::Database,
    durability: redb::Durability,
}

impl RedbEngine {
    fn open(a: &OpenArgs) -> Res<Self> {
        let mut b = redb::Database::builder();
        if a.multi_process {
            b.set_concurrency_mode(redb::ConcurrencyMode::MultiWriter);
        }
        let db = b.create(a.dir.join("store.redb")).map_err(e("redb open"))?;
        let w = db.begin_write().map_err(e("redb write"))?;
        w.open_table(REDB_TABLE).map_err(e("redb table"))?;
        w.commit().map_err(e("redb commit"))?;
        let durability = match a.mode {
            Mode::Fast => redb::Durability::None,
            _ => redb::Durability::Immediate,
        };
        Ok(RedbEngine { db, durability })
    }
    fn write(&self, f: impl FnOnce(&mut redb::Table<&[u8], &[u8]>) -> Res<()>) -> Res<()> {
        let mut w = self.db.begin_write().map_err(e("redb write"))?;
        w.set_durability(self.durability)
            .map_err(e("redb durability"))?;
        {
            let mut t = w.open_table(REDB_TABLE).map_err(e("redb table"))?;
            f(&mut t)?;
        }
        w.commit().map_err(e("redb commit"))
    }
}

struct RedbHandle<'a>(&'a RedbEngine);

impl Engine for RedbEngine {
    fn handle(&self) -> Res<Box<dyn Handle + '_>> {
        Ok(Box::new(RedbHandle(self)))
    }
    fn sync(&self) -> Res<()> {
        // An empty Immediate commit makes every earlier Durability::None commit durable.
        let mut w = self.db.begin_write().map_err(e("redb write"))?;
        w.set_durability(redb::Durability::Immediate)
            .map_err(e("redb durability"))?;
        w.commit().map_err(e("redb commit"))
    }
}

impl Handle for RedbHandle<'_> {
    fn get(&mut self, k: &[u8]) -> Res<bool> {
        let r = self.0.db.begin_read().map_err(e("redb read"))?;
        let t = r.open_table(REDB_TABLE).map_err(e("redb table"))?;
        let v = t.get(k).map_err(e("redb get"))?;
        Ok(black_box(v.as_ref().map(|g| g.value().len())).is_some())
    }
    fn put(&mut self, k: &[u8], v: &[u8]) -> Res<()> {
        self.0
            .write(|t| t.insert(k, v).map(|_| ()).map_err(e("redb insert")))
    }
    fn batch(&mut self, puts: &[(&[u8], &[u8])], dels: &[&[u8]]) -> Res<()> {
        self.0.write(|t| {
            for (k, v) in puts {
                t.insert(*k, *v).map_err(e("redb insert"))?;
            }
            for k in dels {
                t.remove(*k).map_err(e("redb remove"))?;
            }
            Ok(())
        })
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite through rusqlite (bundled)

struct SqliteEngine {
    path: PathBuf,
    synchronous: &'static str,
    // Held open for the engine's lifetime so the WAL is not checkpointed and deleted each time a
    // per-thread connection closes; also used by sync().
    keeper: Mutex<rusqlite::Connection>,
}

impl SqliteEngine {
    fn open(a: &OpenArgs) -> Res<Self> {
        let path = a.dir.join("store.sqlite");
        let synchronous = if a.mode == Mode::Fast {
            "NORMAL"
        } else {
            "FULL"
        };
        let c = Self::connect(&path, synchronous)?;
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;",
        )
        .map_err(e("sqlite create"))?;
        Ok(SqliteEngine {
            path,
            synchronous,
            keeper: Mutex::new(c),
        })
    }
    fn connect(path: &Path, synchronous: &str) -> Res<rusqlite::Connection> {
        let c = rusqlite::Connection::open(path).map_err(e("sqlite open"))?;
        // journal_mode=WAL is persistent in the file; synchronous is per connection. Writers from
        // other threads/processes wait on the lock rather than failing with SQLITE_BUSY.
        c.busy_timeout(Duration::from_secs(30))
            .map_err(e("sqlite busy_timeout"))?;
        c.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous};"
        ))
        .map_err(e("sqlite pragma"))?;
        Ok(c)
    }
}

struct SqliteHandle {
    c: rusqlite::Connection,
}

impl Engine for SqliteEngine {
    fn compacted_copy(&self, dst: &Path) -> Res<Option<u64>> {
        let to = dst.join("store.sqlite");
        let c = self
            .keeper
            .lock()
            .map_err(|_| "sqlite keeper poisoned".to_string())?;
        c.execute("VACUUM INTO ?1", [to.to_string_lossy()])
            .map_err(e("sqlite vacuum into"))?;
        Ok(Some(0))
    }
    fn handle(&self) -> Res<Box<dyn Handle + '_>> {
        Ok(Box::new(SqliteHandle {
            c: Self::connect(&self.path, self.synchronous)?,
        }))
    }
    fn sync(&self) -> Res<()> {
        let c = self.keeper.lock().unwrap();
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(e("sqlite checkpoint"))
    }
}

impl Handle for SqliteHandle {
    fn get(&mut self, k: &[u8]) -> Res<bool> {
        let mut st = self
            .c
            .prepare_cached("SELECT v FROM kv WHERE k = ?1")
            .map_err(e("sqlite prepare"))?;
        let mut rows = st.query([k]).map_err(e("sqlite query"))?;
        match rows.next().map_err(e("sqlite step"))? {
            Some(row) => {
                let v = row.get_ref(0).map_err(e("sqlite column"))?;
                black_box(v.as_blob().map_err(e("sqlite blob"))?);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    fn put(&mut self, k: &[u8], v: &[u8]) -> Res<()> {
        let mut st = self
            .c
            .prepare_cached("INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)")
            .map_err(e("sqlite prepare"))?;
        st.execute(rusqlite::params![k, v])
            .map(|_| ())
            .map_err(e("sqlite insert"))
    }
    fn batch(&mut self, puts: &[(&[u8], &[u8])], dels: &[&[u8]]) -> Res<()> {
        // IMMEDIATE takes the write lock up front, so concurrent batches queue instead of failing
        // on a read-to-write lock upgrade.
        let tx = self
            .c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e("sqlite begin"))?;
        {
            let mut ins = tx
                .prepare_cached("INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)")
                .map_err(e("sqlite prepare"))?;
            for (k, v) in puts {
                ins.execute(rusqlite::params![k, v])
                    .map_err(e("sqlite insert"))?;
            }
            let mut del = tx
                .prepare_cached("DELETE FROM kv WHERE k = ?1")
                .map_err(e("sqlite prepare"))?;
            for k in dels {
                del.execute([k]).map_err(e("sqlite delete"))?;
            }
        }
        tx.commit().map_err(e("sqlite commit"))
    }
}

// ---------------------------------------------------------------------------------------------
// fjall

struct FjallEngine {
    db: fjall::Database,
    ks: fjall::Keyspace,
    durable: bool,
}

impl FjallEngine {
    fn open(a: &OpenArgs) -> Res<Self> {
        // A just-dropped Database may still be releasing its folder lock in background threads.
        let mut tries = 0;
        let db = loop {
            match fjall::Database::builder(a.dir).open() {
                Ok(db) => break db,
                Err(err) if tries < 50 => {
                    tries += 1;
                    let _ = err;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(err) => return Err(format!("fjall open: {err}")),
            }
        };
        let ks = db
            .keyspace("kv", fjall::KeyspaceCreateOptions::default)
            .map_err(e("fjall keyspace"))?;
        Ok(FjallEngine {
            db,
            ks,
            durable: a.mode != Mode::Fast,
        })
    }
}

struct FjallHandle<'a>(&'a FjallEngine);

impl Engine for FjallEngine {
    fn handle(&self) -> Res<Box<dyn Handle + '_>> {
        Ok(Box::new(FjallHandle(self)))
    }
    fn sync(&self) -> Res<()> {
        self.db
            .persist(fjall::PersistMode::SyncAll)
            .map_err(e("fjall persist"))
    }
}

impl Handle for FjallHandle<'_> {
    fn get(&mut self, k: &[u8]) -> Res<bool> {
        let v = self.0.ks.get(k).map_err(e("fjall get"))?;
        Ok(black_box(v).is_some())
    }
    fn put(&mut self, k: &[u8], v: &[u8]) -> Res<()> {
        // insert() already pushes the journal to the OS (PersistMode::Buffer); durability per
        // write is the documented extra persist call.
        self.0.ks.insert(k, v).map_err(e("fjall insert"))?;
        if self.0.durable {
            self.0
                .db
                .persist(fjall::PersistMode::SyncData)
                .map_err(e("fjall persist"))?;
        }
        Ok(())
    }
    fn batch(&mut self, puts: &[(&[u8], &[u8])], dels: &[&[u8]]) -> Res<()> {
        let mode = if self.0.durable {
            fjall::PersistMode::SyncData
        } else {
            fjall::PersistMode::Buffer
        };
        let mut b = self.0.db.batch().durability(Some(mode));
        for (k, v) in puts {
            b.insert(&self.0.ks, *k, *v);
        }
        for k in dels {
            b.remove(&self.0.ks, *k);
        }
        b.commit().map_err(e("fjall batch"))
    }
}
