//! The redo journal: a fixed-size, preallocated file of checksummed records, written with `pwrite`
//! or copied into a mapping of the file (and flushed with `fdatasync` when durability asks). Each record is one transaction: a list of operations
//! applied all or nothing. After a checkpoint the journal is reused from offset 0; every record
//! carries the epoch of the checkpoint that started its cycle, so leftovers of older cycles are
//! rejected even when their checksum holds.
//!
//! The record and operation formats are in `format` (with the data file's).

use crate::error::{Error, Result};
#[cfg(test)]
pub(crate) use crate::format::encode_record;
pub(crate) use crate::format::{encode_record_to, record_len, Op, Scan};
use crate::io::{write_all_at, FileKind, SharedIo, SyncKind};
use crate::write::LockHeld;
use std::cell::Cell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

thread_local! {
    /// The buffer a record is encoded in before `pwrite` (durability `sync`), reused by the next
    /// commit so that a put allocates nothing for its record.
    static RECORD: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The largest record buffer a thread keeps between commits: one large value's record is not
/// held for the thread's whole life.
const RECORD_KEEP: usize = 64 << 10;

/// The journal prefix a scan reads first (most cycles a crash leaves are far shorter).
const SCAN_FIRST_READ: usize = 256 << 10;

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
    #[inline]
    pub fn broken(&self) -> bool {
        self.map.as_ref().is_some_and(|m| m.broken())
    }

    /// Writes a record of `len` bytes at `pos`, which `encode` fills: in place in the mapping
    /// (relaxed modes: the bytes are written once, with no buffer between), otherwise in this
    /// thread's kept buffer, then written with `pwrite`.
    pub fn write_record(
        &self,
        held: &LockHeld,
        pos: u64,
        len: usize,
        encode: impl FnOnce(&mut [u8]),
    ) -> Result<()> {
        debug_assert!(pos + len as u64 <= self.size);
        match &self.map {
            Some(m) => m.write_with(held, pos, len, |out| {
                encode(out);
                if self.report_copies {
                    self.io.journal_copied(pos, out);
                }
            }),
            None => {
                // A commit that finds the buffer taken (one nested in it, which cannot happen
                // while it holds it) or gone (from another thread-local's destructor) uses a new
                // one.
                let mut record = RECORD.try_with(Cell::take).unwrap_or_default();
                record.clear();
                record.resize(len, 0);
                encode(&mut record);
                let r = write_all_at(&*self.io, FileKind::Journal, &self.file, pos, &record)
                    .map_err(|e| self.io_err("write", e));
                if record.capacity() <= RECORD_KEEP {
                    let _ = RECORD.try_with(|c| c.set(record));
                }
                r
            }
        }
    }

    /// Writes bytes made elsewhere as a record (tests write damaged ones).
    #[cfg(test)]
    pub fn write_at(&self, held: &LockHeld, pos: u64, record: &[u8]) -> Result<()> {
        self.write_record(held, pos, record.len(), |out| out.copy_from_slice(record))
    }

    /// Makes every record written so far durable (`fdatasync`; it covers mapped pages too).
    pub fn sync(&self) -> Result<()> {
        self.io
            .sync_file(FileKind::Journal, &self.file, SyncKind::Data)
            .map_err(|e| self.io_err("fdatasync", e))
    }

    /// The valid records that follow the checkpoint `sb` describes: what recovery replays into
    /// the index, and what a read-only handle replays into memory (SPEC.md §6.8). The one place
    /// that knows where the chain after a checkpoint lives in the journal.
    pub fn chain(&self, sb: &crate::format::Superblock) -> Result<Scan> {
        let (bytes, mut scan) = self.chain_spans(sb)?;
        scan.decode_records(&bytes);
        Ok(scan)
    }

    /// `chain` without decoding (see `scan_spans`): what recovery replays.
    pub fn chain_spans(&self, sb: &crate::format::Superblock) -> Result<(Vec<u8>, Scan)> {
        self.scan_spans(sb.epoch, sb.ckpt_lsn + 1)
    }

    /// The valid records of the chain that starts with LSN `first_lsn` in the half of cycle
    /// `epoch` (the durable superblock's): that half's records, then, while the LSNs go on, the
    /// records of cycle `epoch + 1` in the other half (a checkpoint that froze at the end of the
    /// first half and whose superblock was not yet durable). A record that is torn, fails its
    /// checksum, belongs to another cycle or breaks the LSN sequence ends each half.
    pub fn scan(&self, epoch: u64, first_lsn: u64) -> Result<Scan> {
        let (bytes, mut scan) = self.scan_spans(epoch, first_lsn)?;
        scan.decode_records(&bytes);
        Ok(scan)
    }

    /// `scan` without decoding: the bytes read (both halves' prefixes, one after the other) and
    /// where each record's payload lies in them, so recovery decodes each record once,
    /// borrowing its keys and values from these bytes. `end` and `epoch` are the last half's.
    pub fn scan_spans(&self, epoch: u64, first_lsn: u64) -> Result<(Vec<u8>, Scan)> {
        let (mut bytes, mut first) = self.scan_half(epoch, first_lsn)?;
        let next = first_lsn + first.spans.len() as u64;
        let (more, second) = self.scan_half(epoch + 1, next)?;
        if second.spans.is_empty() {
            return Ok((bytes, first));
        }
        let shift = bytes.len();
        bytes.extend_from_slice(&more);
        first.spans.extend(
            second
                .spans
                .into_iter()
                .map(|(lsn, r)| (lsn, r.start + shift..r.end + shift)),
        );
        first.end = second.end;
        first.epoch = second.epoch;
        first.stopped = second.stopped;
        Ok((bytes, first))
    }

    /// The records of cycle `epoch` in its half, from LSN `first_lsn` on (see `scan`), and the
    /// bytes of the half they were found in.
    ///
    /// Reads only as far as the cycle goes (plus at most as much again): a prefix of the half,
    /// doubled while the scan runs off its end (resuming where it stopped), never the whole
    /// half for a short cycle.
    fn scan_half(&self, epoch: u64, first_lsn: u64) -> Result<(Vec<u8>, Scan)> {
        let (base, half) = (
            crate::format::journal_half_base(self.size, epoch),
            crate::format::journal_half(self.size) as usize,
        );
        // The capacity is only address space until read into; it spares the copies of growing.
        let mut buf = Vec::with_capacity(half);
        let mut len = SCAN_FIRST_READ.min(half);
        let mut scan = Scan {
            epoch,
            ..Scan::default()
        };
        loop {
            let have = buf.len();
            buf.resize(len, 0);
            self.file
                .read_exact_at(&mut buf[have..], base + have as u64)
                .map_err(|e| self.io_err("read", e))?;
            crate::format::continue_scan(&buf, epoch, first_lsn, &mut scan);
            // The prefix ended the scan, not the records: read more and scan again.
            let cut_short = match scan.stopped {
                None => scan.end as usize + crate::format::RECORD_HEADER > len,
                Some(crate::format::RecordProblem::RunsPastEnd { .. }) => true,
                Some(_) => false,
            };
            if !cut_short || len == half {
                return Ok((buf, scan));
            }
            len = (len * 2).min(half);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_roundtrip_and_reject_other_cycles() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(&dir);
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
        let r1 = encode_record(2, 10, &ops);
        let r2 = encode_record(2, 11, &ops[..1]);
        j.write_at(&LockHeld::for_tests(), 0, &r1).unwrap();
        j.write_at(&LockHeld::for_tests(), r1.len() as u64, &r2)
            .unwrap();
        let s = j.scan(2, 10).unwrap();
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.records[0].1, ops);
        assert_eq!(s.end, (r1.len() + r2.len()) as u64);
        // Another cycle's epoch or a gap in LSNs ends the scan.
        assert_eq!(j.scan(4, 10).unwrap().records.len(), 0);
        assert_eq!(j.scan(2, 11).unwrap().records.len(), 0);
        // A flipped byte in the second record keeps only the first.
        let mut bad = r2.clone();
        bad[30] ^= 0x40;
        j.write_at(&LockHeld::for_tests(), r1.len() as u64, &bad)
            .unwrap();
        let s = j.scan(2, 10).unwrap();
        assert_eq!(s.records.len(), 1);
        assert!(s.stopped.unwrap().to_string().contains("checksum"));
    }

    /// A cycle longer than the first read: the scan reads on, resuming where it stopped, across
    /// records that straddle each read's end, and still stops at the first torn record.
    #[test]
    fn a_cycle_longer_than_the_first_read_is_scanned_whole() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal_of(&dir, 2 << 20);
        // 1,000-byte values: records of 1,048 bytes, which never end on a 256 KiB boundary.
        let records: Vec<_> = (0..900u64)
            .map(|i| encode_record(2, 1 + i, &[put(&format!("k{i}"), &"v".repeat(1000))]))
            .collect();
        let at = write_all(&j, &records);
        assert!(at[899] > 3 * SCAN_FIRST_READ as u64);
        let s = j.scan(2, 1).unwrap();
        assert_eq!(s.records.len(), 900);
        assert_eq!(s.records[600].0, 601);
        assert_eq!(s.records[899].1, vec![put("k899", &"v".repeat(1000))]);
        assert_eq!(s.end, at[899] + records[899].len() as u64);
        assert_eq!(s.stopped, None);
        // Torn past the second read's end: everything before it, nothing after.
        let torn = at
            .iter()
            .position(|&a| a > 2 * SCAN_FIRST_READ as u64)
            .unwrap();
        let mut bad = records[torn].clone();
        bad[40] ^= 1;
        j.write_at(&LockHeld::for_tests(), at[torn], &bad).unwrap();
        let s = j.scan(2, 1).unwrap();
        assert_eq!((s.records.len(), s.end), (torn, at[torn]));
        assert!(s.stopped.is_some());
    }

    /// A formatted 4 KiB journal in `dir`.
    fn journal(dir: &tempfile::TempDir) -> Journal {
        journal_of(dir, 4096)
    }

    /// A formatted journal of `size` bytes in `dir`, on the real files.
    fn journal_of(dir: &tempfile::TempDir, size: u64) -> Journal {
        let path = dir.path().join("j");
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let j = Journal::new(f, path, size, std::sync::Arc::new(crate::io::RealIo));
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
            j.write_at(&LockHeld::for_tests(), pos, r).unwrap();
            at.push(pos);
            pos += r.len() as u64;
        }
        at
    }

    #[test]
    fn records_left_from_an_older_cycle_end_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(&dir);
        // Cycle 2 wrote three records (LSNs 10-12) in the first half; cycle 4, two checkpoints
        // later, started there again at LSN 13 and overwrote only the first. The next one is intact, checksum and all, and follows
        // in place, but it belongs to cycle 2: it must not be replayed.
        write_all(
            &j,
            &[
                encode_record(2, 10, &[put("a", "old")]),
                encode_record(2, 11, &[put("b", "old")]),
                encode_record(2, 12, &[put("c", "old")]),
            ],
        );
        let new = encode_record(4, 13, &[put("a", "new")]);
        assert_eq!(new.len(), encode_record(2, 10, &[put("a", "old")]).len());
        j.write_at(&LockHeld::for_tests(), 0, &new).unwrap();
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
                encode_record(2, 14, &[put("b", "old")]),
            ],
        );
        assert_eq!(j2.scan(4, 13).unwrap().records.len(), 1);
    }

    #[test]
    fn a_torn_record_ends_the_scan_even_if_valid_records_follow() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(&dir);
        let records: Vec<_> = (0..4u64)
            .map(|i| encode_record(6, 1 + i, &[put(&format!("k{i}"), &"v".repeat(100))]))
            .collect();
        let at = write_all(&j, &records);
        assert_eq!(j.scan(6, 1).unwrap().records.len(), 4);
        // The third record reached the disk only in part (the rest is still zeros): the scan
        // keeps the two before it and stops there; the fourth, intact, is never reached.
        let torn = &records[2][..records[2].len() / 2];
        let zeros = vec![0u8; records[2].len()];
        j.write_at(&LockHeld::for_tests(), at[2], &zeros).unwrap();
        j.write_at(&LockHeld::for_tests(), at[2], torn).unwrap();
        let s = j.scan(6, 1).unwrap();
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.end, at[2]);
        assert!(s.stopped.unwrap().to_string().contains("checksum"));
        // Only the header's first bytes landed: its length points past the data, still torn.
        j.write_at(&LockHeld::for_tests(), at[2], &zeros).unwrap();
        j.write_at(&LockHeld::for_tests(), at[2], &records[2][..8])
            .unwrap();
        let s = j.scan(6, 1).unwrap();
        assert_eq!((s.records.len(), s.end), (2, at[2]));
        assert!(s.stopped.is_some());
    }

    /// A chain that goes on into the next epoch's half: the records of both halves, in LSN
    /// order, each decoded from its own bytes (the second half's spans lie past the first
    /// half's bytes in the buffer the scan returns), ending where the second half ends.
    #[test]
    fn a_chain_continues_into_the_next_epochs_half() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(&dir);
        let half = crate::format::journal_half(j.size);
        let first: Vec<_> = (0..3u64)
            .map(|i| {
                encode_record(
                    6,
                    1 + i,
                    &[put(&format!("a{i}"), &"x".repeat(50 + i as usize))],
                )
            })
            .collect();
        write_all(&j, &first);
        let mut pos = crate::format::journal_half_base(j.size, 7);
        assert_eq!(pos, half);
        for i in 0..2u64 {
            let r = encode_record(
                7,
                4 + i,
                &[put(&format!("b{i}"), &"y".repeat(70 + i as usize))],
            );
            j.write_at(&LockHeld::for_tests(), pos, &r).unwrap();
            pos += r.len() as u64;
        }
        let s = j.scan(6, 1).unwrap();
        let lsns: Vec<u64> = s.records.iter().map(|r| r.0).collect();
        assert_eq!(lsns, [1, 2, 3, 4, 5]);
        assert_eq!(s.records[1].1, [put("a1", &"x".repeat(51))]);
        assert_eq!(s.records[4].1, [put("b1", &"y".repeat(71))]);
        assert_eq!((s.epoch, s.end), (7, pos - half));
        // The next half's records continue the chain only while the LSNs go on.
        let (_, gap) = j.scan_spans(6, 2).unwrap();
        assert_eq!((gap.spans.len(), gap.epoch), (0, 6));
        let r = encode_record(7, 9, &[put("c", "z")]);
        j.write_at(&LockHeld::for_tests(), half, &r).unwrap();
        let s = j.scan(6, 1).unwrap();
        assert_eq!((s.records.len(), s.epoch), (3, 6));
    }
}
