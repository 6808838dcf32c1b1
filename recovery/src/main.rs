//! `apcdb`: inspect, move and repair apcdb stores, and prove they survive crashes.

mod args;
mod b64;
mod check;
mod child;
mod clock;
mod crash;
mod fuzz;
mod json;
mod powercut;
mod rng;
mod stats;
mod transfer;

use args::Args;
use std::io::Write;

const USAGE: &str = "\
usage:
apcdb stats FILE [--json]      entries, bytes, journal fill, checkpoint epoch, generation
apcdb dump FILE                every entry as JSON lines on stdout (base64 key/value, expires_at_ms)
apcdb load FILE                read such JSON lines from stdin into FILE (created if missing)
apcdb check FILE [--open]      verify every checksum and structural invariant without changing
                               anything; --open also opens it (runs recovery) and cross-checks
                               every entry through the API; exit 1 with the problems found
apcdb recover FILE --out NEW [--replace]
                               salvage every entry whose checksum holds into a fresh store NEW;
                               --replace then puts it in FILE's place (refused while any process
                               has FILE open; originals kept as FILE.damaged*)
apcdb crash-test [...]         the kill -9 harness (apcdb crash-test --help)
apcdb fuzz [--iterations 200] [--seed N] [--dir DIR]
                               damage copies of a crashed store at random; `check` must never
                               panic, die of a signal or hang
apcdb powercut [--images 1000] [--durability sync|periodic|none] [--seed N] [--dir DIR]
                               the power-loss simulator: crash images (lost or torn pages, the
                               journal cut at any byte) must recover to a state the model allows";

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let code = match raw.first().map(String::as_str) {
        Some("crash-test") if raw.get(1).is_some_and(|a| a == "--help" || a == "-h") => {
            println!("{}", crash::USAGE);
            0
        }
        Some("crash-test") => crash::main(&raw[1..]),
        Some(cmd @ ("stats" | "dump" | "load" | "check" | "recover" | "powercut" | "fuzz")) => {
            match command(cmd, &raw[1..]) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("apcdb {cmd}: {e}");
                    2
                }
            }
        }
        Some("--help" | "-h" | "help") => {
            println!("{USAGE}");
            0
        }
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}

fn one_file(a: &Args) -> Result<&str, String> {
    match a.positional.as_slice() {
        [f] => Ok(f),
        _ => Err(format!("expected exactly one FILE\n{USAGE}")),
    }
}

fn command(cmd: &str, raw: &[String]) -> Result<i32, String> {
    let a = Args::parse(raw, &["json", "open", "replace", "lying-disk"])?;
    match cmd {
        "stats" => {
            a.only(&["json"])?;
            print!("{}", stats::run(one_file(&a)?, a.switch("json"))?);
            Ok(0)
        }
        "dump" => {
            a.only(&[])?;
            let stdout = std::io::stdout();
            let n = transfer::dump(one_file(&a)?, &mut std::io::BufWriter::new(stdout.lock()))?;
            eprintln!("dumped {n} entries");
            Ok(0)
        }
        "load" => {
            a.only(&[])?;
            let l = transfer::load(one_file(&a)?, std::io::stdin().lock())?;
            eprintln!(
                "loaded {} entries ({} already expired, skipped)",
                l.stored, l.expired
            );
            Ok(0)
        }
        "check" => {
            a.only(&["open"])?;
            let file = one_file(&a)?;
            let r = check::check(file, a.switch("open"))?;
            let mut out = std::io::stdout().lock();
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
                Ok(0)
            } else {
                let n = r.problems.len() + r.open_problems.len();
                let _ = writeln!(out, "check: {file}: {summary}, {n} problems");
                Ok(1)
            }
        }
        "recover" => {
            a.only(&["out", "replace"])?;
            let file = one_file(&a)?;
            let out = a.required("out")?;
            let r = check::recover(file, out, a.switch("replace"))?;
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
            Ok(if r.lost.is_empty() { 0 } else { 1 })
        }
        "fuzz" => {
            a.only(&["iterations", "seed", "dir"])?;
            let seed = a.number("seed")?.unwrap_or_else(rng::fresh_seed);
            let dir_given = a.value("dir").is_some();
            let dir = a
                .value("dir")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    std::env::temp_dir().join(format!("apcdb-fuzz-{seed}-{}", std::process::id()))
                });
            let cfg = fuzz::FuzzConfig {
                iterations: a.number("iterations")?.unwrap_or(200),
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
        "powercut" => {
            a.only(&[
                "images",
                "durability",
                "seed",
                "dir",
                "crash-chance",
                "lying-disk",
            ])?;
            let seed = a.number("seed")?.unwrap_or_else(rng::fresh_seed);
            let durability_text = a.value("durability").unwrap_or("sync");
            let durability = crash::parse_durability(durability_text)?;
            let dir_given = a.value("dir").is_some();
            let dir = a
                .value("dir")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    std::env::temp_dir()
                        .join(format!("apcdb-powercut-{seed}-{}", std::process::id()))
                });
            let cfg = powercut::PowercutConfig {
                images: a.number("images")?.unwrap_or(1000),
                durability,
                seed,
                dir: dir.clone(),
                per_mille: a.number("crash-chance")?.unwrap_or(100).clamp(1, 1000),
                lying_disk: a.switch("lying-disk"),
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
                "powercut: {} operations; images with unflushed data pages {}, with an unflushed journal tail {}, with a lost file growth {}",
                t.operations, t.with_dirty_pages, t.with_journal_cut, t.with_growth_lost
            );
            println!("powercut: {} images, {} failed", t.images, t.failures.len());
            Ok(if t.failures.is_empty() { 0 } else { 1 })
        }
        _ => unreachable!(),
    }
}
