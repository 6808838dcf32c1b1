//! The write transaction: what a handle may do while it holds the cross-process write lock.
//!
//! [`Inner`] is the handle's read view: it looks entries up and scans under the readers'
//! sequence number, and it has no way to change the data file or the lock file's allocator.
//! [`Inner::lock`] takes the write lock and returns a [`WriteTxn`], which alone can hand out the
//! [`LockHeld`] proof that the map's writing methods, the journal's append and the lock file's
//! free lists ask for. So a write without the lock does not compile. Dropping the transaction
//! releases the lock.

use crate::error::{Error, Result};
use crate::lock_file::Locked;
use crate::store::Inner;
use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering::*;

/// Proof that the cross-process write lock is held: the argument every method that changes the
/// data file, the journal or the allocator's shared state takes. Zero-sized; only a
/// [`WriteTxn`] makes one, and lends it out no longer than it lives.
pub(crate) struct LockHeld(());

#[cfg(test)]
impl LockHeld {
    /// For unit tests of the map and the index, which write a file no other handle uses.
    pub(crate) fn for_tests() -> LockHeld {
        LockHeld(())
    }
}

thread_local! {
    /// Stores whose write lock this thread holds (to refuse re-entry instead of deadlocking).
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Holding the cross-process write lock: the stages that change the store (alloc, apply,
/// checkpoint, index rebuild, recovery) are its methods. It reads everything else through the
/// handle ([`Inner`], by `Deref`). Dropping it unlocks.
pub(crate) struct WriteTxn<'a> {
    inner: &'a Inner,
    held: LockHeld,
    /// The process that took the lock. A child forked while the lock is held inherits this
    /// transaction (e.g. from inside an `update` callback) but not the lock: it must neither
    /// commit through it nor unlock it.
    pid: u32,
    /// Taken while an unrelated panic was already unwinding (in a destructor): only a panic
    /// that starts while the lock is held can leave a change half made.
    unwinding_at_lock: bool,
    /// Nesting depth of `exclude_readers`.
    pub(crate) exclude_readers_depth: Cell<u32>,
    /// The disk refused to grow the data file (ENOSPC) while this transaction looked for room.
    pub(crate) growth_refused: Cell<bool>,
}

impl std::ops::Deref for WriteTxn<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        self.inner
    }
}

impl WriteTxn<'_> {
    /// The proof that the write lock is held, for the map's, the journal's and the lock file's
    /// writing methods.
    #[inline]
    pub(crate) fn held(&self) -> &LockHeld {
        &self.held
    }

    /// Refuses to write unless this process is the one that took the lock.
    pub(crate) fn check_owner(&self) -> Result<()> {
        if self.pid != std::process::id() {
            return Err(Error::ForkedLockHolder);
        }
        Ok(())
    }
}

impl Drop for WriteTxn<'_> {
    fn drop(&mut self) {
        if self.pid == std::process::id() {
            let h = self.inner.lock_file.state();
            if std::thread::panicking() && !self.unwinding_at_lock {
                // A panic unwound through a change: the live state may be half made, and unlike a
                // dead holder this one releases the mutex normally, so EOWNERDEAD will not tell the
                // next holder. Say it explicitly.
                h.needs_recovery.store(1, SeqCst);
            }
            h.write_mutex.unlock();
        }
        let me = self.inner as *const Inner as usize;
        HELD.with(|h| h.borrow_mut().retain(|&x| x != me));
    }
}

impl Inner {
    /// Takes the write lock; if its previous holder died, repairs the shared state first.
    pub(crate) fn lock(&self) -> Result<WriteTxn<'_>> {
        let me = self as *const Inner as usize;
        if HELD.with(|h| h.borrow().contains(&me)) {
            return Err(Error::Reentrant);
        }
        self.check_mappings()?;
        let state = self.lock_file.state().write_mutex.lock(&self.path)?;
        HELD.with(|h| h.borrow_mut().push(me));
        let txn = WriteTxn {
            inner: self,
            held: LockHeld(()),
            pid: std::process::id(),
            unwinding_at_lock: std::thread::panicking(),
            exclude_readers_depth: Cell::new(0),
            growth_refused: Cell::new(false),
        };
        // A file shrunk under us while we waited: nothing in the shared state can be trusted.
        self.check_mappings()?;
        let h = self.lock_file.state();
        if let Locked::OwnerDied = state {
            // The dead holder may have stopped anywhere. Note that the live state must be rebuilt
            // before marking the mutex usable again, so that if this recovery fails too (or this
            // process dies in it), the next holder runs it instead.
            h.needs_recovery.store(1, SeqCst);
            h.write_mutex.consistent();
        }
        if h.needs_recovery.load(SeqCst) != 0 {
            txn.recover()?;
            h.needs_recovery.store(0, SeqCst);
        }
        // Another process may have grown the file: see the new length before using it.
        if h.file_size.load(Acquire) > self.map.len() {
            self.map.refresh_len()?;
        }
        Ok(txn)
    }
}
