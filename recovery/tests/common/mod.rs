//! What several of the tool's test files share.

use std::ffi::OsStr;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs this build's `apcdb` binary with `args`, feeding it `stdin`; its status and output.
pub fn apcdb_with_stdin<S: AsRef<OsStr>>(
    args: impl IntoIterator<Item = S>,
    stdin: &[u8],
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_apcdb"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}
