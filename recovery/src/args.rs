//! The command line, declared with clap: every subcommand gets `--help`, the tool `--version`, and
//! a mistyped option is an error (exit 2) instead of being ignored.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "apcdb",
    version,
    about = "Inspect, move and repair apcdb stores, and prove they survive crashes",
    after_help = "Exit status: 0 success; 1 the command ran and found a problem (check: damage, \
                  recover: entries lost, crash-test/powercut/fuzz: a failure); 2 usage error, or \
                  the store could not be opened, read or written."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Entries, bytes, fill, journal fill, checkpoint epoch, generation, hits and misses
    ///
    /// Reads through a read-only handle: changes no file, takes no lock, works on a live store
    /// and for root or anyone who may read the files. Journal records not yet checkpointed are
    /// replayed in memory (the output says so when the store needs recovery).
    Stats(StatsArgs),
    /// Every entry as JSON lines on stdout: {"key":"<base64>","value":"<base64>","expires_at_ms":N}
    ///
    /// Reads through a read-only handle, like stats: changes no file, works on a live store.
    /// With --from redis://...: the entries of one pool on a Redis server (its --prefix).
    Dump(DumpArgs),
    /// Read such JSON lines from stdin into FILE (created if missing); a bad line changes nothing
    ///
    /// Started as root on another user's store (or in another user's directory), it runs as
    /// that user, so the files stay theirs. With --to redis://...: into one pool on a Redis
    /// server (its --prefix).
    Load(LoadArgs),
    /// Remove every entry (one journaled change); run as the files' owner like load
    Clear(FileArg),
    /// Verify every checksum and structural invariant without changing anything
    Check(CheckArgs),
    /// Salvage every entry whose checksum holds into a fresh store
    Recover(RecoverArgs),
    /// Raise (or lower, down to the data file's length) the store's maximum size
    ///
    /// Takes effect at once for every process that has the store open (each can use it up to
    /// the address space it reserved at open), and durably. Started as root on another user's
    /// store, it runs as that user.
    Resize(ResizeArgs),
    /// A consistent copy of a store while other processes keep writing it
    ///
    /// Writers are stopped only while the live index is copied; the copy holds exactly the writes
    /// up to one moment, is checked, and opens as a normal store. COPY must not exist.
    Backup(BackupArgs),
    /// Rewrite a store into files that hold only its live entries
    ///
    /// The live entries are copied while other processes keep using the store; the files are
    /// then replaced only once no process has the store open and nothing was written since the
    /// copy (otherwise nothing changes: exit 2). Safe against a crash at any point.
    Compact(CompactArgs),
    /// The kill -9 harness: workers killed at random, every acknowledged write verified
    ///
    /// Runs worker processes doing random writes on one store, SIGKILLs them at random moments,
    /// and after every round verifies from a fresh process that nothing acknowledged was lost or
    /// torn. Stops after --duration or --kills (whichever comes first; default 30s). Exit 1 on
    /// any violation.
    CrashTest(Box<crate::crash::CrashTestArgs>),
    /// The power-loss simulator: crash images must recover to a state the model allows
    Powercut(PowercutArgs),
    /// Damage copies of a crashed store at random; `check` must never panic, die or hang
    Fuzz(FuzzArgs),
}

#[derive(Args)]
pub struct FileArg {
    /// The store's data file
    pub file: String,
}

/// Where a pool lives on a Redis server (SPEC §10, "Redis backend").
#[derive(Args)]
pub struct RedisPool {
    /// The pool's key prefix on the server (its apcdb.redis_prefix)
    #[arg(long, default_value = "apcdb:", value_name = "PREFIX")]
    pub prefix: String,
    /// A file holding the password of the URL's user (refused when readable by every user)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<String>,
    /// With a rediss:// URL: a PEM file of the CAs that may sign the server's certificate
    /// (default: the system's), as apcdb.redis_ca_file
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<String>,
}

#[derive(Args)]
pub struct DumpArgs {
    /// The store's data file
    #[arg(required_unless_present = "from", conflicts_with = "from")]
    pub file: Option<String>,
    /// Dump a pool on a Redis server instead: redis://[user[:password]@]host:port/db,
    /// redis+unix:///path?db=N
    #[arg(long, value_name = "URL")]
    pub from: Option<String>,
    #[command(flatten)]
    pub pool: RedisPool,
}

#[derive(Args)]
pub struct LoadArgs {
    /// The store's data file
    #[arg(required_unless_present = "to", conflicts_with = "to")]
    pub file: Option<String>,
    /// Load into a pool on a Redis server instead (URL as for dump --from)
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    #[command(flatten)]
    pub pool: RedisPool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatsFormat {
    /// name: value lines, then fill and fragmentation
    Text,
    /// one JSON object
    Json,
    /// Prometheus text exposition format (for a node-exporter textfile collector)
    Prometheus,
}

#[derive(Args)]
pub struct StatsArgs {
    /// The store's data file
    pub file: String,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: StatsFormat,
    /// Same as --format json
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

#[derive(Args)]
pub struct CheckArgs {
    /// The store's data file
    pub file: String,
    /// Also read the store through a read-only handle (the journal replayed in memory, nothing
    /// changed) and cross-check every entry
    #[arg(long)]
    pub open: bool,
    /// Print the report as one JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct RecoverArgs {
    /// The damaged store's data file (left unchanged unless --replace)
    pub file: String,
    /// Where to write the salvaged store (must not exist)
    #[arg(long, value_name = "NEW")]
    pub out: String,
    /// Then put the salvaged store in FILE's place, keeping the originals as FILE.damaged*
    /// (refused while any process has FILE open). The new files keep the originals' owner,
    /// group, mode and maximum size (started as root, it runs as their owner)
    #[arg(long)]
    pub replace: bool,
    /// Print the result as one JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BackupArgs {
    /// The store's data file (opened as by any process using it)
    pub file: String,
    /// Where to write the copy (its data file; the journal goes beside it); must not exist
    #[arg(long, value_name = "COPY")]
    pub out: String,
    /// Print the result as one JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CompactArgs {
    /// The store's data file
    pub file: String,
    /// Rewrite into new files and swap them in (smallest files, but only when no other process
    /// has the store open); without it the room is given back in place, live
    #[arg(long)]
    pub rewrite: bool,
    /// Print the result as one JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ResizeArgs {
    /// The store's data file
    pub file: String,
    /// The new maximum size: bytes, or with a K, M, G or T suffix (powers of 1024)
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: u64,
}

/// A size such as 4096, 64M or 2G (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (
            &t[..i],
            match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("\"{text}\": the suffix must be K, M, G or T")),
            },
        ),
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("\"{text}\" is not a size such as 4096, 64M or 2G"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("\"{text}\" is too large"))
}

#[derive(Args)]
pub struct PowercutArgs {
    /// Crash images to check
    #[arg(long, default_value_t = 1000)]
    pub images: u64,
    /// sync, periodic[:INTERVAL] or none
    #[arg(long, default_value = "sync")]
    pub durability: String,
    /// Seed of every random choice (default: a fresh one, printed)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where to keep the images (default: a temporary directory, removed if all pass)
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Chance, per mille, that an I/O call becomes a crash moment (1..1000)
    #[arg(long, default_value_t = 100)]
    pub crash_chance: u64,
    /// Simulate a disk that loses acknowledged flushes (the run must then fail)
    #[arg(long)]
    pub lying_disk: bool,
}

#[derive(Args)]
pub struct FuzzArgs {
    /// Corruptions to try
    #[arg(long, default_value_t = 200)]
    pub iterations: u64,
    /// Seed of every random choice (default: a fresh one, printed)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where to keep the images (default: a temporary directory, removed if all pass)
    #[arg(long)]
    pub dir: Option<PathBuf>,
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
    use clap::CommandFactory;

    #[test]
    fn the_declaration_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("4T"), Ok(4 << 40));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("3x").is_err());
        assert!(parse_duration("s").is_err());
    }
}
