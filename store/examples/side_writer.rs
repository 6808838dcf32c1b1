//! Random overwrites of 100,000 keys in `None` mode by one thread, while a second thread writes
//! one key every 100 µs and times its puts: what a checkpoint run by another writer costs the
//! rest. `cargo run --release -p apcdb --example side_writer [DIR]`
use apcdb::{Durability, Options, Store};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or("/var/tmp/apcdb-side".into());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let s = Arc::new(
        Store::open(
            format!("{dir}/o.db"),
            Options::default().durability(Durability::None),
        )
        .unwrap(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let side = {
        let (s, done) = (s.clone(), done.clone());
        std::thread::spawn(move || {
            let mut lat = Vec::new();
            let mut i = 0u64;
            while !done.load(Relaxed) {
                let t0 = Instant::now();
                s.put(format!("side{}", i % 1000).as_bytes(), &[1u8; 150])
                    .unwrap();
                lat.push(t0.elapsed().as_secs_f64());
                i += 1;
                std::thread::sleep(Duration::from_micros(100));
            }
            lat
        })
    };
    let v = [7u8; 150];
    for i in 0..1_000_000u64 {
        let k = (i.wrapping_mul(0x9e3779b97f4a7c15) >> 40) % 100_000;
        s.put(format!("key{k:020}").as_bytes(), &v).unwrap();
    }
    done.store(true, Relaxed);
    let mut lat = side.join().unwrap();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize] * 1e3;
    println!(
        "side writer: {} puts, p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.2} ms, max {:.1} ms; checkpoints {}",
        lat.len(),
        q(0.5),
        q(0.99),
        q(0.999),
        q(1.0),
        s.stats().unwrap().checkpoints
    );
}
