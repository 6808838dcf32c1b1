//! This process's id, cached. glibc no longer caches `getpid`, and the write path asks for it
//! three times per write (taking the lock, checking the holder before committing, unlocking), so
//! the system call was a large part of a small non-durable put. The cache is cleared in every
//! child by a `pthread_atfork` handler, so a forked child (which inherits a write transaction
//! but not the lock it stands for) sees its own id at the next call and is refused as before.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::Once;

/// 0 = not known in this process (never asked, or forked since).
static CACHED: AtomicU32 = AtomicU32::new(0);
static REGISTER: Once = Once::new();
static REGISTERED: AtomicBool = AtomicBool::new(false);

extern "C" fn forget_in_child() {
    CACHED.store(0, Relaxed);
}

/// The calling process's id, as `std::process::id()` returns it.
#[inline]
pub(crate) fn current() -> u32 {
    match CACHED.load(Relaxed) {
        0 => slow(),
        pid => pid,
    }
}

#[cold]
fn slow() -> u32 {
    // The handler is registered before the first id is cached: a fork after that point clears
    // the child's copy, and a fork before it leaves the child's copy at 0 anyway.
    REGISTER.call_once(|| {
        // SAFETY: the handler is a plain function that only stores to an atomic, which is
        // async-signal-safe as the child side of fork requires. In a shared library glibc
        // unregisters it when the library is unloaded, so it never outlives its code.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(forget_in_child)) };
        REGISTERED.store(rc == 0, Relaxed);
    });
    let pid = std::process::id();
    // Without the handler a child could not tell the cache is its parent's: never cache then.
    if REGISTERED.load(Relaxed) {
        CACHED.store(pid, Relaxed);
    }
    pid
}

#[cfg(test)]
mod tests {
    /// A child forked after the id was cached sees its own id, not its parent's.
    #[test]
    fn a_forked_child_sees_its_own_id() {
        let parent = super::current();
        assert_eq!(parent, std::process::id());
        // SAFETY: fork has no preconditions; the child only compares two numbers and leaves
        // with _exit, running nothing of the test harness.
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork failed");
        if child == 0 {
            let ok = super::current() == std::process::id() && super::current() != parent;
            // SAFETY: leaves the forked child at once.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked; status is a valid out-pointer.
        unsafe { libc::waitpid(child, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        assert_eq!(super::current(), parent);
    }
}
