//! `Options::read_only` (SPEC.md §6.8): a handle that never creates, locks or writes a file,
//! needs only read permission, shows the checkpoint plus the journal replayed in memory, and
//! follows writers' checkpoints with whole, never older, values.

mod common;

use apcdb::{Durability, Error, Options, Paths, Store, Visit};
use common::{expect_line, helper_command, helper_role, say};
use std::collections::BTreeMap;
use std::io::BufReader;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn small() -> Options {
    Options::default()
        .journal_size(256 << 10)
        .initial_size(256 << 10)
        .max_size(64 << 20)
        .durability(Durability::None)
}

/// Each file's bytes, length, mtime and ctime (a chmod, chown or write changes one of them), or
/// None when missing.
type Fingerprint = Vec<Option<(Vec<u8>, i64, i64, i64, i64)>>;

fn fingerprint(path: &Path) -> Fingerprint {
    Paths::new(path)
        .all()
        .iter()
        .map(|p| {
            let md = std::fs::symlink_metadata(p).ok()?;
            let bytes = std::fs::read(p).unwrap();
            Some((
                bytes,
                md.mtime(),
                md.mtime_nsec(),
                md.ctime(),
                md.ctime_nsec(),
            ))
        })
        .collect()
}

fn value_of(key: &str, n: u64) -> Vec<u8> {
    // Long enough to span cache lines; every byte tied to the key and the counter, so a torn
    // or mixed value cannot pass `check_value`.
    format!("{key}={n};").repeat(12).into_bytes()
}

/// The counter of a whole value of `key`, or a panic naming what was read.
fn check_value(key: &str, v: &[u8]) -> u64 {
    let text = std::str::from_utf8(v).expect("value is not text: torn");
    let first = text.split(';').next().unwrap();
    let n: u64 = first
        .strip_prefix(&format!("{key}="))
        .unwrap_or_else(|| panic!("value of {key} is {text:?}"))
        .parse()
        .unwrap();
    assert_eq!(v, value_of(key, n), "torn value of {key}");
    n
}

/// The roles the test binary plays in other processes.
#[test]
#[ignore]
fn helper() {
    let Some((role, path)) = helper_role() else {
        return;
    };
    match role.as_str() {
        // Leaves a store that needs recovery: checkpointed entries, then journal-only writes
        // (overwrites, a delete, a new key), then waits to be killed.
        "write-and-wait" => {
            let s = Store::open(&path, small()).unwrap();
            for i in 0..50 {
                s.put(format!("k{i}").as_bytes(), &value_of(&format!("k{i}"), 1))
                    .unwrap();
            }
            s.checkpoint().unwrap();
            for i in 0..10 {
                s.put(format!("k{i}").as_bytes(), &value_of(&format!("k{i}"), 2))
                    .unwrap();
            }
            s.delete(b"k10").unwrap();
            s.put(b"journal-only", b"j").unwrap();
            s.sync().unwrap();
            say("ready");
            std::thread::sleep(Duration::from_secs(600));
        }
        // Overwrites k0..k49 with growing counters, checkpointing often, until told to stop.
        "writer" => {
            let s = Store::open(&path, small()).unwrap();
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let stop2 = stop.clone();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                stop2.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            say("writing");
            // Counters go on from where a killed predecessor stopped (roughly: from the clock).
            let mut n: u64 = std::env::var("APCDB_RO_START").map_or(0, |v| v.parse().unwrap());
            let every: u64 = std::env::var("APCDB_RO_CKPT").map_or(400, |v| v.parse().unwrap());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let key = format!("k{}", n % 50);
                s.put(key.as_bytes(), &value_of(&key, n)).unwrap();
                if n.is_multiple_of(every) {
                    s.checkpoint().unwrap();
                }
            }
            say(&format!("wrote {n}"));
        }
        other => panic!("unknown role {other}"),
    }
}

/// A store whose writer was killed after journal-only writes: the read-only handle sees them
/// (replayed in memory), says recovery is needed, refuses every change, and leaves every file,
/// the missing lock file included, exactly as it found it.
#[test]
fn sees_the_journal_without_recovering_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut child = helper_command("write-and-wait", &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    expect_line(&mut BufReader::new(child.stdout.take().unwrap()), "ready");
    child.kill().unwrap();
    child.wait().unwrap();

    let before = fingerprint(&path);
    let ro = Store::open(&path, Options::default().read_only()).unwrap();
    let view = ro.read_only_view().unwrap();
    assert_eq!(view.journal_records, 12, "{view:?}");
    // The counters say the same (they once wrapped below zero: no shared LSN here).
    assert_eq!(ro.stats().unwrap().journal_records, 12);
    assert!(!view.in_use && !view.closed_cleanly && view.needs_recovery());
    for i in 0..50 {
        let key = format!("k{i}");
        let got = ro.get(key.as_bytes()).unwrap();
        match i {
            0..=9 => assert_eq!(check_value(&key, &got.unwrap()), 2),
            10 => assert_eq!(got, None),
            _ => assert_eq!(check_value(&key, &got.unwrap()), 1),
        }
    }
    assert_eq!(ro.get(b"journal-only").unwrap(), Some(b"j".to_vec()));
    let mut buf = Vec::new();
    assert!(ro.get_into(b"k3", &mut buf).unwrap().is_some());
    assert_eq!(check_value("k3", &buf), 2);
    let scanned: BTreeMap<_, _> = ro
        .scan_prefix(b"")
        .unwrap()
        .into_iter()
        .map(|(k, e)| (k, e.value))
        .collect();
    assert_eq!(scanned.len(), 50);
    let metas = ro.scan_prefix_with(b"k", |_, _| Visit::Meta).unwrap();
    assert_eq!(metas.len(), 49);
    let stats = ro.stats().unwrap();
    assert_eq!(stats.entries, 50);
    assert_eq!(stats.checkpoint_epoch, view.epoch);
    assert!(stats.journal_used > 0);

    for e in [
        ro.put(b"x", b"y").err(),
        ro.delete(b"k1").err(),
        ro.add(b"new", b"y").err(),
        ro.batch(|b| b.put(b"x", b"y")).err(),
        ro.clear().err(),
        ro.checkpoint().err(),
        ro.sync().err(),
        ro.set_max_size(1 << 30).err(),
    ] {
        let e = e.expect("a read-only handle accepted a change");
        assert!(matches!(e, Error::ReadOnly { .. }), "{e}");
        assert!(e.to_string().contains("read-only"), "{e}");
    }
    drop(ro);
    assert_eq!(
        fingerprint(&path),
        before,
        "the read-only handle changed a file"
    );

    // Without a lock file (it holds nothing durable): still opens, and does not make one.
    std::fs::remove_file(Paths::new(&path).lock).unwrap();
    let before = fingerprint(&path);
    let ro = Store::open(&path, Options::default().read_only()).unwrap();
    assert_eq!(ro.get(b"journal-only").unwrap(), Some(b"j".to_vec()));
    drop(ro);
    assert_eq!(fingerprint(&path), before);
    assert!(!Paths::new(&path).lock.exists());

    // Recovery then gives exactly what the read-only handle showed.
    let rw = Store::open(&path, small()).unwrap();
    assert!(rw.recovered_at_open());
    let recovered: BTreeMap<_, _> = rw
        .scan_prefix(b"")
        .unwrap()
        .into_iter()
        .map(|(k, e)| (k, e.value))
        .collect();
    assert_eq!(recovered, scanned);
    drop(rw);
    let ro = Store::open(&path, Options::default().read_only()).unwrap();
    let view = ro.read_only_view().unwrap();
    assert!(view.closed_cleanly && !view.needs_recovery() && view.journal_records == 0);
}

/// In one process beside a writer: the view is taken at open (later writes are not seen), a
/// checkpoint by the writer gives a newer view, and a clear in the journal hides the checkpoint.
#[test]
fn the_view_moves_on_at_a_writers_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let rw = Store::open(&path, small()).unwrap();
    rw.put(b"a", b"1").unwrap();
    rw.put(b"b", b"1").unwrap();
    rw.checkpoint().unwrap();
    rw.put(b"c", b"journal").unwrap();
    rw.delete(b"a").unwrap();
    rw.put_with_expiry(b"expired", b"x", 1).unwrap();

    let ro = Store::open(&path, Options::default().read_only()).unwrap();
    let v = ro.read_only_view().unwrap();
    assert!(v.in_use && !v.needs_recovery() && v.views == 1, "{v:?}");
    assert_eq!(v.journal_records, 3);
    assert_eq!(ro.get(b"a").unwrap(), None);
    assert_eq!(ro.get(b"c").unwrap(), Some(b"journal".to_vec()));
    assert_eq!(ro.get(b"expired").unwrap(), None);
    assert_eq!(ro.scan_prefix(b"").unwrap().len(), 2);
    // The shared counters of the processes using the store, read from their lock file.
    let (r, w) = (ro.stats().unwrap(), rw.stats().unwrap());
    assert_eq!(
        (r.inserts, r.deletes, r.checkpoints),
        (w.inserts, w.deletes, w.checkpoints)
    );
    assert!(r.inserts >= 4, "{r:?}");

    rw.put(b"d", b"after the view").unwrap();
    assert_eq!(ro.get(b"d").unwrap(), None, "the view is taken at open");
    rw.checkpoint().unwrap();
    assert_eq!(ro.get(b"d").unwrap(), Some(b"after the view".to_vec()));
    let v = ro.read_only_view().unwrap();
    assert_eq!((v.views, v.journal_records), (2, 0));

    rw.clear().unwrap();
    rw.put(b"e", b"after the clear").unwrap();
    let ro2 = Store::open(&path, Options::default().read_only()).unwrap();
    let keys: Vec<_> = ro2
        .scan_prefix(b"")
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(keys, vec![b"e".to_vec()]);
    assert_eq!(ro2.get(b"b").unwrap(), None);
    assert_eq!(ro2.stats().unwrap().entries, 1);
    // The older handle still shows its view until a checkpoint.
    assert_eq!(ro.get(b"b").unwrap(), Some(b"1".to_vec()));
    rw.checkpoint().unwrap();
    assert_eq!(ro.get(b"b").unwrap(), None);
    assert_eq!(ro.get(b"e").unwrap(), Some(b"after the clear".to_vec()));
}

/// Another process overwrites keys and checkpoints all the time while this one reads through a
/// read-only handle: every value read is whole, no key ever goes back to an older value, reads
/// keep working across the writer's checkpoints (new views), and the writer is not held up.
#[test]
fn reads_stay_whole_and_monotonic_while_another_process_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = Store::open(&path, small()).unwrap();
        for i in 0..50 {
            let key = format!("k{i}");
            s.put(key.as_bytes(), &value_of(&key, 0)).unwrap();
        }
    }
    let mut child = helper_command("writer", &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    expect_line(&mut out, "writing");
    let ro = Store::open(&path, Options::default().read_only()).unwrap();
    let mut last = [0u64; 50];
    let started = Instant::now();
    let mut reads = 0u64;
    while started.elapsed() < Duration::from_secs(3) {
        for (i, seen) in last.iter_mut().enumerate() {
            let key = format!("k{i}");
            let n = check_value(&key, &ro.get(key.as_bytes()).unwrap().unwrap());
            assert!(n >= *seen, "{key} went back from {seen} to {n}");
            *seen = n;
            reads += 1;
        }
        for (k, e) in ro.scan_prefix(b"k").unwrap() {
            check_value(std::str::from_utf8(&k).unwrap(), &e.value);
        }
    }
    use std::io::Write;
    writeln!(child.stdin.take().unwrap()).unwrap();
    let wrote = expect_line(&mut out, "wrote ");
    assert!(child.wait().unwrap().success());
    let views = ro.read_only_view().unwrap().views;
    eprintln!("{reads} reads, {views} views, writer: {wrote}");
    assert!(
        views > 3,
        "the writer's checkpoints were not followed: {views} views"
    );
    assert!(last.iter().any(|&n| n > 0));
}

/// A scan that takes longer than the writer takes between checkpoints (a checkpoint every few
/// writes, 20,000 entries to walk) still finishes, and returns every entry that existed
/// throughout exactly once, whole, and the keys being overwritten with whole values.
#[test]
fn a_scan_longer_than_the_writers_checkpoints_finds_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = Store::open(&path, small()).unwrap();
        s.batch(|b| {
            for i in 0..50 {
                let key = format!("k{i}");
                b.put(key.as_bytes(), &value_of(&key, 0));
            }
        })
        .unwrap();
        for i in 0..20_000 {
            let key = format!("s{i}");
            s.put(key.as_bytes(), &value_of(&key, 7)).unwrap();
        }
    }
    let mut child = helper_command("writer", &path)
        .env("APCDB_RO_CKPT", "5")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    expect_line(&mut out, "writing");
    let ro = Store::open(&path, Options::default().read_only()).unwrap();
    let started = Instant::now();
    let mut scans = 0;
    while started.elapsed() < Duration::from_secs(3) || scans < 3 {
        let all = ro.scan_prefix(b"").unwrap();
        let mut keys = std::collections::HashSet::new();
        for (k, e) in &all {
            let key = std::str::from_utf8(k).unwrap();
            let n = check_value(key, &e.value);
            if key.starts_with('s') {
                assert_eq!(n, 7);
            }
            assert!(keys.insert(k.clone()), "{key} returned twice");
        }
        assert_eq!(all.len(), 20_050, "entries missing");
        let metas = ro.scan_prefix_with(b"s1", |_, _| Visit::Meta).unwrap();
        assert_eq!(metas.len(), 11_111);
        scans += 1;
    }
    use std::io::Write;
    writeln!(child.stdin.take().unwrap()).unwrap();
    expect_line(&mut out, "wrote ");
    assert!(child.wait().unwrap().success());
    let views = ro.read_only_view().unwrap().views;
    eprintln!("{scans} scans of 20,050 entries, {views} views");
    assert!(
        views > 2,
        "the writer did not checkpoint under the scans: {views} views"
    );
}

/// A checkpoint in the middle of a scan moves the keys that were only in the journal (the
/// overlay) into index slots the scan may have passed: they must still be returned, once.
#[test]
fn keys_checkpointed_behind_a_scan_are_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    // A journal with room for every record (a cycle holds at most journal_size / 256 records).
    let rw = Store::open(&path, small().journal_size(4 << 20).index_slots(16384)).unwrap();
    for i in 0..2000 {
        rw.put(format!("b{i}").as_bytes(), b"base").unwrap();
    }
    rw.checkpoint().unwrap();
    for i in 0..2000 {
        rw.put(format!("n{i}").as_bytes(), b"journal").unwrap();
    }
    let ro = Store::open(&path, Options::default().read_only()).unwrap();
    assert_eq!(ro.read_only_view().unwrap().journal_records, 2000);
    let mut seen_base = 0;
    let got = ro
        .scan_prefix_with(b"", |k, _| {
            if k[0] == b'b' {
                seen_base += 1;
                // Three quarters through the index: checkpoint the journal's keys into it.
                if seen_base == 1500 {
                    rw.checkpoint().unwrap();
                }
            }
            Visit::Meta
        })
        .unwrap();
    assert!(seen_base > 1500);
    assert_eq!(ro.read_only_view().unwrap().views, 2);
    let keys: std::collections::HashSet<_> = got.iter().map(|s| s.key.clone()).collect();
    assert_eq!(keys.len(), got.len(), "a key was returned twice");
    assert_eq!(got.len(), 4000, "keys were lost");
}

/// Writers are SIGKILLed at random moments (inside writes, checkpoints, recoveries) and replaced
/// by new ones, which recover the store, while this process reads through one read-only handle:
/// no read fails, every value is whole, and no key ever goes back to an older value (what a view
/// showed from the journal, recovery replays too).
#[test]
fn reads_stay_whole_while_writers_are_killed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = Store::open(&path, small()).unwrap();
        for i in 0..50 {
            let key = format!("k{i}");
            s.put(key.as_bytes(), &value_of(&key, 0)).unwrap();
        }
    }
    let ro = std::sync::Arc::new(Store::open(&path, Options::default().read_only()).unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ro2, stop2) = (ro.clone(), stop.clone());
    let reader = std::thread::spawn(move || {
        let mut last = [0u64; 50];
        let mut reads = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            for (i, seen) in last.iter_mut().enumerate() {
                let key = format!("k{i}");
                let v = ro2.get(key.as_bytes()).unwrap().unwrap();
                let n = check_value(&key, &v);
                assert!(n >= *seen, "{key} went back from {seen} to {n}");
                *seen = n;
                reads += 1;
            }
        }
        reads
    });
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < Duration::from_secs(4) {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        let mut child = helper_command("writer", &path)
            .env("APCDB_RO_START", start.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Anywhere from inside the open (recovery) to well into the writes.
        std::thread::sleep(Duration::from_millis(5 + (start % 60) as u64));
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reader
        .join()
        .expect("a read failed or saw a torn or older value");
    let views = ro.read_only_view().unwrap().views;
    eprintln!("{kills} kills, {reads} reads, {views} views");
    assert!(views > 5, "{views} views");
}

/// Only read permission is needed: a process running as `nobody` reads a store of root's whose
/// files it may read (0644) but not write, with no lock file it could use. (Root is needed to
/// set this up; the test is skipped otherwise.)
#[test]
fn a_user_who_may_only_read_can_open_read_only() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to make a user who may only read");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("s.db");
    {
        let s = Store::open(&path, small()).unwrap();
        s.put(b"k", b"v").unwrap();
        s.checkpoint().unwrap();
        s.put(b"j", b"journal").unwrap();
        std::mem::forget(s); // no clean close: the journal holds "j"
    }
    for p in Paths::new(&path).durable() {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let before = fingerprint(&path);
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(exe)
        .args(["--exact", "read_as_nobody", "--ignored", "--nocapture"])
        .env("APCDB_RO_STORE", &path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("read as nobody: v journal"), "{text}");
    assert_eq!(fingerprint(&path), before);
}

/// Run by `a_user_who_may_only_read_can_open_read_only` as `nobody`.
#[test]
#[ignore]
fn read_as_nobody() {
    let Some(path) = std::env::var_os("APCDB_RO_STORE") else {
        return;
    };
    // A read-write open is refused (not the owner), the read-only one works.
    assert!(Store::open(&path, Options::default()).is_err());
    let ro = Store::open(&path, Options::default().read_only()).unwrap();
    let k = ro.get(b"k").unwrap().unwrap();
    let j = ro.get(b"j").unwrap().unwrap();
    println!(
        "read as nobody: {} {}",
        String::from_utf8_lossy(&k),
        String::from_utf8_lossy(&j)
    );
}

/// Nothing to open: a missing store is an error and nothing is created.
#[test]
fn a_missing_store_is_an_error_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.db");
    let e = Store::open(&path, Options::default().read_only())
        .err()
        .unwrap();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
