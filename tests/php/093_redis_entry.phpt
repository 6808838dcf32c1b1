--TEST--
Redis backend, apc_entry: one generator at a time per key across processes (a lease on the server, renewed while the generator runs), waiters get its value; a generator killed with SIGKILL holds the key only until its lease expires; nested calls, exceptions and apc_clear_cache
--SKIPIF--
<?php if (!is_executable('/usr/bin/redis-server')) die('skip redis-server is not installed (make setup)'); ?>
--FILE--
<?php
require __DIR__ . '/redis.inc';
[$port] = apcdb_redis_start();
// A 1 s lease: renewed every third of a second while a generator runs.
$ini = ['apcdb.file' => "redis://127.0.0.1:$port/0", 'apcdb.redis_prefix' => 'p:', 'apcdb.redis_lease' => '1'];
$flag = apcdb_tmp('093-flag');

function start(array $ini, string $code) {
    $cmd = apcdb_cmd($ini);
    $cmd[] = '-r';
    $cmd[] = $code;
    $p = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
    return [$p, $pipes[1]];
}
function finish(array $c): string {
    $o = stream_get_contents($c[1]);
    fclose($c[1]);
    proc_close($c[0]);
    return $o;
}
function wait_for(string $f): void {
    for ($i = 0; $i < 500 && !file_exists($f); $i++) usleep(10000);
    if (!file_exists($f)) echo "timed out waiting for $f\n";
}
function locks(int $port): string {
    $k = array_filter(apcdb_redis_cmd($port, ['KEYS', '*']), fn($k) => str_contains($k, "\0apcdb:lock:"));
    return json_encode(array_values(array_map(fn($k) => str_replace("\0", '\0', $k), $k)));
}

echo "-- one process: miss, hit, ttl, throw, nested, the generator's own store\n";
echo apcdb_run($ini, '
    var_dump(apc_entry("a", function ($k) { echo "gen $k\n"; return [1, 2]; }, 100));
    var_dump(apc_entry("a", function ($k) { echo "not called\n"; return 0; }));
    try { apc_entry("t", function () { throw new RuntimeException("boom"); }); } catch (RuntimeException $e) { echo $e->getMessage(), "\n"; }
    var_dump(apc_exists("t"));
    var_dump(apc_entry("n", function ($k) { return "outer+" . apc_entry($k, fn() => "inner"); }));
    var_dump(apc_entry("s", function ($k) { apc_store($k, "stored inside"); return "generated"; }), apc_fetch("s"));
    var_dump(apc_store("\0apcdb:lock:a", 1));
');
$ms = apcdb_redis_cmd($port, ['PTTL', 'p:a']);
echo "ttl 100 s: ", ($ms > 99000 && $ms <= 101000) ? 'ok' : "wrong: $ms", "; locks left: ", locks($port), "\n";

echo "-- a child forked inside the generator runs a nested call of the key directly (its value is stored first and kept) and leaves the parent's lock alone\n";
$t = microtime(true);
echo apcdb_run($ini, 'var_dump(apc_entry("f", function ($k) {
    $pid = pcntl_fork();
    if ($pid === 0) { echo "child: ", apc_entry($k, fn() => "child gen"), "\n"; exit(0); }
    pcntl_waitpid($pid, $st);
    return "parent";
}), apc_fetch("f"));');
echo "in time: ", microtime(true) - $t < 10 ? 'yes' : 'no', "; locks left: ", locks($port), "\n";

echo "-- two processes: the second waits for the first's generator, which outlives its lease\n";
@unlink($flag);
$t = microtime(true);
$a = start($ini, 'var_dump(apc_entry("k", function () { touch(' . var_export($flag, true) . '); usleep(2500000); return "from A"; }));');
wait_for($flag);
$b = start($ini, 'var_dump(apc_entry("k", function () { echo "B generated\n"; return "from B"; }));');
usleep(1500000);
// 1.5 s after A took it, past the 1 s lease: still held (renewed), with at most a lease to go.
$ms = apcdb_redis_cmd($port, ['PTTL', "p:\0apcdb:lock:k"]);
echo "lock renewed: ", ($ms > 0 && $ms <= 1000) ? 'yes' : "no ($ms)", "\n";
echo "A: ", finish($a), "B: ", finish($b);
$e = microtime(true) - $t;
echo "B waited for A: ", $e >= 2.4 ? 'yes' : "no ($e s)", "; locks left: ", locks($port), "\n";

echo "-- a generator killed with SIGKILL: the next caller generates once its lease expires\n";
@unlink($flag);
$a = start($ini, 'apc_entry("d", function () { touch(' . var_export($flag, true) . '); sleep(60); return "never"; }); echo "not reached\n";');
wait_for($flag);
proc_terminate($a[0], 9);
echo "killed A: ", json_encode(finish($a)), "\n";
$t = microtime(true);
echo apcdb_run($ini, 'var_dump(apc_entry("d", function () { echo "B generated\n"; return "from B"; }));');
$e = microtime(true) - $t;
// The lease had at most 1 s left; renewed every 1/3 s, so at least about 0.6 s.
echo "B waited for the lease only: ", ($e >= 0.3 && $e < 3.0) ? 'yes' : "no ($e s)", "; locks left: ", locks($port), "\n";

echo "-- a generator that throws releases the key at once\n";
@unlink($flag);
// A 5 s lease: B must not wait for it to expire.
$ini5 = ['apcdb.redis_lease' => '5'] + $ini;
$a = start($ini5, 'try { apc_entry("x", function () { touch(' . var_export($flag, true) . '); usleep(300000); throw new Exception("A failed"); }); } catch (Exception $e) { echo $e->getMessage(), "\n"; }');
wait_for($flag);
$t = microtime(true);
$b = start($ini5, 'var_dump(apc_entry("x", function () { echo "B generated\n"; return "from B"; }));');
echo "A: ", finish($a), "B: ", finish($b);
$e = microtime(true) - $t;
echo "B did not wait for a lease: ", $e < 2.5 ? 'yes' : "no ($e s)", "\n";

echo "-- apc_clear_cache keeps a running generator's lock; exit() in a generator releases it\n";
@unlink($flag);
$a = start($ini, 'var_dump(apc_entry("c", function () { touch(' . var_export($flag, true) . '); usleep(800000); return "from A"; }));');
wait_for($flag);
echo apcdb_run($ini, 'var_dump(apc_clear_cache());');
echo "lock kept: ", locks($port), "\n";
$b = start($ini, 'var_dump(apc_entry("c", function () { echo "B generated\n"; return "from B"; }));');
echo "A: ", finish($a), "B: ", finish($b);
echo apcdb_run($ini, 'apc_entry("e", function () { exit("exit in the generator\n"); });');
echo "locks left: ", locks($port), "\n";
apcdb_unlink($flag);
?>
--EXPECTF--
-- one process: miss, hit, ttl, throw, nested, the generator's own store
gen a
array(2) {
  [0]=>
  int(1)
  [1]=>
  int(2)
}
array(2) {
  [0]=>
  int(1)
  [1]=>
  int(2)
}
boom
bool(false)
string(11) "outer+inner"
string(9) "generated"
string(13) "stored inside"

Warning: apc_store(): apcdb: keys beginning with "\0apcdb:" are reserved on a Redis server (apc_entry's locks) in Command line code on line %d
bool(false)
ttl 100 s: ok; locks left: []
-- a child forked inside the generator runs a nested call of the key directly (its value is stored first and kept) and leaves the parent's lock alone
child: child gen
string(6) "parent"
string(9) "child gen"
in time: yes; locks left: []
-- two processes: the second waits for the first's generator, which outlives its lease
lock renewed: yes
A: string(6) "from A"
B: string(6) "from A"
B waited for A: yes; locks left: []
-- a generator killed with SIGKILL: the next caller generates once its lease expires
killed A: ""
B generated
string(6) "from B"
B waited for the lease only: yes; locks left: []
-- a generator that throws releases the key at once
A: A failed
B: B generated
string(6) "from B"
B did not wait for a lease: yes
-- apc_clear_cache keeps a running generator's lock; exit() in a generator releases it
bool(true)
lock kept: ["p:\\0apcdb:lock:c"]
A: string(6) "from A"
B: string(6) "from A"
exit in the generator
locks left: []
