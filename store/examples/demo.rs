//! A tour of the crate: write and read in each durability mode, show what survives a reopen, and
//! print the store's counters. `cargo run --release -p apcdb --example demo [DIR]`

use apcdb::{Durability, Options, Store};
use std::time::{Duration, Instant};

fn main() -> Result<(), apcdb::Error> {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("apcdb-demo"));
    std::fs::create_dir_all(&dir).expect("create the demo directory");
    let n = 100_000u32;
    for (name, durability, writes) in [
        ("none", Durability::None, n),
        (
            "periodic(100ms)",
            Durability::Periodic(Duration::from_millis(100)),
            n,
        ),
        ("sync", Durability::Sync, 2_000),
    ] {
        let path = dir.join(format!("demo-{}.db", name.split('(').next().unwrap()));
        for suffix in ["", ".journal", ".lock"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let store = Store::open(&path, Options::default().durability(durability))?;
        let value = [b'v'; 150];
        let t = Instant::now();
        for i in 0..writes {
            store.put(format!("key-{i:08}").as_bytes(), &value)?;
        }
        let w = t.elapsed();
        let t = Instant::now();
        for i in 0..writes {
            assert!(store.get(format!("key-{i:08}").as_bytes())?.is_some());
        }
        let r = t.elapsed();
        println!(
            "{name:>16}: {writes} puts {:>9.0}/s ({:.2} µs each), gets {:>9.0}/s ({:.3} µs each)",
            writes as f64 / w.as_secs_f64(),
            w.as_secs_f64() * 1e6 / writes as f64,
            writes as f64 / r.as_secs_f64(),
            r.as_secs_f64() * 1e6 / writes as f64
        );
        drop(store);
        let t = Instant::now();
        let store = Store::open(&path, Options::default().durability(durability))?;
        let s = store.stats()?;
        println!(
            "{:>16}  reopened in {:.1} ms: {} entries, {} KiB used of a {} KiB file, {} checkpoints",
            "",
            t.elapsed().as_secs_f64() * 1e3,
            s.entries,
            s.used_bytes >> 10,
            s.file_size >> 10,
            s.checkpoints
        );
    }
    Ok(())
}
