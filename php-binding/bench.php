<?php
// Time per apc_fetch / apc_store (apcdb) against apcu_fetch / apcu_store (APCu), in the same php
// process: both extensions are loaded side by side (apcdb.apcu_compat=0, the default).
//
//   php php-binding/bench.php [--n N] [--ext /abs/path/libapcdb.so] [--modes sync,periodic,none,anon]
//
// Started without the extensions, the script is a driver: for each apcdb durability mode it runs
// itself again as `php -n -d extension=apcu.so -d apc.enable_cli=1 -d extension=libapcdb.so
// -d apcdb.file=... -d apcdb.durability=MODE` and prints one table. ("anon" is apcdb.file empty:
// the anonymous, non-durable store shared with forked children, the closest to APCu.)

declare(strict_types=1);

$opts = getopt('', ['n:', 'ext:', 'modes:', 'worker', 'db:']);
$n = (int)($opts['n'] ?? 20000);

if (!isset($opts['worker'])) {
    $ext = $opts['ext'] ?? (getenv('APCDB_EXT') ?: dirname(__DIR__) . '/target/release/libapcdb.so');
    if (!is_file($ext)) {
        fwrite(STDERR, "no extension at $ext: build it with `cargo build --release -p apcdb-php` or pass --ext\n");
        exit(1);
    }
    if (!is_file(PHP_EXTENSION_DIR . '/apcu.so')) {
        fwrite(STDERR, "APCu is not installed (apt-get install php8.2-apcu)\n");
        exit(1);
    }
    $modes = explode(',', $opts['modes'] ?? 'sync,periodic,none,anon');
    printf("php %s, %d iterations per operation, %d distinct keys; ns per call (median of 5 runs)\n\n",
        PHP_VERSION, $n, 1000);
    printf("| apcdb durability | value | apc_store | apcu_store | ratio | apc_fetch | apcu_fetch | ratio |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---:|\n");
    foreach ($modes as $mode) {
        $db = sys_get_temp_dir() . '/apcdb-bench-' . getmypid() . "-$mode.db";
        foreach (['', '.journal', '.lock'] as $s) @unlink($db . $s);
        $cmd = [PHP_BINARY, '-n', '-d', 'extension=apcu.so', '-d', 'apc.enable_cli=1', '-d', 'apc.shm_size=256M',
                '-d', "extension=$ext", '-d', 'apcdb.file=' . ($mode === 'anon' ? '' : $db),
                '-d', 'apcdb.durability=' . ($mode === 'anon' ? 'sync' : $mode), '-d', 'apcdb.sync_interval_ms=100',
                '-d', 'apcdb.size=256M', __FILE__, '--worker', "--n=$n"];
        $p = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
        $out = stream_get_contents($pipes[1]);
        proc_close($p);
        foreach (['', '.journal', '.lock'] as $s) @unlink($db . $s);
        $rows = json_decode($out, true);
        if (!is_array($rows)) {
            echo "| $mode | worker failed: ", trim($out), " |\n";
            continue;
        }
        foreach ($rows as $type => $r) {
            printf("| %s | %s | %s | %s | %.1fx | %s | %s | %.1fx |\n", $mode, $type,
                fmt($r['apc_store']), fmt($r['apcu_store']), $r['apc_store'] / $r['apcu_store'],
                fmt($r['apc_fetch']), fmt($r['apcu_fetch']), $r['apc_fetch'] / $r['apcu_fetch']);
        }
    }
    exit(0);
}

function fmt(float $ns): string {
    return $ns >= 10000 ? sprintf('%.1f µs', $ns / 1000) : sprintf('%.0f ns', $ns);
}

// ---- worker: both extensions loaded in this process.
if (!function_exists('apc_store') || !function_exists('apcu_store')) {
    echo "both apcdb and APCu must be loaded\n";
    exit(1);
}
$values = [
    'int' => 12345,
    '100 B string' => str_repeat('v', 100),
    '1 KiB string' => str_repeat('w', 1024),
    'array, 10 elements' => ['id' => 1, 'name' => 'alice', 'tags' => ['a', 'b'], 'n' => 1.5, 'ok' => true,
                             'x' => null, 'y' => 'z', 'list' => [1, 2, 3], 'k' => 'v', 'last' => -1],
];
$keys = [];
for ($i = 0; $i < 1000; $i++) $keys[] = "bench:key:$i";

/** Median ns per call of $f over $n calls, 5 runs. */
function measure(int $n, callable $f): float {
    $runs = [];
    for ($r = 0; $r < 5; $r++) {
        $t = hrtime(true);
        $f($n);
        $runs[] = (hrtime(true) - $t) / $n;
    }
    sort($runs);
    return $runs[2];
}

$result = [];
foreach ($values as $type => $v) {
    $ok = true;
    // Sync durability waits for the disk on every store: fewer iterations keep the run short.
    $ns = ini_get('apcdb.durability') === 'sync' && ini_get('apcdb.file') !== '' ? max(200, intdiv($n, 20)) : $n;
    $r = [];
    $r['apc_store'] = measure($ns, function ($n) use ($keys, $v) { for ($i = 0; $i < $n; $i++) apc_store($keys[$i % 1000], $v); });
    $r['apcu_store'] = measure($n, function ($n) use ($keys, $v) { for ($i = 0; $i < $n; $i++) apcu_store($keys[$i % 1000], $v); });
    $r['apc_fetch'] = measure($n, function ($n) use ($keys) { for ($i = 0; $i < $n; $i++) apc_fetch($keys[$i % 1000]); });
    $r['apcu_fetch'] = measure($n, function ($n) use ($keys) { for ($i = 0; $i < $n; $i++) apcu_fetch($keys[$i % 1000]); });
    // Both return what was stored.
    if (apc_fetch($keys[7]) !== $v || apcu_fetch($keys[7]) !== $v) {
        echo "fetch mismatch for $type\n";
        exit(1);
    }
    $result[$type] = $r;
}
echo json_encode($result);
