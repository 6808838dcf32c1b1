//! Streaming scans: an iterator over the live entries that holds one chunk at a time, however
//! large the store.
//!
//! A chunk is read without a lock under the readers' sequence number, like a lookup, so each
//! entry in it is whole. Between chunks writers carry on, and may rebuild the index into a
//! table of another size, which moves every entry to another slot. So the scan does not walk
//! slot positions: it walks *home slots* (the slot a key hashes to, `hash & (slots - 1)`) in
//! the order of their bit-reversed value, and at each home takes the entries whose home it is
//! (with linear probing they lie in the run of occupied slots from there to the next empty one).
//! In that order the homes already visited in a table of `2^k` slots are exactly the parents of
//! those already visited in a table of `2^(k+1)` (a home `h` splits into `h` and `h + 2^k`), so
//! across any growth of the index the cursor stays valid: every entry present for the whole
//! scan is returned once. (The same order is used by Redis's `SCAN` for the same reason.) A
//! checkpoint copies slots in place and moves nothing; a rebuild that keeps the size keeps every
//! home. Only a smaller table (recovery after a writer died between a growth and the checkpoint
//! that would have made it durable) can return an entry a second time; none is missed then
//! either.

use crate::error::{CorruptKind, Error, Result};
use crate::format::*;
use crate::index;
use crate::store::{now_ms, EntryMeta, Inner, Scanned, Visit};
use crate::Entry;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Acquire;

/// A chunk ends once it holds this many entries...
const CHUNK_ENTRIES: usize = 256;
/// ...or this many bytes of keys and values (a run of big values), or after this many homes
/// (a prefix that matches little still reads in bounded steps).
const CHUNK_BYTES: usize = 1 << 20;
const CHUNK_HOMES: u64 = 4096;

/// Entries of one chunk and where the next one starts.
struct Chunk {
    entries: Vec<Scanned>,
    /// None: the walk is complete.
    next: Option<u64>,
}

/// An iterator over the live entries whose key starts with a prefix, holding one chunk (at most
/// about 256 entries or 1 MiB) at a time; made by [`Store::scan_with`](crate::Store::scan_with).
/// See there for what it returns and its consistency.
pub struct ScanWith<'a, F> {
    inner: &'a Inner,
    prefix: Vec<u8>,
    select: F,
    /// The next home to visit (in the bit-reversed order); None once the walk is complete.
    cursor: Option<u64>,
    chunk: VecDeque<Scanned>,
}

impl<F> std::fmt::Debug for ScanWith<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanWith")
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .field("cursor", &self.cursor)
            .field("buffered", &self.chunk.len())
            .finish_non_exhaustive()
    }
}

impl<'a, F: FnMut(&[u8], &EntryMeta) -> Visit> ScanWith<'a, F> {
    pub(crate) fn new(inner: &'a Inner, prefix: &[u8], select: F) -> Self {
        ScanWith {
            inner,
            prefix: prefix.to_vec(),
            select,
            cursor: Some(0),
            chunk: VecDeque::new(),
        }
    }

    /// Reads the chunk that starts at `cursor`, all of it under one validated read.
    fn read_chunk(&mut self, cursor: u64) -> Result<Chunk> {
        let (inner, prefix, select) = (self.inner, &self.prefix[..], &mut self.select);
        let h = inner.lock_file.state();
        inner.read(|| {
            let (idx, slots) = (h.live_index.load(Acquire), h.index_slots.load(Acquire));
            let mask = slots - 1;
            let mut c = cursor;
            let mut entries = Vec::new();
            let (mut bytes, mut homes) = (0usize, 0u64);
            loop {
                visit_home(
                    inner,
                    idx,
                    mask,
                    c & mask,
                    prefix,
                    select,
                    &mut entries,
                    &mut bytes,
                )?;
                homes += 1;
                // The next home in bit-reversed order; wrapping to 0 means all were visited.
                c = ((c | !mask).reverse_bits().wrapping_add(1)).reverse_bits();
                if c == 0 {
                    return Ok(Chunk {
                        entries,
                        next: None,
                    });
                }
                if entries.len() >= CHUNK_ENTRIES || bytes >= CHUNK_BYTES || homes >= CHUNK_HOMES {
                    return Ok(Chunk {
                        entries,
                        next: Some(c),
                    });
                }
            }
        })
    }
}

/// Adds to `out` the live entries whose home is `home` and whose key starts with `prefix`: they
/// lie in the run of occupied slots (entries and tombstones) from `home` to the next empty one.
#[allow(clippy::too_many_arguments)]
fn visit_home(
    inner: &Inner,
    idx: u64,
    mask: u64,
    home: u64,
    prefix: &[u8],
    select: &mut impl FnMut(&[u8], &EntryMeta) -> Visit,
    out: &mut Vec<Scanned>,
    bytes: &mut usize,
) -> Result<()> {
    let map = &inner.map;
    let mut i = home;
    for _ in 0..=mask {
        let s = map.load_u64(slot_at(idx, i))?;
        if s == SLOT_EMPTY {
            return Ok(());
        }
        i = (i + 1) & mask;
        if !slot_is_entry(s) {
            continue;
        }
        let hd = index::header_at(map, s)?;
        let key_off = slot_offset(s) + ENTRY_HEADER as u64;
        let (ours, wanted) = map.with_slice(key_off, hd.key_len as usize, |k| {
            (hash_key(k) & mask == home, k.starts_with(prefix))
        })?;
        if !ours || !wanted || (hd.expires_ms != 0 && hd.expires_ms <= now_ms()) {
            continue;
        }
        let meta = EntryMeta {
            value_len: u64::from(hd.val_len),
            expires_at_ms: hd.expires_ms,
            modified_at_ms: hd.modified_ms,
            version: hd.version,
        };
        let key = map.read_vec(key_off, hd.key_len as usize)?;
        let value = match select(&key, &meta) {
            Visit::Skip => continue,
            Visit::Meta => None,
            Visit::Value => {
                let (k, e) = index::entry_at(map, s)?;
                if k != key {
                    let kind = CorruptKind::EntryKeyMismatch { at: slot_offset(s) };
                    return Err(Error::corrupt(&inner.path, kind));
                }
                Some(e.value)
            }
        };
        *bytes += key.len() + value.as_ref().map_or(0, Vec::len);
        out.push(Scanned { key, meta, value });
    }
    Ok(())
}

impl<F: FnMut(&[u8], &EntryMeta) -> Visit> Iterator for ScanWith<'_, F> {
    type Item = Result<Scanned>;

    fn next(&mut self) -> Option<Result<Scanned>> {
        loop {
            if let Some(e) = self.chunk.pop_front() {
                return Some(Ok(e));
            }
            let cursor = self.cursor?;
            if let Some(ro) = &self.inner.ro {
                // A read-only handle sees the journal through its in-memory overlay, which a walk
                // of the mapped index alone would miss: it reads through its own validated,
                // chunked walk (SPEC.md §6.8), collected at once.
                self.cursor = None;
                match ro.scan(self.inner, &self.prefix, &mut self.select) {
                    Ok(all) => self.chunk = all.into(),
                    Err(e) => return Some(Err(e)),
                }
                continue;
            }
            match self.read_chunk(cursor) {
                Ok(c) => {
                    self.cursor = c.next;
                    self.chunk = c.entries.into();
                }
                Err(e) => {
                    // An error ends the scan: what follows a damaged slot cannot be trusted.
                    self.cursor = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// The selection of [`Scan`]: every matching entry with its value.
type AllValues = fn(&[u8], &EntryMeta) -> Visit;

/// An iterator over the live entries whose key starts with a prefix, with their values, holding
/// one chunk at a time; made by [`Store::scan`](crate::Store::scan).
#[derive(Debug)]
pub struct Scan<'a>(ScanWith<'a, AllValues>);

impl<'a> Scan<'a> {
    pub(crate) fn new(inner: &'a Inner, prefix: &[u8]) -> Self {
        Scan(ScanWith::new(inner, prefix, |_, _| Visit::Value))
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<(Vec<u8>, Entry)>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.0.next()?.map(|s| {
            let entry = Entry {
                value: s.value.unwrap_or_default(),
                expires_at_ms: s.meta.expires_at_ms,
                modified_at_ms: s.meta.modified_at_ms,
                version: s.meta.version,
            };
            (s.key, entry)
        }))
    }
}
