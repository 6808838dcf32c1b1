//! Several real processes on one store: concurrent writers, a writer SIGKILLed while it holds the
//! write lock, kills during writes in every durability mode, growth seen by another process.

use apcdb::Store;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const WORKER: &str = env!("CARGO_BIN_EXE_apcdb-test-worker");

fn spawn(path: &std::path::Path, durability: &str, args: &[&str]) -> Child {
    Command::new(WORKER)
        .arg(path)
        .arg(durability)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads "ack N" lines until `stop_after` acks (then SIGKILLs the child) or EOF.
fn acks(child: &mut Child, stop_after: Option<usize>) -> Vec<u64> {
    let mut acked = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if let Some(n) = line.strip_prefix("ack ") {
            acked.push(n.parse().unwrap());
        }
        if Some(acked.len()) == stop_after {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    child.wait().unwrap();
    acked
}

#[test]
fn concurrent_writers_in_separate_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let mut kids: Vec<Child> = (0..3)
        .map(|w| spawn(&path, "none", &["write", &format!("w{w}-"), "3000"]))
        .collect();
    let acked: Vec<Vec<u64>> = kids.iter_mut().map(|k| acks(k, None)).collect();
    let store = Store::open(&path, apcdb_tests::options()).unwrap();
    for (w, list) in acked.iter().enumerate() {
        assert_eq!(list.len(), 3000);
        for &i in list {
            assert_eq!(
                store.get(format!("w{w}-{i}").as_bytes()).unwrap(),
                Some(apcdb_tests::value(i))
            );
        }
    }
    assert_eq!(store.stats().unwrap().entries, 9000);
}

#[test]
fn readers_see_every_acknowledged_write_while_writers_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let store = Store::open(&path, apcdb_tests::options()).unwrap();
    let mut writers: Vec<Child> = (0..2)
        .map(|w| spawn(&path, "none", &["write", &format!("c{w}-"), "20000"]))
        .collect();
    // Follow each writer's acknowledgements as they come and read the key back at once, from
    // this process, while both keep writing (and growing the file, and checkpointing).
    let streams: Vec<_> = writers
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()).lines())
        .collect();
    let mut checked = 0;
    for (w, lines) in streams.into_iter().enumerate() {
        for line in lines {
            let i: u64 = line.unwrap().strip_prefix("ack ").unwrap().parse().unwrap();
            assert_eq!(
                store.get(format!("c{w}-{i}").as_bytes()).unwrap(),
                Some(apcdb_tests::value(i)),
                "c{w}-{i}"
            );
            checked += 1;
        }
    }
    for w in &mut writers {
        assert!(w.wait().unwrap().success());
    }
    assert_eq!(checked, 40_000);
}

#[test]
fn counters_are_atomic_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    let mut kids: Vec<Child> = (0..4)
        .map(|_| spawn(&path, "sync", &["inc", "counter", "500"]))
        .collect();
    for k in &mut kids {
        assert_eq!(acks(k, None).len(), 500);
    }
    let store = Store::open(&path, apcdb_tests::options()).unwrap();
    assert_eq!(
        store.get(b"counter").unwrap().unwrap(),
        2000u64.to_le_bytes()
    );
}

#[test]
fn lock_holder_killed_others_carry_on_without_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = Store::open(&path, apcdb_tests::options()).unwrap();
    for i in 0..200u64 {
        store
            .put(format!("before{i}").as_bytes(), &apcdb_tests::value(i))
            .unwrap();
    }
    for round in 0..5 {
        let mut holder = spawn(&path, "sync", &["hold"]);
        let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "locked");
        holder.kill().unwrap();
        holder.wait().unwrap();
        // Same handle, no reopen: the next lock acquisition sees EOWNERDEAD and recovers.
        store.put(format!("after{round}").as_bytes(), b"x").unwrap();
        for i in 0..200u64 {
            assert_eq!(
                store.get(format!("before{i}").as_bytes()).unwrap(),
                Some(apcdb_tests::value(i))
            );
        }
    }
    assert!(store.stats().unwrap().recoveries >= 6);
}

#[test]
fn kill_during_writes_loses_nothing_acknowledged_in_every_mode() {
    for durability in ["sync", "periodic", "none"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        // An observer keeps the store open across the kills (the shared state survives them),
        // and a fresh process checks at the end.
        let observer = Store::open(&path, apcdb_tests::options()).unwrap();
        let mut total = 0;
        for round in 0..6u64 {
            let prefix = format!("r{round}-");
            let mut w = spawn(&path, durability, &["write", &prefix, "1000000"]);
            let acked = acks(&mut w, Some(50 + (round as usize * 397) % 900));
            for &i in &acked {
                assert_eq!(
                    observer.get(format!("{prefix}{i}").as_bytes()).unwrap(),
                    Some(apcdb_tests::value(i)),
                    "{durability}"
                );
            }
            let mut reader = spawn(
                &path,
                durability,
                &["read", &prefix, &acked.len().to_string()],
            );
            let out = BufReader::new(reader.stdout.take().unwrap())
                .lines()
                .next()
                .map(|l| l.unwrap());
            assert!(
                reader.wait().unwrap().success(),
                "{durability}: reader process failed"
            );
            assert_eq!(out.as_deref(), Some("ok"));
            total += acked.len();
        }
        drop(observer);
        // Nobody has it open now: the next open is a first open and runs recovery.
        let s = Store::open(&path, apcdb_tests::options()).unwrap();
        assert!(s.stats().unwrap().entries as usize >= total, "{durability}");
    }
}

#[test]
fn growth_is_seen_by_a_process_that_has_the_store_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let store = Store::open(&path, apcdb_tests::options()).unwrap();
    let before = store.stats().unwrap().file_size;
    let mut w = spawn(&path, "none", &["write", "g", "20000"]);
    assert_eq!(acks(&mut w, None).len(), 20000);
    for i in (0..20000u64).step_by(7) {
        assert_eq!(
            store.get(format!("g{i}").as_bytes()).unwrap(),
            Some(apcdb_tests::value(i))
        );
    }
    assert!(store.stats().unwrap().file_size > before * 4);
    std::thread::sleep(Duration::from_millis(1));
}
