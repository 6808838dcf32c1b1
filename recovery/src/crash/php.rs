//! PHP workers: the same workload and protocol as the Rust workers, driven through the `apcdb`
//! PHP extension's `apc_*` functions, so the whole PHP path is killed and verified the same way.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Finds the extension: an explicit path, `$APCDB_PHP_EXT`, or `target/release/libapcdb.so` in
/// this binary's directory or any of its parents (the workspace layout).
pub fn find_extension(explicit: Option<&str>) -> Result<PathBuf, String> {
    if let Some(p) = explicit
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("APCDB_PHP_EXT").map(PathBuf::from))
    {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("PHP extension {} does not exist", p.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate this binary: {e}"))?;
    let mut dir = exe.parent();
    while let Some(d) = dir {
        for candidate in [d.join("libapcdb.so"), d.join("target/release/libapcdb.so")] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        dir = d.parent();
    }
    Err("--php needs the apcdb PHP extension, but target/release/libapcdb.so was not found; build it with \
         `cargo build --release -p apcdb-php` or name it with --php-ext PATH (or $APCDB_PHP_EXT)"
        .into())
}

/// `store` is `apcdb.file`: the store's path, or a Redis server's URL (`crash-test --redis`).
/// `max_size` is `apcdb.size`; `evict` sets `apcdb.when_full=evict` (the workers' writes then
/// evict others when the store is full).
fn php(ext: &Path, store: &OsStr, durability: &str, max_size: u64, evict: bool) -> Command {
    let (mode, interval) = match durability.split_once(':') {
        Some((m, i)) => (
            m,
            crate::args::parse_duration(i)
                .map(|d| d.as_millis())
                .unwrap_or(50),
        ),
        None => (durability, 50),
    };
    let mut file = OsString::from("apcdb.file=");
    file.push(store);
    let mut cmd = Command::new("php");
    cmd.arg("-d")
        .arg(format!("extension={}", ext.display()))
        .arg("-d")
        .arg(file)
        .args(["-d", "apcdb.enabled=1", "-d", "display_errors=stderr"])
        // Read only for a Redis server: a server fsyncing every write on a busy machine can take
        // longer than the default second to answer, which is slow, not wrong.
        .args(["-d", "apcdb.redis_timeout=60"])
        .arg("-d")
        .arg(format!("apcdb.size={max_size}"))
        // The Rust workers' journal (`config::store_options`): without it the journal would
        // follow `apcdb.size`, and a larger one takes fewer checkpoints for the kills to hit.
        .args(["-d", "apcdb.journal_size=8M"])
        .arg("-d")
        .arg(format!(
            "apcdb.when_full={}",
            if evict { "evict" } else { "refuse" }
        ))
        .arg("-d")
        .arg(format!("apcdb.durability={mode}"))
        .arg("-d")
        .arg(format!("apcdb.sync_interval_ms={interval}"));
    cmd
}

/// The command for one PHP worker process; its stdout speaks the worker protocol.
#[allow(clippy::too_many_arguments)]
pub fn worker_command(
    ext: &Path,
    store: &OsStr,
    durability: &str,
    script: &Path,
    slot: u32,
    inc: u64,
    seed: u64,
    keys: u32,
    counters: u32,
    max_size: u64,
    evict: bool,
) -> Command {
    let mut cmd = php(ext, store, durability, max_size, evict);
    cmd.arg(script).args([
        slot.to_string(),
        inc.to_string(),
        seed.to_string(),
        keys.to_string(),
        counters.to_string(),
    ]);
    cmd
}

/// Reads the named keys through PHP's `apc_fetch` (values as PHP sees them; ints as decimal text);
/// its script and key list go in `dir`.
pub fn observe(
    ext: &Path,
    store: &OsStr,
    dir: &Path,
    durability: &str,
    max_size: u64,
    names: &[String],
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let script = dir.join("observe.php");
    let list = dir.join("observe.keys");
    std::fs::write(&script, OBSERVE_SCRIPT)
        .map_err(|e| format!("writing {}: {e}", script.display()))?;
    std::fs::write(&list, names.join("\n") + "\n")
        .map_err(|e| format!("writing {}: {e}", list.display()))?;
    let out = php(ext, store, durability, max_size, false)
        .arg(&script)
        .arg(&list)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running php: {e}"))?;
    if !out.status.success() {
        return Err(format!("the PHP reader failed ({})", out.status));
    }
    let mut map = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let w: Vec<&str> = line.split(' ').collect();
        match w.as_slice() {
            ["key", _, "-"] => {}
            ["key", name, b64] => {
                let value = B64
                    .decode(b64)
                    .map_err(|e| format!("the PHP reader's base64 for {name}: {e}"))?;
                map.insert(name.to_string(), value);
            }
            _ => return Err(format!("unexpected line from the PHP reader: {line:?}")),
        }
    }
    Ok(map)
}

pub fn write_worker_script(dir: &Path) -> Result<PathBuf, String> {
    let path = dir.join("worker.php");
    std::fs::write(&path, WORKER_SCRIPT).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

/// Same value format as `value.rs`; same protocol as `protocol.rs`. No batches: the PHP API has no
/// atomic multi-key write.
const WORKER_SCRIPT: &str = r#"<?php
[$_, $slot, $inc, $seed, $nkeys, $ncounters] = $argv;
mt_srand((int)$seed * 1000003 + (int)$inc);
function out($s) { if (fwrite(STDOUT, $s . "\n") === false) exit(2); }
function val($key, $inc, $seq, $n) {
    $p = "$inc.$seq;";
    $f = $n == 0 ? '' : substr(str_repeat($p, intdiv($n, strlen($p)) + 1), 0, $n);
    return "v1|$key|$inc|$seq|$n|" . $f;
}
function filler() {
    $r = mt_rand(0, 999);
    if ($r < 80) return -1;
    if ($r < 830) return mt_rand(0, 199);
    if ($r < 980) return mt_rand(200, 16383);
    if ($r < 996) return mt_rand(16384, 262143);
    return mt_rand(262144, 1048000);
}
// A write refused because even evicting could not make room (a value about as large as the
// store): reported as refused, which the model takes as "nothing changed".
function full() { return str_contains(error_get_last()['message'] ?? '', ' is full: '); }
if (!function_exists('apc_store')) { out("X the apcdb extension did not load (no apc_store)"); exit(3); }
out("R " . hrtime(true));
for ($seq = 1; ; $seq++) {
    $r = mt_rand(0, 999);
    $i = mt_rand(0, $nkeys - 1);
    $key = "w$slot/$i";
    $t = hrtime(true);
    if ($r < 500) {
        $f = filler();
        $v = $f < 0 ? '' : val($key, $inc, $seq, $f);
        $add = $r >= 400;
        out("I $seq $t " . ($add ? 'add' : 'put') . " $i " . ($f < 0 ? '-' : $f) . " 0");
        if ($r >= 450) {
            // apc_entry is an add: its generator runs (and its value is stored) only when the
            // key is absent. The generator uses the cache: reads, and on odd steps a nested
            // apc_entry of its own key (run directly, storing the same value first).
            $ran = false;
            error_clear_last();
            $got = apc_entry($key, function ($k) use (&$ran, $v, $seq) {
                $ran = true;
                apc_fetch("ctr/0");
                apc_exists($k);
                if ($seq % 2) { apc_entry($k, fn($k2) => $v); }
                return $v;
            });
            if (error_get_last() !== null) {
                if (full()) { out("F $seq " . hrtime(true) . " full"); continue; }
                out("X apc_entry: " . error_get_last()['message']); exit(3);
            }
            if ($ran && $got !== $v) { out("X apc_entry returned another value than its generator's"); exit(3); }
            out("K $seq " . hrtime(true) . ($ran ? " 1" : " 0"));
            continue;
        }
        error_clear_last();
        $ok = $add ? apc_add($key, $v) : apc_store($key, $v);
        if (!$ok && full()) { out("F $seq " . hrtime(true) . " full"); }
        elseif ($add) { out("K $seq " . hrtime(true) . ($ok ? " 1" : " 0")); }
        elseif ($ok === true) { out("K $seq " . hrtime(true) . " -"); }
        else { out("X apc_store failed: " . (error_get_last()['message'] ?? 'returned false')); exit(3); }
    } elseif ($r < 650) {
        out("I $seq $t del $i");
        $ok = apc_delete($key);
        out("K $seq " . hrtime(true) . ($ok ? " 1" : " 0"));
    } elseif ($r < 995) {
        $c = mt_rand(0, $ncounters - 1);
        $ck = "ctr/$c";
        out("I $seq $t inc $c");
        // apc_inc fails on a missing key (APC semantics): then create it; exactly one attempt counts.
        while (true) {
            $ok = false;
            apc_inc($ck, 1, $ok);
            if ($ok) break;
            if (apc_add($ck, 1)) break;
        }
        out("K $seq " . hrtime(true) . " -");
    } else {
        out("I $seq $t clear");
        if (apc_clear_cache('user') === false) { out("X apc_clear_cache failed"); exit(3); }
        out("K $seq " . hrtime(true) . " -");
    }
}
"#;

const OBSERVE_SCRIPT: &str = r#"<?php
foreach (file($argv[1], FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) as $name) {
    $ok = false;
    $v = apc_fetch($name, $ok);
    if (!$ok) { echo "key $name -\n"; continue; }
    if (is_int($v)) $v = (string)$v;
    if (!is_string($v)) $v = "non-string:" . serialize($v);
    echo "key $name " . base64_encode($v) . "\n";
}
"#;
