//! The other process of a multi-process test is the test binary run again with only its ignored
//! `helper` test, which plays the role named by `APCDB_HELPER` on the store at
//! `APCDB_HELPER_STORE` and talks to the test through lines on stdout (and stdin, where a role
//! waits to be told). Run a role by hand the same way to watch it.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The test binary itself, set to run only the helper in `role` on the store at `path`.
pub fn helper_command(role: &str, path: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "helper", "--ignored", "--nocapture", "--quiet"])
        .env("APCDB_HELPER", role)
        .env("APCDB_HELPER_STORE", path);
    cmd
}

/// `helper_command` with stdin and stdout piped, for a test that talks to the helper.
#[allow(dead_code)] // not every test binary that includes this module starts one this way
pub fn helper_piped(role: &str, path: &Path) -> Command {
    let mut cmd = helper_command(role, path);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    cmd
}

/// A helper process, killed when the test ends, also when it fails.
#[allow(dead_code)] // as above
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// In the helper: its role and store, or None when this run is the ordinary test run.
pub fn helper_role() -> Option<(String, PathBuf)> {
    let role = std::env::var("APCDB_HELPER").ok()?;
    let path = PathBuf::from(std::env::var_os("APCDB_HELPER_STORE").unwrap());
    Some((role, path))
}

/// Reads the helper's lines until one starts with `prefix` and returns it (the test harness
/// prints its own lines on the same stdout, so other lines are skipped).
#[allow(dead_code)] // not every helper talks in lines
pub fn expect_line(out: &mut impl BufRead, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "helper ended before printing {prefix:?}"
        );
        if line.starts_with(prefix) {
            return line.trim_end().to_string();
        }
    }
}

/// In the helper: one line to the test, flushed at once.
#[allow(dead_code)] // as above
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
