//! The one error type of the crate. Every variant names the file it is about, so a message read in a
//! PHP warning or an operator's log says what went wrong and where.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in apcdb.
#[derive(Debug)]
pub enum Error {
    /// A system call on `path` failed; `op` says which one (open, fsync, fallocate, ...).
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    /// Bytes on disk do not pass their checksum or a structural check.
    Corrupt { path: PathBuf, detail: String },
    /// The file is not safe to use: owned by another user, writable by group/others, a symlink.
    Permission { path: PathBuf, detail: String },
    /// The file was written by an incompatible version or with an incompatible layout.
    Incompatible { path: PathBuf, detail: String },
    /// The key is longer than [`crate::MAX_KEY_LEN`].
    KeyTooLarge { len: usize, max: usize },
    /// The value (or a batch) does not fit the journal or the store.
    ValueTooLarge { len: usize, max: usize },
    /// The store reached its maximum size (or the disk is full); nothing was changed.
    Full { path: PathBuf, detail: String },
    /// Another process has the store open (refused by [`crate::Exclusive::acquire`]).
    Busy { path: PathBuf, detail: String },
    /// An earlier fsync/msync failed: this handle refuses writes; reopen to recover from the journal.
    Poisoned { path: PathBuf },
    /// A store operation was called from inside an [`crate::Store::update`] callback on the same
    /// thread, which would deadlock on the write lock.
    Reentrant,
    /// A write through the write lock of another process: this process was forked (e.g. by
    /// `pcntl_fork()` in an `apc_entry()` generator) while its parent held the lock inside
    /// [`crate::Store::update`]. The child does not own the lock, so it may not commit; the
    /// parent's transaction is unaffected.
    ForkedLockHolder,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }
    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Error {
        Error::Corrupt {
            path: path.into(),
            detail: detail.into(),
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
            Error::Io { path, op, source } => write!(f, "{op} failed on {}: {source}", path.display()),
            Error::Corrupt { path, detail } => write!(f, "{} is corrupt: {detail}", path.display()),
            Error::Permission { path, detail } => write!(f, "refusing {}: {detail}", path.display()),
            Error::Incompatible { path, detail } => {
                write!(f, "{} is not a compatible apcdb file: {detail}", path.display())
            }
            Error::KeyTooLarge { len, max } => write!(f, "key of {len} bytes exceeds the limit of {max} bytes"),
            Error::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds the limit of {max} bytes")
            }
            Error::Full { path, detail } => write!(f, "{} is full: {detail}", path.display()),
            Error::Busy { path, detail } => write!(f, "{} is in use: {detail}", path.display()),
            Error::Poisoned { path } => write!(
                f,
                "an earlier flush of {} failed; this handle refuses writes, reopen the store to recover",
                path.display()
            ),
            Error::Reentrant => {
                write!(f, "store called from inside its own update callback (would deadlock)")
            }
            Error::ForkedLockHolder => write!(
                f,
                "this process was forked while its parent held the store's write lock; \
                 the child does not own the lock and cannot write through it"
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
