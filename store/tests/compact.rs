//! `Store::compact`: the files shrink to the live data, every entry stays, the swap is refused
//! while another process has the store open, and a compaction killed at any moment leaves a
//! store that opens whole.

mod common;

use apcdb::{Durability, Options, Store};
use common::{expect_line, helper_piped, helper_role, say, Killed};
use std::path::Path;
use std::time::Duration;

fn opts() -> Options {
    Options::default()
        .durability(Durability::None)
        .journal_size(1 << 20)
        .max_size(512 << 20)
}

/// Keys k0..k{n}, every second one deleted again; returns what must remain.
fn fill_and_delete_half(path: &Path, n: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    let s = Store::open(path, opts()).unwrap();
    let mut kept = Vec::new();
    for i in 0..n {
        let v = vec![(i % 253) as u8; 300 + (i % 400) as usize];
        s.put(format!("k{i}").as_bytes(), &v).unwrap();
        if i % 2 == 1 {
            kept.push((format!("k{i}").into_bytes(), v));
        }
    }
    for i in (0..n).step_by(2) {
        s.delete(format!("k{i}").as_bytes()).unwrap();
    }
    kept
}

fn disk_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let j = format!("{}.journal", path.display());
    [path, Path::new(&j)]
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().blocks() * 512)
        .sum()
}

fn assert_holds(path: &Path, kept: &[(Vec<u8>, Vec<u8>)]) {
    let r = apcdb::verify::check(path).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let s = Store::open(path, opts().create(false)).unwrap();
    assert_eq!(s.stats().unwrap().entries, kept.len() as u64);
    for (k, v) in kept {
        assert_eq!(
            s.get(k).unwrap().as_ref(),
            Some(v),
            "{}",
            String::from_utf8_lossy(k)
        );
    }
}

#[test]
fn compaction_gives_the_room_of_deleted_entries_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let kept = fill_and_delete_half(&path, 40_000);
    let before = disk_bytes(&path);
    let live: u64 = kept
        .iter()
        .map(|(k, v)| (40 + k.len() + v.len()) as u64)
        .sum();

    let s = Store::open(&path, opts()).unwrap();
    let r = s.compact_rewrite().unwrap();
    let after = disk_bytes(&path);
    eprintln!("before {before}, after {after}, live entry bytes {live}, report {r:?}");
    assert_eq!((r.bytes_before, r.bytes_after), (before, after));
    assert_eq!(r.entries, kept.len() as u64);
    // Only the live blocks (less than a quarter of waste each), both index copies and the 1 MiB
    // journal remain.
    assert!(after < before * 6 / 10, "{before} -> {after}");
    assert!(
        after < live * 4 / 3 + (4 << 20),
        "{after} for {live} live bytes"
    );
    assert_holds(&path, &kept);
    assert!(!dir.path().join("c.db.compact-partial").exists());
    // It is a normal store afterwards, and compacting again changes little.
    let s = Store::open(&path, opts()).unwrap();
    s.put(b"after", b"x").unwrap();
    let again = s.compact_rewrite().unwrap();
    assert!(again.bytes_after <= again.bytes_before + (64 << 10));
}

#[test]
fn compaction_changes_nothing_while_another_process_has_the_store_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let kept = fill_and_delete_half(&path, 4_000);
    let mut child = Killed(helper_piped("hold-open", &path).spawn().unwrap());
    let mut out = std::io::BufReader::new(child.0.stdout.take().unwrap());
    expect_line(&mut out, "open");
    let before = disk_bytes(&path);
    let e = Store::open(&path, opts())
        .unwrap()
        .compact_rewrite()
        .unwrap_err();
    assert!(matches!(e, apcdb::Error::Busy { .. }), "{e}");
    assert_eq!(disk_bytes(&path), before);
    assert!(!dir.path().join("busy.db.compact-partial").exists());
    drop(child);
    assert_holds(&path, &kept);
}

#[test]
fn a_compaction_killed_at_any_moment_leaves_the_store_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill.db");
    let kept = fill_and_delete_half(&path, 20_000);
    // One compaction left to finish sets the time scale, so the kills land inside the work
    // however fast this machine is at the moment.
    let started = std::time::Instant::now();
    let status = helper_piped("compact", &path).status().unwrap();
    assert!(status.success());
    let whole_ms = (started.elapsed().as_millis() as u64).max(20);
    assert_holds(&path, &kept);
    let mut rng = 0x853c49e6748fea9bu64;
    let (mut finished, mut killed) = (1, 0);
    for _ in 0..16 {
        let mut child = Killed(helper_piped("compact", &path).spawn().unwrap());
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // Within the first half of a compaction's time: most land inside it even when this one runs
        // faster than the measured one.
        std::thread::sleep(Duration::from_millis(rng % (whole_ms / 2)));
        if child.0.try_wait().unwrap().is_some_and(|s| s.success()) {
            finished += 1;
        } else {
            killed += 1;
        }
        drop(child);
        // Whatever moment it died at, the store opens with every entry and checks clean.
        assert_holds(&path, &kept);
    }
    eprintln!("{finished} compactions finished, {killed} killed");
    assert!(
        killed >= 4 && finished >= 1,
        "{finished} finished, {killed} killed"
    );
}

/// The other process of the tests above (see `common`); does nothing in an ordinary test run.
#[test]
#[ignore = "a helper process the other tests start; not a test"]
fn helper() {
    let Some((role, path)) = helper_role() else {
        return;
    };
    match role.as_str() {
        // Keeps the store open until killed.
        "hold-open" => {
            let _store = Store::open(&path, opts()).unwrap();
            say("open");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        "compact" => {
            let r = Store::open(&path, opts())
                .unwrap()
                .compact_rewrite()
                .unwrap();
            say(&format!("compacted {r:?}"));
        }
        other => panic!("unknown helper role {other}"),
    }
}
