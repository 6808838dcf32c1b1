//! The lines a worker writes to the harness on its stdout, one `write` each (short lines, so a
//! kill never leaves half a line). The intent line goes out BEFORE the store is called and the
//! acknowledgement only AFTER the call returned Ok: an intent without an acknowledgement is an
//! operation that may or may not have been applied.
//!
//! ```text
//! R <t>                                  store opened, ready
//! I <seq> <t> put <idx> <filler|-> <exp>  put (filler "-" = the empty value)
//! I <seq> <t> add <idx> <filler|-> <exp>
//! I <seq> <t> del <idx>
//! I <seq> <t> batch <idx>=<filler|-|del>,...
//! I <seq> <t> clear
//! I <seq> <t> inc <counter>               update() on ctr/<counter>
//! I <seq> <t> casinc <counter>            get + compare_and_swap on cas/<counter>
//! I <seq> <t> other                       sync/checkpoint/read: no change to the data
//! K <seq> <t> <1|0|->                     acknowledged, with add's/delete's result
//! F <seq> <t> <reason>                    refused with "full": nothing was changed
//! X <message>                             the engine returned an unexpected error; worker exits
//! ```
//! `t` is CLOCK_MONOTONIC in nanoseconds; `idx` picks a key owned by the worker's slot.

/// What one key gets from a put, or from one element of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// The identity-carrying value with this filler length.
    Filler(usize),
    /// The empty value.
    Empty,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put {
        idx: u32,
        put: Put,
        exp: u64,
    },
    Add {
        idx: u32,
        put: Put,
        exp: u64,
    },
    Del {
        idx: u32,
    },
    /// `None` deletes that key.
    Batch(Vec<(u32, Option<Put>)>),
    Clear,
    Inc {
        counter: u32,
    },
    /// An increment done with get + compare_and_swap, retried until the swap succeeds.
    CasInc {
        counter: u32,
    },
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    Ready {
        t: u64,
    },
    Intent {
        seq: u64,
        t: u64,
        op: Op,
    },
    Ack {
        seq: u64,
        t: u64,
        result: Option<bool>,
    },
    Full {
        seq: u64,
        t: u64,
    },
    Fatal(String),
}

fn put_text(p: Put) -> String {
    match p {
        Put::Filler(n) => n.to_string(),
        Put::Empty => "-".into(),
    }
}

fn parse_put(s: &str) -> Option<Put> {
    if s == "-" {
        Some(Put::Empty)
    } else {
        s.parse().ok().map(Put::Filler)
    }
}

pub fn intent(seq: u64, t: u64, op: &Op) -> String {
    let body = match op {
        Op::Put { idx, put, exp } => format!("put {idx} {} {exp}", put_text(*put)),
        Op::Add { idx, put, exp } => format!("add {idx} {} {exp}", put_text(*put)),
        Op::Del { idx } => format!("del {idx}"),
        Op::Batch(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|(idx, p)| {
                    format!("{idx}={}", p.map(put_text).unwrap_or_else(|| "del".into()))
                })
                .collect();
            format!("batch {}", parts.join(","))
        }
        Op::Clear => "clear".into(),
        Op::Inc { counter } => format!("inc {counter}"),
        Op::CasInc { counter } => format!("casinc {counter}"),
        Op::Other => "other".into(),
    };
    format!("I {seq} {t} {body}\n")
}

pub fn ack(seq: u64, t: u64, result: Option<bool>) -> String {
    let r = match result {
        Some(true) => "1",
        Some(false) => "0",
        None => "-",
    };
    format!("K {seq} {t} {r}\n")
}

pub fn parse(line: &str) -> Result<Line, String> {
    let bad = || format!("malformed worker line: {line:?}");
    let w: Vec<&str> = line.split(' ').collect();
    let num =
        |i: usize| -> Result<u64, String> { w.get(i).and_then(|s| s.parse().ok()).ok_or_else(bad) };
    match w.first().copied() {
        Some("R") => Ok(Line::Ready { t: num(1)? }),
        Some("X") => Ok(Line::Fatal(line.get(2..).unwrap_or("").to_string())),
        Some("F") => Ok(Line::Full {
            seq: num(1)?,
            t: num(2)?,
        }),
        Some("K") => {
            let result = match w.get(3).copied() {
                Some("1") => Some(true),
                Some("0") => Some(false),
                Some("-") => None,
                _ => return Err(bad()),
            };
            Ok(Line::Ack {
                seq: num(1)?,
                t: num(2)?,
                result,
            })
        }
        Some("I") => {
            let (seq, t) = (num(1)?, num(2)?);
            let idx = |i: usize| -> Result<u32, String> {
                w.get(i).and_then(|s| s.parse().ok()).ok_or_else(bad)
            };
            let put = |i: usize| w.get(i).and_then(|s| parse_put(s)).ok_or_else(bad);
            let op = match w.get(3).copied() {
                Some("put") => Op::Put {
                    idx: idx(4)?,
                    put: put(5)?,
                    exp: num(6)?,
                },
                Some("add") => Op::Add {
                    idx: idx(4)?,
                    put: put(5)?,
                    exp: num(6)?,
                },
                Some("del") => Op::Del { idx: idx(4)? },
                Some("batch") => {
                    let mut items = Vec::new();
                    for item in w.get(4).ok_or_else(bad)?.split(',') {
                        let (i, p) = item.split_once('=').ok_or_else(bad)?;
                        let i: u32 = i.parse().map_err(|_| bad())?;
                        let p = if p == "del" {
                            None
                        } else {
                            Some(parse_put(p).ok_or_else(bad)?)
                        };
                        items.push((i, p));
                    }
                    Op::Batch(items)
                }
                Some("clear") => Op::Clear,
                Some("inc") => Op::Inc { counter: idx(4)? },
                Some("casinc") => Op::CasInc { counter: idx(4)? },
                Some("other") => Op::Other,
                _ => return Err(bad()),
            };
            Ok(Line::Intent { seq, t, op })
        }
        _ => Err(bad()),
    }
}

/// Names of the keys the workload uses: each slot owns its keys; counters are shared.
pub fn owned_key(slot: u32, idx: u32) -> String {
    format!("w{slot}/{idx}")
}

/// The counters incremented with compare_and_swap.
pub fn cas_key(counter: u32) -> String {
    format!("cas/{counter}")
}

pub fn counter_key(counter: u32) -> String {
    format!("ctr/{counter}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let ops = [
            Op::Put {
                idx: 3,
                put: Put::Filler(100),
                exp: 0,
            },
            Op::Add {
                idx: 4,
                put: Put::Empty,
                exp: 1_900_000_000_000,
            },
            Op::Del { idx: 5 },
            Op::Batch(vec![
                (1, Some(Put::Filler(7))),
                (2, None),
                (3, Some(Put::Empty)),
            ]),
            Op::Clear,
            Op::Inc { counter: 2 },
            Op::CasInc { counter: 1 },
            Op::Other,
        ];
        for op in ops {
            let line = intent(9, 123, &op);
            assert_eq!(
                parse(line.trim_end()).unwrap(),
                Line::Intent { seq: 9, t: 123, op }
            );
        }
        assert_eq!(
            parse(ack(9, 5, Some(false)).trim_end()).unwrap(),
            Line::Ack {
                seq: 9,
                t: 5,
                result: Some(false)
            }
        );
        assert!(parse("I 1 2 frobnicate").is_err());
    }
}
