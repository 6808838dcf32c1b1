//! How the crash-test opens its store, shared by harness, workers and verifier so they agree.

use apcdb::{Durability, Options};
use std::time::Duration;

/// `sync`, `periodic` (50 ms) or `periodic:<duration>`, `none`.
pub fn parse_durability(text: &str) -> Result<Durability, String> {
    match text {
        "sync" => Ok(Durability::Sync),
        "none" => Ok(Durability::None),
        "periodic" => Ok(Durability::Periodic(Duration::from_millis(50))),
        _ => match text.strip_prefix("periodic:") {
            Some(d) => Ok(Durability::Periodic(crate::args::parse_duration(d)?)),
            None => Err(format!(
                "unknown durability '{text}' (use sync, periodic, periodic:<interval> or none)"
            )),
        },
    }
}

/// Small initial sizes so the data file grows and the journal wraps (checkpoints) during a run:
/// kills then land in those paths too.
pub fn store_options(durability: Durability, max_size: u64) -> Options {
    Options::default()
        .durability(durability)
        .initial_size(1 << 20)
        .max_size(max_size)
        .journal_size(8 << 20)
}

/// The default maximum size of the crash-test store; `--max-size` makes it small enough to fill.
pub const DEFAULT_MAX_SIZE: u64 = 1 << 30;

/// Largest filler a worker writes: 1 MiB values stay under the journal's quarter (2 MiB).
pub const MAX_FILLER: usize = (1 << 20) - 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durabilities() {
        assert_eq!(parse_durability("sync").unwrap(), Durability::Sync);
        assert_eq!(
            parse_durability("periodic:10ms").unwrap(),
            Durability::Periodic(Duration::from_millis(10))
        );
        assert!(parse_durability("fast").is_err());
    }
}
