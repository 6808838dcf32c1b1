//! The write path's fixed cost: a small put allocates nothing on the heap once the store is warm
//! (the journal record is encoded into a buffer kept between commits, and the block planned for
//! a single put is held inline). A counting allocator sees every allocation of this thread.

use apcdb::{Durability, Options, Store};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is a
// thread-local `Cell` with a const initialiser, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

#[test]
fn a_small_put_allocates_nothing_once_warm() {
    let dir = tempfile::tempdir().unwrap();
    for durability in [Durability::None, Durability::Sync] {
        let path = dir.path().join(format!("{durability:?}.db"));
        let s = Store::open(
            &path,
            Options::default()
                .durability(durability)
                .max_size(64 << 20)
                .journal_size(64 << 20),
        )
        .unwrap();
        let keys: Vec<String> = (0..64).map(|i| format!("key{i}")).collect();
        let value = [7u8; 100];
        // Warm: every key present, the thread's buffers grown once.
        for k in &keys {
            s.put(k.as_bytes(), &value).unwrap();
        }
        // Few enough puts that no checkpoint runs (a checkpoint may allocate).
        let n = if durability == Durability::None {
            2000
        } else {
            50
        };
        let new_keys: Vec<String> = (0..n).map(|i| format!("new{i:05}")).collect();
        let checkpoints = s.stats().unwrap().checkpoints;
        let before = allocs();
        for i in 0..n {
            s.put(keys[i % 64].as_bytes(), &value).unwrap();
            // A put with an expiry, and a first insert of a new key, too.
            if i % 10 == 0 {
                s.put_with_expiry(new_keys[i].as_bytes(), &value, u64::MAX / 2)
                    .unwrap();
            }
        }
        let made = allocs() - before;
        assert_eq!(
            s.stats().unwrap().checkpoints,
            checkpoints,
            "{durability:?}"
        );
        assert_eq!(made, 0, "{durability:?}: heap allocations in {n} puts");
        assert_eq!(s.get(b"key5").unwrap().unwrap(), value);
    }
}
