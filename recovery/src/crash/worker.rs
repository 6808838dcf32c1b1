//! A crash-test worker: one process doing random operations on the store forever (until the
//! harness kills it), reporting each one over stdout with the protocol in [`super::protocol`].

use super::config::{store_options, MAX_FILLER};
use super::protocol::{self, cas_key, counter_key, owned_key, Op, Put};
use super::value::{self, WriteId};
use crate::clock::{monotonic_ns, unix_ms};
use crate::rng::Rng;
use apcdb::{Error, Store, Update};
use std::io::Write;
use std::path::PathBuf;

pub struct WorkerConfig {
    pub store: PathBuf,
    pub durability: apcdb::Durability,
    pub slot: u32,
    /// Unique per process started by the harness; part of every value's identity.
    pub inc: u64,
    pub seed: u64,
    pub keys: u32,
    pub counters: u32,
    /// How many slots the run has: reads also look at the other slots' keys.
    pub slots: u32,
    pub max_size: u64,
}

/// Never returns normally: exits 3 on an unexpected engine error, 2 when the harness is gone.
pub fn run(cfg: WorkerConfig) -> ! {
    let store = match Store::open(&cfg.store, store_options(cfg.durability, cfg.max_size)) {
        Ok(s) => s,
        Err(e) => fatal(&format!("open: {e}")),
    };
    send(&format!("R {}\n", monotonic_ns()));
    let mut rng = Rng::derive(cfg.seed, cfg.inc);
    for seq in 1.. {
        let op = choose(&mut rng, &cfg);
        let t = monotonic_ns();
        send(&protocol::intent(seq, t, &op));
        match execute(&store, &cfg, seq, &op) {
            Ok(result) => send(&protocol::ack(seq, monotonic_ns(), result)),
            Err(e) if e.is_full() => send(&format!("F {seq} {} full\n", monotonic_ns())),
            Err(e) => fatal(&format!(
                "op {seq} {}: {e}",
                protocol::intent(seq, t, &op).trim_end()
            )),
        }
    }
    unreachable!()
}

fn send(line: &str) {
    // Each line is one write(2) of under PIPE_BUF bytes: it reaches the harness whole or not at all.
    if std::io::stdout().lock().write_all(line.as_bytes()).is_err() {
        std::process::exit(2);
    }
}

fn fatal(msg: &str) -> ! {
    let one_line = msg.replace('\n', " ");
    send(&format!("X {one_line}\n"));
    std::process::exit(3);
}

/// Mostly small values, now and then up to 1 MiB, sometimes the empty value.
fn choose_put(rng: &mut Rng) -> Put {
    let r = rng.below(1000);
    if r < 80 {
        Put::Empty
    } else if r < 830 {
        Put::Filler(rng.below(200) as usize)
    } else if r < 980 {
        Put::Filler(rng.range(200, 16 << 10) as usize)
    } else if r < 996 {
        Put::Filler(rng.range(16 << 10, 256 << 10) as usize)
    } else {
        Put::Filler(rng.range(256 << 10, MAX_FILLER as u64) as usize)
    }
}

fn choose_expiry(rng: &mut Rng) -> u64 {
    match rng.below(10) {
        // Far in the future: the stored expiry is checked exactly.
        0 => unix_ms() + 86_400_000 + rng.below(1000),
        // Short: expires during the run or around the verification, so expired entries are hidden
        // and reclaimed while processes die.
        1 => unix_ms() + rng.range(100, 4000),
        _ => 0,
    }
}

fn choose(rng: &mut Rng, cfg: &WorkerConfig) -> Op {
    let idx = rng.below(cfg.keys as u64) as u32;
    let r = rng.below(1000);
    match r {
        0..=329 => Op::Put {
            idx,
            put: choose_put(rng),
            exp: choose_expiry(rng),
        },
        330..=429 => Op::Add {
            idx,
            put: choose_put(rng),
            exp: choose_expiry(rng),
        },
        430..=549 => Op::Del { idx },
        550..=669 => {
            let n = rng.range(2, 7).min(cfg.keys as u64);
            let mut items: Vec<(u32, Option<Put>)> = Vec::new();
            while (items.len() as u64) < n {
                let i = rng.below(cfg.keys as u64) as u32;
                if items.iter().any(|(j, _)| *j == i) {
                    continue;
                }
                // Small values: a batch must fit a quarter of the journal.
                let p = if rng.chance(250) {
                    None
                } else if rng.chance(100) {
                    Some(Put::Empty)
                } else {
                    Some(Put::Filler(rng.below(4096) as usize))
                };
                items.push((i, p));
            }
            Op::Batch(items)
        }
        670..=849 => Op::Inc {
            counter: rng.below(cfg.counters as u64) as u32,
        },
        850..=919 => Op::CasInc {
            counter: rng.below(cfg.counters as u64) as u32,
        },
        920..=997 => Op::Other,
        _ => Op::Clear,
    }
}

fn make_value(cfg: &WorkerConfig, idx: u32, seq: u64, put: Put) -> Vec<u8> {
    match put {
        Put::Empty => Vec::new(),
        Put::Filler(n) => value::make(&owned_key(cfg.slot, idx), WriteId { inc: cfg.inc, seq }, n),
    }
}

fn execute(store: &Store, cfg: &WorkerConfig, seq: u64, op: &Op) -> Result<Option<bool>, Error> {
    let key = |idx: u32| owned_key(cfg.slot, idx).into_bytes();
    match op {
        Op::Put { idx, put, exp } => {
            store.put_with_expiry(&key(*idx), &make_value(cfg, *idx, seq, *put), *exp)?;
            Ok(None)
        }
        Op::Add { idx, put, exp } => store
            .add_with_expiry(&key(*idx), &make_value(cfg, *idx, seq, *put), *exp)
            .map(Some),
        Op::Del { idx } => store.delete(&key(*idx)).map(Some),
        Op::Batch(items) => {
            let values: Vec<(Vec<u8>, Option<Vec<u8>>)> = items
                .iter()
                .map(|(i, p)| (key(*i), p.map(|p| make_value(cfg, *i, seq, p))))
                .collect();
            store.batch(|b| {
                for (k, v) in &values {
                    match v {
                        Some(v) => b.put(k, v),
                        None => b.delete(k),
                    }
                }
            })?;
            Ok(None)
        }
        Op::Clear => store.clear().map(|_| None),
        Op::CasInc { counter } => {
            let k = cas_key(*counter);
            loop {
                let cur = store.get(k.as_bytes())?;
                let n = match &cur {
                    None => 0,
                    Some(v) => match std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                    {
                        Some(n) => n,
                        None => fatal(&format!("torn counter {k} seen by a live worker: {v:?}")),
                    },
                };
                let next = (n + 1).to_string();
                // Another process may have moved it since the read: then read again.
                if store.compare_and_swap(k.as_bytes(), cur.as_deref(), Some(next.as_bytes()))? {
                    return Ok(None);
                }
            }
        }
        Op::Inc { counter } => {
            let k = counter_key(*counter);
            let outcome = store.update(k.as_bytes(), |cur| {
                let n = match cur {
                    None => 0,
                    Some(e) => match std::str::from_utf8(&e.value)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                    {
                        Some(n) => n,
                        None => {
                            return (
                                Update::Keep,
                                Err(format!("counter {k} holds {:?}", e.value)),
                            )
                        }
                    },
                };
                (
                    Update::Put {
                        value: (n + 1).to_string().into_bytes(),
                        expires_at_ms: 0,
                    },
                    Ok(()),
                )
            })?;
            if let Err(msg) = outcome {
                fatal(&format!("torn counter seen by a live worker: {msg}"));
            }
            Ok(None)
        }
        Op::Other => {
            match seq % 5 {
                0 => store.sync()?,
                1 => store.checkpoint()?,
                2 | 3 => {
                    // Any slot's key, while its owner may be writing it: never a torn value.
                    let slot = (seq / 5 % cfg.slots as u64) as u32;
                    let name = owned_key(slot, (seq / 7 % cfg.keys as u64) as u32);
                    if let Some(v) = store.get(name.as_bytes())? {
                        if let Err(e) = value::parse(&name, &v) {
                            fatal(&format!("torn read of {name} by a live worker: {e}"));
                        }
                    }
                }
                _ => {
                    for (k, e) in store.scan_prefix(b"w")? {
                        let name = String::from_utf8_lossy(&k).into_owned();
                        if let Err(err) = value::parse(&name, &e.value) {
                            fatal(&format!("torn value of {name} in a live scan: {err}"));
                        }
                    }
                }
            }
            Ok(None)
        }
    }
}
