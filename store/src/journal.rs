//! The redo journal: a fixed-size, preallocated file of checksummed records, written with `pwrite`
//! or copied into a mapping of the file (and flushed with `fdatasync` when durability asks). Each record is one transaction: a list of operations
//! applied all or nothing. After a checkpoint the journal is reused from offset 0; every record
//! carries the epoch of the checkpoint that started its cycle, so leftovers of older cycles are
//! rejected even when their checksum holds.
//!
//! Record: crc32c u32 | payload_len u32 | epoch u64 | lsn u64 | payload | zero padding to 8.
//! The checksum covers everything from `payload_len` to the end of the payload.

use crate::error::{Error, Result};
use crate::io::{write_all_at, FileKind, SharedIo, SyncKind};
use crate::layout::{u32_at, u64_at};
use std::borrow::Cow;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

pub const RECORD_HEADER: usize = 24;

/// One logical change. Conditional operations (add, compare-and-swap, increments) are decided
/// under the write lock and journaled as their outcome, so replay is deterministic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    Put {
        key: Cow<'a, [u8]>,
        value: Cow<'a, [u8]>,
        expires_ms: u64,
        modified_ms: u64,
    },
    Delete {
        key: Cow<'a, [u8]>,
    },
    Clear,
    /// Clear the store and record a new reset-on-restart generation.
    Reset {
        generation: u64,
    },
}

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_CLEAR: u8 = 3;
const OP_RESET: u8 = 4;

impl Op<'_> {
    pub fn encoded_len(&self) -> usize {
        match self {
            Op::Put { key, value, .. } => 1 + 4 + 4 + 8 + 8 + key.len() + value.len(),
            Op::Delete { key } => 1 + 4 + key.len(),
            Op::Clear => 1,
            Op::Reset { .. } => 1 + 8,
        }
    }
}

pub fn record_len(ops: &[Op]) -> usize {
    (RECORD_HEADER + ops.iter().map(Op::encoded_len).sum::<usize>()).next_multiple_of(8)
}

pub fn encode_record(epoch: u64, lsn: u64, ops: &[Op]) -> Vec<u8> {
    let mut b = Vec::with_capacity(record_len(ops));
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&epoch.to_le_bytes());
    b.extend_from_slice(&lsn.to_le_bytes());
    for op in ops {
        match op {
            Op::Put {
                key,
                value,
                expires_ms,
                modified_ms,
            } => {
                b.push(OP_PUT);
                b.extend_from_slice(&(key.len() as u32).to_le_bytes());
                b.extend_from_slice(&(value.len() as u32).to_le_bytes());
                b.extend_from_slice(&expires_ms.to_le_bytes());
                b.extend_from_slice(&modified_ms.to_le_bytes());
                b.extend_from_slice(key);
                b.extend_from_slice(value);
            }
            Op::Delete { key } => {
                b.push(OP_DELETE);
                b.extend_from_slice(&(key.len() as u32).to_le_bytes());
                b.extend_from_slice(key);
            }
            Op::Clear => b.push(OP_CLEAR),
            Op::Reset { generation } => {
                b.push(OP_RESET);
                b.extend_from_slice(&generation.to_le_bytes());
            }
        }
    }
    let payload_len = (b.len() - RECORD_HEADER) as u32;
    b[4..8].copy_from_slice(&payload_len.to_le_bytes());
    let crc = crc32c::crc32c(&b[4..]);
    b[0..4].copy_from_slice(&crc.to_le_bytes());
    b.resize(b.len().next_multiple_of(8), 0);
    b
}

fn decode_ops(mut p: &[u8]) -> Option<Vec<Op<'static>>> {
    fn take<'a>(p: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if p.len() < n {
            return None;
        }
        let (a, b) = p.split_at(n);
        *p = b;
        Some(a)
    }
    let mut ops = Vec::new();
    while !p.is_empty() {
        let kind = take(&mut p, 1)?[0];
        ops.push(match kind {
            OP_PUT => {
                let h = take(&mut p, 24)?;
                let (klen, vlen) = (u32_at(h, 0) as usize, u32_at(h, 4) as usize);
                let key = take(&mut p, klen)?.to_vec();
                let value = take(&mut p, vlen)?.to_vec();
                Op::Put {
                    key: key.into(),
                    value: value.into(),
                    expires_ms: u64_at(h, 8),
                    modified_ms: u64_at(h, 16),
                }
            }
            OP_DELETE => {
                let klen = u32_at(take(&mut p, 4)?, 0) as usize;
                Op::Delete {
                    key: take(&mut p, klen)?.to_vec().into(),
                }
            }
            OP_CLEAR => Op::Clear,
            OP_RESET => Op::Reset {
                generation: u64_at(take(&mut p, 8)?, 0),
            },
            _ => return None,
        });
    }
    Some(ops)
}

pub struct Journal {
    file: File,
    pub path: PathBuf,
    pub size: u64,
    /// The seam every write and flush of the journal goes through.
    io: SharedIo,
    /// `io.wants_mapped_writes()`, asked once (see `crate::io`).
    report_copies: bool,
    /// When set, records are copied into this shared mapping of the (preallocated) file instead
    /// of written with `pwrite`: after a process crash they are in the page cache either way, and
    /// `fdatasync` of the file flushes mapped pages too.
    map: Option<crate::map::Map>,
}

/// The valid prefix of a journal cycle.
pub struct Scan {
    pub records: Vec<(u64, Vec<Op<'static>>)>,
    /// Offset just past the last valid record: where the next record goes.
    pub end: u64,
    /// Why scanning stopped, if not at a clean end (for diagnostics).
    pub stopped: Option<String>,
}

impl Journal {
    pub fn new(file: File, path: PathBuf, size: u64, io: SharedIo) -> Journal {
        Journal {
            file,
            path,
            size,
            report_copies: io.wants_mapped_writes(),
            io,
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
            FileKind::Journal,
            self.io.clone(),
        )?);
        Ok(self)
    }

    /// Fills a new journal with zeros and makes it durable, so later writes overwrite allocated,
    /// already-written blocks and `fdatasync` has no metadata to flush. `ephemeral`: the file was
    /// just created empty and will never be reopened, so its allocated blocks (which read as
    /// zeros) suffice and nothing is written or flushed.
    pub fn format(&self, ephemeral: bool) -> Result<()> {
        let io = &*self.io;
        crate::files::allocate(io, FileKind::Journal, &self.path, &self.file, self.size)?;
        if ephemeral {
            return Ok(());
        }
        let zeros = vec![0u8; 1 << 20];
        let mut off = 0;
        while off < self.size {
            let n = (self.size - off).min(zeros.len() as u64) as usize;
            write_all_at(io, FileKind::Journal, &self.file, off, &zeros[..n])
                .map_err(|e| self.io_err("write", e))?;
            off += n as u64;
        }
        io.sync_file(FileKind::Journal, &self.file, SyncKind::All)
            .map_err(|e| self.io_err("fsync", e))
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
            Some(m) => {
                m.write(pos, record)?;
                if self.report_copies {
                    self.io.journal_copied(pos, record);
                }
                Ok(())
            }
            None => write_all_at(&*self.io, FileKind::Journal, &self.file, pos, record)
                .map_err(|e| self.io_err("write", e)),
        }
    }

    /// Makes every record written so far durable (`fdatasync`; it covers mapped pages too).
    pub fn sync(&self) -> Result<()> {
        self.io
            .sync_file(FileKind::Journal, &self.file, SyncKind::Data)
            .map_err(|e| self.io_err("fdatasync", e))
    }

    /// Reads the records of cycle `epoch`, starting with LSN `first_lsn`, up to the first record
    /// that is torn, fails its checksum, belongs to another cycle, or breaks the LSN sequence.
    pub fn scan(&self, epoch: u64, first_lsn: u64) -> Result<Scan> {
        let mut buf = vec![0u8; self.size as usize];
        self.file
            .read_exact_at(&mut buf, 0)
            .map_err(|e| self.io_err("read", e))?;
        let (mut pos, mut lsn) = (0usize, first_lsn);
        let mut records = Vec::new();
        let stopped = loop {
            if pos + RECORD_HEADER > buf.len() {
                break None;
            }
            let h = &buf[pos..pos + RECORD_HEADER];
            if h.iter().all(|&b| b == 0) {
                break None;
            }
            let len = u32_at(h, 4) as usize;
            let end = pos + RECORD_HEADER + len;
            if end > buf.len() {
                break Some(format!("record at {pos} runs past the end"));
            }
            if crc32c::crc32c(&buf[pos + 4..end]) != u32_at(h, 0) {
                break Some(format!("checksum mismatch at {pos}"));
            }
            if u64_at(h, 8) != epoch || u64_at(h, 16) != lsn {
                break None; // a leftover of an earlier cycle: the end of this one
            }
            let Some(ops) = decode_ops(&buf[pos + RECORD_HEADER..end]) else {
                break Some(format!("undecodable record at {pos}"));
            };
            records.push((lsn, ops));
            lsn += 1;
            pos = end.next_multiple_of(8);
        };
        Ok(Scan {
            records,
            end: pos as u64,
            stopped,
        })
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
        let j = Journal::new(f, path, 4096, std::sync::Arc::new(crate::io::RealIo));
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
        assert!(s.stopped.unwrap().contains("checksum"));
    }

    fn journal(dir: &tempfile::TempDir) -> Journal {
        let path = dir.path().join("j");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let j = Journal::new(f, path, 4096, std::sync::Arc::new(crate::io::RealIo));
        j.format(false).unwrap();
        j
    }

    fn put(key: &str, value: &str) -> Op<'static> {
        Op::Put {
            key: key.as_bytes().to_vec().into(),
            value: value.as_bytes().to_vec().into(),
            expires_ms: 0,
            modified_ms: 1,
        }
    }

    /// Writes records back to back from offset 0; returns where each one starts.
    fn write_all(j: &Journal, records: &[Vec<u8>]) -> Vec<u64> {
        let mut at = Vec::new();
        let mut pos = 0;
        for r in records {
            j.write_at(pos, r).unwrap();
            at.push(pos);
            pos += r.len() as u64;
        }
        at
    }

    #[test]
    fn records_left_from_an_older_cycle_end_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(&dir);
        // Cycle 3 wrote three records (LSNs 10-12); its checkpoint started cycle 4 at LSN 13,
        // which overwrote only the first. The next one is intact, checksum and all, and follows
        // in place, but it belongs to cycle 3: it must not be replayed.
        write_all(
            &j,
            &[
                encode_record(3, 10, &[put("a", "old")]),
                encode_record(3, 11, &[put("b", "old")]),
                encode_record(3, 12, &[put("c", "old")]),
            ],
        );
        let new = encode_record(4, 13, &[put("a", "new")]);
        assert_eq!(new.len(), encode_record(3, 10, &[put("a", "old")]).len());
        j.write_at(0, &new).unwrap();
        let s = j.scan(4, 13).unwrap();
        assert_eq!(s.records, vec![(13, vec![put("a", "new")])]);
        assert_eq!(s.end, new.len() as u64);
        // A clean end of the cycle, not damage.
        assert_eq!(s.stopped, None);
        // Even a leftover whose LSN would fit the sequence is refused for its epoch.
        let dir2 = tempfile::tempdir().unwrap();
        let j2 = journal(&dir2);
        write_all(
            &j2,
            &[
                encode_record(4, 13, &[put("a", "new")]),
                encode_record(3, 14, &[put("b", "old")]),
            ],
        );
        assert_eq!(j2.scan(4, 13).unwrap().records.len(), 1);
    }

    #[test]
    fn a_torn_record_ends_the_scan_even_if_valid_records_follow() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(&dir);
        let records: Vec<_> = (0..4u64)
            .map(|i| encode_record(7, 1 + i, &[put(&format!("k{i}"), &"v".repeat(100))]))
            .collect();
        let at = write_all(&j, &records);
        assert_eq!(j.scan(7, 1).unwrap().records.len(), 4);
        // The third record reached the disk only in part (the rest is still zeros): the scan
        // keeps the two before it and stops there; the fourth, intact, is never reached.
        let torn = &records[2][..records[2].len() / 2];
        let zeros = vec![0u8; records[2].len()];
        j.write_at(at[2], &zeros).unwrap();
        j.write_at(at[2], torn).unwrap();
        let s = j.scan(7, 1).unwrap();
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.end, at[2]);
        assert!(s.stopped.unwrap().contains("checksum"));
        // Only the header's first bytes landed: its length points past the data, still torn.
        j.write_at(at[2], &zeros).unwrap();
        j.write_at(at[2], &records[2][..8]).unwrap();
        let s = j.scan(7, 1).unwrap();
        assert_eq!((s.records.len(), s.end), (2, at[2]));
        assert!(s.stopped.is_some());
    }
}
