//! Engine behaviours the crash-test found, pinned down as small deterministic tests through the
//! public API and real processes. Each names the crash-test seed that first showed it.

use apcdb::{Options, Store};
use std::io::Write;
use std::process::{Command, Stdio};

fn apcdb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_apcdb"))
}

/// crash-test --seed 2 --durability sync: after a kill the store no longer opened ("heap end ...
/// outside the file"). Suspected cause: a process whose view of the data file is stale (another
/// process grew it) checkpoints, recording its own smaller file size next to the shared heap end.
/// No kill is needed: another process (`apcdb load`) grows the store while this one has it open.
#[test]
#[ignore = "engine bug 1 (see the recovery report): un-ignore once checkpoint records the shared file size"]
fn checkpoint_by_a_process_that_did_not_see_the_file_grow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let a = Store::open(&path, Options::default()).unwrap();
    a.put(b"first", b"1").unwrap();

    // Eight 300 KiB values under keys "key0".."key7" (base64 "a2V5MA==" ...), as `apcdb load` reads them.
    let big = "A".repeat(400 << 10);
    let mut lines = String::new();
    for digit in ["MA", "MQ", "Mg", "Mw", "NA", "NQ", "Ng", "Nw"] {
        lines.push_str(&format!(
            "{{\"key\":\"a2V5{digit}==\",\"value\":\"{big}\",\"expires_at_ms\":0}}\n"
        ));
    }
    let mut load = apcdb()
        .arg("load")
        .arg(&path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    load.stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(load.wait().unwrap().success());

    a.checkpoint().unwrap();
    drop(a);
    let again =
        Store::open(&path, Options::default()).expect("store must reopen after a checkpoint");
    assert_eq!(
        again.get(b"key0").unwrap().map(|v| v.len()),
        Some(300 << 10)
    );
}
