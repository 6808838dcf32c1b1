//! Many expiring keys filling a store: one thread writes new keys (sessions, say) with a short
//! time to live, as fast as it can, into a store that their total would overflow many times;
//! every put is timed. What it shows is how the store finds room as they expire: the worst put
//! is the price of that (a walk of the whole index for expired entries, or a few slots swept
//! per commit, SPEC.md §2.4). Checkpoints are flushed by a background thread, so they are not
//! what is measured.
//!
//! `cargo run --release -p apcdb --example expiring [SECONDS] [DIR]`

use apcdb::{Durability, Options, Store};
use std::time::{Duration, Instant};

fn main() -> Result<(), apcdb::Error> {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().map_or(15, |a| a.parse().expect("SECONDS"));
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("apcdb-expiring-example"));
    std::fs::create_dir_all(&dir).expect("create the directory");
    let path = dir.join("sessions.db");
    for suffix in ["", ".journal", ".lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let max_size = 64u64 << 20;
    let opts = Options::default()
        .durability(Durability::None)
        .background_checkpoints(true)
        .max_size(max_size)
        .index_slots(1 << 16);
    let store = Store::open(&path, opts)?;
    let value = vec![b's'; 1000];
    let ttl = Duration::from_millis(100);
    let mut times: Vec<u32> = Vec::with_capacity(1 << 24);
    let (mut full, mut i, mut why) = (0u64, 0u64, String::new());
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        let key = format!("session:{i:016}");
        let t = Instant::now();
        match store.put_with_ttl(key.as_bytes(), &value, ttl) {
            Ok(()) => {}
            Err(e) if e.is_full() => {
                full += 1;
                why = e.to_string();
            }
            Err(e) => return Err(e),
        }
        times.push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
        i += 1;
    }
    times.sort_unstable();
    let q = |p: f64| times[((times.len() - 1) as f64 * p) as usize] as f64 / 1e3;
    let st = store.stats()?;
    println!(
        "{} puts of 1000-byte values with a 100 ms TTL in {secs} s into a {} MiB store: \
         {full} refused as full{}",
        times.len(),
        max_size >> 20,
        if full > 0 {
            format!(" (the last: {why})")
        } else {
            String::new()
        }
    );
    println!(
        "put µs: p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
        q(0.5),
        q(0.99),
        q(0.999),
        q(1.0)
    );
    println!(
        "at the end: {} entries in the index (expired ones included), data file {} MiB, {} \
         checkpoints",
        st.entries,
        st.file_size >> 20,
        st.checkpoints
    );
    Ok(())
}
