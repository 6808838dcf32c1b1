//! On-disk formats of the data file: superblocks, index slots, entries, size classes, the key hash.
//! Everything is little-endian and addressed by byte offsets from the start of the file.

pub const PAGE: u64 = 4096;
/// The two superblock copies live in the first two pages; the heap starts after them.
pub const SUPERBLOCK_OFFSETS: [u64; 2] = [0, PAGE];
pub const HEAP_START: u64 = 2 * PAGE;
/// Every heap block is a multiple of this and aligned to it.
pub const BLOCK_ALIGN: u64 = 64;

pub const DATA_MAGIC: u64 = u64::from_le_bytes(*b"APCDBdat");
pub const FORMAT_VERSION: u32 = 1;

/// A superblock: the durable description of the data file as of one checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Superblock {
    /// Grows by one per checkpoint; the valid copy with the highest epoch wins.
    pub epoch: u64,
    /// Every journal record with an LSN up to this is reflected in the durable index.
    pub ckpt_lsn: u64,
    pub file_size: u64,
    pub max_size: u64,
    /// End of the allocated part of the heap (bump pointer).
    pub heap_end: u64,
    /// The two index copies and their slot count; `durable_copy` (0 or 1) names the one that is
    /// complete and unchanged since this checkpoint.
    pub index: [u64; 2],
    pub index_slots: u64,
    pub durable_copy: u64,
    /// Reset-on-restart generation.
    pub generation: u64,
    pub journal_size: u64,
    pub created_ms: u64,
    /// crc32c of the durable index copy: falling back to an older superblock whose copy was
    /// since reused (only possible after media damage, never after a crash) is detected.
    pub index_crc: u64,
}

pub const SUPERBLOCK_LEN: usize = 128;

impl Superblock {
    pub fn encode(&self) -> [u8; SUPERBLOCK_LEN] {
        let mut b = [0u8; SUPERBLOCK_LEN];
        b[0..8].copy_from_slice(&DATA_MAGIC.to_le_bytes());
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let fields = [
            self.epoch,
            self.ckpt_lsn,
            self.file_size,
            self.max_size,
            self.heap_end,
            self.index[0],
            self.index[1],
            self.index_slots,
            self.durable_copy,
            self.generation,
            self.journal_size,
            self.created_ms,
            self.index_crc,
        ];
        for (i, f) in fields.iter().enumerate() {
            b[16 + i * 8..24 + i * 8].copy_from_slice(&f.to_le_bytes());
        }
        let crc = crc32c::crc32c(&b[16..]);
        b[12..16].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes one copy; `Err` says why it is not usable (wrong magic, version, checksum).
    pub fn decode(b: &[u8]) -> Result<Superblock, String> {
        if b.len() < SUPERBLOCK_LEN {
            return Err("short superblock".into());
        }
        if u64_at(b, 0) != DATA_MAGIC {
            return Err("bad magic".into());
        }
        let version = u32_at(b, 8);
        if version != FORMAT_VERSION {
            return Err(format!(
                "format version {version}, this build reads {FORMAT_VERSION}"
            ));
        }
        if crc32c::crc32c(&b[16..SUPERBLOCK_LEN]) != u32_at(b, 12) {
            return Err("checksum mismatch".into());
        }
        let f = |i: usize| u64_at(b, 16 + i * 8);
        Ok(Superblock {
            epoch: f(0),
            ckpt_lsn: f(1),
            file_size: f(2),
            max_size: f(3),
            heap_end: f(4),
            index: [f(5), f(6)],
            index_slots: f(7),
            durable_copy: f(8),
            generation: f(9),
            journal_size: f(10),
            created_ms: f(11),
            index_crc: f(12),
        })
    }

    /// Checks every field against the format's limits and the file's real length, so that no
    /// later offset computation, index walk or mapping can leave the file or the lock file's
    /// tables: a copy with a valid checksum can still carry values no checkpoint ever writes
    /// (written by a buggy or hostile tool), and they must be refused here, not panic later.
    pub fn validate(&self, actual_file_size: u64) -> Result<(), String> {
        if self.epoch == 0 || self.epoch == u64::MAX || self.ckpt_lsn >= u64::MAX / 2 {
            return Err(format!(
                "epoch {} / checkpoint LSN {} out of range",
                self.epoch, self.ckpt_lsn
            ));
        }
        if !self.index_slots.is_power_of_two()
            || !(MIN_INDEX_SLOTS..=MAX_INDEX_SLOTS).contains(&self.index_slots)
        {
            return Err(format!(
                "index of {} slots (must be a power of two from {MIN_INDEX_SLOTS} to {MAX_INDEX_SLOTS})",
                self.index_slots
            ));
        }
        if self.durable_copy > 1 {
            return Err(format!(
                "durable index copy {} (must be 0 or 1)",
                self.durable_copy
            ));
        }
        if self.max_size > MAX_STORE_SIZE {
            return Err(format!(
                "maximum size {} bytes exceeds the format's limit of {MAX_STORE_SIZE} bytes (4 TiB)",
                self.max_size
            ));
        }
        if self.file_size > actual_file_size {
            return Err(format!(
                "file is {actual_file_size} bytes but the last checkpoint recorded {}",
                self.file_size
            ));
        }
        if self.file_size > self.max_size {
            return Err(format!(
                "file size {} exceeds the recorded maximum size {}",
                self.file_size, self.max_size
            ));
        }
        if self.heap_end < HEAP_START
            || self.heap_end > self.file_size
            || !self.heap_end.is_multiple_of(BLOCK_ALIGN)
        {
            return Err(format!("heap end {} outside the file", self.heap_end));
        }
        if !(MIN_JOURNAL_SIZE..=MAX_STORE_SIZE).contains(&self.journal_size)
            || !self.journal_size.is_multiple_of(PAGE)
        {
            return Err(format!(
                "journal size {} (must be a multiple of {PAGE} from {MIN_JOURNAL_SIZE} to {MAX_STORE_SIZE})",
                self.journal_size
            ));
        }
        if self.index_crc > u32::MAX as u64 {
            return Err(format!(
                "index checksum {:#x} is not a crc32c",
                self.index_crc
            ));
        }
        // Each copy occupies a whole block of the class that holds it (that is how it was
        // allocated and how the free-space rebuild accounts for it).
        let copy_len = class_size(class_for(self.index_slots * 8));
        for &off in &self.index {
            if off < HEAP_START
                || off % BLOCK_ALIGN != 0
                || off.checked_add(copy_len).is_none_or(|e| e > self.heap_end)
            {
                return Err(format!("index copy at {off} outside the heap"));
            }
        }
        if self.index[0].abs_diff(self.index[1]) < copy_len {
            return Err(format!(
                "index copies at {} and {} overlap",
                self.index[0], self.index[1]
            ));
        }
        Ok(())
    }
}

/// The format's limits (SPEC.md §9). A slot keeps 36 bits of block offset in 64-byte units, so no
/// block may start at or beyond 4 TiB: that bounds the data file.
pub const MAX_STORE_SIZE: u64 = (1 << 36) * BLOCK_ALIGN;
/// The live index's changed pages are tracked by one bit each in the lock file
/// (`shared::DIRTY_WORDS` words of 64 bits): that bounds the index.
pub const MAX_INDEX_SLOTS: u64 = 1 << 28;
pub const MIN_INDEX_SLOTS: u64 = 16;
pub const MIN_JOURNAL_SIZE: u64 = 64 << 10;
const _: () = assert!(MAX_INDEX_SLOTS * 8 / PAGE == crate::shared::DIRTY_WORDS as u64 * 64);

/// An index slot is one u64: 0 = empty, 1 = deleted (tombstone), otherwise a packed pointer to an
/// entry: block offset / 64 in bits 0..36, size class in bits 36..43, 21 bits of the key hash above.
/// Publishing an entry is one aligned 8-byte store of this value.
pub const SLOT_EMPTY: u64 = 0;
pub const SLOT_TOMBSTONE: u64 = 1;

pub fn slot_pack(offset: u64, class: u8, hash: u64) -> u64 {
    debug_assert!(offset.is_multiple_of(BLOCK_ALIGN) && offset >= HEAP_START);
    (offset / BLOCK_ALIGN) | ((class as u64) << 36) | (slot_tag(hash) << 43)
}
pub fn slot_tag(hash: u64) -> u64 {
    hash >> 43
}
pub fn slot_offset(slot: u64) -> u64 {
    (slot & ((1 << 36) - 1)) * BLOCK_ALIGN
}
pub fn slot_class(slot: u64) -> u8 {
    ((slot >> 36) & 0x7f) as u8
}
pub fn slot_is_entry(slot: u64) -> bool {
    slot > SLOT_TOMBSTONE
}

/// Entry header; the key and the value follow it. The checksum covers everything after itself.
pub const ENTRY_HEADER: usize = 40;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryHeader {
    pub crc: u32,
    pub key_len: u32,
    pub val_len: u32,
    pub expires_ms: u64,
    pub modified_ms: u64,
    pub version: u64,
}

impl EntryHeader {
    pub fn decode(b: &[u8]) -> EntryHeader {
        EntryHeader {
            crc: u32_at(b, 0),
            key_len: u32_at(b, 4),
            val_len: u32_at(b, 8),
            expires_ms: u64_at(b, 16),
            modified_ms: u64_at(b, 24),
            version: u64_at(b, 32),
        }
    }
    pub fn total_len(&self) -> u64 {
        ENTRY_HEADER as u64 + self.key_len as u64 + self.val_len as u64
    }
}

/// Builds a complete entry (header, key, value) with its checksum.
pub fn encode_entry(
    key: &[u8],
    value: &[u8],
    expires_ms: u64,
    modified_ms: u64,
    version: u64,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(ENTRY_HEADER + key.len() + value.len());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&(key.len() as u32).to_le_bytes());
    b.extend_from_slice(&(value.len() as u32).to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&expires_ms.to_le_bytes());
    b.extend_from_slice(&modified_ms.to_le_bytes());
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(key);
    b.extend_from_slice(value);
    let crc = crc32c::crc32c(&b[4..]);
    b[0..4].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Size classes: 64, 128, 192, 256, then four steps per doubling (320, 384, 448, 512, 640, ...),
/// so a block wastes at most a quarter of its size.
pub const CLASSES: usize = 128;

pub fn class_size(class: u8) -> u64 {
    let c = class as u64;
    if c < 4 {
        (c + 1) * 64
    } else {
        let k = (c - 4) / 4;
        (256 << k) + (64 << k) * ((c - 4) % 4 + 1)
    }
}

/// The smallest class whose blocks hold `len` bytes.
pub fn class_for(len: u64) -> u8 {
    if len <= 256 {
        return (len.max(1).div_ceil(64) - 1) as u8;
    }
    let k = 63 - ((len - 1) >> 8).leading_zeros() as u64;
    let idx = (len - 1 - (256 << k)) / (64 << k);
    (4 + 4 * k + idx) as u8
}

/// The key hash that places a key in the index. It is part of the file format: never change it
/// without a format version bump.
pub fn hash_key(key: &[u8]) -> u64 {
    const M: u64 = 0x9fb2_1c65_1e98_df25;
    let mut h = 0x243f_6a88_85a3_08d3u64 ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().unwrap())).wrapping_mul(M);
        h ^= h >> 29;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut t = [0u8; 8];
        t[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(t)).wrapping_mul(M);
    }
    // fmix64 from MurmurHash3: spreads every input bit over the whole word.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_monotonic_and_fit() {
        for c in 0..(CLASSES as u8 - 1) {
            assert!(class_size(c) < class_size(c + 1));
            assert_eq!(class_size(c) % BLOCK_ALIGN, 0);
        }
        for len in (1..100_000u64).chain([1 << 20, (1 << 20) + 1, 3 << 30]) {
            let c = class_for(len);
            assert!(class_size(c) >= len, "len {len} class {c}");
            assert!(
                c == 0 || class_size(c - 1) < len,
                "len {len} class {c} not the smallest"
            );
        }
    }

    #[test]
    fn superblock_roundtrip_and_checksum() {
        let sb = Superblock {
            epoch: 7,
            ckpt_lsn: 99,
            heap_end: HEAP_START,
            index_slots: 8,
            ..Default::default()
        };
        let mut b = sb.encode();
        assert_eq!(Superblock::decode(&b).unwrap(), sb);
        b[40] ^= 1;
        assert!(Superblock::decode(&b).unwrap_err().contains("checksum"));
    }

    /// A superblock as `create_data_file` writes it for a 1 MiB store of 4096 slots.
    fn sane() -> Superblock {
        let copy = class_size(class_for(4096 * 8));
        Superblock {
            epoch: 1,
            file_size: 1 << 20,
            max_size: 1 << 30,
            heap_end: HEAP_START + 2 * copy,
            index: [HEAP_START, HEAP_START + copy],
            index_slots: 4096,
            journal_size: 16 << 20,
            ..Default::default()
        }
    }

    #[test]
    fn validation_refuses_every_out_of_range_field() {
        assert_eq!(sane().validate(1 << 20), Ok(()));
        type Spoil = fn(&mut Superblock);
        let bad: [(&str, Spoil); 15] = [
            ("index of", |s| s.index_slots = 1 << 29),
            ("index of", |s| s.index_slots = 4095),
            ("index of", |s| s.index_slots = 8),
            ("durable index copy", |s| s.durable_copy = 2),
            ("exceeds the format", |s| s.max_size = MAX_STORE_SIZE + 1),
            ("exceeds the recorded maximum", |s| s.max_size = 1 << 19),
            ("but the last checkpoint recorded", |s| {
                s.file_size = 2 << 20
            }),
            ("heap end", |s| s.heap_end = s.file_size + 64),
            ("heap end", |s| s.heap_end += 8),
            ("journal size", |s| s.journal_size = 4096),
            ("journal size", |s| s.journal_size = (16 << 20) + 1),
            ("outside the heap", |s| s.index[1] = s.heap_end - 64),
            ("overlap", |s| s.index[1] = s.index[0] + 64),
            ("epoch", |s| s.epoch = 0),
            ("checksum", |s| s.index_crc = 1 << 40),
        ];
        for (why, spoil) in bad {
            let mut sb = sane();
            spoil(&mut sb);
            let e = sb.validate(1 << 20).expect_err(why);
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn slot_packing() {
        let h = hash_key(b"k");
        let s = slot_pack(HEAP_START + 640, 9, h);
        assert!(slot_is_entry(s));
        assert_eq!(slot_offset(s), HEAP_START + 640);
        assert_eq!(slot_class(s), 9);
        assert_eq!(s >> 43, slot_tag(h));
    }
}
