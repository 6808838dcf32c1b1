//! Engine behaviours the crash-test found, pinned down as small deterministic tests through the
//! public API and real processes. Each names the crash-test seed that first showed it; all were
//! fixed in the engine and stay here as regression tests.

use apcdb::{Options, Store};
use std::io::Write;
use std::process::{Command, Stdio};

fn apcdb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_apcdb"))
}

/// crash-test --seed 2 --durability sync: after a kill the store no longer opened ("heap end ...
/// outside the file"). Suspected cause: a process whose view of the data file is stale (another
/// process grew it) checkpoints, recording its own smaller file size next to the shared heap end.
/// No kill is needed: another process (`apcdb load`) grows the store while this one has it open.
#[test]
fn checkpoint_by_a_process_that_did_not_see_the_file_grow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let a = Store::open(&path, Options::default()).unwrap();
    a.put(b"first", b"1").unwrap();

    // Eight 300 KiB values under keys "key0".."key7" (base64 "a2V5MA==" ...), as `apcdb load` reads them.
    let big = "A".repeat(400 << 10);
    let mut lines = String::new();
    for digit in ["MA", "MQ", "Mg", "Mw", "NA", "NQ", "Ng", "Nw"] {
        lines.push_str(&format!(
            "{{\"key\":\"a2V5{digit}==\",\"value\":\"{big}\",\"expires_at_ms\":0}}\n"
        ));
    }
    let mut load = apcdb()
        .arg("load")
        .arg(&path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    load.stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(load.wait().unwrap().success());

    a.checkpoint().unwrap();
    drop(a);
    let again =
        Store::open(&path, Options::default()).expect("store must reopen after a checkpoint");
    assert_eq!(
        again.get(b"key0").unwrap().map(|v| v.len()),
        Some(300 << 10)
    );
}

/// Starts `apcdb crash-test <args> --store PATH` and returns once it printed `ready`.
fn start_helper(args: &[&str], path: &std::path::Path, ready: &str) -> std::process::Child {
    let mut child = apcdb()
        .args(args)
        .arg("--store")
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim_end(), ready);
    child
}

/// Starts a process that grows the store by `grow` bytes, checkpoints and then holds the write lock;
/// returns once it holds it.
fn lock_holder(path: &std::path::Path, grow: u64) -> std::process::Child {
    start_helper(
        &["crash-test", "hold-lock", "--grow", &grow.to_string()],
        path,
        "holding",
    )
}

/// Opens a store, writes to it, then lets another process grow it by 3 MiB and die (SIGKILL)
/// holding the write lock: this handle has not seen the growth.
fn open_after_a_grown_lock_holder_died(path: &std::path::Path) -> Store {
    let a = Store::open(path, Options::default()).unwrap();
    a.put(b"a", b"1").unwrap();
    let mut holder = lock_holder(path, 3 << 20);
    holder.kill().unwrap();
    holder.wait().unwrap();
    a
}

/// crash-test --seed 13 --durability periodic: a worker's recovery after a kill failed with "file is
/// 1048576 bytes but the last checkpoint recorded 2097152". Recovery validates the superblock
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
/// `lock()` returns the recovery error through `?`, dropping the guard, which unlocks the robust
/// mutex without `pthread_mutex_consistent`: POSIX then makes it permanently unusable.
#[test]
fn a_failed_recovery_does_not_make_the_lock_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let a = open_after_a_grown_lock_holder_died(&dir.path().join("s.db"));
    let _first = a.put(b"b", b"2"); // failed through bug 3, which triggered this one
    match a.put(b"c", b"3") {
        Ok(()) => {}
        Err(e) => assert!(!e.to_string().contains("unrecoverable"), "{e}"),
    }
}

/// crash-test --durability none --max-size 1500000 (seed 3; timing-dependent, about one run in
/// five): a worker's `scan_prefix` stalled for 7 s. Lock-free reads restart whenever a
/// reorganisation (every checkpoint) changed the layout under them, with no fallback to the
/// lock, so a scan longer than the gap between two checkpoints can starve for as long as another
/// process keeps checkpointing. `apcdb dump` of 32 MiB took 0.16 s alone and 50 s beside one
/// `crash-test churn` process; the 128 MiB scan below had not finished after 60 s. Fixed in the
/// engine (c2337a2: a read invalidated three times runs under the write lock).
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
    let mut churn = start_helper(&["crash-test", "churn"], &path, "churning");
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
/// compare_and_swap. Suspected cause: a process that dies while it holds readers out (sequence
/// number odd, e.g. mid-checkpoint) leaves the number odd; the recovery that follows runs its own
/// `readers_out` as "nested" (it sees it odd) and never makes it even, so lock-free reads wait for
/// a writer forever, in every process, until all of them close. Reproduced exactly with the
/// `die-in-checkpoint` helper: the first `get` afterwards never returned. Fixed in the engine
/// (6244aa1: recovery leaves the sequence even).
#[test]
fn reads_go_on_after_a_process_died_holding_readers_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let a = Store::open(&path, Options::default()).unwrap();
    a.put(b"x", b"1").unwrap();
    let status = apcdb()
        .args(["crash-test", "die-in-checkpoint", "--store"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(
        !status.success(),
        "the helper must die, not finish: {status}"
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

/// Issue 8, finding 12: a store whose recorded maximum size this process cannot reserve (here a
/// 1 TiB one under `ulimit -v` of 4 GiB) used to fail every open ("mmap failed ... Cannot allocate
/// memory") even after the configured size was corrected. It opens reserving what the options ask
/// (`apcdb stats` uses the default 1 GiB), and the next checkpoint records that size.
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

    let stats = |limit_kib: u64| {
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v {limit_kib} && exec \"$0\" stats \"$1\" --json"
            ))
            .arg(env!("CARGO_BIN_EXE_apcdb"))
            .arg(&path)
            .output()
            .unwrap()
    };
    let out = stats(4 << 20);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(json.contains("\"max_size\":1073741824"), "{json}");
    let store = Store::open(&path, Options::default()).unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"v".to_vec()));
}
