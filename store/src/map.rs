//! The data file's shared mapping. Every byte that reaches the data file passes through `Map`'s
//! few write methods, each of which asks for the [`LockHeld`] proof that only a write transaction
//! has; every read is bounds-checked against the file's real length, so a corrupt offset gives an
//! error, never a SIGBUS or a read outside the mapping.
//!
//! The mapping reserves address space once, more than the store's limit when it can (SPEC.md
//! §9): the file grows inside it with `fallocate`, and other processes see the growth, and a
//! raised limit, without remapping (a remap under lock-free readers would unmap memory they are
//! reading). A process whose reservation turns out smaller than the file gets a clear error
//! past it, never a read outside the mapping.
//!
//! The file may still shrink under us from outside (`truncate`, `cp backup.db live.db`): every
//! access runs inside `sigbus::Region::access`, so a page past the new end gives an error and
//! breaks this mapping for good instead of killing the process with SIGBUS (SPEC.md §6.5).

use crate::error::{CorruptKind, Error, Result};
use crate::files;
use crate::io::{FileKind, MappedRange, SharedIo};
use crate::sigbus::Region;
use crate::write::LockHeld;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Map {
    base: *mut u8,
    reserved: u64,
    /// Bytes of the file this process has seen backed by blocks (fstat); only grows.
    visible: AtomicU64,
    /// Set once the file was seen longer than `reserved` (another process, with a larger
    /// reservation, grew it past ours): this process can no longer see or flush all of it.
    outgrown: std::sync::atomic::AtomicBool,
    file: File,
    pub path: PathBuf,
    /// Which file this maps, and the seam its growth and flushes go through.
    kind: FileKind,
    io: SharedIo,
    /// `io.wants_mapped_writes()` for the data file, asked once: a map write then costs one
    /// predictable branch, not a virtual call.
    report_writes: bool,
    region: Region,
}

// SAFETY: the mapping is shared memory designed for concurrent use by many processes; all access
// goes through methods that use atomics for published words and validate everything else.
unsafe impl Send for Map {}
// SAFETY: as above.
unsafe impl Sync for Map {}

impl Map {
    pub fn new(
        path: PathBuf,
        file: File,
        reserved: u64,
        kind: FileKind,
        io: SharedIo,
    ) -> Result<Map> {
        let len = files::file_len(&path, &file)?;
        let reserved = reserved.max(len);
        let base = map_shared(&path, &file, reserved)?;
        let Some(region) = Region::register(base, reserved as usize) else {
            // SAFETY: just mapped above; nothing refers to it yet.
            unsafe { unmap(base, reserved) };
            return Err(too_many_mappings(&path));
        };
        // Small folios: without this one store dirties up to 1 MiB and a checkpoint writes it all.
        // SAFETY: advice on the range just mapped; failure only loses the optimisation.
        unsafe {
            libc::madvise(
                base as *mut libc::c_void,
                reserved as usize,
                libc::MADV_RANDOM,
            )
        };
        Ok(Map {
            base,
            reserved,
            visible: AtomicU64::new(len),
            outgrown: Default::default(),
            file,
            path,
            kind,
            // The journal's mapping reports its records itself (`Journal::write_at`), whole.
            report_writes: kind == FileKind::Data && io.wants_mapped_writes(),
            io,
            region,
        })
    }

    /// True once the file was found shorter than this mapping had seen it: nothing read from
    /// the mapping may be trusted any more, and nothing may be written through it.
    #[inline]
    pub fn broken(&self) -> bool {
        self.region.broken()
    }

    /// The error every access returns once the mapping is broken.
    pub fn truncated_error(&self) -> Error {
        truncated_error(&self.path)
    }

    /// Runs an access to the mapping; a SIGBUS during it (the file shrank) becomes an error.
    #[inline]
    fn guarded<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        self.region.access(f).ok_or_else(|| self.truncated_error())
    }

    /// The open data file (its descriptor also carries the election locks, SPEC.md §6.1).
    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// The file's length as last seen by this process.
    pub fn len(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    /// Re-reads the file's length from the kernel (another process may have grown it).
    pub fn refresh_len(&self) -> Result<u64> {
        if self.broken() {
            return Err(self.truncated_error());
        }
        let real = files::file_len(&self.path, &self.file)?;
        if real > self.reserved {
            self.outgrown.store(true, Ordering::Relaxed);
        }
        let real = real.min(self.reserved);
        let seen = self.visible.fetch_max(real, Ordering::AcqRel);
        if real < seen {
            // Files of a store never shrink: someone truncated or overwrote it from outside.
            self.region.mark_broken();
            return Err(self.truncated_error());
        }
        Ok(seen.max(real))
    }

    /// Ensures `[off, off+len)` lies inside the file, refreshing the length from the kernel when
    /// another process may have grown it. Inline: every access of the write path runs it, and
    /// the range is nearly always inside the length already seen.
    #[inline]
    fn check(&self, off: u64, len: u64) -> Result<()> {
        match off.checked_add(len) {
            Some(end) if end <= self.visible.load(Ordering::Acquire) => Ok(()),
            _ => self.check_slow(off, len),
        }
    }

    /// `check` for a range past the length last seen: asks the kernel (the file may have grown).
    #[cold]
    #[inline(never)]
    fn check_slow(&self, off: u64, len: u64) -> Result<()> {
        let end = off
            .checked_add(len)
            .ok_or_else(|| self.out_of_bounds(off, len))?;
        let real = self.refresh_len()?;
        if end <= real {
            Ok(())
        } else if end > self.reserved && self.outgrown.load(Ordering::Relaxed) {
            Err(self.outgrown_error())
        } else {
            Err(self.out_of_bounds(off, len))
        }
    }

    /// `refresh_len`, failing when the file is longer than this process's reservation: a
    /// checkpoint from here could neither flush nor record the part it cannot see.
    pub fn whole_len(&self) -> Result<u64> {
        let len = self.refresh_len()?;
        if self.outgrown.load(Ordering::Relaxed) {
            return Err(self.outgrown_error());
        }
        Ok(len)
    }

    /// The file grew (under a raised maximum size) past what this process reserved.
    pub fn outgrown_error(&self) -> Error {
        Error::Incompatible {
            path: self.path.clone(),
            detail: format!(
                "the store's maximum size was raised and the file grew past the {} bytes of \
                 address space this process reserved when it opened the store; close and reopen \
                 it (with the new maximum size in its options, and that much address space \
                 available) to use the rest",
                self.reserved
            ),
        }
    }

    fn out_of_bounds(&self, off: u64, len: u64) -> Error {
        Error::corrupt(&self.path, CorruptKind::OutsideFile { off, len })
    }

    /// Copies bytes out of the map. Another process may be writing them: callers validate what
    /// they read (checksum, sequence number) before trusting it.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        self.check(off, buf.len() as u64)?;
        // SAFETY: `check` proved the range lies inside both the mapping and the file (as last
        // seen; if the file shrank since, `guarded` turns the SIGBUS into an error).
        self.guarded(|| unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(off as usize), buf.as_mut_ptr(), buf.len())
        })
    }

    pub fn read_vec(&self, off: u64, len: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read(off, &mut v)?;
        Ok(v)
    }

    /// Runs `f` on the file's bytes `[off, off+len)` in place, without copying them. Another
    /// process may rewrite them meanwhile (a block handed out again after a checkpoint): callers
    /// validate with the readers' sequence number after `f` returned and discard its result when
    /// it moved. A SIGBUS inside `f` (the file shrank from outside) becomes an error.
    pub fn with_slice<R>(&self, off: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        self.check(off, len as u64)?;
        self.guarded(|| {
            // SAFETY: `check` proved the range lies inside the mapping and the file as last seen
            // (a shrink since is caught by `guarded`); the mapping outlives the borrow, which
            // ends with `f`. The bytes are shared memory that only change when a reorganisation
            // reuses the block: that bumps the sequence number the caller checks afterwards, so a
            // result computed from changing bytes is never used.
            let here = unsafe { std::slice::from_raw_parts(self.base.add(off as usize), len) };
            f(here)
        })
    }

    /// Runs `f` with a [`View`] of the mapping: any number of bounds-checked reads under one
    /// SIGBUS guard, where `load_u64` and `with_slice` pay for a guard each (a lookup reads a few
    /// index words and a block; SPEC.md §6.3, §6.5). The same rules as `with_slice` hold for what
    /// `f` reads: shared memory that the caller validates with the sequence number afterwards.
    #[inline]
    pub fn with_view<R>(&self, f: impl FnOnce(&View<'_>) -> R) -> Result<R> {
        self.guarded(|| f(&View { map: self }))
    }

    #[inline]
    fn word(&self, off: u64) -> Result<&AtomicU64> {
        if !off.is_multiple_of(8) {
            return Err(Error::corrupt(
                &self.path,
                CorruptKind::MisalignedWord { at: off },
            ));
        }
        self.check(off, 8)?;
        // SAFETY: in bounds (checked), 8-aligned (the base is page-aligned), and the memory stays
        // mapped as long as `self` lives; AtomicU64 has the layout of u64.
        Ok(unsafe { &*(self.base.add(off as usize) as *const AtomicU64) })
    }

    /// An aligned 8-byte load, atomic with respect to other processes' `store_u64`.
    pub fn load_u64(&self, off: u64) -> Result<u64> {
        let w = self.word(off)?;
        self.guarded(|| w.load(Ordering::Acquire))
    }

    /// The publishing store: one aligned 8-byte write, seen whole or not at all.
    pub fn store_u64(&self, _: &LockHeld, off: u64, v: u64) -> Result<()> {
        let w = self.word(off)?;
        self.guarded(|| w.store(v, Ordering::Release))?;
        self.observed(off, 8);
        Ok(())
    }

    /// Writes `parts` one after the other from `off` (an entry's header, key and value), as one
    /// write of their concatenation.
    pub fn write_parts(&self, _: &LockHeld, off: u64, parts: &[&[u8]]) -> Result<()> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.check(off, len as u64)?;
        self.guarded(|| {
            let mut at = off as usize;
            for p in parts {
                // SAFETY: `[off, off + len)` is in bounds (checked; a shrink since is caught by
                // `guarded`) and each part lands inside it. Only the holder of the write lock
                // writes, and only to blocks no reader can reach yet.
                unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), self.base.add(at), p.len()) };
                at += p.len();
            }
        })?;
        self.observed(off, len as u64);
        Ok(())
    }

    /// Lets `fill` write `[off, off + len)` in place (the journal encodes a record straight into
    /// its mapping), then reports the range as written; returns what `fill` returned. `fill`
    /// must not touch this mapping otherwise.
    pub fn write_with<R>(
        &self,
        _: &LockHeld,
        off: u64,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Result<R> {
        self.check(off, len as u64)?;
        let r = self.guarded(|| {
            // SAFETY: in bounds (checked; a shrink since is caught by `guarded`). Only the holder
            // of the write lock writes, and only where nothing in this process reads meanwhile
            // (the journal's tail, which is read back only through the file); the borrow ends
            // with `fill`.
            let here = unsafe { std::slice::from_raw_parts_mut(self.base.add(off as usize), len) };
            fill(here)
        })?;
        self.observed(off, len as u64);
        Ok(r)
    }

    pub fn write(&self, _: &LockHeld, off: u64, bytes: &[u8]) -> Result<()> {
        self.check(off, bytes.len() as u64)?;
        // SAFETY: in bounds (checked; a shrink since is caught by `guarded`). Only the holder of
        // the write lock writes, and only to blocks no reader can reach yet (or to superblocks,
        // which readers do not use).
        self.guarded(|| unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(off as usize), bytes.len())
        })?;
        self.observed(off, bytes.len() as u64);
        Ok(())
    }

    /// Copies `len` bytes from `src` to `dst` inside the file (the ranges do not overlap).
    pub fn copy(&self, _: &LockHeld, src: u64, dst: u64, len: u64) -> Result<()> {
        self.check(src, len)?;
        self.check(dst, len)?;
        // SAFETY: both ranges in bounds (checked; a shrink since is caught by `guarded`);
        // callers copy between distinct index copies.
        self.guarded(|| unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.add(src as usize),
                self.base.add(dst as usize),
                len as usize,
            )
        })?;
        self.observed(dst, len);
        Ok(())
    }

    /// Maps `[off, off+len)` (clamped to the file) into the page tables in one call, readable,
    /// where touching it page by page would take a fault per page (fault-around is off under
    /// `MADV_RANDOM`). Reads nothing into this process and writes nothing; on a kernel without
    /// `MADV_POPULATE_READ` (before 5.14) it does nothing.
    pub fn prefault(&self, off: u64, len: u64) {
        self.populate(off, len, libc::MADV_POPULATE_READ);
    }

    /// Takes the write faults of `[off, off+len)` (clamped to the file) now, in one call
    /// (`MADV_POPULATE_WRITE`), without changing a byte: the pages become writable and dirty, so
    /// that stores into them later (under the write lock) fault no more. Only for pages about
    /// to be written anyway: a dirtied page is written back by the next flush. Does nothing on a
    /// kernel without it (before 5.14).
    pub fn prefault_write(&self, off: u64, len: u64) {
        self.populate(off, len, libc::MADV_POPULATE_WRITE);
    }

    fn populate(&self, off: u64, len: u64, advice: libc::c_int) {
        let end = (off + len).min(self.len());
        let start = off - off % 4096;
        if end <= start || self.broken() {
            return;
        }
        // SAFETY: the range lies inside the mapping and below the file's length as last seen;
        // the kernel faults it in as a read or write would, without writing a byte, and reports
        // a failure (a file shrunk meanwhile: EFAULT) as an error rather than a signal, which
        // only loses the optimisation.
        unsafe {
            libc::madvise(
                self.base.add(start as usize) as *mut libc::c_void,
                (end - start) as usize,
                advice,
            )
        };
    }

    /// Compares two ranges of the file.
    pub fn equal(&self, a: u64, b: u64, len: u64) -> Result<bool> {
        self.check(a, len)?;
        self.check(b, len)?;
        self.guarded(|| {
            // SAFETY: both ranges in bounds (checked; a shrink since is caught by `guarded`);
            // only the write-lock holder calls this.
            let (x, y) = unsafe {
                (
                    std::slice::from_raw_parts(self.base.add(a as usize), len as usize),
                    std::slice::from_raw_parts(self.base.add(b as usize), len as usize),
                )
            };
            x == y
        })
    }

    /// Grows the file to `new_len` with real blocks (ENOSPC is an error here, not a later SIGBUS).
    pub fn grow(&self, _: &LockHeld, new_len: u64) -> Result<()> {
        if self.broken() {
            return Err(self.truncated_error());
        }
        if new_len > self.reserved {
            // The limit was raised past what this process reserved: not a full store, a handle
            // that must be reopened to use the new room.
            return Err(Error::Incompatible {
                path: self.path.clone(),
                detail: format!(
                    "growing to {new_len} bytes would pass the {} bytes of address space this \
                     process reserved when it opened the store (the maximum size was raised \
                     since); close and reopen it to use the new maximum size",
                    self.reserved
                ),
            });
        }
        files::allocate(&*self.io, self.kind, &self.path, &self.file, new_len)?;
        self.visible.fetch_max(new_len, Ordering::AcqRel);
        Ok(())
    }

    /// Real blocks for `[off, off+len)` inside the file (the heap growing back into a tail a
    /// compaction punched out, SPEC.md §7.4). ENOSPC is `Error::Full`.
    pub fn back(&self, _: &LockHeld, off: u64, len: u64) -> Result<()> {
        self.check(off, len)?;
        if let Err(e) = self.io.allocate_range(self.kind, &self.file, off, len) {
            if e.raw_os_error() == Some(libc::ENOSPC) {
                return Err(Error::Full {
                    path: self.path.clone(),
                    detail: format!("the disk has no room for {len} more bytes of the heap"),
                });
            }
            return Err(Error::io(&self.path, "fallocate", e));
        }
        Ok(())
    }

    /// Gives the disk blocks of `[off, off+len)` back; the file keeps its length and the range
    /// reads as zeros. Only for space past the heap's end that nothing references.
    pub fn punch(&self, _: &LockHeld, off: u64, len: u64) -> Result<()> {
        self.check(off, len)?;
        self.io
            .punch_hole(self.kind, &self.file, off, len)
            .map_err(|e| Error::io(&self.path, "fallocate(PUNCH_HOLE)", e))
    }

    /// Writes the dirty pages of `[off, off+len)` to disk and waits.
    /// It takes no [`LockHeld`]: a flush changes no byte, and the early data flush of a
    /// half-full journal cycle runs without the lock on purpose (see `maybe_preflush`).
    pub fn sync(&self, off: u64, len: u64) -> Result<()> {
        self.check(off, len)?;
        if self.broken() {
            // Part of the range is a private zero page now: it must not count as flushed.
            return Err(self.truncated_error());
        }
        // SAFETY: the range lies inside the mapping (checked above), which lives as long as
        // `self`, and the borrow of `self` outlives the range.
        let range = unsafe { MappedRange::new(self.base, off, len) };
        self.io
            .sync_map(self.kind, &range)
            .map_err(|e| Error::io(&self.path, "msync", e))
    }

    /// Writes the range's dirty pages back and waits for them, without a flush
    /// ([`StorageIo::write_back`](crate::StorageIo::write_back)).
    pub fn write_back(&self, off: u64, len: u64) -> Result<()> {
        self.check(off, len)?;
        if self.broken() {
            return Err(self.truncated_error());
        }
        self.io
            .write_back(self.kind, &self.file, off, len)
            .map_err(|e| Error::io(&self.path, "sync_file_range", e))
    }

    #[inline]
    fn observed(&self, off: u64, len: u64) {
        if self.report_writes {
            self.io.data_written(off, len);
        }
    }
}

/// The mapping inside one [`Map::with_view`] call: reads are bounds-checked as `Map`'s own, and the
/// slices it hands out cannot outlive the call, so none is used outside the SIGBUS guard.
pub struct View<'m> {
    map: &'m Map,
}

impl View<'_> {
    /// The aligned word at `off`, loaded atomically (an index slot, published with one store).
    #[inline]
    pub fn load_u64(&self, off: u64) -> Result<u64> {
        Ok(self.map.word(off)?.load(Ordering::Acquire))
    }

    /// The bytes `[off, off+len)` in place.
    #[inline]
    pub fn bytes(&self, off: u64, len: usize) -> Result<&[u8]> {
        self.map.check(off, len as u64)?;
        // SAFETY: `check` proved the range lies inside the mapping and the file as last seen; the
        // slice borrows the view, which lives only inside `Map::with_view`'s guard (a shrink
        // since is caught there, and the caller drops what it computed). The bytes change only
        // when a reorganisation reuses the block, which the caller's sequence check catches.
        Ok(unsafe { std::slice::from_raw_parts(self.map.base.add(off as usize), len) })
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // The handler must stop claiming the range before it can be reused by another mapping.
        self.region.unregister();
        // SAFETY: the range mapped in `new`; nothing borrows it any more.
        unsafe { unmap(self.base, self.reserved) };
    }
}

/// What an access reports once the file was found shorter than the mapping had seen it.
pub fn truncated_error(path: &std::path::Path) -> Error {
    Error::corrupt(path, CorruptKind::Truncated)
}

pub fn too_many_mappings(path: &std::path::Path) -> Error {
    Error::Io {
        path: path.into(),
        op: "mmap",
        source: std::io::Error::other(format!(
            "more than {} store mappings open in this process",
            crate::sigbus::SLOTS
        )),
    }
}

/// Maps `len` bytes of `file` shared (writable unless the file was opened read-only), at an
/// address the kernel chooses. Touching a
/// page past the end of the file would be SIGBUS: callers check offsets against the file length.
/// A file opened read-only (a read-only handle, SPEC.md §6.8) is mapped `PROT_READ`: nothing
/// can write through it.
pub fn map_shared(path: &std::path::Path, file: &File, len: u64) -> Result<*mut u8> {
    // SAFETY: F_GETFL on an open descriptor only reads its flags.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    let prot = if flags != -1 && flags & libc::O_ACCMODE == libc::O_RDONLY {
        libc::PROT_READ
    } else {
        libc::PROT_READ | libc::PROT_WRITE
    };
    // SAFETY: a new mapping of an open file descriptor; it aliases no Rust memory.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len as usize,
            prot,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(Error::io(path, "mmap", std::io::Error::last_os_error()));
    }
    Ok(base as *mut u8)
}

/// Removes a mapping made by `map_shared`.
///
/// # Safety
/// `base` and `len` are exactly those of one `map_shared` call, and no reference into the
/// mapping outlives this call.
pub unsafe fn unmap(base: *mut u8, len: u64) {
    // SAFETY: guaranteed by the caller (see above).
    unsafe { libc::munmap(base as *mut libc::c_void, len as usize) };
}
