<?php
// A short loop for interleaved before/after comparisons on a busy machine (BENCHMARKS.md, PHP,
// "Before and after, interleaved"): 100,000 stores then 100,000 fetches over 64 keys, one value
// type, one process. Prints ns per call, wall clock and CPU time (user + system) of this process;
// then the same number of stores and of fetches again, each call timed on its own, for the
// tail: p99.9 and max in ns per call (each includes one hrtime() call, about 30-60 ns).
//
//   php -n -d extension=/path/libapcdb.so -d apcdb.file=/tmp/x.db -d apcdb.durability=none \
//       -d apcdb.size=64M loop.php apc int|str|list|nested|row|big [stores]
//   php -n -d extension=apcu -d apc.enable_cli=1 loop.php apcu int|str|list|nested|row|big [stores]
//
// `row` and `big` are bench.php's 10-element array and nested 100-element array (values.inc).
// `stores` (default 100000) sets the number of stores of each pass (fewer for durability=sync,
// where each store waits for its fdatasync); fetches stay 100,000.
require __DIR__ . '/values.inc';
$pfx = $argv[1]; $type = $argv[2];
$st = $pfx === 'apcu' ? 'apcu_store' : 'apc_store';
$fe = $pfx === 'apcu' ? 'apcu_fetch' : 'apc_fetch';
$v = match($type) { 'int' => 12345, 'str' => str_repeat('x', 100),
  'list' => [1, 2, 'a', 'bb', true, null, 1.5, 3, 'ccc', 4],
  'nested' => ['a' => ['b' => [1,2,3], 'c' => [4,5,6]], 'd' => [7,8,9]],
  'row' => value_of('array', 7), 'big' => value_of('nested', 7) };
$keys = []; for ($i = 0; $i < 64; $i++) $keys[] = "key$i";
$N = 100000;
$S = (int)($argv[3] ?? $N);
function cpu() { $r = getrusage(); return ($r['ru_utime.tv_sec'] + $r['ru_stime.tv_sec']) * 1e9 + ($r['ru_utime.tv_usec'] + $r['ru_stime.tv_usec']) * 1e3; }
function tail(array $t) { sort($t); $n = count($t); return [$t[min($n - 1, (int)($n * 0.999))], $t[$n - 1]]; }
for ($i = 0; $i < 2000; $i++) $st($keys[$i & 63], $v);
$t = hrtime(true); $c = cpu();
for ($i = 0; $i < $S; $i++) $st($keys[$i & 63], $v);
$s = (hrtime(true) - $t) / $S; $sc = (cpu() - $c) / $S;
$t = hrtime(true); $c = cpu();
for ($i = 0; $i < $N; $i++) $x = $fe($keys[$i & 63]);
$f = (hrtime(true) - $t) / $N; $fc = (cpu() - $c) / $N;
$ts = [];
for ($i = 0; $i < $S; $i++) { $t = hrtime(true); $st($keys[$i & 63], $v); $ts[] = hrtime(true) - $t; }
[$s999, $smax] = tail($ts);
$ts = [];
for ($i = 0; $i < $N; $i++) { $t = hrtime(true); $x = $fe($keys[$i & 63]); $ts[] = hrtime(true) - $t; }
[$f999, $fmax] = tail($ts);
printf("%s %s store %.0f cpu %.0f fetch %.0f cpu %.0f store_p999 %d store_max %d fetch_p999 %d fetch_max %d\n",
  $pfx, $type, $s, $sc, $f, $fc, $s999, $smax, $f999, $fmax);
