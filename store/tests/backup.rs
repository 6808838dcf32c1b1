//! `Store::backup_to`: a consistent copy of a store that another process keeps writing, which
//! opens as a normal store and holds exactly a prefix of the writer's history; a backup killed
//! at any moment leaves the source intact and no half copy under the final name.

mod common;

use apcdb::{Durability, Options, Store};
use common::{expect_line, helper_piped, helper_role, say, Killed};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn opts() -> Options {
    Options::default()
        .durability(Durability::None)
        .journal_size(256 << 10)
        .initial_size(1 << 20)
        .max_size(256 << 20)
}

fn check_clean(path: &Path) {
    let r = apcdb::verify::check(path).unwrap();
    assert!(
        r.problems.is_empty(),
        "{}: {:?}",
        path.display(),
        r.problems
    );
}

#[test]
fn the_copy_opens_with_every_live_entry_and_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    let s = Store::open(&src, opts().reset_on_start(7)).unwrap();
    for i in 0..5000u32 {
        let v = vec![(i % 251) as u8; (i % 700) as usize];
        s.put(format!("k{i}").as_bytes(), &v).unwrap();
    }
    for i in (0..5000u32).step_by(3) {
        s.delete(format!("k{i}").as_bytes()).unwrap();
    }
    let later = apcdb_now() + 3_600_000;
    s.put_with_expiry(b"expiring", b"e", later).unwrap();
    s.put_with_expiry(b"expired", b"x", 1).unwrap();

    let out = dir.path().join("copy.db");
    let report = s.backup_to(&out).unwrap();
    assert_eq!(report.attempts, 1);
    check_clean(&out);
    assert!(!dir.path().join("copy.db.backup-partial").exists());

    let want = sorted(s.scan_prefix(b"").unwrap());
    assert_eq!(report.entries, want.len() as u64);
    let c = Store::open(&out, Options::default().create(false)).unwrap();
    let got = sorted(c.scan_prefix(b"").unwrap());
    assert_eq!(got.len(), want.len());
    for ((gk, ge), (wk, we)) in got.iter().zip(&want) {
        assert_eq!(gk, wk);
        assert_eq!(ge.value, we.value);
        assert_eq!(ge.expires_at_ms, we.expires_at_ms);
        assert_eq!(ge.modified_at_ms, we.modified_at_ms);
    }
    assert_eq!(c.get(b"expired").unwrap(), None);
    assert_eq!(c.stats().unwrap().generation, 7);
    // It is a normal store: it takes writes.
    c.put(b"new", b"n").unwrap();
    drop(c);

    // Nothing is ever written over an existing file.
    let e = s.backup_to(&out).unwrap_err();
    assert!(e.to_string().contains("existing file"), "{e}");
    std::fs::remove_file(&out).unwrap();
    let e = s.backup_to(&out).unwrap_err();
    assert!(e.to_string().contains("copy.db.journal"), "{e}");
}

fn apcdb_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn sorted(mut v: Vec<(Vec<u8>, apcdb::Entry)>) -> Vec<(Vec<u8>, apcdb::Entry)> {
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The writer's `i`th value of the overwritten key `o{i % 64}`: its size varies so that freed
/// blocks of every class get reused.
fn ovalue(i: u64) -> Vec<u8> {
    let mut v = i.to_le_bytes().to_vec();
    v.resize(8 + (i % 300) as usize, i as u8);
    v
}

/// Starts the writer helper and a thread that keeps the last acknowledged write number.
fn start_writer(path: &Path) -> (Killed, Arc<AtomicU64>) {
    let mut child = Killed(helper_piped("history-writer", path).spawn().unwrap());
    let mut out = std::io::BufReader::new(child.0.stdout.take().unwrap());
    expect_line(&mut out, "ready");
    let acked = Arc::new(AtomicU64::new(0));
    let a = acked.clone();
    std::thread::spawn(move || {
        for line in out.lines() {
            let Ok(line) = line else { return };
            if let Some(n) = line.strip_prefix("ack ") {
                a.store(n.parse().unwrap(), Ordering::SeqCst);
            }
        }
    });
    (child, acked)
}

#[test]
fn a_backup_taken_while_another_process_writes_holds_a_prefix_of_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("live.db");
    let s = Store::open(&src, opts()).unwrap();
    for i in 0..20_000u32 {
        s.put(format!("base{i}").as_bytes(), &[7u8; 150]).unwrap();
    }
    let (writer, acked) = start_writer(&src);
    let c0 = s.stats().unwrap().checkpoints;
    let mut ckpts_during = 0;
    for round in 0..4 {
        std::thread::sleep(Duration::from_millis(150));
        let before = acked.load(Ordering::SeqCst);
        let c = s.stats().unwrap().checkpoints;
        let out = dir.path().join(format!("b{round}.db"));
        let report = s.backup_to(&out).unwrap();
        let after = acked.load(Ordering::SeqCst);
        ckpts_during += s.stats().unwrap().checkpoints - c;
        check_clean(&out);
        let b = Store::open(&out, Options::default().create(false)).unwrap();
        let m = b
            .get(b"last")
            .unwrap()
            .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
        eprintln!(
            "round {round}: acked {before}..{after}, copy holds 1..={m}, {} entries, {} attempts, \
             lock held {:?}",
            report.entries, report.attempts, report.longest_lock
        );
        // Everything acknowledged before the backup started is in; nothing past what the writer
        // had committed when it ended (one write may be committed and not yet acknowledged).
        assert!(
            before <= m && m <= after + 1,
            "{before} <= {m} <= {after} + 1"
        );
        for i in 1..=m {
            let v = b.get(format!("h{i}").as_bytes()).unwrap();
            assert_eq!(v, Some(i.to_le_bytes().to_vec()), "h{i} of 1..={m}");
        }
        assert_eq!(b.get(format!("h{}", m + 1).as_bytes()).unwrap(), None);
        for j in 0..64u64 {
            let last = (1..=m).rev().find(|i| i % 64 == j);
            let got = b.get(format!("o{j}").as_bytes()).unwrap();
            assert_eq!(got, last.map(ovalue), "o{j} with history 1..={m}");
        }
        assert_eq!(b.stats().unwrap().entries, 20_000 + m + m.min(64) + 1);
    }
    drop(writer);
    assert!(
        s.stats().unwrap().checkpoints - c0 >= 4 && ckpts_during > 0,
        "the writer never checkpointed during a backup"
    );
}

#[test]
fn a_backup_killed_at_any_moment_leaves_the_source_whole_and_no_half_copy() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("k.db");
    {
        let s = Store::open(&src, opts()).unwrap();
        for i in 0..30_000u32 {
            s.put(format!("base{i}").as_bytes(), &[3u8; 200]).unwrap();
        }
    }
    let (writer, acked) = start_writer(&src);
    let mut rng = 0x9e3779b97f4a7c15u64;
    let (mut done, mut killed) = (0, 0);
    for round in 0..12 {
        let _ = round;
        let child = Killed(helper_piped("backup-once", &src).spawn().unwrap());
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(rng % 1500));
        let mut child = child;
        let status = child.0.try_wait().unwrap();
        drop(child); // SIGKILL if still running
        if status.is_some_and(|st| st.success()) {
            done += 1;
        } else {
            killed += 1;
        }
    }
    let before = acked.load(Ordering::SeqCst);
    drop(writer);
    assert!(killed >= 3, "only {killed} of 12 backups were killed");
    // Every copy under a final name is whole; partial ones never took the final name.
    let mut whole = 0;
    for n in 0..40 {
        let out = dir.path().join(format!("kill{n}.db"));
        if out.exists() {
            check_clean(&out);
            let b = Store::open(&out, Options::default().create(false)).unwrap();
            assert_eq!(b.get(b"base29999").unwrap(), Some(vec![3u8; 200]));
            whole += 1;
        }
    }
    assert!(whole >= done, "{whole} copies for {done} finished backups");
    // The source: every acknowledged write is there and it checks clean.
    let s = Store::open(&src, opts()).unwrap();
    let m = s
        .get(b"last")
        .unwrap()
        .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()));
    assert!(m >= before);
    for i in (1..=m).step_by(97) {
        assert_eq!(
            s.get(format!("h{i}").as_bytes()).unwrap(),
            Some(i.to_le_bytes().to_vec())
        );
    }
    drop(s);
    check_clean(&src);
    eprintln!("{done} backups finished, {killed} killed, {whole} copies");
}

/// The other process of the tests above (see `common`); does nothing in an ordinary test run.
#[test]
#[ignore = "a helper process the other tests start; not a test"]
fn helper() {
    let Some((role, path)) = helper_role() else {
        return;
    };
    match role.as_str() {
        // Write i (1, 2, ...) is one batch: h{i} = i, o{i % 64} = ovalue(i), last = i. Reports
        // every acknowledged write number; runs until killed.
        "history-writer" => {
            let store = Store::open(&path, opts()).unwrap();
            say("ready");
            for i in 1u64.. {
                store
                    .batch(|b| {
                        b.put(format!("h{i}").as_bytes(), &i.to_le_bytes());
                        b.put(format!("o{}", i % 64).as_bytes(), &ovalue(i));
                        b.put(b"last", &i.to_le_bytes());
                    })
                    .unwrap();
                say(&format!("ack {i}"));
            }
        }
        // One backup of the store to the next free kill{N}.db beside it.
        "backup-once" => {
            let store = Store::open(&path, opts()).unwrap();
            let dir: PathBuf = path.parent().unwrap().into();
            let out = (0..)
                .map(|n| dir.join(format!("kill{n}.db")))
                .find(|p| !p.exists() && !Path::new(&format!("{}.journal", p.display())).exists())
                .unwrap();
            let t = Instant::now();
            store.backup_to(&out).unwrap();
            say(&format!("done {:?}", t.elapsed()));
        }
        other => panic!("unknown helper role {other}"),
    }
}
