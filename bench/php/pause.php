<?php
// The pause a request sees (BENCHMARKS.md, PHP, "Pauses"): fills a store with K keys (24-byte
// keys, 150-byte values), then makes N random overwrites, each apc_store timed on its own, and
// prints p50, p99, p99.9 and max in microseconds, with the checkpoints the run crossed and the
// checkpoint flushes this process's writes ran themselves (`flushes_by_writes`).
//
//   php -n -d extension=/path/libapcdb.so -d apcdb.file=/tmp/p.db -d apcdb.durability=none \
//       -d apcdb.size=1G pause.php [keys=200000] [overwrites=400000] [fill|run|both]
//
// `fill` only fills the store (e.g. with durability=none), `run` only overwrites a store filled
// before (e.g. in another process with durability=sync); `both` (default) does both.
$K = (int)($argv[1] ?? 200000);
$N = (int)($argv[2] ?? 400000);
$what = $argv[3] ?? 'both';
$v = str_repeat('v', 150);
$key = fn(int $i) => sprintf('key:%020d', $i);
if ($what !== 'run') {
    for ($i = 0; $i < $K; $i++) apc_store($key($i), $v);
}
if ($what === 'fill') {
    exit(0);
}
$s0 = apcdb_stats();
mt_srand(1);
$t = [];
$w0 = hrtime(true);
for ($i = 0; $i < $N; $i++) {
    $k = $key(mt_rand(0, $K - 1));
    $a = hrtime(true);
    apc_store($k, $v);
    $t[] = hrtime(true) - $a;
}
$wall = (hrtime(true) - $w0) / 1e9;
$s1 = apcdb_stats();
sort($t);
$p = fn(float $q) => $t[min($N - 1, (int)($N * $q))] / 1e3;
printf("keys %d overwrites %d  p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us  " .
    "stores/s %d  checkpoints %d  flushes_by_writes %s\n",
    $K, $N, $p(0.5), $p(0.99), $p(0.999), $t[$N - 1] / 1e3, $N / $wall,
    $s1['checkpoints'] - $s0['checkpoints'],
    isset($s1['flushes_by_writes']) ? $s1['flushes_by_writes'] - $s0['flushes_by_writes'] : 'n/a');
