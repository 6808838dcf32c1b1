//! The write faults of the blocks writers fill next, taken on the checkpoint thread.
//!
//! Each checkpoint's flush (`msync`) write-protects every page it writes back, and the pending
//! ring hands out freed blocks at scattered addresses: without this, most puts of an overwrite
//! workload take a write fault (the filesystem's `page_mkwrite`), a few microseconds on the
//! writer's path. The handle's checkpoint thread takes them first, for the next `WINDOW`
//! reusable blocks of the ring, with `MADV_POPULATE_WRITE` (no byte changes). Only pages the
//! running flush has already passed, or any with no flush running: a page made writable ahead
//! of the flush would be written back by it, protected again, and fault once more. The ring is
//! read without the write lock: a stale position only costs a useless populate (SPEC.md §2.4).
//!
//! A page's write fault is taken per process (each has its own page tables), so a populate helps
//! only the process that then fills the block. When several processes write, each would
//! populate every reusable block for the one in N it fills itself, and on a machine with fewer
//! cores than writers that work is taken from the writers: the thread works only for a process
//! that made nearly all of the recent commits (`Share`). And it populates each page once, in
//! runs of adjacent pages, not once per block: small blocks share pages.

use crate::format::*;
use crate::store::Inner;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};

/// How many reusable blocks ahead of the ring's head the checkpoint thread keeps writable; a
/// writer wakes it when less than half of that is left. A few tens of milliseconds of puts:
/// blocks made writable but not filled before the next freeze are written back once for
/// nothing, so the window stays short.
pub(crate) const WINDOW: u64 = 4096;

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
    /// Where the thread goes on from in the ring: where it stopped, unless the head passed it or
    /// the ring was emptied since (its counters then start again from 0).
    fn prefault_start(&self, head: u64, free_to: u64) -> u64 {
        match self.prefaulted_to.load(Relaxed) {
            done if done < head || done > free_to => head,
            done => done,
        }
    }

    /// After a commit, outside the write lock: wakes the checkpoint thread (starting it in this
    /// process if the handle wants one) when the reusable blocks ahead of the ring's head that
    /// it has not made writable reach half a window.
    pub(crate) fn wake_prefaulter(&self) {
        if self.ephemeral || !self.checkpointer.wanted() {
            return;
        }
        let share = &self.prefault_share;
        if share.own.fetch_add(1, Relaxed) == 0 {
            let lsn = self.lock_file.state().next_lsn.load(Relaxed);
            share.seen_lsn.store(lsn.saturating_sub(1), Relaxed);
        }
        let (head, free_to) = self.lock_file.state().reusable_span();
        let want = free_to.min(head + WINDOW);
        if want >= self.prefault_start(head, free_to) + WINDOW / 2 {
            if let Some(t) = self.checkpointer.own_thread() {
                t.unpark();
            }
        }
    }

    /// On the handle's checkpoint thread only (elsewhere it would just move the faults): makes
    /// the pages of the next reusable blocks writable.
    pub(crate) fn prefault_ahead(&self) {
        let mine = self.checkpointer.running_here();
        if self.ephemeral || mine.is_none_or(|t| t.id() != std::thread::current().id()) {
            return;
        }
        let h = self.lock_file.state();
        let (head, free_to) = h.reusable_span();
        let end = free_to.min(head + WINDOW);
        let mut pos = self.prefault_start(head, free_to);
        // Skipped for a process that shares the writes: the window counts as done, so that its
        // writers do not wake the thread again until the ring has moved on.
        if !self.mostly_own_commits() {
            self.prefaulted_to.store(end, Relaxed);
            return;
        }
        let passed = self.flushed_up_to();
        // Below the heap's end only: past it a compaction may have punched the file out, and
        // making such a page writable would allocate it on the disk again for nothing.
        let heap_end = self.map.len().min(h.heap_end());
        let mut pages = Vec::new();
        while pos < end {
            let s = h.ring_at(pos);
            pos += 1;
            let (off, class) = (slot_offset(s), slot_class(s));
            if (class as usize) >= CLASSES {
                continue;
            }
            // Up to a page from the block's start: an entry fills its block from the start,
            // and the rest of a large block (a whole old index copy, say) may never be written.
            let len = class_size(class).min(PAGE);
            if off < HEAP_START || off + len > heap_end || !passed(off, len) {
                continue;
            }
            pages.push(off / PAGE);
            pages.push((off + len - 1) / PAGE);
        }
        pages.sort_unstable();
        pages.dedup();
        let share = &self.prefault_share;
        share.pages.fetch_add(pages.len() as u64, Relaxed);
        for run in pages.chunk_by(|a, b| a + 1 == *b) {
            let (first, n) = (run[0], run.len() as u64);
            self.map.prefault_write(first * PAGE, n * PAGE);
            share.calls.fetch_add(1, Relaxed);
        }
        // Blocks skipped because the flush had not passed them yet are left to the writer: going
        // back for them would rescan the window at every wake while another process flushes.
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
    /// scattered addresses: the checkpoint thread has made their pages writable first, so the
    /// writer faults (almost) only on its journal pages, where it would fault about once per put.
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
        // Overwrites in a scattered order: the ring then holds blocks all over the heap.
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
            // overwritten blocks reusable (left in the ring, not linked into free lists).
            let txn = inner.lock().unwrap();
            txn.settle().unwrap();
            txn.freeze().unwrap();
            txn.settle().unwrap();
        }
        let h = inner.lock_file.state();
        let (head, free_to) = h.reusable_span();
        assert!(
            free_to - head >= super::WINDOW,
            "{} reusable blocks",
            free_to - head
        );
        inner.wake_prefaulter();
        let deadline = Instant::now() + Duration::from_secs(20);
        while inner.prefaulted_to.load(Relaxed) < head + super::WINDOW {
            assert!(
                Instant::now() < deadline,
                "the checkpoint thread never prefaulted"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let puts = super::WINDOW as i64 / 2;
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
    /// through `a`; then a checkpoint through `a`, which makes the overwritten blocks reusable.
    /// Returns the ring's reusable span.
    fn scattered_overwrites(
        a: &Store,
        keys: u64,
        value: &[u8],
        mut write: impl FnMut(u64, &[u8], &[u8]),
    ) -> (u64, u64) {
        for i in 0..keys {
            a.put(format!("k{i}").as_bytes(), value).unwrap();
        }
        for i in 0..keys {
            let k = format!("k{}", i.wrapping_mul(7919) % keys);
            write(i, k.as_bytes(), value);
        }
        let inner = a.inner();
        let txn = inner.lock().unwrap();
        txn.settle().unwrap();
        txn.freeze().unwrap();
        txn.settle().unwrap();
        drop(txn);
        inner.lock_file.state().reusable_span()
    }

    fn options() -> Options {
        Options::default()
            .durability(Durability::None)
            .background_checkpoints(true)
            // No checkpoint of its own while the tests look: its flush would write-protect the
            // pages again and move the ring.
            .journal_size(64 << 20)
            .index_slots(1 << 16)
    }

    /// Waits until the handle's checkpoint thread has been over the window from `head`.
    fn wait_for_pass(store: &Store, head: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while store.inner().prefaulted_to.load(Relaxed) < head + super::WINDOW {
            assert!(
                Instant::now() < deadline,
                "the checkpoint thread never came"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Small blocks share pages: the thread makes each page writable once, in runs of adjacent
    /// pages, instead of one call per block of the window.
    #[test]
    fn each_page_is_populated_once_per_window() {
        const KEYS: u64 = 20_000;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.db"), options()).unwrap();
        let (head, free_to) =
            scattered_overwrites(&store, KEYS, &[3u8; 40], |_, k, v| store.put(k, v).unwrap());
        assert!(free_to - head >= super::WINDOW);
        let share = &store.inner().prefault_share;
        store.inner().wake_prefaulter();
        wait_for_pass(&store, head);
        let (pages, calls) = (share.pages.load(Relaxed), share.calls.load(Relaxed));
        assert!(pages > 0, "nothing populated");
        // The window's 4096 scattered blocks of ~100 bytes lie in the heap's ~600 pages, most
        // of them adjacent: a few calls, where one per block would be about 4096.
        assert!(
            calls <= pages && calls * 16 <= super::WINDOW && pages * 4 <= super::WINDOW,
            "{calls} calls for {pages} pages of {} blocks",
            super::WINDOW
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
        let (head, free_to) = scattered_overwrites(&a, KEYS, &value, |i, k, v| {
            if i % 2 == 0 { &a } else { &b }.put(k, v).unwrap()
        });
        assert!(free_to - head >= super::WINDOW);
        // One more write each, which wakes `a`'s thread: it goes over the window, and leaves it.
        b.put(b"b", &value).unwrap();
        a.put(b"a", &value).unwrap();
        let share = &a.inner().prefault_share;
        a.inner().wake_prefaulter();
        wait_for_pass(&a, head);
        assert_eq!(
            share.pages.load(Relaxed),
            0,
            "populated for the other writer"
        );

        // `a` alone: enough overwrites to move the ring's head half a window on, and wake its
        // thread, which this time populates the blocks ahead.
        for i in 0..super::WINDOW {
            let k = format!("k{}", (i + 1).wrapping_mul(104_729) % KEYS);
            a.put(k.as_bytes(), &value).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while share.pages.load(Relaxed) == 0 {
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
