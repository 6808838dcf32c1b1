//! stats, dump/load, check and recover, run as the `apcdb` binary on real store files.

mod common;

use apcdb::{Options, Store};
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn apcdb(args: &[&str], files: &[&Path], stdin: &[u8]) -> Output {
    let args = args.iter().map(OsStr::new);
    common::apcdb_with_stdin(args.chain(files.iter().map(|f| f.as_os_str())), stdin)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Binary keys and values, an empty value, a big one, and one with an expiry.
fn sample(path: &Path) -> Vec<(Vec<u8>, Vec<u8>, u64)> {
    let far = 4_000_000_000_000;
    let data = vec![
        (b"plain".to_vec(), b"value".to_vec(), 0),
        (vec![0, 255, b'\n', b'"', b'\\'], vec![0, 1, 2, 254, 255], 0),
        (b"empty".to_vec(), vec![], 0),
        (
            b"big".to_vec(),
            (0..200_000u32).map(|i| (i * 7) as u8).collect(),
            0,
        ),
        (b"expiring".to_vec(), b"soon".to_vec(), far),
    ];
    let store = Store::open(path, Options::default()).unwrap();
    for (k, v, e) in &data {
        store.put_with_expiry(k, v, *e).unwrap();
    }
    data
}

#[test]
fn dump_and_load_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let data = sample(&a);
    let dump = apcdb(&["dump"], &[&a], b"");
    assert!(dump.status.success());
    assert_eq!(text(&dump).lines().count(), data.len());
    assert!(text(&dump).contains("\"expires_at_ms\":4000000000000"));

    let load = apcdb(&["load"], &[&b], &dump.stdout);
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let store = Store::open(&b, Options::default()).unwrap();
    for (k, v, e) in &data {
        let entry = store.get_entry(k).unwrap().expect("loaded key");
        assert_eq!((&entry.value, entry.expires_at_ms), (v, *e));
    }
    assert_eq!(store.scan_prefix(b"").unwrap().len(), data.len());
    drop(store);
    // The same data dumps to the same bytes.
    assert_eq!(apcdb(&["dump"], &[&b], b"").stdout, dump.stdout);
}

#[test]
fn load_refuses_bad_input_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let input = b"{\"key\":\"YQ==\",\"value\":\"MQ==\",\"expires_at_ms\":0}\n{\"key\":\"Yg==\",\"value\":\"!!\"}\n";
    let out = apcdb(&["load"], &[&path], input);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
    if path.exists() {
        assert_eq!(
            Store::open(&path, Options::default())
                .unwrap()
                .get(b"a")
                .unwrap(),
            None
        );
    }
    // Entries already expired are skipped, not stored.
    let out = apcdb(
        &["load"],
        &[&path],
        b"{\"key\":\"YQ==\",\"value\":\"MQ==\",\"expires_at_ms\":5}\n",
    );
    assert!(out.status.success());
    assert_eq!(
        Store::open(&path, Options::default())
            .unwrap()
            .get(b"a")
            .unwrap(),
        None
    );
}

#[test]
fn stats_for_people_and_machines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let n = sample(&path).len();
    let human = apcdb(&["stats"], &[&path], b"");
    assert!(human.status.success());
    assert!(
        text(&human).contains(&format!("entries: {n}\n")),
        "{}",
        text(&human)
    );
    assert!(text(&human).contains("journal fill: "));
    let json = apcdb(&["stats", "--json"], &[&path], b"");
    let line = text(&json);
    assert!(
        line.starts_with('{') && line.trim_end().ends_with('}'),
        "{line}"
    );
    assert!(line.contains(&format!("\"entries\":{n},")), "{line}");
    assert!(line.contains("\"checkpoint_epoch\":"));
    assert_eq!(
        apcdb(&["stats"], &[&dir.path().join("missing.db")], b"")
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn check_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let data = sample(&path);
    let out = apcdb(&["check", "--open"], &[&path], b"");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "{} entries, 0 journal records to replay, clean",
            data.len()
        )),
        "{}",
        text(&out)
    );

    let copy = dir.path().join("copy.db");
    let out = apcdb(&["recover", "--out"], &[&copy, &path], b"");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(&copy, Options::default()).unwrap();
    assert_eq!(store.scan_prefix(b"").unwrap().len(), data.len());
    drop(store);
    // Never overwrites.
    assert_eq!(
        apcdb(&["recover", "--out"], &[&copy, &path], b"")
            .status
            .code(),
        Some(2)
    );

    // Both superblock areas wiped: check reports it, non-zero, and does not crash.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..8192].fill(0x5a);
    std::fs::write(&path, &bytes).unwrap();
    let out = apcdb(&["check"], &[&path], b"");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("problem:"));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "check must not change the file"
    );

    // Salvage still finds every entry by scanning the heap, says what it could not vouch for, and
    // leaves the damaged original alone.
    let saved = dir.path().join("saved.db");
    let out = apcdb(&["recover", "--out"], &[&saved, &path], b"");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("lost: no usable superblock"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let store = Store::open(&saved, Options::default()).unwrap();
    for (k, v, e) in &data {
        let entry = store.get_entry(k).unwrap().expect("salvaged key");
        assert_eq!((&entry.value, entry.expires_at_ms), (v, *e));
    }
    drop(store);

    // --replace puts the salvaged store in the original's place and keeps the damaged files.
    let out = apcdb(
        &["recover", "--replace", "--out"],
        &[&dir.path().join("tmp.db"), &path],
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        std::fs::read(dir.path().join("s.db.damaged")).unwrap(),
        bytes
    );
    assert!(apcdb(&["check"], &[&path], b"").status.success());
    assert_eq!(
        Store::open(&path, Options::default())
            .unwrap()
            .scan_prefix(b"")
            .unwrap()
            .len(),
        data.len()
    );
}

#[test]
fn corruption_fuzzing_never_crashes_or_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let out = apcdb(
        &["fuzz", "--iterations", "40", "--seed", "11", "--dir"],
        &[dir.path()],
        b"",
    );
    let stdout = text(&out);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with("fuzz: 40 corruptions, ") && last.ends_with(", 0 failed"),
        "{last}"
    );
}

/// `recover --replace` used to swap the files of a store a writer had open
/// (exit 0), so the writer's later acknowledged writes went into `FILE.damaged`. It must refuse
/// (exit 2) and change nothing while any process has the store open, and work once it exited.
#[test]
fn recover_replace_refuses_while_a_writer_has_the_store_open() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    Store::open(&path, Options::default())
        .unwrap()
        .put(b"before", b"1")
        .unwrap();
    let mut writer = Command::new(env!("CARGO_BIN_EXE_apcdb"))
        .args(["crash-test", "churn", "--store"])
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(writer.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim_end(), "churning");
    let inode = std::fs::metadata(&path).unwrap().ino();

    let new = dir.path().join("new.db");
    let out = apcdb(&["recover", "--replace", "--out"], &[&new, &path], b"");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let _ = writer.kill();
    writer.wait().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}{stderr}", text(&out));
    assert!(stderr.contains("is in use"), "{stderr}");
    assert!(!new.exists(), "the salvage target was written");
    assert!(
        !dir.path().join("s.db.damaged").exists(),
        "files were moved"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);

    // The writer is gone: now it works, and keeps what the writer wrote.
    let out = apcdb(&["recover", "--replace", "--out"], &[&new, &path], b"");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("s.db.damaged").exists());
    assert!(!new.exists() && !dir.path().join("new.db.lock").exists());
    let store = Store::open(&path, Options::default()).unwrap();
    assert_eq!(store.get(b"before").unwrap(), Some(b"1".to_vec()));
    assert!(store.get(b"churn/0").unwrap().is_some());
}

/// A key over `MAX_KEY_LEN` (or a value over the store's limit) on a later
/// line used to fail the load after the earlier lines were stored. Nothing may change.
#[test]
fn load_with_an_oversized_line_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    Store::open(&path, Options::default())
        .unwrap()
        .put(b"a", b"old")
        .unwrap();
    let b64 = |bytes: &[u8]| {
        // Enough base64 for this test: whole 3-byte groups of 'x' ("eHh4").
        assert_eq!(bytes.len() % 3, 0);
        "eHh4".repeat(bytes.len() / 3)
    };
    let first = "{\"key\":\"YQ==\",\"value\":\"bmV3\"}\n"; // a = "new"
    let max_value = Store::open(&path, Options::default())
        .unwrap()
        .max_value_len();
    for (what, key, value) in [
        ("key of 70002 bytes", 70_002, 3),
        ("exceeds the store's limit", 3, (max_value + 3) / 3 * 3),
    ] {
        let input = format!(
            "{first}{{\"key\":\"{}\",\"value\":\"{}\"}}\n",
            b64(&vec![b'x'; key]),
            b64(&vec![b'x'; value])
        );
        let out = apcdb(&["load"], &[&path], input.as_bytes());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let store = Store::open(&path, Options::default()).unwrap();
        assert_eq!(store.get(b"a").unwrap(), Some(b"old".to_vec()), "{what}");
        assert_eq!(store.scan_prefix(b"").unwrap().len(), 1);
        assert!(
            stderr.contains("line 2") && stderr.contains(what),
            "{stderr}"
        );
    }
}

/// A dump written by version 0.1.0 (hand-written JSON and base64) loads, and dumps back to the
/// same bytes.
#[test]
fn a_dump_from_before_loads_and_dumps_identically() {
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/dump-0.1.0.jsonl"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let out = apcdb(&["load"], &[&path], &fixture);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(&path, Options::default()).unwrap();
    let entry = store
        .get_entry(&[0, 255, b'\n', b'"', b'\\'])
        .unwrap()
        .unwrap();
    assert_eq!(entry.value, vec![0, 1, 2, 254, 255]);
    let entry = store.get_entry(b"expiring").unwrap().unwrap();
    assert_eq!(entry.expires_at_ms, 4_000_000_000_000);
    assert_eq!(
        store.get("unicode é €".as_bytes()).unwrap(),
        Some(b"\xff\xfe text".to_vec())
    );
    drop(store);
    assert_eq!(apcdb(&["dump"], &[&path], b"").stdout, fixture);
}

/// The exit codes README's tool table documents.
#[test]
fn exit_codes_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    sample(&path);
    let missing = dir.path().join("missing.db");
    let code = |args: &[&str], files: &[&Path]| apcdb(args, files, b"").status.code();
    // --help on every subcommand and --version: exit 0, on stdout.
    for sub in [
        "stats",
        "dump",
        "load",
        "check",
        "recover",
        "resize",
        "crash-test",
        "powercut",
        "fuzz",
    ] {
        let out = apcdb(&[sub, "--help"], &[], b"");
        assert_eq!(out.status.code(), Some(0), "{sub} --help");
        assert!(
            text(&out).contains("Usage: apcdb "),
            "{sub}: {}",
            text(&out)
        );
    }
    let out = apcdb(&["--version"], &[], b"");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out), format!("apcdb {}\n", env!("CARGO_PKG_VERSION")));
    // The harness's helper processes are not for operators.
    let help = text(&apcdb(&["crash-test", "--help"], &[], b""));
    assert!(!help.contains("Commands:"), "{help}");
    for hidden in ["worker", "verify", "churn", "help"] {
        assert!(
            !help.lines().any(|l| l.trim_start().starts_with(hidden)),
            "{hidden} shown:\n{help}"
        );
    }
    // ... yet they run.
    assert_eq!(code(&["crash-test", "verify", "--help"], &[]), Some(0));
    // Usage errors: 2.
    assert_eq!(code(&[], &[]), Some(2));
    assert_eq!(code(&["bogus"], &[]), Some(2));
    assert_eq!(code(&["stats", "--bogus"], &[&path]), Some(2));
    assert_eq!(code(&["stats"], &[]), Some(2));
    assert_eq!(code(&["recover"], &[&path]), Some(2), "--out is required");
    assert_eq!(code(&["fuzz", "--iterations", "x"], &[]), Some(2));
    assert_eq!(code(&["crash-test", "--duration", "3x"], &[]), Some(2));
    // A store that does not open: 2; a clean one: 0.
    for sub in ["stats", "dump"] {
        assert_eq!(code(&[sub], &[&missing]), Some(2), "{sub}");
        assert_eq!(code(&[sub], &[&path]), Some(0), "{sub}");
    }
    assert_eq!(code(&["check"], &[&missing]), Some(2));
    assert_eq!(code(&["check", "--json"], &[&path]), Some(0));
    assert_eq!(code(&["load"], &[&path]), Some(0), "empty input");
}

fn json_of(o: &Output) -> serde_json::Value {
    let t = text(o);
    assert_eq!(t.lines().count(), 1, "one JSON line: {t}");
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{e}: {t}"))
}

#[test]
fn json_from_check_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let n = sample(&path).len() as u64;
    let out = apcdb(&["check", "--open", "--json"], &[&path], b"");
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(v["clean"], true);
    assert_eq!(v["entries"], n);
    assert_eq!(v["problems"], serde_json::json!([]));

    let copy = dir.path().join("copy.db");
    let out = apcdb(&["recover", "--json", "--out"], &[&copy, &path], b"");
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(
        (v["copied"].as_u64(), v["replaced"].as_bool()),
        (Some(n), Some(false))
    );
    assert_eq!(v["damaged_kept_as"], serde_json::Value::Null);

    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..8192].fill(0x5a);
    std::fs::write(&path, &bytes).unwrap();
    let out = apcdb(&["check", "--json"], &[&path], b"");
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["clean"], false);
    assert!(!v["problems"].as_array().unwrap().is_empty(), "{v}");

    let out = apcdb(
        &["recover", "--json", "--replace", "--out"],
        &[&dir.path().join("tmp.db"), &path],
        b"",
    );
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["replaced"], true);
    assert!(v["lost"][0]
        .as_str()
        .unwrap()
        .contains("no usable superblock"));
    assert!(v["damaged_kept_as"]
        .as_str()
        .unwrap()
        .ends_with("s.db.damaged"));
}

/// `stats --format prometheus`: every sample has its HELP and TYPE, the store label, counters
/// end in `_total`, and the values are the ones `--json` reports.
#[test]
fn stats_for_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    // A path that needs escaping in a label value.
    let path = dir.path().join("we\"ird\\name.db");
    sample(&path);
    // Hits and misses live in the shared state of the open store (kept open meanwhile); a
    // handle publishes its batched counts when it closes.
    let store = Store::open(&path, Options::default()).unwrap();
    let reader = Store::open(&path, Options::default()).unwrap();
    reader.get(b"plain").unwrap();
    reader.get(b"nothing here").unwrap();
    drop(reader);
    let json = json_of(&apcdb(&["stats", "--json"], &[&path], b""));
    let out = apcdb(&["stats", "--format", "prometheus"], &[&path], b"");
    assert_eq!(out.status.code(), Some(0));
    let prom = text(&out);
    let label = format!(
        "{{store=\"{}\"}}",
        path.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    );
    let (mut samples, mut counters) = (0, 0);
    let mut lines = prom.lines();
    while let Some(help) = lines.next() {
        let name = help
            .strip_prefix("# HELP apcdb_")
            .and_then(|r| r.split_once(' '))
            .map(|(n, _)| n)
            .unwrap_or_else(|| panic!("expected HELP, got {help}"));
        let kind = lines.next().unwrap();
        let kind = kind
            .strip_prefix(&format!("# TYPE apcdb_{name} "))
            .unwrap_or_else(|| panic!("expected TYPE of {name}, got {kind}"));
        assert!(kind == "counter" || kind == "gauge", "{kind}");
        assert_eq!(
            kind == "counter",
            name.ends_with("_total"),
            "{name} is a {kind}"
        );
        counters += (kind == "counter") as u32;
        let sample = lines.next().unwrap();
        let value = sample
            .strip_prefix(&format!("apcdb_{name}{label} "))
            .unwrap_or_else(|| panic!("sample of {name}: {sample}"));
        let value: u64 = value.parse().unwrap();
        // The JSON name: the Prometheus one without its unit or _total suffix.
        let plain = ["_total", "_bytes"]
            .iter()
            .fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
        let expected = json
            .get(name)
            .or_else(|| json.get(plain))
            .or_else(|| json.get(format!("{plain}_len")))
            .unwrap_or_else(|| panic!("{name} is not in --json: {json}"));
        // Each reading opens and closes the store, and the last closer checkpoints (so the
        // epoch moves between the two readings); the rest agree.
        if !name.starts_with("checkpoint") {
            assert_eq!(Some(value), expected.as_u64(), "{name}");
        }
        samples += 1;
    }
    assert_eq!(samples, json.as_object().unwrap().len() - 1, "every figure");
    assert_eq!(
        counters, 6,
        "hits, misses, inserts, deletes, checkpoints, recoveries"
    );
    assert!(
        prom.contains(&format!("apcdb_hits_total{label} 1\n")),
        "{prom}"
    );
    assert!(prom.contains("# TYPE apcdb_entries gauge\n"));
    drop(store);
}

/// `apcdb resize` raises the limit of a store another process has open (that process can grow
/// past the old limit at once), refuses to lower it below the file, and changes nothing then.
#[test]
fn resize_raises_and_refuses_to_lower_below_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let opts = Options::default()
        .durability(apcdb::Durability::None)
        .initial_size(256 << 10)
        .max_size(1 << 20);
    let store = Store::open(&path, opts).unwrap();
    let value = vec![5u8; 16 << 10];
    let mut i = 0;
    while store.put(format!("k{i}").as_bytes(), &value).is_ok() {
        i += 1;
    }
    let out = apcdb(&["resize", "--max-size", "8M"], &[&path], b"");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text(&out).contains("-> 8388608 bytes"), "{}", text(&out));
    // The open handle sees the new limit without reopening.
    assert_eq!(store.stats().unwrap().max_size, 8 << 20);
    store.put(format!("k{i}").as_bytes(), &value).unwrap();
    assert!(store.stats().unwrap().file_size > 1 << 20);

    let out = apcdb(&["resize", "--max-size", "1M"], &[&path], b"");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot lower the maximum size"), "{err}");
    assert_eq!(store.stats().unwrap().max_size, 8 << 20);
    let out = apcdb(&["resize", "--max-size", "12Q"], &[&path], b"");
    assert_eq!(out.status.code(), Some(2));
}
