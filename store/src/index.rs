//! The hash index: an open-addressing table of 8-byte slots (linear probing) in the data file.
//! Two copies exist (SPEC.md, "Index copies"); these functions work on whichever copy they are
//! given. Readers use them without a lock, so everything read is validated: a slot may point
//! anywhere after corruption, and a block may be reused while a slow reader looks at it (the
//! caller's sequence check catches that).

use crate::error::{Error, Result};
use crate::layout::*;
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
        let off = index + i * 8;
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
    let mut b = [0u8; ENTRY_HEADER];
    map.read(slot_offset(slot), &mut b)?;
    let h = EntryHeader::decode(&b);
    if h.total_len() > class_size(slot_class(slot)) {
        return Err(Error::corrupt(
            &map.path,
            format!(
                "entry at {} claims {} bytes in a {}-byte block",
                slot_offset(slot),
                h.total_len(),
                class_size(slot_class(slot))
            ),
        ));
    }
    Ok(h)
}

fn holds_key(map: &Map, slot: u64, key: &[u8]) -> Result<bool> {
    let h = header_at(map, slot)?;
    Ok(h.key_len as usize == key.len()
        && map.holds(slot_offset(slot) + ENTRY_HEADER as u64, key)?)
}

/// The entry of `key` in the block `slot` points to (the probe matched the key), checksum verified.
pub fn value_at(map: &Map, slot: u64, key: &[u8]) -> Result<Entry> {
    let off = slot_offset(slot);
    let mut hdr = [0u8; ENTRY_HEADER];
    map.read(off, &mut hdr)?;
    let h = EntryHeader::decode(&hdr);
    if h.total_len() > class_size(slot_class(slot)) || h.key_len as usize != key.len() {
        return Err(Error::corrupt(
            &map.path,
            format!("entry at {off} does not match its slot"),
        ));
    }
    let value = map.read_vec(off + (ENTRY_HEADER + key.len()) as u64, h.val_len as usize)?;
    let crc = crc32c::crc32c_append(
        crc32c::crc32c_append(crc32c::crc32c(&hdr[4..]), key),
        &value,
    );
    // The checksum is computed with the caller's key: it also proves the block holds that key.
    if crc != h.crc {
        return Err(Error::corrupt(
            &map.path,
            format!("entry at {off} fails its checksum"),
        ));
    }
    Ok(Entry {
        value,
        expires_at_ms: h.expires_ms,
        modified_at_ms: h.modified_ms,
        version: h.version,
    })
}

pub fn key_at(map: &Map, slot: u64) -> Result<Vec<u8>> {
    let h = header_at(map, slot)?;
    map.read_vec(slot_offset(slot) + ENTRY_HEADER as u64, h.key_len as usize)
}

/// Reads a whole entry and verifies its checksum.
pub fn entry_at(map: &Map, slot: u64) -> Result<(Vec<u8>, Entry)> {
    let off = slot_offset(slot);
    let h = header_at(map, slot)?;
    let mut hdr = [0u8; ENTRY_HEADER];
    map.read(off, &mut hdr)?;
    let key = map.read_vec(off + ENTRY_HEADER as u64, h.key_len as usize)?;
    let value = map.read_vec(
        off + ENTRY_HEADER as u64 + h.key_len as u64,
        h.val_len as usize,
    )?;
    let crc = crc32c::crc32c_append(
        crc32c::crc32c_append(crc32c::crc32c(&hdr[4..]), &key),
        &value,
    );
    if crc != h.crc || EntryHeader::decode(&hdr) != h {
        return Err(Error::corrupt(
            &map.path,
            format!("entry at {off} fails its checksum"),
        ));
    }
    Ok((
        key,
        Entry {
            value,
            expires_at_ms: h.expires_ms,
            modified_at_ms: h.modified_ms,
            version: h.version,
        },
    ))
}

/// Whether the entry has not expired (the clock is read only for entries that can expire).
pub fn is_live(e: &Entry) -> bool {
    e.expires_at_ms == 0 || e.expires_at_ms > crate::store::now_ms()
}
