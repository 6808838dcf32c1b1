//! `Store::compact` in place (SPEC.md §7.4): the room of deleted entries goes back to the disk
//! while other processes keep the store open, reading and writing; readers see every value
//! unchanged throughout; the heap grows back over the released tail with real blocks; and a
//! compaction killed at any moment, while another process writes, loses nothing acknowledged.

mod common;

use apcdb::{Durability, Options, Store};
use common::{expect_line, helper_piped, helper_role, say, Killed};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn opts() -> Options {
    Options::default()
        .durability(Durability::None)
        .journal_size(1 << 20)
        .max_size(512 << 20)
}

fn kept_value(i: u32) -> Vec<u8> {
    vec![(i % 253) as u8; 300 + (i % 400) as usize]
}

fn written_value(j: u64) -> Vec<u8> {
    format!("w{j}:").repeat(12).into_bytes()
}

/// Keys k0..k{n}, every second one deleted again; returns what must remain.
fn fill_and_delete_half(path: &Path, n: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    let s = Store::open(path, opts()).unwrap();
    let mut kept = Vec::new();
    for i in 0..n {
        s.put(format!("k{i}").as_bytes(), &kept_value(i)).unwrap();
        if i % 2 == 1 {
            kept.push((format!("k{i}").into_bytes(), kept_value(i)));
        }
    }
    for i in (0..n).step_by(2) {
        s.delete(format!("k{i}").as_bytes()).unwrap();
    }
    kept
}

/// Bytes the data file takes on disk.
fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

fn assert_holds(path: &Path, kept: &[(Vec<u8>, Vec<u8>)]) {
    let r = apcdb::verify::check(path).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let s = Store::open(path, opts().create(false)).unwrap();
    for (k, v) in kept {
        assert_eq!(
            s.get(k).unwrap().as_ref(),
            Some(v),
            "{}",
            String::from_utf8_lossy(k)
        );
    }
}

/// The writes a `writer` helper acknowledged, read from its stdout by a thread (so that its pipe
/// never fills): the highest `j` whose put returned.
fn collect_acks(child: &mut Killed) -> (Arc<AtomicU64>, std::thread::JoinHandle<()>) {
    let acked = Arc::new(AtomicU64::new(0));
    let out = BufReader::new(child.0.stdout.take().unwrap());
    let a = acked.clone();
    let t = std::thread::spawn(move || {
        for line in out.lines() {
            let Ok(line) = line else { break };
            if let Some(j) = line.strip_prefix("ack ") {
                a.store(j.parse::<u64>().unwrap() + 1, Ordering::SeqCst);
            }
        }
    });
    (acked, t)
}

#[test]
fn compaction_gives_room_back_while_another_process_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.db");
    let n = 40_000;
    let kept = fill_and_delete_half(&path, n);
    let mut child = Killed(helper_piped("read-and-write", &path).spawn().unwrap());
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    expect_line(&mut out, "open");
    expect_line(&mut out, "reading");

    let s = Store::open(&path, opts()).unwrap();
    let before = allocated(&path);
    let r = s.compact().unwrap();
    let after = allocated(&path);
    eprintln!("data file {before} -> {after} bytes on disk; {r:?}");
    assert!(r.moved > 1000, "{r:?}");
    // About half the entries' room was deleted; the other process's writes fill some of it.
    assert!(after < before * 3 / 4, "{before} -> {after}");
    // Every value reads the same from this process, and the store checks clean.
    for (k, v) in &kept {
        assert_eq!(s.get(k).unwrap().as_ref(), Some(v));
    }

    // The other process read every kept value without a difference or an error throughout.
    writeln!(child.0.stdin.as_mut().unwrap(), "stop").unwrap();
    let done = expect_line(&mut out, "done");
    eprintln!("{done}");
    let fields: Vec<&str> = done.split(' ').collect();
    assert_eq!(fields[1], "bad=0", "{done}");
    let writes: u64 = fields[3].strip_prefix("writes=").unwrap().parse().unwrap();
    let rounds: u64 = fields[2].strip_prefix("rounds=").unwrap().parse().unwrap();
    assert!(rounds >= 1, "{done}");
    drop(child);
    drop(s);
    let mut all = kept.clone();
    all.extend((0..writes).map(|j| (format!("w{j}").into_bytes(), written_value(j))));
    assert_holds(&path, &all);
}

#[test]
fn the_heap_grows_back_over_the_released_tail_with_real_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grow.db");
    let kept = fill_and_delete_half(&path, 40_000);
    let s = Store::open(&path, opts()).unwrap();
    let r = s.compact().unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(r.heap_end + (2 << 20) < len, "{r:?}, file {len}");
    // New entries past the lowered end, well inside the old length (no growth of the file,
    // which would give the whole file real blocks).
    let mut more = Vec::new();
    let mut i = 0u32;
    while (more.len() as u64) * 512 < (len - r.heap_end) / 2 {
        let (k, v) = (format!("n{i}").into_bytes(), vec![(i % 251) as u8; 450]);
        s.put(&k, &v).unwrap();
        more.push((k, v));
        i += 1;
    }
    drop(s);
    let sb = apcdb::verify::check(&path).unwrap().superblock.unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        len,
        "the file did not grow"
    );
    assert!(
        sb.heap_end > r.heap_end + (1 << 20),
        "{} {r:?}",
        sb.heap_end
    );
    // Every 1 MiB chunk holding a byte of the heap has real blocks, not only the pages written:
    // a store into a free block there can never meet a hole (a SIGBUS on a full disk).
    let chunk = 1u64 << 20;
    assert!(
        allocated(&path) >= sb.heap_end.next_multiple_of(chunk),
        "{} bytes allocated for a heap ending at {}",
        allocated(&path),
        sb.heap_end
    );
    let mut all = kept;
    all.extend(more);
    assert_holds(&path, &all);
}

/// A disk that is full from the moment `full` is set: every `fallocate` fails with ENOSPC.
#[derive(Default)]
struct FullDisk {
    full: AtomicBool,
}

impl apcdb::StorageIo for FullDisk {
    fn allocate(
        &self,
        kind: apcdb::FileKind,
        file: &std::fs::File,
        len: u64,
    ) -> std::io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
        }
        apcdb::RealIo.allocate(kind, file, len)
    }
    fn allocate_range(
        &self,
        kind: apcdb::FileKind,
        file: &std::fs::File,
        off: u64,
        len: u64,
    ) -> std::io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
        }
        apcdb::RealIo.allocate_range(kind, file, off, len)
    }
}

/// After a compaction released the tail, a write that needs the heap to grow back into it on a
/// full disk fails with `Error::Full` and changes nothing (it never stores into a hole, which
/// would be a SIGBUS on a full disk); with room again, the same write succeeds.
#[test]
fn growing_back_into_the_released_tail_on_a_full_disk_is_a_full_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    let kept = fill_and_delete_half(&path, 40_000);
    let io = Arc::new(FullDisk::default());
    let s = Store::open(&path, opts().io(io.clone())).unwrap();
    let r = s.compact().unwrap();
    assert!(r.heap_end + (2 << 20) < std::fs::metadata(&path).unwrap().len());
    let blocks = allocated(&path);
    io.full.store(true, Ordering::SeqCst);
    // Fill the free space below the lowered end until a write needs the heap to grow.
    let mut written = Vec::new();
    let refused = (0..200_000u32).find_map(|i| {
        let (k, v) = (format!("g{i}").into_bytes(), vec![(i % 249) as u8; 450]);
        match s.put(&k, &v) {
            Ok(()) => {
                written.push((k, v));
                None
            }
            Err(e) => Some((k, v, e)),
        }
    });
    let (k, v, e) = refused.expect("a write needing new disk blocks must fail on a full disk");
    assert!(matches!(e, apcdb::Error::Full { .. }), "{e}");
    // Refused at the first chunk past the lowered end: no write reached a hole (which would
    // have taken a disk block, the one a full disk does not have).
    assert_eq!(
        allocated(&path),
        blocks,
        "a write went into the released tail"
    );
    assert_eq!(
        s.get(&k).unwrap(),
        None,
        "the refused write changed nothing"
    );
    io.full.store(false, Ordering::SeqCst);
    s.put(&k, &v).unwrap();
    written.push((k, v));
    drop(s);
    let mut all = kept;
    all.extend(written);
    assert_holds(&path, &all);
}

/// A filesystem without hole punching (`EOPNOTSUPP`).
struct NoHoles;

impl apcdb::StorageIo for NoHoles {
    fn punch_hole(
        &self,
        _: apcdb::FileKind,
        _: &std::fs::File,
        _: u64,
        _: u64,
    ) -> std::io::Result<()> {
        Err(std::io::Error::from_raw_os_error(libc::EOPNOTSUPP))
    }
}

/// On a filesystem that cannot punch holes, compaction still moves the tail down and lowers the
/// heap's end, gives nothing back to the disk, and is not an error.
#[test]
fn without_hole_punching_compaction_moves_the_tail_and_gives_nothing_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noholes.db");
    let kept = fill_and_delete_half(&path, 20_000);
    let s = Store::open(&path, opts().io(Arc::new(NoHoles))).unwrap();
    let before = allocated(&path);
    let r = s.compact().unwrap();
    assert!(r.moved > 1000, "{r:?}");
    assert_eq!(allocated(&path), before);
    drop(s);
    assert_holds(&path, &kept);
}

#[test]
fn a_compaction_killed_at_any_moment_loses_nothing_a_writer_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill.db");
    let mut kept = fill_and_delete_half(&path, 20_000);
    let mut writer = Killed(helper_piped("writer", &path).spawn().unwrap());
    let (acked, reader) = collect_acks(&mut writer);
    // One compaction left to finish sets the time scale, so the kills land inside the work.
    let started = std::time::Instant::now();
    let status = helper_piped("compact", &path).status().unwrap();
    assert!(status.success());
    let whole_ms = (started.elapsed().as_millis() as u64).max(20);
    let s = Store::open(&path, opts()).unwrap();
    let mut rng = 0x9e3779b97f4a7c15u64;
    let (mut finished, mut killed) = (1, 0);
    for round in 0..16u32 {
        // New holes all over the heap, and entries above them to move down.
        for i in 0..3000u32 {
            let k = format!("f{round}_{i}").into_bytes();
            s.put(&k, &kept_value(i)).unwrap();
            if i % 2 == 1 {
                kept.push((k, kept_value(i)));
            }
        }
        for i in (0..3000u32).step_by(2) {
            s.delete(format!("f{round}_{i}").as_bytes()).unwrap();
        }
        let mut child = Killed(helper_piped("compact", &path).spawn().unwrap());
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(rng % whole_ms));
        if child.0.try_wait().unwrap().is_some_and(|s| s.success()) {
            finished += 1;
        } else {
            killed += 1;
        }
        drop(child);
        // Whatever moment it died at (also holding the write lock), the others carry on.
        for (k, v) in kept.iter().step_by(97) {
            assert_eq!(s.get(k).unwrap().as_ref(), Some(v));
        }
    }
    drop(s);
    drop(writer);
    reader.join().unwrap();
    let acked = acked.load(Ordering::SeqCst);
    eprintln!("{finished} compactions finished, {killed} killed; {acked} writes acknowledged");
    assert!(
        killed >= 4 && finished >= 1 && acked > 0,
        "{finished} finished, {killed} killed, {acked} acknowledged"
    );
    assert_holds(&path, &kept);
    // The writer's keys as it left them: the deleted ones stay deleted (a move of a key deleted
    // since the compaction listed it would bring it back), the others hold their values. The
    // last two may or may not have been changed by the write that was cut.
    assert_writer_holds(&path, acked);
}

/// Keys for `fill_and_delete_half` that make the index grow (65,536 to 131,072 slots) at the
/// 45,876th key, a few keys before the end: its three copies then lie at the top of the heap.
const LATE_GROWTH: u32 = 46_000;

/// The heap's end the durable superblock records.
fn heap_end(path: &Path) -> u64 {
    apcdb::verify::check(path)
        .unwrap()
        .superblock
        .unwrap()
        .heap_end
}

/// Index copies placed by a growth near the end of the load lie at the top of the heap: the
/// compaction moves them down into the room it emptied, so they no longer hold the heap's end up
/// (before, the heap could not end below them: about where it was).
#[test]
fn index_copies_at_the_top_of_the_heap_move_down() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copies.db");
    let kept = fill_and_delete_half(&path, LATE_GROWTH);
    let before = heap_end(&path);
    let s = Store::open(&path, opts()).unwrap();
    let r = s.compact().unwrap();
    eprintln!("heap end {before} -> {r:?}");
    assert_eq!(r.index_copies_moved, 3, "{r:?}");
    // Half the entries were deleted: the heap ends near half of where it ended.
    assert!(r.heap_end < before * 2 / 3, "{before} -> {r:?}");
    // The store goes on as usual: writes, a reopen, a check.
    let mut all = kept;
    for i in 0..2000u32 {
        let (k, v) = (format!("after{i}").into_bytes(), kept_value(i));
        s.put(&k, &v).unwrap();
        all.push((k, v));
    }
    drop(s);
    assert!(heap_end(&path) < before * 2 / 3);
    assert_holds(&path, &all);
}

/// The writer helper's keys as it left them after `acked` acknowledged rounds: the deleted ones
/// stay deleted, the others hold their values; the last two may or may not have been changed by
/// the write that was cut.
fn assert_writer_holds(path: &Path, acked: u64) {
    let s = Store::open(path, opts().create(false)).unwrap();
    for j in 0..acked.saturating_sub(2) {
        let want = (j % 3 != 1).then(|| written_value(j));
        assert_eq!(s.get(format!("w{j}").as_bytes()).unwrap(), want, "w{j}");
    }
}

/// A compaction that moves the index copies, SIGKILLed at a random moment while another process
/// writes, each time on a fresh copy of the same store: the store checks clean, holds every kept
/// value and every acknowledged write (every second time rebuilt from the durable superblock and
/// the journal alone, the lock file removed), and a compaction run again afterwards finishes.
#[test]
fn a_compaction_killed_while_it_moves_the_index_copies_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.db");
    let kept = fill_and_delete_half(&template, LATE_GROWTH);
    let copy_to = |to: &Path| {
        for (from, to) in apcdb::Paths::new(&template)
            .durable()
            .iter()
            .zip(apcdb::Paths::new(to).durable())
        {
            std::fs::copy(from, to).unwrap();
        }
    };
    // One compaction left to finish, with the writer running, sets the time scale, so the
    // kills land all over the work.
    let whole = dir.path().join("whole.db");
    copy_to(&whole);
    let mut writer = Killed(helper_piped("writer", &whole).spawn().unwrap());
    let (_, reader) = collect_acks(&mut writer);
    let started = std::time::Instant::now();
    let out = helper_piped("compact", &whole).output().unwrap();
    assert!(out.status.success());
    let whole_ms = (started.elapsed().as_millis() as u64).max(20);
    drop(writer);
    reader.join().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("index_copies_moved: 3"), "{said}");
    let mut rng = 0x2545f4914f6cdd1du64;
    let (mut finished, mut killed) = (0, 0);
    for round in 0..10u32 {
        let path = dir.path().join(format!("kill{round}.db"));
        copy_to(&path);
        let mut writer = Killed(helper_piped("writer", &path).spawn().unwrap());
        let (acked, reader) = collect_acks(&mut writer);
        let mut child = Killed(helper_piped("compact", &path).spawn().unwrap());
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(rng % (whole_ms + whole_ms / 4)));
        if child.0.try_wait().unwrap().is_some_and(|s| s.success()) {
            finished += 1;
        } else {
            killed += 1;
        }
        drop(child);
        drop(writer);
        reader.join().unwrap();
        let acked = acked.load(Ordering::SeqCst);
        if round % 2 == 1 {
            // Without the shared state, the next open rebuilds the store from the durable
            // superblock and the journal: the copies it names must be whole however far the
            // compaction got (as after a power cut that lost nothing of the page cache).
            // (None when both were killed before either opened the store: a loaded machine.)
            match std::fs::remove_file(apcdb::Paths::new(&path).all()[2]) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{e}"),
                _ => {}
            }
        }
        assert_holds(&path, &kept);
        assert_writer_holds(&path, acked);
        let r = Store::open(&path, opts()).unwrap().compact().unwrap();
        assert!(r.heap_end < heap_end(&template) * 2 / 3, "{r:?}");
        assert_holds(&path, &kept);
        assert_writer_holds(&path, acked);
    }
    eprintln!("{finished} compactions finished, {killed} killed in {whole_ms} ms or less");
    // At least a few kills: the time scale was set once, and a loaded machine moves it.
    assert!(killed >= 3, "{finished} finished, {killed} killed");
}

/// The other process of the tests above (see `common`); does nothing in an ordinary test run.
#[test]
#[ignore = "a helper process the other tests start; not a test"]
fn helper() {
    let Some((role, path)) = helper_role() else {
        return;
    };
    match role.as_str() {
        // Reads every kept key of `fill_and_delete_half(40_000)` over and over, checking each
        // value, and writes new keys between rounds, until told to stop.
        "read-and-write" => {
            let s = Store::open(&path, opts()).unwrap();
            say("open");
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                flag.store(true, Ordering::SeqCst);
            });
            say("reading");
            let (mut bad, mut rounds, mut writes) = (0u64, 0u64, 0u64);
            loop {
                for i in (1..40_000u32).step_by(2) {
                    match s.get(format!("k{i}").as_bytes()) {
                        Ok(Some(v)) if v == kept_value(i) => {}
                        other => {
                            bad += 1;
                            eprintln!("k{i}: {other:?}");
                        }
                    }
                    let ok = s.get_with(format!("k{i}").as_bytes(), |v| v == kept_value(i));
                    if !matches!(ok, Ok(Some(true))) {
                        bad += 1;
                        eprintln!("k{i} through get_with: {ok:?}");
                    }
                    if i % 64 == 1 {
                        s.put(format!("w{writes}").as_bytes(), &written_value(writes))
                            .unwrap();
                        writes += 1;
                    }
                }
                rounds += 1;
                if stop.load(Ordering::SeqCst) {
                    break;
                }
            }
            say(&format!("done bad={bad} rounds={rounds} writes={writes}"));
        }
        // Writes w0, w1, ..., deletes every w{j} with j % 3 == 1 again after writing w{j+1}
        // (`writer_holds`), and says `ack j` once those returned, until killed.
        "writer" => {
            let s = Store::open(&path, opts()).unwrap();
            for j in 0.. {
                s.put(format!("w{j}").as_bytes(), &written_value(j))
                    .unwrap();
                if j % 3 == 2 {
                    s.delete(format!("w{}", j - 1).as_bytes()).unwrap();
                }
                say(&format!("ack {j}"));
                if j % 16 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        "compact" => {
            let r = Store::open(&path, opts()).unwrap().compact().unwrap();
            say(&format!("compacted {r:?}"));
        }
        other => panic!("unknown helper role {other}"),
    }
}
