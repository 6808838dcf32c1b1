//! The harness's model of what the store may hold, built from the workers' reports.
//!
//! Each key belongs to one worker slot, and a slot runs one process at a time doing one operation
//! at a time, so a key's writes are totally ordered. Counters and `clear` are shared between
//! slots; they are ordered against the rest by time: every operation carries the span
//! `[start, end]` of CLOCK_MONOTONIC readings around the call. An operation whose worker was
//! killed before acknowledging it is "maybe applied", with its span ending when the harness saw
//! the worker dead (recovery of its journal record, if any, happens before any later writer
//! proceeds, so that bound is sound).
//!
//! After a round the verifier reports the actual state, which becomes the next round's base:
//! the model never grows beyond one round.

use super::expect::{Expectations, KState, Observed};
use super::protocol::{cas_key, counter_key, owned_key, Op, Put};
use super::value::WriteId;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug)]
struct Span {
    start: u64,
    end: u64,
    definite: bool,
}

#[derive(Debug)]
struct Event {
    state: KState,
    span: Span,
}

#[derive(Debug)]
struct KeyModel {
    base: KState,
    events: Vec<Event>,
}

#[derive(Debug, Default)]
struct CounterModel {
    base: u64,
    /// Start times of acknowledged increments.
    acked: Vec<u64>,
    maybe: u64,
}

pub struct Model {
    keys: BTreeMap<String, KeyModel>,
    counters: BTreeMap<String, CounterModel>,
    clears: Vec<Span>,
    maybe_batches: Vec<(WriteId, Vec<String>)>,
    /// The writers evict when the store is full: any key may have been evicted (absent, or a
    /// counter restarted from zero), but what is there must still be a value it could hold.
    evicting: bool,
}

impl Model {
    pub fn new(slots: u32, keys_per_slot: u32, counters: u32, evicting: bool) -> Model {
        let mut keys = BTreeMap::new();
        for slot in 0..slots {
            for idx in 0..keys_per_slot {
                keys.insert(
                    owned_key(slot, idx),
                    KeyModel {
                        base: KState::Absent,
                        events: Vec::new(),
                    },
                );
            }
        }
        let counters = (0..counters)
            .flat_map(|c| [counter_key(c), cas_key(c)])
            .map(|name| (name, CounterModel::default()))
            .collect();
        Model {
            keys,
            counters,
            clears: Vec::new(),
            maybe_batches: Vec::new(),
            evicting,
        }
    }

    /// Records one operation of slot `slot`, worker incarnation `inc`. `definite` false: the worker
    /// died before acknowledging it. `result` is add's or delete's answer when acknowledged.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        slot: u32,
        inc: u64,
        seq: u64,
        op: &Op,
        start: u64,
        end: u64,
        definite: bool,
        result: Option<bool>,
    ) {
        let span = Span {
            start,
            end,
            definite,
        };
        let id = WriteId { inc, seq };
        let written = |put: Put, exp: u64| KState::Value {
            id: matches!(put, Put::Filler(_)).then_some(id),
            exp,
        };
        let mut write = |idx: u32, state: KState| {
            let key = self
                .keys
                .get_mut(&owned_key(slot, idx))
                .expect("worker wrote a key outside its slot");
            key.events.push(Event { state, span });
        };
        match op {
            Op::Put { idx, put, exp } => write(*idx, written(*put, *exp)),
            // An add that answered false and a delete that answered false changed nothing.
            Op::Add { idx, put, exp } => {
                if result != Some(false) {
                    write(*idx, written(*put, *exp))
                }
            }
            Op::Del { idx } => {
                if result != Some(false) {
                    write(*idx, KState::Absent)
                }
            }
            Op::Batch(items) => {
                for (idx, p) in items {
                    write(*idx, p.map_or(KState::Absent, |p| written(p, 0)));
                }
                if !definite {
                    let names = items.iter().map(|(idx, _)| owned_key(slot, *idx)).collect();
                    self.maybe_batches.push((id, names));
                }
            }
            Op::Clear => self.clears.push(span),
            Op::Inc { .. } | Op::CasInc { .. } => {
                let name = match op {
                    Op::Inc { counter } => counter_key(*counter),
                    Op::CasInc { counter } => cas_key(*counter),
                    _ => unreachable!(),
                };
                let c = self.counters.get_mut(&name).expect("unknown counter");
                if definite {
                    c.acked.push(start);
                } else {
                    c.maybe += 1;
                }
            }
            Op::Other => {}
        }
    }

    /// The states each key may be in now that every worker is dead.
    pub fn expectations(&self) -> Expectations {
        let mut exp = Expectations::default();
        for (name, key) in &self.keys {
            exp.keys.insert(name.clone(), self.candidates(key));
        }
        exp.batches = self.maybe_batches.clone();
        for (name, c) in &self.counters {
            let total = c.acked.len() as u64;
            let lo = if self.evicting {
                0
            } else if self.clears.is_empty() {
                c.base + total
            } else {
                // Only increments that began after every clear (even a maybe one) ended must count.
                c.acked
                    .iter()
                    .filter(|&&s| self.clears.iter().all(|cl| s > cl.end))
                    .count() as u64
            };
            exp.counters
                .insert(name.clone(), (lo, c.base + total + c.maybe));
        }
        exp
    }

    fn candidates(&self, key: &KeyModel) -> Vec<KState> {
        let base = Event {
            state: key.base,
            span: Span {
                start: 0,
                end: 0,
                definite: true,
            },
        };
        let all: Vec<&Event> = std::iter::once(&base).chain(key.events.iter()).collect();
        let mut out = Vec::new();
        for (i, ev) in all.iter().enumerate() {
            // A write can be the last word unless a later write of its owner surely happened, or a
            // clear surely happened entirely after it.
            let overwritten = all[i + 1..].iter().any(|later| later.span.definite);
            let cleared = self
                .clears
                .iter()
                .any(|c| c.definite && c.start > ev.span.end);
            if !overwritten && !cleared {
                out.push(ev.state);
            }
        }
        // Absent because of a clear, unless a write surely happened entirely after that clear.
        let clear_may_be_last = self.clears.iter().any(|c| {
            !all.iter()
                .any(|ev| ev.span.definite && ev.span.start > c.end)
        });
        if clear_may_be_last || self.evicting {
            out.push(KState::Absent);
        }
        out.sort();
        out.dedup();
        out
    }

    /// Starts a new round from what the verifier saw.
    pub fn reset(&mut self, observed: &Observed) {
        for (name, key) in self.keys.iter_mut() {
            key.base = observed.keys.get(name).copied().unwrap_or(KState::Absent);
            key.events.clear();
        }
        for (name, c) in self.counters.iter_mut() {
            *c = CounterModel {
                base: observed.counters.get(name).copied().unwrap_or(0),
                ..Default::default()
            };
        }
        self.clears.clear();
        self.maybe_batches.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(inc: u64, seq: u64) -> KState {
        KState::Value {
            id: Some(WriteId { inc, seq }),
            exp: 0,
        }
    }

    fn put(idx: u32) -> Op {
        Op::Put {
            idx,
            put: Put::Filler(10),
            exp: 0,
        }
    }

    #[test]
    fn last_acknowledged_write_wins_and_maybe_adds_an_option() {
        let mut m = Model::new(1, 2, 1, false);
        m.record(0, 1, 1, &put(0), 10, 20, true, None);
        m.record(0, 1, 2, &put(0), 30, 40, true, None);
        m.record(0, 1, 3, &put(0), 50, 90, false, None);
        let e = m.expectations();
        assert_eq!(e.keys["w0/0"], vec![v(1, 2), v(1, 3)]);
        assert_eq!(e.keys["w0/1"], vec![KState::Absent]);
    }

    #[test]
    fn clear_ordering_by_time() {
        let mut m = Model::new(2, 1, 1, false);
        m.record(0, 1, 1, &put(0), 10, 20, true, None);
        m.record(1, 2, 1, &Op::Clear, 30, 40, true, None);
        // Surely after the clear: must be there.
        m.record(1, 2, 2, &put(0), 50, 60, true, None);
        assert_eq!(m.expectations().keys["w0/0"], vec![KState::Absent]);
        assert_eq!(m.expectations().keys["w1/0"], vec![v(2, 2)]);
        // Overlapping the clear: either.
        let mut m = Model::new(2, 1, 1, false);
        m.record(0, 1, 1, &put(0), 10, 35, true, None);
        m.record(1, 2, 1, &Op::Clear, 30, 40, false, None);
        assert_eq!(m.expectations().keys["w0/0"], vec![KState::Absent, v(1, 1)]);
    }

    #[test]
    fn counters_and_results() {
        let mut m = Model::new(1, 1, 1, false);
        let inc = Op::Inc { counter: 0 };
        m.record(0, 1, 1, &inc, 1, 2, true, None);
        m.record(0, 1, 2, &inc, 3, 4, true, None);
        m.record(0, 1, 3, &inc, 5, 9, false, None);
        m.record(0, 1, 4, &Op::Del { idx: 0 }, 5, 9, true, Some(false));
        assert_eq!(m.expectations().counters["ctr/0"], (2, 3));
        assert_eq!(m.expectations().keys["w0/0"], vec![KState::Absent]);
        let mut obs = Observed::default();
        obs.counters.insert("ctr/0".into(), 3);
        m.reset(&obs);
        m.record(0, 2, 1, &Op::Clear, 10, 11, true, None);
        m.record(0, 2, 2, &inc, 12, 13, true, None);
        assert_eq!(m.expectations().counters["ctr/0"], (1, 4));
    }

    #[test]
    fn evicting_allows_absence_and_restarted_counters_only() {
        let mut m = Model::new(1, 2, 1, true);
        m.record(0, 1, 1, &put(0), 10, 20, true, None);
        m.record(0, 1, 2, &Op::Inc { counter: 0 }, 30, 40, true, None);
        let e = m.expectations();
        assert_eq!(e.keys["w0/0"], vec![KState::Absent, v(1, 1)]);
        assert_eq!(e.keys["w0/1"], vec![KState::Absent]);
        assert_eq!(e.counters["ctr/0"], (0, 1));
    }
}
