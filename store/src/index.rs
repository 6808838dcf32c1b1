//! The hash index: an open-addressing table of 8-byte slots (linear probing) in the data file.
//! Two copies exist (SPEC.md, "Index copies"); these functions work on whichever copy they are
//! given. Readers use them without a lock, so everything read is validated: a slot may point
//! anywhere after corruption, and a block may be reused while a slow reader looks at it (the
//! caller's sequence check catches that).

use crate::error::Result;
use crate::format::*;
use crate::map::Map;
use crate::Entry;

/// Where a key is, or where it may be inserted.
pub struct Probe {
    /// Byte offset of the slot holding the key, and the slot's value.
    pub found: Option<(u64, u64)>,
    /// The first reusable slot (tombstone or empty) on the key's probe path.
    pub free: Option<u64>,
}

pub fn probe(map: &Map, index: u64, slots: u64, key: &[u8], hash: u64) -> Result<Probe> {
    let mask = slots - 1;
    let mut i = hash & mask;
    let mut free = None;
    for _ in 0..slots {
        let off = slot_at(index, i);
        let s = map.load_u64(off)?;
        if s == SLOT_EMPTY {
            return Ok(Probe {
                found: None,
                free: free.or(Some(off)),
            });
        }
        if s == SLOT_TOMBSTONE {
            free.get_or_insert(off);
        } else if slot_tag(s) == slot_tag(hash) && holds_key(map, s, key)? {
            return Ok(Probe {
                found: Some((off, s)),
                free,
            });
        }
        i = (i + 1) & mask;
    }
    Ok(Probe { found: None, free })
}

/// Reads and checks the header of the block a slot points to.
pub fn header_at(map: &Map, slot: u64) -> Result<EntryHeader> {
    Ok(entry_header(map, slot)?.0)
}

fn holds_key(map: &Map, slot: u64, key: &[u8]) -> Result<bool> {
    let h = header_at(map, slot)?;
    Ok(h.key_len as usize == key.len()
        && map.holds(slot_offset(slot) + ENTRY_HEADER as u64, key)?)
}

/// The entry of `key` in the block `slot` points to (the probe matched the key), checksum verified.
pub fn value_at(map: &Map, slot: u64, key: &[u8]) -> Result<Entry> {
    read_value(map, slot, key)
}

pub fn key_at(map: &Map, slot: u64) -> Result<Vec<u8>> {
    let h = header_at(map, slot)?;
    map.read_vec(slot_offset(slot) + ENTRY_HEADER as u64, h.key_len as usize)
}

/// Reads a whole entry and verifies its checksum.
pub fn entry_at(map: &Map, slot: u64) -> Result<(Vec<u8>, Entry)> {
    read_entry(map, slot)
}

/// The live mapping as a source of entries for the format's decoder.
impl EntrySource for Map {
    fn fetch(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        self.read(off, buf)
    }
    fn fetch_vec(&self, off: u64, len: usize) -> Result<Vec<u8>> {
        self.read_vec(off, len)
    }
    fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Whether the entry has not expired (the clock is read only for entries that can expire).
pub fn is_live(e: &Entry) -> bool {
    e.expires_at_ms == 0 || e.expires_at_ms > crate::store::now_ms()
}
