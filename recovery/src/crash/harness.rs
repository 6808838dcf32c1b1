//! The kill -9 harness: runs worker processes against one store, SIGKILLs them at random moments,
//! restarts them, and after each round (all workers dead) has a fresh process verify the store.

use super::expect::Observed;
use super::model::Model;
use super::protocol::{self, Line, Op};
use super::redis_server::RedisServer;
use super::{php, verify_timeout};
use crate::child::run_with_timeout;
use crate::clock::monotonic_ns;
use crate::rng::Rng;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct HarnessConfig {
    pub workers: u32,
    pub duration: Option<Duration>,
    pub kills: Option<u64>,
    /// As given on the command line (`sync`, `periodic`, `periodic:20ms`, `none`).
    pub durability: String,
    pub seed: u64,
    pub php_ext: Option<PathBuf>,
    pub dir: PathBuf,
    pub keep: bool,
    pub keys: u32,
    pub counters: u32,
    /// A worker silent for this long is reported as hung.
    pub hang: Duration,
    /// Longest pause between two kills.
    pub max_gap: Duration,
    /// Every this many rounds the store is deleted and the workers start on a new one, so store
    /// creation (by racing workers) and file growth happen under kills again and again. 0: never.
    pub fresh_every: u64,
    /// The store's maximum size; small enough and writes get refused as full.
    pub max_size: u64,
    /// PHP workers evict when full (`apcdb.when_full=evict`): any key may be absent.
    pub evict: bool,
    /// PHP workers on a Redis pool of a redis-server the harness runs (with these extra
    /// arguments) instead of a file: `crash-test --redis`.
    pub redis: Option<String>,
}

pub struct Totals {
    pub kills: u64,
    pub acknowledged: u64,
    pub verified: u64,
    pub lost: u64,
    pub rounds: u64,
    pub refused_full: u64,
    /// Kills that landed while the worker had an operation announced and not acknowledged.
    pub kills_mid_operation: u64,
    /// Kills that landed before the worker had opened the store (creation, recovery).
    pub kills_during_open: u64,
    /// The longest a live worker went without reporting anything, and the longest verification:
    /// near-hangs show here before they pass `--hang`.
    pub longest_silence: Duration,
    /// What that worker was doing then.
    pub longest_silence_during: String,
    pub longest_verify: Duration,
    pub violations: Vec<String>,
}

enum Msg {
    Line(String),
    Eof,
}

struct Running {
    child: Child,
    inc: u64,
    pending: Option<(u64, u64, Op)>,
    last_seen: Instant,
    reader: Option<JoinHandle<()>>,
    exited: bool,
    /// It reported the store open.
    ready: bool,
}

struct Harness {
    cfg: HarnessConfig,
    exe: PathBuf,
    store: PathBuf,
    /// With `--redis`: the server holding the pool (`store` then only names the directory).
    server: Option<RedisServer>,
    php_script: Option<PathBuf>,
    rng: Rng,
    model: Model,
    tx: Sender<(u32, u64, Msg)>,
    rx: Receiver<(u32, u64, Msg)>,
    slots: Vec<Option<Running>>,
    next_inc: u64,
    round_acked: u64,
    t: Totals,
    started: Instant,
    last_progress: Instant,
}

pub fn run(cfg: HarnessConfig) -> Result<Totals, String> {
    std::fs::create_dir_all(&cfg.dir)
        .map_err(|e| format!("creating {}: {e}", cfg.dir.display()))?;
    let store = cfg.dir.join("store.db");
    let php_script = match &cfg.php_ext {
        Some(_) => Some(php::write_worker_script(&cfg.dir)?),
        None => None,
    };
    let server = match &cfg.redis {
        Some(extra) => Some(RedisServer::start(&cfg.dir, extra)?),
        None => None,
    };
    let (tx, rx) = channel();
    let mut h = Harness {
        exe: std::env::current_exe().map_err(|e| format!("cannot locate this binary: {e}"))?,
        store,
        server,
        php_script,
        rng: Rng::new(cfg.seed),
        model: Model::new(cfg.workers, cfg.keys, cfg.counters, cfg.evict),
        tx,
        rx,
        slots: (0..cfg.workers).map(|_| None).collect(),
        next_inc: 1,
        round_acked: 0,
        t: Totals {
            kills: 0,
            acknowledged: 0,
            verified: 0,
            lost: 0,
            rounds: 0,
            refused_full: 0,
            kills_mid_operation: 0,
            kills_during_open: 0,
            longest_silence: Duration::ZERO,
            longest_silence_during: String::new(),
            longest_verify: Duration::ZERO,
            violations: vec![],
        },
        started: Instant::now(),
        last_progress: Instant::now(),
        cfg,
    };
    h.run_rounds()?;
    Ok(h.t)
}

impl Harness {
    fn done(&self) -> bool {
        let by_kills = self.cfg.kills.is_some_and(|k| self.t.kills >= k);
        let by_time = self
            .cfg
            .duration
            .is_some_and(|d| self.started.elapsed() >= d);
        by_kills || by_time || !self.t.violations.is_empty()
    }

    fn run_rounds(&mut self) -> Result<(), String> {
        loop {
            self.t.rounds += 1;
            if self.cfg.fresh_every > 0
                && self.t.rounds > 1
                && (self.t.rounds - 1).is_multiple_of(self.cfg.fresh_every)
            {
                // Every worker is dead and the last round verified: start over on a new store.
                match &self.server {
                    Some(server) => server.flush()?,
                    None => {
                        for p in apcdb::Paths::new(&self.store).all() {
                            std::fs::remove_file(p).map_err(|e| format!("removing {p:?}: {e}"))?;
                        }
                    }
                }
                self.model = Model::new(
                    self.cfg.workers,
                    self.cfg.keys,
                    self.cfg.counters,
                    self.cfg.evict,
                );
            }
            for slot in 0..self.cfg.workers {
                self.start(slot)?;
            }
            // After a fresh start, let a worker create the store before anything is killed: a
            // round cut short by --duration right here would otherwise verify a store that no
            // worker lived long enough to make (PHP workers take tens of ms to start).
            let made_by = Instant::now() + Duration::from_secs(10);
            while self.server.is_none() && !self.store.exists() && Instant::now() < made_by {
                self.pump(Instant::now() + Duration::from_millis(5), None)?;
            }
            let kills_this_round = self.rng.range(1, 2 * self.cfg.workers as u64 + 2);
            for _ in 0..kills_this_round {
                if self.done() {
                    break;
                }
                let gap =
                    Duration::from_micros(self.rng.below(self.cfg.max_gap.as_micros() as u64 + 1));
                self.pump(Instant::now() + gap, None)?;
                let slot = self.rng.below(self.cfg.workers as u64) as u32;
                if self.rng.chance(500) {
                    // Aim at the inside of an operation: kill just after the worker announced one.
                    if self.pump(Instant::now() + Duration::from_secs(2), Some(slot))? {
                        std::thread::sleep(Duration::from_micros(self.rng.below(3000)));
                    }
                }
                self.kill(slot)?;
                self.start(slot)?;
                if self.rng.chance(150) {
                    // Kill the newcomer while it opens the store: creation, or recovery after the
                    // previous holder of the lock died.
                    std::thread::sleep(Duration::from_micros(self.rng.below(5000)));
                    self.kill(slot)?;
                    self.start(slot)?;
                }
            }
            // End of round: every worker dies, at whatever it is doing.
            for slot in 0..self.cfg.workers {
                self.kill(slot)?;
            }
            self.verify_round()?;
            if !self.done() {
                self.progress(false);
            } else {
                self.progress(true);
                return Ok(());
            }
        }
    }

    fn start(&mut self, slot: u32) -> Result<(), String> {
        if self.slots[slot as usize].is_some() {
            return Ok(());
        }
        let inc = self.next_inc;
        self.next_inc += 1;
        let target = self.target();
        let mut cmd = match (&self.cfg.php_ext, &self.php_script) {
            (Some(ext), Some(script)) => php::worker_command(
                ext,
                &target,
                &self.cfg.durability,
                script,
                slot,
                inc,
                self.cfg.seed,
                self.cfg.keys,
                self.cfg.counters,
                self.cfg.max_size,
                self.cfg.evict,
            ),
            _ => {
                let mut c = Command::new(&self.exe);
                c.arg("crash-test")
                    .arg("worker")
                    .arg("--store")
                    .arg(&self.store)
                    .args(["--durability", &self.cfg.durability])
                    .args(["--slot", &slot.to_string(), "--inc", &inc.to_string()])
                    .args(["--seed", &self.cfg.seed.to_string()])
                    .args(["--keys", &self.cfg.keys.to_string()])
                    .args(["--counters", &self.cfg.counters.to_string()])
                    .args(["--slots", &self.cfg.workers.to_string()])
                    .args(["--max-size", &self.cfg.max_size.to_string()]);
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting worker {slot}: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let tx = self.tx.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if tx.send((slot, inc, Msg::Line(l))).is_err() {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
            let _ = tx.send((slot, inc, Msg::Eof));
        });
        self.slots[slot as usize] = Some(Running {
            child,
            inc,
            pending: None,
            last_seen: Instant::now(),
            reader: Some(reader),
            exited: false,
            ready: false,
        });
        Ok(())
    }

    /// Handles worker reports until `deadline`, or until `watch` announces an operation (true).
    fn pump(&mut self, deadline: Instant, watch: Option<u32>) -> Result<bool, String> {
        loop {
            self.check_hangs()?;
            self.restart_exited()?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            match self
                .rx
                .recv_timeout((deadline - now).min(Duration::from_millis(100)))
            {
                Ok((slot, inc, msg)) => {
                    if self.handle(slot, inc, msg) && watch == Some(slot) {
                        return Ok(true);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => unreachable!("the harness holds a sender"),
            }
        }
    }

    /// Applies one report; true if it was an intent line.
    fn handle(&mut self, slot: u32, inc: u64, msg: Msg) -> bool {
        let Some(w) = self.slots[slot as usize].as_mut().filter(|w| w.inc == inc) else {
            return false; // a dead incarnation's leftovers, already finalized
        };
        if w.last_seen.elapsed() > self.t.longest_silence {
            self.t.longest_silence = w.last_seen.elapsed();
            self.t.longest_silence_during = match (&w.pending, w.ready) {
                (Some((seq, _, op)), _) => format!("worker {slot} in operation {seq}: {op:?}"),
                (None, false) => format!("worker {slot} opening the store"),
                (None, true) => format!("worker {slot} between operations"),
            };
        }
        w.last_seen = Instant::now();
        let line = match msg {
            Msg::Eof => {
                w.exited = true;
                return false;
            }
            Msg::Line(l) => l,
        };
        match protocol::parse(&line) {
            Ok(Line::Ready { .. }) => {
                w.ready = true;
                false
            }
            Ok(Line::Intent { seq, t, op }) => {
                w.pending = Some((seq, t, op));
                true
            }
            Ok(Line::Ack { seq, t, result }) => {
                match w.pending.take() {
                    Some((s, start, op)) if s == seq => {
                        self.model.record(slot, inc, seq, &op, start, t, true, result);
                        self.t.acknowledged += 1;
                        self.round_acked += 1;
                    }
                    other => self.t.violations.push(format!(
                        "worker {slot} (incarnation {inc}) acknowledged {seq} while {other:?} was pending"
                    )),
                }
                false
            }
            Ok(Line::Full { .. }) => {
                w.pending = None;
                self.t.refused_full += 1;
                false
            }
            Ok(Line::Fatal(msg)) => {
                self.t.violations.push(format!(
                    "worker {slot} (incarnation {inc}) got an engine error: {msg}"
                ));
                false
            }
            Err(e) => {
                self.t.violations.push(format!("worker {slot}: {e}"));
                false
            }
        }
    }

    fn check_hangs(&mut self) -> Result<(), String> {
        for slot in 0..self.cfg.workers {
            let Some(w) = &self.slots[slot as usize] else {
                continue;
            };
            if !w.exited && w.last_seen.elapsed() > self.cfg.hang {
                let msg = format!(
                    "worker {slot} (pid {}) reported nothing for {:?} (pending: {:?}): hung",
                    w.child.id(),
                    self.cfg.hang,
                    w.pending
                );
                self.t.violations.push(msg);
                self.kill(slot)?;
            }
        }
        Ok(())
    }

    /// A worker that exited by itself (engine error, crash): collect it and start a new one.
    fn restart_exited(&mut self) -> Result<(), String> {
        for slot in 0..self.cfg.workers {
            if self.slots[slot as usize].as_ref().is_some_and(|w| w.exited) {
                let status = self.reap(slot, false)?;
                if !status.is_empty() && self.t.violations.is_empty() {
                    self.t
                        .violations
                        .push(format!("worker {slot} exited on its own: {status}"));
                }
                if !self.done() {
                    self.start(slot)?;
                }
            }
        }
        Ok(())
    }

    /// SIGKILLs a worker, waits for it, and settles its unacknowledged operation as "maybe applied".
    fn kill(&mut self, slot: u32) -> Result<(), String> {
        if self.slots[slot as usize].is_none() {
            return Ok(());
        }
        self.reap(slot, true).map(|_| ())
    }

    fn reap(&mut self, slot: u32, kill: bool) -> Result<String, String> {
        let w = self.slots[slot as usize]
            .as_mut()
            .expect("reap of an empty slot");
        let inc = w.inc;
        if kill && matches!(w.child.try_wait(), Ok(None)) {
            // std's Child::kill sends SIGKILL on Unix.
            w.child
                .kill()
                .map_err(|e| format!("kill worker {slot}: {e}"))?;
            self.t.kills += 1;
        }
        let status = w
            .child
            .wait()
            .map_err(|e| format!("wait for worker {slot}: {e}"))?;
        let dead_at = monotonic_ns();
        // Take every line it wrote before dying.
        let give_up = Instant::now() + Duration::from_secs(10);
        while !self.slots[slot as usize].as_ref().expect("slot").exited {
            let left = give_up.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((s, i, msg)) => {
                    self.handle(s, i, msg);
                }
                Err(_) => return Err(format!("worker {slot}'s pipe stayed open after it died")),
            }
        }
        let mut w = self.slots[slot as usize].take().expect("slot");
        if kill && !w.ready && status.code().is_none() {
            self.t.kills_during_open += 1;
        }
        if let Some(reader) = w.reader.take() {
            let _ = reader.join();
        }
        if let Some((seq, start, op)) = w.pending.take() {
            if kill {
                self.t.kills_mid_operation += 1;
            }
            self.model
                .record(slot, inc, seq, &op, start, dead_at, false, None);
        }
        let killed_by_us = status.code().is_none();
        Ok(if killed_by_us {
            String::new()
        } else {
            format!("{status}")
        })
    }

    /// `apcdb.file` of the PHP workers: the store's path, or the Redis server's URL.
    fn target(&self) -> std::ffi::OsString {
        match &self.server {
            Some(server) => server.url().into(),
            None => self.store.clone().into_os_string(),
        }
    }

    fn verify_round(&mut self) -> Result<(), String> {
        if let Some(server) = &mut self.server {
            // Every worker is dead: the server dies too, as a machine's Redis would, and must
            // come back from its append-only file with every write it acknowledged.
            server.kill_and_restart()?;
        }
        let expect_path = self.cfg.dir.join("expect.txt");
        let observed_path = self.cfg.dir.join("observed.txt");
        std::fs::write(&expect_path, self.model.expectations().encode())
            .map_err(|e| format!("writing {}: {e}", expect_path.display()))?;
        let _ = std::fs::remove_file(&observed_path);
        let mut cmd = Command::new(&self.exe);
        cmd.args(["crash-test", "verify", "--durability", &self.cfg.durability])
            .args(["--max-size", &self.cfg.max_size.to_string()])
            .arg("--store")
            .arg(&self.store)
            .arg("--expect")
            .arg(&expect_path)
            .arg("--observed")
            .arg(&observed_path);
        if let Some(ext) = &self.cfg.php_ext {
            cmd.arg("--php-ext").arg(ext);
        }
        if let Some(server) = &self.server {
            cmd.arg("--redis").arg(server.url());
        }
        let began = Instant::now();
        let (status, stdout) = run_with_timeout(cmd, verify_timeout())?;
        self.t.longest_verify = self.t.longest_verify.max(began.elapsed());
        let code = status.and_then(|s| s.code());
        for line in stdout.lines() {
            if let Some(n) = line.strip_prefix("lost ") {
                self.t.lost += n.trim().parse::<u64>().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("VIOLATION ") {
                self.t
                    .violations
                    .push(format!("round {}: {v}", self.t.rounds));
            }
        }
        match code {
            Some(0) => {}
            Some(1) if !self.t.violations.is_empty() => return Ok(()),
            other => {
                self.t.violations.push(format!(
                    "round {}: the verifier failed (exit {other:?}): {stdout}",
                    self.t.rounds
                ));
                return Ok(());
            }
        }
        let text = std::fs::read_to_string(&observed_path)
            .map_err(|e| format!("reading {}: {e}", observed_path.display()))?;
        self.model.reset(&Observed::decode(&text)?);
        self.t.verified += self.round_acked;
        self.round_acked = 0;
        Ok(())
    }

    fn progress(&mut self, last: bool) {
        if !last && self.last_progress.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.last_progress = Instant::now();
        eprintln!(
            "crash-test: {:>4.0}s round {}, {} kills, {} acknowledged, {} verified, {} lost",
            self.started.elapsed().as_secs_f64(),
            self.t.rounds,
            self.t.kills,
            self.t.acknowledged,
            self.t.verified,
            self.t.lost
        );
    }
}

/// Where a run keeps its store when no --dir is given.
pub fn default_dir(seed: u64) -> PathBuf {
    std::env::temp_dir().join(format!("apcdb-crash-test-{seed}-{}", std::process::id()))
}

pub fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
