//! Changing the store's maximum size while it is open (SPEC.md §9).
//!
//! The limit lives in two places: the lock file (`LockState::max_size`, what growth checks,
//! seen at once by every process) and the superblock (durable). A resize holds the write lock,
//! sets the live value and runs a checkpoint, which records it in a new superblock; only then is
//! the lock released. Nobody grows the file without that lock, so no byte past the old limit is
//! written before the new one is durable, and a crash leaves the old superblock (old limit) or
//! the new one (new limit), never a mix: superblocks are written whole into alternating slots.

use crate::error::{Error, Result};
use crate::format::MAX_STORE_SIZE;
use crate::store::Inner;
use crate::write::WriteTxn;
use std::sync::atomic::Ordering::*;

impl Inner {
    /// The live maximum size of the data file.
    pub(crate) fn max_size(&self) -> u64 {
        self.lock_file.state().max_size.load(Acquire)
    }
}

impl WriteTxn<'_> {
    /// Raises or lowers the limit; see `Store::set_max_size` for the rules.
    pub(crate) fn set_max_size(&self, new: u64) -> Result<()> {
        self.check_poison()?;
        let refuse = |detail: String| Error::Incompatible {
            path: self.map.path.clone(),
            detail,
        };
        if new > MAX_STORE_SIZE {
            return Err(refuse(format!(
                "maximum size {new} bytes exceeds the format's limit of {MAX_STORE_SIZE} bytes \
                 (4 TiB); nothing was changed"
            )));
        }
        // The file never shrinks, and a superblock may not name a file longer than its limit:
        // the file's length is the floor (it can exceed the data by one growth step).
        let used = self.map.whole_len()?;
        if new < used {
            return Err(refuse(format!(
                "cannot lower the maximum size to {new} bytes: the data file already uses {used} \
                 bytes (files never shrink); nothing was changed"
            )));
        }
        if new > self.map.reserved() {
            return Err(refuse(format!(
                "cannot raise the maximum size to {new} bytes from this process: it reserved \
                 only {} bytes of address space when it opened the store; reopen it with the \
                 new maximum size in its options instead; nothing was changed",
                self.map.reserved()
            )));
        }
        let h = self.lock_file.state();
        let old = h.max_size.load(Acquire);
        if new == old {
            return Ok(());
        }
        h.max_size.store(new, Release);
        self.checkpoint().inspect_err(|_| {
            // The new superblock may or may not have reached the disk: keep the smaller of the
            // two live, which every superblock that might be durable allows.
            h.max_size.store(old.min(new), Release);
        })
    }
}
