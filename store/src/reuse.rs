//! The reuse map: reusable free space of the heap, one bit per 64-byte unit, in the lock file
//! (SPEC.md §2.4). Blocks are taken from it next-fit by address: a shared cursor sweeps the heap
//! and each allocation takes the first free run that holds it at or after the cursor, wrapping
//! at the end. A cycle's allocations then land in a narrow band of addresses instead of all over
//! the heap, so a checkpoint writes back few pages; and freeing writes nothing into the freed
//! block (a free-list link would dirty its page for nothing). Neighbours coalesce by themselves.
//!
//! A second level (one bit per word, set when the word may hold a free unit) lets a scan skip
//! full stretches of the heap 4,096 units at a time.
//!
//! Every change is a few independent word stores made under the write lock. A holder that dies
//! between them leaves units either still marked free (they were free: the block using them
//! was never published) or marked used while free (lost space, found again by the next rebuild
//! of the free space): never a unit both free and used. A summary bit set over an empty word
//! only costs a scan a look; the one order that matters (summary bit cleared while its word
//! still has a bit) never happens, since a summary bit is cleared only after its word reads 0.
//! Setting a bit that is set already changes nothing, so freeing is idempotent.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Words of the map: 2^24 units of 64 bytes, 1 GiB of heap (the default maximum size; 2 MiB of
/// the lock file, which is allocated whole). Space past it is kept in the per-class free lists.
pub const REUSE_WORDS: usize = 1 << 18;
/// Words of the summary level (one bit per word of the map).
pub const REUSE_SUMMARY: usize = REUSE_WORDS / 64;
/// Non-empty words a bounded search looks at before it gives up (about 1 MiB of fragmented
/// heap): an allocation then tries the other sources, and only before the file would grow does
/// a search look at every word.
pub const SCAN_WORDS: usize = 1 << 14;

/// The map's words, summary, cursor (a unit number) and count of free units, as they lie in the
/// lock file (or in a test's memory).
pub struct ReuseMap<'a> {
    pub words: &'a [AtomicU64],
    pub summary: &'a [AtomicU64],
    pub cursor: &'a AtomicU64,
    pub free: &'a AtomicU64,
}

#[cfg(test)]
thread_local! {
    /// Stores a change may still make before its holder "dies" (tests of a holder killed in
    /// the middle of a change); `u64::MAX`: no death.
    static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(u64::MAX) };
}

/// Whether the holder may make the next store of a change (always, but in a test that kills
/// it after a number of stores).
#[inline]
fn step() -> bool {
    #[cfg(test)]
    {
        let left = STEPS.with(|s| s.get());
        if left == 0 {
            return false;
        }
        if left != u64::MAX {
            STEPS.with(|s| s.set(left - 1));
        }
    }
    true
}

/// Bits `[from, to)` of a word (`from < to <= 64`).
fn mask(from: u64, to: u64) -> u64 {
    let high = if to == 64 { !0 } else { (1u64 << to) - 1 };
    high & (!0u64 << from)
}

impl ReuseMap<'_> {
    /// Units the map can describe.
    pub fn capacity(&self) -> u64 {
        self.words.len() as u64 * 64
    }

    /// Whether word `w` may hold free units (its summary bit).
    fn listed(&self, w: usize) -> bool {
        self.summary[w / 64].load(Relaxed) & (1 << (w % 64)) != 0
    }

    /// The first word at or after `w` whose summary bit is set (`words.len()` when none).
    fn next_listed(&self, mut w: usize) -> usize {
        while w < self.words.len() {
            let s = self.summary[w / 64].load(Relaxed) >> (w % 64);
            if s != 0 {
                return w + s.trailing_zeros() as usize;
            }
            w = (w / 64 + 1) * 64;
        }
        w
    }

    /// Forgets every free unit (the map is rebuilt from the index next): only the summary and
    /// the counters are written.
    pub fn reset(&self) {
        for s in self.summary {
            if s.load(Relaxed) != 0 {
                s.store(0, Relaxed);
            }
        }
        self.free.store(0, Relaxed);
        self.cursor.store(0, Relaxed);
    }

    /// Free units it holds (exact unless a holder died in the middle of a change).
    pub fn free_units(&self) -> u64 {
        self.free.load(Relaxed)
    }

    /// Marks units `[first, first + n)` free (some may be free already). Units past the map's
    /// capacity are the caller's to keep elsewhere.
    pub fn put(&self, first: u64, n: u64) {
        let end = (first + n).min(self.capacity());
        let mut u = first;
        while u < end {
            let w = (u / 64) as usize;
            let to = (end - w as u64 * 64).min(64);
            let m = mask(u % 64, to);
            // A word whose summary bit is clear holds no free unit, whatever its bits say (they
            // may be left from an earlier state: the first opener zeroes only the summary).
            let old = match self.listed(w) {
                true => self.words[w].load(Relaxed),
                false => 0,
            };
            // The word first, then its summary bit: a death between loses the units only.
            if !step() {
                return;
            }
            self.words[w].store(old | m, Relaxed);
            let s = &self.summary[w / 64];
            if !step() {
                return;
            }
            s.store(s.load(Relaxed) | 1 << (w % 64), Relaxed);
            if !step() {
                return;
            }
            let added = (m & !old).count_ones() as u64;
            self.free.store(self.free.load(Relaxed) + added, Relaxed);
            u = w as u64 * 64 + to;
        }
    }

    /// Marks units `[first, first + n)` used (some may be used already).
    pub fn clear(&self, first: u64, n: u64) {
        let end = (first + n).min(self.capacity());
        let mut u = first;
        while u < end {
            let w = (u / 64) as usize;
            let to = (end - w as u64 * 64).min(64);
            let m = mask(u % 64, to);
            let old = self.words[w].load(Relaxed);
            if self.listed(w) && old & m != 0 {
                // The word first: its summary bit goes only once it reads 0.
                if !step() {
                    return;
                }
                self.words[w].store(old & !m, Relaxed);
                if !step() {
                    return;
                }
                let gone = (old & m).count_ones() as u64;
                let free = self.free.load(Relaxed).saturating_sub(gone);
                self.free.store(free, Relaxed);
                if old & !m == 0 {
                    let s = &self.summary[w / 64];
                    if !step() {
                        return;
                    }
                    s.store(s.load(Relaxed) & !(1 << (w % 64)), Relaxed);
                }
            }
            u = w as u64 * 64 + to;
        }
    }

    /// Marks every unit from `first` on used.
    pub fn clear_from(&self, first: u64) {
        let cap = self.capacity();
        if first < cap {
            // Only words the summary says may hold a bit.
            let mut w = (first / 64) as usize;
            loop {
                w = self.next_listed(w);
                if w >= self.words.len() {
                    break;
                }
                let lo = (w as u64 * 64).max(first);
                self.clear(lo, (w as u64 + 1) * 64 - lo);
                w += 1;
            }
        }
    }

    /// Takes `n` contiguous free units lying wholly below unit `limit`: the first run that holds
    /// them at or after the cursor, else the first from the start. With `exact_first`, a run of
    /// exactly `n` units is looked for first (a nearly full store: cutting a long run for a
    /// small block could leave no room for a large one that fits today). Looks at no more than
    /// `max_words` non-empty words per pass. Returns the first unit taken; the cursor moves past
    /// it.
    pub fn take(&self, n: u64, limit: u64, max_words: usize, exact_first: bool) -> Option<u64> {
        let limit = limit.min(self.capacity());
        // The count only saves a bounded search its look at an empty map (it may be off by a
        // block after a holder died mid-change): a search of the whole map ignores it.
        if n == 0 || limit < n || (max_words != usize::MAX && self.free_units() < n) {
            return None;
        }
        let cursor = self.cursor.load(Relaxed);
        let start = if cursor < limit { cursor } else { 0 };
        if !exact_first && max_words > 0 {
            // Most takes find the free run going on right at the cursor, where the last block
            // ended: the one word read here is the answer the search below would give first.
            if let Some(found) = self.take_at(start, n, limit) {
                self.cursor.store(found + n, Relaxed);
                return Some(found);
            }
        }
        let pass = |exact: bool| {
            let mut budget = max_words;
            self.search(start, limit, n, exact, &mut budget)
                .or_else(|| match start {
                    0 => None,
                    // Wrapped: from the start up to where the first pass began, plus what a run
                    // beginning before it needs.
                    _ => self.search(0, (start + n).min(limit), n, exact, &mut budget),
                })
        };
        let found = match exact_first {
            true => pass(true).or_else(|| pass(false)),
            false => pass(false),
        }?;
        self.clear(found, n);
        self.cursor.store(found + n, Relaxed);
        Some(found)
    }

    /// Takes units `[at, at + n)` when they are free, within one word and below `limit`: what
    /// `clear` does for them, with the word it read to decide (the same stores in the same
    /// order, so a holder that dies between them leaves what `clear` would).
    #[inline]
    fn take_at(&self, at: u64, n: u64, limit: u64) -> Option<u64> {
        let (w, bit) = ((at / 64) as usize, at % 64);
        if bit + n > 64 || at + n > limit || !self.listed(w) {
            return None;
        }
        let m = mask(bit, bit + n);
        let old = self.words[w].load(Relaxed);
        if old & m != m {
            return None;
        }
        if !step() {
            return Some(at);
        }
        self.words[w].store(old & !m, Relaxed);
        if !step() {
            return Some(at);
        }
        self.free
            .store(self.free.load(Relaxed).saturating_sub(n), Relaxed);
        if old & !m == 0 && step() {
            let s = &self.summary[w / 64];
            s.store(s.load(Relaxed) & !(1 << (w % 64)), Relaxed);
        }
        Some(at)
    }

    /// Takes `n` contiguous free units below unit `limit` from the smallest run that holds them
    /// (the first of exactly `n` ends the search): a walk of the map below `limit`, for a
    /// compaction, which must fit every entry it moves into the room below its line. The
    /// cursor stays where it is.
    pub fn take_best(&self, n: u64, limit: u64) -> Option<u64> {
        if n == 0 {
            return None;
        }
        let mut best: Option<(u64, u64)> = None;
        self.each_run(0, limit.min(self.capacity()), |at, len| {
            if len >= n && best.is_none_or(|(_, b)| len < b) {
                best = Some((at, len));
            }
            len == n
        });
        let (at, _) = best?;
        self.clear(at, n);
        Some(at)
    }

    /// Calls `f` with each whole run of free units in `[from, to)` (first unit, length), in
    /// address order, until it returns true.
    fn each_run(&self, from: u64, to: u64, mut f: impl FnMut(u64, u64) -> bool) {
        let (mut run, mut run_end) = (0u64, u64::MAX);
        let mut w = (from / 64) as usize;
        let last = to.div_ceil(64) as usize;
        loop {
            w = self.next_listed(w);
            if w >= last {
                break;
            }
            let base = w as u64 * 64;
            let mut word = self.words[w].load(Relaxed);
            w += 1;
            if base < from {
                word &= !0u64 << (from - base);
            }
            if base + 64 > to {
                word &= mask(0, to - base);
            }
            while word != 0 {
                let bit = word.trailing_zeros() as u64;
                let ones = (word >> bit).trailing_ones() as u64;
                word &= !mask(bit, bit + ones);
                let at = base + bit;
                if run_end == at {
                    run_end += ones;
                    continue;
                }
                if run_end != u64::MAX && f(run, run_end - run) {
                    return;
                }
                (run, run_end) = (at, at + ones);
            }
        }
        if run_end != u64::MAX {
            f(run, run_end - run);
        }
    }

    /// The first run of at least `n` free units in `[from, to)` (with `exact`, of exactly `n`,
    /// as far as the bounds show).
    fn search(&self, from: u64, to: u64, n: u64, exact: bool, budget: &mut usize) -> Option<u64> {
        // The free run being extended: `[run, run_end)`.
        let (mut run, mut run_end) = (0u64, u64::MAX);
        let fits = |run: u64, run_end: u64| run_end != u64::MAX && run_end - run == n;
        let mut w = (from / 64) as usize;
        let last = to.div_ceil(64) as usize;
        loop {
            w = self.next_listed(w);
            if w >= last || *budget == 0 {
                // A run that reached the end of its word and went no further.
                return (exact && fits(run, run_end)).then_some(run);
            }
            let base = w as u64 * 64;
            let mut word = self.words[w].load(Relaxed);
            w += 1;
            if word == 0 {
                continue;
            }
            *budget -= 1;
            if base < from {
                word &= !0u64 << (from - base);
            }
            if base + 64 > to {
                word &= mask(0, to - base);
            }
            let mut bit = 0u64;
            while bit < 64 {
                let rest = word >> bit;
                if rest == 0 {
                    break;
                }
                bit += rest.trailing_zeros() as u64;
                let ones = (word >> bit).trailing_ones() as u64;
                let at = base + bit;
                if run_end != at {
                    if exact && fits(run, run_end) {
                        return Some(run);
                    }
                    run = at;
                }
                run_end = at + ones;
                bit += ones;
                let done = !exact || bit < 64;
                if done && run_end - run >= n && (!exact || run_end - run == n) {
                    return Some(run);
                }
            }
        }
    }

    /// The free runs at or after unit `from` (wrapping to the start once), as (first unit,
    /// count), until `want` free units were seen or `max_words` non-empty words were read.
    /// Read without the write lock by the checkpoint thread: a stale answer only costs a
    /// useless prefault.
    pub fn runs_ahead(&self, from: u64, want: u64, max_words: usize) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        let (mut seen, mut words) = (0u64, 0usize);
        let cap = self.capacity();
        let from = if from < cap { from } else { 0 };
        for (lo, hi) in [(from, cap), (0, from)] {
            let mut w = (lo / 64) as usize;
            while seen < want && words < max_words {
                w = self.next_listed(w);
                if (w as u64) * 64 >= hi {
                    break;
                }
                let base = w as u64 * 64;
                let mut word = self.words[w].load(Relaxed);
                w += 1;
                if word == 0 {
                    continue;
                }
                words += 1;
                if base < lo {
                    word &= !0u64 << (lo - base);
                }
                while word != 0 {
                    let bit = word.trailing_zeros() as u64;
                    let ones = (word >> bit).trailing_ones() as u64;
                    word &= !mask(bit, bit + ones);
                    match out.last_mut() {
                        Some((a, n)) if *a + *n == base + bit => *n += ones,
                        _ => out.push((base + bit, ones)),
                    }
                    seen += ones;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Owned {
        words: Vec<AtomicU64>,
        summary: Vec<AtomicU64>,
        cursor: AtomicU64,
        free: AtomicU64,
    }

    fn owned(words: usize) -> Owned {
        Owned {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            summary: (0..words.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            cursor: AtomicU64::new(0),
            free: AtomicU64::new(0),
        }
    }

    impl Owned {
        fn map(&self) -> ReuseMap<'_> {
            ReuseMap {
                words: &self.words,
                summary: &self.summary,
                cursor: &self.cursor,
                free: &self.free,
            }
        }
    }

    /// Two freed neighbours make one run that a larger block fits in; a block spanning words
    /// is found; freeing the same units twice counts them once.
    #[test]
    fn neighbours_coalesce_into_one_run() {
        let o = owned(256);
        let m = o.map();
        m.put(60, 3);
        m.put(63, 3); // 60..66, across a word boundary
        m.put(63, 3);
        assert_eq!(m.free_units(), 6);
        assert_eq!(m.take(7, u64::MAX, SCAN_WORDS, false), None, "no run of 7");
        assert_eq!(m.take(6, u64::MAX, SCAN_WORDS, false), Some(60));
        assert_eq!(m.free_units(), 0);
        m.put(1000, 200);
        assert_eq!(m.take(130, u64::MAX, SCAN_WORDS, false), Some(1000));
        assert_eq!(m.take(70, u64::MAX, SCAN_WORDS, false), Some(1130));
        assert_eq!(m.free_units(), 0);
        assert!(o.summary.iter().all(|s| s.load(Relaxed) == 0));
    }

    /// Blocks come in address order from the cursor on, and the search wraps to the start once
    /// the end is reached; a hole too small is passed over.
    #[test]
    fn next_fit_sweeps_by_address_and_wraps() {
        let o = owned(4096);
        let m = o.map();
        for u in [10, 500, 70_000, 200_000] {
            m.put(u, 4);
        }
        m.put(100, 2); // too small for 4 units
        o.cursor.store(400, Relaxed);
        assert_eq!(m.take(4, u64::MAX, SCAN_WORDS, false), Some(500));
        assert_eq!(m.take(4, u64::MAX, SCAN_WORDS, false), Some(70_000));
        assert_eq!(m.take(4, u64::MAX, SCAN_WORDS, false), Some(200_000));
        assert_eq!(m.take(4, u64::MAX, SCAN_WORDS, false), Some(10), "wrapped");
        assert_eq!(m.take(4, u64::MAX, SCAN_WORDS, false), None);
        assert_eq!(m.take(2, u64::MAX, SCAN_WORDS, false), Some(100));
        // A limit keeps blocks below it (compaction), and the run must end below it too.
        m.put(300, 8);
        m.put(5000, 8);
        assert_eq!(m.take(8, 305, SCAN_WORDS, false), None);
        assert_eq!(m.take(8, 308, SCAN_WORDS, false), Some(300));
        o.cursor.store(6000, Relaxed);
        assert_eq!(
            m.take(8, u64::MAX, SCAN_WORDS, false),
            Some(5000),
            "wrapped"
        );
    }

    /// In a nearly full store a hole of exactly the block's size is preferred to cutting a
    /// longer run, even one nearer the cursor; holes ending at a word's end count too.
    #[test]
    fn exact_hole_first_when_asked() {
        let o = owned(64);
        let m = o.map();
        m.put(10, 40); // a long run
        m.put(120, 8); // ends at unit 128, a word's end
        m.put(200, 8);
        assert_eq!(m.take(8, u64::MAX, SCAN_WORDS, true), Some(120));
        assert_eq!(m.take(8, u64::MAX, SCAN_WORDS, true), Some(200));
        assert_eq!(
            m.take(8, u64::MAX, SCAN_WORDS, true),
            Some(10),
            "then first fit"
        );
        o.cursor.store(0, Relaxed);
        m.put(300, 8);
        assert_eq!(
            m.take(8, u64::MAX, SCAN_WORDS, false),
            Some(18),
            "first fit"
        );
    }

    /// A compaction's search takes the smallest run that holds the block, wherever the cursor
    /// is, and only below its limit.
    #[test]
    fn best_fit_takes_the_smallest_run() {
        let o = owned(64);
        let m = o.map();
        m.put(0, 30);
        m.put(100, 12); // ends at unit 112, inside a word
        m.put(128, 10); // crosses no word but starts one
        m.put(190, 70); // across words
        o.cursor.store(50, Relaxed);
        assert_eq!(m.take_best(9, u64::MAX), Some(128));
        assert_eq!(m.take_best(9, u64::MAX), Some(100));
        assert_eq!(
            m.take_best(40, 220),
            None,
            "the long run goes past the limit"
        );
        assert_eq!(m.take_best(40, u64::MAX), Some(190));
        m.put(300, 20);
        assert_eq!(
            m.take_best(9, u64::MAX),
            Some(300),
            "20 units beat the two of 30"
        );
        assert_eq!(
            m.take_best(25, u64::MAX),
            Some(0),
            "the first of two equal runs"
        );
        assert_eq!(o.cursor.load(Relaxed), 50);
    }

    /// A search reads a bounded number of non-empty words, and clearing from a line empties
    /// the map there.
    #[test]
    fn bounded_search_and_clear_from() {
        let o = owned(4096);
        let m = o.map();
        for w in 0..100u64 {
            m.put(w * 64, 1); // single units: no run of 2
        }
        m.put(200 * 64, 2);
        assert_eq!(
            m.take(2, u64::MAX, 50, false),
            None,
            "gave up after 50 words"
        );
        assert_eq!(m.take(2, u64::MAX, 200, false), Some(200 * 64));
        m.put(100_000, 100);
        m.clear_from(100_050);
        assert_eq!(m.free_units(), 100 + 50);
        assert_eq!(m.take(51, u64::MAX, SCAN_WORDS, false), None);
        assert_eq!(m.take(50, u64::MAX, SCAN_WORDS, false), Some(100_000));
        let runs = m.runs_ahead(64 * 50, 1000, 1000);
        assert_eq!(runs.first(), Some(&(64 * 50, 1)));
        assert_eq!(runs.len(), 100, "wrapped to the start once");
    }

    /// Next-fit against a model (a set of free units): each take returns the first unit at or
    /// after the cursor (else from the start, for a run ending by where that pass began) from
    /// which `n` units are free below the limit, whether the run goes on at the cursor itself
    /// (the one-word shortcut) or has to be searched for, across words or not.
    #[test]
    fn takes_match_a_model_of_next_fit() {
        let o = owned(8);
        let m = o.map();
        let cap = m.capacity();
        let mut free = std::collections::BTreeSet::new();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |bound: u64| {
            rng = rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (rng >> 33) % bound
        };
        let (mut at_cursor, mut searched) = (0, 0);
        for _ in 0..20_000 {
            if next(3) == 0 {
                let (at, n) = (next(cap), 1 + next(24));
                let n = n.min(cap - at);
                m.put(at, n);
                free.extend(at..at + n);
                continue;
            }
            let n = 1 + next(12);
            let limit = if next(8) == 0 { next(cap) } else { u64::MAX };
            let lim = limit.min(cap);
            let cursor = o.cursor.load(Relaxed);
            let start = if cursor < lim { cursor } else { 0 };
            let fits = |u: u64| (u..u + n).all(|x| free.contains(&x));
            let want = (start..(lim + 1).saturating_sub(n))
                .find(|&u| fits(u))
                .or_else(|| match start {
                    0 => None,
                    _ => (0..((start + n).min(lim) + 1).saturating_sub(n)).find(|&u| fits(u)),
                });
            let want = want.filter(|_| n <= lim && m.free_units() >= n);
            let got = m.take(n, limit, SCAN_WORDS, false);
            assert_eq!(got, want, "take({n}) from cursor {cursor}, limit {limit}");
            if let Some(u) = got {
                for x in u..u + n {
                    free.remove(&x);
                }
                assert_eq!(o.cursor.load(Relaxed), u + n);
                match u == start {
                    true => at_cursor += 1,
                    false => searched += 1,
                }
            }
            assert_eq!(m.free_units(), free.len() as u64);
            // A word is listed exactly while it holds a free unit.
            for (w, word) in o.words.iter().enumerate() {
                assert_eq!(m.listed(w), word.load(Relaxed) != 0, "word {w}");
            }
        }
        assert!(
            at_cursor > 1000 && searched > 1000,
            "{at_cursor} {searched}"
        );
    }

    /// The free units the map shows (what a search can find), as a set.
    fn visible(m: &ReuseMap<'_>) -> std::collections::BTreeSet<u64> {
        let mut out = std::collections::BTreeSet::new();
        m.each_run(0, m.capacity(), |a, n| {
            out.extend(a..a + n);
            false
        });
        out
    }

    /// A holder killed after any store of a change (freeing or taking a block that spans
    /// three words, with stale bits left in a word an earlier death never listed): a search
    /// then finds only units that were free before or belong to the block being changed, so
    /// no unit is ever both free and used, and no other free unit is lost.
    #[test]
    fn a_holder_killed_mid_change_leaves_no_unit_both_free_and_used() {
        let o = owned(256);
        let m = o.map();
        let block = (100u64, 150u64); // units 100..250: words 1, 2 and 3
        for steps in 0..12 {
            for freeing in [true, false] {
                m.reset();
                // Stale bits in words whose summary bit is clear (left by an earlier state):
                // units 260..270 must not become free when 300..320 is freed in their word.
                o.words[4].store(0x7fe0, Relaxed);
                o.words[2].store(0xffff_0000, Relaxed);
                m.put(0, 10);
                m.put(300, 20);
                if !freeing {
                    m.put(block.0, block.1);
                }
                let before = visible(&m);
                let mut want: std::collections::BTreeSet<u64> = (0..10).chain(300..320).collect();
                if !freeing {
                    want.extend(block.0..block.0 + block.1);
                }
                assert_eq!(before, want);
                STEPS.with(|s| s.set(steps));
                match freeing {
                    true => m.put(block.0, block.1),
                    false => m.clear(block.0, block.1),
                }
                STEPS.with(|s| s.set(u64::MAX));
                let after = visible(&m);
                let in_block = |u: &u64| (block.0..block.0 + block.1).contains(u);
                for u in &after {
                    assert!(
                        before.contains(u) || (freeing && in_block(u)),
                        "unit {u} free after a death at store {steps} (freeing {freeing})"
                    );
                }
                for u in &before {
                    assert!(
                        after.contains(u) || (!freeing && in_block(u)),
                        "free unit {u} lost at store {steps} (freeing {freeing})"
                    );
                }
                // A search never returns a unit the map does not show.
                if let Some(at) = m.take(10, u64::MAX, usize::MAX, false) {
                    assert!((at..at + 10).all(|u| after.contains(&u)));
                }
            }
        }
    }
}
