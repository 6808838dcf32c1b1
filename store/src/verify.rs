//! Offline inspection for operators (`apcdb check`, `apcdb recover`): read the files with `pread`,
//! change nothing, take no lock, trust nothing. A store another process is writing may change
//! under the check; run it on a quiet store, or run it again.

use crate::error::{CorruptKind, Error, Result};
use crate::files::{self, Paths};
use crate::format::*;
use crate::io::RealIo;
use crate::journal::Journal;
use crate::Entry;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What `check` found.
#[derive(Debug, Default)]
pub struct Report {
    /// Everything wrong, one readable line each; empty when the store is clean.
    pub problems: Vec<String>,
    /// Facts worth showing that are not problems (e.g. a torn journal tail after a crash).
    pub notes: Vec<String>,
    /// The newest superblock, when it passed validation (the one an open would use).
    pub superblock: Option<Superblock>,
    /// Entries in the durable index whose checksum holds.
    pub entries: u64,
    /// Valid journal records not yet checkpointed (recovery will replay them).
    pub journal_records: u64,
}

/// Entries recovered from a damaged store, and what could not be.
#[derive(Debug, Default)]
pub struct Salvage {
    /// Every entry whose checksum holds, by key (the newest version of each).
    pub entries: BTreeMap<Vec<u8>, Entry>,
    /// What could not be recovered, or may be wrong, one readable line each.
    pub lost: Vec<String>,
}

struct Reader {
    file: File,
    len: u64,
    path: PathBuf,
}

impl Reader {
    fn open(path: &Path) -> Result<Reader> {
        let file = files::open_for_inspection(path)?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(path, "fstat", e))?
            .len();
        Ok(Reader {
            file,
            len,
            path: path.into(),
        })
    }

    fn read(&self, off: u64, len: u64) -> Result<Vec<u8>> {
        if off.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(Error::corrupt(
                &self.path,
                CorruptKind::OutsideFile { off, len },
            ));
        }
        let mut b = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut b, off)
            .map_err(|e| Error::io(&self.path, "read", e))?;
        Ok(b)
    }

    /// The entry in the block a slot points to, checked like a reader checks it.
    fn entry(&self, slot: u64) -> Result<(Vec<u8>, Entry)> {
        read_entry(self, slot)
    }
}

impl EntrySource for Reader {
    fn fetch(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        buf.copy_from_slice(&self.read(off, buf.len() as u64)?);
        Ok(())
    }
    fn fetch_vec(&self, off: u64, len: usize) -> Result<Vec<u8>> {
        // Bounds are checked before anything is allocated: a damaged length cannot exhaust memory.
        self.read(off, len as u64)
    }
    fn path(&self) -> &Path {
        &self.path
    }
}

/// The newest superblock copy that decodes (not yet validated), with notes on the others.
fn superblocks(r: &Reader, report: &mut Report) -> Option<UncheckedSuperblock> {
    let mut copies: [Vec<u8>; 2] = Default::default();
    for (i, &at) in SUPERBLOCK_OFFSETS.iter().enumerate() {
        match r.read(at, SUPERBLOCK_LEN as u64) {
            Ok(b) => copies[i] = b,
            Err(e) => report.problems.push(format!("superblock {i}: {e}")),
        }
    }
    let picked = pick_superblock([&copies[0], &copies[1]]);
    for (i, refused) in picked.refused.iter().enumerate() {
        match refused {
            // Unreadable: already a problem above.
            _ if copies[i].is_empty() => {}
            _ if copies[i].iter().all(|&x| x == 0) => report
                .notes
                .push(format!("superblock {i}: not written yet")),
            // One bad copy is what a power cut during a checkpoint leaves: a note, not damage,
            // as long as the other copy is good.
            Some(e) => report.notes.push(format!("superblock {i}: {e}")),
            None => {}
        }
    }
    if picked.newest.is_none() {
        report.problems.push("no valid superblock".into());
    }
    picked.newest
}

/// Verifies every checksum and structural invariant of the store at `path`.
///
/// # Errors
///
/// Only when the data file cannot be opened or read ([`Error::Io`], [`Error::Permission`] for a
/// symlink or a non-regular file); everything it finds is a line in [`Report::problems`] or
/// [`Report::notes`].
pub fn check(path: &Path) -> Result<Report> {
    let paths = Paths::new(path);
    let r = Reader::open(&paths.data)?;
    let mut report = Report::default();
    // What an open would refuse (SPEC.md §1.1): a note, since an operator may inspect another
    // user's store on purpose.
    for p in [&paths.data, &paths.journal] {
        if let Err(e) = files::check_directory(p)
            .and_then(|()| files::check_owner_and_mode(p, &files::open_for_inspection(p)?))
        {
            report
                .notes
                .push(format!("an open would refuse the store: {e}"));
            break;
        }
    }
    let Some(unchecked) = superblocks(&r, &mut report) else {
        return Ok(report);
    };
    let epoch = unchecked.epoch();
    let sb = match unchecked.validate(r.len) {
        Ok(sb) => sb,
        Err(e) => {
            report
                .problems
                .push(format!("superblock epoch {epoch}: {e}"));
            return Ok(report);
        }
    };
    let durable = sb.index[sb.durable_copy as usize];
    let index = r.read(durable, index_len(sb.index_slots))?;
    if crc32c::crc32c(&index) as u64 != sb.index_crc {
        report.problems.push(format!(
            "durable index copy at {durable} fails its checksum"
        ));
    }
    let mask = sb.index_slots - 1;
    let slots: Vec<u64> = index
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let index_block = index_block_len(sb.index_slots);
    let mut blocks: Vec<(u64, u64, String)> = [sb.index[0], sb.index[1], sb.live]
        .iter()
        .map(|&o| (o, index_block, format!("index copy at {o}")))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for (i, &s) in slots.iter().enumerate() {
        if !slot_is_entry(s) {
            continue;
        }
        let what = format!("slot {i} (block at {})", slot_offset(s));
        match r.entry(s) {
            Ok((key, _)) => {
                let hash = hash_key(&key);
                if slot_tag(hash) != slot_tag(s) {
                    report
                        .problems
                        .push(format!("{what}: hash tag does not match its key"));
                }
                // Lookups start at the key's home slot and stop at the first empty one.
                let mut j = hash & mask;
                while j != i as u64 {
                    if slots[j as usize] == SLOT_EMPTY {
                        report.problems.push(format!(
                            "{what}: unreachable by lookup (empty slot {j} on its path)"
                        ));
                        break;
                    }
                    j = (j + 1) & mask;
                }
                if !seen.insert(key) {
                    report
                        .problems
                        .push(format!("{what}: key appears twice in the index"));
                }
                report.entries += 1;
            }
            Err(e) => report.problems.push(format!("{what}: {e}")),
        }
        blocks.push((slot_offset(s), class_size(slot_class(s)), what));
    }
    blocks.sort();
    for w in blocks.windows(2) {
        if w[0].0 + w[0].1 > w[1].0 {
            report
                .problems
                .push(format!("{} overlaps {}", w[0].2, w[1].2));
        }
    }
    if let Some((off, len, what)) = blocks
        .iter()
        .find(|b| b.0 < HEAP_START || b.0 + b.1 > sb.heap_end)
    {
        report
            .problems
            .push(format!("{what} ({off}+{len}) lies outside the heap"));
    }
    check_journal(&paths, &sb, closed_cleanly(&r, &sb), &mut report);
    report.superblock = Some(sb);
    Ok(report)
}

/// Whether the store was closed cleanly at its newest checkpoint: a closing snapshot (SPEC.md
/// §7.2) that describes it. Then the journal holds nothing after that checkpoint.
fn closed_cleanly(r: &Reader, sb: &Superblock) -> bool {
    let (Ok(copy), Ok(snap)) = (
        r.read(
            SUPERBLOCK_OFFSETS[(sb.epoch % 2) as usize],
            SUPERBLOCK_LEN as u64,
        ),
        r.read(snapshot_offset(sb.epoch), SNAPSHOT_LEN as u64),
    ) else {
        return false;
    };
    StateSnapshot::decode(&snap)
        .is_some_and(|s| s.describes(sb, crc32c::crc32c(&copy) as u64, r.len))
}

fn check_journal(paths: &Paths, sb: &Superblock, closed_cleanly: bool, report: &mut Report) {
    let file = match files::open_for_inspection(&paths.journal) {
        Ok(f) => f,
        // A journal removed after a clean close (a compaction's swap between its steps, a copy
        // of the data file alone) held nothing: the next open recreates it empty (SPEC.md §7).
        Err(crate::Error::Io { source, .. })
            if closed_cleanly && source.kind() == std::io::ErrorKind::NotFound =>
        {
            return report.notes.push(format!(
                "{} is missing; the store was closed cleanly, so nothing is lost: the next \
                 open recreates it empty",
                paths.journal.display()
            ));
        }
        Err(e) => return report.problems.push(e.to_string()),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len != sb.journal_size {
        return report.problems.push(format!(
            "{}: {len} bytes, expected {}",
            paths.journal.display(),
            sb.journal_size
        ));
    }
    match Journal::new(file, paths.journal.clone(), len, Arc::new(RealIo))
        .scan(sb.epoch, sb.ckpt_lsn + 1)
    {
        Ok(scan) => {
            report.journal_records = scan.records.len() as u64;
            if let Some(why) = scan.stopped {
                report.notes.push(format!(
                    "journal ends in a torn or damaged record ({why}); recovery stops there"
                ));
            }
        }
        Err(e) => report.problems.push(e.to_string()),
    }
}

/// Collects every entry that can be trusted: from the durable index (each entry checked), then the
/// journal cycle replayed on top. Without a valid superblock, scans the whole heap for entries
/// whose checksum holds and keeps the newest version of each key (deleted keys may reappear then;
/// `lost` says so).
///
/// # Errors
///
/// Only when the data file cannot be opened or read ([`Error::Io`], [`Error::Permission`]);
/// damage is reported in [`Salvage::lost`].
pub fn salvage(path: &Path) -> Result<Salvage> {
    let paths = Paths::new(path);
    let r = Reader::open(&paths.data)?;
    let mut out = Salvage::default();
    let mut report = Report::default();
    let sb = superblocks(&r, &mut report).and_then(|sb| sb.validate(r.len).ok());
    match &sb {
        Some(sb) => {
            let index = r.read(
                sb.index[sb.durable_copy as usize],
                index_len(sb.index_slots),
            )?;
            for (i, c) in index.chunks_exact(8).enumerate() {
                let s = u64::from_le_bytes(c.try_into().unwrap());
                if slot_is_entry(s) {
                    match r.entry(s) {
                        Ok((k, e)) => {
                            out.entries.insert(k, e);
                        }
                        Err(e) => out.lost.push(format!("index slot {i}: {e}")),
                    }
                }
            }
        }
        None => {
            out.lost.push("no usable superblock: scanned the heap; keys deleted before the damage may reappear".into());
            scan_heap(&r, &mut out);
        }
    }
    if let Some(sb) = &sb {
        if let Ok(file) = files::open_for_inspection(&paths.journal) {
            let journal = Journal::new(
                file,
                paths.journal.clone(),
                sb.journal_size,
                Arc::new(RealIo),
            );
            match journal.scan(sb.epoch, sb.ckpt_lsn + 1) {
                Ok(scan) => {
                    for (lsn, ops) in &scan.records {
                        replay(*lsn, ops, &mut Replayed(&mut out.entries))
                            .unwrap_or_else(|never| match never {});
                    }
                }
                Err(e) => out.lost.push(format!(
                    "journal unreadable, writes after the last checkpoint lost: {e}"
                )),
            }
        }
    }
    Ok(out)
}

/// The salvaged entries, as journal replay changes them (the same meaning of each operation as
/// the engine's, from `format::replay`).
struct Replayed<'a>(&'a mut BTreeMap<Vec<u8>, Entry>);

impl Replay for Replayed<'_> {
    type Error = std::convert::Infallible;
    fn put(
        &mut self,
        key: &[u8],
        value: &[u8],
        expires_ms: u64,
        modified_ms: u64,
        version: u64,
    ) -> std::result::Result<(), Self::Error> {
        let entry = Entry {
            value: value.to_vec(),
            expires_at_ms: expires_ms,
            modified_at_ms: modified_ms,
            version,
        };
        self.0.insert(key.to_vec(), entry);
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> std::result::Result<(), Self::Error> {
        self.0.remove(key);
        Ok(())
    }
    fn clear(&mut self) -> std::result::Result<(), Self::Error> {
        self.0.clear();
        Ok(())
    }
    fn set_generation(&mut self, _: u64) -> std::result::Result<(), Self::Error> {
        Ok(())
    }
}

fn scan_heap(r: &Reader, out: &mut Salvage) {
    let mut off = HEAP_START;
    while off + ENTRY_HEADER as u64 <= r.len {
        let h = match r.read(off, ENTRY_HEADER as u64) {
            Ok(b) => EntryHeader::decode(&b),
            Err(_) => break,
        };
        let class = class_for(h.total_len().max(1));
        if h.crc != 0 && h.total_len() <= r.len - off && (class as usize) < CLASSES {
            if let Ok((k, e)) = r.entry(slot_pack(off, class, 0)) {
                if out
                    .entries
                    .get(&k)
                    .is_none_or(|old| old.version < e.version)
                {
                    out.entries.insert(k, e);
                }
                off += class_size(class);
                continue;
            }
        }
        off += BLOCK_ALIGN;
    }
}
