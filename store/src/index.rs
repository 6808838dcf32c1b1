//! The hash index: an open-addressing table of 8-byte slots (linear probing) in the data file.
//! Two copies exist (SPEC.md, "Index copies"); these functions work on whichever copy they are
//! given. Readers use them without a lock, so everything read is validated: a slot may point
//! anywhere after corruption, and a block may be reused while a slow reader looks at it (the
//! caller's sequence check catches that).

use crate::error::{CorruptKind, Error, Result};
use crate::format::*;
use crate::map::{Map, View};
use crate::Entry;

/// Where a key is, or where it may be inserted.
pub struct Probe {
    /// Byte offset of the slot holding the key, and the slot's value.
    pub found: Option<(u64, u64)>,
    /// The first reusable slot (tombstone or empty) on the key's probe path.
    pub free: Option<u64>,
}

pub fn probe(map: &Map, index: u64, slots: u64, key: &[u8], hash: u64) -> Result<Probe> {
    // Every word and header under one SIGBUS guard (the writer probes on every put).
    map.with_view(|v| {
        let mask = slots - 1;
        let mut i = hash & mask;
        let mut free = None;
        for _ in 0..slots {
            let off = slot_at(index, i);
            let s = v.load_u64(off)?;
            if s == SLOT_EMPTY {
                return Ok(Probe {
                    found: None,
                    free: free.or(Some(off)),
                });
            }
            if s == SLOT_TOMBSTONE {
                free.get_or_insert(off);
            } else if slot_tag(s) == slot_tag(hash) && holds_key(map, v, s, key)? {
                return Ok(Probe {
                    found: Some((off, s)),
                    free,
                });
            }
            i = (i + 1) & mask;
        }
        Ok(Probe { found: None, free })
    })?
}

/// Reads and checks the header of the block a slot points to.
pub fn header_at(map: &Map, slot: u64) -> Result<EntryHeader> {
    Ok(entry_header(map, slot)?.0)
}

/// Whether the block `slot` points to holds `key`: its header and key read in place (no copy of
/// the header), with the header's length checked against the block as `header_at` does.
fn holds_key(map: &Map, v: &View<'_>, slot: u64, key: &[u8]) -> Result<bool> {
    let (off, block) = (slot_offset(slot), class_size(slot_class(slot)));
    // The header and as many bytes as the key has (a key that fits is inside the block).
    let span = (ENTRY_HEADER + key.len()).min(block as usize);
    let b = v.bytes(off, span)?;
    let h = EntryHeader::decode(&b[..ENTRY_HEADER]);
    if h.total_len() > block {
        let kind = CorruptKind::EntryTooLong {
            at: off,
            claims: h.total_len(),
            block,
        };
        return Err(Error::corrupt(map.path(), kind));
    }
    Ok(h.key_len as usize == key.len() && &b[ENTRY_HEADER..ENTRY_HEADER + key.len()] == key)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::LockHeld;

    const SLOTS: u64 = 8;
    /// The index under test sits in the heap's first page; entries follow it.
    const INDEX: u64 = HEAP_START;
    const BLOCKS: u64 = HEAP_START + PAGE;

    /// A data file with an empty 8-slot index and room for a few entries.
    fn fixture() -> (tempfile::TempDir, Map) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        file.set_len(BLOCKS + 16 * 64).unwrap();
        let map = Map::new(
            path,
            file,
            BLOCKS + 16 * 64,
            crate::io::FileKind::Data,
            std::sync::Arc::new(crate::io::RealIo),
        )
        .unwrap();
        (dir, map)
    }

    /// Writes `key`'s entry into block `n` and returns the slot value that points to it, tagged
    /// with `hash`.
    fn entry(map: &Map, n: u64, key: &[u8], hash: u64) -> u64 {
        let bytes = encode_entry(key, b"value", 0, 0, 1);
        map.write(&LockHeld::for_tests(), BLOCKS + n * 64, &bytes)
            .unwrap();
        slot_pack(BLOCKS + n * 64, class_for(bytes.len() as u64), hash)
    }

    fn set(map: &Map, i: u64, slot: u64) {
        map.store_u64(&LockHeld::for_tests(), INDEX + (i % SLOTS) * 8, slot)
            .unwrap();
    }

    /// A key whose home slot (hash mod 8) is `home`.
    fn key_homed_at(home: u64) -> (Vec<u8>, u64) {
        (0u32..)
            .map(|i| format!("key{i}").into_bytes())
            .map(|k| {
                let h = hash_key(&k);
                (k, h)
            })
            .find(|(_, h)| h & (SLOTS - 1) == home)
            .unwrap()
    }

    #[test]
    fn probe_passes_tombstones_and_other_keys() {
        let (_d, map) = fixture();
        let (key, hash) = key_homed_at(2);
        let (other, other_hash) = key_homed_at(3);
        set(&map, 2, SLOT_TOMBSTONE);
        set(&map, 3, entry(&map, 0, &other, other_hash));
        set(&map, 4, SLOT_TOMBSTONE);
        let mine = entry(&map, 1, &key, hash);
        set(&map, 5, mine);
        let p = probe(&map, INDEX, SLOTS, &key, hash).unwrap();
        assert_eq!(p.found, Some((INDEX + 5 * 8, mine)));
        // The first tombstone on the path is where a new entry for this key would go.
        assert_eq!(p.free, Some(INDEX + 2 * 8));
        // An absent key with the same hash (so the same home slot and tag): only the key
        // comparison rejects slot 5, and the probe stops at the first empty slot after the run.
        let absent = [key.clone(), b"-absent".to_vec()].concat();
        let p = probe(&map, INDEX, SLOTS, &absent, hash).unwrap();
        assert_eq!(p.found, None);
        assert_eq!(p.free, Some(INDEX + 2 * 8));
        // Without tombstones the free slot is that empty one.
        set(&map, 2, entry(&map, 2, b"x", hash_key(b"x")));
        set(&map, 4, entry(&map, 3, b"y", hash_key(b"y")));
        let p = probe(&map, INDEX, SLOTS, &absent, hash).unwrap();
        assert_eq!((p.found, p.free), (None, Some(INDEX + 6 * 8)));
    }

    #[test]
    fn probe_wraps_around_the_end_of_the_table() {
        let (_d, map) = fixture();
        let (key, hash) = key_homed_at(SLOTS - 1);
        // Another key with the same hash fills the last slot, so the probe must go on at slot 0.
        let other = [key.clone(), b"/2".to_vec()].concat();
        set(&map, SLOTS - 1, entry(&map, 0, &other, hash));
        set(&map, 0, SLOT_TOMBSTONE);
        let mine = entry(&map, 1, &key, hash);
        set(&map, 1, mine);
        let p = probe(&map, INDEX, SLOTS, &key, hash).unwrap();
        assert_eq!(p.found, Some((INDEX + 8, mine)));
        assert_eq!(p.free, Some(INDEX));
    }

    #[test]
    fn a_full_table_without_the_key_ends_the_probe() {
        let (_d, map) = fixture();
        for i in 0..SLOTS {
            let k = format!("full{i}");
            set(
                &map,
                i,
                entry(&map, i, k.as_bytes(), hash_key(k.as_bytes())),
            );
        }
        let p = probe(&map, INDEX, SLOTS, b"missing", hash_key(b"missing")).unwrap();
        assert_eq!((p.found, p.free), (None, None));
    }

    #[test]
    fn a_slot_with_another_hash_tag_is_never_opened() {
        let (_d, map) = fixture();
        let (key, hash) = key_homed_at(0);
        let wrong_tag = hash ^ (1 << 50);
        // The key's own entry, published under a different tag, is not a match...
        set(&map, 0, entry(&map, 0, &key, wrong_tag));
        // ...and a slot with a different tag pointing at garbage is skipped without reading it:
        // opening that block would fail ("claims N bytes in a 64-byte block").
        map.write(&LockHeld::for_tests(), BLOCKS + 5 * 64, &[0xff; 64])
            .unwrap();
        set(&map, 1, slot_pack(BLOCKS + 5 * 64, 0, wrong_tag));
        let p = probe(&map, INDEX, SLOTS, &key, hash).unwrap();
        assert_eq!((p.found, p.free), (None, Some(INDEX + 2 * 8)));
        // With the right tag the same garbage block is opened, and refused.
        set(&map, 1, slot_pack(BLOCKS + 5 * 64, 0, hash));
        let e = probe(&map, INDEX, SLOTS, &key, hash).err().unwrap();
        assert!(e.to_string().contains("claims"), "{e}");
    }
}
