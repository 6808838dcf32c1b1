//! The one error type of the crate. Every variant names the file it is about, so a message read in a
//! PHP warning or an operator's log says what went wrong and where.

use crate::format::SuperblockError;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in apcdb. New variants may be added in later versions (match
/// with a `_` arm); the `Display` text is meant for people, the variants and their fields for code.
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// A system call on `path` failed; `op` says which one (open, fsync, fallocate, ...).
    Io {
        /// The file (or directory) the call was about.
        path: PathBuf,
        /// The system call.
        op: &'static str,
        /// What the system said.
        source: io::Error,
    },
    /// Bytes on disk (or in the lock file's shared state) do not pass their checksum or a
    /// structural check; `kind` says which check.
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong, and where.
        kind: CorruptKind,
    },
    /// The file is not safe to use: owned by another user, writable by group/others, a symlink.
    Permission {
        /// The refused file or directory.
        path: PathBuf,
        /// Why, and how to fix it.
        detail: String,
    },
    /// The options, or state recorded by another build, do not fit this one (sizes out of range,
    /// address space that cannot be reserved, a lock file written by another version).
    Incompatible {
        /// The store's data file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The key is longer than [`crate::MAX_KEY_LEN`].
    KeyTooLarge {
        /// The key's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The value (or a batch) does not fit the journal or the store.
    ValueTooLarge {
        /// The value's (or batch's) length.
        len: usize,
        /// The limit ([`crate::Store::max_value_len`]).
        max: usize,
    },
    /// The store reached its maximum size (or the disk is full); nothing was changed.
    Full {
        /// The file that could not grow.
        path: PathBuf,
        /// What needed the room.
        detail: String,
    },
    /// Another process has the store open (refused by [`crate::Exclusive::acquire`]).
    Busy {
        /// The store's data file.
        path: PathBuf,
        /// Who holds it.
        detail: String,
    },
    /// An earlier fsync/msync failed: this handle refuses writes; reopen to recover from the journal.
    Poisoned {
        /// The store's data file.
        path: PathBuf,
        /// What the failure that poisoned the handle said (it may have been seen by no caller:
        /// a flush of the checkpoint thread).
        cause: String,
    },
    /// A store operation was called from inside an [`crate::Store::update`] callback on the same
    /// thread, which would deadlock on the write lock.
    Reentrant,
    /// A write through the write lock of another process: this process was forked (e.g. by
    /// `pcntl_fork()` in an `apc_entry()` generator) while its parent held the lock inside
    /// [`crate::Store::update`]. The child does not own the lock, so it may not commit; the
    /// parent's transaction is unaffected.
    ForkedLockHolder,
    /// A write, checkpoint, flush or resize through a handle opened with
    /// [`crate::Options::read_only`].
    ReadOnly {
        /// The store's data file.
        path: PathBuf,
    },
}

/// The result of every fallible apcdb call.
pub type Result<T> = std::result::Result<T, Error>;

/// Which structural check failed ([`Error::Corrupt`]). The `Display` text is the message users
/// see; offsets are byte offsets in the named file.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorruptKind {
    /// Neither superblock copy decodes; why, for each copy.
    NoValidSuperblock {
        /// Why each copy was refused.
        refused: [Option<SuperblockError>; 2],
    },
    /// The newest superblock copy decodes but a field is out of range.
    Superblock {
        /// The copy's epoch.
        epoch: u64,
        /// The field and why.
        problem: SuperblockError,
    },
    /// A checkpoint built a superblock the next open would refuse, and did not write it.
    RefusedSuperblock {
        /// The epoch it would have had.
        epoch: u64,
        /// The field and why.
        problem: SuperblockError,
    },
    /// The superblock copy this process last wrote no longer reads back as written.
    DurableSuperblock {
        /// What is wrong with it.
        problem: SuperblockError,
    },
    /// The index copy a superblock names fails the checksum recorded with it.
    IndexChecksum {
        /// The superblock's epoch.
        epoch: u64,
    },
    /// An entry's header claims more bytes than its block holds.
    EntryTooLong {
        /// The block's offset.
        at: u64,
        /// Header, key and value length together.
        claims: u64,
        /// The block's size.
        block: u64,
    },
    /// An entry's key length differs from the key its slot was matched with.
    EntryKeyMismatch {
        /// The block's offset.
        at: u64,
    },
    /// An entry fails its checksum.
    EntryChecksum {
        /// The block's offset.
        at: u64,
    },
    /// An offset read from the file points outside it.
    OutsideFile {
        /// Start of the range.
        off: u64,
        /// Its length.
        len: u64,
    },
    /// A slot offset is not 8-byte aligned.
    MisalignedWord {
        /// The offset.
        at: u64,
    },
    /// A free-list link points outside the heap or off a block boundary.
    FreeListLink {
        /// The link's value.
        link: u64,
        /// The block holding it.
        at: u64,
    },
    /// A block referenced by the index lies outside the heap.
    BlockOutsideHeap {
        /// The block's offset.
        at: u64,
    },
    /// Two referenced blocks overlap.
    BlocksOverlap {
        /// Where the second one starts.
        at: u64,
    },
    /// The file became shorter than this process had mapped it (truncated or replaced from
    /// outside while open).
    Truncated,
    /// The journal's length differs from the one the superblock records.
    JournalSize {
        /// Its length.
        len: u64,
        /// The recorded length.
        expected: u64,
    },
    /// The data file is empty although other processes have the store open.
    EmptyDataFile,
    /// The lock file's length is not the shared state's.
    LockFileSize {
        /// Its length.
        len: u64,
        /// The expected length.
        expected: u64,
    },
    /// The process-shared write lock was released without repair and cannot be taken again.
    LockUnrecoverable,
}

impl fmt::Display for CorruptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CorruptKind::*;
        match self {
            NoValidSuperblock { refused } => {
                let why: Vec<String> = refused
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| e.as_ref().map(|e| format!("superblock {i}: {e}")))
                    .collect();
                write!(f, "no valid superblock ({})", why.join("; "))
            }
            Superblock { epoch, problem } => write!(f, "superblock epoch {epoch}: {problem}"),
            RefusedSuperblock { epoch, problem } => {
                write!(f, "refusing to write superblock epoch {epoch}: {problem}")
            }
            DurableSuperblock { problem } => write!(f, "durable superblock unreadable: {problem}"),
            IndexChecksum { epoch } => write!(
                f,
                "the index copy named by superblock epoch {epoch} fails its checksum (media \
                 damage?); run `apcdb recover`"
            ),
            EntryTooLong { at, claims, block } => {
                write!(
                    f,
                    "entry at {at} claims {claims} bytes in a {block}-byte block"
                )
            }
            EntryKeyMismatch { at } => write!(f, "entry at {at} does not match its slot"),
            EntryChecksum { at } => write!(f, "entry at {at} fails its checksum"),
            OutsideFile { off, len } => write!(f, "bytes {off}+{len} lie outside the file"),
            MisalignedWord { at } => write!(f, "misaligned word at {at}"),
            FreeListLink { link, at } => write!(f, "free list link {link} at {at} is invalid"),
            BlockOutsideHeap { at } => write!(f, "block at {at} lies outside the heap"),
            BlocksOverlap { at } => write!(f, "blocks overlap at {at}"),
            Truncated => write!(
                f,
                "the file was truncated or replaced under the open store (never shrink, overwrite \
                 or copy over a store's files while a process has it open); this handle refuses \
                 further use: close every process using the store, then run `apcdb check` on it"
            ),
            JournalSize { len, expected } => {
                write!(f, "journal is {len} bytes, the store expects {expected}")
            }
            EmptyDataFile => write!(
                f,
                "empty data file while other processes have the store open"
            ),
            LockFileSize { len, expected } => {
                write!(f, "lock file is {len} bytes, expected {expected}")
            }
            LockUnrecoverable => write!(
                f,
                "the store's lock is unrecoverable (a holder released it without repair); close \
                 every process using the store"
            ),
        }
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }
    pub(crate) fn corrupt(path: impl Into<PathBuf>, kind: CorruptKind) -> Error {
        Error::Corrupt {
            path: path.into(),
            kind,
        }
    }
    /// True when the error means "out of space" (store at its maximum size, or disk full).
    pub fn is_full(&self) -> bool {
        match self {
            Error::Full { .. } => true,
            Error::Io { source, .. } => source.raw_os_error() == Some(libc::ENOSPC),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, op, source } => {
                write!(f, "{op} failed on {}: {source}", path.display())
            }
            Error::Corrupt { path, kind } => write!(f, "{} is corrupt: {kind}", path.display()),
            Error::Permission { path, detail } => {
                write!(f, "refusing {}: {detail}", path.display())
            }
            Error::Incompatible { path, detail } => {
                write!(
                    f,
                    "{} is not a compatible apcdb file: {detail}",
                    path.display()
                )
            }
            Error::KeyTooLarge { len, max } => {
                write!(f, "key of {len} bytes exceeds the limit of {max} bytes")
            }
            Error::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds the limit of {max} bytes")
            }
            Error::Full { path, detail } => write!(f, "{} is full: {detail}", path.display()),
            Error::Busy { path, detail } => write!(f, "{} is in use: {detail}", path.display()),
            Error::Poisoned { path, cause } => write!(
                f,
                "an earlier flush of {} failed ({cause}); this handle refuses writes, reopen the \
                 store to recover",
                path.display()
            ),
            Error::Reentrant => {
                write!(
                    f,
                    "store called from inside its own update callback (would deadlock)"
                )
            }
            Error::ForkedLockHolder => write!(
                f,
                "this process was forked while its parent held the store's write lock; \
                 the child does not own the lock and cannot write through it"
            ),
            Error::ReadOnly { path } => write!(
                f,
                "{} was opened read-only: writes, checkpoints, flushes and resizes are refused \
                 (open it without Options::read_only, as the files' owner, to change it)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
