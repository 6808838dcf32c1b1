//! The operator tool on another user's store, run as root (the tests skip without root): `stats`,
//! `dump` and `check` read it without changing any file, also while a writer running as its
//! owner uses it; `load`, `clear`, `resize` and `recover --replace` run as the owner, so every
//! file stays the owner's, and `recover --replace` keeps owner, group, mode and maximum size.

mod common;

use apcdb::{Options, Paths, Store};
use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn apcdb(args: &[&str], file: &Path, stdin: &[u8]) -> Output {
    let args = args.iter().map(OsStr::new);
    common::apcdb_with_stdin(args.chain([file.as_os_str()]), stdin)
}

fn ok(o: &Output) -> String {
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{text}");
    text
}

/// A directory for a store that will be `nobody`'s (mode 0700, as a PHP-FPM pool's store
/// directory would be; `give_to_nobody` hands it over once the store is made).
fn nobody_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The store's files and their directory become `nobody`'s.
fn give_to_nobody(path: &Path) {
    std::os::unix::fs::chown(path.parent().unwrap(), Some(NOBODY), Some(NOGROUP)).unwrap();
    for p in Paths::new(path).all() {
        if p.exists() {
            std::os::unix::fs::chown(p, Some(NOBODY), Some(NOGROUP)).unwrap();
        }
    }
}

/// Every file in `dir`: name, owner, group, mode.
fn owners(dir: &Path) -> Vec<(String, u32, u32, u32)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let md = e.metadata().unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, md.uid(), md.gid(), md.mode() & 0o7777)
        })
        .collect();
    v.sort();
    v
}

/// Bytes, mtime, ctime, owner and mode of each of the store's files (None when missing).
type Fingerprint = Vec<Option<(Vec<u8>, i64, i64, i64, i64, u32, u32, u32)>>;

fn fingerprint(path: &Path) -> Fingerprint {
    Paths::new(path)
        .all()
        .iter()
        .map(|p| {
            let md = std::fs::symlink_metadata(p).ok()?;
            let bytes = std::fs::read(p).unwrap();
            Some((
                bytes,
                md.mtime(),
                md.mtime_nsec(),
                md.ctime(),
                md.ctime_nsec(),
                md.uid(),
                md.gid(),
                md.mode(),
            ))
        })
        .collect()
}

/// A store as a killed PHP worker leaves it, owned by `nobody`: checkpointed entries, then
/// journal-only writes (copied while the writer still had it open, which is what a crash
/// leaves), and no lock file.
fn crashed_store_of_nobody(dir: &Path) -> std::path::PathBuf {
    let live = dir.join("live.db");
    let s = Store::open(&live, Options::default()).unwrap();
    for i in 0..20 {
        s.put(format!("k{i}").as_bytes(), b"checkpointed").unwrap();
    }
    s.checkpoint().unwrap();
    s.put(b"k0", b"journal").unwrap();
    s.put(b"only-in-journal", b"j").unwrap();
    s.delete(b"k1").unwrap();
    let path = dir.join("site.db");
    for (from, to) in Paths::new(&live)
        .durable()
        .iter()
        .zip(Paths::new(&path).durable())
    {
        std::fs::copy(from, to).unwrap();
    }
    drop(s);
    for p in Paths::new(&live).all() {
        std::fs::remove_file(p).unwrap();
    }
    give_to_nobody(&path);
    path
}

#[test]
fn inspecting_another_users_store_as_root_changes_nothing() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = nobody_dir();
    let path = crashed_store_of_nobody(dir.path());
    let before = fingerprint(&path);
    let files_before = owners(dir.path());

    let stats = ok(&apcdb(&["stats"], &path, b""));
    assert!(stats.contains("entries: 20\n"), "{stats}");
    assert!(
        stats.contains("not closed cleanly: the next read-write open will run recovery")
            && stats.contains("3 journal records replayed in memory"),
        "{stats}"
    );
    ok(&apcdb(&["stats", "--format", "prometheus"], &path, b""));
    ok(&apcdb(&["stats", "--json"], &path, b""));
    let dump = ok(&apcdb(&["dump"], &path, b""));
    // "only-in-journal" and "journal" in base64: the journal's writes are in the dump.
    assert!(dump.contains("\"b25seS1pbi1qb3VybmFs\"") && dump.contains("\"am91cm5hbA==\""));
    assert!(dump.contains("dumped 20 entries"), "{dump}");
    let check = ok(&apcdb(&["check", "--open"], &path, b""));
    assert!(check.contains("read through a read-only handle"), "{check}");
    ok(&apcdb(&["check", "--json", "--open"], &path, b""));

    assert_eq!(fingerprint(&path), before, "an inspection changed a file");
    assert_eq!(
        owners(dir.path()),
        files_before,
        "an inspection made a file"
    );

    // With a lock file of a past session in place, the same.
    std::fs::write(Paths::new(&path).lock, b"").unwrap();
    give_to_nobody(&path);
    let before = fingerprint(&path);
    ok(&apcdb(&["stats"], &path, b""));
    ok(&apcdb(&["dump"], &path, b""));
    ok(&apcdb(&["check", "--open"], &path, b""));
    assert_eq!(fingerprint(&path), before);
}

/// A writer running as the files' owner keeps writing and checkpointing; root inspects the store
/// meanwhile: every run succeeds with whole values, the writer carries on, and with the writer
/// stopped (still holding the store open) an inspection changes none of its files.
#[test]
fn inspecting_a_live_store_as_root_while_its_owner_writes() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = nobody_dir();
    let path = dir.path().join("site.db");
    drop(Store::open(&path, Options::default()).unwrap());
    give_to_nobody(&path);
    let mut writer = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_apcdb"))
        .args(["crash-test", "churn", "--durability", "none", "--store"])
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(writer.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim_end(), "churning");

    let started = Instant::now();
    let mut runs = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let stats = ok(&apcdb(&["stats"], &path, b""));
        assert!(stats.contains("in use by other processes"), "{stats}");
        let dump = apcdb(&["dump"], &path, b"");
        let text = ok(&dump);
        for l in String::from_utf8_lossy(&dump.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            // churn writes 8-byte counters: base64 of 8 bytes is 12 characters.
            assert_eq!(v["value"].as_str().unwrap().len(), 12, "{l}");
        }
        let n: u64 = text
            .split("dumped ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=64).contains(&n), "{text}");
        ok(&apcdb(&["check", "--open"], &path, b""));
        runs += 1;
    }
    let epoch = |p: &Path| {
        let out = ok(&apcdb(&["stats", "--json"], p, b""));
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        v["checkpoint_epoch"].as_u64().unwrap()
    };
    let e1 = epoch(&path);
    std::thread::sleep(Duration::from_millis(200));
    assert!(epoch(&path) > e1, "the writer was held up");

    // Stopped, the writer still has the store open (its locks held, its journal in use).
    // SAFETY: a signal to our own child, which has not been waited for.
    unsafe { libc::kill(writer.id() as i32, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_millis(100));
    let before = fingerprint(&path);
    ok(&apcdb(&["stats"], &path, b""));
    ok(&apcdb(&["dump"], &path, b""));
    ok(&apcdb(&["check", "--open"], &path, b""));
    assert_eq!(fingerprint(&path), before, "an inspection changed a file");
    let _ = writer.kill();
    writer.wait().unwrap();
    eprintln!("{runs} rounds of stats, dump and check during the writes");
    for (name, uid, gid, _) in owners(dir.path()) {
        assert_eq!((uid, gid), (NOBODY, NOGROUP), "{name} changed owner");
    }
}

/// PHP CLI workers running as the files' owner store in a loop (sync durability: their writes
/// sit in the journal between checkpoints) into a store of 20,000 entries, while root runs
/// `stats`, `dump` and `check --open`: each succeeds and sees the workers' journaled writes
/// (replayed in memory); stopped, the workers keep the store open and an inspection changes none
/// of its files. Skipped without root, `php` or the built extension.
#[test]
fn inspecting_a_store_php_workers_write() {
    let ext = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/libapcdb.so");
    if !is_root() || !ext.exists() || Command::new("php").arg("-v").output().is_err() {
        eprintln!("skipped: needs root, php and {}", ext.display());
        return;
    }
    let dir = nobody_dir();
    let path = dir.path().join("site.db");
    let s = Store::open(&path, Options::default().max_size(128 << 20)).unwrap();
    s.batch(|b| (0..20_000).for_each(|i| b.put(format!("static/{i}").as_bytes(), b"x")))
        .unwrap();
    drop(s);
    give_to_nobody(&path);
    let script = "$i = 0; while (true) { apc_store('php/' . ($i++ % 100), str_repeat('w', 64)); }";
    let workers = Children(
        (0..2)
            .map(|_| {
                Command::new("setpriv")
                    .args([
                        "--reuid=65534",
                        "--regid=65534",
                        "--clear-groups",
                        "php",
                        "-n",
                    ])
                    .arg(format!("-dextension={}", ext.display()))
                    .arg(format!("-dapcdb.file={}", path.display()))
                    .args(["-r", script])
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let count = |out: &str| -> u64 {
        out.split("dumped ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let started = Instant::now();
    let mut seen = 0;
    while started.elapsed() < Duration::from_secs(3) || seen <= 20_000 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the workers wrote nothing"
        );
        let stats = ok(&apcdb(&["stats"], &path, b""));
        // (Once the workers have written, they have the store open.)
        assert!(
            seen <= 20_000 || stats.contains("in use by other processes"),
            "{stats}"
        );
        seen = count(&ok(&apcdb(&["dump"], &path, b"")));
        assert!((20_000..=20_100).contains(&seen), "{seen}");
        let check = ok(&apcdb(&["check", "--open"], &path, b""));
        assert!(!check.contains("problem"), "{check}");
    }
    for w in &workers.0 {
        // SAFETY: signals to our own children, not yet waited for.
        unsafe { libc::kill(w.id() as i32, libc::SIGSTOP) };
    }
    std::thread::sleep(Duration::from_millis(100));
    let before = fingerprint(&path);
    let dump = ok(&apcdb(&["dump"], &path, b""));
    assert!(
        dump.contains("journal records replayed in memory"),
        "{dump}"
    );
    ok(&apcdb(&["stats"], &path, b""));
    ok(&apcdb(&["check", "--open"], &path, b""));
    assert_eq!(fingerprint(&path), before, "an inspection changed a file");
    drop(workers);
    for (name, uid, gid, _) in owners(dir.path()) {
        assert_eq!((uid, gid), (NOBODY, NOGROUP), "{name} changed owner");
    }
}

/// Child processes killed (and reaped) when the test ends, also when it fails.
struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// load, clear, resize and recover --replace, started as root, leave every file the owner's;
/// recover --replace keeps owner, group, mode and maximum size; a new store made by load in the
/// owner's directory is the owner's too.
#[test]
fn writing_commands_run_as_the_files_owner() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = nobody_dir();
    let path = crashed_store_of_nobody(dir.path());
    let all_nobodys = |why: &str| {
        for (name, uid, gid, _) in owners(dir.path()) {
            assert_eq!((uid, gid), (NOBODY, NOGROUP), "{name} after {why}");
        }
    };
    let line = b"{\"key\":\"bmV3\",\"value\":\"dg==\",\"expires_at_ms\":0}\n";
    ok(&apcdb(&["load"], &path, line));
    all_nobodys("load");
    assert!(Paths::new(&path).lock.exists());
    ok(&apcdb(&["resize", "--max-size", "96M"], &path, b""));
    all_nobodys("resize");

    // recover --replace: the new files are nobody's, 0600, with the 96 MiB limit.
    let new = dir.path().join("salvaged.db");
    let out = Command::new(env!("CARGO_BIN_EXE_apcdb"))
        .args(["recover", "--replace", "--out"])
        .arg(&new)
        .arg(&path)
        .output()
        .unwrap();
    ok(&out);
    all_nobodys("recover --replace");
    for p in Paths::new(&path).durable() {
        assert_eq!(std::fs::metadata(p).unwrap().mode() & 0o777, 0o600);
    }
    let stats = ok(&apcdb(&["stats", "--json"], &path, b""));
    let v: serde_json::Value = serde_json::from_str(stats.trim()).unwrap();
    assert_eq!(v["max_size"].as_u64(), Some(96 << 20), "{stats}");
    assert_eq!(v["entries"].as_u64(), Some(21), "{stats}");

    let clear = ok(&apcdb(&["clear"], &path, b""));
    assert!(clear.contains("21 entries removed"), "{clear}");
    all_nobodys("clear");
    let stats = ok(&apcdb(&["stats", "--json"], &path, b""));
    assert!(stats.contains("\"entries\":0"), "{stats}");

    // A new store, loaded into nobody's directory.
    let fresh = dir.path().join("fresh.db");
    ok(&apcdb(&["load"], &fresh, line));
    all_nobodys("load into a new store");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
}
