//! Engine behaviours the crash-test found, pinned down as small deterministic tests through the
//! public API and real processes. Each names the crash-test seed that first showed it; all were
//! fixed in the engine and stay here as regression tests.
//!
//! The other process is this test binary run again (see `common`): `helper` below plays the roles
//! `grow`, `hold-lock`, `churn`, `die-in-checkpoint`, `die-in-recovery` and `max-size`. A role that must be reached
//! before the test goes on prints a ready line on stdout, which `spawn_helper` waits for.

mod common;

use apcdb::{Options, Store, Update};
use common::{expect_line, helper_command, helper_role, say};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Starts the helper in `role` and returns once it printed `ready` (the test harness prints its
/// own lines on the same stdout, so other lines are skipped).
fn spawn_helper(role: &str, path: &Path, ready: &str, grow: u64) -> Child {
    let mut child = helper_command(role, path)
        .env("APCDB_HELPER_GROW", grow.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    expect_line(&mut out, ready);
    child
}

/// The other process of the tests below; does nothing when run without `APCDB_HELPER`.
#[test]
#[ignore = "a helper process the other tests start; not a test"]
fn helper() {
    let Some((role, path)) = helper_role() else {
        return;
    };
    let grow: u64 = std::env::var("APCDB_HELPER_GROW")
        .ok()
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    match role.as_str() {
        "grow" => grow_by_another_process(&path),
        "hold-lock" => hold_lock(&path, grow),
        "churn" => churn(&path),
        "die-in-checkpoint" => die_in_checkpoint(&path),
        "die-in-recovery" => die_in_recovery(&path),
        "max-size" => {
            let store = Store::open(&path, Options::default()).unwrap();
            say(&format!("max_size {}", store.stats().unwrap().max_size));
        }
        _ => panic!("unknown helper role {role}"),
    }
}

/// Small sizes so that growth and journal wrap happen within a few writes.
fn helper_options() -> Options {
    Options::default()
        .initial_size(1 << 20)
        .max_size(1 << 30)
        .journal_size(8 << 20)
}

/// Stores eight 300 KiB values "key0".."key7" without a flush each, then checkpoints: the file
/// grows by megabytes under whoever else has it open.
fn grow_by_another_process(path: &Path) {
    let store = Store::open(path, Options::default().durability(apcdb::Durability::None)).unwrap();
    let value = vec![0u8; 300 << 10];
    for i in 0..8 {
        store.put(format!("key{i}").as_bytes(), &value).unwrap();
    }
    store.checkpoint().unwrap();
}

/// Grows the store by `grow` bytes, checkpoints, then sits inside an `update` callback holding the
/// write lock until it is killed: a lock holder killed at a known moment.
fn hold_lock(path: &Path, grow: u64) {
    let store = Store::open(path, helper_options()).unwrap();
    let chunk = vec![b'g'; 256 << 10];
    for i in 0..grow.div_ceil(chunk.len() as u64) {
        store.put(format!("grow/{i}").as_bytes(), &chunk).unwrap();
    }
    store.checkpoint().unwrap();
    store
        .update(b"held", |_| {
            say("holding");
            loop {
                std::thread::park();
            }
            #[allow(unreachable_code)]
            (Update::Keep, ())
        })
        .unwrap();
}

/// Writes and checkpoints in a tight loop until killed, so the layout keeps changing under a
/// reader in another process.
fn churn(path: &Path) {
    let store = Store::open(path, helper_options().durability(apcdb::Durability::None)).unwrap();
    for i in 0u64.. {
        store
            .put(format!("churn/{}", i % 64).as_bytes(), &i.to_le_bytes())
            .unwrap();
        store.checkpoint().unwrap();
        if i == 0 {
            say("churning");
        }
    }
}

/// Aborts (no cleanup) while lock-free readers are held out: at the first large write to the data
/// file, the zero fill of a new, bigger index, which the rebuild makes with readers out. (It used
/// to die in a checkpoint's copy between index copies; checkpoints no longer hold readers out.)
struct DieInIndexRebuild;

impl apcdb::StorageIo for DieInIndexRebuild {
    fn wants_mapped_writes(&self) -> bool {
        true
    }
    fn data_written(&self, _off: u64, len: u64) {
        if len >= 32 << 10 {
            std::process::abort();
        }
    }
}

fn die_in_checkpoint(path: &Path) {
    let store = Store::open(path, helper_options().io(Arc::new(DieInIndexRebuild))).unwrap();
    // Enough keys for the default index of 4096 slots to grow.
    for i in 0..5000u32 {
        store.put(format!("dier/{i}").as_bytes(), b"x").unwrap();
    }
    panic!("the index did not grow: nothing to die in");
}

/// Counts the data file's writes and flushes (each an event), and aborts the process (no
/// cleanup, like `kill -9`) at event `die_at` (0: never).
struct DieAtEvent {
    events: std::sync::atomic::AtomicU64,
    die_at: u64,
}

impl DieAtEvent {
    fn event(&self) {
        let n = self.events.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.die_at {
            std::process::abort();
        }
    }
}

impl apcdb::StorageIo for DieAtEvent {
    fn sync_map(
        &self,
        kind: apcdb::FileKind,
        range: &apcdb::MappedRange<'_>,
    ) -> std::io::Result<()> {
        if kind == apcdb::FileKind::Data {
            self.event();
        }
        apcdb::RealIo.sync_map(kind, range)
    }
    fn wants_mapped_writes(&self) -> bool {
        true
    }
    fn data_written(&self, _off: u64, _len: u64) {
        self.event();
    }
}

fn die_in_recovery(path: &Path) {
    let die_at = std::env::var("APCDB_DIE_AT").unwrap().parse().unwrap();
    let io = Arc::new(DieAtEvent {
        events: Default::default(),
        die_at,
    });
    let _store = Store::open(path, recovery_options().io(io)).unwrap();
    say("recovered without dying");
}

fn recovery_options() -> Options {
    Options::default()
        .durability(apcdb::Durability::None)
        .index_slots(256)
}

/// A store as a `kill -9` of its only writer leaves it (the files copied while it is open):
/// puts, overwrites and deletes over a checkpoint, a long free run in the heap, and hundreds of
/// records in the journal. Returns what it must hold.
fn crashed_store(path: &Path) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model = std::collections::BTreeMap::new();
    let live = path.with_extension("live");
    let store = Store::open(&live, recovery_options()).unwrap();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut churn = |store: &Store, n: u32, model: &mut std::collections::BTreeMap<_, _>| {
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = format!("key{}", x % 400).into_bytes();
            if x.is_multiple_of(7) {
                store.delete(&key).unwrap();
                model.remove(&key);
            } else {
                let value = vec![(x >> 8) as u8; (x >> 16) as usize % 1200];
                store.put(&key, &value).unwrap();
                model.insert(key, value);
            }
        }
    };
    churn(&store, 600, &mut model);
    for i in 0..100u32 {
        store.put(format!("run{i}").as_bytes(), &[7; 1400]).unwrap();
    }
    store.checkpoint().unwrap();
    for i in 0..100u32 {
        store.delete(format!("run{i}").as_bytes()).unwrap();
    }
    store.checkpoint().unwrap();
    churn(&store, 700, &mut model);
    for suffix in ["", ".journal"] {
        let name = |p: &Path| format!("{}{suffix}", p.display());
        std::fs::copy(name(&live), name(path)).unwrap();
    }
    drop(store);
    model
}

/// Recovery killed at any of its writes or flushes (replaying, checkpointing, linking the free
/// space it held back) leaves a store that the next open recovers whole: every key as the
/// crashed writer left it, and a clean check.
#[test]
fn recovery_killed_anywhere_recovers_on_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = dir.path().join("crashed.db");
    let model = crashed_store(&crashed);
    let copy = |to: &Path| {
        for suffix in ["", ".journal"] {
            let name = |p: &Path| format!("{}{suffix}", p.display());
            std::fs::copy(name(&crashed), name(to)).unwrap();
        }
        let _ = std::fs::remove_file(format!("{}.lock", to.display()));
    };
    let check = |path: &Path, what: &str| {
        let store = Store::open(path, recovery_options()).unwrap();
        let got: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = store
            .scan_prefix(b"")
            .unwrap()
            .into_iter()
            .map(|(k, e)| (k, e.value))
            .collect();
        assert!(got == model, "{what}: contents differ");
        drop(store);
        let report = apcdb::verify::check(path).unwrap();
        assert!(report.problems.is_empty(), "{what}: {:?}", report.problems);
    };
    // How many events a whole recovery has.
    let path = dir.path().join("count.db");
    copy(&path);
    let io = Arc::new(DieAtEvent {
        events: Default::default(),
        die_at: 0,
    });
    let store = Store::open(&path, recovery_options().io(io.clone())).unwrap();
    let total = io.events.load(Ordering::SeqCst);
    assert!(store.stats().unwrap().recovered_records > 500);
    drop(store);
    assert!(total > 1000, "{total} events");
    // Early and late in replay, around the checkpoint, and in the linking after it.
    let mut points: Vec<u64> = (1..=12).map(|i| total * i / 13).collect();
    points.extend((1..=6).map(|back| total - back));
    for die_at in points {
        let path = dir.path().join(format!("die{die_at}.db"));
        copy(&path);
        let out = helper_command("die-in-recovery", &path)
            .env("APCDB_DIE_AT", die_at.to_string())
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "event {die_at} of {total}: the helper did not die: {out:?}"
        );
        check(&path, &format!("killed at event {die_at} of {total}"));
    }
}

/// crash-test --seed 2 --durability sync: after a kill the store no longer opened ("heap end ...
/// outside the file"). Cause: a process whose view of the data file is stale (another process grew
/// it) checkpointed, recording its own smaller file size next to the shared heap end. No kill is
/// needed: another process grows the store while this one has it open.
#[test]
fn checkpoint_by_a_process_that_did_not_see_the_file_grow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let a = Store::open(&path, Options::default()).unwrap();
    a.put(b"first", b"1").unwrap();

    let out = helper_command("grow", &path).output().unwrap();
    assert!(out.status.success(), "the growing process failed: {out:?}");

    a.checkpoint().unwrap();
    drop(a);
    let again =
        Store::open(&path, Options::default()).expect("store must reopen after a checkpoint");
    assert_eq!(
        again.get(b"key0").unwrap().map(|v| v.len()),
        Some(300 << 10)
    );
}

/// Opens a store, writes to it, then lets another process grow it by 3 MiB and die (SIGKILL)
/// holding the write lock: this handle has not seen the growth.
fn open_after_a_grown_lock_holder_died(path: &Path) -> Store {
    let a = Store::open(path, Options::default()).unwrap();
    a.put(b"a", b"1").unwrap();
    let mut holder = spawn_helper("hold-lock", path, "holding", 3 << 20);
    holder.kill().unwrap();
    holder.wait().unwrap();
    a
}

/// crash-test --seed 13 --durability periodic: a worker's recovery after a kill failed with "file is
/// 1048576 bytes but the last checkpoint recorded 2097152". Recovery validated the superblock
/// against this process's cached file length, which is stale when another process grew the file.
#[test]
fn recovery_in_a_process_that_did_not_see_the_file_grow() {
    let dir = tempfile::tempdir().unwrap();
    let a = open_after_a_grown_lock_holder_died(&dir.path().join("s.db"));
    a.put(b"b", b"2")
        .expect("the write after the lock holder died must recover and succeed");
    assert_eq!(a.get(b"grow/0").unwrap().map(|v| v.len()), Some(256 << 10));
}

/// crash-test --seed 13 --durability periodic, second violation: once one process's recovery
/// failed, every later write in every process failed with "the store's lock is unrecoverable".
/// `lock()` returned the recovery error through `?`, dropping the guard, which unlocked the robust
/// mutex without `pthread_mutex_consistent`: POSIX then makes it permanently unusable.
#[test]
fn a_failed_recovery_does_not_make_the_lock_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let a = open_after_a_grown_lock_holder_died(&dir.path().join("s.db"));
    // This write failed through the stale-length bug above, which triggered this one.
    let _first = a.put(b"b", b"2");
    match a.put(b"c", b"3") {
        Ok(()) => {}
        Err(e) => assert!(!e.to_string().contains("unrecoverable"), "{e}"),
    }
}

/// crash-test --durability none --max-size 1500000 (seed 3; timing-dependent, about one run in
/// five): a worker's `scan_prefix` stalled for 7 s. Lock-free reads restart whenever a
/// reorganisation (every checkpoint) changed the layout under them, and had no fallback to the
/// lock, so a scan longer than the gap between two checkpoints could starve for as long as another
/// process kept checkpointing: a 32 MiB dump took 0.16 s alone and 50 s beside one churning
/// process, and the 128 MiB scan below had not finished after 60 s. Fixed by running a read that
/// was invalidated three times under the write lock.
#[test]
fn a_long_scan_finishes_while_another_process_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path, Options::default().max_size(1 << 30)).unwrap();
    let big = vec![b'v'; 1 << 20];
    for i in 0..128u32 {
        store
            .put(format!("big/{i}").as_bytes(), &big[..big.len() - 64])
            .unwrap();
    }
    let mut churn = spawn_helper("churn", &path, "churning", 0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(store.scan_prefix(b"big/").map(|v| v.len()));
    });
    // Not a speed test: a hang detector. Alone the scan takes well under a second.
    let outcome = rx.recv_timeout(std::time::Duration::from_secs(60));
    churn.kill().unwrap();
    churn.wait().unwrap();
    assert_eq!(outcome.expect("scan_prefix starved for 60 s").unwrap(), 128);
}

/// crash-test --seed 201 --durability sync: a worker stayed silent 6.7 s inside get +
/// compare_and_swap. Cause: a process that dies while it holds readers out (sequence number odd,
/// e.g. mid-checkpoint) left the number odd; the recovery that followed ran its own `exclude_readers`
/// as "nested" (it saw it odd) and never made it even, so lock-free reads waited for a writer
/// forever, in every process, until all of them closed. Reproduced exactly by the
/// `die-in-checkpoint` helper: the first `get` afterwards never returned. Fixed by recovery
/// leaving the sequence even.
#[test]
fn reads_go_on_after_a_process_died_holding_readers_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let a = Store::open(&path, Options::default()).unwrap();
    a.put(b"x", b"1").unwrap();
    let out = helper_command("die-in-checkpoint", &path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.signal(),
        Some(libc::SIGABRT),
        "the helper must die inside the index rebuild, not finish: {out}"
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let first = a.get(b"x").map_err(|e| e.to_string());
        let write = a.put(b"y", b"2").map_err(|e| e.to_string());
        let second = a.get(b"dier/7").map_err(|e| e.to_string());
        let _ = tx.send((first, write, second));
    });
    // A hang detector, not a speed test: these take microseconds.
    let (first, write, second) = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("reads hang");
    assert_eq!(first.unwrap(), Some(b"1".to_vec()));
    write.unwrap();
    assert_eq!(second.unwrap(), Some(b"x".to_vec()));
}

/// A store whose recorded maximum size this process cannot reserve (here 1 TiB under `ulimit -v`
/// of 4 GiB) used to fail every open ("mmap failed ... Cannot allocate memory"), even after the
/// configured size was corrected. It opens reserving what the options ask (the default 1 GiB),
/// and can grow the file that far (SPEC.md §9).
#[test]
fn a_recorded_max_size_that_cannot_be_reserved_falls_back_to_the_options() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let s = Store::open(&path, Options::default()).unwrap();
    s.put(b"k", b"v").unwrap();
    drop(s);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    use apcdb::format::{SUPERBLOCK_LEN, SUPERBLOCK_OFFSETS};
    let mut copies = [[0u8; SUPERBLOCK_LEN]; 2];
    for (c, at) in copies.iter_mut().zip(SUPERBLOCK_OFFSETS) {
        f.read_exact_at(c, at).unwrap();
    }
    let len = f.metadata().unwrap().len();
    let mut sb = copies
        .iter()
        .filter_map(|c| apcdb::UncheckedSuperblock::decode(c).ok())
        .max_by_key(|sb| sb.epoch())
        .unwrap()
        .validate(len)
        .unwrap();
    sb.max_size = 1 << 40;
    f.write_all_at(&sb.encode(), SUPERBLOCK_OFFSETS[(sb.epoch % 2) as usize])
        .unwrap();
    drop(f);

    // The helper, under a 4 GiB address-space limit.
    let helper = helper_command("max-size", &path);
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v $((4 << 20)) && exec \"$0\" \"$@\"")
        .arg(helper.get_program())
        .args(helper.get_args())
        .envs(helper.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.lines().any(|l| l == "max_size 1073741824"),
        "{stdout}"
    );
    let store = Store::open(&path, Options::default()).unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
}
