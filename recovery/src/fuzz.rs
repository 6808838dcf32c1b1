//! `apcdb fuzz`: corruption fuzzing. Makes a store the way a crash leaves it (a worker killed with
//! SIGKILL mid-workload) and a copy of it closed cleanly (which holds a closing snapshot), then
//! over and over copies one of them, damages the copy (flipped bytes, zeroed
//! pages, truncation, junk appended; data file, journal or lock file) and runs `apcdb check` on it
//! in a child process. Acceptable: a consistent store, or a clear error. A failure: a panic, a
//! signal (SIGBUS, SIGSEGV, ...), a hang, a store that checks clean once and not the second time,
//! a clean store handing out a value the workload never wrote, or the offline checker passing a
//! store that then fails to open or read consistently.

use crate::child::run_with_timeout;
use crate::json::LoadLine;
use crate::rng::Rng;
use apcdb::format::PAGE;
use apcdb::Paths;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct FuzzConfig {
    pub iterations: u64,
    pub seed: u64,
    pub dir: PathBuf,
}

#[derive(Default)]
pub struct FuzzTotals {
    pub tried: u64,
    pub consistent: u64,
    pub refused: u64,
    pub failures: Vec<String>,
}

pub fn run(cfg: &FuzzConfig) -> Result<FuzzTotals, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let base = cfg.dir.join("base");
    std::fs::create_dir_all(&base).map_err(|e| format!("creating {}: {e}", base.display()))?;
    let base_store = base.join("store.db");
    make_crashed_store(&exe, &base_store, cfg.seed)?;
    // The same store after a clean close too: every second image starts from it, so that the
    // closing snapshot of the allocator state (SPEC.md §7.2) is damaged as well.
    let clean = cfg.dir.join("clean");
    std::fs::create_dir_all(&clean).map_err(|e| format!("creating {}: {e}", clean.display()))?;
    let clean_store = clean.join("store.db");
    for (a, b) in Paths::new(&base_store)
        .all()
        .into_iter()
        .zip(Paths::new(&clean_store).all())
    {
        std::fs::copy(a, b).map_err(|e| format!("copying: {e}"))?;
    }
    if !check_once(&exe, &clean_store)? {
        return Err("the crashed store did not check clean before its clean close".into());
    }
    let mut rng = Rng::new(cfg.seed);
    let mut t = FuzzTotals::default();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    for i in 0..cfg.iterations {
        let img_dir = cfg.dir.join("image");
        let _ = std::fs::remove_dir_all(&img_dir);
        std::fs::create_dir_all(&img_dir).map_err(|e| e.to_string())?;
        let img = img_dir.join("store.db");
        let from = Paths::new(if i % 2 == 1 {
            &clean_store
        } else {
            &base_store
        });
        let to = Paths::new(&img);
        for (a, b) in from.all().into_iter().zip(to.all()) {
            std::fs::copy(a, b).map_err(|e| format!("copying: {e}"))?;
        }
        let what = corrupt(&mut rng, &img)?;
        t.tried += 1;
        match judge(&exe, &img) {
            Ok(true) => t.consistent += 1,
            Ok(false) => t.refused += 1,
            Err(failure) => {
                let keep = cfg.dir.join(format!("failure-{i}"));
                let _ = std::fs::rename(&img_dir, &keep);
                t.failures.push(format!(
                    "#{i} {what}: {failure} (image kept in {})",
                    keep.display()
                ));
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(2) {
            last_progress = Instant::now();
            eprintln!(
                "fuzz: {:>4.0}s {} corruptions, {} consistent, {} refused, {} failed",
                started.elapsed().as_secs_f64(),
                t.tried,
                t.consistent,
                t.refused,
                t.failures.len()
            );
        }
    }
    Ok(t)
}

/// A store with un-checkpointed journal records and a lock file left by a killed process.
fn make_crashed_store(exe: &Path, store: &Path, seed: u64) -> Result<(), String> {
    let mut child = Command::new(exe)
        .args([
            "crash-test",
            "worker",
            "--slot",
            "0",
            "--inc",
            "1",
            "--keys",
            "64",
            "--counters",
            "4",
        ])
        .args([
            "--seed",
            &seed.to_string(),
            "--durability",
            "none",
            "--store",
        ])
        .arg(store)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the workload: {e}"))?;
    std::thread::sleep(Duration::from_millis(700));
    child.kill().map_err(|e| e.to_string())?;
    child.wait().map_err(|e| e.to_string())?;
    for f in Paths::new(store).all() {
        if !f.exists() {
            return Err(format!("the workload did not create {}", f.display()));
        }
    }
    Ok(())
}

/// Damages one of the three files; returns what it did.
fn corrupt(rng: &mut Rng, img: &Path) -> Result<String, String> {
    let files = Paths::new(img);
    let path = match rng.below(100) {
        0..=54 => files.data,
        55..=84 => files.journal,
        _ => files.lock,
    };
    let mut bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let len = bytes.len() as u64;
    if len == 0 {
        return Ok(format!("{name} is empty; left as is"));
    }
    // Most damage lands in the first 64 KiB, where headers, superblocks and indexes live.
    let offset = |rng: &mut Rng| {
        if rng.chance(600) {
            rng.below(len.min(65536))
        } else {
            rng.below(len)
        }
    };
    let what = match rng.below(100) {
        0..=59 => {
            let n = rng.range(1, 9);
            let mut at = Vec::new();
            for _ in 0..n {
                let o = offset(rng);
                bytes[o as usize] ^= rng.range(1, 256) as u8;
                at.push(o);
            }
            format!("{name}: flipped bytes at {at:?}")
        }
        60..=74 => {
            let page = offset(rng) / PAGE * PAGE;
            let end = (page + PAGE).min(len);
            bytes[page as usize..end as usize].fill(0);
            format!("{name}: zeroed the page at {page}")
        }
        75..=89 => {
            let cut = rng.below(len);
            bytes.truncate(cut as usize);
            format!("{name}: truncated from {len} to {cut} bytes")
        }
        _ => {
            let n = rng.range(1, 8192);
            bytes.extend((0..n).map(|_| rng.next_u64() as u8));
            format!("{name}: appended {n} random bytes")
        }
    };
    std::fs::write(&path, &bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(what)
}

/// Ok(true): consistent; Ok(false): refused with a clear error; Err: a failure worth reporting.
fn judge(exe: &Path, img: &Path) -> Result<bool, String> {
    let first = check_once(exe, img)?;
    if first {
        // Opening may have repaired it (recovery); it must then stay consistent.
        if !check_once(exe, img)? {
            return Err("checked clean, then not clean on the second check".into());
        }
        values_are_genuine(exe, img)?;
    }
    Ok(first)
}

/// Every value the workload wrote identifies and checks itself (see `crash::value`): a store that
/// checks clean must not hand out a value that is not one the workload wrote.
fn values_are_genuine(exe: &Path, img: &Path) -> Result<(), String> {
    let mut cmd = Command::new(exe);
    cmd.arg("dump").arg(img).stderr(Stdio::null());
    let (status, out) = run_with_timeout(cmd, Duration::from_secs(30))?;
    if !status.is_some_and(|s| s.success()) {
        return Err(format!("checked clean, but dump failed ({status:?})"));
    }
    for line in out.lines() {
        let bad = |e: String| format!("dump line {line:?}: {e}");
        let obj: LoadLine = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let key = B64.decode(&obj.key).map_err(|e| bad(e.to_string()))?;
        let key = String::from_utf8_lossy(&key).into_owned();
        let value = B64.decode(&obj.value).map_err(|e| bad(e.to_string()))?;
        let genuine = if key.starts_with("ctr/") || key.starts_with("cas/") {
            std::str::from_utf8(&value).is_ok_and(|s| s.parse::<u64>().is_ok())
        } else {
            crate::crash::value::parse(&key, &value).is_ok()
        };
        if !genuine {
            return Err(format!(
                "checked clean, but {key:?} holds a value the workload never wrote: {:?}",
                String::from_utf8_lossy(&value[..value.len().min(64)])
            ));
        }
    }
    Ok(())
}

fn check_once(exe: &Path, img: &Path) -> Result<bool, String> {
    let mut cmd = Command::new(exe);
    cmd.args(["check", "--open"]).arg(img).stderr(Stdio::null());
    let (status, out) = run_with_timeout(cmd, Duration::from_secs(30))?;
    let Some(status) = status else {
        return Err("apcdb check hung (killed after 30 s)".into());
    };
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(true),
        (Some(1), _) if !out.contains("\nproblem: ") && !out.starts_with("problem: ") => {
            Err(format!(
            "the offline checker found nothing wrong, but opening and reading the store did: {}",
            out.trim()
        ))
        }
        (Some(1), _) => Ok(false),
        (_, Some(sig)) => Err(format!(
            "apcdb check died of signal {sig}; output: {}",
            out.trim()
        )),
        (Some(code), _) => Err(format!(
            "apcdb check exited {code} (101 = panic); output: {}",
            out.trim()
        )),
        _ => Err(format!("apcdb check ended with {status}")),
    }
}
