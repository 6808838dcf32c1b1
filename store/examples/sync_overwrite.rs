//! Durable (Sync) random overwrites of a loaded store, each put timed: throughput, p50/p99/p99.9,
//! worst, and checkpoints; the same for the puts made while a checkpoint was in flight and for
//! the others, apart. The store (KEYS keys of 24 bytes, 150-byte values) is loaded in DIR
//! on the first run and reused after, so runs of two builds can alternate on stores of their own.
//! `APCDB_BG=1` gives the handle a background checkpoint thread (as the bench's handles have);
//! `APCDB_JOURNAL_MB=N` creates the store with a journal of N MiB (the bench's stores: 1 GiB
//! `max_size`, so a 64 MiB journal by default).
//! `cargo run --release -p apcdb --example sync_overwrite -- DIR KEYS SECS [sync|none]`
use apcdb::{Durability, Options, Store};
use std::time::{Duration, Instant};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let dir = a.get(1).cloned().unwrap_or("/var/tmp/apcdb-so".into());
    let keys: u64 = a.get(2).map_or(1_000_000, |s| s.parse().unwrap());
    let secs: u64 = a.get(3).map_or(20, |s| s.parse().unwrap());
    let mode = match a.get(4).map(String::as_str) {
        Some("none") => Durability::None,
        _ => Durability::Sync,
    };
    let path = format!("{dir}/s.db");
    let key = |k: u64| format!("key{k:021}");
    let v = [7u8; 150];
    if !std::path::Path::new(&path).exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let mut o = Options::default()
            .durability(Durability::None)
            .max_size(1 << 30);
        if let Some(mb) = std::env::var("APCDB_JOURNAL_MB")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
        {
            o = o.journal_size(mb << 20);
        }
        let s = Store::open(&path, o).unwrap();
        for k in 0..keys {
            s.put(key(k).as_bytes(), &v).unwrap();
        }
    }
    let opts = Options::default().durability(mode);
    let opts = opts.background_checkpoints(std::env::var_os("APCDB_BG").is_some());
    let s = Store::open(&path, opts).unwrap();
    let c0 = s.stats().unwrap().checkpoints;
    let mut lat: Vec<u32> = Vec::with_capacity(50_000_000);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let t = Instant::now();
    let end = t + Duration::from_secs(secs);
    // Puts made while a checkpoint was in flight (from the freeze, seen as the journal position
    // going back, to the completion, seen as the count moving), apart from the others.
    let (mut during, mut outside) = (Vec::new(), Vec::new());
    let st = s.stats().unwrap();
    let (mut pos, mut done, mut in_flight) = (st.journal_used, st.checkpoints, false);
    while Instant::now() < end {
        for _ in 0..16 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let t0 = Instant::now();
            s.put(key(x % keys).as_bytes(), &v).unwrap();
            let l = t0.elapsed().as_nanos().min(u32::MAX as u128) as u32;
            lat.push(l);
            let st = s.stats().unwrap();
            in_flight = (in_flight || st.journal_used < pos) && st.checkpoints == done;
            (pos, done) = (st.journal_used, st.checkpoints);
            if in_flight {
                during.push(l)
            } else {
                outside.push(l)
            }
        }
    }
    for (what, l) in [("in flight", &mut during), ("outside", &mut outside)] {
        l.sort_unstable();
        if let Some(&m) = l.last() {
            let q = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)] as f64 / 1e3;
            println!(
                "  {what}: {} puts  p50 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} ms",
                l.len(),
                q(0.5),
                q(0.99),
                q(0.999),
                m as f64 / 1e6
            );
        }
    }
    let el = t.elapsed().as_secs_f64();
    let ck = s.stats().unwrap().checkpoints - c0;
    lat.sort_unstable();
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1e3;
    println!(
        "{} puts/s  p50 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} ms  checkpoints {}  puts {}",
        (lat.len() as f64 / el) as u64,
        q(0.5),
        q(0.99),
        q(0.999),
        *lat.last().unwrap() as f64 / 1e6,
        ck,
        lat.len()
    );
}
