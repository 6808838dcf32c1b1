//! Bounded recovery after a process crash (SPEC.md §7.5): the first opener after a writer died
//! keeps the shared state it left, repairing only the transaction it was applying, and ends up
//! exactly where a full recovery of the same files would.
//!
//! The writer is a real process that kills itself with SIGKILL at a chosen point of a
//! transaction (counted through the storage seam: each store into the data file's map, each
//! journal write), or between transactions. The oracle is a full recovery of a copy of the
//! files (new inodes, no lock file: a first open that cannot resume).

mod common;

use apcdb::{Durability, FileKind, Options, Paths, RealIo, StorageIo, Store, SyncKind};
use common::{helper_piped, helper_role, say};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Kills its own process at the `die_at`-th event once armed; with `fail_journal_sync`, every
/// journal `fdatasync` fails (EIO) once armed.
#[derive(Default)]
struct DieAt {
    armed: AtomicBool,
    events: AtomicU64,
    die_at: u64,
    fail_journal_sync: bool,
}

impl DieAt {
    fn event(&self) {
        if self.armed.load(Ordering::SeqCst)
            && self.events.fetch_add(1, Ordering::SeqCst) + 1 == self.die_at
        {
            // SAFETY: plain system calls; the process ends here as under `kill -9`.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
}

impl StorageIo for DieAt {
    fn wants_mapped_writes(&self) -> bool {
        true
    }
    fn data_written(&self, _: u64, _: u64) {
        self.event();
    }
    fn journal_copied(&self, _: u64, _: &[u8]) {
        self.event();
    }
    fn write_at(&self, kind: FileKind, f: &File, off: u64, b: &[u8]) -> std::io::Result<usize> {
        if kind != FileKind::Journal || !self.armed.load(Ordering::SeqCst) {
            return RealIo.write_at(kind, f, off, b);
        }
        // Before the record, after half of it (torn in the page cache), after all of it.
        self.event();
        let half = (b.len() / 2).max(1);
        let n = RealIo.write_at(kind, f, off, &b[..half])?;
        self.event();
        let m = RealIo.write_at(kind, f, off + n as u64, &b[n..])?;
        self.event();
        Ok(n + m)
    }
    fn sync_file(&self, kind: FileKind, f: &File, what: SyncKind) -> std::io::Result<()> {
        if self.fail_journal_sync && kind == FileKind::Journal && self.armed.load(Ordering::SeqCst)
        {
            return Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
        RealIo.sync_file(kind, f, what)
    }
}

fn opts(durability: Durability) -> Options {
    Options::default()
        .durability(durability)
        .initial_size(1 << 20)
        .max_size(8 << 20)
        .journal_size(1 << 20)
}

fn durability_named(name: &str) -> Durability {
    match name {
        "sync" => Durability::Sync,
        _ => Durability::None,
    }
}

/// What the dying writer commits before it arms, and the transaction it dies in.
fn base(store: &Store) {
    for i in 0..60u32 {
        store
            .put(format!("k{i}").as_bytes(), format!("old{i}").as_bytes())
            .unwrap();
    }
    store.delete(b"k59").unwrap();
}

fn the_batch(store: &Store) {
    store
        .batch(|b| {
            for i in 0..40u32 {
                b.put(
                    format!("k{i}").as_bytes(),
                    format!("new{i}").repeat(9).as_bytes(),
                );
            }
            for i in 0..10u32 {
                b.put(format!("n{i}").as_bytes(), b"inserted");
            }
            for i in 50..55u32 {
                b.delete(format!("k{i}").as_bytes());
            }
        })
        .unwrap();
}

#[test]
#[ignore = "run by the tests below as another process"]
fn helper() {
    let Some((role, path)) = helper_role() else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let io = Arc::new(DieAt {
        die_at: var("APCDB_DIE_AT").parse().unwrap_or(0),
        fail_journal_sync: role == "failed-sync",
        ..Default::default()
    });
    let durability = durability_named(&var("APCDB_DURABILITY"));
    let store = Store::open(&path, opts(durability).io(io.clone())).unwrap();
    match role.as_str() {
        // Dies at the chosen event of the batch, or after it, outside the lock.
        "dier" => {
            base(&store);
            say(&format!("armed {}", store.stats().unwrap().recoveries));
            io.armed.store(true, Ordering::SeqCst);
            the_batch(&store);
            io.armed.store(false, Ordering::SeqCst);
            say("survived");
        }
        // Only reads (the first opener of a store closed cleanly), then dies.
        "reader" => {
            assert!(store.get(b"k1").unwrap().is_some());
            say("read");
        }
        // Writes one key (the first opener of a store closed cleanly), then dies.
        "writer" => {
            store.put(b"k1", b"written").unwrap();
            let resumed = if store.resumed_at_open() {
                "resumed"
            } else {
                "rebuilt"
            };
            say(&format!("wrote {resumed}"));
        }
        // A journal flush fails (the handle is poisoned), then the process dies.
        "failed-sync" => {
            base(&store);
            io.armed.store(true, Ordering::SeqCst);
            assert!(store.put(b"x", b"y").is_err());
            assert!(store.is_poisoned());
            say("poisoned");
        }
        other => panic!("unknown helper role {other}"),
    }
    // SAFETY: plain system call: die without closing, as under `kill -9`.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}

/// Runs a helper to its death; returns the lines it said.
fn run_helper(role: &str, path: &Path, durability: &str, die_at: u64) -> Vec<String> {
    let mut child = helper_piped(role, path)
        .env("APCDB_DIE_AT", die_at.to_string())
        .env("APCDB_DURABILITY", durability)
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let lines: Vec<String> = std::io::BufRead::lines(out)
        .map_while(|l| l.ok())
        .filter(|l| {
            l.starts_with("armed")
                || l.starts_with("wrote")
                || ["survived", "poisoned", "read"].contains(&l.as_str())
        })
        .collect();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "{role} at {die_at}: {status:?}"
    );
    lines
}

fn contents(store: &Store) -> BTreeMap<Vec<u8>, Vec<u8>> {
    store
        .scan_prefix(b"")
        .unwrap()
        .into_iter()
        .map(|(k, e)| (k, e.value))
        .collect()
}

/// The store as a full recovery of its files gives it: a copy (new inodes, no lock file).
fn recovered_copy(path: &Path, dir: &Path) -> (BTreeMap<Vec<u8>, Vec<u8>>, apcdb::Stats) {
    let copy = dir.join("oracle.db");
    let (from, to) = (Paths::new(path), Paths::new(&copy));
    for (a, b) in from.durable().into_iter().zip(to.durable()) {
        std::fs::copy(a, b).unwrap();
    }
    let store = Store::open(&copy, opts(Durability::None)).unwrap();
    assert!(!store.resumed_at_open(), "a copy must not resume");
    let c = contents(&store);
    let stats = store.stats().unwrap();
    drop(store);
    for p in to.all() {
        let _ = std::fs::remove_file(p);
    }
    (c, stats)
}

/// The batch is whole or absent, never in part.
fn whole_or_absent(c: &BTreeMap<Vec<u8>, Vec<u8>>) -> bool {
    let get = |k: &str| c.get(k.as_bytes()).map(|v| v.as_slice());
    let whole = (0..40)
        .all(|i| get(&format!("k{i}")) == Some(format!("new{i}").repeat(9).as_bytes()))
        && (0..10).all(|i| get(&format!("n{i}")) == Some(&b"inserted"[..]))
        && (50..55).all(|i| get(&format!("k{i}")).is_none());
    let absent = (0..59).all(|i| get(&format!("k{i}")) == Some(format!("old{i}").as_bytes()))
        && (0..10).all(|i| get(&format!("n{i}")).is_none());
    whole || absent
}

/// Writes through the resumed state (its free lists included), closes, checks the files, and
/// reopens from the closing snapshot.
fn use_then_check(store: Store, path: &Path, mut model: BTreeMap<Vec<u8>, Vec<u8>>) {
    for i in 0..30u32 {
        let (k, v) = (
            format!("after{i}"),
            vec![b'a' + (i % 7) as u8; 40 + i as usize * 9],
        );
        store.put(k.as_bytes(), &v).unwrap();
        model.insert(k.into_bytes(), v);
    }
    store.delete(b"k3").unwrap();
    model.remove(&b"k3"[..]);
    store.checkpoint().unwrap();
    assert_eq!(contents(&store), model);
    assert_eq!(store.stats().unwrap().entries, model.len() as u64);
    drop(store);
    let report = apcdb::verify::check(path).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let store = Store::open(path, opts(Durability::None)).unwrap();
    assert_eq!(contents(&store), model);
}

/// A writer killed at every point of a transaction (and once after it): the first opener
/// resumes, repairs at most that transaction, never runs a full recovery, and finds what a
/// full recovery of the same files finds, with the same counters. A repair that skipped the
/// record the writer was applying (or left it half applied) differs from the oracle.
#[test]
fn a_writer_killed_anywhere_in_a_commit_is_repaired_not_recovered() {
    for durability in ["none", "sync"] {
        let mut survived = false;
        let mut die_at = 1;
        while !survived {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s.db");
            let lines = run_helper("dier", &path, durability, die_at);
            let recoveries: u64 = lines[0].split(' ').nth(1).unwrap().parse().unwrap();
            survived = lines.iter().any(|l| l == "survived");
            let what = format!("{durability}, killed at event {die_at}");
            let (oracle, oracle_stats) = recovered_copy(&path, dir.path());
            assert!(whole_or_absent(&oracle), "{what}: the oracle is partial");
            let store = Store::open(&path, opts(Durability::None)).unwrap();
            assert!(store.resumed_at_open(), "{what}: not resumed");
            let stats = store.stats().unwrap();
            assert_eq!(stats.recoveries, recoveries, "{what}: a full recovery ran");
            assert_eq!(stats.recovered_records, 0, "{what}");
            let got = contents(&store);
            assert!(got == oracle, "{what}: differs from a full recovery");
            assert_eq!(stats.entries, oracle_stats.entries, "{what}: entries");
            assert_eq!(
                stats.used_bytes, oracle_stats.used_bytes,
                "{what}: used bytes"
            );
            use_then_check(store, &path, got);
            die_at += if durability == "sync" { 3 } else { 1 };
        }
        assert!(
            die_at > 20,
            "{durability}: the batch had only {die_at} events"
        );
    }
}

/// The same with another process holding the store open all along: the next writer of that
/// process repairs the dead one's transaction (EOWNERDEAD) the same bounded way.
#[test]
fn a_peer_repairs_a_writer_killed_in_a_commit() {
    for die_at in [1, 5, 17, 33, 60, 95] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let peer = Store::open(&path, opts(Durability::None)).unwrap();
        let lines = run_helper("dier", &path, "none", die_at);
        let recoveries: u64 = lines[0].split(' ').nth(1).unwrap().parse().unwrap();
        let (oracle, _) = recovered_copy(&path, dir.path());
        let what = format!("killed at event {die_at}");
        assert!(whole_or_absent(&oracle), "{what}: the oracle is partial");
        // Taking the lock repairs.
        peer.put(b"peer", b"p").unwrap();
        let mut want = oracle;
        want.insert(b"peer".to_vec(), b"p".to_vec());
        assert!(
            contents(&peer) == want,
            "{what}: differs from a full recovery"
        );
        assert_eq!(peer.stats().unwrap().recoveries, recoveries, "{what}");
        assert_eq!(peer.stats().unwrap().entries, want.len() as u64, "{what}");
        use_then_check(peer, &path, want);
    }
}

/// The boot id a resumable lock file holds, as it stores it.
fn boot_id_bytes() -> [u8; 16] {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let hex: String = text.trim().chars().filter(|c| *c != '-').collect();
    let id = u128::from_str_radix(&hex, 16).unwrap();
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&((id >> 64) as u64).to_le_bytes());
    b[8..].copy_from_slice(&(id as u64).to_le_bytes());
    b
}

/// Makes the lock file of the store at `path` name another boot, as after a reboot (the page
/// cache of the files stays, which a real reboot would lose: recovery must not depend on it).
fn as_if_rebooted(path: &Path) {
    let lock = Paths::new(path).lock;
    let mut bytes = std::fs::read(&lock).unwrap();
    let id = boot_id_bytes();
    let at: Vec<usize> = (0..bytes.len() - 16)
        .filter(|&i| bytes[i..i + 16] == id)
        .collect();
    assert_eq!(at.len(), 1, "the boot id is recorded once");
    bytes[at[0]] ^= 0x5a;
    std::fs::write(&lock, &bytes).unwrap();
}

/// A lock file left by another boot (a power cut, a reboot) is never resumed: recovery replays
/// the journal, which still holds everything since the durable checkpoint.
#[test]
fn a_lock_file_from_another_boot_is_rebuilt_and_the_journal_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    // Survives the batch, then dies outside the lock.
    let lines = run_helper("dier", &path, "none", u64::MAX);
    assert!(lines.iter().any(|l| l == "survived"));
    let (oracle, _) = recovered_copy(&path, dir.path());
    as_if_rebooted(&path);
    let store = Store::open(&path, opts(Durability::None)).unwrap();
    assert!(!store.resumed_at_open());
    assert!(store.recovered_at_open(), "the journal was replayed");
    assert_eq!(contents(&store), oracle);
    use_then_check(store, &path, oracle);

    // And in the same boot, the same files, it is resumed.
    let lines = run_helper("dier", &path, "none", u64::MAX);
    assert!(lines.iter().any(|l| l == "survived"));
    let store = Store::open(&path, opts(Durability::None)).unwrap();
    assert!(store.resumed_at_open());
    assert!(!store.recovered_at_open());
}

/// A handle whose flush failed may have lost pages of the page cache: after its process dies,
/// the state is rebuilt from the durable checkpoint and the journal, not resumed.
#[test]
fn a_failed_flush_rules_out_resuming() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let lines = run_helper("failed-sync", &path, "sync", u64::MAX);
    assert_eq!(lines, ["poisoned"]);
    let store = Store::open(&path, opts(Durability::None)).unwrap();
    assert!(!store.resumed_at_open());
    for i in 0..59u32 {
        assert_eq!(
            store.get(format!("k{i}").as_bytes()).unwrap(),
            Some(format!("old{i}").into_bytes())
        );
    }
}

/// A store closed cleanly is resumed by the next first opener of the same boot: the closer's
/// state, kept, with nothing verified, rebuilt or replayed (SPEC.md §7.5). After a reboot it
/// opens from the closing snapshot instead (§7.2).
#[test]
fn a_clean_close_is_resumed_in_the_same_boot_and_loaded_from_its_snapshot_after_a_reboot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path, opts(Durability::None)).unwrap();
    base(&store);
    let model = contents(&store);
    drop(store);
    let store = Store::open(&path, opts(Durability::None)).unwrap();
    assert!(store.resumed_at_open(), "a clean close was not resumed");
    assert!(!store.recovered_at_open());
    let stats = store.stats().unwrap();
    assert!(!stats.rebuilt_at_open);
    assert_eq!(stats.entries, model.len() as u64);
    assert_eq!(contents(&store), model);
    drop(store);
    as_if_rebooted(&path);
    let store = Store::open(&path, opts(Durability::None)).unwrap();
    assert!(
        !store.resumed_at_open(),
        "a lock file of another boot was resumed"
    );
    assert!(!store.recovered_at_open());
    assert!(
        !store.stats().unwrap().rebuilt_at_open,
        "the snapshot was not used"
    );
    assert_eq!(contents(&store), model);
    use_then_check(store, &path, model);
}

/// The closing snapshot says the journal cycle is empty: a process that resumed a clean close
/// and wrote erased it before writing, so an open after a reboot replays the journal and keeps
/// the write.
#[test]
fn a_write_after_resuming_a_clean_close_erases_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path, opts(Durability::None)).unwrap();
    base(&store);
    let mut model = contents(&store);
    drop(store);
    let lines = run_helper("writer", &path, "none", u64::MAX);
    assert_eq!(lines, ["wrote resumed"]);
    model.insert(b"k1".to_vec(), b"written".to_vec());
    as_if_rebooted(&path);
    let store = Store::open(&path, opts(Durability::None)).unwrap();
    assert!(!store.resumed_at_open());
    assert!(store.recovered_at_open(), "the journal was not replayed");
    assert_eq!(contents(&store), model);
    use_then_check(store, &path, model);
}

/// A process that resumed a clean close and only read leaves the closing snapshot valid: an
/// open after a reboot still loads it instead of rebuilding.
#[test]
fn a_reader_of_a_clean_close_leaves_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path, opts(Durability::None)).unwrap();
    base(&store);
    let model = contents(&store);
    drop(store);
    let lines = run_helper("reader", &path, "none", u64::MAX);
    assert_eq!(lines, ["read"]);
    as_if_rebooted(&path);
    let store = Store::open(&path, opts(Durability::None)).unwrap();
    assert!(!store.resumed_at_open());
    assert!(
        !store.stats().unwrap().rebuilt_at_open,
        "the snapshot was erased by an open that wrote nothing"
    );
    assert_eq!(contents(&store), model);
}

/// Files put back from an older copy of themselves (same inodes, same checkpoint) after the
/// processes died are not the ones the state describes: the first opener rebuilds from them
/// instead of resuming.
#[test]
fn files_put_back_from_an_older_copy_are_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let files = Paths::new(&path);
    let lines = run_helper("dier", &path, "none", u64::MAX);
    assert!(lines.iter().any(|l| l == "survived"));
    let older: Vec<Vec<u8>> = files
        .durable()
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    let (oracle, _) = recovered_copy(&path, dir.path());
    // Another writer resumes, writes more in the same checkpoint cycle, and dies.
    let lines = run_helper("dier", &path, "none", u64::MAX);
    assert!(lines.iter().any(|l| l == "survived"));
    let now: Vec<Vec<u8>> = files
        .durable()
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert_eq!(
        now[0][..8192],
        older[0][..8192],
        "the test needs the same superblocks"
    );
    // `write` truncates and rewrites in place: the inodes stay.
    for (f, bytes) in files.durable().iter().zip(&older) {
        std::fs::write(f, bytes).unwrap();
    }
    let store = Store::open(&path, opts(Durability::None)).unwrap();
    assert!(!store.resumed_at_open());
    assert_eq!(contents(&store), oracle);
    use_then_check(store, &path, oracle);
}

/// A process that opened a cleanly closed store and only read (it wrote no record, no entry)
/// leaves a state the next opener resumes.
#[test]
fn a_reader_killed_is_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path, opts(Durability::None)).unwrap();
    // Records at the start of both journal halves: a check that read one where none is named
    // would refuse.
    base(&store);
    store.checkpoint().unwrap();
    base(&store);
    drop(store);
    let lines = run_helper("reader", &path, "none", u64::MAX);
    assert_eq!(lines, ["read"]);
    let store = Store::open(&path, opts(Durability::None)).unwrap();
    assert!(store.resumed_at_open());
    let mut model = BTreeMap::new();
    for i in 0..59u32 {
        model.insert(format!("k{i}").into_bytes(), format!("old{i}").into_bytes());
    }
    assert_eq!(contents(&store), model);
    use_then_check(store, &path, model);
}

/// A write mutex left unrecoverable (a holder that unlocked after `EOWNERDEAD` without making
/// it consistent) must not stop every later open: the first opener that cannot take it
/// rebuilds the state, mutexes included, as any first opener does.
#[test]
fn an_unrecoverable_write_mutex_is_rebuilt_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let lines = run_helper("dier", &path, "none", u64::MAX);
    assert!(lines.iter().any(|l| l == "survived"));
    let (oracle, _) = recovered_copy(&path, dir.path());
    // The write mutex is the first one in the lock file, at its first 64-byte line after the
    // magic and version; glibc keeps its kind (robust, shared) at 16.
    let lock = Paths::new(&path).lock;
    let mut bytes = std::fs::read(&lock).unwrap();
    assert_ne!(bytes[64 + 16..64 + 20], [0; 4], "not the mutex");
    // Its owner field (at 8) set to glibc's PTHREAD_MUTEX_NOTRECOVERABLE, as an unlock after
    // EOWNERDEAD without `pthread_mutex_consistent` leaves it.
    bytes[64 + 8..64 + 12].copy_from_slice(&0x7fff_fffeu32.to_le_bytes());
    std::fs::write(&lock, &bytes).unwrap();
    let store = Store::open(&path, opts(Durability::None)).unwrap();
    assert!(!store.resumed_at_open());
    assert_eq!(contents(&store), oracle);
    use_then_check(store, &path, oracle);
}
