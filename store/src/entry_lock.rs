//! Per-key generator locks: "compute once" callers (PHP's `apc_entry`) of the same key wait for
//! each other while everything else, including writes, goes on (SPEC.md §6.6).
//!
//! A key stands for one byte of the lock file in a range far past its mapped length
//! ([`ENTRY_LOCK_BASE`] + a bucket of the key's hash). Holding the key means holding an
//! open-file-description write lock on that byte, which the kernel drops when the process dies
//! however it dies, so a killed generator never leaves its waiters stuck. Two keys that share a
//! bucket only make each other wait.
//!
//! OFD locks belong to an open file description, not to a process, and forked processes (PHP-FPM
//! workers) share the descriptions their parent opened: each process therefore opens the lock file
//! again for itself on first use. Where it cannot (a worker that changed its user after the fork
//! may not open a file its master made), it takes classic POSIX record locks on the shared
//! descriptor instead: those belong to the process (so forked siblings exclude each other), are
//! not inherited by fork and are also dropped at death; they conflict with OFD locks, so both
//! kinds of process exclude each other. Threads of one process share either kind, so the buckets
//! this process holds are also tracked here, and a second thread waits on a condition variable
//! instead of the kernel.
//!
//! A caller that already holds a bucket never waits for another one (it could wait for a process
//! that waits for it): the nested call then runs without the lock.

use crate::error::{Error, Result};
use crate::format::hash_key;
use crate::lock_file::range_lock;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;

/// First byte of the range; far beyond anything the lock file maps or the election uses.
pub const ENTRY_LOCK_BASE: i64 = 1 << 40;
/// Buckets in the range (the byte of a key is `BASE + (hash >> 48)`).
pub const ENTRY_LOCK_BUCKETS: u64 = 1 << 16;

pub(crate) struct EntryLocks {
    /// The lock file, as this handle's opener has it: reopened per process through
    /// `/proc/self/fd` (works for the unlinked files of an anonymous store too), else by path.
    lock_fd: std::os::fd::RawFd,
    lock_path: PathBuf,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Default)]
struct State {
    /// The process `file` and `buckets` describe; another value means we were forked since.
    pid: u32,
    /// How this process locks (decided on first use).
    how: Option<How>,
    buckets: HashMap<u64, Bucket>,
}

#[derive(Clone)]
enum How {
    /// OFD locks on this process's own description of the lock file.
    Own(Arc<File>),
    /// POSIX record locks on the handle's descriptor (shared with forked relatives).
    Posix,
}

struct Bucket {
    owner: ThreadId,
    /// The keys whose generators hold the bucket (a nested call for another key of the same
    /// bucket shares it instead of waiting for itself).
    keys: Vec<Vec<u8>>,
    /// Locked through this process's description (false: inherited from the parent by a fork;
    /// unlocking it here would release the parent's lock, so it is only forgotten).
    ours: bool,
    /// The kernel lock is still being waited for.
    waiting: bool,
}

/// Holds a key's generator lock; dropping it releases the lock (or the key's share of its bucket).
pub struct EntryGuard<'a> {
    locks: &'a EntryLocks,
    bucket: u64,
    key: Vec<u8>,
}

impl std::fmt::Debug for EntryGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryGuard")
            .field("bucket", &self.bucket)
            .field("key", &String::from_utf8_lossy(&self.key))
            .finish()
    }
}

impl Drop for EntryGuard<'_> {
    fn drop(&mut self) {
        self.locks.release(self.bucket, &self.key);
    }
}

fn bucket_of(key: &[u8]) -> u64 {
    hash_key(key) >> 48
}

impl EntryLocks {
    pub(crate) fn new(lock_fd: std::os::fd::RawFd, lock_path: &Path) -> EntryLocks {
        EntryLocks {
            lock_fd,
            lock_path: lock_path.to_path_buf(),
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements; a panic elsewhere does not break it.
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let pid = crate::pid::current();
        if st.pid != pid {
            // Forked (or first use): the parent's buckets are the parent's. Those it held while
            // this thread forked stay known, so that a generator's nested call still sees them.
            st.pid = pid;
            st.how = None;
            let me = std::thread::current().id();
            st.buckets.retain(|_, b| !b.waiting);
            for b in st.buckets.values_mut() {
                b.ours = false;
                b.owner = me;
            }
        }
        st
    }

    fn how(&self, st: &mut State) -> How {
        if let Some(h) = &st.how {
            return h.clone();
        }
        let rw = |p: &Path| File::options().read(true).write(true).open(p);
        let h = match rw(Path::new(&format!("/proc/self/fd/{}", self.lock_fd)))
            .or_else(|_| rw(&self.lock_path))
        {
            Ok(f) => How::Own(Arc::new(f)),
            Err(_) => How::Posix,
        };
        st.how = Some(h.clone());
        h
    }

    /// Takes (`Some(wait)`) or releases (`None`) the byte of `bucket`. Ok(false): busy.
    fn set(&self, how: &How, bucket: u64, take: Option<bool>) -> Result<bool> {
        let byte = ENTRY_LOCK_BASE + bucket as i64;
        match how {
            How::Own(f) => range_lock(
                f,
                &self.lock_path,
                byte,
                take.map(|_| true),
                take.unwrap_or(false),
            ),
            How::Posix => posix_lock(self.lock_fd, &self.lock_path, byte, take),
        }
    }

    /// Waits for `key`'s generator lock. `None`: not taken, because this thread holds it already
    /// (a nested call) or holds another bucket and this one is busy (waiting could deadlock).
    pub(crate) fn lock(&self, key: &[u8]) -> Result<Option<EntryGuard<'_>>> {
        let bucket = bucket_of(key);
        let me = std::thread::current().id();
        let mut st = self.state();
        loop {
            let holds_any = st.buckets.values().any(|b| b.owner == me);
            match st.buckets.get_mut(&bucket) {
                None => break,
                Some(b) if b.owner == me => {
                    if b.keys.iter().any(|k| k == key) {
                        return Ok(None);
                    }
                    b.keys.push(key.to_vec());
                    return Ok(Some(self.guard(bucket, key)));
                }
                // Another thread holds it: wait, unless this one holds a bucket itself (the
                // same rule as for other processes, below).
                Some(_) if holds_any => return Ok(None),
                Some(_) => st = self.freed.wait(st).unwrap_or_else(|p| p.into_inner()),
            }
        }
        let nested = st.buckets.values().any(|b| b.owner == me);
        let how = self.how(&mut st);
        st.buckets.insert(
            bucket,
            Bucket {
                owner: me,
                keys: vec![key.to_vec()],
                ours: true,
                waiting: true,
            },
        );
        drop(st);
        // Without the mutex: other keys' callers in this process go on meanwhile.
        let r = self.set(&how, bucket, Some(!nested));
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match r {
            Ok(true) => {
                if let Some(b) = st.buckets.get_mut(&bucket) {
                    b.waiting = false;
                }
                Ok(Some(self.guard(bucket, key)))
            }
            other => {
                st.buckets.remove(&bucket);
                self.freed.notify_all();
                other.map(|_| None)
            }
        }
    }

    fn guard(&self, bucket: u64, key: &[u8]) -> EntryGuard<'_> {
        EntryGuard {
            locks: self,
            bucket,
            key: key.to_vec(),
        }
    }

    fn release(&self, bucket: u64, key: &[u8]) {
        let mut st = self.state();
        let Some(b) = st.buckets.get_mut(&bucket) else {
            return;
        };
        let Some(i) = b.keys.iter().position(|k| k == key) else {
            return;
        };
        b.keys.swap_remove(i);
        if !b.keys.is_empty() {
            return;
        }
        let ours = b.ours;
        st.buckets.remove(&bucket);
        if ours {
            if let Some(how) = st.how.clone() {
                // Unlocking cannot fail on a valid descriptor; if it did, closing the handle or
                // the process exiting releases the byte anyway.
                let _ = self.set(&how, bucket, None);
            }
        }
        self.freed.notify_all();
    }

    /// Releases every generator lock this process holds (PHP's request shutdown, after a bailout
    /// skipped the frames that owned the guards). Guards still alive become no-ops.
    pub(crate) fn release_all(&self) {
        let mut st = self.state();
        let held: Vec<(u64, bool)> = st.buckets.iter().map(|(k, b)| (*k, b.ours)).collect();
        // A thread still waiting in the kernel keeps its bucket: it will own it.
        st.buckets.retain(|_, b| b.waiting);
        if let Some(how) = st.how.clone() {
            for (bucket, ours) in held {
                if ours && !st.buckets.contains_key(&bucket) {
                    let _ = self.set(&how, bucket, None);
                }
            }
        }
        self.freed.notify_all();
    }
}

/// A classic (process-owned) record lock on one byte: `Some(wait)` takes it exclusively, `None`
/// releases it. Ok(false): another process holds it and `wait` was false.
fn posix_lock(fd: std::os::fd::RawFd, path: &Path, byte: i64, take: Option<bool>) -> Result<bool> {
    // SAFETY: flock is plain data; zeroed is a valid starting value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = if take.is_some() {
        libc::F_WRLCK
    } else {
        libc::F_UNLCK
    } as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = byte;
    fl.l_len = 1;
    let cmd = if take == Some(true) {
        libc::F_SETLKW
    } else {
        libc::F_SETLK
    };
    loop {
        // SAFETY: `fd` is the lock file's descriptor, open as long as the handle that owns these
        // locks; `fl` is initialised above.
        let rc = unsafe { libc::fcntl(fd, cmd, &fl) };
        if rc == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::EACCES) if take == Some(false) => return Ok(false),
            _ => return Err(Error::io(path, "fcntl(F_SETLK)", e)),
        }
    }
}
