//! What `Options::journal_size` trades (SPEC.md §3): non-durable overwrite throughput (checkpoints
//! included) against the time to reopen after a writer was killed with a full journal.
//!
//! cargo run --release -p apcdb --example journal_trade -- [KEYS] [JOURNAL_MIB...]
//!
//! For each journal size: load KEYS keys (24-byte keys, 150-byte values), time KEYS random
//! overwrites (`Durability::None`), close; then a child process overwrites keys until the journal
//! is 85 % full, or 70 % of a half (just short of the checkpoint frozen at three quarters of it),
//! and aborts (no close, like `kill -9`); then this process opens the store and reads one key,
//! timed. Also the open after a clean close, and after a writer that says when its journal is as
//! full and keeps writing is sent SIGKILL at once (so the kill usually lands inside a put, with
//! the write lock held).

use apcdb::{Durability, Options, Store};
use std::time::Instant;

fn key(i: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5555;
    for c in k.chunks_mut(8) {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        c.copy_from_slice(&x.to_le_bytes());
    }
    k
}

fn opts(journal: u64) -> Options {
    Options::default()
        .durability(Durability::None)
        .max_size(4 << 30)
        .journal_size(journal)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--writer") {
        // The child: overwrite until the journal is 85 % full (the early checkpoint starts at 7/8),
        // then die without closing.
        let path = &args[2];
        let keys: u64 = args[3].parse().unwrap();
        let store = Store::open(path, Options::default().durability(Durability::None)).unwrap();
        let mut i = 7u64;
        let checkpoints = store.stats().unwrap().checkpoints;
        loop {
            i = i.wrapping_mul(6364136223846793005).wrapping_add(1);
            store.put(&key((i >> 20) % keys), &[b'w'; 150]).unwrap();
            let s = store.stats().unwrap();
            // Each record counts for at least 256 journal bytes (SPEC.md §3): with records this
            // small the journal is full by count before it is by bytes.
            let fill = s.journal_used.max(s.journal_records * 256);
            // A large journal of small records may never fill: the list of blocks waiting for a
            // checkpoint (262,144) fills first and checkpoints. Stop there too, so the run ends
            // (its row then shows next to nothing replayed). With checkpoints flushed in the
            // background the journal rarely holds more than a half, frozen at three quarters
            // full: stop just short of that (70 % of a half) too.
            if fill * 20 >= s.journal_size * 17
                || fill * 100 >= s.journal_size / 2 * 70
                || s.checkpoints > checkpoints
            {
                std::process::abort();
            }
        }
    }
    if args.get(1).map(String::as_str) == Some("--writer-killed") {
        // The child killed mid-write: says when the journal is 80 % full, then goes on writing
        // until the parent's SIGKILL lands.
        let path = &args[2];
        let keys: u64 = args[3].parse().unwrap();
        let store = Store::open(path, Options::default().durability(Durability::None)).unwrap();
        let mut i = 11u64;
        let mut said = false;
        let checkpoints = store.stats().unwrap().checkpoints;
        loop {
            i = i.wrapping_mul(6364136223846793005).wrapping_add(1);
            store.put(&key((i >> 20) % keys), &[b'k'; 150]).unwrap();
            if !said {
                // As the aborting writer: full by fill, or a checkpoint just completed, which
                // happens when the half being written is full.
                let s = store.stats().unwrap();
                let fill = s.journal_used.max(s.journal_records * 256);
                if fill * 5 >= s.journal_size * 4
                    || fill * 100 >= s.journal_size / 2 * 70
                    || s.checkpoints > checkpoints
                {
                    println!("full");
                    said = true;
                }
            }
        }
    }
    if args.get(1).map(String::as_str) == Some("--open") {
        // Times one open of a store left by a crashed writer (kept with APCDB_KEEP_CRASHED=DIR),
        // for profiling recovery on the same files again and again.
        let t = Instant::now();
        let store = Store::open(&args[2], opts(16 << 20)).unwrap();
        store.get(&key(1)).unwrap();
        println!(
            "open {:.1} ms, {} records replayed",
            t.elapsed().as_secs_f64() * 1e3,
            store.stats().unwrap().recovered_records
        );
        return;
    }
    let keys: u64 = args.get(1).map_or(1_000_000, |s| s.parse().unwrap());
    let sizes: Vec<u64> = if args.len() > 2 {
        args[2..]
            .iter()
            .map(|s| s.parse::<u64>().unwrap() << 20)
            .collect()
    } else {
        vec![4 << 20, 16 << 20, 64 << 20]
    };
    println!("| journal | overwrites/s (None) | open after clean close | open after kill -9, full journal | records replayed | open after SIGKILL mid-write | records replayed |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for journal in sizes {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path, opts(journal).index_slots(keys * 2)).unwrap();
        for chunk in 0..keys.div_ceil(1000) {
            store
                .batch(|b| {
                    for i in chunk * 1000..((chunk + 1) * 1000).min(keys) {
                        b.put(&key(i), &[b'v'; 150]);
                    }
                })
                .unwrap();
        }
        store.checkpoint().unwrap();
        let t = Instant::now();
        let mut x = 1u64;
        for _ in 0..keys {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            store.put(&key((x >> 20) % keys), &[b'o'; 150]).unwrap();
        }
        let rate = keys as f64 / t.elapsed().as_secs_f64();
        drop(store);

        let t = Instant::now();
        let store = Store::open(&path, opts(journal)).unwrap();
        store.get(&key(1)).unwrap();
        let clean = t.elapsed();
        drop(store);

        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--writer")
            .arg(&path)
            .arg(keys.to_string())
            .status()
            .unwrap();
        assert!(!status.success());
        if let Some(keep) = std::env::var_os("APCDB_KEEP_CRASHED") {
            for f in std::fs::read_dir(dir.path()).unwrap() {
                let f = f.unwrap();
                std::fs::copy(f.path(), std::path::Path::new(&keep).join(f.file_name())).unwrap();
            }
        }
        let t = Instant::now();
        let store = Store::open(&path, opts(journal)).unwrap();
        store.get(&key(1)).unwrap();
        let crashed = t.elapsed();
        let replayed = store.stats().unwrap().recovered_records;
        drop(store);

        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--writer-killed")
            .arg(&path)
            .arg(keys.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "full");
        child.kill().unwrap();
        child.wait().unwrap();
        let t = Instant::now();
        let store = Store::open(&path, opts(journal)).unwrap();
        store.get(&key(1)).unwrap();
        let killed = t.elapsed();
        let killed_replayed = if store.recovered_at_open() {
            store.stats().unwrap().recovered_records
        } else {
            0
        };
        println!(
            "| {} MiB | {:.0} | {:.2} ms | {:.1} ms | {} | {:.1} ms | {} |",
            journal >> 20,
            rate,
            clean.as_secs_f64() * 1e3,
            crashed.as_secs_f64() * 1e3,
            replayed,
            killed.as_secs_f64() * 1e3,
            killed_replayed
        );
    }
}
