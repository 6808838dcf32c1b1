//! Streaming scans: `Store::scan` walks every entry holding one chunk at a time, so a scan of a
//! large store needs little memory. Loads N keys (default 1,000,000; 24-byte keys, 150-byte
//! values), then scans them all and prints the time and the most heap the scan held, beside
//! `scan_prefix`, which collects everything.
//!
//! `cargo run --release -p apcdb --example scan [N] [DIR]`

use apcdb::{Durability, Options, Store};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::Instant;

/// The system allocator, counting live bytes and their peak (what the process holds on its
/// heap; the store's data are in the file mapping, which is not heap).
struct Peak;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; the counters are atomics.
unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size() as isize, Relaxed) + l.size() as isize;
        PEAK.fetch_max(now, Relaxed);
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Relaxed);
        // SAFETY: `p` came from `System` through `alloc` above, with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Peak = Peak;

/// Runs `f` and returns its result with the heap it held at most beyond what was live before.
fn held<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let r = f();
    (r, (PEAK.load(Relaxed) - base) as f64 / (1 << 20) as f64)
}

fn main() -> Result<(), apcdb::Error> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().expect("N"));
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("apcdb-scan-example"));
    std::fs::create_dir_all(&dir).expect("create the directory");
    let path = dir.join("scan.db");
    for suffix in ["", ".journal", ".lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let opts = Options::default()
        .durability(Durability::None)
        .max_size((n * 1536).max(1 << 30));
    let store = Store::open(&path, opts)?;
    let value = [b'v'; 150];
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        store.batch(|b| {
            for i in chunk {
                b.put(format!("key:{i:020}").as_bytes(), &value);
            }
        })?;
    }

    let t = Instant::now();
    let ((count, bytes), peak) = held(|| {
        let (mut count, mut bytes) = (0u64, 0u64);
        for item in store.scan(b"key:") {
            let (_key, entry) = item.expect("scan");
            count += 1;
            bytes += entry.value.len() as u64;
        }
        (count, bytes)
    });
    println!(
        "scan:        {count} entries, {:.1} MiB of values in {:.2} s; heap held at most {peak:.2} MiB",
        bytes as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64()
    );
    assert_eq!(count, n);

    let t = Instant::now();
    let (all, peak) = held(|| store.scan_prefix(b"key:"));
    println!(
        "scan_prefix: {} entries in {:.2} s; heap held at most {peak:.2} MiB",
        all?.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
