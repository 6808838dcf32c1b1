<?php
// A short loop for interleaved before/after comparisons on a busy machine (BENCHMARKS.md, PHP,
// "Before and after, interleaved"): 100,000 stores then 100,000 fetches over 64 keys, one value
// type, one process. Prints ns per call, wall clock and CPU time (user + system) of this process.
//
//   php -n -d extension=/path/libapcdb.so -d apcdb.file=/tmp/x.db -d apcdb.durability=none \
//       -d apcdb.size=64M loop.php apc int|str|list|nested
//   php -n -d extension=apcu -d apc.enable_cli=1 loop.php apcu int|str|list|nested
$pfx = $argv[1]; $type = $argv[2];
$st = $pfx === 'apcu' ? 'apcu_store' : 'apc_store';
$fe = $pfx === 'apcu' ? 'apcu_fetch' : 'apc_fetch';
$v = match($type) { 'int' => 12345, 'str' => str_repeat('x', 100),
  'list' => [1, 2, 'a', 'bb', true, null, 1.5, 3, 'ccc', 4],
  'nested' => ['a' => ['b' => [1,2,3], 'c' => [4,5,6]], 'd' => [7,8,9]] };
$keys = []; for ($i = 0; $i < 64; $i++) $keys[] = "key$i";
$N = 100000;
function cpu() { $r = getrusage(); return ($r['ru_utime.tv_sec'] + $r['ru_stime.tv_sec']) * 1e9 + ($r['ru_utime.tv_usec'] + $r['ru_stime.tv_usec']) * 1e3; }
for ($i = 0; $i < 2000; $i++) $st($keys[$i & 63], $v);
$t = hrtime(true); $c = cpu();
for ($i = 0; $i < $N; $i++) $st($keys[$i & 63], $v);
$s = (hrtime(true) - $t) / $N; $sc = (cpu() - $c) / $N;
$t = hrtime(true); $c = cpu();
for ($i = 0; $i < $N; $i++) $x = $fe($keys[$i & 63]);
$f = (hrtime(true) - $t) / $N; $fc = (cpu() - $c) / $N;
printf("%s %s store %.0f cpu %.0f fetch %.0f cpu %.0f\n", $pfx, $type, $s, $sc, $f, $fc);
