//! Compaction while another process writes: loads N keys (default 1,000,000; 24-byte keys,
//! 150-byte values), deletes every second one, then starts a second process that keeps the store
//! open and overwrites live keys at random, timing every put, and compacts from this process.
//! Prints the room the store takes on disk (`du`: data file, journal and lock file) before and
//! after, and the writer's worst put before, during and after the compaction.
//!
//! `cargo run --release -p apcdb --example compact_live [N] [DIR]`

use apcdb::{Durability, Options, Store};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn key(i: u64) -> Vec<u8> {
    format!("key:{i:020}").into_bytes()
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn opts(n: u64) -> Options {
    Options::default()
        .durability(Durability::None)
        .max_size((n * 1536).max(1 << 30))
        // The default journal of a store of the default size, as in the peers' size table of
        // BENCHMARKS.md (a journal sized from this `max_size` would be 92 MiB).
        .journal_size(16 << 20)
}

fn du(path: &Path) -> u64 {
    apcdb::Paths::new(path)
        .all()
        .iter()
        .map(|f| du_file(f))
        .sum()
}

fn du_file(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.blocks() * 512)
}

/// The other process: overwrites odd (live) keys at random until its stdin closes, then prints
/// every put slower than 1 ms as `slow START_NS DURATION_NS` and `done PUTS`.
fn writer(path: &Path, n: u64) -> Result<(), apcdb::Error> {
    let store = Store::open(path, opts(n))?;
    println!("ready");
    std::io::stdout().flush().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::stdin().read_line(&mut s);
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let (mut rng, mut puts, mut slow) = (0x2545f4914f6cdd1du64, 0u64, Vec::new());
    let value = [b'w'; 150];
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let k = key((rng % (n / 2)) * 2 + 1);
        let (at, t) = (unix_ns(), Instant::now());
        store.put(&k, &value)?;
        let took = t.elapsed();
        puts += 1;
        if took > Duration::from_millis(1) {
            slow.push((at, took.as_nanos() as u64));
        }
    }
    for (at, took) in slow {
        println!("slow {at} {took}");
    }
    println!("done {puts}");
    Ok(())
}

fn main() -> Result<(), apcdb::Error> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().expect("N"));
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("apcdb-compact-live"));
    let path = dir.join("live.db");
    if std::env::var_os("APCDB_EXAMPLE_WRITER").is_some() {
        return writer(&path, n);
    }
    std::fs::create_dir_all(&dir).expect("create the directory");
    for f in apcdb::Paths::new(&path).all() {
        let _ = std::fs::remove_file(f);
    }
    let store = Store::open(&path, opts(n))?;
    let value = [b'v'; 150];
    for start in (0..n).step_by(1000) {
        store.batch(|b| {
            for i in start..(start + 1000).min(n) {
                b.put(&key(i), &value);
            }
        })?;
    }
    for start in (0..n).step_by(1000) {
        store.batch(|b| {
            for i in (start..(start + 1000).min(n)).step_by(2) {
                b.delete(&key(i));
            }
        })?;
    }
    store.checkpoint()?;
    let before = du(&path);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([n.to_string(), dir.display().to_string()])
        .env("APCDB_EXAMPLE_WRITER", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the writer");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    std::thread::sleep(Duration::from_secs(5));
    let (c0, t) = (unix_ns(), Instant::now());
    let r = match store.compact() {
        Ok(r) => r,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let (c1, took) = (unix_ns(), t.elapsed());
    let after = du(&path);
    let files = apcdb::Paths::new(&path).all().map(du_file);
    std::thread::sleep(Duration::from_secs(5));
    drop(child.stdin.take());
    let (mut worst, mut puts) = ([0u64; 3], 0);
    for line in out.lines() {
        let line = line.unwrap();
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "slow" => {
                let (at, ns): (u64, u64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
                // A put that overlaps the compaction counts as during it.
                let w = if at + ns < c0 {
                    0
                } else if at <= c1 {
                    1
                } else {
                    2
                };
                worst[w] = worst[w].max(ns);
            }
            "done" => puts = f[1].parse().unwrap(),
            _ => {}
        }
    }
    child.wait().unwrap();
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let ms = |ns: u64| ns as f64 / 1e6;
    println!(
        "{n} keys loaded, every second one deleted: {:.1} MiB on disk (data file, journal, lock \
         file); compacted in {:.2} s with another process writing: {:.1} MiB; {} entries, {} \
         moved, heap end {:.1} MiB; write lock held at most {:.1} ms",
        mib(before),
        took.as_secs_f64(),
        mib(after),
        r.entries,
        r.moved,
        mib(r.heap_end),
        r.longest_lock.as_secs_f64() * 1e3
    );
    println!(
        "after: data file {:.1} MiB, journal {:.1} MiB, lock file {:.1} MiB; index copies moved: {}",
        mib(files[0]),
        mib(files[1]),
        mib(files[2]),
        r.index_copies_moved
    );
    println!(
        "writer: {puts} puts; worst put (over 1 ms) 5 s before / during / 5 s after: {:.1} / \
         {:.1} / {:.1} ms",
        ms(worst[0]),
        ms(worst[1]),
        ms(worst[2])
    );
    drop(store);
    let report = apcdb::verify::check(&path)?;
    println!(
        "apcdb check: {} problems, {} entries",
        report.problems.len(),
        report.entries
    );
    Ok(())
}
