//! The other process of a multi-process test is the test binary run again with only its ignored
//! `helper` test, which plays the role named by `APCDB_HELPER` on the store at
//! `APCDB_HELPER_STORE` and talks to the test through lines on stdout (and stdin, where a role
//! waits to be told). Run a role by hand the same way to watch it.

// Each test binary that includes this module uses only a part of it.
#![allow(dead_code)]

use std::io::{BufRead, Write};
use std::os::unix::fs::FileExt;
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
pub fn helper_piped(role: &str, path: &Path) -> Command {
    let mut cmd = helper_command(role, path);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    cmd
}

/// A helper process, killed when the test ends, also when it fails.
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
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Flips bits of byte `i` of `value` where it lies in the data file at `path` (found by its
/// bytes, so it must occur there once), as a damaged disk would: through the file, which the
/// store's shared mapping shows at once.
pub fn damage_value(path: &Path, value: &[u8], i: usize) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut file = vec![0u8; f.metadata().unwrap().len() as usize];
    f.read_exact_at(&mut file, 0).unwrap();
    let at = file
        .windows(value.len())
        .position(|w| w == value)
        .expect("the value is in the data file");
    f.write_all_at(&[value[i] ^ 0x40], (at + i) as u64).unwrap();
}

/// Opens `file` on a description of its own and takes the read lock on its presence byte, as
/// another process that has the store open holds it (on the lock file and the data file alike);
/// the lock lasts as long as the returned file.
pub fn hold_presence(file: &Path) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(file).unwrap();
    // SAFETY: flock is plain data; zeroed is a valid starting value.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_RDLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 1;
    fl.l_len = 1;
    // Waiting (SETLKW): a child another test of this binary forks holds the locks of every handle
    // open at that moment until its `exec`, so a store just closed here may still be held for a
    // moment by such a copy.
    // SAFETY: a valid descriptor and an initialised flock.
    assert_eq!(
        unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_SETLKW, &fl) },
        0,
        "presence lock on {}",
        file.display()
    );
    f
}
