//! The non-durable tail and what causes it: loads N keys (24-byte keys, 150-byte values), then
//! times every one of M random `None` overwrites with the checkpoint thread running, and prints
//! p50/p99/p99.9/max, puts per second, checkpoints, the writer thread's page faults per put,
//! bytes written back by the process, and paced puts (BENCHMARKS.md, "Pauses").
//!
//!     cargo run --release -p apcdb --example tail_probe -- [DIR] [KEYS=1000000] [PUTS=1500000]
use apcdb::{Durability, Options, Store};
use std::time::Instant;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
fn key(i: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    for j in 0..3 {
        k[j * 8..j * 8 + 8]
            .copy_from_slice(&splitmix(i.wrapping_mul(3).wrapping_add(j as u64)).to_le_bytes());
    }
    k
}
/// `getrusage(who)`.
fn usage(who: libc::c_int) -> libc::rusage {
    // SAFETY: rusage is plain data; getrusage only writes into the struct passed, which lives
    // across the call.
    unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut r);
        r
    }
}

/// Minor page faults of the calling thread.
fn tflt() -> u64 {
    usage(libc::RUSAGE_THREAD).ru_minflt as u64
}
/// The process's minor and major faults, user and system CPU seconds.
fn ru() -> (u64, u64, f64, f64) {
    let r = usage(libc::RUSAGE_SELF);
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (
        r.ru_minflt as u64,
        r.ru_majflt as u64,
        t(r.ru_utime),
        t(r.ru_stime),
    )
}
/// Bytes this process caused to be written to storage (its msyncs' write-back included).
fn wbytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .cloned()
        .unwrap_or("/var/tmp/apcdb-tail-probe".into());
    let nkeys: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let ops: u64 = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_500_000);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let opts = || {
        Options::default()
            .durability(Durability::None)
            .background_checkpoints(true)
            .max_size((nkeys * 1024).max(1 << 30))
    };
    let pool: Vec<[u8; 150]> = (0..256u64)
        .map(|i| {
            let mut v = [0u8; 150];
            for (j, b) in v.iter_mut().enumerate() {
                *b = splitmix(i * 1000 + j as u64) as u8;
            }
            v
        })
        .collect();
    {
        let s = Store::open(format!("{dir}/s.db"), opts()).unwrap();
        for i in 0..nkeys {
            s.put(&key(i), &pool[i as usize % 256]).unwrap();
        }
        drop(s);
    }
    let s = Store::open(format!("{dir}/s.db"), opts()).unwrap();
    let st0 = s.stats().unwrap();
    let mut lat: Vec<u32> = Vec::with_capacity(ops as usize);
    let (f0, m0, u0, sy0) = ru();
    let w0 = wbytes();
    let tf0 = tflt();
    let mut rng = 12345u64;
    let t = Instant::now();
    for _ in 0..ops {
        rng = splitmix(rng);
        let k = key(rng % nkeys);
        let v = &pool[(rng >> 32) as usize % 256];
        let t0 = Instant::now();
        s.put(&k, v).unwrap();
        lat.push(t0.elapsed().as_nanos().min(u32::MAX as u128) as u32);
    }
    let el = t.elapsed().as_secs_f64();
    let (f1, m1, u1, sy1) = ru();
    let w1 = wbytes();
    let tf1 = tflt();
    let st = s.stats().unwrap();
    lat.sort_unstable();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1e3;
    println!(
        "p50 {:.2}us p99 {:.1}us p99.9 {:.1}us max {:.2}ms | {:.0} puts/s | ckpts {} | writer flt/put {:.3} | minflt/put {:.3} majflt {} | user {:.1}s sys {:.1}s | wb {} MiB | paced {} overruns {} fullwaits {} | file {} MiB used {} MiB",
        p(0.5),
        p(0.99),
        p(0.999),
        lat[lat.len() - 1] as f64 / 1e6,
        ops as f64 / el,
        st.checkpoints - st0.checkpoints,
        (tf1 - tf0) as f64 / ops as f64,
        (f1 - f0) as f64 / ops as f64,
        m1 - m0,
        u1 - u0,
        sy1 - sy0,
        (w1 - w0) >> 20,
        st.paced_writes - st0.paced_writes,
        st.pace_overruns - st0.pace_overruns,
        st.full_half_waits - st0.full_half_waits,
        st.file_size >> 20,
        st.used_bytes >> 20,
    );
    drop(s);
}
