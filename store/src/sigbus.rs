//! Turning a SIGBUS in one of our mappings into an error (SPEC.md §6.5).
//!
//! Touching a page of a `MAP_SHARED` mapping that lies past the end of its file raises SIGBUS,
//! and the file can shrink under us (`truncate`, `cp backup.db live.db`) without any process of
//! ours doing it. A process-wide handler, installed once, looks the fault address up in a fixed
//! table of our registered mappings. When it is one of ours, it maps a private zero page over the
//! faulting page so the interrupted instruction can complete, and counts the fault in that
//! mapping's slot; the code that made the access sees the count change and returns an error
//! instead of trusting what it read. Any other SIGBUS goes to the handler that was installed
//! before ours (Rust's stack-overflow handler, a PHP extension's), or kills as it always did.
//!
//! Everything the handler touches is a static atomic, and the only calls it makes are `mmap` and
//! `sigaction` (plain system calls): it is async-signal-safe.

use std::cell::UnsafeCell;
use std::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Once;

/// Mappings that can be registered at once in one process (each open store uses two or three).
pub const SLOTS: usize = 512;

struct Slot {
    /// Claimed by a live `Region` (claiming is a compare-exchange, so two threads never share one).
    used: AtomicBool,
    base: AtomicUsize,
    /// 0 while the slot describes no mapping; published last (Release), cleared first.
    len: AtomicUsize,
    /// Faults the handler repaired in this mapping (or a shrink seen by other means). Never reset
    /// while the slot is claimed: a mapping that faulted once stays unusable.
    faults: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    used: AtomicBool::new(false),
    base: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    faults: AtomicU64::new(0),
};
static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];

static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);

/// The disposition that was in place before ours, written once before our handler is installed
/// and only read afterwards.
struct Previous(UnsafeCell<Option<libc::sigaction>>);
// SAFETY: written exactly once inside `INSTALL.call_once`, before `sigaction` makes our handler
// reachable (the system call orders the write before any delivery); read-only afterwards.
unsafe impl Sync for Previous {}
static PREVIOUS: Previous = Previous(UnsafeCell::new(None));
static INSTALL: Once = Once::new();

fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            PAGE_SIZE.store(page as usize, Ordering::Relaxed);
        }
        // SAFETY: `new` is fully initialised before use; `old` is written by the kernel. PREVIOUS
        // is written before the second sigaction call makes `on_sigbus` reachable.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
                return;
            }
            *PREVIOUS.0.get() = Some(old);
            let mut new: libc::sigaction = std::mem::zeroed();
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                on_sigbus;
            new.sa_sigaction = handler as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut new.sa_mask);
            libc::sigaction(libc::SIGBUS, &new, std::ptr::null_mut());
        }
    });
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for a handler installed with SA_SIGINFO; si_addr
    // is meaningful only for a fault the kernel raised (si_code BUS_ADRERR: an access past the
    // end of a mapped file), not for a SIGBUS sent with kill(), which must keep its effect.
    let addr = unsafe {
        if (*info).si_code == libc::BUS_ADRERR {
            (*info).si_addr() as usize
        } else {
            0
        }
    };
    for slot in &TABLE {
        if addr == 0 {
            break;
        }
        let len = slot.len.load(Ordering::Acquire);
        if len == 0 {
            continue;
        }
        let base = slot.base.load(Ordering::Relaxed);
        if addr < base || addr - base >= len {
            continue;
        }
        // Counted before the page is replaced: another thread that reads the zero page after
        // the replacement must also see the count (see `access`).
        slot.faults.fetch_add(1, Ordering::SeqCst);
        let page = addr & !(PAGE_SIZE.load(Ordering::Relaxed) - 1);
        // SAFETY: the page lies inside a mapping this process made and still owns (the slot is
        // registered only while the mapping exists); replacing it with a private zero page
        // changes only what that mapping shows, and the code using it checks `faults` before it
        // trusts anything it read. mmap is a plain system call, safe in a signal handler.
        let r = unsafe {
            libc::mmap(
                page as *mut libc::c_void,
                PAGE_SIZE.load(Ordering::Relaxed),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if r != libc::MAP_FAILED {
            return;
        }
        break;
    }
    // Not ours (or the repair failed): behave as if we were not here.
    // SAFETY: PREVIOUS was written before this handler became reachable and is never written
    // again; calling the previous handler with the arguments we got is what the kernel would
    // have done; restoring SIG_DFL and returning makes the fault repeat and kill the process, as
    // it would have without us.
    unsafe {
        if let Some(prev) = &*PREVIOUS.0.get() {
            let h = prev.sa_sigaction;
            if h != libc::SIG_DFL && h != libc::SIG_IGN {
                if prev.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        std::mem::transmute(h);
                    f(sig, info, ctx);
                } else {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(h);
                    f(sig);
                }
                return;
            }
            if h == libc::SIG_IGN && (*info).si_code <= 0 {
                return; // a sent SIGBUS that was ignored before us stays ignored
            }
        }
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
        if (*info).si_code <= 0 {
            // Sent, not a fault: nothing repeats on return, so deliver it again (pending until
            // this handler returns), now with the default action.
            libc::raise(sig);
        }
    }
}

/// A registered mapping. Accesses to it go through [`Region::access`], which reports a fault
/// repaired by the handler as `false`.
pub struct Region {
    slot: Option<&'static Slot>,
}

impl Region {
    /// Registers `[base, base+len)`. Returns None when the table is full.
    pub fn register(base: *mut u8, len: usize) -> Option<Region> {
        install();
        for slot in &TABLE {
            if slot
                .used
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                slot.faults.store(0, Ordering::Relaxed);
                slot.base.store(base as usize, Ordering::Relaxed);
                slot.len.store(len, Ordering::Release);
                return Some(Region { slot: Some(slot) });
            }
        }
        None
    }

    /// True once an access to the mapping faulted (or `mark_broken` was called).
    #[inline]
    pub fn broken(&self) -> bool {
        self.slot
            .is_some_and(|s| s.faults.load(Ordering::Relaxed) != 0)
    }

    /// Records that the mapping can no longer be trusted (e.g. the file was seen to shrink).
    pub fn mark_broken(&self) {
        if let Some(s) = self.slot {
            s.faults.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs `f`, which touches the mapping; returns None if the mapping is (or became) broken,
    /// in which case whatever `f` read must not be used.
    #[inline]
    pub fn access<T>(&self, f: impl FnOnce() -> T) -> Option<T> {
        if self.broken() {
            return None;
        }
        // The handler runs on this thread in the middle of `f`: keep the compiler from moving
        // the first load of `faults` past the accesses (no instruction is emitted).
        compiler_fence(Ordering::SeqCst);
        let r = f();
        // Another thread's handler may have replaced a page `f` read: the acquire fence keeps
        // the loads of `f` before the load of `faults`, which was raised before the replacement
        // (free on x86).
        fence(Ordering::Acquire);
        if self.broken() {
            return None;
        }
        Some(r)
    }

    /// Stops the handler from treating the range as ours. Called before the range is unmapped.
    pub fn unregister(&mut self) {
        if let Some(s) = self.slot.take() {
            s.len.store(0, Ordering::Release);
            s.base.store(0, Ordering::Relaxed);
            s.used.store(false, Ordering::Release);
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        self.unregister();
    }
}
