//! Collects samples per (section, row, engine) over the rounds and renders markdown tables of their
//! medians, with the ratio apcdb / peer on every row.

use std::fmt::Write;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Operations (or keys) per second.
    Rate,
    /// Nanoseconds, printed in the most readable unit.
    Nanos,
    Bytes,
    /// A plain multiple, printed as "3.2×".
    Times,
    /// A count of events.
    Count,
    /// A share, in percent.
    Percent,
}

pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
}

pub struct Cell {
    pub config: String,
    /// One vector of metric values per round.
    pub samples: Vec<Vec<f64>>,
    pub note: String,
}

pub struct Row {
    pub name: String,
    /// The apcdb configuration the peers on this row are compared with.
    pub reference: String,
    pub cells: Vec<Cell>,
}

pub struct Section {
    pub key: &'static str,
    pub title: &'static str,
    pub note: String,
    pub metrics: Vec<Metric>,
    /// Which metric the ratio column compares.
    pub primary: usize,
    /// When not empty: instead of the one "apcdb ÷ engine" column, one "engine ÷ reference"
    /// column per listed metric, where the reference is the row's `reference` config (a peer such
    /// as LMDB, so apcdb's own row shows how far it is from it).
    pub peer_ratios: Vec<usize>,
    /// What the rows' references have in common, for the ratio columns' headers ("LMDB").
    pub peer_name: &'static str,
    pub rows: Vec<Row>,
}

impl Section {
    pub fn new(key: &'static str, title: &'static str, metrics: Vec<Metric>) -> Section {
        Section {
            key,
            title,
            note: String::new(),
            metrics,
            primary: 0,
            peer_ratios: Vec::new(),
            peer_name: "",
            rows: Vec::new(),
        }
    }

    pub fn record(
        &mut self,
        row: &str,
        reference: &str,
        config: &str,
        values: Vec<f64>,
        note: &str,
    ) {
        let r = match self.rows.iter().position(|r| r.name == row) {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows.push(Row {
                    name: row.into(),
                    reference: reference.into(),
                    cells: Vec::new(),
                });
                self.rows.last_mut().unwrap()
            }
        };
        let c = match r.cells.iter().position(|c| c.config == config) {
            Some(i) => &mut r.cells[i],
            None => {
                r.cells.push(Cell {
                    config: config.into(),
                    samples: Vec::new(),
                    note: String::new(),
                });
                r.cells.last_mut().unwrap()
            }
        };
        c.samples.push(values);
        if !note.is_empty() {
            c.note = note.into();
        }
    }

    /// Median of metric `m` for `config` on `row`, over the rounds that produced it.
    pub fn median(&self, row: &str, config: &str, m: usize) -> Option<f64> {
        let r = self.rows.iter().find(|r| r.name == row)?;
        let c = r.cells.iter().find(|c| c.config == config)?;
        median(
            c.samples
                .iter()
                .filter_map(|s| s.get(m).copied())
                .filter(|v| v.is_finite())
                .collect(),
        )
    }

    pub fn markdown(&self, out: &mut String) {
        if self.rows.is_empty() {
            return;
        }
        let _ = writeln!(out, "### {}\n", self.title);
        if !self.note.is_empty() {
            let _ = writeln!(out, "{}\n", self.note);
        }
        if !self.peer_ratios.is_empty() {
            self.markdown_vs_peer(out);
            return;
        }
        let p = &self.metrics[self.primary];
        let direction = match p.unit {
            Unit::Rate => "above 1 = apcdb faster",
            Unit::Nanos => "below 1 = apcdb faster",
            Unit::Bytes => "below 1 = apcdb smaller",
            Unit::Times | Unit::Count | Unit::Percent => "",
        };
        let _ = write!(out, "| workload | engine (setting) |");
        for m in &self.metrics {
            let _ = write!(out, " {} |", m.name);
        }
        let _ = writeln!(out, " apcdb ÷ engine, {} ({direction}) | note |", p.name);
        let _ = write!(out, "|---|---|");
        for _ in &self.metrics {
            let _ = write!(out, "---:|");
        }
        let _ = writeln!(out, "---:|---|");
        for r in &self.rows {
            let reference = self.median(&r.name, &r.reference, self.primary);
            for c in &r.cells {
                let _ = write!(out, "| {} | {} |", r.name, c.config);
                for (i, m) in self.metrics.iter().enumerate() {
                    let _ = write!(
                        out,
                        " {} |",
                        fmt(self.median(&r.name, &c.config, i), m.unit)
                    );
                }
                let ratio = if c.config == r.reference {
                    "—".to_string()
                } else {
                    match (reference, self.median(&r.name, &c.config, self.primary)) {
                        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                        _ => "n/a".to_string(),
                    }
                };
                let _ = writeln!(out, " {ratio} | {} |", c.note);
            }
        }
        let _ = writeln!(out);
    }
}

impl Section {
    fn markdown_vs_peer(&self, out: &mut String) {
        let _ = write!(out, "| workload | engine (setting) |");
        for m in &self.metrics {
            let _ = write!(out, " {} |", m.name);
        }
        for &i in &self.peer_ratios {
            let _ = write!(out, " {} ÷ {} |", self.metrics[i].name, self.peer_name);
        }
        let _ = writeln!(out, " note |");
        let _ = write!(out, "|---|---|");
        for _ in self
            .metrics
            .iter()
            .chain(self.peer_ratios.iter().map(|&i| &self.metrics[i]))
        {
            let _ = write!(out, "---:|");
        }
        let _ = writeln!(out, "---|");
        for r in &self.rows {
            for c in &r.cells {
                let _ = write!(out, "| {} | {} |", r.name, c.config);
                for (i, m) in self.metrics.iter().enumerate() {
                    let _ = write!(
                        out,
                        " {} |",
                        fmt(self.median(&r.name, &c.config, i), m.unit)
                    );
                }
                for &i in &self.peer_ratios {
                    let ratio = if c.config == r.reference {
                        "—".to_string()
                    } else {
                        match (
                            self.median(&r.name, &c.config, i),
                            self.median(&r.name, &r.reference, i),
                        ) {
                            (Some(a), Some(b)) if b > 0.0 => small_ratio(a / b),
                            _ => "n/a".to_string(),
                        }
                    };
                    let _ = write!(out, " {ratio} |");
                }
                let _ = writeln!(out, " {} |", c.note);
            }
        }
        let _ = writeln!(out);
    }
}

/// A ratio with two significant digits when it is small (0.0029 rather than 0.00).
fn small_ratio(r: f64) -> String {
    let decimals = if r > 0.0 && r < 0.1 {
        (1 - r.log10().floor() as i32).max(2) as usize
    } else {
        2
    };
    format!("{r:.decimals$}")
}

/// A target's verdict in the targets tables.
pub fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "not measured",
    }
}

pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub fn fmt(v: Option<f64>, unit: Unit) -> String {
    let Some(v) = v else { return "n/a".into() };
    match unit {
        Unit::Rate | Unit::Count => thousands(v.round() as u64),
        Unit::Nanos => fmt_ns(v),
        Unit::Bytes => {
            if v >= 1024.0 * 1024.0 {
                format!("{:.1} MiB", v / (1024.0 * 1024.0))
            } else {
                format!("{:.0} KiB", v / 1024.0)
            }
        }
        Unit::Times => format!("{v:.2}×"),
        Unit::Percent => format!("{v:.1} %"),
    }
}

pub fn fmt_ns(v: f64) -> String {
    if v < 1_000.0 {
        format!("{v:.0} ns")
    } else if v < 1_000_000.0 {
        format!("{:.2} µs", v / 1e3)
    } else if v < 1e9 {
        format!("{:.2} ms", v / 1e6)
    } else {
        format!("{:.2} s", v / 1e9)
    }
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
