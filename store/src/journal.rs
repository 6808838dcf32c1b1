//! The redo journal: a fixed-size, preallocated file of checksummed records, written with `pwrite`
//! or copied into a mapping of the file (and flushed with `fdatasync` when durability asks). Each record is one transaction: a list of operations
//! applied all or nothing. After a checkpoint the journal is reused from offset 0; every record
//! carries the epoch of the checkpoint that started its cycle, so leftovers of older cycles are
//! rejected even when their checksum holds.
//!
//! The record and operation formats are in `format` (with the data file's).

use crate::error::{Error, Result};
pub(crate) use crate::format::{encode_record, record_len, Op, Scan};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

pub struct Journal {
    file: File,
    pub path: PathBuf,
    pub size: u64,
    observer: Option<crate::observe::SharedObserver>,
    /// When set, records are copied into this shared mapping of the (preallocated) file instead
    /// of written with `pwrite`: after a process crash they are in the page cache either way, and
    /// `fdatasync` of the file flushes mapped pages too.
    map: Option<crate::map::Map>,
}

impl Journal {
    pub fn new(file: File, path: PathBuf, size: u64) -> Journal {
        Journal {
            file,
            path,
            size,
            observer: None,
            map: None,
        }
    }

    /// Switches writes to a shared mapping of the journal.
    pub fn mapped(mut self) -> Result<Journal> {
        let file = self
            .file
            .try_clone()
            .map_err(|e| Error::io(&self.path, "dup", e))?;
        self.map = Some(crate::map::Map::new(
            self.path.clone(),
            file,
            self.size,
            None,
        )?);
        Ok(self)
    }

    pub fn observed_by(mut self, observer: Option<crate::observe::SharedObserver>) -> Journal {
        self.observer = observer;
        self
    }

    /// Fills a new journal with zeros and makes it durable, so later writes overwrite allocated,
    /// already-written blocks and `fdatasync` has no metadata to flush. `ephemeral`: the file was
    /// just created empty and will never be reopened, so its allocated blocks (which read as
    /// zeros) suffice and nothing is written or flushed.
    pub fn format(&self, ephemeral: bool) -> Result<()> {
        crate::files::allocate(&self.path, &self.file, self.size)?;
        if ephemeral {
            return Ok(());
        }
        let zeros = vec![0u8; 1 << 20];
        let mut off = 0;
        while off < self.size {
            let n = (self.size - off).min(zeros.len() as u64) as usize;
            self.file
                .write_all_at(&zeros[..n], off)
                .map_err(|e| self.io_err("write", e))?;
            off += n as u64;
        }
        self.file.sync_all().map_err(|e| self.io_err("fsync", e))
    }

    fn io_err(&self, op: &'static str, e: std::io::Error) -> Error {
        if e.raw_os_error() == Some(libc::ENOSPC) {
            return Error::Full {
                path: self.path.clone(),
                detail: "no space left on device".into(),
            };
        }
        Error::io(&self.path, op, e)
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// True once the journal's mapping (relaxed modes) was hit by a SIGBUS: the file shrank.
    pub fn broken(&self) -> bool {
        self.map.as_ref().is_some_and(|m| m.broken())
    }

    pub fn write_at(&self, pos: u64, record: &[u8]) -> Result<()> {
        debug_assert!(pos + record.len() as u64 <= self.size);
        match &self.map {
            Some(m) => m.write(pos, record)?,
            None => self
                .file
                .write_all_at(record, pos)
                .map_err(|e| self.io_err("write", e))?,
        }
        if let Some(o) = &self.observer {
            o.journal_written(pos, record);
        }
        Ok(())
    }

    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| self.io_err("fdatasync", e))?;
        if let Some(o) = &self.observer {
            o.journal_synced();
        }
        Ok(())
    }

    /// Reads the records of cycle `epoch`, starting with LSN `first_lsn`, up to the first record
    /// that is torn, fails its checksum, belongs to another cycle, or breaks the LSN sequence.
    pub fn scan(&self, epoch: u64, first_lsn: u64) -> Result<Scan> {
        let mut buf = vec![0u8; self.size as usize];
        self.file
            .read_exact_at(&mut buf, 0)
            .map_err(|e| self.io_err("read", e))?;
        Ok(crate::format::scan_records(&buf, epoch, first_lsn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_roundtrip_and_reject_other_cycles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let j = Journal::new(f, path, 4096);
        j.format(false).unwrap();
        let ops = vec![
            Op::Put {
                key: b"k".as_slice().into(),
                value: b"v".as_slice().into(),
                expires_ms: 5,
                modified_ms: 6,
            },
            Op::Delete {
                key: b"".as_slice().into(),
            },
            Op::Clear,
            Op::Reset { generation: 9 },
        ];
        let r1 = encode_record(3, 10, &ops);
        let r2 = encode_record(3, 11, &ops[..1]);
        j.write_at(0, &r1).unwrap();
        j.write_at(r1.len() as u64, &r2).unwrap();
        let s = j.scan(3, 10).unwrap();
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.records[0].1, ops);
        assert_eq!(s.end, (r1.len() + r2.len()) as u64);
        // Another cycle's epoch or a gap in LSNs ends the scan.
        assert_eq!(j.scan(4, 10).unwrap().records.len(), 0);
        assert_eq!(j.scan(3, 11).unwrap().records.len(), 0);
        // A flipped byte in the second record keeps only the first.
        let mut bad = r2.clone();
        bad[30] ^= 0x40;
        j.write_at(r1.len() as u64, &bad).unwrap();
        let s = j.scan(3, 10).unwrap();
        assert_eq!(s.records.len(), 1);
        assert!(s.stopped.unwrap().to_string().contains("checksum"));
    }
}
