//! The kill -9 harness end to end: real worker processes, real SIGKILLs, real files.

use apcdb::{Options, Store};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn apcdb() -> Command {
    Command::new(env!("CARGO_BIN_EXE_apcdb"))
}

/// Runs to completion, or kills it and fails the test if it hangs.
fn run(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{cmd:?} hung for {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Parses the summary line `crash-test: K kills, A acknowledged, V verified, L lost`.
fn summary(out: &Output) -> [u64; 4] {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default().to_string();
    let words: Vec<&str> = last
        .split(&[' ', ','][..])
        .filter(|w| !w.is_empty())
        .collect();
    match words.as_slice() {
        ["crash-test:", k, "kills", a, "acknowledged", v, "verified", l, "lost"] => {
            [k, a, v, l].map(|n| n.parse().unwrap())
        }
        _ => panic!(
            "bad last line {last:?}\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn short_run(durability: &str) {
    let mut cmd = apcdb();
    cmd.args([
        "crash-test",
        "--kills",
        "20",
        "--workers",
        "4",
        "--seed",
        "7",
        "--durability",
        durability,
    ]);
    let out = run(cmd, Duration::from_secs(240));
    let [kills, acked, verified, lost] = summary(&out);
    assert!(
        out.status.success(),
        "crash-test failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(kills >= 20, "only {kills} kills");
    assert!(
        acked > 0 && verified == acked,
        "{acked} acknowledged, {verified} verified"
    );
    assert_eq!(lost, 0);
}

#[test]
fn survives_kills_sync() {
    short_run("sync");
}

#[test]
fn survives_kills_periodic() {
    short_run("periodic:20ms");
}

#[test]
fn survives_kills_none() {
    short_run("none");
}

/// A run whose store and files are kept, for tampering with.
fn kept_run(dir: &Path) {
    let mut cmd = apcdb();
    cmd.args([
        "crash-test",
        "--kills",
        "6",
        "--seed",
        "3",
        "--keep",
        "--dir",
    ])
    .arg(dir);
    let out = run(cmd, Duration::from_secs(240));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The expectations that exactly describe the last observed state.
fn expect_exactly_observed(dir: &Path) -> String {
    let observed = std::fs::read_to_string(dir.join("observed.txt")).unwrap();
    observed
        .lines()
        .map(|l| match l.split(' ').collect::<Vec<_>>().as_slice() {
            ["counter", name, v] => format!("counter {name} {v} {v}\n"),
            _ => format!("{l}\n"),
        })
        .collect()
}

fn verify(dir: &Path, expect: &str) -> (bool, String) {
    let path = dir.join("tampered-expect.txt");
    std::fs::write(&path, expect).unwrap();
    let mut cmd = apcdb();
    cmd.args(["crash-test", "verify", "--store"])
        .arg(dir.join("store.db"))
        .arg("--expect")
        .arg(&path);
    let out = run(cmd, Duration::from_secs(120));
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "verify crashed: {out:?}"
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn verifier_detects_what_was_done_behind_its_back() {
    let dir = tempfile::tempdir().unwrap();
    kept_run(dir.path());
    let expect = expect_exactly_observed(dir.path());
    let (clean, out) = verify(dir.path(), &expect);
    assert!(clean, "untouched store must verify: {out}");

    let present: Vec<String> = expect
        .lines()
        .filter_map(|l| l.strip_prefix("key "))
        .filter(|l| !l.ends_with(" -"))
        // Not a key with a short expiry (the workers give some a few seconds): by the time the
        // verifier looks it may have expired, and then its absence is no loss.
        .filter(|l| {
            let soon = apcdb_recovery_now_ms() + 600_000;
            l.split(' ').skip(1).all(|state| {
                state
                    .rsplit_once(':')
                    .and_then(|(_, exp)| exp.parse::<u64>().ok())
                    .is_some_and(|exp| exp == 0 || exp > soon)
            })
        })
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert!(
        present.len() >= 3,
        "the run left too few keys to tamper with:\n{expect}"
    );
    let store = Store::open(dir.path().join("store.db"), Options::default()).unwrap();

    // An acknowledged key deleted behind the harness's back is reported lost.
    assert!(store.delete(present[0].as_bytes()).unwrap());
    let (clean, out) = verify(dir.path(), &expect);
    assert!(
        !clean && out.contains("LOST") && out.contains(&present[0]) && out.contains("lost 1"),
        "{out}"
    );
    let expect = expect.replace(
        &format!("key {} ", present[0]),
        &format!("key {} - ", present[0]),
    );

    // A value with one byte changed is reported torn.
    let mut value = store.get(present[1].as_bytes()).unwrap().unwrap();
    if let Some(last) = value.last_mut() {
        *last ^= 0x20;
        store.put(present[1].as_bytes(), &value).unwrap();
        let (clean, out) = verify(dir.path(), &expect);
        assert!(!clean && out.contains("torn"), "{out}");
    }
    store.delete(present[1].as_bytes()).unwrap();
    let expect = expect.replace(
        &format!("key {} ", present[1]),
        &format!("key {} - ", present[1]),
    );
    assert!(verify(dir.path(), &expect).0, "back to a consistent state");

    // A counter below its acknowledged increments is a loss; a stranger key is reported.
    store.put(b"ctr/0", b"0").unwrap();
    let expect: String = expect
        .lines()
        .map(|l| {
            if l.starts_with("counter ctr/0 ") {
                "counter ctr/0 1000000 1000000\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let (clean, out) = verify(dir.path(), &expect);
    assert!(!clean && out.contains("LOST: counter ctr/0"), "{out}");
    store.put(b"stranger", b"x").unwrap();
    let (_, out) = verify(dir.path(), &expect);
    assert!(out.contains("unknown key \"stranger\""), "{out}");
}

#[test]
fn php_workers_when_the_extension_is_built() {
    let ext = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/libapcdb.so");
    let mut cmd = apcdb();
    cmd.args([
        "crash-test",
        "--php",
        "--kills",
        "8",
        "--seed",
        "5",
        "--php-ext",
    ])
    .arg(&ext);
    if !ext.exists() || Command::new("php").arg("-v").output().is_err() {
        // Without the extension the harness must refuse clearly rather than run something else.
        let out = run(cmd, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2));
        eprintln!(
            "skipping the PHP crash-test: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let out = run(cmd, Duration::from_secs(240));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(summary(&out)[3], 0);
}

fn apcdb_recovery_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `--redis`: PHP workers on a pool of the harness's own redis-server, which is killed and
/// restarted from its append-only file every round. Passes as it is; with the server told to
/// keep no append-only file, the restart loses acknowledged writes and the harness must say so.
#[test]
fn php_workers_on_a_redis_server() {
    let ext = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/libapcdb.so");
    let have_redis = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ext.exists() || !have_redis || Command::new("php").arg("-v").output().is_err() {
        eprintln!("skipping: needs the built extension, php and redis-server (make setup)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run_with = |extra: &[&str]| {
        let mut cmd = apcdb();
        cmd.args(["crash-test", "--redis", "--duration", "4s", "--seed", "9"])
            .args(extra)
            .arg("--dir")
            .arg(dir.path().join(extra.len().to_string()))
            .arg("--php-ext")
            .arg(&ext);
        run(cmd, Duration::from_secs(240))
    };
    let out = run_with(&[]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let [kills, acked, verified, lost] = summary(&out);
    assert!(
        kills > 0 && acked > 0 && verified == acked && lost == 0,
        "{text}"
    );

    let out = run_with(&[
        "--durability",
        "none",
        "--redis-server-args=--appendonly no",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("LOST") && summary(&out)[3] > 0, "{text}");
}
