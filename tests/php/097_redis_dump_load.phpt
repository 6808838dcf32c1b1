--TEST--
Redis backend: apcdb dump of a file loads into a Redis pool (apcdb load --to redis://) and the pool dumps back (apcdb dump --from redis://) into a file: PHP reads the same values from either backend (one value encoding)
--SKIPIF--
<?php
if (!is_executable('/usr/bin/redis-server')) die('skip redis-server is not installed (make setup)');
if (!is_executable(dirname(getenv('APCDB_EXT')) . '/apcdb')) die('skip the apcdb tool is not built (cargo build --release -p apcdb-recovery)');
?>
--FILE--
<?php
require __DIR__ . '/redis.inc';
[$port] = apcdb_redis_start();
$url = "redis://127.0.0.1:$port/0";
$tool = dirname(getenv('APCDB_EXT')) . '/apcdb';
$f1 = apcdb_tmp('097-a');
$f2 = apcdb_tmp('097-b');
$show = 'class P { public $x = 1; protected $y = [2]; }
    foreach (["int", "float", "str", "arr", "obj"] as $k) { echo "$k: "; var_dump(apc_fetch($k)); }
    echo "bin: ", bin2hex(apc_fetch("bin")), "\n";
    echo "ttl: ", apc_key_info("str")["ttl"] > 0 ? "kept" : "lost", "\n";';

echo apcdb_run(['apcdb.file' => $f1], 'class P { public $x = 1; protected $y = [2]; }
    apc_store("int", -7); apc_store("float", 1.5); apc_store("str", "text", 3600);
    apc_store("arr", ["a" => [1, null, true], 5 => "five"]); apc_store("obj", new P); apc_store("bin", "\0\xff");');
function sh(string $cmd): void {
    exec($cmd . ' 2>&1', $out, $rc);
    echo implode("\n", $out), $rc ? " (exit $rc)" : '', "\n";
}
sh(escapeshellarg($tool) . ' dump ' . escapeshellarg($f1) . ' 2>/dev/null | ' . escapeshellarg($tool) . " load --to $url --prefix s:");
echo "-- from the Redis pool\n";
echo apcdb_run(['apcdb.file' => $url, 'apcdb.redis_prefix' => 's:'], $show);
echo apcdb_run(['apcdb.file' => $url, 'apcdb.redis_prefix' => 's:'], 'apc_store("int", 8); apc_store("added", ["on" => "redis"]);');
sh(escapeshellarg($tool) . " dump --from $url --prefix s: 2>/dev/null | " . escapeshellarg($tool) . ' load ' . escapeshellarg($f2));
echo "-- back in a file\n";
echo apcdb_run(['apcdb.file' => $f2], $show . 'var_dump(apc_fetch("added"));');
apcdb_unlink($f1);
apcdb_unlink($f2);
?>
--EXPECT--
loaded 6 entries into the pool under "s:" (0 already expired, skipped)
-- from the Redis pool
int: int(-7)
float: float(1.5)
str: string(4) "text"
arr: array(2) {
  ["a"]=>
  array(3) {
    [0]=>
    int(1)
    [1]=>
    NULL
    [2]=>
    bool(true)
  }
  [5]=>
  string(4) "five"
}
obj: object(P)#1 (2) {
  ["x"]=>
  int(1)
  ["y":protected]=>
  array(1) {
    [0]=>
    int(2)
  }
}
bin: 00ff
ttl: kept
loaded 7 entries (0 already expired, skipped)
-- back in a file
int: int(8)
float: float(1.5)
str: string(4) "text"
arr: array(2) {
  ["a"]=>
  array(3) {
    [0]=>
    int(1)
    [1]=>
    NULL
    [2]=>
    bool(true)
  }
  [5]=>
  string(4) "five"
}
obj: object(P)#1 (2) {
  ["x"]=>
  int(1)
  ["y":protected]=>
  array(1) {
    [0]=>
    int(2)
  }
}
bin: 00ff
ttl: kept
array(1) {
  ["on"]=>
  string(5) "redis"
}
