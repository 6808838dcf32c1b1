//! The pauses sections: how long single puts take at the tail (p99.9, worst) over a run long
//! enough to include apcdb's checkpoints, and how long a fresh process waits before its first
//! read. Means and rates over short rows hide both; these rows are there to show them.

use crate::engines::{config_label, open, Engine, Family, Mode, OpenArgs, Res};
use crate::report::{fmt, verdict, Section, Unit};
use crate::{
    batched, key, kill_full_writer, thousands, timed_open, value_pool, Args, ChildSpec, Ctx, Rng,
    KEY_LEN, S_FOPEN, S_TAIL, VALUE_LEN,
};
use std::time::{Duration, Instant};

// The tail section's metrics, in column order (see `sections`).
pub const T_P50: usize = 0;
pub const T_P999: usize = 2;
pub const T_MAX: usize = 3;
pub const T_RATE: usize = 6;
pub const T_CKPT: usize = 7;
/// A put at least this long counts as a pause.
const PAUSE_NS: u32 = 1_000_000;

/// apcdb's tail rows must hold at least this many checkpoints: the steady state, not the stretch
/// before the first one.
pub const TAIL_MIN_CHECKPOINTS: u64 = 10;

/// How long one tail row may run. `lengthen`: apcdb running on until it has held enough
/// checkpoints; otherwise the peers' limit ("N puts or T seconds, whichever first").
pub fn tail_cap(a: &Args, mode: Mode, lengthen: bool) -> Duration {
    let s = match (a.smoke, lengthen, mode) {
        (true, _, _) => 2,
        (false, true, _) => 120,
        (false, false, Mode::Fast) => 60,
        (false, false, _) => 20,
    };
    Duration::from_secs(s)
}

/// One timed tail row.
struct Tail {
    /// Per-put latency in ns (saturated at u32::MAX, ~4.3 s), in put order until sorted.
    lat: Vec<u32>,
    elapsed: Duration,
    /// apcdb only: checkpoints during the timed puts.
    checkpoints: Option<u64>,
    /// apcdb only: puts during which the checkpoint count moved (the put ran one), and their
    /// summed time in ns; tells the checkpoints' own stalls from the other slow puts.
    ckpt_puts: u64,
    ckpt_ns: u64,
    /// Of those, the ones that took PAUSE_NS or more: count and summed ns.
    ckpt_slow: (u64, u64),
    capped: bool,
}

/// Random overwrites of `nkeys` existing keys, each put timed on its own. Runs `target` puts, then,
/// if the engine counts checkpoints and fewer than `min_ckpt` happened, goes on until they have or
/// `max_ops` puts are done; stops early at `cap`. The latency vector is allocated up front, so the
/// loop itself never allocates.
fn tail_run(
    eng: &dyn Engine,
    target: u64,
    max_ops: u64,
    min_ckpt: u64,
    cap: Duration,
    nkeys: u64,
    seed: u64,
) -> Res<Tail> {
    let pool = value_pool();
    let mut rng = Rng::new(seed);
    let mut h = eng.handle()?;
    let max_ops = max_ops.max(target);
    let mut lat: Vec<u32> = Vec::with_capacity(max_ops as usize);
    let c0 = eng.checkpoints();
    let start = Instant::now();
    let deadline = start + cap;
    let mut last = start;
    let mut capped = false;
    let mut n = 0u64;
    let mut prev_ckpt = c0;
    let (mut ckpt_puts, mut ckpt_ns, mut ckpt_slow) = (0u64, 0u64, (0u64, 0u64));
    while n < max_ops {
        let r = rng.next();
        let k: [u8; KEY_LEN] = key(r % nkeys);
        let v: &[u8; VALUE_LEN] = &pool[(r >> 32) as usize % pool.len()];
        let t = Instant::now();
        h.put(&k, v)?;
        last = Instant::now();
        let l = (last - t).as_nanos().min(u32::MAX as u128) as u32;
        lat.push(l);
        n += 1;
        // An atomic load or two, between puts (outside every timed interval).
        if prev_ckpt.is_some() {
            let c = eng.checkpoints();
            if c != prev_ckpt {
                ckpt_puts += 1;
                ckpt_ns += l as u64;
                if l >= PAUSE_NS {
                    ckpt_slow.0 += 1;
                    ckpt_slow.1 += l as u64;
                }
            }
            prev_ckpt = c;
        }
        if last >= deadline {
            capped = true;
            break;
        }
        // Past the planned length, look at the checkpoint count now and then (an atomic load;
        // between puts, so outside every timed interval).
        if n >= target && (n - target).is_multiple_of(1024) {
            match (c0, eng.checkpoints()) {
                (Some(c0), Some(c)) if c - c0 < min_ckpt => {}
                _ => break,
            }
        }
    }
    let checkpoints = c0.zip(eng.checkpoints()).map(|(a, b)| b - a);
    Ok(Tail {
        lat,
        elapsed: last - start,
        checkpoints,
        ckpt_puts,
        ckpt_ns,
        ckpt_slow,
        capped,
    })
}

/// p50, p99, p99.9, max (ns) of `lat`, which it sorts.
fn percentiles(lat: &mut [u32]) -> [f64; 4] {
    if lat.is_empty() {
        return [f64::NAN; 4];
    }
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64;
    [pct(0.50), pct(0.99), pct(0.999), lat[lat.len() - 1] as f64]
}

const ND_ROW: &str = "non-durable, 1 writer";
const DUR_ROW: &str = "durable, 1 writer";
/// Journal of the extra durable apcdb row: the default of a store opened with
/// `Options::default()`, small enough for ten checkpoints within the row's time, where the tail
/// store's own (64 MiB, from its 1 GiB `max_size`) needs several minutes of durable puts.
pub const SMALL_JOURNAL: u64 = 16 << 20;

/// One tail row: open `oa`'s store, run the puts, record the row. `slot`: which of apcdb's lengths
/// this row sets (apcdb) or follows (peers); None for a row that does neither.
fn tail_row(
    cx: &mut Ctx,
    fam: Family,
    oa: &OpenArgs,
    slot: Option<usize>,
    planned: u64,
    row: &str,
    label: &str,
) -> Res<()> {
    let a = cx.args;
    let apc = fam == Family::Apcdb;
    let mode = oa.mode;
    // The peers get as many puts as apcdb's row ended up with, within their own time limit.
    let target = match slot {
        Some(s) if !apc => cx.tail_apc_ops[s].unwrap_or(planned).max(planned),
        _ => planned,
    };
    // A smoke run does not lengthen: it only checks that the "too short" path works.
    let max_ops = if apc && !a.smoke {
        (planned * 100).min(8_000_000).max(planned)
    } else {
        target
    };
    let cap = tail_cap(a, mode, apc);
    let eng = open(fam, oa)?;
    let seed = 500 + mode as u64 + cx.round as u64 * 7;
    let mut t = tail_run(
        &*eng,
        target,
        max_ops,
        TAIL_MIN_CHECKPOINTS,
        cap,
        oa.keys,
        seed,
    )?;
    eng.close();
    let ops = t.lat.len() as u64;
    if let (true, Some(s)) = (apc, slot) {
        cx.tail_apc_ops[s] = Some(ops);
    }
    let [p50, p99, p999, max] = percentiles(&mut t.lat);
    let rate = ops as f64 / t.elapsed.as_secs_f64();
    // Pauses: how many puts took PAUSE_NS or more, and what share of the run they took together.
    let first_slow = t.lat.partition_point(|&l| l < PAUSE_NS);
    let slow = &t.lat[first_slow..];
    let slow_ns = slow.iter().fold(0.0, |s, &l| s + l as f64);
    let slow_share = slow_ns / t.elapsed.as_nanos().max(1) as f64 * 100.0;
    let mut note = format!(
        "{} puts in {:.1} s",
        thousands(ops),
        t.elapsed.as_secs_f64()
    );
    if t.capped {
        note += &format!(" (stopped at the {} s limit)", cap.as_secs());
    }
    if let Some(c) = t.checkpoints {
        let secs = t.elapsed.as_secs_f64().max(1e-9);
        note += &format!(
            "; {} puts ran a checkpoint: {:.2} s in all ({:.1} % of the run), the other {} puts \
             ≥ 1 ms {:.2} s",
            t.ckpt_puts,
            t.ckpt_ns as f64 / 1e9,
            t.ckpt_ns as f64 / 1e9 / secs * 100.0,
            slow.len() as u64 - t.ckpt_slow.0,
            (slow_ns - t.ckpt_slow.1 as f64).max(0.0) / 1e9,
        );
        if ops > planned {
            note += &format!(" (lengthened from {} puts)", thousands(planned));
        }
        if c < TAIL_MIN_CHECKPOINTS {
            note += &format!("; **too short: fewer than {TAIL_MIN_CHECKPOINTS} checkpoints**");
        }
    }
    cx.secs[S_TAIL].record(
        row,
        config_label(Family::Lmdb, mode),
        label,
        vec![
            p50,
            p99,
            p999,
            max,
            slow.len() as f64,
            slow_share,
            rate,
            t.checkpoints.map_or(f64::NAN, |c| c as f64),
        ],
        &note,
    );
    Ok(())
}

/// Fresh processes timed per row of the fresh-open section: one child's open is at the mercy of
/// the scheduler (two cores shared with the parent), so a row shows the median and the worst.
pub const FOPEN_CLEAN_CHILDREN: usize = 7;
/// Kills (each followed by one fresh open) per kill -9 row: each needs a writer that fills a
/// journal's worth first.
pub const FOPEN_KILLS: u64 = 3;

/// The fresh-open section's cells (median open, worst open, median spawn-to-read) and note of
/// several timed children; the first child's note, the others' when they differ.
fn fresh_open_cells(runs: Vec<(f64, f64, String)>) -> (Vec<f64>, String) {
    let open: Vec<f64> = runs.iter().map(|r| r.0).collect();
    let max = open.iter().copied().fold(f64::NAN, f64::max);
    let spawn = crate::report::median(runs.iter().map(|r| r.1).collect());
    let mut notes: Vec<&str> = Vec::new();
    for (_, _, n) in &runs {
        if !n.is_empty() && !notes.contains(&n.as_str()) {
            notes.push(n);
        }
    }
    let values = vec![
        crate::report::median(open).unwrap_or(f64::NAN),
        max,
        spawn.unwrap_or(f64::NAN),
    ];
    let mut note = format!("{} fresh processes", runs.len());
    if !notes.is_empty() {
        note = format!("{note}; {}", notes.join(" / "));
    }
    (values, note)
}

/// Load a fresh store, run the tail rows in both modes, then open it in fresh processes after a
/// clean close and after kill -9 of a writer.
pub fn pauses_round(cx: &mut Ctx, fam: Family) {
    let a = cx.args;
    let n = a.keys;
    let dir = a.dir.join(format!("{}-pauses", fam.key()));
    let _ = std::fs::remove_dir_all(&dir);
    let oa = |mode| OpenArgs {
        dir: &dir,
        mode,
        keys: n,
        multi_process: false,
        journal_size: None,
    };
    let loaded = cx.phase(format!("{} pauses: load", fam.key()), |_| {
        let eng = open(fam, &oa(Mode::Fast))?;
        batched(&*eng, 0, n, 1, false)?;
        eng.close();
        Ok(())
    });
    if !loaded {
        return;
    }

    if cx.want(S_TAIL) {
        for (slot, mode, planned, row) in [
            (0, Mode::Fast, a.tail_ops, ND_ROW),
            (1, Mode::Durable, a.tail_durable_ops, DUR_ROW),
        ] {
            let what = format!("{} tail latency, {row}", fam.key());
            cx.phase(what, |cx| {
                let label = config_label(fam, mode);
                tail_row(cx, fam, &oa(mode), Some(slot), planned, row, label)
            });
        }
        if fam == Family::Apcdb {
            // With the tail store's 64 MiB journal a durable row reaches its checkpoints only
            // after several minutes; `Options::default()`'s journal shows the steady state of the
            // same protocol within the row's time.
            let jdir = a.dir.join("apcdb-pauses-small-journal");
            let _ = std::fs::remove_dir_all(&jdir);
            let joa = |mode| OpenArgs {
                dir: &jdir,
                journal_size: Some(SMALL_JOURNAL),
                ..oa(mode)
            };
            let label = format!("apcdb Sync, {} MiB journal", SMALL_JOURNAL >> 20);
            cx.phase(format!("apcdb tail latency, {DUR_ROW}, {label}"), |cx| {
                let eng = open(fam, &joa(Mode::Fast))?;
                batched(&*eng, 0, n, 1, false)?;
                eng.close();
                let planned = a.tail_durable_ops;
                tail_row(cx, fam, &joa(Mode::Durable), None, planned, DUR_ROW, &label)
            });
            if !a.keep {
                let _ = std::fs::remove_dir_all(&jdir);
            }
        }
    }
    if cx.want(S_FOPEN) {
        let lmdb = Family::Lmdb.label();
        let open_spec = ChildSpec {
            role: "open",
            fam,
            mode: Mode::Durable,
            dir: &dir,
            keys: n,
            dur: a.duration,
            seed: 0,
            multi_process: false,
            kill_bytes: a.kill_bytes,
        };
        let nk = thousands(n);
        cx.phase(
            format!("{} fresh open after clean close", fam.key()),
            |cx| {
                // One fresh process after another, each after the previous one's clean close.
                let mut runs = Vec::new();
                for _ in 0..FOPEN_CLEAN_CHILDREN {
                    runs.push(timed_open(&open_spec)?);
                }
                let row = format!("{nk} keys, after a clean close");
                let (values, note) = fresh_open_cells(runs);
                cx.secs[S_FOPEN].record(&row, lmdb, fam.label(), values, &note);
                Ok(())
            },
        );
        cx.phase(format!("{} fresh open after kill -9", fam.key()), |cx| {
            let (mut runs, mut used, mut size) = (Vec::new(), Vec::new(), 0);
            for kill in 0..FOPEN_KILLS {
                let f = kill_full_writer(&ChildSpec {
                    role: "killwriter",
                    mode: Mode::Fast,
                    seed: 91 + cx.round as u64 * FOPEN_KILLS + kill,
                    ..open_spec
                })?;
                if fam == Family::Apcdb && f.len() == 3 {
                    used.push(thousands(f[0] >> 10));
                    size = f[1] >> 10;
                }
                runs.push(timed_open(&open_spec)?);
            }
            let row = format!("{nk} keys, after kill -9 with a full journal");
            let (values, mut note) = fresh_open_cells(runs);
            if !used.is_empty() {
                note = format!(
                    "journal {} of {} KiB used at the kills; {note}",
                    used.join(", "),
                    thousands(size)
                );
            }
            cx.secs[S_FOPEN].record(&row, lmdb, fam.label(), values, &note);
            Ok(())
        });
    }
    if !a.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Issue 10's targets, judged on these rows; empty when neither pauses section ran.
pub fn pause_targets(secs: &[Section]) -> String {
    let (tail, fopen) = (&secs[S_TAIL], &secs[S_FOPEN]);
    if tail.rows.is_empty() && fopen.rows.is_empty() {
        return String::new();
    }
    let (nd, du) = (ND_ROW, DUR_ROW);
    let apc_nd = config_label(Family::Apcdb, Mode::Fast);
    let apc_du = config_label(Family::Apcdb, Mode::Durable);
    let lmdb_nd = config_label(Family::Lmdb, Mode::Fast);
    let lmdb_du = config_label(Family::Lmdb, Mode::Durable);
    // A tail verdict counts only on a row that held enough checkpoints.
    let tail_verdict = |row: &str, cfg: &str, ok: Option<bool>| match tail.median(row, cfg, T_CKPT)
    {
        Some(c) if c < TAIL_MIN_CHECKPOINTS as f64 && ok.is_some() => {
            format!("{} on a row too short ({c:.0} checkpoints)", verdict(ok))
        }
        _ => verdict(ok).to_string(),
    };
    let ns = |v| fmt(v, Unit::Nanos);
    let mut rows = Vec::new();
    let max = tail.median(nd, apc_nd, T_MAX);
    let lmax = tail.median(nd, lmdb_nd, T_MAX);
    rows.push(format!(
        "| worst non-durable put ≤ 2 ms | {} (LMDB NO_SYNC {}) | {} |",
        ns(max),
        ns(lmax),
        tail_verdict(nd, apc_nd, max.map(|m| m <= 2e6))
    ));
    let p = tail.median(nd, apc_nd, T_P999);
    rows.push(format!(
        "| non-durable p99.9 ≤ 20 µs | {} (LMDB NO_SYNC {}) | {} |",
        ns(p),
        ns(tail.median(nd, lmdb_nd, T_P999)),
        tail_verdict(nd, apc_nd, p.map(|p| p <= 20e3))
    ));
    let (a, b) = (
        tail.median(nd, apc_nd, T_RATE),
        tail.median(nd, lmdb_nd, T_RATE),
    );
    let r = a.zip(b).map(|(a, b)| a / b);
    rows.push(format!(
        "| non-durable throughput, whole run ≥ 5× LMDB NO_SYNC | {}/s vs {}/s = {} | {} |",
        fmt(a, Unit::Rate),
        fmt(b, Unit::Rate),
        fmt(r, Unit::Times),
        tail_verdict(nd, apc_nd, r.map(|r| r >= 5.0))
    ));
    let small = format!("apcdb Sync, {} MiB journal", SMALL_JOURNAL >> 20);
    for (cfg, which) in [
        (apc_du, "64 MiB journal".to_string()),
        (
            small.as_str(),
            format!("{} MiB journal", SMALL_JOURNAL >> 20),
        ),
    ] {
        let (p50, p999) = (tail.median(du, cfg, T_P50), tail.median(du, cfg, T_P999));
        let r = p999.zip(p50).map(|(a, b)| a / b);
        rows.push(format!(
            "| Sync p99.9 ≤ 3× Sync median ({which}) | {} vs {} = {} | {} |",
            ns(p999),
            ns(p50),
            fmt(r, Unit::Times),
            tail_verdict(du, cfg, r.map(|r| r <= 3.0))
        ));
        let (a, b) = (tail.median(du, cfg, T_MAX), tail.median(du, lmdb_du, T_MAX));
        rows.push(format!(
            "| worst Sync put ≤ LMDB default's worst ({which}) | {} vs {} | {} |",
            ns(a),
            ns(b),
            tail_verdict(du, cfg, a.zip(b).map(|(a, b)| a <= b))
        ));
    }
    for (what, limit) in [
        ("after a clean close", 5e6),
        ("after kill -9 with a full journal", 50e6),
    ] {
        let row = fopen
            .rows
            .iter()
            .find(|r| r.name.ends_with(what))
            .map(|r| r.name.as_str())
            .unwrap_or("");
        let t = fopen.median(row, Family::Apcdb.label(), 0);
        rows.push(format!(
            "| fresh-process open {what} ≤ {} | {} (worst {}; LMDB {}) | {} |",
            ns(Some(limit)),
            ns(t),
            ns(fopen.median(row, Family::Apcdb.label(), 1)),
            ns(fopen.median(row, Family::Lmdb.label(), 0)),
            verdict(t.map(|t| t <= limit))
        ));
    }
    format!(
        "### Targets (issue 10: pauses; apcdb's tail rows must hold ≥ {TAIL_MIN_CHECKPOINTS} checkpoints, see their notes)\n\n\
         | target | measured (medians) | verdict |\n|---|---|---|\n{}\n",
        rows.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fresh_dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("apcdb-bench-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn loaded(fam: Family, dir: &std::path::Path, journal_size: Option<u64>) -> Box<dyn Engine> {
        let eng = open(
            fam,
            &OpenArgs {
                dir,
                mode: Mode::Fast,
                keys: 200,
                multi_process: false,
                journal_size,
            },
        )
        .unwrap();
        batched(&*eng, 0, 200, 1, false).unwrap();
        eng
    }

    #[test]
    fn percentiles_of_a_known_spread() {
        let mut v: Vec<u32> = (1..=1000).rev().collect();
        assert_eq!(percentiles(&mut v), [501.0, 991.0, 1000.0, 1000.0]);
        assert!(percentiles(&mut []).iter().all(|x| x.is_nan()));
    }

    #[test]
    fn apcdb_row_runs_on_until_it_holds_the_checkpoints() {
        let dir = fresh_dir("lengthen");
        // A small journal (a quarter of it must still hold the 200-key load batch): about a
        // thousand puts fill it.
        let eng = loaded(Family::Apcdb, &dir, Some(256 << 10));
        let cap = Duration::from_secs(60);
        let short = tail_run(&*eng, 10, 10, 3, cap, 200, 1).unwrap();
        assert_eq!(short.lat.len(), 10);
        assert!(
            short.checkpoints.unwrap() < 3,
            "10 puts should not fill 256 KiB"
        );
        let long = tail_run(&*eng, 10, 1_000_000, 3, cap, 200, 2).unwrap();
        assert!(long.checkpoints.unwrap() >= 3);
        // One writer: each checkpoint runs inside one of its puts (two may share one put).
        assert!(long.ckpt_puts >= 1 && long.ckpt_puts <= long.checkpoints.unwrap());
        assert!(long.ckpt_ns > 0);
        assert!(long.lat.len() > 10 && long.lat.len() < 1_000_000);
        assert!(!long.capped);
        eng.close();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn peer_row_stops_at_its_target() {
        let dir = fresh_dir("peer");
        let eng = loaded(Family::Lmdb, &dir, None);
        let t = tail_run(&*eng, 500, 1_000_000, 3, Duration::from_secs(60), 200, 3).unwrap();
        assert_eq!(t.lat.len(), 500);
        assert!(t.checkpoints.is_none() && !t.capped);
        let t = tail_run(&*eng, 500, 500, 3, Duration::ZERO, 200, 4).unwrap();
        assert!(
            t.capped && t.lat.len() == 1,
            "a spent time limit stops after one put"
        );
        eng.close();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
