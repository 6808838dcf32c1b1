//! `apcdb crash-test`: the kill -9 harness, its hidden `worker` and `verify` subcommands.

mod churn;
mod config;
pub use config::parse_durability;
mod expect;
mod harness;
mod model;
mod php;
mod protocol;
mod redis_server;
pub(crate) mod value;
mod verify;
mod worker;

use crate::args::parse_duration;
use crate::rng::fresh_seed;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// `apcdb crash-test [OPTIONS]`, or one of the helper processes the harness starts (hidden: they
/// are the harness's own protocol, not for operators).
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, disable_help_subcommand = true)]
#[command(override_usage = "apcdb crash-test [OPTIONS]")]
pub struct CrashTestArgs {
    #[command(subcommand)]
    helper: Option<Helper>,
    #[command(flatten)]
    run: HarnessArgs,
}

#[derive(Subcommand)]
enum Helper {
    /// One worker process (started by the harness)
    #[command(hide = true)]
    Worker(WorkerArgs),
    /// Checks a store against an expectations file written by the harness (kept with --keep)
    #[command(hide = true)]
    Verify(VerifyArgs),
    /// Writes and checkpoints in a tight loop until killed (for tests)
    #[command(hide = true)]
    Churn(ChurnArgs),
}

#[derive(Args)]
struct HarnessArgs {
    /// Stop after this long (500ms, 30s, 2m, 1h; default 30s unless --kills is given)
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many kills
    #[arg(long)]
    kills: Option<u64>,
    /// Worker processes
    #[arg(long, default_value_t = 4)]
    workers: u32,
    /// sync, periodic[:INTERVAL] or none
    #[arg(long, default_value = "sync")]
    durability: String,
    /// Seed of every random choice (default: a fresh one, printed)
    #[arg(long)]
    seed: Option<u64>,
    /// PHP CLI workers through the apcdb extension instead of Rust workers
    #[arg(long)]
    php: bool,
    /// The extension to load (implies --php; default: the one next to this binary's target dir)
    #[arg(long, value_name = "PATH")]
    php_ext: Option<String>,
    /// PHP workers on a Redis pool (implies --php): starts its own redis-server on a loopback
    /// port (append-only file fsynced at every write), kills it with SIGKILL and restarts it
    /// between rounds, and checks every acknowledged write as for a file
    #[arg(long)]
    redis: bool,
    /// More redis-server arguments for --redis (tests of the harness itself)
    #[arg(long, hide = true, value_name = "ARGS", requires = "redis")]
    redis_server_args: Option<String>,
    /// Where to put the store (default: a temporary directory, removed if the run passes)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the store directory even when the run passes
    #[arg(long)]
    keep: bool,
    /// Distinct keys the workers write
    #[arg(long, default_value_t = 32)]
    keys: u32,
    /// Distinct counters the workers increment
    #[arg(long, default_value_t = 4)]
    counters: u32,
    /// A worker silent this long counts as hung
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    hang: Duration,
    /// Longest pause between two kills
    #[arg(long, value_parser = parse_duration, default_value = "300ms")]
    max_gap: Duration,
    /// Start over from an empty store every N rounds
    #[arg(long, default_value_t = 4)]
    fresh_store_every: u64,
    /// The store's maximum size (Rust workers, or PHP workers with --evict)
    #[arg(long, value_name = "BYTES")]
    max_size: Option<u64>,
    /// PHP workers on a small store (--max-size, default 16 MiB) with apcdb.when_full=evict:
    /// their writes evict others, and any key may be absent (never wrong) after a round
    #[arg(long)]
    evict: bool,
}

#[derive(Args)]
struct WorkerArgs {
    #[arg(long)]
    store: PathBuf,
    #[arg(long, default_value = "sync")]
    durability: String,
    #[arg(long)]
    slot: u32,
    #[arg(long)]
    inc: u64,
    #[arg(long)]
    seed: u64,
    #[arg(long)]
    keys: u32,
    #[arg(long)]
    counters: u32,
    #[arg(long, default_value_t = 1)]
    slots: u32,
    #[arg(long, default_value_t = config::DEFAULT_MAX_SIZE)]
    max_size: u64,
}

#[derive(Args)]
struct VerifyArgs {
    #[arg(long)]
    store: PathBuf,
    #[arg(long)]
    expect: String,
    #[arg(long)]
    observed: Option<String>,
    #[arg(long, default_value = "sync")]
    durability: String,
    #[arg(long)]
    php_ext: Option<String>,
    /// The pool is on this Redis server (with --php-ext); --store then only names the directory
    #[arg(long)]
    redis: Option<String>,
    #[arg(long, default_value_t = config::DEFAULT_MAX_SIZE)]
    max_size: u64,
}

#[derive(Args)]
struct ChurnArgs {
    #[arg(long)]
    store: PathBuf,
    #[arg(long, default_value = "none")]
    durability: String,
}

fn verify_timeout() -> Duration {
    Duration::from_secs(120)
}

pub fn main(args: CrashTestArgs) -> i32 {
    let result = match args.helper {
        Some(Helper::Worker(a)) => worker_main(a),
        Some(Helper::Verify(a)) => return verify_main(a),
        Some(Helper::Churn(a)) => churn_main(a),
        None => harness_main(args.run),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("apcdb crash-test: {e}");
            2
        }
    }
}

fn harness_main(a: HarnessArgs) -> Result<i32, String> {
    let durability = a.durability;
    config::parse_durability(&durability)?;
    let seed = a.seed.unwrap_or_else(fresh_seed);
    let kills = a.kills;
    let mut duration = a.duration;
    if duration.is_none() && kills.is_none() {
        duration = Some(Duration::from_secs(30));
    }
    let workers = a.workers;
    if workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    let php_ext = if a.php || a.php_ext.is_some() || a.redis {
        which_php()?;
        Some(php::find_extension(a.php_ext.as_deref())?)
    } else {
        None
    };
    if php_ext.is_some() && a.max_size.is_some() && !a.evict {
        return Err(
            "--max-size applies to Rust workers, or PHP workers with --evict (PHP workers use apcdb.size=1G)".into(),
        );
    }
    if a.evict && php_ext.is_none() {
        return Err("--evict needs --php".into());
    }
    if a.redis && (a.evict || a.max_size.is_some()) {
        // A Redis pool has no size of its own: the server's maxmemory decides.
        return Err("--redis runs without --evict and --max-size".into());
    }
    let dir_given = a.dir.is_some();
    let dir = a.dir.unwrap_or_else(|| harness::default_dir(seed));
    let cfg = harness::HarnessConfig {
        workers,
        duration,
        kills,
        durability: durability.clone(),
        seed,
        php_ext: php_ext.clone(),
        dir: dir.clone(),
        keep: a.keep,
        keys: a.keys.max(1),
        counters: a.counters.max(1),
        // Workers normally report every few milliseconds; rounds end (killing everyone, which
        // clears a stuck lock file) within seconds, so a stuck worker must be caught sooner.
        hang: a.hang,
        max_gap: a.max_gap,
        fresh_every: a.fresh_store_every,
        max_size: a.max_size.unwrap_or(if a.evict {
            16 << 20
        } else {
            config::DEFAULT_MAX_SIZE
        }),
        evict: a.evict,
        redis: a
            .redis
            .then(|| a.redis_server_args.clone().unwrap_or_default()),
    };
    let keep = cfg.keep;
    let evict = cfg.evict;
    eprintln!(
        "crash-test: seed {seed}, {workers} {} workers, durability {durability}, {} in {}",
        if php_ext.is_some() { "PHP" } else { "Rust" },
        if a.redis {
            "a redis-server's files"
        } else {
            "store"
        },
        dir.display()
    );
    let t = harness::run(cfg)?;
    let failed = !t.violations.is_empty() || t.lost > 0;
    if failed {
        println!(
            "crash-test FAILED with seed {seed} ({} rounds); violations:",
            t.rounds
        );
        for v in t.violations.iter().take(50) {
            println!("  {v}");
        }
        if t.violations.len() > 50 {
            println!("  ... and {} more", t.violations.len() - 50);
        }
        println!(
            "store kept in {} (expect.txt holds the last round's expectations)",
            dir.display()
        );
        println!(
            "reproduce the same choices with: apcdb crash-test --seed {seed} --workers {workers} --durability {durability}{}{}{}",
            if php_ext.is_some() { " --php" } else { "" },
            if a.redis { " --redis" } else { "" },
            if evict { " --evict" } else { "" }
        );
    } else {
        if !keep && !dir_given {
            harness::remove_dir(&dir);
        }
        println!(
            "crash-test: passed, seed {seed}, {} rounds verified, {} kills mid-operation, {} while opening, \
             {} writes refused as full; longest worker silence {} ms ({}), longest verification {} ms",
            t.rounds,
            t.kills_mid_operation,
            t.kills_during_open,
            t.refused_full,
            t.longest_silence.as_millis(),
            t.longest_silence_during,
            t.longest_verify.as_millis()
        );
    }
    println!(
        "crash-test: {} kills, {} acknowledged, {} verified, {} lost",
        t.kills, t.acknowledged, t.verified, t.lost
    );
    Ok(if failed { 1 } else { 0 })
}

fn churn_main(a: ChurnArgs) -> Result<i32, String> {
    let durability = config::parse_durability(&a.durability)?;
    churn::run(&a.store, durability)
}

fn offline_check(store: &std::path::Path, when: &str) -> Vec<String> {
    match apcdb::verify::check(store) {
        Ok(r) => r
            .problems
            .into_iter()
            .map(|p| format!("offline check of the store {when}: {p}"))
            .collect(),
        Err(e) => vec![format!("offline check of the store {when} failed: {e}")],
    }
}

fn which_php() -> Result<(), String> {
    match std::process::Command::new("php").arg("-v").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("--php needs the `php` command (php8.2-cli), which was not found".into()),
    }
}

fn worker_main(a: WorkerArgs) -> Result<i32, String> {
    worker::run(worker::WorkerConfig {
        store: a.store,
        durability: config::parse_durability(&a.durability)?,
        slot: a.slot,
        inc: a.inc,
        seed: a.seed,
        keys: a.keys.max(1),
        counters: a.counters.max(1),
        slots: a.slots.max(1),
        max_size: a.max_size,
    })
}

/// Exit 0: clean; 1: violations (printed as `VIOLATION ...` lines, plus `lost N`); 2: usage/IO error.
fn verify_main(a: VerifyArgs) -> i32 {
    match verify_inner(a) {
        Ok(clean) => {
            if clean {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("apcdb crash-test verify: {e}");
            2
        }
    }
}

fn verify_inner(a: VerifyArgs) -> Result<bool, String> {
    let store = a.store;
    let durability_text = a.durability.as_str();
    let durability = config::parse_durability(durability_text)?;
    let max_size = a.max_size;
    let expect_path = &a.expect;
    let text =
        std::fs::read_to_string(expect_path).map_err(|e| format!("reading {expect_path}: {e}"))?;
    let exp = expect::Expectations::decode(&text)?;
    // The files as the crash left them must pass the engine's offline checker (a torn journal tail
    // is a note, not a problem), and so must they after recovery and a clean close. (A Redis
    // server's files are its own business: only what PHP reads back is checked.)
    let mut problems = match &a.redis {
        None => offline_check(&store, "as the crash left it"),
        Some(_) => vec![],
    };
    let snap = match &a.php_ext {
        Some(ext) => {
            let names: Vec<String> = exp
                .keys
                .keys()
                .chain(exp.counters.keys())
                .cloned()
                .collect();
            let read_from_ms = crate::clock::unix_ms();
            let dir = store.parent().unwrap_or(std::path::Path::new("."));
            let target = match &a.redis {
                Some(url) => std::ffi::OsStr::new(url.as_str()),
                None => store.as_os_str(),
            };
            php::observe(
                std::path::Path::new(ext),
                target,
                dir,
                durability_text,
                max_size,
                &names,
            )
            .map(|keys| verify::Snapshot {
                read_from_ms,
                read_to_ms: crate::clock::unix_ms(),
                keys: keys
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            verify::Found {
                                value: v,
                                exp: None,
                            },
                        )
                    })
                    .collect(),
                complete: false,
                problems: vec![],
            })
        }
        None => verify::snapshot_rust(&store, durability, max_size, &exp),
    };
    let opened = snap.is_ok();
    let mut verdict = match snap {
        Ok(snap) => verify::judge(&exp, &snap),
        Err(e) => verify::Verdict {
            violations: vec![e],
            ..Default::default()
        },
    };
    if opened && a.redis.is_none() {
        problems.extend(offline_check(&store, "after recovery and close"));
    }
    verdict.violations.extend(problems);
    for v in &verdict.violations {
        println!("VIOLATION {v}");
    }
    println!("lost {}", verdict.lost);
    println!(
        "verify: {} keys, {} counters checked",
        exp.keys.len(),
        exp.counters.len()
    );
    if let Some(path) = &a.observed {
        std::fs::write(path, verdict.observed.encode())
            .map_err(|e| format!("writing {path}: {e}"))?;
    }
    Ok(verdict.violations.is_empty())
}
