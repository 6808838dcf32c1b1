//! `apcdb`: inspect, move and repair apcdb stores, and prove they survive crashes.

mod args;
mod check;
mod child;
mod clock;
mod crash;
mod fuzz;
mod json;
mod owner;
mod powercut;
mod remote;
mod rng;
mod stats;
mod transfer;

use args::{Cli, Command, StatsFormat};
use clap::Parser;
use serde_json::{json, Value};
use std::io::Write;

fn main() {
    // clap exits by itself: 0 for --help/--version, 2 for a usage error.
    let cli = Cli::parse();
    let name = cli.command.name();
    let code = match cli.command {
        Command::CrashTest(a) => crash::main(*a),
        cmd => command(cmd).unwrap_or_else(|e| {
            eprintln!("apcdb {name}: {e}");
            2
        }),
    };
    std::process::exit(code);
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Stats(_) => "stats",
            Command::Dump(_) => "dump",
            Command::Load(_) => "load",
            Command::Clear(_) => "clear",
            Command::Check(_) => "check",
            Command::Recover(_) => "recover",
            Command::Resize(_) => "resize",
            Command::Backup(_) => "backup",
            Command::Compact(_) => "compact",
            Command::CrashTest(_) => "crash-test",
            Command::Powercut(_) => "powercut",
            Command::Fuzz(_) => "fuzz",
        }
    }
}

fn command(cmd: Command) -> Result<i32, String> {
    match cmd {
        Command::Stats(a) => {
            let format = if a.json { StatsFormat::Json } else { a.format };
            print!("{}", stats::run(&a.file, format)?);
            Ok(0)
        }
        Command::Dump(a) => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            if let Some(url) = &a.from {
                let n = remote::dump(&remote::Pool::new(url, &a.pool), &mut out)?;
                eprintln!("dumped {n} entries of the pool under {:?}", a.pool.prefix);
                return Ok(0);
            }
            let file = a.file.as_deref().unwrap_or_default();
            let (n, note) = transfer::dump(file, &mut out)?;
            eprintln!("dumped {n} entries; the store was {note}");
            Ok(0)
        }
        Command::Load(a) => {
            if let Some(url) = &a.to {
                let pool = remote::Pool::new(url, &a.pool);
                let l = remote::load(&pool, std::io::stdin().lock())?;
                eprintln!(
                    "loaded {} entries into the pool under {:?} ({} already expired, skipped)",
                    l.stored, a.pool.prefix, l.expired
                );
                return Ok(0);
            }
            let file = a.file.as_deref().unwrap_or_default();
            owner::become_owner(std::path::Path::new(file))?;
            let l = transfer::load(file, std::io::stdin().lock())?;
            eprintln!(
                "loaded {} entries ({} already expired, skipped)",
                l.stored, l.expired
            );
            Ok(0)
        }
        Command::Check(a) => {
            let file = a.file.as_str();
            let r = check::check(file, a.open)?;
            let code = if r.clean() { 0 } else { 1 };
            let mut out = std::io::stdout().lock();
            if a.json {
                let obj = json::Ordered(vec![
                    ("file", json!(file)),
                    ("clean", json!(r.clean())),
                    ("entries", json!(r.entries)),
                    ("journal_records", json!(r.journal_records)),
                    ("problems", json!(r.problems)),
                    ("open_problems", json!(r.open_problems)),
                    ("notes", json!(r.notes)),
                ]);
                let _ = out.write_all(obj.line().as_bytes());
                return Ok(code);
            }
            for n in &r.notes {
                let _ = writeln!(out, "note: {n}");
            }
            for p in &r.problems {
                let _ = writeln!(out, "problem: {p}");
            }
            for p in &r.open_problems {
                let _ = writeln!(out, "problem (open): {p}");
            }
            let summary = format!(
                "{} entries, {} journal records to replay",
                r.entries, r.journal_records
            );
            if r.clean() {
                let _ = writeln!(out, "check: {file}: {summary}, clean");
            } else {
                let n = r.problems.len() + r.open_problems.len();
                let _ = writeln!(out, "check: {file}: {summary}, {n} problems");
            }
            Ok(code)
        }
        Command::Clear(a) => {
            owner::become_owner(std::path::Path::new(&a.file))?;
            let store = apcdb::Store::open(&a.file, apcdb::Options::default().create(false))
                .map_err(|e| e.to_string())?;
            let before = store.stats().map_err(|e| e.to_string())?.entries;
            store.clear().map_err(|e| e.to_string())?;
            println!("clear: {} entries removed from {}", before, a.file);
            Ok(0)
        }
        Command::Resize(a) => {
            owner::become_owner(std::path::Path::new(&a.file))?;
            // Options without a size: the open itself changes nothing; set_max_size does.
            let store = apcdb::Store::open(&a.file, apcdb::Options::default().create(false))
                .map_err(|e| e.to_string())?;
            let old = store.stats().map_err(|e| e.to_string())?.max_size;
            store.set_max_size(a.max_size).map_err(|e| e.to_string())?;
            println!("max_size: {old} -> {} bytes", a.max_size);
            Ok(0)
        }
        Command::Backup(a) => {
            let store = apcdb::Store::open(&a.file, apcdb::Options::default().create(false))
                .map_err(|e| e.to_string())?;
            let started = std::time::Instant::now();
            let r = store.backup_to(&a.out).map_err(|e| e.to_string())?;
            let took = started.elapsed();
            if a.json {
                let obj = json::Ordered(vec![
                    ("file", json!(a.file)),
                    ("out", json!(a.out)),
                    ("entries", json!(r.entries)),
                    ("lsn", json!(r.lsn)),
                    ("attempts", json!(r.attempts)),
                    ("longest_lock_us", json!(r.longest_lock.as_micros() as u64)),
                    ("seconds", json!(took.as_secs_f64())),
                ]);
                print!("{}", obj.line());
            } else {
                println!(
                    "backup: {} -> {}: {} entries, every write up to LSN {} and none after; \
                     {:.2} s, writers stopped at most {} µs ({} attempt{}); the copy checks clean",
                    a.file,
                    a.out,
                    r.entries,
                    r.lsn,
                    took.as_secs_f64(),
                    r.longest_lock.as_micros(),
                    r.attempts,
                    if r.attempts == 1 { "" } else { "s" }
                );
            }
            Ok(0)
        }
        Command::Compact(a) => {
            let store = apcdb::Store::open(&a.file, apcdb::Options::default().create(false))
                .map_err(|e| e.to_string())?;
            let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
            if a.rewrite {
                let r = store.compact_rewrite().map_err(|e| e.to_string())?;
                if a.json {
                    let obj = json::Ordered(vec![
                        ("file", json!(a.file)),
                        ("entries", json!(r.entries)),
                        ("lsn", json!(r.lsn)),
                        ("bytes_before", json!(r.bytes_before)),
                        ("bytes_after", json!(r.bytes_after)),
                        ("longest_lock_us", json!(r.longest_lock.as_micros() as u64)),
                    ]);
                    print!("{}", obj.line());
                } else {
                    println!(
                        "compact --rewrite: {}: {} entries; data file and journal {:.1} MiB -> \
                         {:.1} MiB",
                        a.file,
                        r.entries,
                        mib(r.bytes_before),
                        mib(r.bytes_after)
                    );
                }
                return Ok(0);
            }
            let r = store.compact().map_err(|e| e.to_string())?;
            if a.json {
                let obj = json::Ordered(vec![
                    ("file", json!(a.file)),
                    ("entries", json!(r.entries)),
                    ("moved", json!(r.moved)),
                    ("heap_end", json!(r.heap_end)),
                    ("bytes_before", json!(r.bytes_before)),
                    ("bytes_after", json!(r.bytes_after)),
                    ("longest_lock_us", json!(r.longest_lock.as_micros() as u64)),
                ]);
                print!("{}", obj.line());
            } else {
                println!(
                    "compact: {}: {} entries, {} moved; data file and journal {:.1} MiB -> {:.1} \
                     MiB on disk; writers waited at most {} us",
                    a.file,
                    r.entries,
                    r.moved,
                    mib(r.bytes_before),
                    mib(r.bytes_after),
                    r.longest_lock.as_micros()
                );
            }
            Ok(0)
        }
        Command::Recover(a) => {
            let (file, out) = (a.file.as_str(), a.out.as_str());
            if a.replace {
                owner::become_owner(std::path::Path::new(file))?;
            }
            let r = check::recover(file, out, a.replace)?;
            let code = if r.lost.is_empty() { 0 } else { 1 };
            if a.json {
                let kept = r.damaged_kept_as.as_ref().map(|k| k.display().to_string());
                let obj = json::Ordered(vec![
                    ("file", json!(file)),
                    ("out", json!(out)),
                    ("replaced", json!(kept.is_some())),
                    ("copied", json!(r.copied)),
                    ("expired", json!(r.expired)),
                    ("lost", json!(r.lost)),
                    ("damaged_kept_as", kept.map_or(Value::Null, Value::from)),
                ]);
                print!("{}", obj.line());
                return Ok(code);
            }
            for l in &r.lost {
                println!("lost: {l}");
            }
            match &r.damaged_kept_as {
                Some(kept) => println!(
                    "recover: {} entries saved into {file} ({} expired, {} problems); the damaged files are now {}*",
                    r.copied,
                    r.expired,
                    r.lost.len(),
                    kept.display()
                ),
                None => println!(
                    "recover: {} entries saved into {out} ({} expired, {} problems); {file} left unchanged",
                    r.copied,
                    r.expired,
                    r.lost.len()
                ),
            }
            Ok(code)
        }
        Command::Fuzz(a) => {
            let seed = a.seed.unwrap_or_else(rng::fresh_seed);
            let dir_given = a.dir.is_some();
            let dir = a.dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("apcdb-fuzz-{seed}-{}", std::process::id()))
            });
            let cfg = fuzz::FuzzConfig {
                iterations: a.iterations,
                seed,
                dir: dir.clone(),
            };
            eprintln!("fuzz: seed {seed}, images in {}", dir.display());
            let t = fuzz::run(&cfg)?;
            for f in &t.failures {
                println!("FAILED {f}");
            }
            if t.failures.is_empty() && !dir_given {
                let _ = std::fs::remove_dir_all(&dir);
            } else if !t.failures.is_empty() {
                println!("fuzz FAILED with seed {seed}; reproduce with: apcdb fuzz --seed {seed} --iterations {}", cfg.iterations);
            }
            println!(
                "fuzz: {} corruptions, {} consistent, {} refused with a clear error, {} failed",
                t.tried,
                t.consistent,
                t.refused,
                t.failures.len()
            );
            Ok(if t.failures.is_empty() { 0 } else { 1 })
        }
        Command::Powercut(a) => {
            let seed = a.seed.unwrap_or_else(rng::fresh_seed);
            let durability_text = a.durability.as_str();
            let durability = crash::parse_durability(durability_text)?;
            let dir_given = a.dir.is_some();
            let dir = a.dir.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("apcdb-powercut-{seed}-{}", std::process::id()))
            });
            let cfg = powercut::PowercutConfig {
                images: a.images,
                durability,
                seed,
                dir: dir.clone(),
                per_mille: a.crash_chance.clamp(1, 1000),
                lying_disk: a.lying_disk,
            };
            eprintln!(
                "powercut: seed {seed}, durability {durability_text}, images in {}",
                dir.display()
            );
            let t = powercut::run(&cfg)?;
            for f in t.failures.iter().take(20) {
                println!("FAILED {f}");
            }
            if t.failures.is_empty() {
                if !dir_given {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            } else {
                println!(
                    "powercut FAILED with seed {seed}; reproduce with: apcdb powercut --seed {seed} --durability {durability_text} --images {}",
                    cfg.images
                );
            }
            println!(
                "powercut: {} operations; images with unflushed data pages {}, with an unflushed journal tail {}, with a lost file growth {}; writes racing a flush {}",
                t.operations, t.with_dirty_pages, t.with_journal_cut, t.with_growth_lost, t.racing_writes
            );
            println!("powercut: {} images, {} failed", t.images, t.failures.len());
            Ok(if t.failures.is_empty() { 0 } else { 1 })
        }
        Command::CrashTest(_) => unreachable!("handled in main"),
    }
}
