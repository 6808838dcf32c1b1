//! The maximum size can change while the store is in use (SPEC.md §9): raised by a larger
//! `Options::max_size` at open or by `Store::set_max_size`, seen by other processes without
//! reopening; lowering below the file refused; a kill during a resize leaves old or new.

mod common;

use apcdb::{Durability, Error, Options, Store};
use common::{expect_line, helper_piped, helper_role, say};
use std::io::Write;
use std::process::{Child, Command, Stdio};

const MIB: u64 = 1 << 20;

fn opts(max: u64) -> Options {
    Options::default()
        .durability(Durability::None)
        .initial_size(256 << 10)
        .max_size(max)
        .journal_size(1 << 20)
}

/// Puts 16 KiB values under `prefix` until the store is full; returns how many fitted.
fn fill(store: &Store, prefix: &str) -> u64 {
    let value = vec![7u8; 16 << 10];
    for i in 0.. {
        match store.put(format!("{prefix}{i}").as_bytes(), &value) {
            Ok(()) => {}
            Err(e) if e.is_full() => return i,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    unreachable!()
}

#[test]
fn a_larger_max_size_in_the_options_raises_the_limit_at_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let store = Store::open(&path, opts(MIB)).unwrap();
    let before = fill(&store, "a");
    assert!(store.stats().unwrap().file_size <= MIB);
    drop(store);

    let store = Store::open(&path, opts(4 * MIB)).unwrap();
    assert_eq!(store.stats().unwrap().max_size, 4 * MIB);
    let more = fill(&store, "b");
    assert!(more > before, "only {more} more values fitted");
    assert!(store.stats().unwrap().file_size > MIB);
    drop(store);

    // A smaller size in the options does not lower it.
    let store = Store::open(&path, opts(MIB)).unwrap();
    assert_eq!(store.stats().unwrap().max_size, 4 * MIB);
    assert_eq!(store.get(b"b0").unwrap().map(|v| v.len()), Some(16 << 10));
}

#[test]
fn lowering_below_the_file_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let store = Store::open(&path, opts(64 * MIB)).unwrap();
    for i in 0..100u32 {
        store
            .put(format!("k{i}").as_bytes(), &[1u8; 10_000])
            .unwrap();
    }
    let len = store.stats().unwrap().file_size;
    let e = store.set_max_size(len - 4096).unwrap_err();
    assert!(matches!(e, Error::Incompatible { .. }), "{e:?}");
    assert!(
        e.to_string().contains("cannot lower the maximum size"),
        "{e}"
    );
    assert_eq!(store.stats().unwrap().max_size, 64 * MIB);
    let e = store.set_max_size((4 << 40) + 1).unwrap_err();
    assert!(e.to_string().contains("format's limit"), "{e}");
    drop(store);
    let store = Store::open(&path, opts(MIB)).unwrap();
    assert_eq!(store.stats().unwrap().max_size, 64 * MIB);

    // Down to the file's length is allowed, durable, and then the store is full.
    store.set_max_size(len).unwrap();
    assert_eq!(store.stats().unwrap().max_size, len);
    drop(store);
    let store = Store::open(&path, opts(MIB)).unwrap();
    assert_eq!(store.stats().unwrap().max_size, len);
    fill(&store, "x");
    assert_eq!(store.stats().unwrap().file_size, len);
    assert_eq!(store.get(b"k99").unwrap(), Some(vec![1u8; 10_000]));
}

/// The other process of the tests below (see `common`); does nothing in an ordinary test run.
#[test]
#[ignore = "a helper process the other tests start; not a test"]
fn helper() {
    let Some((role, path)) = helper_role() else {
        return;
    };
    match role.as_str() {
        // Opens with the old (small) size, finds the store full, waits to be told, fills more.
        "grow-when-told" => {
            let store = Store::open(&path, opts(MIB)).unwrap();
            let e = store.put(b"helper-first", &[3u8; 16 << 10]).unwrap_err();
            assert!(e.is_full(), "{e}");
            say("full");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            let n = fill(&store, "h");
            let s = store.stats().unwrap();
            say(&format!("grew {n} {} {}", s.file_size, s.max_size));
        }
        // Resizes back and forth forever (the test kills it).
        "resize-loop" => {
            let store = Store::open(&path, opts(MIB)).unwrap();
            say("ready");
            for i in 0u64.. {
                store
                    .set_max_size(if i % 2 == 0 { 8 * MIB } else { 16 * MIB })
                    .unwrap();
            }
        }
        // Under `ulimit -v` (reserves only the 1 MiB limit): after another process raised the
        // limit and grew the file past that, every way of going past it is a clear error.
        "small-reservation" => {
            let store = Store::open(&path, opts(MIB)).unwrap();
            say("ready");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            say(&format!("max {}", store.stats().unwrap().max_size));
            let errors = [
                store.set_max_size(32 * MIB).unwrap_err(),
                store.put(b"more", &[1u8; 16 << 10]).unwrap_err(),
                store.get(b"far").unwrap_err(),
                store.checkpoint().unwrap_err(),
            ];
            for e in errors {
                assert!(matches!(e, Error::Incompatible { .. }), "{e:?}");
                say(&format!("error {e}"));
            }
            assert_eq!(store.get(b"a0").unwrap().map(|v| v.len()), Some(16 << 10));
            say("done");
        }
        _ => panic!("unknown helper role {role}"),
    }
}

#[test]
fn a_limit_raised_in_one_process_is_used_by_another_without_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let store = Store::open(&path, opts(MIB)).unwrap();
    fill(&store, "a");
    let mut child: Child = helper_piped("grow-when-told", &path).spawn().unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    expect_line(&mut out, "full");

    store.set_max_size(8 * MIB).unwrap();
    writeln!(child.stdin.take().unwrap(), "go").unwrap();
    let grew = expect_line(&mut out, "grew ");
    assert!(child.wait().unwrap().success());
    let f: Vec<u64> = grew
        .split(' ')
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(f[0] > 0, "the other process stored nothing more: {grew}");
    assert!(
        f[1] > MIB,
        "the file did not grow past the old limit: {grew}"
    );
    assert_eq!(f[2], 8 * MIB, "{grew}");
    // And this process sees the data the other one wrote past the old limit.
    let last = format!("h{}", f[0] - 1);
    assert_eq!(
        store.get(last.as_bytes()).unwrap().map(|v| v.len()),
        Some(16 << 10)
    );
}

#[test]
fn a_kill_during_a_resize_leaves_the_old_or_the_new_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Store::open(&path, opts(4 * MIB)).unwrap();
    for i in 0..20u32 {
        store
            .put(format!("k{i}").as_bytes(), &i.to_le_bytes())
            .unwrap();
    }
    drop(store);
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..12u64 {
        let mut child = helper_piped("resize-loop", &path).spawn().unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        expect_line(&mut out, "ready");
        std::thread::sleep(std::time::Duration::from_millis(1 + round * 7 % 40));
        child.kill().unwrap();
        child.wait().unwrap();
        let store = Store::open(&path, opts(MIB)).unwrap();
        let max = store.stats().unwrap().max_size;
        assert!(
            [4 * MIB, 8 * MIB, 16 * MIB].contains(&max),
            "torn size {max}"
        );
        seen.insert(max);
        for i in 0..20u32 {
            let want = Some(i.to_le_bytes().to_vec());
            assert_eq!(store.get(format!("k{i}").as_bytes()).unwrap(), want);
        }
    }
    // The kills must have landed after some resize, or this tested nothing.
    assert!(
        seen.iter().any(|&m| m != 4 * MIB),
        "no resize ever took effect: {seen:?}"
    );
}

#[test]
fn a_process_that_reserved_less_than_a_raised_limit_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path, opts(MIB)).unwrap();
    fill(&store, "a");
    let helper = helper_piped("small-reservation", &path);
    // 4 GiB of address space: not enough for the 64 GiB a process reserves when it can.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v $((4 << 20)) && exec \"$0\" \"$@\"")
        .arg(helper.get_program())
        .args(helper.get_args())
        .envs(helper.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    expect_line(&mut out, "ready");
    store.set_max_size(16 * MIB).unwrap();
    // A value that lands past 1 MiB (the helper's whole reservation).
    fill(&store, "b");
    store.put(b"far", &[2u8; 16 << 10]).unwrap_err();
    store.delete(b"b0").unwrap();
    store.put(b"far", &[2u8; 16 << 10]).unwrap();
    writeln!(child.stdin.take().unwrap(), "go").unwrap();
    assert_eq!(expect_line(&mut out, "max "), format!("max {MIB}"));
    for _ in 0..4 {
        let e = expect_line(&mut out, "error ");
        assert!(e.contains("reserved") && e.contains("reopen"), "{e}");
    }
    expect_line(&mut out, "done");
    assert!(child.wait().unwrap().success());
}

/// An open that loads the closing snapshot (no rebuild) must take the limit from the superblock
/// just as a rebuild does: the store grows up to it, and no further.
#[test]
fn an_open_from_the_closing_snapshot_keeps_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path, opts(2 * MIB)).unwrap();
    store.put(b"first", b"1").unwrap();
    drop(store);

    let store = Store::open(&path, Options::default().durability(Durability::None)).unwrap();
    let stats = store.stats().unwrap();
    assert!(
        !stats.rebuilt_at_open,
        "a clean close leaves a snapshot to open from"
    );
    assert_eq!(stats.max_size, 2 * MIB);
    let fitted = fill(&store, "b");
    assert!(
        fitted > 16,
        "the store grows up to its limit after such an open ({fitted} fitted)"
    );
    assert!(store.stats().unwrap().file_size <= 2 * MIB);
    assert_eq!(store.get(b"first").unwrap(), Some(b"1".to_vec()));
}

/// A process that forks while one of its handles closes holds that handle's locks until its
/// `exec`, possibly on the lock file only: an open in that moment waits it out instead of
/// calling the store replaced (seen once as a flaky reopen in this file).
#[test]
fn an_open_waits_out_a_lock_held_for_a_moment_by_a_forked_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.db");
    drop(Store::open(&path, opts(MIB)).unwrap());
    // Another open file description of the lock file holds the presence byte, as the child's
    // inherited copy would.
    let held = common::hold_presence(&apcdb::Paths::new(&path).lock);
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(40));
        drop(held);
    });
    let store = Store::open(&path, opts(MIB)).unwrap();
    release.join().unwrap();
    store.put(b"k", b"v").unwrap();
}
