//! Running a child process with a deadline, so a hang is reported instead of inherited.

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Runs a command to completion, killing it after `limit`; returns its exit status (None: it hung
/// and was killed) and its stdout. Stderr goes where `cmd` says (by default, to ours).
pub fn run_with_timeout(
    mut cmd: Command,
    limit: Duration,
) -> Result<(Option<ExitStatus>, String), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {cmd:?}: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader.join().unwrap_or_default();
    match status {
        Some(s) => Ok((Some(s), out)),
        None => Ok((None, format!("timed out after {limit:?} (hang). {out}"))),
    }
}
