//! The on-disk formats, defined once: the data file (superblocks, index slots, entries, size
//! classes, the key hash) and the journal (records and the operations they carry). Every offset
//! the engine, the checker and the tools use is a named constant here, next to the diagram it
//! belongs to; SPEC.md §2 and §3 describe the same bytes in prose. Everything is little-endian
//! and addressed in bytes from the start of its file.
//!
//! ```text
//! Data file
//!   0      superblock copy 0 (SUPERBLOCK_LEN bytes, rest of the page zero)
//!   4096   superblock copy 1
//!   8192   heap (HEAP_START): blocks of BLOCK_ALIGN multiples, one size class each; holds the
//!          three index copies (two alternately durable, one live) and the entries
//!
//! Superblock (SUPERBLOCK_LEN = 128 bytes; the checksum covers bytes 16..128)
//!   0 magic "APCDBdat"   8 version u32   12 crc32c u32
//!   16 epoch         24 ckpt_lsn      32 file_size     40 max_size      48 heap_end
//!   56 index copy 0  64 index copy 1  72 index_slots   80 durable_copy  88 generation
//!   96 journal_size  104 created_ms   112 index_crc    120 live index copy
//!
//! Index slot (u64): 0 empty, 1 tombstone, otherwise
//!   bits 0..36 block offset / 64 | bits 36..43 size class | bits 43..64 top 21 bits of the key hash
//!
//! Entry (in a heap block; the checksum covers byte 4 to the end of the value)
//!   0 crc32c u32   4 key_len u32   8 val_len u32   12 zero u32
//!   16 expires_ms u64   24 modified_ms u64   32 version u64   40 key, then value
//!
//! Journal record (at 8-byte aligned offsets; the checksum covers byte 4 to the end of the payload)
//!   0 crc32c u32   4 payload_len u32   8 epoch u64   16 lsn u64   24 payload, zero padding to 8
//! Payload: operations, each a kind byte and its fields
//!   1 put:    key_len u32, val_len u32, expires_ms u64, modified_ms u64, key, value
//!   2 delete: key_len u32, key
//!   3 clear
//!   4 reset:  generation u64
//! ```

use crate::error::{CorruptKind, Error, Result};
use crate::Entry;
use std::borrow::Cow;
use std::fmt;
use std::path::Path;

/// The unit of the data file's fixed areas, of index page tracking and of journal sizes.
pub const PAGE: u64 = 4096;
/// The two superblock copies live in the first two pages; the heap starts after them.
pub const SUPERBLOCK_OFFSETS: [u64; 2] = [0, PAGE];
/// Offset of the first heap block.
pub const HEAP_START: u64 = 2 * PAGE;
/// Every heap block is a multiple of this and aligned to it.
pub const BLOCK_ALIGN: u64 = 64;

/// The first eight bytes of each superblock copy ("APCDBdat").
pub const DATA_MAGIC: u64 = u64::from_le_bytes(*b"APCDBdat");
/// The format this build writes. Version 2 added the closing snapshot of the allocator state
/// (`StateSnapshot`) in the unused tail of the superblock pages. Version 3 splits the journal in
/// two halves (a checkpoint's flush runs while writers append to the other half) and adds a third
/// index copy, the live one, that never moves (SPEC.md §5): its offset is the superblock's last
/// field. A cleanly closed store of version 1 or 2 is converted by its first read-write open
/// (`upgrade.rs`, SPEC.md §2.1); read-only handles and tools refuse it with an error that says so.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version this build still reads.
pub const OLDEST_FORMAT_VERSION: u32 = 3;

// ---------------------------------------------------------------------------------------------
// Superblock.

/// Bytes of one superblock copy.
pub const SUPERBLOCK_LEN: usize = 128;
/// Offsets of the superblock's fields (see the diagram above).
pub mod superblock_at {
    /// Magic, u64.
    pub const MAGIC: usize = 0;
    /// Format version, u32.
    pub const VERSION: usize = 8;
    /// crc32c, u32, of bytes `CHECKSUMMED..SUPERBLOCK_LEN`.
    pub const CRC: usize = 12;
    /// Where the checksummed fields start.
    pub const CHECKSUMMED: usize = 16;
    /// Each of these is a u64.
    pub const EPOCH: usize = 16;
    /// Checkpoint LSN.
    pub const CKPT_LSN: usize = 24;
    /// File size at the checkpoint.
    pub const FILE_SIZE: usize = 32;
    /// Maximum size.
    pub const MAX_SIZE: usize = 40;
    /// End of the allocated heap.
    pub const HEAP_END: usize = 48;
    /// Index copy 0 and 1 (offsets of their blocks).
    pub const INDEX: [usize; 2] = [56, 64];
    /// Slots per index copy.
    pub const INDEX_SLOTS: usize = 72;
    /// Which copy (0 or 1) is durable.
    pub const DURABLE_COPY: usize = 80;
    /// Reset-on-restart generation.
    pub const GENERATION: usize = 88;
    /// Journal file size.
    pub const JOURNAL_SIZE: usize = 96;
    /// Creation time, Unix milliseconds.
    pub const CREATED_MS: usize = 104;
    /// crc32c of the durable index copy.
    pub const INDEX_CRC: usize = 112;
    /// The live index copy (offset of its block).
    pub const LIVE: usize = 120;
    const _: () = assert!(LIVE + 8 <= super::SUPERBLOCK_LEN);
}

/// A superblock that passed [`UncheckedSuperblock::validate`] (or that the engine built itself):
/// the durable description of the data file as of one checkpoint. Its values are safe to size
/// mappings, loops and offsets with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Superblock {
    /// Grows by one per checkpoint; the valid copy with the highest epoch wins.
    pub epoch: u64,
    /// Every journal record with an LSN up to this is reflected in the durable index.
    pub ckpt_lsn: u64,
    /// Length of the data file when the checkpoint was taken.
    pub file_size: u64,
    /// The most the data file may grow to (the address space every opener reserves).
    pub max_size: u64,
    /// End of the allocated part of the heap (bump pointer).
    pub heap_end: u64,
    /// The two checkpoint index copies' block offsets; `durable_copy` (0 or 1) names the one
    /// that is complete and unchanged since this checkpoint (the other is the next checkpoint's
    /// target).
    pub index: [u64; 2],
    /// The live index copy's block offset: what readers and writers use; never durable itself.
    pub live: u64,
    /// Slots in each index copy (a power of two).
    pub index_slots: u64,
    /// Which of `index` is the durable copy.
    pub durable_copy: u64,
    /// Reset-on-restart generation.
    pub generation: u64,
    /// Size of the journal file.
    pub journal_size: u64,
    /// When the store was created, Unix milliseconds.
    pub created_ms: u64,
    /// crc32c of the durable index copy: falling back to an older superblock whose copy was
    /// since reused (only possible after media damage, never after a crash) is detected.
    pub index_crc: u64,
}

/// A superblock copy whose magic, version and checksum hold but whose values have not been
/// checked: a checksum proves the bytes are what some writer produced, not that they are sane
/// (a buggy or hostile tool can checksum anything). Only its epoch can be read, to pick the newest
/// copy; [`UncheckedSuperblock::validate`] is the only way to its fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UncheckedSuperblock(Superblock);

/// Why a superblock copy is not usable (the text is what error messages and `apcdb check` show).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SuperblockError {
    /// Fewer than [`SUPERBLOCK_LEN`] bytes could be read.
    Short,
    /// The magic is not [`DATA_MAGIC`] (also: a copy never written).
    BadMagic,
    /// Written by another format version.
    Version {
        /// The version found.
        found: u32,
    },
    /// The checksum does not match the bytes.
    Checksum,
    /// Epoch or checkpoint LSN out of range.
    Epoch {
        /// The epoch found.
        epoch: u64,
        /// The checkpoint LSN found.
        ckpt_lsn: u64,
    },
    /// The index slot count is not a power of two within the format's limits.
    IndexSlots(u64),
    /// The durable copy is neither 0 nor 1.
    DurableCopy(u64),
    /// The maximum size exceeds [`MAX_STORE_SIZE`].
    MaxSize(u64),
    /// The file is shorter than the checkpoint recorded.
    FileShorter {
        /// The file's length now.
        actual: u64,
        /// The length the checkpoint recorded.
        recorded: u64,
    },
    /// The recorded file size exceeds the recorded maximum size.
    FileOverMax {
        /// Recorded file size.
        file_size: u64,
        /// Recorded maximum size.
        max_size: u64,
    },
    /// The heap end is outside the file or misaligned.
    HeapEnd(u64),
    /// The journal size is out of range or not a multiple of [`PAGE`].
    JournalSize(u64),
    /// The index checksum field does not hold a crc32c.
    IndexCrc(u64),
    /// An index copy lies outside the allocated heap.
    IndexOutsideHeap(u64),
    /// The two index copies overlap.
    IndexOverlap(u64, u64),
    /// The copy the engine last wrote holds another epoch.
    EpochNotWritten {
        /// The epoch found in the copy.
        found: u64,
        /// The epoch this process wrote there.
        expected: u64,
    },
}

impl fmt::Display for SuperblockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SuperblockError::*;
        match self {
            Short => write!(f, "short superblock"),
            BadMagic => write!(f, "bad magic"),
            Version { found } if CONVERTIBLE_VERSIONS.contains(found) => write!(
                f,
                "format version {found}, written by an older apcdb: the first read-write open by \
                 this build converts a store closed cleanly to version {FORMAT_VERSION} (a \
                 journal in two halves, three index copies); read-only handles and tools do not"
            ),
            Version { found } => write!(
                f,
                "format version {found}, this build reads {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}"
            ),
            Checksum => write!(f, "checksum mismatch"),
            Epoch { epoch, ckpt_lsn } => {
                write!(f, "epoch {epoch} / checkpoint LSN {ckpt_lsn} out of range")
            }
            IndexSlots(n) => write!(
                f,
                "index of {n} slots (must be a power of two from {MIN_INDEX_SLOTS} to {MAX_INDEX_SLOTS})"
            ),
            DurableCopy(c) => write!(f, "durable index copy {c} (must be 0 or 1)"),
            MaxSize(m) => write!(
                f,
                "maximum size {m} bytes exceeds the format's limit of {MAX_STORE_SIZE} bytes (4 TiB)"
            ),
            FileShorter { actual, recorded } => write!(
                f,
                "file is {actual} bytes but the last checkpoint recorded {recorded}"
            ),
            FileOverMax { file_size, max_size } => write!(
                f,
                "file size {file_size} exceeds the recorded maximum size {max_size}"
            ),
            HeapEnd(e) => write!(f, "heap end {e} outside the file"),
            JournalSize(s) => write!(
                f,
                "journal size {s} (must be a multiple of {PAGE} from {MIN_JOURNAL_SIZE} to {MAX_STORE_SIZE})"
            ),
            IndexCrc(c) => write!(f, "index checksum {c:#x} is not a crc32c"),
            IndexOutsideHeap(off) => write!(f, "index copy at {off} outside the heap"),
            IndexOverlap(a, b) => write!(f, "index copies at {a} and {b} overlap"),
            EpochNotWritten { found, expected } => {
                write!(f, "epoch {found} where {expected} was written")
            }
        }
    }
}

impl std::error::Error for SuperblockError {}

impl Superblock {
    /// The copy's bytes, checksum included.
    pub fn encode(&self) -> [u8; SUPERBLOCK_LEN] {
        use superblock_at as at;
        let mut b = [0u8; SUPERBLOCK_LEN];
        put_u64(&mut b, at::MAGIC, DATA_MAGIC);
        b[at::VERSION..at::VERSION + 4].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        for (field, value) in [
            (at::EPOCH, self.epoch),
            (at::CKPT_LSN, self.ckpt_lsn),
            (at::FILE_SIZE, self.file_size),
            (at::MAX_SIZE, self.max_size),
            (at::HEAP_END, self.heap_end),
            (at::INDEX[0], self.index[0]),
            (at::INDEX[1], self.index[1]),
            (at::INDEX_SLOTS, self.index_slots),
            (at::DURABLE_COPY, self.durable_copy),
            (at::GENERATION, self.generation),
            (at::JOURNAL_SIZE, self.journal_size),
            (at::CREATED_MS, self.created_ms),
            (at::INDEX_CRC, self.index_crc),
            (at::LIVE, self.live),
        ] {
            put_u64(&mut b, field, value);
        }
        let crc = crc32c::crc32c(&b[at::CHECKSUMMED..]);
        b[at::CRC..at::CRC + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Checks every field against the format's limits and the file's real length, so that no
    /// later offset computation, index walk or mapping can leave the file or the lock file's
    /// tables. The engine also checks the superblocks it builds before writing one, so it never
    /// publishes a copy the next open would refuse.
    pub fn check(&self, actual_file_size: u64) -> std::result::Result<(), SuperblockError> {
        use SuperblockError as E;
        if self.epoch == 0 || self.epoch == u64::MAX || self.ckpt_lsn >= u64::MAX / 2 {
            return Err(E::Epoch {
                epoch: self.epoch,
                ckpt_lsn: self.ckpt_lsn,
            });
        }
        if !self.index_slots.is_power_of_two()
            || !(MIN_INDEX_SLOTS..=MAX_INDEX_SLOTS).contains(&self.index_slots)
        {
            return Err(E::IndexSlots(self.index_slots));
        }
        if self.durable_copy > 1 {
            return Err(E::DurableCopy(self.durable_copy));
        }
        if self.max_size > MAX_STORE_SIZE {
            return Err(E::MaxSize(self.max_size));
        }
        if self.file_size > actual_file_size {
            return Err(E::FileShorter {
                actual: actual_file_size,
                recorded: self.file_size,
            });
        }
        if self.file_size > self.max_size {
            return Err(E::FileOverMax {
                file_size: self.file_size,
                max_size: self.max_size,
            });
        }
        if self.heap_end < HEAP_START
            || self.heap_end > self.file_size
            || !self.heap_end.is_multiple_of(BLOCK_ALIGN)
        {
            return Err(E::HeapEnd(self.heap_end));
        }
        if !(MIN_JOURNAL_SIZE..=MAX_STORE_SIZE).contains(&self.journal_size)
            || !self.journal_size.is_multiple_of(PAGE)
        {
            return Err(E::JournalSize(self.journal_size));
        }
        if self.index_crc > u32::MAX as u64 {
            return Err(E::IndexCrc(self.index_crc));
        }
        // Each copy occupies a whole block of the class that holds it (that is how it was
        // allocated and how the free-space rebuild accounts for it).
        let copy_len = index_block_len(self.index_slots);
        for &off in [self.index[0], self.index[1], self.live].iter() {
            if off < HEAP_START
                || off % BLOCK_ALIGN != 0
                || off.checked_add(copy_len).is_none_or(|e| e > self.heap_end)
            {
                return Err(E::IndexOutsideHeap(off));
            }
        }
        for (a, b) in [
            (self.index[0], self.index[1]),
            (self.index[0], self.live),
            (self.index[1], self.live),
        ] {
            if a.abs_diff(b) < copy_len {
                return Err(E::IndexOverlap(a, b));
            }
        }
        Ok(())
    }
}

impl UncheckedSuperblock {
    /// Decodes one copy; the error says why it is not usable (wrong magic, version, checksum).
    pub fn decode(b: &[u8]) -> std::result::Result<UncheckedSuperblock, SuperblockError> {
        use superblock_at as at;
        if b.len() < SUPERBLOCK_LEN {
            return Err(SuperblockError::Short);
        }
        if u64_at(b, at::MAGIC) != DATA_MAGIC {
            return Err(SuperblockError::BadMagic);
        }
        let version = u32_at(b, at::VERSION);
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(SuperblockError::Version { found: version });
        }
        if crc32c::crc32c(&b[at::CHECKSUMMED..SUPERBLOCK_LEN]) != u32_at(b, at::CRC) {
            return Err(SuperblockError::Checksum);
        }
        let f = |field| u64_at(b, field);
        Ok(UncheckedSuperblock(Superblock {
            epoch: f(at::EPOCH),
            ckpt_lsn: f(at::CKPT_LSN),
            file_size: f(at::FILE_SIZE),
            max_size: f(at::MAX_SIZE),
            heap_end: f(at::HEAP_END),
            index: [f(at::INDEX[0]), f(at::INDEX[1])],
            index_slots: f(at::INDEX_SLOTS),
            durable_copy: f(at::DURABLE_COPY),
            generation: f(at::GENERATION),
            journal_size: f(at::JOURNAL_SIZE),
            created_ms: f(at::CREATED_MS),
            index_crc: f(at::INDEX_CRC),
            live: f(at::LIVE),
        }))
    }

    /// The copy's epoch: what picks the newest copy.
    pub fn epoch(&self) -> u64 {
        self.0.epoch
    }

    /// Checks every field (see [`Superblock::check`]) against a data file of `actual_file_size`
    /// bytes; only then are the values usable.
    ///
    /// # Errors
    /// The first field found out of range.
    pub fn validate(
        self,
        actual_file_size: u64,
    ) -> std::result::Result<Superblock, SuperblockError> {
        self.0.check(actual_file_size)?;
        Ok(self.0)
    }
}

/// The formats an open converts in place (SPEC.md §2.1): 1 and 2 share the superblock layout of
/// version 3 except the live copy's field (zero), and their journal is one cycle from offset 0.
pub const CONVERTIBLE_VERSIONS: std::ops::RangeInclusive<u32> = 1..=2;

/// A superblock copy of a convertible older version: its version and fields (`live` is 0), when
/// its magic and checksum hold. Not validated: the conversion checks the fields it will publish.
pub(crate) fn decode_older_superblock(b: &[u8]) -> Option<(u32, Superblock)> {
    use superblock_at as at;
    if b.len() < SUPERBLOCK_LEN || u64_at(b, at::MAGIC) != DATA_MAGIC {
        return None;
    }
    let version = u32_at(b, at::VERSION);
    if !CONVERTIBLE_VERSIONS.contains(&version)
        || crc32c::crc32c(&b[at::CHECKSUMMED..SUPERBLOCK_LEN]) != u32_at(b, at::CRC)
    {
        return None;
    }
    let mut same = b[..SUPERBLOCK_LEN].to_vec();
    same[at::VERSION..at::VERSION + 4].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = crc32c::crc32c(&same[at::CHECKSUMMED..]);
    same[at::CRC..at::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    let UncheckedSuperblock(mut sb) = UncheckedSuperblock::decode(&same).ok()?;
    sb.live = 0;
    Some((version, sb))
}

/// Whether a version 1 or 2 journal, read through `read` (offset, buffer) and `len` bytes long,
/// starts with a valid record of `epoch` with LSN `lsn`: its cycle starts at offset 0, so then the
/// older build's recovery would replay it, and the store was not closed cleanly. The record
/// header is version 3's (crc32c of bytes 4..end of payload, payload length, epoch, LSN).
pub(crate) fn older_cycle_starts(
    mut read: impl FnMut(u64, &mut [u8]) -> std::io::Result<()>,
    len: u64,
    epoch: u64,
    lsn: u64,
) -> std::io::Result<bool> {
    let mut h = [0u8; RECORD_HEADER];
    if len < RECORD_HEADER as u64 {
        return Ok(false);
    }
    read(0, &mut h)?;
    let end = RECORD_HEADER as u64 + u32_at(&h, 4) as u64;
    if u64_at(&h, 8) != epoch || u64_at(&h, 16) != lsn || end > len {
        return Ok(false);
    }
    let mut record = vec![0u8; end as usize];
    read(0, &mut record)?;
    Ok(crc32c::crc32c(&record[4..]) == u32_at(&record, 0))
}

/// Both superblock copies as read, and which one counts.
pub(crate) struct SuperblockCopies {
    /// The copy with the highest epoch among those that decode (the first on a tie); not yet
    /// validated. A newest copy that then fails validation is an error, never a reason to fall
    /// back to the older one: a checkpoint only reuses the older copy's index once the newer
    /// superblock is durable, so the older one may describe blocks since overwritten.
    pub newest: Option<UncheckedSuperblock>,
    /// Why each copy that does not decode was refused.
    pub refused: [Option<SuperblockError>; 2],
}

/// The one superblock picker, used by the engine's open and recovery and by the checker.
pub(crate) fn pick_superblock(copies: [&[u8]; 2]) -> SuperblockCopies {
    let mut picked = SuperblockCopies {
        newest: None,
        refused: [None, None],
    };
    for (i, bytes) in copies.into_iter().enumerate() {
        match UncheckedSuperblock::decode(bytes) {
            Ok(sb)
                if picked
                    .newest
                    .as_ref()
                    .is_none_or(|x| sb.epoch() > x.epoch()) =>
            {
                picked.newest = Some(sb)
            }
            Ok(_) => {}
            Err(e) => picked.refused[i] = Some(e),
        }
    }
    picked
}

/// Reads both copies through `read`, picks the newest and validates it against a data file of
/// `file_len` bytes: what opening and recovery start from.
pub(crate) fn read_superblock(
    path: &Path,
    file_len: u64,
    read: impl Fn(u64, &mut [u8]) -> Result<()>,
) -> Result<Superblock> {
    let mut copies = [[0u8; SUPERBLOCK_LEN]; 2];
    for (b, &at) in copies.iter_mut().zip(&SUPERBLOCK_OFFSETS) {
        read(at, b)?;
    }
    let picked = pick_superblock([&copies[0], &copies[1]]);
    let Some(sb) = picked.newest else {
        return Err(Error::corrupt(
            path,
            CorruptKind::NoValidSuperblock {
                refused: picked.refused,
            },
        ));
    };
    let epoch = sb.epoch();
    sb.validate(file_len)
        .map_err(|problem| Error::corrupt(path, CorruptKind::Superblock { epoch, problem }))
}

// ---------------------------------------------------------------------------------------------
// The closing snapshot of the allocator state.

/// Where a snapshot starts inside a superblock page (the superblock copy fills its first 128
/// bytes; the rest of the page was unused).
pub const SNAPSHOT_IN_PAGE: u64 = PAGE / 2;
const _: () = assert!(
    SNAPSHOT_IN_PAGE >= SUPERBLOCK_LEN as u64 && SNAPSHOT_IN_PAGE + SNAPSHOT_LEN as u64 <= PAGE
);
/// The first eight bytes of a snapshot ("APCDBsnp").
pub const SNAPSHOT_MAGIC: u64 = u64::from_le_bytes(*b"APCDBsnp");
/// Bytes of a snapshot: header, fixed fields, then one free-list head per class.
pub const SNAPSHOT_LEN: usize = snapshot_at::FREE_HEADS + 8 * CLASSES;

/// Byte offsets of the snapshot's fields (all little-endian).
pub mod snapshot_at {
    /// "APCDBsnp", u64.
    pub const MAGIC: usize = 0;
    /// CRC-32C of bytes `CHECKSUMMED..SNAPSHOT_LEN`, u32 (then 4 zero bytes).
    pub const CRC: usize = 8;
    /// Where the checksum starts.
    pub const CHECKSUMMED: usize = 16;
    /// Epoch of the checkpoint it describes, u64.
    pub const EPOCH: usize = 16;
    /// CRC-32C of that checkpoint's whole superblock copy (128 bytes), u64.
    pub const SUPERBLOCK_CRC: usize = 24;
    /// The data file's length when it was taken, u64.
    pub const FILE_LEN: usize = 32;
    /// Live entries, u64.
    pub const ENTRIES: usize = 40;
    /// Bytes of their blocks, u64.
    pub const USED_BYTES: usize = 48;
    /// Index slots in use (entries and tombstones), u64.
    pub const USED_SLOTS: usize = 56;
    /// Tombstone slots, u64.
    pub const TOMBSTONES: usize = 64;
    /// 1 when blocks are waiting for a checkpoint that no list names (pending overflow), u64.
    pub const PENDING_OVERFLOW: usize = 72;
    /// The head of each class's free list (0: empty), `CLASSES` u64s.
    pub const FREE_HEADS: usize = 80;
}

/// Where the snapshot describing checkpoint `epoch` lives: in the page of the *other* superblock
/// copy, the one the next checkpoint overwrites. The page of the newest superblock is never
/// written again before a newer superblock is durable (a torn write there could lose it).
pub fn snapshot_offset(epoch: u64) -> u64 {
    SUPERBLOCK_OFFSETS[((epoch + 1) % 2) as usize] + SNAPSHOT_IN_PAGE
}

/// What a first opener would otherwise rebuild by walking the whole index (SPEC.md §7.2): the
/// free lists' heads and the usage counters, as the last process to close left them after its
/// final checkpoint. Trusted only for that checkpoint (epoch and superblock checksum) and that
/// file length, and only until the first write lock after the open (which erases it durably).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateSnapshot {
    /// Epoch of the checkpoint described.
    pub epoch: u64,
    /// CRC-32C of that checkpoint's superblock copy, as encoded.
    pub superblock_crc: u64,
    /// The data file's length.
    pub file_len: u64,
    /// Live entries.
    pub entries: u64,
    /// Bytes of their blocks.
    pub used_bytes: u64,
    /// Slots in use (entries and tombstones).
    pub used_slots: u64,
    /// Tombstone slots.
    pub tombstones: u64,
    /// Whether blocks wait for a checkpoint that no list names.
    pub pending_overflow: bool,
    /// Head of each class's free list.
    pub free_heads: [u64; CLASSES],
}

impl StateSnapshot {
    /// The snapshot's bytes, checksum included.
    pub fn encode(&self) -> [u8; SNAPSHOT_LEN] {
        use snapshot_at as at;
        let mut b = [0u8; SNAPSHOT_LEN];
        put_u64(&mut b, at::MAGIC, SNAPSHOT_MAGIC);
        for (field, value) in [
            (at::EPOCH, self.epoch),
            (at::SUPERBLOCK_CRC, self.superblock_crc),
            (at::FILE_LEN, self.file_len),
            (at::ENTRIES, self.entries),
            (at::USED_BYTES, self.used_bytes),
            (at::USED_SLOTS, self.used_slots),
            (at::TOMBSTONES, self.tombstones),
            (at::PENDING_OVERFLOW, self.pending_overflow as u64),
        ] {
            put_u64(&mut b, field, value);
        }
        for (c, &head) in self.free_heads.iter().enumerate() {
            put_u64(&mut b, at::FREE_HEADS + 8 * c, head);
        }
        let crc = crc32c::crc32c(&b[at::CHECKSUMMED..]);
        b[at::CRC..at::CRC + 4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a snapshot; None when there is none or it is damaged (magic or checksum).
    pub fn decode(b: &[u8]) -> Option<StateSnapshot> {
        use snapshot_at as at;
        if b.len() < SNAPSHOT_LEN
            || u64_at(b, at::MAGIC) != SNAPSHOT_MAGIC
            || crc32c::crc32c(&b[at::CHECKSUMMED..SNAPSHOT_LEN]) != u32_at(b, at::CRC)
            || u32_at(b, at::CRC + 4) != 0
        {
            return None;
        }
        let f = |field| u64_at(b, field);
        Some(StateSnapshot {
            epoch: f(at::EPOCH),
            superblock_crc: f(at::SUPERBLOCK_CRC),
            file_len: f(at::FILE_LEN),
            entries: f(at::ENTRIES),
            used_bytes: f(at::USED_BYTES),
            used_slots: f(at::USED_SLOTS),
            tombstones: f(at::TOMBSTONES),
            pending_overflow: f(at::PENDING_OVERFLOW) != 0,
            free_heads: std::array::from_fn(|c| f(at::FREE_HEADS + 8 * c)),
        })
    }

    /// Whether it describes `sb` (the newest superblock, whose encoded copy has checksum
    /// `sb_crc`) in a data file of `file_len` bytes, with values that stay inside it: only then
    /// may an opener use it instead of rebuilding.
    pub fn describes(&self, sb: &Superblock, sb_crc: u64, file_len: u64) -> bool {
        let head_ok = |h: u64| {
            h == 0 || (h >= HEAP_START && h < sb.heap_end && h.is_multiple_of(BLOCK_ALIGN))
        };
        self.epoch == sb.epoch
            && self.superblock_crc == sb_crc
            && self.file_len == file_len
            && self.entries <= sb.index_slots
            && self.used_slots <= sb.index_slots
            && self.tombstones <= self.used_slots
            && self.used_bytes <= sb.heap_end
            && self.free_heads.iter().all(|&h| head_ok(h))
    }
}

// ---------------------------------------------------------------------------------------------
// Limits and index slots.

/// The format's limits (SPEC.md §9). A slot keeps 36 bits of block offset in 64-byte units, so no
/// block may start at or beyond 4 TiB: that bounds the data file.
pub const MAX_STORE_SIZE: u64 = (1 << SLOT_OFFSET_BITS) * BLOCK_ALIGN;
/// The live index's changed pages are tracked by one bit each in the lock file
/// (`shared::DIRTY_WORDS` words of 64 bits): that bounds the index.
pub const MAX_INDEX_SLOTS: u64 = 1 << 28;
/// The smallest index a superblock may name.
pub const MIN_INDEX_SLOTS: u64 = 16;
/// The smallest journal a superblock may name.
pub const MIN_JOURNAL_SIZE: u64 = 64 << 10;
/// The largest journal a new store is created with (`Options::journal_size`): replaying a full
/// one must stay a matter of seconds, and a scan may hold it in memory.
pub const MAX_JOURNAL_SIZE: u64 = 1 << 30;
const _: () =
    assert!(MAX_INDEX_SLOTS * SLOT_LEN / PAGE == crate::lock_file::DIRTY_WORDS as u64 * 64);

/// An index slot is one u64: [`SLOT_EMPTY`], [`SLOT_TOMBSTONE`] (deleted), otherwise a packed
/// pointer to an entry (see the diagram above). Publishing an entry is one aligned 8-byte store.
pub const SLOT_EMPTY: u64 = 0;
/// A deleted slot: lookups probe past it, inserts may reuse it.
pub const SLOT_TOMBSTONE: u64 = 1;
/// Bits of block offset (in [`BLOCK_ALIGN`] units) at the bottom of a slot.
pub const SLOT_OFFSET_BITS: u32 = 36;
/// Where the size class starts.
pub const SLOT_CLASS_SHIFT: u32 = SLOT_OFFSET_BITS;
/// Bits of the size class.
pub const SLOT_CLASS_BITS: u32 = 7;
/// Where the key hash's top bits (the tag) start; they fill the slot's remaining 21 bits.
pub const SLOT_TAG_SHIFT: u32 = SLOT_CLASS_SHIFT + SLOT_CLASS_BITS;
const _: () = assert!(CLASSES == 1 << SLOT_CLASS_BITS);

/// Bytes of one index slot.
pub const SLOT_LEN: u64 = 8;

/// Byte offset of slot `i` of the index copy that starts at `index`.
#[inline]
pub fn slot_at(index: u64, i: u64) -> u64 {
    index + i * SLOT_LEN
}
/// Bytes of the slots of an index of `slots` slots.
pub fn index_len(slots: u64) -> u64 {
    slots * SLOT_LEN
}
/// The size class of the block that holds one index copy of `slots` slots.
pub fn index_block_class(slots: u64) -> u8 {
    class_for(index_len(slots))
}
/// Bytes of the block that holds one index copy of `slots` slots (a copy owns its whole block).
pub fn index_block_len(slots: u64) -> u64 {
    class_size(index_block_class(slots))
}

/// The slot naming the block at `offset` of size class `class`, tagged with the key's hash.
pub fn slot_pack(offset: u64, class: u8, hash: u64) -> u64 {
    debug_assert!(offset.is_multiple_of(BLOCK_ALIGN) && offset >= HEAP_START);
    (offset / BLOCK_ALIGN)
        | ((class as u64) << SLOT_CLASS_SHIFT)
        | (slot_tag(hash) << SLOT_TAG_SHIFT)
}
/// The tag a key hash leaves in its slot (compared before the key is read).
#[inline]
pub fn slot_tag(hash: u64) -> u64 {
    hash >> SLOT_TAG_SHIFT
}
/// The block offset a slot points to.
#[inline]
pub fn slot_offset(slot: u64) -> u64 {
    (slot & ((1 << SLOT_OFFSET_BITS) - 1)) * BLOCK_ALIGN
}
/// The size class of the block a slot points to.
#[inline]
pub fn slot_class(slot: u64) -> u8 {
    ((slot >> SLOT_CLASS_SHIFT) & ((1 << SLOT_CLASS_BITS) - 1)) as u8
}
/// Whether a slot points to an entry (is neither empty nor a tombstone).
pub fn slot_is_entry(slot: u64) -> bool {
    slot > SLOT_TOMBSTONE
}

// ---------------------------------------------------------------------------------------------
// Entries.

/// Bytes of an entry's header; the key and the value follow it.
pub const ENTRY_HEADER: usize = 40;
/// Offsets of the entry header's fields (see the diagram above).
pub mod entry_at {
    /// crc32c, u32, of everything from `CHECKSUMMED` to the end of the value.
    pub const CRC: usize = 0;
    /// Where the checksummed bytes start.
    pub const CHECKSUMMED: usize = 4;
    /// Key length, u32.
    pub const KEY_LEN: usize = 4;
    /// Value length, u32 (bytes 12..16 are zero).
    pub const VAL_LEN: usize = 8;
    /// Expiry, u64 Unix milliseconds, 0 = never.
    pub const EXPIRES_MS: usize = 16;
    /// Modification time, u64 Unix milliseconds.
    pub const MODIFIED_MS: usize = 24;
    /// Version (the LSN of the write), u64.
    pub const VERSION: usize = 32;
    const _: () = assert!(VERSION + 8 == super::ENTRY_HEADER);
}

/// An entry's header as read; [`read_entry`] and [`read_value`] check it against its block and
/// its checksum before anything uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntryHeader {
    pub crc: u32,
    pub key_len: u32,
    pub val_len: u32,
    pub expires_ms: u64,
    pub modified_ms: u64,
    pub version: u64,
}

impl EntryHeader {
    #[inline]
    pub fn decode(b: &[u8]) -> EntryHeader {
        EntryHeader {
            crc: u32_at(b, entry_at::CRC),
            key_len: u32_at(b, entry_at::KEY_LEN),
            val_len: u32_at(b, entry_at::VAL_LEN),
            expires_ms: u64_at(b, entry_at::EXPIRES_MS),
            modified_ms: u64_at(b, entry_at::MODIFIED_MS),
            version: u64_at(b, entry_at::VERSION),
        }
    }
    #[inline]
    pub fn total_len(&self) -> u64 {
        ENTRY_HEADER as u64 + self.key_len as u64 + self.val_len as u64
    }
}

/// An entry's header, with the checksum of the header, key and value: written straight into a
/// block followed by the key and the value (no whole entry built first).
pub(crate) fn entry_header_for(
    key: &[u8],
    value: &[u8],
    expires_ms: u64,
    modified_ms: u64,
    version: u64,
) -> [u8; ENTRY_HEADER] {
    let mut b = [0u8; ENTRY_HEADER];
    b[entry_at::KEY_LEN..entry_at::KEY_LEN + 4].copy_from_slice(&(key.len() as u32).to_le_bytes());
    b[entry_at::VAL_LEN..entry_at::VAL_LEN + 4]
        .copy_from_slice(&(value.len() as u32).to_le_bytes());
    put_u64(&mut b, entry_at::EXPIRES_MS, expires_ms);
    put_u64(&mut b, entry_at::MODIFIED_MS, modified_ms);
    put_u64(&mut b, entry_at::VERSION, version);
    let crc = entry_crc(&b, key, value);
    b[entry_at::CRC..entry_at::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    b
}

/// The CRC-32C of an entry's checksummed header bytes, key and value, as `crc32c_parts` gives
/// it: on the write path of every put, so the header's 36 bytes go as five words with no
/// length checks, under one feature check for all three parts.
#[inline]
fn entry_crc(header: &[u8; ENTRY_HEADER], key: &[u8], value: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if key.len() <= 512
            && value.len() < CRC_3WAY_MIN
            && std::arch::is_x86_feature_detected!("sse4.2")
        {
            // SAFETY: the CPU supports SSE 4.2 (checked just above), which is all the function's
            // target feature requires; it only reads its arguments.
            return unsafe { entry_crc_sse42(header, key, value) };
        }
    }
    crc32c_parts(&[&header[entry_at::CHECKSUMMED..], key, value])
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
fn entry_crc_sse42(header: &[u8; ENTRY_HEADER], key: &[u8], value: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u32, _mm_crc32_u64};
    const _: () = assert!(entry_at::CHECKSUMMED == 4 && ENTRY_HEADER == 40);
    let mut crc = _mm_crc32_u32(!0, u32_at(header, 4));
    let mut wide = u64::from(crc);
    for at in [8, 16, 24, 32] {
        wide = _mm_crc32_u64(wide, u64_at(header, at));
    }
    crc = !(wide as u32);
    crc32c_short_sse42(crc32c_short_sse42(crc, key), value)
}

/// Builds a complete entry (header, key, value) with its checksum (tests build blocks with it;
/// the write path writes the three parts in place).
#[cfg(test)]
pub(crate) fn encode_entry(
    key: &[u8],
    value: &[u8],
    expires_ms: u64,
    modified_ms: u64,
    version: u64,
) -> Vec<u8> {
    [
        &entry_header_for(key, value, expires_ms, modified_ms, version)[..],
        key,
        value,
    ]
    .concat()
}

/// Where entries are read from: the live mapping (readers race writers there, so every value
/// is checked before use) or the checker's `pread`s.
pub(crate) trait EntrySource {
    /// Fills `buf` from `off`; an error if the range is not in the file.
    fn fetch(&self, off: u64, buf: &mut [u8]) -> Result<()>;
    /// `len` bytes from `off`; an error if the range is not in the file.
    fn fetch_vec(&self, off: u64, len: usize) -> Result<Vec<u8>>;
    /// The file, for error messages.
    fn path(&self) -> &Path;
}

/// Reads the header of the block `slot` points to and checks that the entry fits the block.
pub(crate) fn entry_header(
    src: &impl EntrySource,
    slot: u64,
) -> Result<(EntryHeader, [u8; ENTRY_HEADER])> {
    let mut raw = [0u8; ENTRY_HEADER];
    src.fetch(slot_offset(slot), &mut raw)?;
    let h = EntryHeader::decode(&raw);
    let block = class_size(slot_class(slot));
    if h.total_len() > block {
        return Err(Error::corrupt(
            src.path(),
            CorruptKind::EntryTooLong {
                at: slot_offset(slot),
                claims: h.total_len(),
                block,
            },
        ));
    }
    Ok((h, raw))
}

/// The one entry decoder: the entry in the block `slot` points to, checked against its block
/// and its checksum. `known_key`: the key the caller's probe matched, which is then not read
/// again (the checksum, computed with it, proves the block holds that key).
fn decode_entry(
    src: &impl EntrySource,
    slot: u64,
    known_key: Option<&[u8]>,
) -> Result<(Option<Vec<u8>>, Entry)> {
    let off = slot_offset(slot);
    let (h, raw) = entry_header(src, slot)?;
    let key_at = off + ENTRY_HEADER as u64;
    let read_key = match known_key {
        Some(k) if k.len() != h.key_len as usize => {
            return Err(Error::corrupt(
                src.path(),
                CorruptKind::EntryKeyMismatch { at: off },
            ))
        }
        Some(_) => None,
        None => Some(src.fetch_vec(key_at, h.key_len as usize)?),
    };
    let key = known_key.or(read_key.as_deref()).unwrap_or_default();
    let value = src.fetch_vec(key_at + h.key_len as u64, h.val_len as usize)?;
    let crc = crc32c::crc32c_append(
        crc32c::crc32c_append(crc32c::crc32c(&raw[entry_at::CHECKSUMMED..]), key),
        &value,
    );
    if crc != h.crc {
        return Err(Error::corrupt(
            src.path(),
            CorruptKind::EntryChecksum { at: off },
        ));
    }
    let entry = Entry {
        value,
        expires_at_ms: h.expires_ms,
        modified_at_ms: h.modified_ms,
        version: h.version,
    };
    Ok((read_key, entry))
}

/// The whole entry (key and value) `slot` points to, checksum verified.
pub(crate) fn read_entry(src: &impl EntrySource, slot: u64) -> Result<(Vec<u8>, Entry)> {
    let (key, entry) = decode_entry(src, slot, None)?;
    Ok((key.unwrap_or_default(), entry))
}

/// The entry of `key` in the block `slot` points to (a probe matched the key), checksum verified.
pub(crate) fn read_value(src: &impl EntrySource, slot: u64, key: &[u8]) -> Result<Entry> {
    Ok(decode_entry(src, slot, Some(key))?.1)
}

// ---------------------------------------------------------------------------------------------
// Journal records.

/// Bytes of a record's header; the payload follows, then zero padding to [`RECORD_ALIGN`].
pub const RECORD_HEADER: usize = 24;
/// Records start at multiples of this.
pub const RECORD_ALIGN: usize = 8;
/// Offsets of the record header's fields (see the diagram above).
pub mod record_at {
    /// crc32c, u32, of everything from `CHECKSUMMED` to the end of the payload.
    pub const CRC: usize = 0;
    /// Where the checksummed bytes start.
    pub const CHECKSUMMED: usize = 4;
    /// Payload length, u32.
    pub const PAYLOAD_LEN: usize = 4;
    /// The epoch of the checkpoint that started the record's cycle, u64.
    pub const EPOCH: usize = 8;
    /// The record's LSN, u64.
    pub const LSN: usize = 16;
    const _: () = assert!(LSN + 8 == super::RECORD_HEADER);
}

/// One logical change. Conditional operations (add, compare-and-swap, increments) are decided
/// under the write lock and journaled as their outcome, so replay is deterministic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op<'a> {
    Put {
        key: Cow<'a, [u8]>,
        value: Cow<'a, [u8]>,
        expires_ms: u64,
        modified_ms: u64,
    },
    Delete {
        key: Cow<'a, [u8]>,
    },
    Clear,
    /// Clear the store and record a new reset-on-restart generation.
    Reset {
        generation: u64,
    },
}

impl Op<'_> {
    /// The same operation, owning its key and value.
    pub(crate) fn into_owned(self) -> Op<'static> {
        match self {
            Op::Put {
                key,
                value,
                expires_ms,
                modified_ms,
            } => Op::Put {
                key: Cow::Owned(key.into_owned()),
                value: Cow::Owned(value.into_owned()),
                expires_ms,
                modified_ms,
            },
            Op::Delete { key } => Op::Delete {
                key: Cow::Owned(key.into_owned()),
            },
            Op::Clear => Op::Clear,
            Op::Reset { generation } => Op::Reset { generation },
        }
    }
}

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_CLEAR: u8 = 3;
const OP_RESET: u8 = 4;
/// A put's fixed fields after its kind byte: key_len u32, val_len u32, expires_ms, modified_ms.
const PUT_FIXED: usize = 4 + 4 + 8 + 8;

/// The most a record holding one put adds to its key and value: header, kind byte, fixed fields
/// and padding.
pub(crate) const PUT_RECORD_OVERHEAD: usize = RECORD_HEADER + 1 + PUT_FIXED + (RECORD_ALIGN - 1);

impl Op<'_> {
    pub fn encoded_len(&self) -> usize {
        match self {
            Op::Put { key, value, .. } => 1 + PUT_FIXED + key.len() + value.len(),
            Op::Delete { key } => 1 + 4 + key.len(),
            Op::Clear => 1,
            Op::Reset { .. } => 1 + 8,
        }
    }
}

/// Bytes a record of `ops` takes in the journal, padding included.
pub(crate) fn record_len(ops: &[Op]) -> usize {
    (RECORD_HEADER + ops.iter().map(Op::encoded_len).sum::<usize>()).next_multiple_of(RECORD_ALIGN)
}

/// A complete record, padded to [`RECORD_ALIGN`].
#[cfg(test)]
pub(crate) fn encode_record(epoch: u64, lsn: u64, ops: &[Op]) -> Vec<u8> {
    let mut b = vec![0; record_len(ops)];
    encode_record_to(&mut b, epoch, lsn, ops);
    b
}

/// Writes the record of `ops` into `out`, which is exactly [`record_len`]`(ops)` bytes: in one
/// pass with no growth checks, so that the write path can encode it straight into the journal's
/// mapping. Every byte is written (the padding as zeros), whatever `out` held.
pub(crate) fn encode_record_to(out: &mut [u8], epoch: u64, lsn: u64, ops: &[Op]) {
    debug_assert_eq!(out.len(), record_len(ops));
    if let [Op::Put {
        key,
        value,
        expires_ms,
        modified_ms,
    }] = ops
    {
        return encode_put_record_to(out, epoch, lsn, key, value, *expires_ms, *modified_ms);
    }
    /// Copies `bytes` at `*at` and moves past them.
    #[inline(always)]
    fn put(out: &mut [u8], at: &mut usize, bytes: &[u8]) {
        out[*at..*at + bytes.len()].copy_from_slice(bytes);
        *at += bytes.len();
    }
    let mut at = RECORD_HEADER;
    for op in ops {
        match op {
            Op::Put {
                key,
                value,
                expires_ms,
                modified_ms,
            } => {
                put(out, &mut at, &[OP_PUT]);
                put(out, &mut at, &(key.len() as u32).to_le_bytes());
                put(out, &mut at, &(value.len() as u32).to_le_bytes());
                put(out, &mut at, &expires_ms.to_le_bytes());
                put(out, &mut at, &modified_ms.to_le_bytes());
                put(out, &mut at, key);
                put(out, &mut at, value);
            }
            Op::Delete { key } => {
                put(out, &mut at, &[OP_DELETE]);
                put(out, &mut at, &(key.len() as u32).to_le_bytes());
                put(out, &mut at, key);
            }
            Op::Clear => put(out, &mut at, &[OP_CLEAR]),
            Op::Reset { generation } => {
                put(out, &mut at, &[OP_RESET]);
                put(out, &mut at, &generation.to_le_bytes());
            }
        }
    }
    out[at..].fill(0);
    let payload_len = (at - RECORD_HEADER) as u32;
    out[record_at::PAYLOAD_LEN..record_at::PAYLOAD_LEN + 4]
        .copy_from_slice(&payload_len.to_le_bytes());
    put_u64(out, record_at::EPOCH, epoch);
    put_u64(out, record_at::LSN, lsn);
    let crc = crc32c(&out[record_at::CHECKSUMMED..at]);
    out[record_at::CRC..record_at::CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

/// `encode_record_to` of a record holding one put (nearly every record written): the header
/// and the put's fields lie at fixed offsets, written without a bounds check each.
fn encode_put_record_to(
    out: &mut [u8],
    epoch: u64,
    lsn: u64,
    key: &[u8],
    value: &[u8],
    expires_ms: u64,
    modified_ms: u64,
) {
    const KIND: usize = RECORD_HEADER;
    const KEY: usize = KIND + 1 + PUT_FIXED;
    let end = KEY + key.len() + value.len();
    let (head, rest) = out.split_at_mut(KEY);
    let head: &mut [u8; KEY] = head.try_into().expect("a put's record holds its fields");
    let (rest, padding) = rest.split_at_mut(end - KEY);
    let (k, v) = rest.split_at_mut(key.len());
    k.copy_from_slice(key);
    v.copy_from_slice(value);
    padding.fill(0);
    let word =
        |b: &mut [u8; KEY], at: usize, x: u64| b[at..at + 8].copy_from_slice(&x.to_le_bytes());
    let half =
        |b: &mut [u8; KEY], at: usize, x: u32| b[at..at + 4].copy_from_slice(&x.to_le_bytes());
    half(head, record_at::PAYLOAD_LEN, (end - RECORD_HEADER) as u32);
    word(head, record_at::EPOCH, epoch);
    word(head, record_at::LSN, lsn);
    head[KIND] = OP_PUT;
    half(head, KIND + 1, key.len() as u32);
    half(head, KIND + 5, value.len() as u32);
    word(head, KIND + 9, expires_ms);
    word(head, KIND + 17, modified_ms);
    let crc = crc32c(&out[record_at::CHECKSUMMED..end]);
    out[record_at::CRC..record_at::CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

/// The operations of a record's payload, borrowing keys and values from it.
pub(crate) fn decode_ops(mut p: &[u8]) -> Option<Vec<Op<'_>>> {
    fn take<'a>(p: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if p.len() < n {
            return None;
        }
        let (a, b) = p.split_at(n);
        *p = b;
        Some(a)
    }
    let mut ops = Vec::new();
    while !p.is_empty() {
        let kind = take(&mut p, 1)?[0];
        ops.push(match kind {
            OP_PUT => {
                let h = take(&mut p, PUT_FIXED)?;
                let (klen, vlen) = (u32_at(h, 0) as usize, u32_at(h, 4) as usize);
                let key = take(&mut p, klen)?;
                let value = take(&mut p, vlen)?;
                Op::Put {
                    key: key.into(),
                    value: value.into(),
                    expires_ms: u64_at(h, 8),
                    modified_ms: u64_at(h, 16),
                }
            }
            OP_DELETE => {
                let klen = u32_at(take(&mut p, 4)?, 0) as usize;
                Op::Delete {
                    key: take(&mut p, klen)?.into(),
                }
            }
            OP_CLEAR => Op::Clear,
            OP_RESET => Op::Reset {
                generation: u64_at(take(&mut p, 8)?, 0),
            },
            _ => return None,
        });
    }
    Some(ops)
}

/// Bytes of one journal half. Records of epoch `e` go to half `e % 2` (SPEC.md §3), so a
/// checkpoint's flush can run while writers append to the other half.
pub const fn journal_half(journal_size: u64) -> u64 {
    journal_size / 2
}

/// Where the half that holds epoch `epoch`'s records starts in the journal file.
pub const fn journal_half_base(journal_size: u64, epoch: u64) -> u64 {
    (epoch % 2) * journal_half(journal_size)
}

/// The valid prefix of a journal chain (one half, or a half and the next epoch's half).
#[derive(Default)]
pub(crate) struct Scan {
    /// The records in LSN order, with their LSNs: filled by `Journal::scan` and `scan_records`,
    /// left empty where only `spans` are wanted (recovery decodes each payload as it replays).
    pub records: Vec<(u64, Vec<Op<'static>>)>,
    /// Each valid record's LSN and where its payload lies in the bytes scanned.
    pub spans: Vec<(u64, std::ops::Range<usize>)>,
    /// Offset just past the last valid record, inside the half of `epoch`: where the next record
    /// goes.
    pub end: u64,
    /// The epoch of the half the chain ends in.
    pub epoch: u64,
    /// Why scanning stopped, if not at a clean end (for diagnostics).
    pub stopped: Option<RecordProblem>,
}

/// Why a journal scan stopped before a clean end: the record there is torn or damaged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RecordProblem {
    /// The record's length runs past the end of the journal.
    RunsPastEnd { at: u64 },
    /// The record fails its checksum.
    Checksum { at: u64 },
    /// The checksum holds but the operations do not decode.
    Undecodable { at: u64 },
}

impl fmt::Display for RecordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordProblem::RunsPastEnd { at } => write!(f, "record at {at} runs past the end"),
            RecordProblem::Checksum { at } => write!(f, "checksum mismatch at {at}"),
            RecordProblem::Undecodable { at } => write!(f, "undecodable record at {at}"),
        }
    }
}

/// Reads the records of cycle `epoch` from a whole journal's bytes, starting with LSN
/// `first_lsn`, up to the first record that is torn, fails its checksum, belongs to another cycle
/// (a leftover: the end of this one), or breaks the LSN sequence.
#[cfg(test)]
pub(crate) fn scan_records(journal: &[u8], epoch: u64, first_lsn: u64) -> Scan {
    let mut scan = Scan {
        epoch,
        ..Scan::default()
    };
    continue_scan(journal, epoch, first_lsn, &mut scan);
    scan.decode_records(journal);
    scan
}

impl Scan {
    /// Fills `records` from `spans` over the same bytes.
    pub(crate) fn decode_records(&mut self, journal: &[u8]) {
        self.records = self
            .spans
            .iter()
            .map(|(lsn, r)| {
                let ops = decode_ops(&journal[r.clone()]).expect("checked by the scan");
                (*lsn, ops.into_iter().map(Op::into_owned).collect())
            })
            .collect();
    }
}

/// Goes on with `scan` from its end over `journal`, a longer prefix of the same journal than the
/// one it ran over (which ended it for lack of bytes), so no record is decoded twice.
pub(crate) fn continue_scan(journal: &[u8], epoch: u64, first_lsn: u64, scan: &mut Scan) {
    let (mut pos, mut lsn) = (scan.end as usize, first_lsn + scan.spans.len() as u64);
    let spans = &mut scan.spans;
    let stopped = loop {
        if pos + RECORD_HEADER > journal.len() {
            break None;
        }
        let h = &journal[pos..pos + RECORD_HEADER];
        if h.iter().all(|&b| b == 0) {
            break None;
        }
        let at = pos as u64;
        let end = pos + RECORD_HEADER + u32_at(h, record_at::PAYLOAD_LEN) as usize;
        if end > journal.len() {
            break Some(RecordProblem::RunsPastEnd { at });
        }
        if crc32c(&journal[pos + record_at::CHECKSUMMED..end]) != u32_at(h, record_at::CRC) {
            break Some(RecordProblem::Checksum { at });
        }
        if u64_at(h, record_at::EPOCH) != epoch || u64_at(h, record_at::LSN) != lsn {
            break None;
        }
        if decode_ops(&journal[pos + RECORD_HEADER..end]).is_none() {
            break Some(RecordProblem::Undecodable { at });
        }
        spans.push((lsn, pos + RECORD_HEADER..end));
        lsn += 1;
        pos = end.next_multiple_of(RECORD_ALIGN);
    };
    scan.end = pos as u64;
    scan.stopped = stopped;
}

/// The effects of replaying a record, one method each. The engine's live index and the
/// checker's in-memory copy implement them; [`replay`] alone decides what each operation means.
pub(crate) trait Replay {
    type Error;
    /// Store `value` under `key`; `version` is the record's LSN.
    fn put(
        &mut self,
        key: &[u8],
        value: &[u8],
        expires_ms: u64,
        modified_ms: u64,
        version: u64,
    ) -> std::result::Result<(), Self::Error>;
    /// Remove `key` if present.
    fn delete(&mut self, key: &[u8]) -> std::result::Result<(), Self::Error>;
    /// Remove every key.
    fn clear(&mut self) -> std::result::Result<(), Self::Error>;
    /// Record a new reset-on-restart generation.
    fn set_generation(&mut self, generation: u64) -> std::result::Result<(), Self::Error>;
}

/// Applies the operations of record `lsn`, in order, to `target`.
pub(crate) fn replay<R: Replay>(
    lsn: u64,
    ops: &[Op],
    target: &mut R,
) -> std::result::Result<(), R::Error> {
    for op in ops {
        match op {
            Op::Put {
                key,
                value,
                expires_ms,
                modified_ms,
            } => target.put(key, value, *expires_ms, *modified_ms, lsn)?,
            Op::Delete { key } => target.delete(key)?,
            Op::Clear => target.clear()?,
            Op::Reset { generation } => {
                target.clear()?;
                target.set_generation(*generation)?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Size classes and the key hash.

/// Size classes: 64, 128, 192, 256, then four steps per doubling (320, 384, 448, 512, 640, ...),
/// so a block wastes at most a quarter of its size.
pub const CLASSES: usize = 128;

/// Bytes of a block of size class `class`.
#[inline]
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
#[inline]
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
        h = (h ^ tail_word(rest)).wrapping_mul(M);
    }
    // fmix64 from MurmurHash3: spreads every input bit over the whole word.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// CRC-32C (Castagnoli), the same value as `crc32c::crc32c`, faster for the short inputs of the
/// hot paths (an entry's header, key and a small value; a journal record of one small put): the
/// crate aligns its input with byte-at-a-time steps and is built for long buffers, where here
/// unaligned 8-byte steps and a 4/2/1-byte tail do it in a handful of instructions.
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_append(0, data)
}

/// The CRC-32C of the bytes `crc` was computed over followed by `data` (as
/// `crc32c::crc32c_append`), with the short-input path of [`crc32c`].
#[inline]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if data.len() <= 512 && std::arch::is_x86_feature_detected!("sse4.2") {
            if data.len() >= CRC_3WAY_MIN && std::arch::is_x86_feature_detected!("pclmulqdq") {
                // SAFETY: the CPU supports SSE 4.2 and PCLMULQDQ (both checked just above), the
                // function's target features; it only reads `data`.
                return unsafe { crc32c_3way(crc, data) };
            }
            // SAFETY: the CPU supports SSE 4.2 (checked just above), which is all the function's
            // target feature requires; it only reads `data`.
            return unsafe { crc32c_short_sse42(crc, data) };
        }
    }
    crc32c::crc32c_append(crc, data)
}

/// The CRC-32C of `parts` one after the other (an entry's header, key and value), with one
/// feature check and one call for all of them.
#[inline]
pub fn crc32c_parts(parts: &[&[u8]]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if parts.iter().all(|p| p.len() <= 512) && std::arch::is_x86_feature_detected!("sse4.2") {
            // SAFETY: the CPU supports SSE 4.2 (checked just above), which is all the function's
            // target feature requires; it only reads `parts`.
            return unsafe { crc32c_parts_sse42(parts) };
        }
    }
    parts.iter().fold(0, |crc, p| crc32c::crc32c_append(crc, p))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
fn crc32c_parts_sse42(parts: &[&[u8]]) -> u32 {
    parts.iter().fold(0, |crc, p| crc32c_short_sse42(crc, p))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
#[inline]
fn crc32c_short_sse42(crc: u32, data: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u16, _mm_crc32_u32, _mm_crc32_u64, _mm_crc32_u8};
    let mut crc = u64::from(!crc);
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        crc = _mm_crc32_u64(crc, u64::from_le_bytes(w.try_into().unwrap()));
    }
    let mut crc = crc as u32;
    let mut rest = words.remainder();
    if rest.len() >= 4 {
        crc = _mm_crc32_u32(crc, u32::from_le_bytes(rest[..4].try_into().unwrap()));
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        crc = _mm_crc32_u16(crc, u16::from_le_bytes(rest[..2].try_into().unwrap()));
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        crc = _mm_crc32_u8(crc, b);
    }
    !crc
}

/// From this length the checksum runs as three interleaved streams: each `crc32` instruction
/// waits about three cycles for the one before it on the same stream, so a single stream over an
/// entry of a few hundred bytes (every read checksums one, SPEC.md §2.3) is latency-bound.
const CRC_3WAY_MIN: usize = 72;

/// `K[n / 8 - 1]` = x^(8n - 33) mod P (CRC-32C's polynomial, bit-reflected), for n = 8, 16, ...,
/// 512: carry-less multiplying a CRC state by it and folding the product with `crc32` advances
/// the state over n zero bytes (the 33 makes up for the product's one-bit offset and the 32 bits
/// the fold appends).
#[cfg(target_arch = "x86_64")]
const CRC_SHIFT: [u32; 64] = {
    let mut k = [0u32; 64];
    // x^0, reflected: the top bit.
    let mut v: u32 = 0x8000_0000;
    let mut power = 0;
    let mut i = 0;
    while i < 64 {
        let want = 8 * 8 * (i + 1) - 33;
        while power < want {
            v = if v & 1 == 1 {
                (v >> 1) ^ 0x82f6_3b78
            } else {
                v >> 1
            };
            power += 1;
        }
        k[i] = v;
        i += 1;
    }
    k
};

/// The CRC-32C of `data` (at least [`CRC_3WAY_MIN`] and at most 512 bytes) appended to `crc`:
/// three equal runs of 8-byte words checksummed side by side, their states combined by shifting
/// the first two over the runs after them (carry-less multiplication), then the tail as
/// `crc32c_short_sse42` does it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2,pclmulqdq")]
fn crc32c_3way(crc: u32, data: &[u8]) -> u32 {
    use std::arch::x86_64::{
        _mm_clmulepi64_si128, _mm_crc32_u64, _mm_cvtsi128_si64, _mm_cvtsi64_si128,
    };
    let run = data.len() / 24 * 8;
    let (a, rest) = data.split_at(run);
    let (b, rest) = rest.split_at(run);
    let (c, tail) = rest.split_at(run);
    let word = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().unwrap());
    let (mut sa, mut sb, mut sc) = (u64::from(!crc), 0u64, 0u64);
    for i in (0..run).step_by(8) {
        sa = _mm_crc32_u64(sa, word(a, i));
        sb = _mm_crc32_u64(sb, word(b, i));
        sc = _mm_crc32_u64(sc, word(c, i));
    }
    // The state advanced over `n` zero bytes: crc32(0, clmul(state, x^(8n-33))).
    let shift = |state: u64, n: usize| {
        let k = CRC_SHIFT[n / 8 - 1];
        let p = _mm_clmulepi64_si128(
            _mm_cvtsi64_si128(state as i64),
            _mm_cvtsi64_si128(i64::from(k)),
            0,
        );
        _mm_crc32_u64(0, _mm_cvtsi128_si64(p) as u64)
    };
    let state = shift(sa, 2 * run) ^ shift(sb, run) ^ sc;
    // The tail (under 24 bytes) continues the combined state; `crc32c_short_sse42` takes and
    // returns the inverted form.
    crc32c_short_sse42(!(state as u32), tail)
}

/// The 1 to 7 bytes of `rest` as a little-endian u64 padded with zeros, from two overlapping
/// loads (the same bits where they overlap) instead of a copy through a stack buffer, whose
/// byte stores the 8-byte load then waited for.
#[inline]
fn tail_word(rest: &[u8]) -> u64 {
    let n = rest.len();
    let le = |b: &[u8]| b.iter().rev().fold(0u64, |w, &x| (w << 8) | x as u64);
    if n >= 4 {
        le(&rest[..4]) | (le(&rest[n - 4..]) << (8 * (n - 4)))
    } else if n >= 2 {
        le(&rest[..2]) | (le(&rest[n - 2..]) << (8 * (n - 2)))
    } else {
        rest[0] as u64
    }
}

#[inline]
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
#[inline]
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// The hash (which places keys in the index, so is part of the format) of keys of every
    /// length is the zero-padded little-endian word scheme it always was.
    #[test]
    fn key_hash_tail_is_the_zero_padded_word() {
        for len in 1..8 {
            let rest: Vec<u8> = (1..=len as u8).map(|i| i.wrapping_mul(37)).collect();
            let mut t = [0u8; 8];
            t[..len].copy_from_slice(&rest);
            assert_eq!(tail_word(&rest), u64::from_le_bytes(t), "len {len}");
        }
        assert_eq!(hash_key(b"key12"), 0x0abf_b047_5ef0_b8c8);
        assert_eq!(hash_key(b"abcdefghijk"), 0x39e8_047d_5c92_8918);
    }

    /// The short-input CRC is the standard CRC-32C (the crate's) at every length and alignment
    /// around its 8/4/2/1-byte steps and its cut-over to the crate.
    #[test]
    fn short_crc_matches_the_crate() {
        let data: Vec<u8> = (0..700u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for start in 0..9 {
            for len in 0..600 {
                let b = &data[start..start + len];
                assert_eq!(crc32c(b), crc32c::crc32c(b), "start {start} len {len}");
                let (x, y) = b.split_at(len / 3);
                assert_eq!(crc32c_append(crc32c(x), y), crc32c::crc32c(b));
            }
        }
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    /// The bytes the format had before it was gathered in this module: any change to an offset,
    /// a field order or a checksum range shows up here (it needs a format version bump).
    #[test]
    fn encodings_are_pinned() {
        let sb = Superblock {
            epoch: 3,
            ckpt_lsn: 0x1122,
            file_size: 1 << 20,
            max_size: 1 << 30,
            heap_end: 0x9000,
            index: [0x2000, 0x5000],
            index_slots: 1024,
            durable_copy: 1,
            generation: 7,
            journal_size: 65536,
            created_ms: 0x01_0203_0405,
            index_crc: 0xdead_beef,
            live: 0x8000,
        };
        assert_eq!(
            hex(&sb.encode()),
            "415043444264617403000000f30b1e74030000000000000022110000000000000000100000000000\
             000000400000000000900000000000000020000000000000005000000000000000040000000000\
             000100000000000000070000000000000000000100000000000504030201000000efbeadde0000\
             00000080000000000000"
        );
        assert_eq!(
            hex(&encode_entry(b"key", b"value!", 11, 22, 33)),
            "392498600300000006000000000000000b0000000000000016000000000000002100000000000000\
             6b657976616c756521"
        );
        let ops = [
            Op::Put {
                key: b"k".as_slice().into(),
                value: b"vv".as_slice().into(),
                expires_ms: 5,
                modified_ms: 6,
            },
            Op::Delete {
                key: b"dk".as_slice().into(),
            },
            Op::Clear,
            Op::Reset { generation: 9 },
        ];
        let rec = encode_record(4, 77, &ops);
        assert_eq!(rec.len(), record_len(&ops));
        // Encoded in place over old bytes (a reused stretch of the journal's mapping), every byte
        // is the record's own: header, payload and the padding's zeros.
        let mut over_old = vec![0xab; rec.len()];
        encode_record_to(&mut over_old, 4, 77, &ops);
        assert_eq!(hex(&over_old), hex(&rec));
        assert_eq!(
            hex(&rec),
            "559e0e6a2d00000004000000000000004d00000000000000010100000002000000050000000000\
             000006000000000000006b76760202000000646b03040900000000000000000000"
        );
        assert_eq!(
            format!("{:x}", slot_pack(HEAP_START + 640, 9, hash_key(b"k"))),
            "7dcf8900000008a"
        );
        assert_eq!(
            format!("{:x}", hash_key(b"hello world, a longer key")),
            "bd23f0633c6920cb"
        );
    }

    /// A record of one put (encoded by its own shortcut) is byte for byte the put's part of a
    /// record of several operations, with its own header, checksum and padding, over whatever
    /// the journal held there; a scan reads it back.
    #[test]
    fn a_single_put_record_is_the_general_encoding() {
        let bytes: Vec<u8> = (0..1200u32).map(|i| (i * 31 + i / 7) as u8).collect();
        for (klen, vlen) in [
            (0, 0),
            (1, 0),
            (3, 5),
            (7, 1),
            (8, 8),
            (24, 100),
            (250, 900),
        ] {
            let put = Op::Put {
                key: bytes[..klen].into(),
                value: bytes[klen..klen + vlen].into(),
                expires_ms: 0x0102_0304_0506_0708,
                modified_ms: 99 + vlen as u64,
            };
            let one = [put.clone()];
            let mut rec = vec![0xab; record_len(&one)];
            encode_record_to(&mut rec, 5, 1234, &one);
            // The same put followed by a Clear, through the general encoder: the put's bytes are
            // the same, only the length, the checksum and the padding differ.
            let two = [put.clone(), Op::Clear];
            let general = encode_record(5, 1234, &two);
            let payload = one[0].encoded_len();
            assert_eq!(
                rec[RECORD_HEADER..RECORD_HEADER + payload],
                general[RECORD_HEADER..RECORD_HEADER + payload]
            );
            assert_eq!(
                rec[record_at::EPOCH..RECORD_HEADER],
                general[record_at::EPOCH..RECORD_HEADER]
            );
            assert_eq!(u32_at(&rec, record_at::PAYLOAD_LEN) as usize, payload);
            assert!(
                rec[RECORD_HEADER + payload..].iter().all(|&b| b == 0),
                "padding"
            );
            assert_eq!(
                u32_at(&rec, record_at::CRC),
                crc32c::crc32c(&rec[record_at::CHECKSUMMED..RECORD_HEADER + payload])
            );
            let scan = scan_records(&rec, 5, 1234);
            assert_eq!(
                scan.records,
                vec![(1234, one.to_vec())],
                "key {klen} value {vlen}"
            );
        }
    }

    /// An entry's checksum, by the write path's shortcut or not (short and long keys and
    /// values, around the lengths where the CRC changes method), is the CRC-32C of its bytes
    /// from `CHECKSUMMED` on, as every reader verifies it.
    #[test]
    fn entry_checksums_are_crc32c_of_the_entry() {
        let bytes: Vec<u8> = (0..3000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for klen in [0, 1, 3, 7, 8, 9, 24, 250, 513, 1000] {
            for vlen in (0..100).chain([127, 128, 511, 512, 513, 1500]) {
                let (key, value) = (&bytes[..klen], &bytes[klen..klen + vlen]);
                let e = encode_entry(key, value, 0x0102_0304_0506, u64::MAX - vlen as u64, 77);
                assert_eq!(
                    u32_at(&e, entry_at::CRC),
                    crc32c::crc32c(&e[entry_at::CHECKSUMMED..]),
                    "key {klen} value {vlen}"
                );
            }
        }
    }

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
        let sb = sane();
        let mut b = sb.encode();
        assert_eq!(
            UncheckedSuperblock::decode(&b).unwrap().validate(1 << 20),
            Ok(sb)
        );
        b[40] ^= 1;
        assert_eq!(
            UncheckedSuperblock::decode(&b),
            Err(SuperblockError::Checksum)
        );
        assert_eq!(
            UncheckedSuperblock::decode(&[0; SUPERBLOCK_LEN]),
            Err(SuperblockError::BadMagic)
        );
        assert_eq!(
            UncheckedSuperblock::decode(&b[..SUPERBLOCK_LEN - 1]),
            Err(SuperblockError::Short)
        );
        let mut v = sane().encode();
        v[superblock_at::VERSION] = 4;
        let e = UncheckedSuperblock::decode(&v).unwrap_err();
        assert_eq!(e.to_string(), "format version 4, this build reads 3 to 3");
        // An older file: refused, saying why.
        v[superblock_at::VERSION] = 2;
        let e = UncheckedSuperblock::decode(&v).unwrap_err();
        assert!(e.to_string().contains("written by an older apcdb"), "{e}");
        v[superblock_at::VERSION] = 0;
        assert!(UncheckedSuperblock::decode(&v).is_err());
    }

    /// A superblock as `create_data_file` writes it for a 1 MiB store of 4096 slots.
    fn sane() -> Superblock {
        let copy = index_block_len(4096);
        Superblock {
            epoch: 1,
            file_size: 1 << 20,
            max_size: 1 << 30,
            heap_end: HEAP_START + 3 * copy,
            index: [HEAP_START, HEAP_START + copy],
            live: HEAP_START + 2 * copy,
            index_slots: 4096,
            journal_size: 16 << 20,
            ..Default::default()
        }
    }

    #[test]
    fn validation_refuses_every_out_of_range_field() {
        assert_eq!(sane().check(1 << 20), Ok(()));
        type Spoil = fn(&mut Superblock);
        let bad: [(&str, Spoil); 16] = [
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
            ("overlap", |s| s.live = s.index[1] + 64),
            ("epoch", |s| s.epoch = 0),
            ("checksum", |s| s.index_crc = 1 << 40),
        ];
        for (why, spoil) in bad {
            let mut sb = sane();
            spoil(&mut sb);
            // Through the bytes, as an open meets it: decodes, then validation refuses it.
            let unchecked = UncheckedSuperblock::decode(&sb.encode()).unwrap();
            let e = unchecked.validate(1 << 20).expect_err(why).to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn the_newest_decodable_copy_is_picked_and_refusals_are_kept() {
        let (mut a, mut b) = (sane(), sane());
        a.epoch = 5;
        b.epoch = 6;
        let (ea, mut eb) = (a.encode(), b.encode());
        let p = pick_superblock([&ea, &eb]);
        assert_eq!(p.newest.unwrap().epoch(), 6);
        assert_eq!(p.refused, [None, None]);
        // A damaged newer copy: the older one is picked, and why the newer one was not is kept.
        eb[superblock_at::EPOCH] ^= 1;
        let p = pick_superblock([&ea, &eb]);
        assert_eq!(p.newest.unwrap().epoch(), 5);
        assert_eq!(p.refused, [None, Some(SuperblockError::Checksum)]);
        let p = pick_superblock([&[0; SUPERBLOCK_LEN], &eb]);
        assert!(p.newest.is_none());
        let e = CorruptKind::NoValidSuperblock { refused: p.refused };
        assert_eq!(
            e.to_string(),
            "no valid superblock (superblock 0: bad magic; superblock 1: checksum mismatch)"
        );
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

    /// A data file in memory, for the entry decoder.
    struct Bytes(Vec<u8>);
    impl EntrySource for Bytes {
        fn fetch(&self, off: u64, buf: &mut [u8]) -> Result<()> {
            buf.copy_from_slice(&self.fetch_vec(off, buf.len())?);
            Ok(())
        }
        fn fetch_vec(&self, off: u64, len: usize) -> Result<Vec<u8>> {
            self.0
                .get(off as usize..off as usize + len)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| {
                    Error::corrupt(
                        "mem",
                        CorruptKind::OutsideFile {
                            off,
                            len: len as u64,
                        },
                    )
                })
        }
        fn path(&self) -> &Path {
            Path::new("mem")
        }
    }

    #[test]
    fn the_entry_decoder_checks_block_key_and_checksum() {
        let entry = encode_entry(b"key", b"value", 7, 8, 9);
        let class = class_for(entry.len() as u64);
        let slot = slot_pack(HEAP_START, class, 0);
        let mut file = vec![0u8; HEAP_START as usize + class_size(class) as usize];
        file[HEAP_START as usize..][..entry.len()].copy_from_slice(&entry);
        let (key, e) = read_entry(&Bytes(file.clone()), slot).unwrap();
        assert_eq!(
            (key.as_slice(), e.value.as_slice()),
            (&b"key"[..], &b"value"[..])
        );
        assert_eq!((e.expires_at_ms, e.modified_at_ms, e.version), (7, 8, 9));
        assert_eq!(read_value(&Bytes(file.clone()), slot, b"key").unwrap(), e);

        let message = |r: Result<Entry>| r.unwrap_err().to_string();
        // Another key of the same length: the checksum (computed with it) refuses the block.
        assert!(
            message(read_value(&Bytes(file.clone()), slot, b"kez")).contains("fails its checksum")
        );
        assert!(message(read_value(&Bytes(file.clone()), slot, b"ke"))
            .contains("does not match its slot"));
        let mut flipped = file.clone();
        flipped[HEAP_START as usize + ENTRY_HEADER + 4] ^= 1;
        assert!(
            message(read_entry(&Bytes(flipped), slot).map(|x| x.1)).contains("fails its checksum")
        );
        // A length that does not fit the slot's class is refused before anything is read.
        let mut long = file.clone();
        long[HEAP_START as usize + entry_at::VAL_LEN] = 200;
        assert!(
            message(read_entry(&Bytes(long), slot).map(|x| x.1)).contains(&format!(
                "claims 243 bytes in a {}-byte block",
                class_size(class)
            ))
        );
    }

    /// Replays into a list of effects, to pin down what each operation means.
    #[derive(Default)]
    struct Effects(Vec<String>);
    impl Replay for Effects {
        type Error = ();
        fn put(
            &mut self,
            k: &[u8],
            v: &[u8],
            e: u64,
            m: u64,
            ver: u64,
        ) -> std::result::Result<(), ()> {
            self.0.push(format!("put {k:?} {v:?} {e} {m} v{ver}"));
            Ok(())
        }
        fn delete(&mut self, k: &[u8]) -> std::result::Result<(), ()> {
            self.0.push(format!("delete {k:?}"));
            Ok(())
        }
        fn clear(&mut self) -> std::result::Result<(), ()> {
            self.0.push("clear".into());
            Ok(())
        }
        fn set_generation(&mut self, g: u64) -> std::result::Result<(), ()> {
            self.0.push(format!("generation {g}"));
            Ok(())
        }
    }

    #[test]
    fn records_scan_and_replay() {
        let ops = vec![
            Op::Put {
                key: b"k".as_slice().into(),
                value: b"v".as_slice().into(),
                expires_ms: 5,
                modified_ms: 6,
            },
            Op::Delete {
                key: b"k".as_slice().into(),
            },
            Op::Clear,
            Op::Reset { generation: 9 },
        ];
        let mut journal = encode_record(3, 10, &ops);
        journal.extend(encode_record(3, 11, &ops[..1]));
        journal.extend(encode_record(2, 12, &ops[..1])); // an older cycle's leftover
        journal.resize(4096, 0);
        let scan = scan_records(&journal, 3, 10);
        assert_eq!(scan.records.len(), 2);
        assert_eq!(scan.stopped, None);
        let mut fx = Effects::default();
        for (lsn, ops) in &scan.records {
            replay(*lsn, ops, &mut fx).unwrap();
        }
        assert_eq!(
            fx.0,
            [
                "put [107] [118] 5 6 v10",
                "delete [107]",
                "clear",
                "clear",
                "generation 9",
                "put [107] [118] 5 6 v11"
            ]
        );
        // Damage in the second record keeps the first and says where it stopped.
        journal[record_len(&ops) + RECORD_HEADER + 2] ^= 1;
        let scan = scan_records(&journal, 3, 10);
        assert_eq!(scan.records.len(), 1);
        let at = record_len(&ops) as u64;
        assert_eq!(scan.stopped, Some(RecordProblem::Checksum { at }));
        assert_eq!(scan.end, at);
    }
}
