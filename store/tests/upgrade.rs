//! Stores written by format version 2 (and 1) are converted at their first read-write open when
//! they were closed cleanly, and refused, unchanged, when they were not (SPEC.md §2.1). The
//! fixtures were written by the last version-2 build (tests/fixtures/v2/make.sh).

mod common;

#[allow(dead_code)]
mod model {
    include!("fixtures/v2/model.rs");
}

use apcdb::format::{superblock_at, SUPERBLOCK_LEN, SUPERBLOCK_OFFSETS};
use apcdb::{Error, FileKind, Options, Paths, StorageIo, Store, SyncKind};
use common::{helper_command, helper_role, say};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Unpacks fixture `name` (clean or unclean) into `dir`: `dir/v2.db`, its journal and the
/// manifest of what the version-2 build read back.
fn unpack(name: &str, dir: &Path) -> PathBuf {
    let archive =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/v2/{name}.tar.gz"));
    let ok = std::process::Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-xzf")
        .arg(&archive)
        .status()
        .expect("run tar")
        .success();
    assert!(ok, "unpacking {}", archive.display());
    dir.join("v2.db")
}

/// A key as read back: expires, modified, version, value.
type Read = (u64, u64, u64, Vec<u8>);

/// The manifest: per key, what it read back, or None for a key that reads as absent.
fn manifest(dir: &Path) -> Vec<Option<Read>> {
    let text = std::fs::read_to_string(dir.join("manifest.txt")).unwrap();
    let rows: Vec<_> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f[1] == "-" {
                return None;
            }
            let n = |i: usize| f[i].parse::<u64>().unwrap();
            let hex = f.get(4).copied().unwrap_or("");
            let value = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            Some((n(1), n(2), n(3), value))
        })
        .collect();
    assert_eq!(rows.len(), model::KEYS as usize);
    rows
}

/// Every key reads back exactly as the version-2 build read it (value, expiry, modification
/// time, version), and as the model that wrote it says.
fn reads_back(store: &Store, dir: &Path) {
    let want = manifest(dir);
    let mut present = 0;
    for i in 0..model::KEYS {
        let got = store
            .get_entry(&model::key(i))
            .unwrap()
            .map(|e| (e.expires_at_ms, e.modified_at_ms, e.version, e.value));
        assert_eq!(got, want[i as usize], "key {i}");
        assert_eq!(
            got.map(|g| (g.3, g.0)),
            model::expected(i),
            "key {i} against the model"
        );
        present += want[i as usize].is_some() as u64;
    }
    assert!(present > 200, "the fixture holds {present} live keys");
}

/// The version of each superblock copy (0 for a blank one).
fn versions(path: &Path) -> [u32; 2] {
    let f = File::open(path).unwrap();
    SUPERBLOCK_OFFSETS.map(|at| {
        let mut b = [0u8; SUPERBLOCK_LEN];
        f.read_exact_at(&mut b, at).unwrap();
        u32::from_le_bytes(
            b[superblock_at::VERSION..superblock_at::VERSION + 4]
                .try_into()
                .unwrap(),
        )
    })
}

fn files(path: &Path) -> Vec<Vec<u8>> {
    let p = Paths::new(path);
    [p.data, p.journal]
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect()
}

/// Rewrites superblock copy `slot` with `change` applied to its bytes and a valid checksum, as
/// an older build would have written it.
fn patch_copy(path: &Path, slot: usize, change: impl Fn(&mut [u8])) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .open(path)
        .unwrap();
    let at = SUPERBLOCK_OFFSETS[slot];
    let mut b = [0u8; SUPERBLOCK_LEN];
    f.read_exact_at(&mut b, at).unwrap();
    change(&mut b);
    let crc = crc32c::crc32c(&b[superblock_at::CHECKSUMMED..]);
    b[superblock_at::CRC..superblock_at::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    f.write_all_at(&b, at).unwrap();
}

/// `patch_copy` of the newest copy.
fn patch_older(path: &Path, change: impl Fn(&mut [u8])) {
    let f = File::open(path).unwrap();
    let epochs = SUPERBLOCK_OFFSETS.map(|at| {
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, at + superblock_at::EPOCH as u64)
            .unwrap();
        u64::from_le_bytes(b)
    });
    patch_copy(path, (epochs[1] > epochs[0]) as usize, change);
}

fn set_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn a_cleanly_closed_version_2_store_converts_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = unpack("clean", dir.path());
    assert_eq!(versions(&path), [2, 2]);
    let store = Store::open(&path, Options::default().create(false)).unwrap();
    reads_back(&store, dir.path());
    let mut v = versions(&path);
    v.sort();
    assert_eq!(
        v,
        [0, 3],
        "a version-3 superblock and the older copy blanked"
    );
    // Writes, a checkpoint and a clean close in the new format, then a read-only handle and a
    // second open see the same.
    store.put(b"after", b"conversion").unwrap();
    store.checkpoint().unwrap();
    drop(store);
    let report = apcdb::verify::check(&path).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let ro = Store::open(&path, Options::default().read_only()).unwrap();
    reads_back(&ro, dir.path());
    drop(ro);
    let store = Store::open(&path, Options::default()).unwrap();
    reads_back(&store, dir.path());
    assert_eq!(store.get(b"after").unwrap().unwrap(), b"conversion");
}

#[test]
fn a_version_1_store_converts_too() {
    // Version 1 is version 2 without the closing snapshot, which lived in the superblock pages'
    // unused tails: zeros there and the version field make one.
    let dir = tempfile::tempdir().unwrap();
    let path = unpack("clean", dir.path());
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for at in SUPERBLOCK_OFFSETS {
        f.write_all_at(&[0u8; 2048], at + 2048).unwrap();
    }
    for slot in 0..2 {
        patch_copy(&path, slot, |b| b[superblock_at::VERSION] = 1);
    }
    assert_eq!(versions(&path), [1, 1]);
    let store = Store::open(&path, Options::default()).unwrap();
    reads_back(&store, dir.path());
}

#[test]
fn a_version_2_store_not_closed_cleanly_is_refused_and_left_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = unpack("unclean", dir.path());
    let before = files(&path);
    let e = Store::open(&path, Options::default()).expect_err("must be refused");
    assert!(matches!(e, Error::Incompatible { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("format version 2"), "{text}");
    assert!(text.contains("not closed cleanly"), "{text}");
    assert!(text.contains("build that wrote it"), "{text}");
    assert_eq!(files(&path), before, "a refused store was changed");
    // A read-only handle does not convert: it says what would.
    let e = Store::open(&path, Options::default().read_only()).expect_err("refused");
    assert!(e.to_string().contains("written by an older apcdb"), "{e}");
    assert_eq!(files(&path), before);
}

#[test]
fn a_conversion_that_needs_more_than_the_maximum_size_is_refused_unless_raised() {
    let dir = tempfile::tempdir().unwrap();
    let path = unpack("clean", dir.path());
    // The heap reaches the end of the file, and the file is at its maximum: the third index
    // copy has no room.
    let len = std::fs::metadata(&path).unwrap().len();
    patch_older(&path, |b| {
        set_u64(b, superblock_at::HEAP_END, len);
        set_u64(b, superblock_at::MAX_SIZE, len);
    });
    let before = files(&path);
    let e = Store::open(&path, Options::default()).expect_err("no room");
    assert!(matches!(e, Error::Full { .. }), "{e}");
    assert!(e.to_string().contains("larger maximum size"), "{e}");
    assert_eq!(files(&path), before, "a refused store was changed");
    // A larger maximum size in the options makes the room.
    let store = Store::open(&path, Options::default().max_size(4 << 20)).unwrap();
    reads_back(&store, dir.path());
    assert!(std::fs::metadata(&path).unwrap().len() > len);
    assert_eq!(store.stats().unwrap().max_size, 4 << 20);
}

/// Counts every call that reaches the disk and kills its process (SIGKILL, nothing flushed
/// or unwound) just before call number `at`.
struct KillAt {
    at: u64,
    calls: AtomicU64,
}

impl KillAt {
    fn step(&self) {
        if self.calls.fetch_add(1, Relaxed) + 1 == self.at {
            // SAFETY: signals this process; nothing after it runs.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    }
}

impl StorageIo for KillAt {
    fn allocate(&self, kind: FileKind, file: &File, len: u64) -> std::io::Result<()> {
        self.step();
        apcdb::RealIo.allocate(kind, file, len)
    }
    fn write_at(&self, kind: FileKind, file: &File, off: u64, b: &[u8]) -> std::io::Result<usize> {
        self.step();
        apcdb::RealIo.write_at(kind, file, off, b)
    }
    fn sync_file(&self, kind: FileKind, file: &File, what: SyncKind) -> std::io::Result<()> {
        self.step();
        apcdb::RealIo.sync_file(kind, file, what)
    }
    fn sync_map(&self, kind: FileKind, r: &apcdb::MappedRange<'_>) -> std::io::Result<()> {
        self.step();
        apcdb::RealIo.sync_map(kind, r)
    }
    fn sync_dir(&self, dir: &File) -> std::io::Result<()> {
        self.step();
        apcdb::RealIo.sync_dir(dir)
    }
}

/// A process killed before each of the conversion's disk calls (and the open's and close's after
/// it) in turn: the next open finds either the version-2 store, which it converts, or the
/// converted one, and reads every entry back either way.
fn killed_at_every_step(prepare: impl Fn(&Path), opts: &str) {
    let mut kills = 0;
    for at in 1u64.. {
        let dir = tempfile::tempdir().unwrap();
        let path = unpack("clean", dir.path());
        prepare(&path);
        let status = helper_command("open-dying", &path)
            .env("APCDB_KILL_AT", at.to_string())
            .env("APCDB_OPTS", opts)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        let v = versions(&path);
        assert!(
            v.contains(&2) || v.contains(&3),
            "kill at call {at}: neither format's superblock left ({v:?})"
        );
        let store = Store::open(&path, options(opts)).unwrap();
        reads_back(&store, dir.path());
        drop(store);
        if status.success() {
            break;
        }
        kills += 1;
    }
    // The conversion alone writes and flushes two superblocks (more with growth); the open's
    // recovery and the close follow.
    assert!(kills >= 4, "only {kills} kill points");
}

fn options(which: &str) -> Options {
    match which {
        "raise" => Options::default().max_size(8 << 20),
        _ => Options::default(),
    }
}

#[test]
fn a_kill_at_any_step_of_the_conversion_leaves_a_store_that_opens() {
    killed_at_every_step(|_| {}, "");
}

#[test]
fn a_kill_at_any_step_of_a_conversion_that_grows_the_file_leaves_a_store_that_opens() {
    killed_at_every_step(
        |path| {
            let len = std::fs::metadata(path).unwrap().len();
            patch_older(path, |b| set_u64(b, superblock_at::HEAP_END, len));
        },
        "raise",
    );
}

#[test]
#[ignore]
fn helper() {
    let Some((role, path)) = helper_role() else {
        return;
    };
    match role.as_str() {
        // Opens (converting), reads every key, closes, each disk call counted; killed at call
        // APCDB_KILL_AT.
        "open-dying" => {
            let at = std::env::var("APCDB_KILL_AT").unwrap().parse().unwrap();
            let io = Arc::new(KillAt {
                at,
                calls: AtomicU64::new(0),
            });
            let opts = options(&std::env::var("APCDB_OPTS").unwrap_or_default()).io(io);
            let store = Store::open(&path, opts).unwrap();
            for i in 0..model::KEYS {
                store.get(&model::key(i)).unwrap();
            }
            drop(store);
            say("survived");
        }
        other => panic!("unknown role {other}"),
    }
}
