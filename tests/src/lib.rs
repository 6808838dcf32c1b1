//! Shared helpers for the cross-crate integration tests (multi-process and crash tests live in
//! tests/tests/, their child process in src/bin/apcdb-test-worker.rs).

use apcdb::Options;

/// Small sizes so tests exercise journal wrap-around, checkpoints and file growth quickly.
pub fn options() -> Options {
    Options::default()
        .journal_size(512 << 10)
        .initial_size(128 << 10)
        .max_size(256 << 20)
}

/// The value written for index `i`: self-describing, so a torn or misplaced value is detected.
pub fn value(i: u64) -> Vec<u8> {
    let len = 16 + (i % 7) as usize * 97;
    let mut v = format!("value-{i}-").into_bytes();
    v.resize(len, (i % 251) as u8);
    v
}
