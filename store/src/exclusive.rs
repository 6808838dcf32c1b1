//! Exclusive use of a store by one handle-less process, for operations that replace its files
//! (`apcdb recover --replace`): it succeeds only while no process has the store open, and keeps
//! new openers out (they wait) for as long as it lives.
//!
//! It takes the two election bytes the way the last closer does (SPEC.md §6.1), on the lock file
//! and then on the data file: the init byte, which every open and close holds, and the presence
//! byte exclusively, which is only possible while no process holds it shared, i.e. has the store
//! open. The data file's bytes also see processes still using a lock file that was deleted or
//! replaced. Openers take the lock file's init byte before they open the data file, so while this
//! guard lives they wait without holding the data file, and find the new one if it was replaced.

use crate::error::{Error, Result};
use crate::files::{self, Paths};
use crate::lock_file::{range_lock, INIT_BYTE, PRESENCE_BYTE};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// While this lives, no process has the store at `path` open, and `Store::open` of it waits.
/// Dropping it lets them in. The lock file itself is never replaced: openers that are waiting
/// hold it open, and must find the store's new files when they get in.
pub struct Exclusive {
    /// Closing them releases the bytes (they are open-file-description locks).
    _lock_file: File,
    _data_file: File,
    path: PathBuf,
}

impl std::fmt::Debug for Exclusive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exclusive")
            .field("path", &self.path)
            .finish()
    }
}

/// How long an open or close in progress may delay `acquire` before it gives up.
const INIT_WAIT: Duration = Duration::from_secs(5);

impl Exclusive {
    /// Takes the store at `path` for this process alone, or returns [`Error::Busy`] when another
    /// process has it open (or keeps opening or closing it for longer than a few seconds).
    ///
    /// # Errors
    ///
    /// [`Error::Busy`] as above; [`Error::Permission`] or [`Error::Io`] when the store's files
    /// cannot be opened safely.
    pub fn acquire(path: impl AsRef<Path>) -> Result<Exclusive> {
        let paths = Paths::new(path.as_ref());
        // A missing lock file is made: it holds no durable state, and openers make it too.
        // (No `Options` here, so no I/O seam to choose: the real files.)
        let (file, _) = files::open_checked(&crate::io::RealIo, &paths.lock, true)?;
        let started = Instant::now();
        while !range_lock(&file, &paths.lock, INIT_BYTE, Some(true), false)? {
            if started.elapsed() > INIT_WAIT {
                return Err(busy(&paths, "another process keeps opening or closing it"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Openers take the data file's init byte only while holding the lock file's: it is free.
        let (data, _) = files::open_checked(&crate::io::RealIo, &paths.data, false)?;
        range_lock(&data, &paths.data, INIT_BYTE, Some(true), true)?;
        // Dropping the files on an early return releases every byte taken.
        if !range_lock(&file, &paths.lock, PRESENCE_BYTE, Some(true), false)?
            || !range_lock(&data, &paths.data, PRESENCE_BYTE, Some(true), false)?
        {
            return Err(busy(&paths, "another process has it open"));
        }
        Ok(Exclusive {
            _lock_file: file,
            _data_file: data,
            path: paths.data,
        })
    }

    /// The store's data file path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn busy(paths: &Paths, why: &str) -> Error {
    Error::Busy {
        path: paths.data.clone(),
        detail: format!(
            "{why} (election locks on {} and the data file)",
            paths.lock.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Options, Store};

    #[test]
    fn refused_while_open_and_keeps_openers_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let s = Store::open(&path, Options::default()).unwrap();
        let e = Exclusive::acquire(&path).expect_err("store is open");
        assert!(matches!(e, Error::Busy { .. }), "{e}");
        assert!(e.to_string().contains("has it open"), "{e}");
        drop(s);

        let x = Exclusive::acquire(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        let opener = std::thread::spawn(move || {
            let s = Store::open(&p, Options::default());
            tx.send(()).unwrap();
            s.map(|_| ())
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "an open got in while the store was held exclusively"
        );
        drop(x);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        opener.join().unwrap().unwrap();
    }

    #[test]
    fn refused_while_open_through_a_deleted_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let s = Store::open(&path, Options::default()).unwrap();
        std::fs::remove_file(Paths::new(&path).lock).unwrap();
        let e = Exclusive::acquire(&path).expect_err("store is open");
        assert!(matches!(e, Error::Busy { .. }), "{e}");
        drop(s);
    }
}
