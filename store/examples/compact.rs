//! Compaction: after many deletes, `Store::compact` gives the room of the deleted entries back to
//! the disk while the store stays open (other processes could keep using it): the entries in the
//! heap's tail move down into the holes, and the tail's disk blocks are released. Loads N keys
//! (default 1,000,000; 24-byte keys, 150-byte values), deletes every second one, and prints the
//! space the data file and journal take on disk before and after.
//!
//! `cargo run --release -p apcdb --example compact [N] [DIR]`

use apcdb::{Durability, Options, Store};
use std::time::Instant;

fn key(i: u64) -> Vec<u8> {
    format!("key:{i:020}").into_bytes()
}

fn main() -> Result<(), apcdb::Error> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().expect("N"));
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("apcdb-compact-example"));
    std::fs::create_dir_all(&dir).expect("create the directory");
    let path = dir.join("compact.db");
    for suffix in ["", ".journal", ".lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let opts = || {
        Options::default()
            .durability(Durability::None)
            .max_size((n * 1536).max(1 << 30))
    };
    let store = Store::open(&path, opts())?;
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
    let t = Instant::now();
    let r = store.compact()?;
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    println!(
        "{n} keys loaded, every second one deleted: {:.1} MiB on disk (data file + journal); \
         compacted in {:.2} s to {:.1} MiB, {} entries ({} moved; writers waited at most {} ms)",
        mib(r.bytes_before),
        t.elapsed().as_secs_f64(),
        mib(r.bytes_after),
        r.entries,
        r.moved,
        r.longest_lock.as_millis()
    );
    let store = Store::open(&path, opts())?;
    assert_eq!(store.get(&key(1))?.as_deref(), Some(&value[..]));
    assert_eq!(store.get(&key(0))?, None);
    Ok(())
}
