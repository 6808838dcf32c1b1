//! Zero-copy reads: `Store::get_with` hands the value to a closure where it lies in the shared
//! mapping, checked against its checksum, without allocating. Loads N keys (default 1,000,000;
//! 24-byte keys, 150-byte values) and times random point reads through `get` (an owned copy)
//! and through `get_with` (a sum of the bytes, computed in place).
//!
//! `cargo run --release -p apcdb --example get_with [N] [DIR]`

use apcdb::{Durability, Options, Store};
use std::hint::black_box;
use std::time::Instant;

fn key(i: u64) -> [u8; 24] {
    let mut k = [b'k'; 24];
    k[4..].copy_from_slice(format!("{i:020}").as_bytes());
    k
}

fn main() -> Result<(), apcdb::Error> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().expect("N"));
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("apcdb-get-with-example"));
    std::fs::create_dir_all(&dir).expect("create the directory");
    let path = dir.join("get_with.db");
    for suffix in ["", ".journal", ".lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let opts = Options::default()
        .durability(Durability::None)
        .max_size((n * 1536).max(1 << 30));
    let store = Store::open(&path, opts)?;
    for start in (0..n).step_by(1000) {
        store.batch(|b| {
            for i in start..(start + 1000).min(n) {
                b.put(&key(i), &[(i % 251) as u8; 150]);
            }
        })?;
    }
    let reads = 2_000_000u64;
    let mut x = 0x2545f4914f6cdd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for round in 0..2 {
        let t = Instant::now();
        for _ in 0..reads {
            black_box(store.get(&key(next()))?);
        }
        let get = t.elapsed().as_nanos() as f64 / reads as f64;
        let t = Instant::now();
        for _ in 0..reads {
            let sum = store.get_with(&key(next()), |v| v.iter().map(|&b| b as u64).sum::<u64>());
            black_box(sum?);
        }
        let with = t.elapsed().as_nanos() as f64 / reads as f64;
        println!("round {round}: get {get:.0} ns/read, get_with {with:.0} ns/read ({n} keys)");
    }
    Ok(())
}
