//! Random overwrites of 100,000 keys in `None` mode: throughput and the worst single-put latency,
//! which shows what checkpoints cost; once with the writer flushing each checkpoint after it
//! releases the lock, once with a background checkpoint thread.
//! `cargo run --release -p apcdb --example overwrite [DIR]`
use apcdb::{Durability, Options, Store};
use std::time::Instant;
fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or("/var/tmp/apcdb-ow".into());
    for background in [false, true] {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let s = Store::open(
            format!("{dir}/o.db"),
            Options::default()
                .durability(Durability::None)
                .background_checkpoints(background),
        )
        .unwrap();
        let v = [7u8; 150];
        let t = Instant::now();
        let mut worst = 0f64;
        for i in 0..1_000_000u64 {
            let k = (i.wrapping_mul(0x9e3779b97f4a7c15) >> 40) % 100_000;
            let t0 = Instant::now();
            s.put(format!("key{k:020}").as_bytes(), &v).unwrap();
            worst = worst.max(t0.elapsed().as_secs_f64());
        }
        let st = s.stats().unwrap();
        println!(
            "1M overwrites{}: {:.0}/s, worst {:.1} ms, checkpoints {}, file {} MiB",
            if background {
                ", background checkpoints"
            } else {
                ""
            },
            1e6 / t.elapsed().as_secs_f64(),
            worst * 1e3,
            st.checkpoints,
            st.file_size >> 20
        );
    }
}
