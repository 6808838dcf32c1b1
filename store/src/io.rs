//! The one seam through which every byte and every flush that reaches the disk passes (the idea of
//! SQLite's VFS and redb's `StorageBackend`, narrowed to what this engine does to its files).
//!
//! A [`StorageIo`] is set in [`crate::Options::io`]; the default, [`RealIo`], makes the system
//! calls. Every method has the real behaviour as its default, so an implementation overrides only
//! what it wants to see or break and stays a wrapper around the real files:
//!
//! - growth: `fallocate` of the data file, of the journal and of the lock file at creation, and
//!   of the data file's heap growing back over a tail a compaction gave back (`punch_hole`);
//! - writes: `pwrite` of journal records (`Sync` durability), of the first superblock and of the
//!   journal's zero fill at creation;
//! - flushes: `msync` of a range of the data file, `fdatasync`/`fsync` of a file, `fsync` of the
//!   directory; and the write-back a checkpoint paces ahead of its `msync` (`sync_file_range`,
//!   not a flush: nothing is durable by it alone). A call *is* the flush starting; its return is the flush done, so a recorder sees
//!   both, and knows that writes made while the call runs may or may not be covered.
//!
//! Writes through the mappings (data file; journal in the relaxed modes) are memory copies that
//! cannot fail. They are reported only to an implementation that asks once, at open, with
//! [`StorageIo::wants_mapped_writes`]: the production path then pays one predictable branch on a
//! cached `bool` per map write, never a virtual call.
//!
//! Errors come back as `io::Error`; the engine names the file and the operation, turns ENOSPC into
//! [`crate::Error::Full`], and poisons the handle when a flush fails (SPEC.md §8.3).

use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// Which of the store's files a call is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// The data file (`PATH`): superblocks, index copies, entries.
    Data,
    /// The redo journal (`PATH.journal`).
    Journal,
    /// The lock file (`PATH.lock`): shared state only, nothing durable, but grown at creation.
    Lock,
}

/// How much of a file a [`StorageIo::sync_file`] makes durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncKind {
    /// The data and the metadata needed to read it back (`fdatasync`): journal commits.
    Data,
    /// Everything, metadata included (`fsync`): files just created and filled.
    All,
}

/// A range of a store file's shared mapping, handed to [`StorageIo::sync_map`]. It can only be
/// made by the engine, for a range inside a live mapping, so flushing it is safe.
pub struct MappedRange<'a> {
    /// The page-aligned start of the range in this process's address space.
    start: *mut u8,
    /// Bytes from `start` to the end of the range.
    span: usize,
    off: u64,
    len: u64,
    _mapping: PhantomData<&'a ()>,
}

impl std::fmt::Debug for MappedRange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedRange")
            .field("off", &self.off)
            .field("len", &self.len)
            .finish()
    }
}

impl<'a> MappedRange<'a> {
    /// # Safety
    /// `base` is the start of a mapping that stays mapped for `'a`, and `[off, off + len)` lies
    /// inside it.
    pub(crate) unsafe fn new(base: *mut u8, off: u64, len: u64) -> MappedRange<'a> {
        let aligned = off & !(crate::format::PAGE - 1);
        MappedRange {
            // SAFETY: `aligned <= off` lies inside the mapping (the caller's promise).
            start: unsafe { base.add(aligned as usize) },
            span: (off + len - aligned) as usize,
            off,
            len,
            _mapping: PhantomData,
        }
    }

    /// Offset of the range in the file.
    pub fn offset(&self) -> u64 {
        self.off
    }

    /// Length of the range in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty range.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the range's dirty pages to disk and waits (`msync(MS_SYNC)`).
    pub fn msync(&self) -> io::Result<()> {
        // SAFETY: `start..start+span` is page-aligned and inside a live mapping (see `new`);
        // msync reads no Rust memory and changes none.
        let rc = unsafe { libc::msync(self.start.cast(), self.span, libc::MS_SYNC) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Everything the engine does to its files that can fail or that a crash could lose. See the
/// module documentation; each default is the real system call.
pub trait StorageIo: Send + Sync {
    /// Reserves real blocks for `[0, len)` of `file` (`fallocate`), so that stores through a
    /// mapping cannot hit a hole on a full disk. ENOSPC here becomes [`crate::Error::Full`].
    fn allocate(&self, kind: FileKind, file: &File, len: u64) -> io::Result<()> {
        let _ = kind;
        // SAFETY: the descriptor is open for the duration of the call.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reserves real blocks for `[off, off + len)` inside `file`'s length (`fallocate` with
    /// `FALLOC_FL_KEEP_SIZE`): the heap growing back over a tail that a compaction gave back
    /// (SPEC.md §7.4). ENOSPC here becomes [`crate::Error::Full`].
    fn allocate_range(&self, kind: FileKind, file: &File, off: u64, len: u64) -> io::Result<()> {
        let _ = kind;
        // SAFETY: the descriptor is open for the duration of the call.
        let rc = unsafe {
            libc::fallocate(
                file.as_raw_fd(),
                libc::FALLOC_FL_KEEP_SIZE,
                off as libc::off_t,
                len as libc::off_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Gives the disk blocks of `[off, off + len)` back without changing the file's length
    /// (`fallocate` with `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`): a compaction's freed
    /// tail (SPEC.md §7.4). The range then reads as zeros.
    fn punch_hole(&self, kind: FileKind, file: &File, off: u64, len: u64) -> io::Result<()> {
        let _ = kind;
        // SAFETY: the descriptor is open for the duration of the call.
        let rc = unsafe {
            libc::fallocate(
                file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off as libc::off_t,
                len as libc::off_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Writes `bytes` at `off` of `file` (`pwrite`); returns how many were written, which may be
    /// fewer (the engine writes the rest with further calls).
    fn write_at(&self, kind: FileKind, file: &File, off: u64, bytes: &[u8]) -> io::Result<usize> {
        let _ = kind;
        file.write_at(bytes, off)
    }

    /// Flushes `file` (`fdatasync` or `fsync`, as `what` says).
    fn sync_file(&self, kind: FileKind, file: &File, what: SyncKind) -> io::Result<()> {
        let _ = kind;
        match what {
            SyncKind::Data => file.sync_data(),
            SyncKind::All => file.sync_all(),
        }
    }

    /// Flushes a range of a file's shared mapping (`msync`): the data file at a checkpoint and
    /// in the early flush.
    fn sync_map(&self, kind: FileKind, range: &MappedRange<'_>) -> io::Result<()> {
        let _ = kind;
        range.msync()
    }

    /// Writes the dirty pages of `[off, off + len)` of `file` back to the disk and waits for
    /// them (`sync_file_range` with `WAIT_BEFORE | WRITE | WAIT_AFTER`), without flushing the
    /// disk's cache or the file's metadata: nothing is durable through it alone. A checkpoint
    /// uses it to spread its write-back in small pieces ahead of the `msync` that makes the heap
    /// durable, when durable writers share the disk (SPEC.md §5).
    fn write_back(&self, kind: FileKind, file: &File, off: u64, len: u64) -> io::Result<()> {
        let _ = kind;
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: the descriptor is open for the duration of the call; no memory is passed.
        let rc = unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                off as libc::off64_t,
                len as libc::off64_t,
                flags,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Makes a new file's directory entry durable (`fsync` of the directory).
    fn sync_dir(&self, dir: &File) -> io::Result<()> {
        dir.sync_all()
    }

    /// Asked once per open: whether [`data_written`](Self::data_written) and
    /// [`journal_copied`](Self::journal_copied) should be called. Default: no (they cost nothing).
    fn wants_mapped_writes(&self) -> bool {
        false
    }

    /// Bytes `[off, off + len)` of the data file changed through the mapping (page cache only).
    fn data_written(&self, off: u64, len: u64) {
        let _ = (off, len);
    }

    /// A journal record was copied into the journal's mapping at `off` (relaxed durability
    /// modes; page cache only, like a `pwrite` before its `fdatasync`).
    fn journal_copied(&self, off: u64, bytes: &[u8]) {
        let _ = (off, bytes);
    }
}

/// The real files: every method makes its system call. The default of [`crate::Options`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RealIo;

impl StorageIo for RealIo {}

/// The handle every engine part that touches a file keeps.
pub(crate) type SharedIo = std::sync::Arc<dyn StorageIo>;

/// Writes all of `bytes` at `off`, going on after short writes (as `write_all_at` does).
pub(crate) fn write_all_at(
    io: &dyn StorageIo,
    kind: FileKind,
    file: &File,
    mut off: u64,
    mut bytes: &[u8],
) -> io::Result<()> {
    while !bytes.is_empty() {
        match io.write_at(kind, file, off, bytes) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the write made no progress",
                ))
            }
            Ok(n) => {
                bytes = &bytes[n.min(bytes.len())..];
                off += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
