//! The journal flusher of `Durability::Periodic`: a thread that flushes the journal every
//! interval while records wait, so that records written just before a writer falls silent still
//! reach the disk within the interval (a writer flushes by itself only when it finds the last
//! flush older than that). Like the checkpoint thread, it belongs to the process that started
//! it: a forked child has no such thread, so the child's next write starts its own.

use crate::store::Inner;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::*};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

pub(crate) struct Periodic {
    /// The interval; `None` when the handle is not in `Periodic` mode (nothing to run).
    every: Option<Duration>,
    /// The handle's read view, for the thread (set once the handle is in its `Arc`).
    inner: OnceLock<Weak<Inner>>,
    /// The process whose thread this is (0: none yet): the write path's check is one load.
    pid: AtomicU32,
    /// Set for good by `stop`.
    stopped: AtomicBool,
    run: Mutex<Option<Run>>,
}

struct Run {
    pid: u32,
    thread: JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

impl Periodic {
    pub(crate) fn new(every: Option<Duration>) -> Periodic {
        Periodic {
            every,
            inner: OnceLock::new(),
            pid: AtomicU32::new(0),
            stopped: AtomicBool::new(false),
            run: Mutex::new(None),
        }
    }

    /// Starts this process's thread when it has none (at open, then at each `Periodic` write).
    pub(crate) fn start(&self, inner: Weak<Inner>) {
        let _ = self.inner.set(inner);
        self.ensure();
    }

    /// At each write in `Periodic` mode: nothing but one load, unless this process (a forked
    /// child) has no thread yet.
    #[inline]
    pub(crate) fn ensure(&self) {
        if self.every.is_some() && self.pid.load(Relaxed) != crate::pid::current() {
            self.spawn();
        }
    }

    #[cold]
    fn spawn(&self) {
        let (Some(every), Some(weak)) = (self.every, self.inner.get().cloned()) else {
            return;
        };
        let mut run = self.run.lock().unwrap_or_else(|p| p.into_inner());
        let me = crate::pid::current();
        if self.stopped.load(Relaxed) || self.pid.load(Relaxed) == me {
            return;
        }
        if let Some(parents) = run.take() {
            // Started by the process this one was forked from: it does not run here, and
            // joining it would wait forever.
            std::mem::forget(parents.thread);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("apcdb-flush".into())
            .spawn(move || flush_every(weak, stop2, every));
        if let Ok(thread) = spawned {
            *run = Some(Run {
                pid: me,
                thread,
                stop,
            });
        }
        // Even when the thread could not be made: writes still flush once the interval has
        // passed, and trying again at every write would cost each of them a failed spawn.
        self.pid.store(me, Relaxed);
    }

    /// Stops this process's thread and starts none again.
    pub(crate) fn stop(&self) {
        let mut run = self.run.lock().unwrap_or_else(|p| p.into_inner());
        self.stopped.store(true, Relaxed);
        if let Some(r) = run.take() {
            if r.pid == crate::pid::current() {
                r.stop.store(true, Release);
                r.thread.thread().unpark();
                let _ = r.thread.join();
            } else {
                std::mem::forget(r.thread);
            }
        }
    }
}

/// Flushes the journal every `every` while there are unflushed records.
fn flush_every(inner: Weak<Inner>, stop: Arc<AtomicBool>, every: Duration) {
    while !stop.load(Acquire) {
        std::thread::park_timeout(every);
        let Some(inner) = inner.upgrade() else { return };
        let _ = inner.sync();
    }
}
