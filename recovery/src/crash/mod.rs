//! `apcdb crash-test`: the kill -9 harness, its hidden `worker` and `verify` subcommands.

mod churn;
mod config;
pub use config::parse_durability;
mod expect;
mod harness;
mod model;
mod php;
mod protocol;
pub(crate) mod value;
mod verify;
mod worker;

use crate::args::Args;
use crate::rng::fresh_seed;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
apcdb crash-test [--duration 30s] [--kills N] [--workers 4] [--durability sync|periodic[:50ms]|none]
                 [--seed N] [--php [--php-ext PATH]] [--dir DIR] [--keep] [--keys 32] [--counters 4]
                 [--hang 10s] [--max-gap 300ms] [--fresh-store-every 4]
                 [--max-size BYTES]
  Runs worker processes doing random writes on one store, SIGKILLs them at random moments, and after
  every round verifies from a fresh process that nothing acknowledged was lost or torn. Stops after
  --duration or --kills (whichever comes first; default 30s). Exit 1 on any violation.
apcdb crash-test verify --store FILE --expect FILE [--observed FILE] [--durability MODE] [--php-ext PATH]
  Checks a store against an expectations file written by the harness (kept with --keep).
apcdb crash-test churn --store FILE [--durability MODE]
  Writes and checkpoints in a tight loop until killed (for tests).";

fn verify_timeout() -> Duration {
    Duration::from_secs(120)
}

pub fn main(raw: &[String]) -> i32 {
    let result = match raw.first().map(String::as_str) {
        Some("worker") => worker_main(&raw[1..]),
        Some("verify") => return verify_main(&raw[1..]),
        Some("churn") => churn_main(&raw[1..]),
        _ => harness_main(raw),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("apcdb crash-test: {e}");
            2
        }
    }
}

fn harness_main(raw: &[String]) -> Result<i32, String> {
    let a = Args::parse(raw, &["php", "keep"])?;
    a.only(&[
        "duration",
        "kills",
        "workers",
        "durability",
        "seed",
        "php",
        "php-ext",
        "dir",
        "keep",
        "keys",
        "counters",
        "hang",
        "max-gap",
        "fresh-store-every",
        "max-size",
    ])?;
    if let Some(p) = a.positional.first() {
        return Err(format!("unexpected argument '{p}'\n{USAGE}"));
    }
    let durability = a.value("durability").unwrap_or("sync").to_string();
    config::parse_durability(&durability)?;
    let seed = a.number("seed")?.unwrap_or_else(fresh_seed);
    let kills = a.number("kills")?;
    let mut duration = a.duration("duration")?;
    if duration.is_none() && kills.is_none() {
        duration = Some(Duration::from_secs(30));
    }
    let workers = a.number("workers")?.unwrap_or(4) as u32;
    if workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    let php_ext = if a.switch("php") || a.value("php-ext").is_some() {
        which_php()?;
        Some(php::find_extension(a.value("php-ext"))?)
    } else {
        None
    };
    if php_ext.is_some() && a.value("max-size").is_some() {
        return Err(
            "--max-size applies to Rust workers only (PHP workers use apcdb.size=1G)".into(),
        );
    }
    let dir_given = a.value("dir").is_some();
    let dir = a
        .value("dir")
        .map(PathBuf::from)
        .unwrap_or_else(|| harness::default_dir(seed));
    let cfg = harness::HarnessConfig {
        workers,
        duration,
        kills,
        durability: durability.clone(),
        seed,
        php_ext: php_ext.clone(),
        dir: dir.clone(),
        keep: a.switch("keep"),
        keys: a.number("keys")?.unwrap_or(32).max(1) as u32,
        counters: a.number("counters")?.unwrap_or(4).max(1) as u32,
        // Workers normally report every few milliseconds; rounds end (killing everyone, which
        // clears a stuck lock file) within seconds, so a stuck worker must be caught sooner.
        hang: a.duration("hang")?.unwrap_or(Duration::from_secs(10)),
        max_gap: a.duration("max-gap")?.unwrap_or(Duration::from_millis(300)),
        fresh_every: a.number("fresh-store-every")?.unwrap_or(4),
        max_size: a.number("max-size")?.unwrap_or(config::DEFAULT_MAX_SIZE),
    };
    let keep = cfg.keep;
    eprintln!(
        "crash-test: seed {seed}, {workers} {} workers, durability {durability}, store in {}",
        if php_ext.is_some() { "PHP" } else { "Rust" },
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
            "reproduce the same choices with: apcdb crash-test --seed {seed} --workers {workers} --durability {durability}{}",
            if php_ext.is_some() { " --php" } else { "" }
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

fn churn_main(raw: &[String]) -> Result<i32, String> {
    let a = Args::parse(raw, &[])?;
    a.only(&["store", "durability"])?;
    let durability = config::parse_durability(a.value("durability").unwrap_or("none"))?;
    churn::run(std::path::Path::new(a.required("store")?), durability)
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

fn worker_main(raw: &[String]) -> Result<i32, String> {
    let a = Args::parse(raw, &[])?;
    let num = |name: &str| {
        a.number(name)?
            .ok_or_else(|| format!("--{name} is required"))
    };
    worker::run(worker::WorkerConfig {
        store: PathBuf::from(a.required("store")?),
        durability: config::parse_durability(a.value("durability").unwrap_or("sync"))?,
        slot: num("slot")? as u32,
        inc: num("inc")?,
        seed: num("seed")?,
        keys: num("keys")?.max(1) as u32,
        counters: num("counters")?.max(1) as u32,
        slots: a.number("slots")?.unwrap_or(1).max(1) as u32,
        max_size: a.number("max-size")?.unwrap_or(config::DEFAULT_MAX_SIZE),
    })
}

/// Exit 0: clean; 1: violations (printed as `VIOLATION ...` lines, plus `lost N`); 2: usage/IO error.
fn verify_main(raw: &[String]) -> i32 {
    match verify_inner(raw) {
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

fn verify_inner(raw: &[String]) -> Result<bool, String> {
    let a = Args::parse(raw, &[])?;
    a.only(&[
        "store",
        "expect",
        "observed",
        "durability",
        "php-ext",
        "max-size",
    ])?;
    let store = PathBuf::from(a.required("store")?);
    let durability_text = a.value("durability").unwrap_or("sync");
    let durability = config::parse_durability(durability_text)?;
    let max_size = a.number("max-size")?.unwrap_or(config::DEFAULT_MAX_SIZE);
    let expect_path = a.required("expect")?;
    let text =
        std::fs::read_to_string(expect_path).map_err(|e| format!("reading {expect_path}: {e}"))?;
    let exp = expect::Expectations::decode(&text)?;
    // The files as the crash left them must pass the engine's offline checker (a torn journal tail
    // is a note, not a problem), and so must they after recovery and a clean close.
    let mut problems = offline_check(&store, "as the crash left it");
    let snap = match a.value("php-ext") {
        Some(ext) => {
            let names: Vec<String> = exp
                .keys
                .keys()
                .chain(exp.counters.keys())
                .cloned()
                .collect();
            let read_from_ms = crate::clock::unix_ms();
            php::observe(std::path::Path::new(ext), &store, durability_text, &names).map(|keys| {
                verify::Snapshot {
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
                }
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
    if opened {
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
    if let Some(path) = a.value("observed") {
        std::fs::write(path, verdict.observed.encode())
            .map_err(|e| format!("writing {path}: {e}"))?;
    }
    Ok(verdict.violations.is_empty())
}
