//! A [`StorageIo`] for tests: the real files, except that chosen calls fail. A rule names a call
//! (which method, on which file), the how-manieth call from now it hits, and the fault: EIO,
//! ENOSPC, or a short write (half the bytes written, success returned, so the engine must write
//! the rest itself). Needs no root and no special filesystem.

use apcdb::{FileKind, MappedRange, RealIo, StorageIo, SyncKind};
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex};

/// A method of [`StorageIo`] and the file it is called for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    /// `fallocate` (growth).
    Allocate(FileKind),
    /// `fallocate` of a range inside the file (the heap entering space a compaction gave back,
    /// or a slack stretch).
    AllocateRange(FileKind),
    /// `pwrite`.
    Write(FileKind),
    /// `fdatasync` / `fsync` of a file.
    SyncFile(FileKind),
    /// `msync` of a mapped range.
    SyncMap(FileKind),
    /// `sync_file_range` write-back (no flush) of a range.
    WriteBack(FileKind),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Eio,
    Enospc,
    /// Writes half the bytes (at least one) and reports that many: only for [`Call::Write`].
    Short,
}

struct Rule {
    call: Call,
    /// Calls of `call` still to let through before this rule fires.
    skip: u64,
    fault: Fault,
    /// Keeps firing on every later call too (a disk that stays full).
    sticky: bool,
}

#[derive(Default)]
pub struct FaultyIo {
    rules: Mutex<Vec<Rule>>,
    calls: Mutex<HashMap<Call, u64>>,
    fired: Mutex<Vec<(Call, Fault)>>,
}

impl FaultyIo {
    pub fn new() -> Arc<FaultyIo> {
        Arc::new(FaultyIo::default())
    }

    /// The `nth` call of `call` from now (1 = the next one) fails with `fault`, once.
    pub fn fail_nth(&self, call: Call, nth: u64, fault: Fault) {
        self.add(call, nth, fault, false);
    }

    /// The `nth` call of `call` from now and every one after it fail with `fault`.
    pub fn fail_from(&self, call: Call, nth: u64, fault: Fault) {
        self.add(call, nth, fault, true);
    }

    fn add(&self, call: Call, nth: u64, fault: Fault, sticky: bool) {
        assert!(nth >= 1);
        assert!(fault != Fault::Short || matches!(call, Call::Write(_)));
        self.rules.lock().unwrap().push(Rule {
            call,
            skip: nth - 1,
            fault,
            sticky,
        });
    }

    /// Removes every rule: from now on all calls reach the real files.
    pub fn heal(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// How many times `call` was made so far (failed ones included).
    pub fn calls(&self, call: Call) -> u64 {
        self.calls.lock().unwrap().get(&call).copied().unwrap_or(0)
    }

    /// The faults injected so far, in order.
    pub fn fired(&self) -> Vec<(Call, Fault)> {
        self.fired.lock().unwrap().clone()
    }

    /// Counts the call and returns the fault to inject into it, if any.
    fn fault(&self, call: Call) -> Option<Fault> {
        *self.calls.lock().unwrap().entry(call).or_default() += 1;
        let mut rules = self.rules.lock().unwrap();
        let mut hit = None;
        // Every rule counts this call; the first one due fires.
        rules.retain_mut(|r| {
            if r.call != call {
                return true;
            }
            if r.skip > 0 {
                r.skip -= 1;
                return true;
            }
            if hit.is_some() {
                return true;
            }
            hit = Some(r.fault);
            r.sticky
        });
        if let Some(f) = hit {
            self.fired.lock().unwrap().push((call, f));
        }
        hit
    }
}

fn error(fault: Fault) -> io::Error {
    io::Error::from_raw_os_error(match fault {
        Fault::Eio => libc::EIO,
        Fault::Enospc | Fault::Short => libc::ENOSPC,
    })
}

impl StorageIo for FaultyIo {
    fn allocate(&self, kind: FileKind, file: &File, len: u64) -> io::Result<()> {
        match self.fault(Call::Allocate(kind)) {
            Some(f) => Err(error(f)),
            None => RealIo.allocate(kind, file, len),
        }
    }

    fn allocate_range(&self, kind: FileKind, file: &File, off: u64, len: u64) -> io::Result<()> {
        match self.fault(Call::AllocateRange(kind)) {
            Some(f) => Err(error(f)),
            None => RealIo.allocate_range(kind, file, off, len),
        }
    }

    fn write_at(&self, kind: FileKind, file: &File, off: u64, bytes: &[u8]) -> io::Result<usize> {
        match self.fault(Call::Write(kind)) {
            Some(Fault::Short) if bytes.len() > 1 => {
                RealIo.write_at(kind, file, off, &bytes[..bytes.len() / 2])
            }
            Some(Fault::Short) | None => RealIo.write_at(kind, file, off, bytes),
            Some(f) => Err(error(f)),
        }
    }

    fn sync_file(&self, kind: FileKind, file: &File, what: SyncKind) -> io::Result<()> {
        match self.fault(Call::SyncFile(kind)) {
            Some(f) => Err(error(f)),
            None => RealIo.sync_file(kind, file, what),
        }
    }

    fn sync_map(&self, kind: FileKind, range: &MappedRange<'_>) -> io::Result<()> {
        match self.fault(Call::SyncMap(kind)) {
            Some(f) => Err(error(f)),
            None => RealIo.sync_map(kind, range),
        }
    }

    fn write_back(&self, kind: FileKind, file: &File, off: u64, len: u64) -> io::Result<()> {
        match self.fault(Call::WriteBack(kind)) {
            Some(f) => Err(error(f)),
            None => RealIo.write_back(kind, file, off, len),
        }
    }
}
