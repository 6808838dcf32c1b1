//! The expectations file the harness hands to the verifier after each round, and the observed-state
//! file the verifier hands back. Both are text, one fact per line:
//!
//! ```text
//! key <name> <state> [<state>...]       the states the key may legitimately be in
//! batch <inc>.<seq> <name>...           a possibly-applied batch: all of it or none of it
//! counter <name> <lo> <hi>              bounds on a shared counter
//! ```
//! A state is `-` (absent), `e:<exp>` (the empty value) or `<inc>.<seq>:<exp>` (that write's
//! value), where `exp` is the expiry in unix ms (0 = never). The observed file uses `key <name>
//! <state>` and `counter <name> <value>`.

use super::value::WriteId;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KState {
    Absent,
    /// `id` None: the empty value, which carries no identity.
    Value {
        id: Option<WriteId>,
        exp: u64,
    },
}

impl KState {
    pub fn encode(&self) -> String {
        match self {
            KState::Absent => "-".into(),
            KState::Value { id: None, exp } => format!("e:{exp}"),
            KState::Value { id: Some(id), exp } => format!("{id}:{exp}"),
        }
    }

    pub fn decode(text: &str) -> Result<KState, String> {
        let bad = || format!("bad key state {text:?}");
        if text == "-" {
            return Ok(KState::Absent);
        }
        let (id, exp) = text.rsplit_once(':').ok_or_else(bad)?;
        let exp = exp.parse().map_err(|_| bad())?;
        if id == "e" {
            return Ok(KState::Value { id: None, exp });
        }
        Ok(KState::Value {
            id: Some(parse_id(id).ok_or_else(bad)?),
            exp,
        })
    }
}

pub fn parse_id(text: &str) -> Option<WriteId> {
    let (inc, seq) = text.split_once('.')?;
    Some(WriteId {
        inc: inc.parse().ok()?,
        seq: seq.parse().ok()?,
    })
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expectations {
    pub keys: BTreeMap<String, Vec<KState>>,
    pub batches: Vec<(WriteId, Vec<String>)>,
    pub counters: BTreeMap<String, (u64, u64)>,
}

impl Expectations {
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (name, states) in &self.keys {
            let s: Vec<String> = states.iter().map(KState::encode).collect();
            out.push_str(&format!("key {name} {}\n", s.join(" ")));
        }
        for (id, names) in &self.batches {
            out.push_str(&format!("batch {id} {}\n", names.join(" ")));
        }
        for (name, (lo, hi)) in &self.counters {
            out.push_str(&format!("counter {name} {lo} {hi}\n"));
        }
        out
    }

    pub fn decode(text: &str) -> Result<Expectations, String> {
        let mut e = Expectations::default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let bad = || format!("bad expectations line {line:?}");
            let w: Vec<&str> = line.split(' ').collect();
            match (w.first().copied(), w.len()) {
                (Some("key"), n) if n >= 3 => {
                    let states = w[2..]
                        .iter()
                        .map(|s| KState::decode(s))
                        .collect::<Result<_, _>>()?;
                    e.keys.insert(w[1].to_string(), states);
                }
                (Some("batch"), n) if n >= 3 => {
                    let id = parse_id(w[1]).ok_or_else(bad)?;
                    e.batches
                        .push((id, w[2..].iter().map(|s| s.to_string()).collect()));
                }
                (Some("counter"), 4) => {
                    let lo = w[2].parse().map_err(|_| bad())?;
                    let hi = w[3].parse().map_err(|_| bad())?;
                    e.counters.insert(w[1].to_string(), (lo, hi));
                }
                _ => return Err(bad()),
            }
        }
        Ok(e)
    }
}

/// What the verifier found; the harness starts the next round's model from it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub keys: BTreeMap<String, KState>,
    pub counters: BTreeMap<String, u64>,
}

impl Observed {
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (name, s) in &self.keys {
            out.push_str(&format!("key {name} {}\n", s.encode()));
        }
        for (name, v) in &self.counters {
            out.push_str(&format!("counter {name} {v}\n"));
        }
        out
    }

    pub fn decode(text: &str) -> Result<Observed, String> {
        let mut o = Observed::default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let w: Vec<&str> = line.split(' ').collect();
            match (w.first().copied(), w.len()) {
                (Some("key"), 3) => {
                    o.keys.insert(w[1].to_string(), KState::decode(w[2])?);
                }
                (Some("counter"), 3) => {
                    let v = w[2]
                        .parse()
                        .map_err(|_| format!("bad observed line {line:?}"))?;
                    o.counters.insert(w[1].to_string(), v);
                }
                _ => return Err(format!("bad observed line {line:?}")),
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip() {
        let mut e = Expectations::default();
        e.keys.insert(
            "w0/1".into(),
            vec![
                KState::Absent,
                KState::Value { id: None, exp: 5 },
                KState::Value {
                    id: Some(WriteId { inc: 3, seq: 4 }),
                    exp: 0,
                },
            ],
        );
        e.batches.push((
            WriteId { inc: 3, seq: 9 },
            vec!["w0/1".into(), "w0/2".into()],
        ));
        e.counters.insert("ctr/0".into(), (3, 7));
        assert_eq!(Expectations::decode(&e.encode()).unwrap(), e);

        let mut o = Observed::default();
        o.keys.insert("w0/1".into(), KState::Absent);
        o.counters.insert("ctr/0".into(), 5);
        assert_eq!(Observed::decode(&o.encode()).unwrap(), o);
    }
}
