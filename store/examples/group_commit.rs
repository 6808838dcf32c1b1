//! Durable (Sync) write throughput with 1, 4 and 16 writer threads, against the raw fdatasync
//! rate measured in the same run. `cargo run --release -p apcdb --example group_commit [DIR]`
use apcdb::{Options, Store};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

fn main() {
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or("/var/tmp/apcdb-gc".into()),
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let run = Duration::from_secs(3);
    // Raw rate: overwrite 4 KiB of a preallocated file and fdatasync, for `run`.
    let f = std::fs::File::create(dir.join("raw")).unwrap();
    f.write_all_at(&[0; 1 << 20], 0).unwrap();
    f.sync_all().unwrap();
    let (t, mut n) = (Instant::now(), 0u64);
    while t.elapsed() < run {
        f.write_all_at(&[n as u8; 4096], (n % 256) * 4096).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    let raw = n as f64 / t.elapsed().as_secs_f64();
    println!("raw fdatasync: {raw:.0}/s");
    for threads in [1, 4, 16] {
        let store = Store::open(dir.join(format!("gc{threads}.db")), Options::default()).unwrap();
        let t = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|w| {
                    let store = &store;
                    s.spawn(move || {
                        let mut n = 0u64;
                        while t.elapsed() < run {
                            store
                                .put(format!("w{w}-{n}").as_bytes(), &[7u8; 150])
                                .unwrap();
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        let rate = total as f64 / t.elapsed().as_secs_f64();
        println!(
            "{threads:>2} writers: {rate:.0} durable writes/s = {:.2}x the raw fdatasync rate",
            rate / raw
        );
    }
}
