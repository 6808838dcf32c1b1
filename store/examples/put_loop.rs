//! The fixed cost of one small non-durable put (the PHP `apc_store` case): 64 keys overwritten
//! in turn with a value of the given size, one process, `Durability::None`. Prints the process's
//! CPU time per put (median and best of the rounds, and the user part: a busy machine's other
//! work does not count) and the p99.9 and max of single timed puts (wall clock).
//! `cargo run --release -p apcdb --example put_loop [VALUE_BYTES] [ROUNDS] [DIR]`
use apcdb::{Durability, Options, Store};
use std::time::Instant;
fn main() {
    let mut args = std::env::args().skip(1);
    let len: usize = args.next().map_or(16, |a| a.parse().unwrap());
    let rounds: usize = args.next().map_or(5, |a| a.parse().unwrap());
    let dir = args.next().unwrap_or("/var/tmp/apcdb-put-loop".into());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let s = Store::open(
        format!("{dir}/p.db"),
        Options::default()
            .durability(Durability::None)
            .max_size(64 << 20),
    )
    .unwrap();
    let keys: Vec<String> = (0..64).map(|i| format!("key{i}")).collect();
    let v = vec![7u8; len];
    const N: usize = 200_000;
    let mut per_round = Vec::new();
    let mut user_round = Vec::new();
    for i in 0..N {
        s.put(keys[i & 63].as_bytes(), &v).unwrap();
    }
    for _ in 0..rounds {
        // CPU time of the process, so a busy machine's other work does not count.
        let (t, u) = (cpu_ns(), user_ns());
        for i in 0..N {
            s.put(keys[i & 63].as_bytes(), &v).unwrap();
        }
        per_round.push((cpu_ns() - t) as f64 / N as f64);
        user_round.push((user_ns() - u) as f64 / N as f64);
    }
    per_round.sort_by(f64::total_cmp);
    user_round.sort_by(f64::total_cmp);
    let mut each: Vec<u64> = (0..N)
        .map(|i| {
            let t = Instant::now();
            s.put(keys[i & 63].as_bytes(), &v).unwrap();
            t.elapsed().as_nanos() as u64
        })
        .collect();
    each.sort_unstable();
    let st = s.stats().unwrap();
    println!(
        "{len}-byte values: {:.0} CPU ns/put ({:.0} of it user time; medians of {rounds}; best {:.0}), p99.9 {} ns, max {} ns, {} checkpoints",
        per_round[rounds / 2],
        user_round[rounds / 2],
        per_round[0],
        each[N * 999 / 1000],
        each[N - 1],
        st.checkpoints
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// CPU time used by this process so far (user and system, every thread), in ns.
fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// User time of this process so far, in ns: the put's own code, without the kernel's page
/// faults and flushes.
fn user_ns() -> u64 {
    // SAFETY: an all-zero rusage is a valid value for the kernel to overwrite.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the call's duration.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_utime.tv_sec as u64 * 1_000_000_000 + ru.ru_utime.tv_usec as u64 * 1000
}
