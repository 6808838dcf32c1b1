//! A small command-line parser: positional arguments and `--flag value` / `--switch` options.
//! Written by hand to keep the tool free of dependencies.

use std::collections::HashMap;
use std::time::Duration;

pub struct Args {
    pub positional: Vec<String>,
    values: HashMap<String, String>,
    switches: Vec<String>,
}

impl Args {
    /// `switch_names` are the flags that take no value; every other `--name` takes the next word
    /// (or `--name=value`).
    pub fn parse(raw: &[String], switch_names: &[&str]) -> Result<Args, String> {
        let mut args = Args {
            positional: Vec::new(),
            values: HashMap::new(),
            switches: Vec::new(),
        };
        let mut it = raw.iter();
        while let Some(word) = it.next() {
            let Some(name) = word.strip_prefix("--") else {
                args.positional.push(word.clone());
                continue;
            };
            if let Some((n, v)) = name.split_once('=') {
                args.values.insert(n.to_string(), v.to_string());
            } else if switch_names.contains(&name) {
                args.switches.push(name.to_string());
            } else {
                match it.next() {
                    Some(v) => args.values.insert(name.to_string(), v.clone()),
                    None => args.values.insert(name.to_string(), String::new()),
                };
            }
        }
        Ok(args)
    }

    pub fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> Result<&str, String> {
        self.value(name)
            .ok_or_else(|| format!("--{name} is required"))
    }

    pub fn number(&self, name: &str) -> Result<Option<u64>, String> {
        self.value(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("--{name}: '{v}' is not a number"))
            })
            .transpose()
    }

    pub fn duration(&self, name: &str) -> Result<Option<Duration>, String> {
        self.value(name)
            .map(|v| parse_duration(v).map_err(|e| format!("--{name}: {e}")))
            .transpose()
    }

    /// Rejects options this subcommand does not know, so a typo is not silently ignored.
    pub fn only(&self, known: &[&str]) -> Result<(), String> {
        for name in self.values.keys().chain(self.switches.iter()) {
            if !known.contains(&name.as_str()) {
                return Err(format!("unknown option --{name}"));
            }
        }
        match self.values.iter().find(|(_, v)| v.is_empty()) {
            Some((name, _)) => Err(format!("--{name} needs a value")),
            None => Ok(()),
        }
    }
}

/// `500ms`, `30s`, `2m`, `1h`; a bare number means seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 30s"))?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        _ => {
            return Err(format!(
                "'{text}': unknown unit '{unit}' (use ms, s, m or h)"
            ))
        }
    };
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_positionals() {
        let raw: Vec<String> = ["file.db", "--json", "--seed", "7", "--duration=2m"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let a = Args::parse(&raw, &["json"]).unwrap();
        assert_eq!(a.positional, vec!["file.db"]);
        assert!(a.switch("json"));
        assert_eq!(a.number("seed").unwrap(), Some(7));
        assert_eq!(
            a.duration("duration").unwrap(),
            Some(Duration::from_secs(120))
        );
        assert!(a.only(&["json", "seed"]).is_err());
        let a = Args::parse(&["--bogus".to_string()], &[]).unwrap();
        assert_eq!(a.only(&["seed"]).unwrap_err(), "unknown option --bogus");
        let a = Args::parse(&["--seed".to_string()], &[]).unwrap();
        assert_eq!(a.only(&["seed"]).unwrap_err(), "--seed needs a value");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("3x").is_err());
        assert!(parse_duration("s").is_err());
    }
}
