//! The write faults of the blocks writers fill next, taken on the checkpoint thread.
//!
//! Each checkpoint's flush (`msync`) write-protects every page it writes back, so without this
//! most puts of an overwrite workload would take a write fault (the filesystem's
//! `page_mkwrite`), a few microseconds on the writer's path. Allocation is next-fit by address
//! (`reuse.rs`), so the blocks writers fill next are the free runs right after the reuse map's
//! cursor: the handle's checkpoint thread makes the pages of the next `WINDOW_UNITS` free units
//! writable with `MADV_POPULATE_WRITE` (no byte changes). Only pages the running flush has
//! already passed, or any with no flush running: a page made writable ahead of the flush would
//! be written back by it, protected again, and fault once more. The map is read without the
//! write lock: a stale view only costs a useless populate (SPEC.md §2.4).
//!
//! A page's write fault is taken per process (each has its own page tables), so a populate helps
//! only the process that then fills the block. When several processes write, each would
//! populate the window for the one block in N it fills itself, and on a machine with fewer
//! cores than writers that work is taken from the writers: the thread works only for a process
//! that made nearly all of the recent commits (`Share`). Each page is populated once per pass,
//! adjacent pages in one call: small free runs share pages.

use crate::format::*;
use crate::store::Inner;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};

/// Free units (64 bytes) ahead of the cursor the checkpoint thread keeps writable, 1 MiB of
/// free space; a writer wakes it once the cursor passed the middle of that window. A few tens
/// of milliseconds of puts: pages made writable but not filled before the next freeze are
/// written back once for nothing, so the window stays short.
pub(crate) const WINDOW_UNITS: u64 = 1 << 14;
/// Non-empty words of the map one wake looks at, at most.
const WINDOW_WORDS: usize = 1 << 12;
/// Bytes made writable with one call, at most.
const POPULATE_STEP: u64 = 64 << 10;

/// The thread populates only for a process whose own commits were at least this share (in
/// eighths) of all commits since its last pass: practically the store's only writer.
const OWN_EIGHTHS: u64 = 7;

/// This handle's part of the store's recent commits, as its checkpoint thread judges it, and
/// what that thread did (counted for the tests).
#[derive(Default)]
pub(crate) struct Share {
    /// Commits made through this handle (counted after each, outside the lock).
    own: AtomicU64,
    /// `own` and the store's next LSN when the thread last looked (or, before that, at this
    /// handle's first commit: the LSNs count earlier processes' commits too).
    seen_own: AtomicU64,
    seen_lsn: AtomicU64,
    /// What the last look decided: others made too many of the commits.
    shared: AtomicBool,
    /// Pages made writable, and the `madvise` calls that did it.
    pub(crate) pages: AtomicU64,
    pub(crate) calls: AtomicU64,
}

impl Inner {
    /// After a commit, outside the write lock: wakes the checkpoint thread (starting it in this
    /// process if the handle wants one) when the cursor left the stretch from where the last
    /// window started to its middle.
    pub(crate) fn wake_prefaulter(&self) {
        if self.ephemeral || !self.checkpointer.wanted() {
            return;
        }
        let share = &self.prefault_share;
        if share.own.fetch_add(1, Relaxed) == 0 {
            let lsn = self.lock_file.state().next_lsn.load(Relaxed);
            share.seen_lsn.store(lsn.saturating_sub(1), Relaxed);
        }
        let map = self.lock_file.state().reuse_view();
        if map.free_units() == 0 {
            return;
        }
        let cursor = map.cursor.load(Relaxed);
        let [from, mid, epoch] = self.prefault_span.each_ref().map(|a| a.load(Relaxed));
        // Also after a checkpoint completed: its flush protected the pages again.
        let h = self.lock_file.state();
        if !(from..mid).contains(&cursor) || epoch != h.epoch.load(Relaxed) {
            if let Some(t) = self.checkpointer.own_thread() {
                t.unpark();
            }
        }
    }

    /// On the handle's checkpoint thread only (elsewhere it would just move the faults): makes
    /// the pages of the free runs after the cursor writable.
    pub(crate) fn prefault_ahead(&self) {
        if self.ephemeral || !self.on_own_flusher() {
            return;
        }
        let h = self.lock_file.state();
        let map = h.reuse_view();
        let cursor = map.cursor.load(Relaxed);
        // Go on from where the last window ended, unless the cursor is outside it or a
        // checkpoint completed since (its flush protected the window's pages again).
        let epoch = h.epoch.load(Relaxed);
        let done = self.prefaulted_to.load(Relaxed);
        let [from, _, was] = self.prefault_span.each_ref().map(|a| a.load(Relaxed));
        let start = match (from..done).contains(&cursor) && was == epoch {
            true => done,
            false => cursor,
        };
        let passed = self.flushed_up_to();
        // Below the heap's end only: past it a compaction may have punched the file out, and
        // making such a page writable would allocate it on the disk again for nothing.
        let heap_end = self.map.len().min(h.heap_end());
        // Skipped for a process that shares the writes: the window counts as passed (below), so
        // that its writers do not wake the thread again until the cursor has moved on.
        let populate = self.mostly_own_commits();
        let share = &self.prefault_share;
        // Pages `[from, to)` (byte offsets, page-aligned), made writable in steps.
        let make_writable = |from: u64, to: u64| {
            let mut off = from;
            while off < to {
                let len = (to - off).min(POPULATE_STEP);
                if passed(off, len) {
                    self.map.prefault_write(off, len);
                    share.pages.fetch_add(len / PAGE, Relaxed);
                    share.calls.fetch_add(1, Relaxed);
                }
                off += len;
            }
        };
        // The pages of the runs seen so far and not yet made writable: runs that share a page
        // or lie on adjacent pages are joined, so each page is populated once.
        let mut pages: Option<(u64, u64)> = None;
        let (mut budget, mut end, mut mid) = (WINDOW_UNITS, start, None);
        for (first, n) in map.runs_ahead(start, WINDOW_UNITS, WINDOW_WORDS) {
            let n = n.min(budget);
            let from = HEAP_START + first * BLOCK_ALIGN;
            let stop = (HEAP_START + (first + n) * BLOCK_ALIGN).min(heap_end);
            if populate && from < stop {
                let (lo, hi) = (
                    from / PAGE * PAGE,
                    stop.next_multiple_of(PAGE).min(self.map.len()),
                );
                pages = match pages {
                    Some((a, b)) if lo <= b => Some((a, b.max(hi))),
                    Some((a, b)) => {
                        make_writable(a, b);
                        Some((lo, hi))
                    }
                    None => Some((lo, hi)),
                };
            }
            budget -= n;
            end = first + n;
            if budget <= WINDOW_UNITS / 2 && mid.is_none() {
                mid = Some(end);
            }
            if budget == 0 {
                break;
            }
        }
        if let Some((a, b)) = pages {
            make_writable(a, b);
        }
        // Runs skipped because the flush had not passed them yet are left to the writer: going
        // back for them would rescan the window at every wake while another process flushes.
        self.prefault_span[0].store(cursor, Relaxed);
        self.prefault_span[2].store(epoch, Relaxed);
        // A window that wrapped to the heap's start: the next wake is at the next checkpoint.
        let mid = match end < start {
            true => u64::MAX,
            false => mid.unwrap_or(end).max(cursor + 1),
        };
        self.prefault_span[1].store(mid, Relaxed);
        self.prefaulted_to.store(end, Relaxed);
    }

    /// Whether this handle made at least `OWN_EIGHTHS` of the store's commits since the last
    /// time it was asked; as then when nobody committed since.
    fn mostly_own_commits(&self) -> bool {
        let share = &self.prefault_share;
        let own = share.own.load(Relaxed);
        let lsn = self.lock_file.state().next_lsn.load(Relaxed);
        let seen = share.seen_lsn.load(Relaxed);
        // (Lower: the shared state was rebuilt and the LSNs start again.)
        if lsn != seen {
            let own_since = own.saturating_sub(share.seen_own.swap(own, Relaxed));
            share.seen_lsn.store(lsn, Relaxed);
            let all_since = lsn.saturating_sub(seen).max(1);
            share
                .shared
                .store(own_since * 8 < all_since * OWN_EIGHTHS, Relaxed);
        }
        !share.shared.load(Relaxed)
    }

    /// Whether a block lies where the running flush has already written back (every block,
    /// with no flush running): the flush goes through the heap in file order but skips the
    /// live index copy (`flush_frozen`), and publishes how many bytes it has done.
    fn flushed_up_to(&self) -> impl Fn(u64, u64) -> bool {
        let h = self.lock_file.state();
        let due = self.flush_due();
        // With durable writers around, the flush goes over the heap twice (written back, then
        // synced: SPEC.md §5) and its progress no longer maps to one pass: wait for its end
        // rather than dirty pages the second pass would write back again.
        let paced = due && self.durable_writers();
        let (total, done) = (h.flush_total.load(Acquire), h.flush_done.load(Acquire));
        let live = h.live_index.load(Relaxed);
        let live_end = live + index_block_len(h.index_slots.load(Relaxed));
        move |off, size| {
            if !due {
                return true;
            }
            if paced {
                return false;
            }
            let end = off + size;
            let at = if end <= live {
                end.saturating_sub(HEAP_START)
            } else if off >= live_end {
                live.saturating_sub(HEAP_START) + (end - live_end)
            } else {
                return false;
            };
            total > 0 && at <= done
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::checkpoint::tests::thread_faults;
    use crate::format::*;
    use crate::{Durability, Options, Store};
    use std::sync::atomic::Ordering::*;
    use std::time::{Duration, Instant};

    /// While a flush runs, only blocks it has already written back count as passed, counting
    /// its progress through the heap without the live index copy; with none running, all do.
    #[test]
    fn only_blocks_behind_the_running_flush_are_made_writable() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options::default()
            .durability(Durability::None)
            .index_slots(1 << 12);
        let store = Store::open(dir.path().join("s.db"), opts).unwrap();
        for i in 0..2000u64 {
            store.put(format!("k{i}").as_bytes(), &[1u8; 100]).unwrap();
        }
        let inner = store.inner();
        let h = inner.lock_file.state();
        let txn = inner.lock().unwrap();
        txn.settle().unwrap();
        assert!(inner.flushed_up_to()(HEAP_START, 64), "no flush running");
        txn.freeze().unwrap();
        let live = h.live_index.load(Relaxed);
        let live_end = live + index_block_len(h.index_slots.load(Relaxed));
        let before_live = live - HEAP_START;
        assert!(
            !inner.flushed_up_to()(HEAP_START, 64),
            "the flush has not started"
        );
        // The flush as if it had written back everything before the live copy and one page
        // after it.
        h.flush_total.store(before_live + 10 * PAGE, Relaxed);
        h.flush_done.store(before_live + PAGE, Relaxed);
        let passed = inner.flushed_up_to();
        assert!(passed(HEAP_START, 64));
        assert!(passed(live - 64, 64));
        assert!(!passed(live, 64), "the live copy is never flushed");
        assert!(passed(live_end + PAGE - 64, 64));
        assert!(!passed(live_end + PAGE - 64, 128), "reaches past the flush");
        assert!(!passed(live_end + 2 * PAGE, 64));
        txn.settle().unwrap();
        assert!(inner.flushed_up_to()(live_end + 2 * PAGE, 64), "flush done");
    }

    /// After a checkpoint's flush write-protected the heap, overwrites fill blocks freed at
    /// scattered addresses: the checkpoint thread has made the pages after the cursor writable
    /// first, so the writer faults (almost) only on its journal pages, where it would fault
    /// about once per put.
    #[test]
    fn writers_fill_reused_blocks_without_write_faults() {
        const KEYS: u64 = 20_000;
        let dir = tempfile::tempdir().unwrap();
        let opts = Options::default()
            .durability(Durability::None)
            .background_checkpoints(true)
            // No checkpoint of its own during the timed puts: its flush would write-protect
            // the pages again.
            .journal_size(64 << 20)
            .index_slots(1 << 16);
        let store = Store::open(dir.path().join("s.db"), opts).unwrap();
        let value = [7u8; 200];
        // Overwrites in a scattered order: the freed blocks lie all over the heap.
        let scattered = |i: u64| format!("k{}", i.wrapping_mul(7919) % KEYS);
        for round in 0..2 {
            for i in 0..KEYS {
                let k = if round == 0 {
                    format!("k{i}")
                } else {
                    scattered(i)
                };
                store.put(k.as_bytes(), &value).unwrap();
            }
        }
        let inner = store.inner();
        {
            // A checkpoint whose flush write-protects every page and whose completion makes the
            // overwritten blocks reusable, moved into the reuse map.
            let txn = inner.lock().unwrap();
            txn.settle().unwrap();
            txn.freeze().unwrap();
            txn.settle().unwrap();
            txn.reclaim().unwrap();
        }
        let h = inner.lock_file.state();
        let cursor = h.reuse_view().cursor.load(Relaxed);
        assert!(h.reuse_view().free_units() >= super::WINDOW_UNITS);
        inner.wake_prefaulter();
        let deadline = Instant::now() + Duration::from_secs(20);
        let epoch = h.epoch.load(Relaxed);
        while inner.prefault_span[0].load(Relaxed) != cursor
            || inner.prefault_span[2].load(Relaxed) != epoch
        {
            assert!(
                Instant::now() < deadline,
                "the checkpoint thread never prefaulted: {:?} {:?}, cursor {cursor}, epoch {epoch}",
                inner.prefault_span,
                inner.prefaulted_to
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Half a window of 256-byte blocks (4 units each).
        let puts = (super::WINDOW_UNITS / 8) as i64;
        let before = thread_faults();
        for i in 0..puts as u64 {
            store.put(scattered(i).as_bytes(), &value).unwrap();
        }
        let faults = thread_faults() - before;
        assert!(
            faults * 4 < puts,
            "{faults} page faults in {puts} puts into reused blocks"
        );
        assert_eq!(store.get(scattered(0).as_bytes()).unwrap().unwrap(), value);
    }
    /// Overwrites of `keys` keys in a scattered order through `write(i)`, after a first round
    /// through `a`; then a checkpoint through `a`, which makes the overwritten blocks reusable
    /// and moves them into the reuse map.
    fn scattered_overwrites(
        a: &Store,
        keys: u64,
        value: &[u8],
        mut write: impl FnMut(u64, &[u8], &[u8]),
    ) {
        for i in 0..keys {
            a.put(format!("k{i}").as_bytes(), value).unwrap();
        }
        for i in 0..keys {
            let k = format!("k{}", i.wrapping_mul(7919) % keys);
            write(i, k.as_bytes(), value);
        }
        let txn = a.inner().lock().unwrap();
        txn.settle().unwrap();
        txn.freeze().unwrap();
        txn.settle().unwrap();
        txn.reclaim().unwrap();
    }

    fn options() -> Options {
        Options::default()
            .durability(Durability::None)
            .background_checkpoints(true)
            // No checkpoint of its own while the tests look: its flush would write-protect the
            // pages again and move the cursor.
            .journal_size(64 << 20)
            .index_slots(1 << 16)
    }

    /// Wakes the handle's checkpoint thread and waits until it has been over the window from
    /// the cursor as it stands now.
    fn wait_for_pass(store: &Store) {
        let inner = store.inner();
        let h = inner.lock_file.state();
        let cursor = h.reuse_view().cursor.load(Relaxed);
        let epoch = h.epoch.load(Relaxed);
        inner.wake_prefaulter();
        let deadline = Instant::now() + Duration::from_secs(20);
        while inner.prefault_span[0].load(Relaxed) != cursor
            || inner.prefault_span[2].load(Relaxed) != epoch
        {
            assert!(
                Instant::now() < deadline,
                "the checkpoint thread never came"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for any pass in flight, then has the thread go over the window once more (as if a
    /// checkpoint had completed since its last pass) and returns the pages and calls of that
    /// pass alone.
    fn one_more_pass(store: &Store) -> (u64, u64) {
        wait_for_pass(store);
        std::thread::sleep(Duration::from_millis(50));
        let inner = store.inner();
        let share = &inner.prefault_share;
        let before = (share.pages.load(Relaxed), share.calls.load(Relaxed));
        inner.prefault_span[2].store(u64::MAX, Relaxed);
        wait_for_pass(store);
        (
            share.pages.load(Relaxed) - before.0,
            share.calls.load(Relaxed) - before.1,
        )
    }

    /// Small blocks share pages: the thread makes each page writable once, adjacent pages in
    /// one call, instead of one call per free run of the window.
    #[test]
    fn each_page_is_populated_once_per_window() {
        const KEYS: u64 = 20_000;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.db"), options()).unwrap();
        // 64-byte blocks, half of them overwritten in a scattered order: the freed ones are
        // short runs all over the part of the heap the first round filled.
        scattered_overwrites(&store, KEYS, &[3u8; 40], |i, k, v| {
            if i % 2 == 0 {
                store.put(k, v).unwrap()
            }
        });
        let h = store.inner().lock_file.state();
        // Next-fit would go on in the fresh space after the overwrites: start it over from the
        // heap's start, where the scattered runs are (any cursor is a valid one).
        let txn = store.inner().lock().unwrap();
        h.reuse_view().cursor.store(0, Relaxed);
        drop(txn);
        let heap_pages = (h.heap_end() - HEAP_START).div_ceil(PAGE) + 1;
        let (pages, calls) = one_more_pass(&store);
        assert!(pages > 0, "nothing populated");
        // Thousands of short runs in a few hundred pages: each page once, and a call per
        // 64 KiB of adjacent pages, where one per run would be thousands.
        assert!(
            pages <= heap_pages && calls * (super::POPULATE_STEP / PAGE) <= 2 * pages + 16,
            "{calls} calls for {pages} pages, the heap has {heap_pages}"
        );
    }

    /// Page tables are per process: a populate helps only the process that then fills the
    /// block. A handle whose process shares the writes with another (here two handles of one
    /// file, each with its own mapping, as two processes have) leaves the write faults to
    /// whoever fills each block; once it writes alone again, its thread populates for it.
    #[test]
    fn a_handle_that_shares_the_writes_leaves_the_faults_to_their_writers() {
        const KEYS: u64 = 20_000;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let a = Store::open(&path, options()).unwrap();
        let b = Store::open(&path, options()).unwrap();
        let value = [5u8; 200];
        // Half of the overwrites through each handle, alternately.
        scattered_overwrites(&a, KEYS, &value, |i, k, v| {
            if i % 2 == 0 { &a } else { &b }.put(k, v).unwrap()
        });
        // One more write each, then `a`'s thread goes over the window, and leaves it.
        b.put(b"b", &value).unwrap();
        a.put(b"a", &value).unwrap();
        assert_eq!(one_more_pass(&a).0, 0, "populated for the other writer");

        // `a` alone: enough overwrites to move the cursor past half a window and wake its
        // thread, which this time populates the runs ahead.
        for i in 0..super::WINDOW_UNITS / 4 {
            let k = format!("k{}", (i + 1).wrapping_mul(104_729) % KEYS);
            a.put(k.as_bytes(), &value).unwrap();
        }
        let share = &a.inner().prefault_share;
        let before = share.pages.load(Relaxed);
        let deadline = Instant::now() + Duration::from_secs(20);
        while share.pages.load(Relaxed) == before {
            assert!(
                Instant::now() < deadline,
                "never populated for the only writer"
            );
            a.inner().wake_prefaulter();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(a.get(b"b").unwrap().unwrap(), value);
    }
}
