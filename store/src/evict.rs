//! Eviction (`WhenFull::Evict`, SPEC.md §4.1): a write that finds no room removes other entries
//! until it fits, instead of failing.
//!
//! Victims are chosen by a CLOCK hand that walks the live index from where it last stopped (its
//! position is in the lock file). Expired entries go as soon as the hand reaches them; a live one
//! whose key bucket was referenced since the hand last passed (a read or a write set the bit in the
//! lock file's access table) gets its bit cleared and a second chance; an unreferenced one goes,
//! unless the write being made names its key. The victims are removed by one ordinary journaled
//! delete record, so eviction is as crash-safe as any delete, then a checkpoint makes their blocks
//! reusable. Each round looks at a bounded number of slots, and a write runs a bounded number of
//! rounds: no write walks the whole index, and none empties the store unless it needs that room.

use crate::error::Result;
use crate::format::*;
use crate::index;
use crate::lock_file::ACCESS_BUCKETS;
use crate::store::now_ms;
use crate::write::WriteTxn;
use crate::WhenFull;
use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;

/// A possible victim: its key and its block's bytes.
type Candidate = (Vec<u8>, u64);

/// Slots one round looks at, at most.
const ROUND_SLOTS: u64 = 4096;
/// Rounds one write runs, at most, before it gives up with `Error::Full`.
const MAX_ROUNDS: u32 = 8;
/// Entries one round removes, at most (one journal record).
const ROUND_VICTIMS: usize = 256;

impl WriteTxn<'_> {
    /// Plans the blocks of `ops`, evicting other entries while there is no room. `Ok(None)`:
    /// nothing more can be evicted (every remaining entry is one `ops` names, or the bounded
    /// rounds did not free a large enough block).
    pub(crate) fn plan_evicting(&self, ops: &[Op]) -> Result<Option<crate::apply::Planned>> {
        let (protect, target) = (protected(ops), self.target(ops));
        for _ in 0..MAX_ROUNDS {
            if let Some(blocks) = self.plan_blocks(ops)? {
                return Ok(Some(blocks));
            }
            let evicted = self.evict_round(&protect, target)?;
            if let Some(blocks) = self.plan_reclaimed(ops)? {
                return Ok(Some(blocks));
            }
            // Free bytes enough, but scattered: clear one run as long as the largest block.
            let largest = largest_put(ops);
            let cleared = self.evict_region(&protect, largest)?;
            if cleared > 0 {
                if let Some(blocks) = self.plan_reclaimed(ops)? {
                    return Ok(Some(blocks));
                }
            }
            if evicted == 0 && cleared == 0 {
                break;
            }
        }
        Ok(None)
    }

    /// After evicting: checkpoints (blocks freed since the last checkpoint are reusable only
    /// after the next one) and plans; failing that, merges neighbouring free blocks (victims of
    /// small classes may add up to the large block this write needs) and plans again.
    fn plan_reclaimed(&self, ops: &[Op]) -> Result<Option<crate::apply::Planned>> {
        self.checkpoint()?;
        if let Some(blocks) = self.plan_blocks(ops)? {
            return Ok(Some(blocks));
        }
        self.exclude_readers(|| self.rebuild_free_lists())?;
        self.plan_blocks(ops)
    }

    /// Makes room in the index for `puts` more keys (`ensure_index_room`), evicting while the
    /// rebuilt copies do not fit. A rebuild keeps both old copies until the next checkpoint and
    /// never shrinks the index, so a store full of small entries may have no room for it at
    /// all: entries are evicted first, and the index is then rebuilt at the size the remaining
    /// ones need, which may be smaller than now.
    pub(crate) fn index_room_evicting(&self, ops: &[Op], puts: u64) -> Result<()> {
        let h = self.lock_file.state();
        let mut round = 0;
        loop {
            let e = match self.ensure_index_room(puts) {
                Err(e)
                    if e.is_full() && self.when_full == WhenFull::Evict && round < MAX_ROUNDS =>
                {
                    e
                }
                r => return r,
            };
            round += 1;
            let slots = h.index_slots.load(Relaxed);
            let need = |h: &crate::lock_file::LockState| {
                let need =
                    (h.entries.load(Relaxed) + puts) * 100 / crate::apply::MAX_LOAD_PERCENT + 1;
                (need + need / 8).next_power_of_two().max(MIN_INDEX_SLOTS)
            };
            if round == 1 && need(h) < slots {
                // An index mostly of tombstones: the smaller copies it needs (three of them,
                // SPEC.md §2.2) may fit where copies of the current size do not. Tried before
                // evicting anything.
                self.checkpoint()?;
                match self.rebuild_index(need(h)) {
                    Err(e) if e.is_full() => {}
                    r => {
                        r?;
                        continue;
                    }
                }
            }
            let protect = protected(ops);
            let mut cleared = 0;
            // The three new copies come from contiguous space. An index that need not grow
            // (mostly tombstones) needs only that: a region chosen by the reference bits as
            // readers left them, before a round clears them over most of the index.
            if need(h) <= slots {
                cleared = self.evict_region(&protect, 3 * index_block_len(slots))?;
            }
            if cleared == 0 {
                // Fewer entries make the copies smaller; then the space for them. Copies of the
                // current size or larger did not fit, so rounds go on until the entries fit an
                // index of half the size, evicting at most half of them.
                let (same_size, entries) = (need(h) <= slots, h.entries.load(Relaxed));
                loop {
                    let n = self.evict_round(&protect, self.target(ops))?;
                    cleared += n;
                    if n == 0
                        || !same_size
                        || need(h) < slots
                        || h.entries.load(Relaxed) * 2 <= entries
                    {
                        break;
                    }
                }
                // Room for the copies of the size rebuilt below (or by `ensure_index_room`).
                cleared += self.evict_region(&protect, 3 * index_block_len(need(h)))?;
            }
            let want = need(h);
            if cleared == 0 {
                return Err(e);
            }
            self.checkpoint()?;
            self.exclude_readers(|| self.rebuild_free_lists())?;
            if want < slots {
                match self.rebuild_index(want) {
                    Err(e) if e.is_full() => {}
                    r => r?,
                }
            }
        }
    }

    /// Bytes one round frees: what `ops` needs, and somewhat more, so that the writes after it
    /// find room without a round (and its checkpoint) each: a thirty-second of the store.
    fn target(&self, ops: &[Op]) -> u64 {
        let need: u64 = ops
            .iter()
            .map(|o| match o {
                Op::Put { key, value, .. } => {
                    class_size(class_for((ENTRY_HEADER + key.len() + value.len()) as u64))
                }
                _ => 0,
            })
            .sum();
        need.max(self.max_size() / 32)
    }

    /// One turn of the hand: removes up to `target` bytes of entries in one journaled delete
    /// record; returns how many.
    fn evict_round(&self, protect: &[&[u8]], target: u64) -> Result<usize> {
        let h = self.lock_file.state();
        let (live, slots) = (h.live_index.load(Relaxed), h.index_slots.load(Relaxed));
        let now = now_ms();
        let mut hand = h.clock_hand.load(Relaxed) % slots;
        // Expired entries of the window go first; unreferenced live ones only as far as they
        // are still needed.
        let (mut expired, mut unused): (Vec<Candidate>, Vec<Candidate>) = (vec![], vec![]);
        let mut expired_bytes = 0;
        // At most one revolution: a round looks at each entry once, so a referenced one is not
        // cleared and then taken by the same round.
        for _ in 0..ROUND_SLOTS.min(slots) {
            let s = self.map.load_u64(slot_at(live, hand))?;
            hand = (hand + 1) % slots;
            if !slot_is_entry(s) {
                continue;
            }
            let eh = index::header_at(&self.map, s)?;
            let is_expired = eh.expires_ms != 0 && eh.expires_ms <= now;
            // The slot keeps the top bits of the key's hash: its access bucket, without reading
            // the key (see `lock_file::access_bucket`).
            let bucket = (s >> SLOT_TAG_SHIFT) as usize & (ACCESS_BUCKETS - 1);
            if !is_expired && (h.clear_ref(bucket) || unused.len() >= ROUND_VICTIMS) {
                continue;
            }
            let key = index::key_at(&self.map, s)?;
            if protect.contains(&&key[..]) {
                continue;
            }
            let len = class_size(slot_class(s));
            if is_expired {
                expired_bytes += len;
                expired.push((key, len));
                if expired_bytes >= target || expired.len() == ROUND_VICTIMS {
                    break;
                }
            } else {
                unused.push((key, len));
            }
        }
        // The victims, within the byte target, the count and the journal's record limit.
        let mut victims: Vec<Vec<u8>> = Vec::new();
        let (mut bytes, mut record) = (0, 0);
        for (key, len) in expired.into_iter().chain(unused) {
            if bytes >= target
                || victims.len() == ROUND_VICTIMS
                || (!victims.is_empty() && record + 5 + key.len() > self.record_limit() / 2)
                || victims.contains(&key)
            {
                break;
            }
            bytes += len;
            record += 5 + key.len();
            victims.push(key);
        }
        h.clock_hand.store(hand, Relaxed);
        if victims.is_empty() {
            return Ok(0);
        }
        let ops: Vec<Op> = victims
            .iter()
            .map(|k| Op::Delete {
                key: Cow::Borrowed(&k[..]),
            })
            .collect();
        self.commit(&ops)?;
        h.expunges.fetch_add(victims.len() as u64, Relaxed);
        Ok(victims.len())
    }

    /// Evicts every entry in the run of `len` heap bytes that holds the fewest recently used
    /// bytes and nothing that must stay (an index copy, a key the write names); returns how
    /// many. For a write whose block the scattered space that `evict_round` freed cannot hold.
    /// It lists the index's entries (as `rebuild_free_lists`, which this path runs anyway).
    fn evict_region(&self, protect: &[&[u8]], len: u64) -> Result<usize> {
        let h = self.lock_file.state();
        if len > self.max_size() / 2 {
            // Clearing most of the store for one block is a wipe in all but name.
            return Ok(0);
        }
        let (live, slots) = (h.live_index.load(Relaxed), h.index_slots.load(Relaxed));
        // (offset, bytes, slot or 0 for a block that must stay)
        let mut blocks: Vec<(u64, u64, u64)> = Vec::new();
        // The three index copies (two checkpoint copies and the live one) stay.
        for c in [h.index[0].load(Relaxed), h.index[1].load(Relaxed), live] {
            blocks.push((c, index_block_len(slots), 0));
        }
        let mut pinned = Vec::new();
        for k in protect {
            if let Some((_, s)) = self.probe_live(k, hash_key(k))?.found {
                pinned.push(slot_offset(s));
            }
        }
        for i in 0..slots {
            let s = self.map.load_u64(slot_at(live, i))?;
            if slot_is_entry(s) {
                let keep = pinned.contains(&slot_offset(s));
                blocks.push((
                    slot_offset(s),
                    class_size(slot_class(s)),
                    if keep { 0 } else { s },
                ));
            }
        }
        blocks.sort_unstable();
        let end = h.heap_end();
        // Windows start at a block (or the heap's start); each costs its entries' bytes, four
        // times for a referenced one. The cheapest allowed window wins.
        // Read once: readers of other processes set reference bits meanwhile.
        let costs: Vec<u64> = blocks
            .iter()
            .map(|b| {
                let bucket = (b.2 >> SLOT_TAG_SHIFT) as usize & (ACCESS_BUCKETS - 1);
                if h.is_referenced(bucket) {
                    4 * b.1
                } else {
                    b.1
                }
            })
            .collect();
        let mut best: Option<(u64, u64)> = None; // (cost, start)
                                                 // The blocks overlapping the window are blocks[first..next]: both ends only move right.
        let (mut first, mut next, mut cost, mut stays) = (0, 0, 0u64, 0usize);
        let starts: Vec<u64> = std::iter::once(HEAP_START)
            .chain(blocks.iter().map(|b| b.0))
            .collect();
        for start in starts {
            if start + len > end {
                break;
            }
            while next < blocks.len() && blocks[next].0 < start + len {
                if blocks[next].2 == 0 {
                    stays += 1;
                } else {
                    cost += costs[next];
                }
                next += 1;
            }
            // Blocks are disjoint and sorted, so those that end before the window are a prefix.
            while first < next && blocks[first].0 + blocks[first].1 <= start {
                if blocks[first].2 == 0 {
                    stays -= 1;
                } else {
                    cost -= costs[first];
                }
                first += 1;
            }
            if stays == 0 && best.is_none_or(|(c, _)| cost < c) {
                best = Some((cost, start));
            }
        }
        let Some((_, start)) = best else {
            return Ok(0);
        };
        let victims: Vec<Vec<u8>> = blocks
            .iter()
            .filter(|b| b.2 != 0 && b.0 < start + len && b.0 + b.1 > start)
            .map(|b| index::key_at(&self.map, b.2))
            .collect::<Result<_>>()?;
        // In records the journal takes.
        let mut n = 0;
        for chunk in victims.chunks(ROUND_VICTIMS) {
            let ops: Vec<Op> = chunk
                .iter()
                .map(|k| Op::Delete {
                    key: Cow::Borrowed(&k[..]),
                })
                .collect();
            if crate::journal::record_len(&ops) > self.record_limit() {
                for op in ops {
                    self.commit(std::slice::from_ref(&op))?;
                }
            } else {
                self.commit(&ops)?;
            }
            n += chunk.len();
        }
        h.expunges.fetch_add(n as u64, Relaxed);
        Ok(n)
    }
}

/// The keys a write names: never its own victims.
fn protected<'a>(ops: &'a [Op]) -> Vec<&'a [u8]> {
    ops.iter()
        .filter_map(|o| match o {
            Op::Put { key, .. } | Op::Delete { key } => Some(&key[..]),
            _ => None,
        })
        .collect()
}

/// The largest block one Put of `ops` needs.
fn largest_put(ops: &[Op]) -> u64 {
    ops.iter()
        .map(|o| match o {
            Op::Put { key, value, .. } => {
                class_size(class_for((ENTRY_HEADER + key.len() + value.len()) as u64))
            }
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}
