//! In-place conversion of a store written by format version 1 or 2 (SPEC.md §2.1), at its first
//! read-write open. Only the first opener runs it, while it holds both election bytes exclusively
//! (what `Exclusive` holds): no other process has the files open.
//!
//! A cleanly closed older store is its durable checkpoint alone (its journal cycle is empty), so
//! converting it needs no replay: a third index block at the heap's end (the live copy, filled by
//! the recovery that follows from the durable copy) and a version-3 superblock naming it, one
//! epoch newer. The superblock is the commit point; every step before it leaves the older store
//! as it was (a longer file is allowed), so an open killed anywhere converts again, and after it
//! the older copy is blanked so no build, older or newer, ever goes back to it.

use crate::error::{Error, Result};
use crate::files::{self, Paths};
use crate::format::{
    decode_older_superblock, index_block_len, older_cycle_starts, Superblock, HEAP_START,
    MAX_INDEX_SLOTS, MIN_INDEX_SLOTS, PAGE, SUPERBLOCK_LEN, SUPERBLOCK_OFFSETS,
};
use crate::io::{write_all_at, FileKind::Data, SyncKind};
use crate::options::Options;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// The newest copy of a convertible older version, if neither copy is a valid current one
/// (`read_superblock` failed with no valid copy): which slot it is in, its version, its fields.
fn newest_older(paths: &Paths, data: &File) -> Result<Option<(usize, u32, Superblock)>> {
    let mut newest: Option<(usize, u32, Superblock)> = None;
    for (slot, &at) in SUPERBLOCK_OFFSETS.iter().enumerate() {
        let mut b = [0u8; SUPERBLOCK_LEN];
        data.read_exact_at(&mut b, at)
            .map_err(|e| Error::io(&paths.data, "read", e))?;
        if let Some((version, sb)) = decode_older_superblock(&b) {
            if newest.as_ref().is_none_or(|n| sb.epoch > n.2.epoch) {
                newest = Some((slot, version, sb));
            }
        }
    }
    Ok(newest)
}

/// Converts the older store at `paths` when there is one: `Ok(None)` when its superblocks are
/// not of a convertible version (the caller reports its own error), the new superblock when it
/// was converted. A store that was not closed cleanly is refused with `Error::Incompatible`, and
/// nothing is changed.
pub(crate) fn convert(paths: &Paths, data: &File, opts: &Options) -> Result<Option<Superblock>> {
    let Some((slot, version, old)) = newest_older(paths, data)? else {
        return Ok(None);
    };
    let incompatible = |detail: String| Error::Incompatible {
        path: paths.data.clone(),
        detail: format!("format version {version}, written by an older apcdb: {detail}"),
    };
    let len = files::file_len(&paths.data, data)?;
    // The fields the new superblock keeps are checked as the current format checks them, on a
    // probe with the live copy where it will go.
    if !old.index_slots.is_power_of_two()
        || !(MIN_INDEX_SLOTS..=MAX_INDEX_SLOTS).contains(&old.index_slots)
    {
        let problem = crate::format::SuperblockError::IndexSlots(old.index_slots);
        return Err(incompatible(format!(
            "its superblock epoch {}: {problem}",
            old.epoch
        )));
    }
    let copy_len = index_block_len(old.index_slots);
    let heap_end = old.heap_end.saturating_add(copy_len);
    let needed = heap_end.next_multiple_of(PAGE);
    let max_size = if opts.max_size_given {
        old.max_size.max(opts.max_size)
    } else {
        old.max_size
    };
    let new = Superblock {
        epoch: old.epoch.saturating_add(1),
        file_size: old.file_size.max(needed),
        max_size,
        heap_end,
        live: old.heap_end,
        ..old
    };
    if slot != (old.epoch % 2) as usize {
        return Err(incompatible(format!(
            "its superblock epoch {} is in copy {slot}, where no checkpoint writes it",
            old.epoch
        )));
    }
    if old.file_size > len || old.heap_end > old.file_size || old.heap_end < HEAP_START {
        return Err(incompatible(format!(
            "its superblock (epoch {}) records a file of {} bytes and a heap end of {}, but the \
             file is {len} bytes",
            old.epoch, old.file_size, old.heap_end
        )));
    }
    if new.file_size > max_size {
        return Err(Error::Full {
            path: paths.data.clone(),
            detail: format!(
                "converting format version {version} needs {copy_len} more bytes for a third \
                 index copy, past the maximum size of {max_size} bytes: open it with a larger \
                 maximum size (Options::max_size, apcdb.size)"
            ),
        });
    }
    new.check(len.max(new.file_size)).map_err(|problem| {
        incompatible(format!("its superblock epoch {}: {problem}", old.epoch))
    })?;
    ensure_cleanly_closed(paths, &old).map_err(|e| match e {
        Unclean::Io(e) => e,
        Unclean::Records => incompatible(format!(
            "it was not closed cleanly (its journal holds writes after its last checkpoint, from \
             LSN {}); open and close it once with the build that wrote it, then open it with \
             this one, which converts it",
            old.ckpt_lsn + 1
        )),
    })?;

    let io = &*opts.io;
    if new.file_size > len {
        // The new length is durable before a superblock refers to it (hazard 4).
        files::allocate(io, Data, &paths.data, data, new.file_size)?;
        io.sync_file(Data, data, SyncKind::All)
            .map_err(|e| Error::io(&paths.data, "fsync", e))?;
    }
    // The commit point: epoch + 1 goes to its own slot, the other one, so the older copy is
    // intact until this copy is durable.
    let new_slot = (new.epoch % 2) as usize;
    write_all_at(io, Data, data, SUPERBLOCK_OFFSETS[new_slot], &new.encode())
        .map_err(|e| Error::io(&paths.data, "write", e))?;
    io.sync_file(Data, data, SyncKind::Data)
        .map_err(|e| Error::io(&paths.data, "fdatasync", e))?;
    // The older copy no longer describes the store once anything is written; an older build
    // would otherwise open it (it refuses the version-3 copy and takes the other).
    write_all_at(
        io,
        Data,
        data,
        SUPERBLOCK_OFFSETS[slot],
        &[0u8; SUPERBLOCK_LEN],
    )
    .map_err(|e| Error::io(&paths.data, "write", e))?;
    io.sync_file(Data, data, SyncKind::Data)
        .map_err(|e| Error::io(&paths.data, "fdatasync", e))?;
    Ok(Some(new))
}

enum Unclean {
    Io(Error),
    Records,
}

/// A cleanly closed older store's journal cycle is empty: the older build's recovery would
/// replay nothing. A missing or empty journal holds nothing either (the open recreates it, as
/// for any store); one of another size is refused as corrupt, as the open would.
fn ensure_cleanly_closed(paths: &Paths, sb: &Superblock) -> std::result::Result<(), Unclean> {
    let journal = match files::open_read_only(&paths.journal) {
        Ok(f) => f,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(())
        }
        Err(e) => return Err(Unclean::Io(e)),
    };
    let len = files::file_len(&paths.journal, &journal).map_err(Unclean::Io)?;
    if len != sb.journal_size {
        if len == 0 {
            return Ok(());
        }
        let kind = crate::error::CorruptKind::JournalSize {
            len,
            expected: sb.journal_size,
        };
        return Err(Unclean::Io(Error::corrupt(&paths.journal, kind)));
    }
    let read = |at, b: &mut [u8]| journal.read_exact_at(b, at);
    match older_cycle_starts(read, len, sb.epoch, sb.ckpt_lsn + 1) {
        Ok(false) => Ok(()),
        Ok(true) => Err(Unclean::Records),
        Err(e) => Err(Unclean::Io(Error::io(&paths.journal, "read", e))),
    }
}
