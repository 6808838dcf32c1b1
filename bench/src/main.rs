//! apcdb-bench: apcdb against LMDB (heed), redb, SQLite (rusqlite) and fjall, side by side in one
//! run, on real files with real fsync. See BENCHMARKS.md for the workloads, settings and results.
//!
//! cargo run --release -p apcdb-bench -- [--smoke] [--keys N] [--rounds R] [--only NAME[,NAME]]
//!     [--duration-ms MS] [--dir DIR] [--out FILE] [--keep]
//!
//! Multi-process workloads re-execute this binary with `--child ROLE ...`; the parent starts all
//! children, waits until each has opened the store and warmed up, then releases them together.

mod engines;
mod pauses;
mod report;

use engines::{config_label, open, Engine, Family, Handle, Mode, OpenArgs, Res, FAMILIES};
use pauses::{pause_targets, pauses_round, tail_cap, TAIL_MIN_CHECKPOINTS};
use report::{fmt, fmt_ns, thousands, verdict, Metric, Section, Unit};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

const VALUE_LEN: usize = 150;
const KEY_LEN: usize = 24;
const BATCH: usize = 1000;
const WARM_CAP: Duration = Duration::from_secs(1);
/// Payload the kill -9 writer of a peer pushes before the parent kills it, when apcdb's default
/// journal size cannot be read (the run normally uses that size, so every engine has about the
/// same amount of unfolded log to deal with at reopen).
const PEER_KILL_BYTES: u64 = 16 << 20;

// ---------------------------------------------------------------------------------------------
// Deterministic data: parent and children derive the same keys from their index.

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Key `i`: 24 random-looking bytes, so keys arrive in random order for every engine.
fn key(i: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    for j in 0..3 {
        k[j * 8..j * 8 + 8]
            .copy_from_slice(&splitmix(i.wrapping_mul(3).wrapping_add(j as u64)).to_le_bytes());
    }
    k
}

/// A pool of random 150-byte values; writers pick from it so value generation costs nothing.
fn value_pool() -> Vec<[u8; VALUE_LEN]> {
    (0..256u64)
        .map(|i| {
            let mut v = [0u8; VALUE_LEN];
            for (j, b) in v.iter_mut().enumerate() {
                *b = splitmix(i * 1000 + j as u64) as u8;
            }
            v
        })
        .collect()
}

struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(splitmix(seed) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

// ---------------------------------------------------------------------------------------------
// The op loop shared by threads and child processes.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
    /// 90 % reads, 10 % writes.
    Mixed,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Write => "write",
            Kind::Mixed => "mixed",
        }
    }
    fn from_key(s: &str) -> Option<Kind> {
        [Kind::Read, Kind::Write, Kind::Mixed]
            .into_iter()
            .find(|k| k.key() == s)
    }
}

#[derive(Default)]
struct Outcome {
    ops: u64,
    elapsed: Duration,
    /// Per-op latencies in ns (reads only).
    lat: Vec<u32>,
    misses: u64,
}

/// Run `kind` ops on random existing keys until `dur` has passed. One clock read per op: the
/// latency of an op is the time since the previous op ended, which includes a few ns of loop and
/// random-number overhead, the same for every engine.
fn op_loop(h: &mut dyn Handle, kind: Kind, dur: Duration, nkeys: u64, seed: u64) -> Res<Outcome> {
    let pool = value_pool();
    let mut rng = Rng::new(seed);
    let mut o = Outcome::default();
    if kind == Kind::Read {
        o.lat.reserve(1 << 20);
    }
    let start = Instant::now();
    let deadline = start + dur;
    let mut prev = start;
    loop {
        let r = rng.next();
        let k = key(r % nkeys);
        let write = match kind {
            Kind::Read => false,
            Kind::Write => true,
            Kind::Mixed => (r >> 40).is_multiple_of(10),
        };
        if write {
            h.put(&k, &pool[(r >> 32) as usize % pool.len()])?;
        } else if !h.get(&k)? {
            o.misses += 1;
        }
        o.ops += 1;
        let now = Instant::now();
        if kind == Kind::Read {
            o.lat
                .push((now - prev).as_nanos().min(u32::MAX as u128) as u32);
        }
        prev = now;
        if now >= deadline {
            break;
        }
    }
    o.elapsed = prev - start;
    Ok(o)
}

/// Read every key once, in index order (random order in key space), so the timed reads find the
/// data in the page cache and, for the mmap-based stores, the pages already mapped in this
/// process. Capped at `cap` so the slowest engines do not dominate the run; they are bound by
/// their own per-read work rather than by page faults.
fn warm_up(h: &mut dyn Handle, nkeys: u64, cap: Duration) -> Res<()> {
    let t0 = Instant::now();
    for i in 0..nkeys {
        h.get(&key(i))?;
        if i % 1024 == 0 && t0.elapsed() > cap {
            break;
        }
    }
    Ok(())
}

/// Latency summary: (mean, p50, p99) in ns.
fn summarize(lat: &mut [u32]) -> (f64, f64, f64) {
    if lat.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = lat.iter().map(|&x| x as f64).sum::<f64>() / lat.len() as f64;
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64;
    (mean, pct(0.50), pct(0.99))
}

/// `threads` threads on one engine, released together by a barrier.
fn run_threads(
    eng: &dyn Engine,
    threads: usize,
    kind: Kind,
    dur: Duration,
    nkeys: u64,
) -> Res<Outcome> {
    let barrier = Barrier::new(threads);
    let results: Vec<Res<Outcome>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut h = eng.handle()?;
                    barrier.wait();
                    op_loop(&mut *h, kind, dur, nkeys, 1 + t as u64 * 7919)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect()
    });
    let mut total = Outcome::default();
    for r in results {
        let o = r?;
        total.ops += o.ops;
        total.misses += o.misses;
        total.elapsed = total.elapsed.max(o.elapsed);
        total.lat.extend(o.lat);
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// Child processes

struct ChildSpec<'a> {
    role: &'a str,
    fam: Family,
    mode: Mode,
    dir: &'a Path,
    keys: u64,
    dur: Duration,
    seed: u64,
    multi_process: bool,
    kill_bytes: u64,
}

fn spawn_child(s: &ChildSpec) -> Res<(Child, ChildStdin, BufReader<ChildStdout>)> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut c = Command::new(exe)
        .args([
            "--child",
            s.role,
            "--family",
            s.fam.key(),
            "--mode",
            s.mode.key(),
        ])
        .arg("--dir")
        .arg(s.dir)
        .args([
            "--keys",
            &s.keys.to_string(),
            "--duration-ms",
            &s.dur.as_millis().to_string(),
        ])
        .args(["--kill-bytes", &s.kill_bytes.to_string()])
        .args([
            "--seed",
            &s.seed.to_string(),
            "--multi",
            if s.multi_process { "1" } else { "0" },
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn child: {e}"))?;
    let stdin = c.stdin.take().unwrap();
    let stdout = BufReader::new(c.stdout.take().unwrap());
    Ok((c, stdin, stdout))
}

fn read_line(r: &mut BufReader<ChildStdout>, what: &str) -> Res<String> {
    let mut line = String::new();
    r.read_line(&mut line)
        .map_err(|e| format!("child {what}: {e}"))?;
    if line.is_empty() {
        return Err(format!("child exited before '{what}'"));
    }
    Ok(line.trim().to_string())
}

/// Per-child results of a timed workload: ops, elapsed ns, mean, p50, p99, misses.
struct ChildResult {
    ops: u64,
    elapsed_ns: f64,
    mean: f64,
    p50: f64,
    p99: f64,
    misses: u64,
}

/// Start `n` children running `role`, release them together, collect their results.
fn run_children(n: usize, spec: &ChildSpec) -> Res<Vec<ChildResult>> {
    let mut kids = Vec::new();
    let mut ready = Ok(());
    for i in 0..n {
        let s = ChildSpec {
            seed: spec.seed + i as u64 * 104729,
            ..*spec
        };
        match spawn_child(&s) {
            Ok(k) => kids.push(k),
            Err(e) => {
                ready = Err(e);
                break;
            }
        }
    }
    if ready.is_ok() {
        for (_, _, out) in kids.iter_mut() {
            if let Err(e) = read_line(out, "ready").and_then(|l| {
                if l == "ready" {
                    Ok(())
                } else {
                    Err(format!("child said {l:?}"))
                }
            }) {
                ready = Err(e);
                break;
            }
        }
    }
    if let Err(e) = ready {
        for (mut c, _, _) in kids {
            let _ = c.kill();
            let _ = c.wait();
        }
        return Err(e);
    }
    for (_, stdin, _) in kids.iter_mut() {
        let _ = stdin.write_all(b"go\n");
        let _ = stdin.flush();
    }
    let mut results = Vec::new();
    let mut err = None;
    for (mut c, _, mut out) in kids {
        match read_line(&mut out, "done") {
            Ok(l) => {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() == 7 && f[0] == "done" {
                    let p = |i: usize| f[i].parse::<f64>().unwrap_or(f64::NAN);
                    results.push(ChildResult {
                        ops: p(1) as u64,
                        elapsed_ns: p(2),
                        mean: p(3),
                        p50: p(4),
                        p99: p(5),
                        misses: p(6) as u64,
                    });
                } else {
                    err = Some(format!("child said {l:?}"));
                }
            }
            Err(e) => err = Some(e),
        }
        let _ = c.wait();
    }
    match err {
        Some(e) => Err(e),
        None => Ok(results),
    }
}

fn child_main(args: &Args) -> Res<()> {
    let role = args.child.as_deref().unwrap();
    let fam = args.family.ok_or("child without --family")?;
    let mode = args.mode.ok_or("child without --mode")?;
    let dir = args.dir.clone();
    let open_args = |mode| OpenArgs {
        dir: &dir,
        mode,
        keys: args.keys,
        multi_process: args.multi,
        journal_size: None,
    };
    let mut stdout = std::io::stdout();
    match role {
        "open" => {
            // Time to a usable store: open (including any recovery) plus one read.
            let t0 = Instant::now();
            let eng = open(fam, &open_args(mode))?;
            let found = eng.handle()?.get(&key(1))?;
            let ns = t0.elapsed().as_nanos();
            let note = eng.open_note();
            // Answer before closing: the parent times spawn-to-answer as well.
            writeln!(stdout, "done {ns} {} {note}", found as u8).map_err(|e| e.to_string())?;
            stdout.flush().map_err(|e| e.to_string())?;
            eng.close();
        }
        "killwriter" => {
            // Write until the log holds about a journal's worth of unfolded writes, say so, and
            // keep writing until the parent's SIGKILL lands in the middle of a write.
            let eng = open(fam, &open_args(mode))?;
            let mut h = eng.handle()?;
            let pool = value_pool();
            let mut rng = Rng::new(args.seed);
            let mut written: u64 = 0;
            let mut said = false;
            let mut best = (0u64, 0u64);
            let stop = Instant::now() + Duration::from_secs(120);
            while Instant::now() < stop {
                for _ in 0..64 {
                    let r = rng.next();
                    h.put(&key(r % args.keys), &pool[(r >> 32) as usize % pool.len()])?;
                    written += (KEY_LEN + VALUE_LEN) as u64;
                }
                if !said {
                    let full = match eng.journal_fill() {
                        Some((used, size)) => {
                            best = best.max((used, size));
                            // A journal that checkpoints before 90 % still counts as full once
                            // two journals' worth has gone through it.
                            used * 10 >= size * 9 || written >= 2 * size.max(1)
                        }
                        None => written >= args.kill_bytes,
                    };
                    if full {
                        let (used, size) = eng.journal_fill().unwrap_or(best);
                        writeln!(stdout, "full {used} {size} {written}")
                            .map_err(|e| e.to_string())?;
                        stdout.flush().map_err(|e| e.to_string())?;
                        said = true;
                    }
                }
            }
            return Err("kill writer was never killed".into());
        }
        _ => {
            let kind = Kind::from_key(role).ok_or_else(|| format!("unknown child role {role}"))?;
            let eng = open(fam, &open_args(mode))?;
            let mut h = eng.handle()?;
            if kind != Kind::Write {
                warm_up(&mut *h, args.keys, WARM_CAP)?;
            }
            writeln!(stdout, "ready").map_err(|e| e.to_string())?;
            stdout.flush().map_err(|e| e.to_string())?;
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            let mut o = op_loop(&mut *h, kind, args.duration, args.keys, args.seed)?;
            let (mean, p50, p99) = summarize(&mut o.lat);
            writeln!(
                stdout,
                "done {} {} {mean} {p50} {p99} {}",
                o.ops,
                o.elapsed.as_nanos(),
                o.misses
            )
            .map_err(|e| e.to_string())?;
            drop(h);
            eng.close();
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Measurements

/// Raw fdatasync rate: overwrite 4 KiB blocks of a preallocated 1 MiB file, fdatasync after each.
fn fsync_rate(dir: &Path, dur: Duration) -> Res<f64> {
    let path = dir.join("fsync-probe");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| format!("fsync probe: {e}"))?;
    let block = [0xA5u8; 4096];
    for i in 0..256u64 {
        f.write_all_at(&block, i * 4096)
            .map_err(|e| e.to_string())?;
    }
    f.sync_all().map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < dur {
        f.write_all_at(&block, (n % 256) * 4096)
            .map_err(|e| e.to_string())?;
        f.sync_data().map_err(|e| e.to_string())?;
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    Ok(rate)
}

/// (bytes allocated on disk, apparent bytes) of every file under `dir`.
fn dir_size(dir: &Path) -> (u64, u64) {
    let mut disk = 0;
    let mut apparent = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(m) = e.metadata() {
                if m.is_dir() {
                    let (d, a) = dir_size(&e.path());
                    disk += d;
                    apparent += a;
                } else {
                    disk += m.blocks() * 512;
                    apparent += m.len();
                }
            }
        }
    }
    (disk, apparent)
}

/// Write keys[range] (or delete them) in batches of BATCH, then make it all durable. Returns keys/s.
fn batched(eng: &dyn Engine, from: u64, to: u64, step: u64, delete: bool) -> Res<(f64, Duration)> {
    let pool = value_pool();
    let t0 = Instant::now();
    let mut h = eng.handle()?;
    let mut n = 0u64;
    let idx: Vec<u64> = (from..to).step_by(step as usize).collect();
    for chunk in idx.chunks(BATCH) {
        let ks: Vec<[u8; KEY_LEN]> = chunk.iter().map(|&i| key(i)).collect();
        if delete {
            let dels: Vec<&[u8]> = ks.iter().map(|k| &k[..]).collect();
            h.batch(&[], &dels)?;
        } else {
            let puts: Vec<(&[u8], &[u8])> = ks
                .iter()
                .zip(chunk)
                .map(|(k, &i)| (&k[..], &pool[i as usize % pool.len()][..]))
                .collect();
            h.batch(&puts, &[])?;
        }
        n += chunk.len() as u64;
    }
    drop(h);
    eng.sync()?;
    let el = t0.elapsed();
    Ok((n as f64 / el.as_secs_f64(), el))
}

// ---------------------------------------------------------------------------------------------
// Sections

const FSYNC_ROW: &str = "raw fdatasync (4 KiB overwrite), just before each engine";

const S_READ: usize = 0;
const S_DUR: usize = 1;
const S_ND: usize = 2;
const S_BATCH: usize = 3;
const S_LOAD: usize = 4;
const S_DEL: usize = 5;
const S_MIXED: usize = 6;
const S_OPEN: usize = 7;
const S_SIZE: usize = 8;
const S_TAIL: usize = 9;
const S_FOPEN: usize = 10;

fn sections(cfg: &Args) -> Vec<Section> {
    let m = |name, unit| Metric { name, unit };
    let n = thousands(cfg.keys);
    let mut v = vec![
        Section::new(
            "reads",
            "Point reads, warm",
            vec![
                m("mean time/op", Unit::Nanos),
                m("p50", Unit::Nanos),
                m("p99", Unit::Nanos),
                m("total ops/s", Unit::Rate),
            ],
        ),
        Section::new(
            "durable",
            "Durable single-key writes (each write survives power loss when it returns)",
            vec![m("writes/s", Unit::Rate), m("× raw fdatasync rate", Unit::Times)],
        ),
        Section::new(
            "nondurable",
            "Non-durable single-key writes (survive kill -9 of the writer, not power loss)",
            vec![m("writes/s", Unit::Rate)],
        ),
        Section::new(
            "batch",
            "Batched writes, 1,000 random overwrites per batch, each batch durable",
            vec![m("keys/s", Unit::Rate), m("batches/s", Unit::Rate)],
        ),
        Section::new(
            "load",
            "Bulk load into an empty store (1,000 keys per batch, non-durable, one durable sync at the end)",
            vec![m("keys/s", Unit::Rate), m("total time", Unit::Nanos)],
        ),
        Section::new(
            "delete",
            "Deletes: every second key, 1,000 per batch, non-durable, one durable sync at the end",
            vec![m("keys/s", Unit::Rate), m("total time", Unit::Nanos)],
        ),
        Section::new(
            "mixed",
            "Mixed 90 % reads / 10 % writes, 4 processes, one thread each",
            vec![m("total ops/s", Unit::Rate)],
        ),
        Section::new(
            "open",
            "Open time (open + first read, in a fresh process)",
            vec![m("time", Unit::Nanos)],
        ),
        Section::new("size", "File size (all files of the store)", vec![m("on disk", Unit::Bytes), m("apparent", Unit::Bytes)]),
        Section::new(
            "tail",
            "Pauses: tail latency of single-key overwrites",
            vec![
                m("p50", Unit::Nanos),
                m("p99", Unit::Nanos),
                m("p99.9", Unit::Nanos),
                m("max", Unit::Nanos),
                m("puts ≥ 1 ms", Unit::Count),
                m("share of the run in them", Unit::Percent),
                m("ops/s, whole run", Unit::Rate),
                m("checkpoints", Unit::Count),
            ],
        ),
        Section::new(
            "freshopen",
            "Pauses: open in a fresh process",
            vec![
                m("open + first read", Unit::Nanos),
                m("worst open + first read", Unit::Nanos),
                m("spawn to first read", Unit::Nanos),
            ],
        ),
    ];
    v[S_READ].note = format!(
        "{n} keys. Random existing keys; each op's latency is timed individually (one clock read per op, \
         included in the figures). LMDB and redb run one read transaction per get; SQLite one \
         prepared SELECT; apcdb and fjall return an owned copy of the value, LMDB a borrowed slice. For 2 processes, \
         p50 and p99 are the mean of the two processes' own percentiles."
    );
    v[S_DUR].note =
        "Random overwrites of existing keys. Threads share one handle (SQLite: one connection \
        per thread); processes each open the store. The raw fdatasync row overwrites 4 KiB in a \
        preallocated file and calls fdatasync, in a loop, in the same run."
            .to_string();
    v[S_ND].note = "Random overwrites of existing keys. redb's Durability::None commits are not \
        written durably at all: they are lost on kill -9 too (shown for completeness)."
        .to_string();
    v[S_SIZE].note = format!(
        "After loading {n} keys, after deleting every second key, and after inserting {} new keys \
         into the freed space. \"On disk\" is allocated blocks, \"apparent\" the sum of file lengths; \
         measured after each engine's durable sync/checkpoint.",
        thousands(cfg.keys / 2)
    );
    v[S_TAIL].peer_ratios = vec![pauses::T_P999, pauses::T_MAX, pauses::T_RATE];
    v[S_TAIL].peer_name = "LMDB";
    v[S_TAIL].note = format!(
        "{n} keys loaded, then random single-key overwrites from one thread, every put timed on \
         its own (a clock read before and after it). Non-durable: {} puts (apcdb None vs LMDB \
         NO_SYNC, redb None, SQLite NORMAL, fjall Buffer; peers stop at {} s). Durable: {} puts \
         (each engine's durable commit; peers stop at {} s). apcdb's rows must include at least \
         {TAIL_MIN_CHECKPOINTS} checkpoints: when the planned puts hold fewer, the run goes on \
         until they do (at most {} s), and the peers then get as many puts within their time \
         limit; a row that still holds fewer says so. These rows run in the first round only. The \
         store is created with a `max_size` of max(1 GiB, 1 KiB × keys), so its journal is a \
         sixteenth of that (64 MiB at 1,000,000 keys: a checkpoint every ~98,000 records), which \
         a durable row would need several minutes to fill ten times. apcdb's durable row therefore also runs on a store created with a {} MiB \
         journal, the one `Options::default()` gives (same keys, loaded the same way; a \
         checkpoint every ~24,500 records): that row holds the ten checkpoints, and is the one \
         the durable targets are judged on. A put of 1 ms or more counts as a pause; the \
         share is their summed time over the run's. Throughput is puts over the whole timed \
         run, checkpoints and other pauses included. The ratio columns divide each engine's \
         figure by LMDB's in the same mode.",
        thousands(cfg.tail_ops),
        tail_cap(cfg, Mode::Fast, false).as_secs(),
        thousands(cfg.tail_durable_ops),
        tail_cap(cfg, Mode::Durable, false).as_secs(),
        tail_cap(cfg, Mode::Fast, true).as_secs(),
        pauses::SMALL_JOURNAL >> 20,
    );
    v[S_FOPEN].peer_ratios = vec![0, 2];
    v[S_FOPEN].peer_name = "LMDB";
    v[S_FOPEN].note = format!(
        "The store of the tail-latency rows ({n} keys, after all their overwrites), opened by a \
         new child process (this binary re-executed) that opens it and reads one key. \
         \"Open + first read\" is the child's clock from just before open to the read's return; \
         \"spawn to first read\" the parent's from just before spawning the child to its answer \
         (adds process start-up, the same for every engine). Both are medians over {} fresh \
         processes in a row after a clean close (each opening after the previous one closed), \
         and over {} kills each followed by one fresh process after kill -9; \"worst\" is the \
         slowest of them. First round only. Clean close: the store was closed \
         normally. kill -9: a child writing single keys in the non-durable mode is SIGKILLed \
         mid-write once apcdb's journal is ~90 % full, or once a peer has taken {} KiB of \
         payload (apcdb's journal size). The files are in the page cache in both cases.",
        pauses::FOPEN_CLEAN_CHILDREN,
        pauses::FOPEN_KILLS,
        cfg.kill_bytes >> 10
    );
    v[S_OPEN].note = format!(
        "Clean close: the store was closed normally before. kill -9: a child writing single keys \
         in the non-durable mode (apcdb None, LMDB NO_SYNC, redb None, SQLite NORMAL, fjall \
         Buffer) is SIGKILLed once apcdb's journal is ~90 % full, or once a peer has taken {} KiB \
         of payload (apcdb's default journal size), then a fresh process opens the store.",
        cfg.kill_bytes >> 10
    );
    v
}

// ---------------------------------------------------------------------------------------------
// One family, one round

struct Ctx<'a> {
    args: &'a Args,
    secs: &'a mut Vec<Section>,
    failures: &'a mut Vec<String>,
    fsync: f64,
    round: usize,
    started: Instant,
    /// Puts apcdb's tail rows took this round (non-durable, durable), so the peers get as many.
    tail_apc_ops: &'a mut [Option<u64>; 2],
}

impl Ctx<'_> {
    fn want(&self, sec: usize) -> bool {
        let key = self.secs[sec].key;
        self.args.only_secs.is_empty() || self.args.only_secs.iter().any(|s| s == key)
    }
    /// Run one phase; an error or a panic (apcdb's unfinished API panics with todo!()) is logged and
    /// the run goes on with the next phase.
    fn phase(&mut self, what: String, f: impl FnOnce(&mut Self) -> Res<()>) -> bool {
        eprintln!(
            "[{:>4.0} s] round {}: {what}",
            self.started.elapsed().as_secs_f64(),
            self.round + 1
        );
        let r = catch_unwind(AssertUnwindSafe(|| f(self)));
        let err = match r {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => e,
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into());
                format!("panicked: {msg}")
            }
        };
        let line = format!("round {}: {what}: {err}", self.round + 1);
        eprintln!("FAILED {line}");
        self.failures.push(line);
        false
    }
}

fn family_round(cx: &mut Ctx, fam: Family) {
    if (0..S_TAIL).any(|s| cx.want(s)) {
        classic_round(cx, fam);
    }
    // The pauses rows take minutes each and are long enough on their own: first round only.
    if cx.round == 0 && (cx.want(S_TAIL) || cx.want(S_FOPEN)) {
        pauses_round(cx, fam);
    }
}

/// The workloads before the pauses sections, on one store per family.
fn classic_round(cx: &mut Ctx, fam: Family) {
    let a = cx.args;
    let n = a.keys;
    let dur = a.duration;
    let dir = a.dir.join(fam.key());
    let _ = std::fs::remove_dir_all(&dir);
    let oa = |mode, multi_process| OpenArgs {
        dir: &dir,
        mode,
        keys: n + n / 2,
        multi_process,
        journal_size: None,
    };
    let label = |m| config_label(fam, m).to_string();
    let fl = fam.label().to_string();
    let apc_none = config_label(Family::Apcdb, Mode::Fast);
    let apc_sync = config_label(Family::Apcdb, Mode::Durable);
    let nk = thousands(n);

    // Bulk load; everything else needs it.
    let loaded = cx.phase(format!("{} bulk load", fam.key()), |cx| {
        let eng = open(fam, &oa(Mode::Fast, false))?;
        let (rate, el) = batched(&*eng, 0, n, 1, false)?;
        eng.close();
        cx.secs[S_LOAD].record(
            &format!("{nk} keys"),
            apc_none,
            &label(Mode::Fast),
            vec![rate, el.as_nanos() as f64],
            "",
        );
        let (d, ap) = dir_size(&dir);
        cx.secs[S_SIZE].record(
            &format!("after loading {nk} keys"),
            "apcdb",
            &fl,
            vec![d as f64, ap as f64],
            "",
        );
        Ok(())
    });
    if !loaded {
        return;
    }

    // The disk is shared and its flush rate drifts: probe it right before this engine's durable
    // writes, and express them against that figure.
    if cx.want(S_DUR) {
        cx.phase(format!("{} fdatasync probe", fam.key()), |cx| {
            let fs = fsync_rate(&a.dir, dur)?;
            cx.fsync = fs;
            let v = vec![fs, 1.0];
            cx.secs[S_DUR].record(FSYNC_ROW, "fdatasync loop", "fdatasync loop", v, "");
            Ok(())
        });
    }

    // In-process reads, durable writes and durable batches on one durable handle.
    cx.phase(format!("{} durable handle", fam.key()), |cx| {
        let eng = open(fam, &oa(Mode::Durable, false))?;
        if cx.want(S_READ) {
            warm_up(&mut *eng.handle()?, n, WARM_CAP)?;
            for t in [1usize, 2] {
                let mut o = run_threads(&*eng, t, Kind::Read, dur, n)?;
                let (mean, p50, p99) = summarize(&mut o.lat);
                let note = if o.misses > 0 {
                    format!("{} MISSES", o.misses)
                } else {
                    String::new()
                };
                let row = if t == 1 {
                    "1 thread".to_string()
                } else {
                    format!("{t} threads")
                };
                let rate = o.ops as f64 / o.elapsed.as_secs_f64();
                cx.secs[S_READ].record(&row, "apcdb", &fl, vec![mean, p50, p99, rate], &note);
            }
        }
        if cx.want(S_DUR) {
            for t in [1usize, 4, 16] {
                let c0 = eng.checkpoints();
                let o = run_threads(&*eng, t, Kind::Write, dur, n)?;
                let rate = o.ops as f64 / o.elapsed.as_secs_f64();
                let note = checkpoint_note(c0, eng.checkpoints());
                let row = if t == 1 {
                    "1 thread".to_string()
                } else {
                    format!("{t} threads")
                };
                cx.secs[S_DUR].record(
                    &row,
                    apc_sync,
                    &label(Mode::Durable),
                    vec![rate, rate / cx.fsync],
                    &note,
                );
            }
        }
        if cx.want(S_BATCH) {
            let pool = value_pool();
            let mut rng = Rng::new(42);
            let mut h = eng.handle()?;
            let t0 = Instant::now();
            let mut batches = 0u64;
            while t0.elapsed() < dur || batches == 0 {
                let ks: Vec<[u8; KEY_LEN]> = (0..BATCH).map(|_| key(rng.next() % n)).collect();
                let puts: Vec<(&[u8], &[u8])> = ks
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (&k[..], &pool[i % pool.len()][..]))
                    .collect();
                h.batch(&puts, &[])?;
                batches += 1;
            }
            let s = t0.elapsed().as_secs_f64();
            let row = "1 writer, 1,000 keys per batch";
            let v = vec![(batches * BATCH as u64) as f64 / s, batches as f64 / s];
            cx.secs[S_BATCH].record(row, apc_sync, &label(Mode::Durable), v, "");
        }
        eng.close();
        Ok(())
    });

    // Separate processes, where the engine allows several processes on one store.
    if fam.multi_process() {
        let seed = 1000 + cx.round as u64;
        let spec = |role, mode| ChildSpec {
            role,
            fam,
            mode,
            dir: &dir,
            keys: n,
            dur,
            seed,
            multi_process: true,
            kill_bytes: a.kill_bytes,
        };
        if cx.want(S_READ) {
            let s = spec("read", Mode::Durable);
            cx.phase(format!("{} read processes", fam.key()), |cx| {
                let r = run_children(2, &s)?;
                let k = r.len() as f64;
                let mean = r.iter().map(|c| c.mean).sum::<f64>() / k;
                let p50 = r.iter().map(|c| c.p50).sum::<f64>() / k;
                let p99 = r.iter().map(|c| c.p99).sum::<f64>() / k;
                let rate: f64 = r.iter().map(|c| c.ops as f64 / (c.elapsed_ns / 1e9)).sum();
                let misses: u64 = r.iter().map(|c| c.misses).sum();
                let note = if misses > 0 {
                    format!("{misses} MISSES")
                } else if fam == Family::Redb {
                    "ConcurrencyMode::MultiWriter".to_string()
                } else {
                    String::new()
                };
                let v = vec![mean, p50, p99, rate];
                cx.secs[S_READ].record("2 processes", "apcdb", &fl, v, &note);
                Ok(())
            });
        }
        if cx.want(S_DUR) {
            for p in [4usize, 16] {
                let s = spec("write", Mode::Durable);
                cx.phase(format!("{} {p} writer processes", fam.key()), |cx| {
                    let r = run_children(p, &s)?;
                    let rate = r.iter().map(|c| c.ops).sum::<u64>() as f64
                        / (r.iter().map(|c| c.elapsed_ns).fold(0.0, f64::max) / 1e9);
                    let note = if fam == Family::Redb {
                        "ConcurrencyMode::MultiWriter"
                    } else {
                        ""
                    };
                    let v = vec![rate, rate / cx.fsync];
                    cx.secs[S_DUR].record(
                        &format!("{p} processes"),
                        apc_sync,
                        &label(Mode::Durable),
                        v,
                        note,
                    );
                    Ok(())
                });
            }
        }
        if cx.want(S_MIXED) {
            for (mode, row, reference) in [
                (Mode::Durable, "durable writes", apc_sync),
                (Mode::Fast, "non-durable writes", apc_none),
            ] {
                if fam == Family::Redb && mode == Mode::Fast {
                    continue; // redb refuses Durability::None when processes share the file
                }
                let s = spec("mixed", mode);
                cx.phase(format!("{} mixed {row}", fam.key()), |cx| {
                    let r = run_children(4, &s)?;
                    let rate: f64 = r.iter().map(|c| c.ops as f64 / (c.elapsed_ns / 1e9)).sum();
                    let note = if fam == Family::Redb {
                        "ConcurrencyMode::MultiWriter"
                    } else {
                        ""
                    };
                    cx.secs[S_MIXED].record(row, reference, &label(mode), vec![rate], note);
                    Ok(())
                });
            }
        }
    }

    if cx.want(S_ND) {
        let modes: &[Mode] = if fam == Family::Apcdb {
            &[Mode::Fast, Mode::Periodic]
        } else {
            &[Mode::Fast]
        };
        for &mode in modes {
            cx.phase(format!("{} non-durable writes", fam.key()), |cx| {
                let eng = open(fam, &oa(mode, false))?;
                for t in [1usize, 4] {
                    let c0 = eng.checkpoints();
                    let o = run_threads(&*eng, t, Kind::Write, dur, n)?;
                    let rate = o.ops as f64 / o.elapsed.as_secs_f64();
                    let note = checkpoint_note(c0, eng.checkpoints());
                    let row = if t == 1 {
                        "1 writer".to_string()
                    } else {
                        format!("{t} writer threads")
                    };
                    cx.secs[S_ND].record(&row, apc_none, &label(mode), vec![rate], &note);
                }
                eng.close();
                Ok(())
            });
        }
    }

    if cx.want(S_DEL) || cx.want(S_SIZE) {
        cx.phase(format!("{} deletes", fam.key()), |cx| {
            let eng = open(fam, &oa(Mode::Fast, false))?;
            let (rate, el) = batched(&*eng, 0, n, 2, true)?;
            let row = format!("{} keys", thousands(n.div_ceil(2)));
            cx.secs[S_DEL].record(
                &row,
                apc_none,
                &label(Mode::Fast),
                vec![rate, el.as_nanos() as f64],
                "",
            );
            let (d, ap) = dir_size(&dir);
            cx.secs[S_SIZE].record(
                "after deleting every second key",
                "apcdb",
                &fl,
                vec![d as f64, ap as f64],
                "",
            );
            // The same state, compacted by the engine's own tool into a copy beside it.
            let dst = dir.with_extension("compacted");
            let _ = std::fs::remove_dir_all(&dst);
            std::fs::create_dir_all(&dst).map_err(|err| format!("mkdir: {err}"))?;
            if let Some(extra) = eng.compacted_copy(&dst)? {
                let (d, ap) = dir_size(&dst);
                let note = match extra {
                    0 => String::new(),
                    x => format!("with the {} KiB lock file", x >> 10),
                };
                cx.secs[S_SIZE].record(
                    "after deleting every second key, compacted",
                    "apcdb",
                    &fl,
                    vec![(d + extra) as f64, (ap + extra) as f64],
                    &note,
                );
            }
            let _ = std::fs::remove_dir_all(&dst);
            batched(&*eng, n, n + n / 2, 1, false)?;
            let (d, ap) = dir_size(&dir);
            let row = format!("after inserting {} new keys", thousands(n / 2));
            cx.secs[S_SIZE].record(&row, "apcdb", &fl, vec![d as f64, ap as f64], "");
            eng.close();
            Ok(())
        });
    }

    if cx.want(S_OPEN) {
        let open_spec = ChildSpec {
            role: "open",
            fam,
            mode: Mode::Durable,
            dir: &dir,
            keys: n,
            dur,
            seed: 0,
            multi_process: false,
            kill_bytes: a.kill_bytes,
        };
        cx.phase(format!("{} open after clean close", fam.key()), |cx| {
            let (ns, _, note) = timed_open(&open_spec)?;
            cx.secs[S_OPEN].record("after a clean close", "apcdb", &fl, vec![ns], &note);
            Ok(())
        });
        cx.phase(format!("{} open after kill -9", fam.key()), |cx| {
            let ks = ChildSpec {
                role: "killwriter",
                mode: Mode::Fast,
                seed: 77 + cx.round as u64,
                ..open_spec
            };
            let f = kill_full_writer(&ks)?;
            let (ns, _, mut note) = timed_open(&open_spec)?;
            if fam == Family::Apcdb && f.len() == 3 {
                note = format!(
                    "journal {} of {} KiB used at kill; {note}",
                    f[0] >> 10,
                    f[1] >> 10
                );
            }
            cx.secs[S_OPEN].record(
                "after kill -9 with a full journal",
                "apcdb",
                &fl,
                vec![ns],
                &note,
            );
            Ok(())
        });
    }
    // One engine's files at a time: a 10 M-key run then needs the disk of the largest store only.
    if !a.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Start a `killwriter` child, SIGKILL it once it says its journal (or payload) is full, and return
/// what it said: (journal bytes used, journal size, payload written) for apcdb.
fn kill_full_writer(spec: &ChildSpec) -> Res<Vec<u64>> {
    let (mut c, _stdin, mut out) = spawn_child(spec)?;
    let line = read_line(&mut out, "full");
    // Let it get well into its next writes, so the kill lands mid-write.
    std::thread::sleep(Duration::from_millis(3));
    let _ = c.kill(); // SIGKILL
    let _ = c.wait();
    let line = line?;
    Ok(line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect())
}

/// apcdb's default journal size, read from a throwaway store.
fn apcdb_journal_size(dir: &Path) -> Option<u64> {
    let d = dir.join("journal-size-probe");
    let r = catch_unwind(|| {
        let eng = open(
            Family::Apcdb,
            &OpenArgs {
                dir: &d,
                mode: Mode::Fast,
                keys: 0,
                multi_process: false,
                journal_size: None,
            },
        )
        .ok()?;
        let size = eng.journal_fill().map(|(_, size)| size);
        eng.close();
        size
    });
    let _ = std::fs::remove_dir_all(&d);
    r.ok().flatten().filter(|&s| s > 0)
}

/// "N checkpoints" during a timed row, for apcdb (the last round's count is shown).
fn checkpoint_note(before: Option<u64>, after: Option<u64>) -> String {
    match (before, after) {
        (Some(a), Some(b)) => format!("{} checkpoints during the row", b.saturating_sub(a)),
        _ => String::new(),
    }
}

/// Open in a fresh child: (open + first read on the child's clock, spawn to the child's answer on
/// ours, note).
fn timed_open(spec: &ChildSpec) -> Res<(f64, f64, String)> {
    let t0 = Instant::now();
    let (mut c, _stdin, mut out) = spawn_child(spec)?;
    let line = read_line(&mut out, "done");
    let spawn_ns = t0.elapsed().as_nanos() as f64;
    let _ = c.wait();
    let line = line?;
    let mut f = line.splitn(4, ' ');
    if f.next() != Some("done") {
        return Err(format!("open child said {line:?}"));
    }
    let ns: f64 = f
        .next()
        .and_then(|x| x.parse().ok())
        .ok_or("bad open time")?;
    let found = f.next() == Some("1");
    let mut note = f.next().unwrap_or("").to_string();
    if !found {
        note = format!("KEY MISSING AFTER OPEN; {note}");
    }
    Ok((ns, spawn_ns, note))
}

// ---------------------------------------------------------------------------------------------
// Arguments and main

struct Args {
    smoke: bool,
    keys: u64,
    rounds: usize,
    duration: Duration,
    only_fams: Vec<Family>,
    only_secs: Vec<String>,
    out: Option<PathBuf>,
    dir: PathBuf,
    keep: bool,
    /// Planned puts of the non-durable and the durable tail-latency rows.
    tail_ops: u64,
    tail_durable_ops: u64,
    // child-only
    child: Option<String>,
    family: Option<Family>,
    mode: Option<Mode>,
    seed: u64,
    multi: bool,
    kill_bytes: u64,
    load_at_start: String,
}

const SECTION_KEYS: [&str; 11] = [
    "reads",
    "durable",
    "nondurable",
    "batch",
    "load",
    "delete",
    "mixed",
    "open",
    "size",
    "tail",
    "freshopen",
];

fn usage() -> ! {
    eprintln!(
        "usage: apcdb-bench [--smoke] [--keys N] [--rounds R] [--only NAME[,NAME...]] [--duration-ms MS]\n\
         \x20                  [--dir DIR] [--out FILE] [--keep] [--tail-ops N] [--tail-durable-ops N]\n\
         NAME: an engine ({}) or a workload ({})",
        FAMILIES.iter().map(|f| f.key()).collect::<Vec<_>>().join(", "),
        SECTION_KEYS.join(", ")
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        smoke: false,
        keys: 1_000_000,
        rounds: 3,
        duration: Duration::from_millis(400),
        only_fams: vec![],
        only_secs: vec![],
        out: None,
        dir: PathBuf::from("/var/tmp").join(format!("apcdb-bench-{}", std::process::id())),
        keep: false,
        tail_ops: 1_000_000,
        tail_durable_ops: 20_000,
        child: None,
        family: None,
        mode: None,
        seed: 1,
        multi: false,
        kill_bytes: PEER_KILL_BYTES,
        load_at_start: String::new(),
    };
    let (mut keys, mut rounds, mut dur) = (None, None, None);
    let (mut tail_ops, mut tail_dur) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--smoke" => a.smoke = true,
            "--keys" => keys = Some(val().replace('_', "").parse().unwrap_or_else(|_| usage())),
            "--rounds" => rounds = Some(val().parse().unwrap_or_else(|_| usage())),
            "--duration-ms" => {
                dur = Some(Duration::from_millis(
                    val().parse().unwrap_or_else(|_| usage()),
                ))
            }
            "--only" => {
                for name in val().split(',') {
                    if let Some(f) = Family::from_key(name) {
                        a.only_fams.push(f);
                    } else if SECTION_KEYS.contains(&name) {
                        a.only_secs.push(name.to_string());
                    } else {
                        eprintln!("unknown --only name {name:?}");
                        usage();
                    }
                }
            }
            "--out" => a.out = Some(PathBuf::from(val())),
            "--dir" => a.dir = PathBuf::from(val()),
            "--keep" => a.keep = true,
            "--tail-ops" => {
                tail_ops = Some(val().replace('_', "").parse().unwrap_or_else(|_| usage()))
            }
            "--tail-durable-ops" => {
                tail_dur = Some(val().replace('_', "").parse().unwrap_or_else(|_| usage()))
            }
            "--child" => a.child = Some(val()),
            "--family" => a.family = Some(Family::from_key(&val()).unwrap_or_else(|| usage())),
            "--mode" => a.mode = Some(Mode::from_key(&val()).unwrap_or_else(|| usage())),
            "--seed" => a.seed = val().parse().unwrap_or_else(|_| usage()),
            "--multi" => a.multi = val() == "1",
            "--kill-bytes" => a.kill_bytes = val().parse().unwrap_or_else(|_| usage()),
            "-h" | "--help" => usage(),
            _ => {
                eprintln!("unknown argument {arg:?}");
                usage()
            }
        }
    }
    if a.smoke {
        // Every workload, ~1,000 keys, a few seconds: keeps the benchmark compiling and running
        // in CI. Timings from it mean nothing.
        a.keys = 1000;
        a.rounds = 1;
        a.duration = Duration::from_millis(50);
        a.tail_ops = 2000;
        a.tail_durable_ops = 100;
    }
    if let Some(t) = tail_ops {
        a.tail_ops = t;
    }
    if let Some(t) = tail_dur {
        a.tail_durable_ops = t;
    }
    if let Some(k) = keys {
        a.keys = k;
    }
    if let Some(r) = rounds {
        a.rounds = r;
    }
    if let Some(d) = dur {
        a.duration = d;
    }
    a.keys = a.keys.max(10);
    a.rounds = a.rounds.max(1);
    a.tail_ops = a.tail_ops.max(1);
    a.tail_durable_ops = a.tail_durable_ops.max(1);
    a
}

fn main() {
    let args = parse_args();
    if args.child.is_some() {
        // Children report their numbers on stdout; a failure is an exit code the parent notices.
        if let Err(e) = child_main(&args) {
            eprintln!("child {}: {e}", args.child.as_deref().unwrap());
            std::process::exit(1);
        }
        return;
    }
    // Silence the default panic message for apcdb's todo!() bodies; phase() reports it once.
    std::panic::set_hook(Box::new(|_| {}));
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        eprintln!("cannot create {}: {e}", args.dir.display());
        std::process::exit(1);
    }
    let mut args = args;
    args.load_at_start = load_average();
    if !args.smoke {
        args.kill_bytes = apcdb_journal_size(&args.dir).unwrap_or(PEER_KILL_BYTES);
    } else {
        // A smoke run only needs the kill path exercised.
        args.kill_bytes = 256 << 10;
    }
    let args = args;
    let families: Vec<Family> = if args.only_fams.is_empty() {
        FAMILIES.to_vec()
    } else {
        args.only_fams.clone()
    };
    let mut secs = sections(&args);
    let mut failures = Vec::new();
    let started = Instant::now();
    for round in 0..args.rounds {
        // Set by each family's probe right before its durable writes.
        let fsync = f64::NAN;
        let mut tail_apc_ops = [None; 2];
        // Families interleave within a round, so slow drift on a shared machine hits all alike.
        for &fam in &families {
            let mut cx = Ctx {
                args: &args,
                secs: &mut secs,
                failures: &mut failures,
                fsync,
                round,
                started,
                tail_apc_ops: &mut tail_apc_ops,
            };
            family_round(&mut cx, fam);
        }
    }
    let report = render(&args, &secs, &failures, started.elapsed());
    print!("{report}");
    if let Some(out) = &args.out {
        if let Err(e) = std::fs::write(out, &report) {
            eprintln!("cannot write {}: {e}", out.display());
        }
    }
    if !args.keep {
        let _ = std::fs::remove_dir_all(&args.dir);
    }
    // A phase that failed is a broken benchmark (or engine), which a CI smoke run should notice;
    // slow numbers never fail the run.
    if !failures.is_empty() {
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// The report

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| format!("{:.0} GiB RAM", kb as f64 / 1048576.0))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem}, Linux {}", kernel.trim())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn filesystem(dir: &Path) -> String {
    // The mount with the longest prefix of `dir` is the one holding it.
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 3 && dir.starts_with(f[1]) && best.as_ref().is_none_or(|b| f[1].len() > b.0) {
            best = Some((f[1].len(), format!("{} on {} ({})", f[0], f[1], f[2])));
        }
    }
    best.map(|b| b.1)
        .unwrap_or_else(|| "unknown filesystem".into())
}

fn render(a: &Args, secs: &[Section], failures: &[String], took: Duration) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(o, "## apcdb-bench results\n");
    let _ = writeln!(
        o,
        "- {} keys (24-byte random keys, 150-byte values), median of {} round(s), {} per timed row{}",
        thousands(a.keys),
        a.rounds,
        fmt_ns(a.duration.as_nanos() as f64),
        if a.smoke { " — **smoke run: the numbers mean nothing**" } else { "" }
    );
    let _ = writeln!(o, "- machine: {}", machine());
    let _ = writeln!(
        o,
        "- store files: {} ({})",
        a.dir.display(),
        filesystem(&a.dir)
    );
    let _ = writeln!(o, "- whole run took {:.0} s", took.as_secs_f64());
    let _ = writeln!(
        o,
        "- load average (1, 5, 15 min) at the start: {}; at the end: {} — other work on the machine \
         shows up as noise, mostly in means and p99s",
        a.load_at_start,
        load_average()
    );
    let _ = writeln!(o, "- versions: apcdb (this tree), heed 0.23.1 (LMDB), redb 4.6.0, rusqlite 0.43.0 (bundled SQLite), fjall 3.1.13\n");
    let _ = writeln!(o, "{}", targets(secs));
    let pt = pause_targets(secs);
    if !pt.is_empty() {
        let _ = writeln!(o, "{pt}");
    }
    for s in secs {
        s.markdown(&mut o);
    }
    if !failures.is_empty() {
        let _ = writeln!(o, "### Failures\n");
        for f in failures {
            let _ = writeln!(o, "- {f}");
        }
        let _ = writeln!(o);
    }
    o
}

fn targets(secs: &[Section]) -> String {
    let mut rows = Vec::new();
    let apc_sync = config_label(Family::Apcdb, Mode::Durable);
    let apc_none = config_label(Family::Apcdb, Mode::Fast);
    let lmdb_ns = config_label(Family::Lmdb, Mode::Fast);
    // 1. point read time vs LMDB. Judged on the median latency, which other tenants of a shared
    //    machine disturb far less than the mean; the mean ratio is shown beside it.
    for row in ["1 thread", "2 threads", "2 processes"] {
        let a = secs[S_READ].median(row, "apcdb", 1);
        let b = secs[S_READ].median(row, Family::Lmdb.label(), 1);
        let r = a.zip(b).map(|(a, b)| a / b);
        let am = secs[S_READ].median(row, "apcdb", 0);
        let bm = secs[S_READ].median(row, Family::Lmdb.label(), 0);
        let rm = am.zip(bm).map(|(a, b)| a / b);
        rows.push(format!(
            "| point read ({row}) ≤ 0.5× LMDB's time | p50 {} vs {} = {} (mean {} vs {} = {}) | {} |",
            fmt(a, Unit::Nanos),
            fmt(b, Unit::Nanos),
            fmt(r, Unit::Times),
            fmt(am, Unit::Nanos),
            fmt(bm, Unit::Nanos),
            fmt(rm, Unit::Times),
            verdict(r.map(|r| r <= 0.5))
        ));
    }
    // 2. non-durable writes vs LMDB NO_SYNC
    for row in ["1 writer", "4 writer threads"] {
        let a = secs[S_ND].median(row, apc_none, 0);
        let b = secs[S_ND].median(row, lmdb_ns, 0);
        let r = a.zip(b).map(|(a, b)| a / b);
        rows.push(format!(
            "| non-durable writes ({row}) ≥ 10× LMDB NO_SYNC's rate | {}/s vs {}/s = {} | {} |",
            fmt(a, Unit::Rate),
            fmt(b, Unit::Rate),
            fmt(r, Unit::Times),
            verdict(r.map(|r| r >= 10.0))
        ));
    }
    // 3. durable writes, 4 writers, vs the raw fdatasync rate probed just before apcdb's writes
    //    (median over rounds of the per-round multiple).
    let fs = secs[S_DUR].median(FSYNC_ROW, "fdatasync loop", 0);
    for row in ["4 threads", "4 processes"] {
        let a = secs[S_DUR].median(row, apc_sync, 0);
        let r = secs[S_DUR].median(row, apc_sync, 1);
        rows.push(format!(
            "| durable writes, 4 writers ({row}) ≥ 3× raw fdatasync rate | {}/s = {} the fdatasync rate (median probe {}/s) | {} |",
            fmt(a, Unit::Rate),
            fmt(r, Unit::Times),
            fmt(fs, Unit::Rate),
            verdict(r.map(|r| r >= 3.0))
        ));
    }
    // 4. reopen after kill -9
    let t = secs[S_OPEN].median("after kill -9 with a full journal", "apcdb", 0);
    rows.push(format!(
        "| reopen after kill -9 with a full journal < 50 ms | {} | {} |",
        fmt(t, Unit::Nanos),
        verdict(t.map(|t| t < 50e6))
    ));
    format!(
        "### Targets (Rust side)\n\n| target | measured (medians) | verdict |\n|---|---|---|\n{}\n",
        rows.join("\n")
    )
}
