//! `Store::get_with`: the value handed to a closure where it lies in the mapping, without an
//! allocation, and never a torn value in what it returns, even while another process keeps
//! overwriting the key and checkpointing (which hands freed blocks out again).

mod common;

use apcdb::{Durability, Options, Store};
use common::{expect_line, helper_piped, helper_role, say, Killed};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// Counts the allocations of each thread, so a test can see that a call allocated nothing.
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the counter is a thread-local
// `Cell` with a const initialiser, which allocates nothing itself.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, i.e. from `System`, with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|a| a.get())
}

fn opts() -> Options {
    Options::default()
        .durability(Durability::None)
        .journal_size(64 << 10)
        .initial_size(256 << 10)
        .max_size(64 << 20)
}

#[test]
fn reads_in_place_what_get_reads_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("g.db"), opts()).unwrap();
    s.put(b"k", b"value").unwrap();
    s.put(b"empty", b"").unwrap();
    s.put(b"big", &[9u8; 3000]).unwrap();
    s.put_with_expiry(b"expired", b"x", 1).unwrap();
    for key in [&b"k"[..], b"empty", b"big", b"expired", b"absent"] {
        assert_eq!(
            s.get_with(key, |v| v.to_vec()).unwrap(),
            s.get(key).unwrap()
        );
    }
    // The closure is not called for a miss or an expired entry.
    let mut calls = 0;
    assert_eq!(s.get_with(b"expired", |_| calls += 1).unwrap(), None);
    assert_eq!(s.get_with(b"absent", |_| calls += 1).unwrap(), None);
    assert_eq!(calls, 0);

    // No allocation on a hit or a miss (the first read warms this thread's lazy state).
    s.get_with(b"big", |v| v.len()).unwrap();
    let before = allocs();
    let mut sum = 0u64;
    for _ in 0..1000 {
        let big = s.get_with(b"big", |v| v.iter().map(|&b| b as u64).sum::<u64>());
        sum += big.unwrap().unwrap();
        sum += s
            .get_with(b"absent", |v| v.len() as u64)
            .unwrap()
            .unwrap_or(0);
    }
    assert_eq!(allocs() - before, 0, "get_with allocated");
    assert_eq!(sum, 1000 * 9 * 3000);
    // The counter does see allocations: `get` makes one per hit.
    let before = allocs();
    s.get(b"big").unwrap().unwrap();
    assert!(allocs() > before);

    // Counted like get: a hit per found key, a miss per absent one.
    let st = s.stats().unwrap();
    for _ in 0..300 {
        s.get_with(b"k", |_| ()).unwrap().unwrap();
        assert!(s.get_with(b"nope", |_| ()).unwrap().is_none());
    }
    let st2 = s.stats().unwrap();
    assert_eq!((st2.hits - st.hits, st2.misses - st.misses), (300, 300));
}

/// Hit and miss counts stay exact when more threads read one handle than it has counter
/// stripes: a thread adds to its own stripe without a locked instruction, so two threads must
/// never share one (those left over count into the lock file directly).
#[test]
fn hits_and_misses_are_exact_with_more_threads_than_stripes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path().join("t.db"), opts()).unwrap();
    s.put(b"k", b"v").unwrap();
    let st = s.stats().unwrap();
    let (threads, reads) = (48u64, 20_000u64);
    let go = std::sync::Barrier::new(threads as usize);
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| {
                go.wait();
                for _ in 0..reads {
                    s.get_with(b"k", |_| ()).unwrap().unwrap();
                    assert!(s.get_with(b"nope", |_| ()).unwrap().is_none());
                }
            });
        }
    });
    let st2 = s.stats().unwrap();
    let want = threads * reads;
    assert_eq!((st2.hits - st.hits, st2.misses - st.misses), (want, want));
}

/// The value the overwriter writes for its `n`th put: `n`, then `n as u8` repeated; the length
/// varies with `n` so the blocks of one size class get reused by other values.
fn value(n: u64) -> Vec<u8> {
    let mut v = n.to_le_bytes().to_vec();
    v.resize(100 + (n % 150) as usize, n as u8);
    v
}

fn is_whole(v: &[u8]) -> bool {
    v.len() >= 8 && {
        let n = u64::from_le_bytes(v[..8].try_into().unwrap());
        *v == value(n)
    }
}

#[test]
fn a_value_is_never_torn_while_another_process_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.db");
    let s = Store::open(&path, opts()).unwrap();
    for k in 0..4u8 {
        s.put(&[k], &value(0)).unwrap();
    }
    let mut child = Killed(helper_piped("overwriter", &path).spawn().unwrap());
    let mut out = std::io::BufReader::new(child.0.stdout.take().unwrap());
    expect_line(&mut out, "ready");
    let ckpt0 = s.stats().unwrap().checkpoints;

    // Slow closures widen the window in which a checkpoint can hand the block out again: each
    // copies the first half, waits, then copies the rest.
    let (mut reads, mut runs, mut seen) = (0u64, 0u64, std::collections::HashSet::new());
    let end = Instant::now() + Duration::from_secs(4);
    while Instant::now() < end {
        for k in 0..4u8 {
            let got = s
                .get_with(&[k], |v| {
                    runs += 1;
                    let mut copy = v[..v.len() / 2].to_vec();
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_micros(30) {
                        std::hint::spin_loop();
                    }
                    copy.extend_from_slice(&v[v.len() / 2..]);
                    copy
                })
                .unwrap()
                .unwrap();
            assert!(is_whole(&got), "a torn value came out of get_with");
            seen.insert(u64::from_le_bytes(got[..8].try_into().unwrap()));
            reads += 1;
        }
    }
    let ckpts = s.stats().unwrap().checkpoints - ckpt0;
    drop(child);
    // The race was really run: the writer checkpointed while we read, values changed under us,
    // and some closures ran again because their first run was overtaken.
    assert!(ckpts >= 20, "only {ckpts} checkpoints");
    assert!(seen.len() > 100, "only {} values seen", seen.len());
    eprintln!("{reads} reads, {runs} closure runs, {ckpts} checkpoints");
    assert!(runs > reads, "no read was retried ({reads} reads)");
}

/// The other process of the tests above (see `common`); does nothing in an ordinary test run.
#[test]
#[ignore = "a helper process the other tests start; not a test"]
fn helper() {
    let Some((role, path)) = helper_role() else {
        return;
    };
    match role.as_str() {
        // Overwrites four keys forever (the test kills it); the small journal checkpoints often.
        "overwriter" => {
            let store = Store::open(&path, opts()).unwrap();
            say("ready");
            for n in 1u64.. {
                store.put(&[(n % 4) as u8], &value(n)).unwrap();
            }
        }
        other => panic!("unknown helper role {other}"),
    }
}
