//! Read-only handles (`Options::read_only`, SPEC.md §6.8): a view of the store that needs only
//! read permission and never creates, locks or writes anything.
//!
//! The view is the newest durable checkpoint (its superblock and durable index copy, read through
//! a `PROT_READ` mapping of the data file) plus the valid journal records after it, replayed into
//! an in-memory overlay (key → entry or deletion) that lookups and scans consult before the
//! mapped index. That is what recovery would build, without running it.
//!
//! Why the mapped part stays valid while other processes write (SPEC.md §7.1): nothing that the
//! durable checkpoint references is written before a newer superblock is written — the durable
//! index copy is not touched, its entries are immutable, and blocks freed since are not reused.
//! A newer checkpoint writes its superblock into the other slot (changing the epoch word there)
//! before it reuses the old copy or its freed blocks, with an `msync` (a system call) between.
//! So a read validated by "both superblock slots' epoch words unchanged before and after" saw
//! only bytes of the checkpoint it started from. When a writer checkpoints, the handle takes a
//! new view (re-reads the superblock and the journal) and the read runs again. Scans, which may
//! take longer than writers take between checkpoints, are validated a chunk of slots at a time
//! and go on across views (`ReadOnly::scan`).
//!
//! Within the process, the private shared state (`LockFile::private`) holds the view's index
//! position; its sequence number is odd while a new view is installed, so threads of the same
//! handle never combine one view's overlay with another's index.

use crate::error::{CorruptKind, Error, Result};
use crate::format::*;
use crate::lock_file::{self, PRESENCE_BYTE};
use crate::map::Map;
use crate::store::Inner;
use crate::{Entry, EntryMeta, Scanned, Visit};
use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicU64, Ordering::*};
use std::sync::{Arc, Mutex, RwLock};

/// What a read-only handle ([`crate::Options::read_only`]) is showing, from
/// [`crate::Store::read_only_view`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadOnlyView {
    /// Epoch of the durable checkpoint the view starts from.
    pub epoch: u64,
    /// Journal records after that checkpoint, replayed into memory on top of it (0: the
    /// checkpoint is the newest state).
    pub journal_records: u64,
    /// The last process to close the store left a valid closing snapshot for this checkpoint
    /// (SPEC.md §7.2): the next open will not walk the index or replay anything.
    pub closed_cleanly: bool,
    /// Other processes had the store open when the view was taken (they may have written
    /// since; a later checkpoint of theirs gives this handle a new view).
    pub in_use: bool,
    /// Views taken: 1 at open, one more each time a writer's checkpoint moved the durable
    /// state on while this handle was reading.
    pub views: u64,
}

impl ReadOnlyView {
    /// Whether the next read-write open would have to recover (replay the journal, rebuild the
    /// free space): nobody has the store open and it was not closed cleanly. The view already
    /// shows what that recovery will produce.
    pub fn needs_recovery(&self) -> bool {
        !self.in_use && !self.closed_cleanly
    }
}

/// The journal's records after the checkpoint, as the keys they leave.
#[derive(Default)]
struct Overlay {
    /// Each key a record wrote: its newest entry, or None when deleted.
    keys: HashMap<Vec<u8>, Option<Entry>>,
    /// A `CLEAR` or `RESET` record: the mapped index is hidden entirely.
    cleared: bool,
    generation: Option<u64>,
}

impl Replay for Overlay {
    type Error = std::convert::Infallible;
    fn put(
        &mut self,
        key: &[u8],
        value: &[u8],
        expires_ms: u64,
        modified_ms: u64,
        version: u64,
    ) -> std::result::Result<(), Self::Error> {
        let e = Entry {
            value: value.to_vec(),
            expires_at_ms: expires_ms,
            modified_at_ms: modified_ms,
            version,
        };
        self.keys.insert(key.to_vec(), Some(e));
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> std::result::Result<(), Self::Error> {
        self.keys.insert(key.to_vec(), None);
        Ok(())
    }
    fn clear(&mut self) -> std::result::Result<(), Self::Error> {
        self.keys.clear();
        self.cleared = true;
        Ok(())
    }
    fn set_generation(&mut self, generation: u64) -> std::result::Result<(), Self::Error> {
        self.generation = Some(generation);
        Ok(())
    }
}

/// One view: the checkpoint it was read from and the overlay on top.
pub(crate) struct View {
    /// The epoch words of both superblock slots when the view was taken; any change means a
    /// checkpoint ran since.
    words: [u64; 2],
    overlay: Overlay,
    info: ReadOnlyView,
}

impl View {
    /// What the overlay says about `key`: `Some(entry or None)` when it decides (the key was
    /// written or deleted after the checkpoint, or everything was cleared), `None` when the
    /// mapped index does.
    pub fn lookup(&self, key: &[u8]) -> Option<Option<Entry>> {
        match self.overlay.keys.get(key) {
            Some(e) => Some(e.clone()),
            None if self.overlay.cleared => Some(None),
            None => None,
        }
    }

    /// Whether a key found in the mapped index is hidden by the overlay.
    pub fn hides(&self, key: &[u8]) -> bool {
        self.overlay.cleared || self.overlay.keys.contains_key(key)
    }

    /// Whether the mapped index is hidden entirely (a clear after the checkpoint).
    pub fn base_cleared(&self) -> bool {
        self.overlay.cleared
    }

    /// The overlay's entries (not deletions) whose key starts with `prefix`, expired ones too.
    pub fn entries<'a>(&'a self, prefix: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a Entry)> {
        self.overlay
            .keys
            .iter()
            .filter(move |(k, _)| k.starts_with(prefix))
            .filter_map(|(k, e)| e.as_ref().map(|e| (k.as_slice(), e)))
    }
}

/// A read-only handle's state beside `Inner`.
pub(crate) struct ReadOnly {
    view: RwLock<Arc<View>>,
    /// One thread takes a new view at a time.
    refreshing: Mutex<()>,
    /// The journal file does not exist: the view is the checkpoint alone.
    journal_missing: bool,
    views: AtomicU64,
}

/// Attempts at taking a view, and reads overtaken by checkpoints, before giving up with
/// `Error::Busy`: writers checkpointing faster than this handle can read.
const ATTEMPTS: u32 = 200;

fn epoch_words(map: &Map) -> Result<[u64; 2]> {
    let word = |i: usize| map.load_u64(SUPERBLOCK_OFFSETS[i] + superblock_at::EPOCH as u64);
    Ok([word(0)?, word(1)?])
}

fn busy(map: &Map, what: &str) -> Error {
    Error::Busy {
        path: map.path.clone(),
        detail: format!(
            "writers checkpointed {ATTEMPTS} times while this read-only handle was {what}; \
             try again when the store is quieter"
        ),
    }
}

impl ReadOnly {
    pub fn new(journal_missing: bool) -> ReadOnly {
        ReadOnly {
            // Words no superblock has: the first `refresh` always takes a view.
            view: RwLock::new(Arc::new(View {
                words: [u64::MAX; 2],
                overlay: Overlay::default(),
                info: ReadOnlyView::default(),
            })),
            refreshing: Mutex::new(()),
            journal_missing,
            views: AtomicU64::new(0),
        }
    }

    /// The view reads use now.
    pub fn current(&self) -> Arc<View> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn info(&self) -> ReadOnlyView {
        self.current().info.clone()
    }

    /// Takes a new view if a checkpoint ran since the current one was taken.
    pub fn refresh(&self, inner: &Inner) -> Result<()> {
        let _one = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        if epoch_words(&inner.map)? == self.current().words {
            return Ok(());
        }
        let (view, sb, journal_end) = self.take_view(inner)?;
        // Installed with the private sequence number odd: this handle's other threads never
        // combine the new overlay with the old index position, or the reverse.
        let h = inner.lock_file.state();
        h.seq.fetch_add(1, SeqCst);
        h.index[0].store(sb.index[0], Relaxed);
        h.index[1].store(sb.index[1], Relaxed);
        h.durable_copy.store(sb.durable_copy, Relaxed);
        h.index_slots.store(sb.index_slots, Relaxed);
        h.live_index
            .store(sb.index[sb.durable_copy as usize], Relaxed);
        h.epoch.store(sb.epoch, Relaxed);
        h.ckpt_lsn.store(sb.ckpt_lsn, Relaxed);
        h.generation
            .store(view.overlay.generation.unwrap_or(sb.generation), Relaxed);
        h.created_ms.store(sb.created_ms, Relaxed);
        h.max_size.store(sb.max_size.max(inner.map.len()), Relaxed);
        h.file_size.store(inner.map.len(), Relaxed);
        h.journal_pos.store(journal_end, Relaxed);
        h.recovered_records
            .store(view.info.journal_records, Relaxed);
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(view);
        h.seq.fetch_add(1, SeqCst);
        Ok(())
    }

    /// Reads the newest checkpoint and the journal after it, again if a checkpoint overtook.
    fn take_view(&self, inner: &Inner) -> Result<(View, Superblock, u64)> {
        let map = &inner.map;
        for _ in 0..ATTEMPTS {
            let words = epoch_words(map)?;
            fence(Acquire);
            let taken = self.read_checkpoint(inner);
            fence(Acquire);
            if epoch_words(map)? != words {
                continue;
            }
            let (sb, overlay, records, journal_end, closed_cleanly) = taken?;
            let in_use = lock_file::held_by_others(map.file(), &map.path, PRESENCE_BYTE)?;
            let info = ReadOnlyView {
                epoch: sb.epoch,
                journal_records: records,
                closed_cleanly,
                in_use,
                views: self.views.fetch_add(1, Relaxed) + 1,
            };
            let view = View {
                words,
                overlay,
                info,
            };
            return Ok((view, sb, journal_end));
        }
        Err(busy(map, "reading the checkpoint"))
    }

    /// The newest valid superblock, its durable index checked, the journal chain after it as an
    /// overlay, and whether a valid closing snapshot describes it.
    #[allow(clippy::type_complexity)]
    fn read_checkpoint(&self, inner: &Inner) -> Result<(Superblock, Overlay, u64, u64, bool)> {
        let map = &inner.map;
        let len = map.refresh_len()?;
        let sb = read_superblock(&map.path, len, |at, b| map.read(at, b))?;
        let durable = sb.index[sb.durable_copy as usize];
        if index_crc(map, durable, sb.index_slots)? != sb.index_crc {
            let kind = CorruptKind::IndexChecksum { epoch: sb.epoch };
            return Err(Error::corrupt(&map.path, kind));
        }
        let mut overlay = Overlay::default();
        let (mut records, mut end) = (0, 0);
        if !self.journal_missing {
            let scan = inner.journal.chain(&sb)?;
            for (lsn, ops) in &scan.records {
                let Ok(()) = replay(*lsn, ops, &mut overlay);
            }
            (records, end) = (scan.records.len() as u64, scan.end);
        }
        let mut copy = [0u8; SUPERBLOCK_LEN];
        map.read(SUPERBLOCK_OFFSETS[(sb.epoch % 2) as usize], &mut copy)?;
        let mut snap = [0u8; SNAPSHOT_LEN];
        map.read(snapshot_offset(sb.epoch), &mut snap)?;
        let closed_cleanly = records == 0
            && StateSnapshot::decode(&snap)
                .is_some_and(|s| s.describes(&sb, crc32c::crc32c(&copy) as u64, len));
        Ok((sb, overlay, records, end, closed_cleanly))
    }

    /// Runs `f` (which reads the mapped index at the position in the private state, and the
    /// current view's overlay) until it ran entirely within one checkpoint and one view.
    pub fn read<T>(&self, inner: &Inner, mut f: impl FnMut() -> Result<T>) -> Result<T> {
        let h = inner.lock_file.state();
        let mut overtaken = 0;
        loop {
            let seq = h.seq.load(Acquire);
            if seq % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            let words = self.current().words;
            if epoch_words(&inner.map)? == words {
                let r = f();
                fence(Acquire);
                if h.seq.load(Relaxed) == seq && epoch_words(&inner.map)? == words {
                    return r;
                }
            }
            // Overtaken by a checkpoint (before or during the read), or by another thread's
            // new view: read again, on a new view if needed, a bounded number of times.
            overtaken += 1;
            if overtaken > ATTEMPTS {
                return Err(busy(&inner.map, "reading"));
            }
            self.refresh(inner)?;
        }
    }

    /// The entries whose key starts with `prefix`, as `Store::scan_prefix_with` returns them.
    ///
    /// A large store may take longer to walk than writers take between checkpoints, so the walk
    /// is not one validated read: it goes through the index a chunk of slots at a time, each
    /// chunk validated like any read. When a checkpoint overtakes a chunk, the chunk is read
    /// again on the new view, from where the walk was: a key keeps its slot from one checkpoint
    /// to the next (the two index copies have one layout) unless it was written meanwhile or
    /// the index was rebuilt (other copies or size: the walk starts over, keeping what it
    /// found). Keys that an earlier view's overlay held are kept from that overlay, because the
    /// checkpoint may have put them in slots the walk had passed. So every entry that existed
    /// throughout the scan is returned once, whole; entries written during it may or may not
    /// appear, with either value.
    pub fn scan(
        &self,
        inner: &Inner,
        prefix: &[u8],
        select: &mut dyn FnMut(&[u8], &EntryMeta) -> Visit,
    ) -> Result<Vec<Scanned>> {
        let h = inner.lock_file.state();
        let map = &inner.map;
        let mut found = Found::default();
        let layout = || {
            let l = |a: &AtomicU64| a.load(Relaxed);
            (l(&h.index_slots), l(&h.index[0]), l(&h.index[1]))
        };
        let (mut view, mut shape) = (self.current(), layout());
        let (mut pos, mut chunk, mut overtaken) = (0u64, SCAN_CHUNK, 0u32);
        loop {
            let seq = h.seq.load(Acquire);
            if seq % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            let now = self.current();
            if !Arc::ptr_eq(&now, &view) {
                // A new view: what the old overlay held stays found (see above).
                found.overlay(&view, prefix, select);
                if layout() != shape {
                    pos = 0;
                }
                (view, shape) = (now, layout());
            }
            let words = view.words;
            if epoch_words(map)? == words {
                let (idx, slots) = (h.live_index.load(Relaxed), h.index_slots.load(Relaxed));
                if pos >= slots || view.base_cleared() {
                    found.overlay(&view, prefix, select);
                    return Ok(found.out);
                }
                let end = (pos + chunk).min(slots);
                let mut got = Vec::new();
                let r = (pos..end).try_for_each(|i| {
                    walk_slot(map, slot_at(idx, i), prefix, &view, select, &mut got)
                });
                fence(Acquire);
                if h.seq.load(Relaxed) == seq && epoch_words(map)? == words {
                    r?;
                    got.into_iter().for_each(|s| found.keep(s));
                    pos = end;
                    chunk = (chunk * 2).min(SCAN_CHUNK);
                    continue;
                }
                chunk = (chunk / 2).max(SCAN_MIN_CHUNK);
            }
            overtaken += 1;
            if overtaken > SCAN_ATTEMPTS {
                return Err(busy(map, "scanning"));
            }
            self.refresh(inner)?;
        }
    }

    /// Entries, bytes of their blocks and tombstones as the view shows them: the mapped index
    /// walked once, corrected by the overlay (a read-only handle has no shared counters).
    pub fn usage(&self, inner: &Inner) -> Result<(u64, u64, u64)> {
        let h = inner.lock_file.state();
        let map = &inner.map;
        self.read(inner, || {
            let view = self.current();
            let (idx, slots) = (h.live_index.load(Relaxed), h.index_slots.load(Relaxed));
            let (mut entries, mut used, mut tombstones) = (0u64, 0u64, 0u64);
            if !view.base_cleared() {
                for i in 0..slots {
                    match map.load_u64(slot_at(idx, i))? {
                        SLOT_EMPTY => {}
                        SLOT_TOMBSTONE => tombstones += 1,
                        s => {
                            entries += 1;
                            used += class_size(slot_class(s));
                        }
                    }
                }
                for key in view.overlay.keys.keys() {
                    let p = crate::index::probe(map, idx, slots, key, hash_key(key))?;
                    if let Some((_, s)) = p.found {
                        entries = entries.saturating_sub(1);
                        used = used.saturating_sub(class_size(slot_class(s)));
                    }
                }
            }
            for (key, e) in view.entries(b"") {
                let len = ENTRY_HEADER as u64 + key.len() as u64 + e.value.len() as u64;
                entries += 1;
                used += class_size(class_for(len));
            }
            Ok((entries, used, tombstones))
        })
    }
}

/// The shared counters (hits, misses, inserts, deletes, checkpoints, recoveries, records
/// replayed by the last recovery, whether the first opener rebuilt the state) of the processes
/// that have the store open, read from the lock file with one `pread` when it is readable and
/// belongs to this build (magic and version). None when nobody has the store open (the counters
/// there are a past session's, which the next opener resets) or the file cannot be read.
pub(crate) fn shared_counters(inner: &Inner) -> Option<[u64; 8]> {
    use crate::lock_file::{LockState, LOCK_FILE_MAGIC, LOCK_FILE_VERSION};
    use std::mem::offset_of;
    use std::os::unix::fs::FileExt;
    let map = &inner.map;
    if !lock_file::held_by_others(map.file(), &map.path, PRESENCE_BYTE).ok()? {
        return None;
    }
    let file = crate::files::open_read_only(&inner.lock_file.path).ok()?;
    let mut b = vec![0u8; offset_of!(LockState, dirty)];
    file.read_exact_at(&mut b, 0).ok()?;
    let at = |off: usize| u64_at(&b, off);
    if at(offset_of!(LockState, magic)) != LOCK_FILE_MAGIC
        || at(offset_of!(LockState, version)) != LOCK_FILE_VERSION
    {
        return None;
    }
    Some([
        at(offset_of!(LockState, hits)),
        at(offset_of!(LockState, misses)),
        at(offset_of!(LockState, inserts)),
        at(offset_of!(LockState, deletes)),
        at(offset_of!(LockState, checkpoints)),
        at(offset_of!(LockState, recoveries)),
        at(offset_of!(LockState, recovered_records)),
        at(offset_of!(LockState, rebuilt_at_open)),
    ])
}

/// Slots a scan reads between two validations, at most and at least (it halves the chunk each
/// time a checkpoint overtakes one, and doubles it back after each that succeeds).
const SCAN_CHUNK: u64 = 4096;
const SCAN_MIN_CHUNK: u64 = 64;
/// Chunks overtaken by checkpoints before a scan gives up with `Error::Busy`.
const SCAN_ATTEMPTS: u32 = 20_000;

/// What a scan found so far: each key once, the latest version read.
#[derive(Default)]
struct Found {
    out: Vec<Scanned>,
    at: HashMap<Vec<u8>, usize>,
}

impl Found {
    fn keep(&mut self, s: Scanned) {
        match self.at.get(&s.key) {
            Some(&i) => self.out[i] = s,
            None => {
                self.at.insert(s.key.clone(), self.out.len());
                self.out.push(s);
            }
        }
    }

    /// The live entries of `view`'s overlay under `prefix`, as `select` asks.
    fn overlay(
        &mut self,
        view: &View,
        prefix: &[u8],
        select: &mut dyn FnMut(&[u8], &EntryMeta) -> Visit,
    ) {
        for (key, e) in view.entries(prefix) {
            if !crate::index::is_live(e) {
                continue;
            }
            let meta = EntryMeta {
                value_len: e.value.len() as u64,
                expires_at_ms: e.expires_at_ms,
                modified_at_ms: e.modified_at_ms,
                version: e.version,
            };
            let value = match select(key, &meta) {
                Visit::Skip => continue,
                Visit::Meta => None,
                Visit::Value => Some(e.value.clone()),
            };
            let key = key.to_vec();
            self.keep(Scanned { key, meta, value });
        }
    }
}

/// One slot of a scan: its entry, if live, under `prefix`, not hidden by the overlay, and
/// selected, into `got`. Read without validation: the caller validates the chunk.
fn walk_slot(
    map: &Map,
    at: u64,
    prefix: &[u8],
    view: &View,
    select: &mut dyn FnMut(&[u8], &EntryMeta) -> Visit,
    got: &mut Vec<Scanned>,
) -> Result<()> {
    let s = map.load_u64(at)?;
    if !slot_is_entry(s) {
        return Ok(());
    }
    let hd = crate::index::header_at(map, s)?;
    let meta = EntryMeta {
        value_len: u64::from(hd.val_len),
        expires_at_ms: hd.expires_ms,
        modified_at_ms: hd.modified_ms,
        version: hd.version,
    };
    if meta.expires_at_ms != 0 && meta.expires_at_ms <= crate::store::now_ms() {
        return Ok(());
    }
    let key = crate::index::key_at(map, s)?;
    if !key.starts_with(prefix) || view.hides(&key) {
        return Ok(());
    }
    let value = match select(&key, &meta) {
        Visit::Skip => return Ok(()),
        Visit::Meta => None,
        // Read whole and checksum-verified.
        Visit::Value => Some(crate::index::entry_at(map, s)?.1.value),
    };
    got.push(Scanned { key, meta, value });
    Ok(())
}

/// The checksum of an index copy, read through the mapping a megabyte at a time.
fn index_crc(map: &Map, copy: u64, slots: u64) -> Result<u64> {
    let total = index_len(slots);
    let mut buf = vec![0u8; (1u64 << 20).min(total) as usize];
    let (mut crc, mut at) = (0, 0);
    while at < total {
        let n = (total - at).min(buf.len() as u64) as usize;
        map.read(copy + at, &mut buf[..n])?;
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        at += n as u64;
    }
    Ok(crc as u64)
}
