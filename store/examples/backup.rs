//! Hot backup: `Store::backup_to` copies a store while another thread keeps writing to it, and
//! the writer is stopped only while the index is copied. Fills a store (default 1,000,000 keys
//! of 24 bytes with 900-byte values: a 1 GiB data file), starts a writer doing random
//! non-durable overwrites with every put timed, takes a backup after 10 s, and prints the
//! backup's time, how long it held the write lock, the writer's worst put before, during and
//! after the backup (the engine's own checkpoints pause writers too), and the copy's check.
//!
//! `cargo run --release -p apcdb --example backup [N] [DIR] [background]`: with `background`,
//! checkpoints are flushed by the handle's thread (`Options::background_checkpoints`), so the
//! writer's worst put shows what the backup itself costs it rather than the flushes it runs.

use apcdb::{Durability, Options, Store};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VALUE: usize = 900;

fn key(i: u64) -> Vec<u8> {
    format!("key:{i:020}").into_bytes()
}

/// Times every put until `stop`; returns the count, and the worst put and the puts slower than
/// 10 ms before, during and after the backup (`phase` 0, 1, 2).
fn writer(
    store: &Store,
    n: u64,
    stop: &AtomicBool,
    phase: &AtomicU8,
) -> (u64, [Duration; 3], [u64; 3]) {
    let value = vec![b'w'; VALUE];
    let (mut worst, mut slow, mut puts) = ([Duration::ZERO; 3], [0u64; 3], 0u64);
    let mut x = 0x9e3779b97f4a7c15u64;
    while !stop.load(Relaxed) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = Instant::now();
        store.put(&key(x % n), &value).expect("put");
        let d = t.elapsed();
        let p = phase.load(Relaxed) as usize;
        worst[p] = worst[p].max(d);
        slow[p] += (d > Duration::from_millis(10)) as u64;
        puts += 1;
    }
    (puts, worst, slow)
}

fn main() -> Result<(), apcdb::Error> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().expect("N"));
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("apcdb-backup-example"));
    let background = args.next().as_deref() == Some("background");
    std::fs::create_dir_all(&dir).expect("create the directory");
    let (path, copy) = (dir.join("live.db"), dir.join("copy.db"));
    for p in [&path, &copy] {
        for suffix in ["", ".journal", ".lock"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
    }
    let opts = Options::default()
        .durability(Durability::None)
        .background_checkpoints(background)
        // Room for what the writer adds while the backup keeps freed blocks from reuse.
        .max_size((n * 4096).max(1 << 30))
        .index_slots(n * 2);
    let store = Arc::new(Store::open(&path, opts)?);
    let t = Instant::now();
    let value = vec![b'v'; VALUE];
    for start in (0..n).step_by(1000) {
        store.batch(|b| {
            for i in start..(start + 1000).min(n) {
                b.put(&key(i), &value);
            }
        })?;
    }
    store.checkpoint()?;
    let st = store.stats()?;
    println!(
        "loaded {n} keys in {:.1} s: data file {:.0} MiB",
        t.elapsed().as_secs_f64(),
        st.file_size as f64 / (1 << 20) as f64
    );

    let (stop, phase) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU8::new(0)));
    let w = {
        let (store, stop, phase) = (store.clone(), stop.clone(), phase.clone());
        std::thread::spawn(move || writer(&store, n, &stop, &phase))
    };
    std::thread::sleep(Duration::from_secs(10));
    phase.store(1, Relaxed);
    let t = Instant::now();
    let report = store.backup_to(&copy)?;
    let took = t.elapsed();
    phase.store(2, Relaxed);
    std::thread::sleep(Duration::from_secs(10));
    stop.store(true, Relaxed);
    let (puts, worst, slow) = w.join().expect("writer");
    println!(
        "backup: {} entries up to LSN {} in {:.2} s, {} attempt(s), write lock held at most {:?}",
        report.entries,
        report.lsn,
        took.as_secs_f64(),
        report.attempts,
        report.longest_lock
    );
    println!(
        "writer: {puts} puts in all; worst put in the 10 s before the backup {:?}, during it \
         {:?}, in the 10 s after it {:?}; puts slower than 10 ms: {} / {} / {}",
        worst[0], worst[1], worst[2], slow[0], slow[1], slow[2]
    );
    let check = apcdb::verify::check(&copy)?;
    println!(
        "copy: {} entries, {} problems ({})",
        check.entries,
        check.problems.len(),
        if check.problems.is_empty() {
            "clean"
        } else {
            "DAMAGED"
        }
    );
    Ok(())
}
