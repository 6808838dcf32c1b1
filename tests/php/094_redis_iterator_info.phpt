--TEST--
Redis backend, APCIterator/APCUIterator and the info functions: this pool's keys only (not another pool's, not apc_entry's locks), regex and list filters, formats, values read page by page by SCAN steps as iteration reaches them, apc_delete of an iterator, apc_cache_info/apc_sma_info/apc_key_info, a server lost mid-iteration
--SKIPIF--
<?php if (!is_executable('/usr/bin/redis-server')) die('skip redis-server is not installed (make setup)'); ?>
--FILE--
<?php
require __DIR__ . '/redis.inc';
[$port, $server] = apcdb_redis_start();
$url = "redis://127.0.0.1:$port/0";
$a = ['apcdb.file' => $url, 'apcdb.redis_prefix' => 'a:', 'apcdb.apcu_compat' => 1];
$b = ['apcdb.file' => $url, 'apcdb.redis_prefix' => 'b:'];

echo apcdb_run($b, 'apc_store("user1", "of pool b"); apc_store("other", 1);');
// Beside pool a's keys: a key of another type under the prefix, and a generator lock.
apcdb_redis_cmd($port, ['RPUSH', 'a:a-list', '1']);
apcdb_redis_cmd($port, ['SET', "a:\0apcdb:lock:user9", 'token', 'PX', '60000']);

echo "-- filters and formats\n";
echo apcdb_run($a, '
    apc_store("user1", ["n" => 1], 100); apc_store("user2", "two"); apc_store("admin", 3.5);
    $keys = function ($it) { $k = []; foreach ($it as $key => $v) $k[] = $key; sort($k); return implode(",", $k); };
    echo $keys(new APCIterator("user")), "\n";
    echo $keys(new APCUIterator("/^user/")), "\n";
    echo $keys(new APCUIterator(["admin", "user2", "absent"])), "\n";
    // ttl counts down on a server (it keeps no write time): 100 in the second of the write.
    foreach (new APCUIterator("/^user1$/") as $k => $v) { $v["access_time"] = $v["access_time"] >= time() - 5; $v["ttl"] = in_array($v["ttl"], [99, 100]); var_dump($v); }
    foreach (new APCUIterator(["admin"], APC_ITER_KEY | APC_ITER_VALUE) as $v) var_dump($v);
    $it = new APCUIterator("/^user/");
    var_dump($it->getTotalCount(), $it->getTotalSize() > 0, $it->getTotalHits());
    var_dump(iterator_count(new APCUIterator("/(/")));
');

echo "-- apc_key_info, apc_cache_info, apc_sma_info\n";
echo apcdb_run($a, '
    $i = apc_key_info("user1"); $i["access_time"] = $i["access_time"] >= time() - 5; $i["ttl"] = in_array($i["ttl"], [98, 99, 100]); var_dump($i, apc_key_info("absent"), apc_key_info("a-list"));
    $c = apc_cache_info();
    echo implode(",", array_keys($c)), "\n";
    var_dump($c["num_entries"], $c["memory_type"], $c["mem_size"] > 0);
    $l = array_column($c["cache_list"], "ttl", "info"); ksort($l); $l["user1"] = in_array($l["user1"], [98, 99, 100]); var_dump($l);
    var_dump(array_keys(apc_cache_info("user", true)));
    $s = apc_sma_info(true); var_dump($s["num_seg"], $s["seg_size"], $s["avail_mem"]);
');
apcdb_redis_cmd($port, ['CONFIG', 'SET', 'maxmemory', '100000000']);
echo apcdb_run($a, '$s = apc_sma_info(); var_dump($s["seg_size"], $s["avail_mem"] > 0 && $s["avail_mem"] < 100000000, count($s["block_lists"]));');

echo "-- many entries: values are read a page (one SCAN step) at a time, as iteration reaches them\n";
// The number of SCAN commands the server has run so far.
$scans = 'function scans() { $c = stream_socket_client("tcp://127.0.0.1:' . $port . '");
    fwrite($c, "INFO commandstats\r\nQUIT\r\n"); $s = stream_get_contents($c);
    return preg_match("/cmdstat_scan:calls=(\d+)/", $s, $m) ? (int) $m[1] : 0; }';
echo apcdb_run($a, $scans . '
    for ($i = 0; $i < 3000; $i++) apc_store("many$i", str_repeat("v", 100) . $i);
    $before = scans();
    $it = new APCUIterator("/^many/", APC_ITER_VALUE, 50);
    $it->rewind();
    $first = $it->current();
    $after_first = scans() - $before;
    $n = 0; $bad = 0; $seen = [];
    foreach ($it as $k => $v) { $n++; $seen[$k] = true; if ($v["value"] !== str_repeat("v", 100) . substr($k, 4)) $bad++; }
    $all = scans() - $before;
    echo "first entry: ", $after_first <= 3 ? "a few SCAN steps" : "$after_first SCAN steps", "; the whole iteration: ", $all >= 3000 / 50 ? "many" : "only $all", "\n";
    echo "entries ", count($seen), ", wrong values $bad\n";
    // An entry deleted before its page is read is skipped; one changed is read as it is then.
    $it = new APCUIterator(["many1", "many2", "many3"], APC_ITER_KEY | APC_ITER_VALUE, 1);
    foreach ($it as $k => $v) { if ($k === "many1") { apc_delete("many2"); apc_store("many3", "changed"); } echo "$k=", substr($v["value"], -7), " "; }
    echo "\n";
    var_dump(apc_delete(new APCUIterator("/^many/")), iterator_count(new APCUIterator("/^many/")), apc_cache_info("user", true)["num_entries"]);
');
echo "-- a page holds about 1 MiB of values, however large \$chunk_size\n";
echo apcdb_run($a, str_replace('cmdstat_scan', 'cmdstat_get', $scans) . '
    for ($i = 0; $i < 40; $i++) apc_store("big$i", str_repeat("b", 100000));
    $before = scans();
    // A list of keys: all 40 are known at once (a SCAN step may list fewer).
    $it = new APCUIterator(array_map(fn($i) => "big$i", range(0, 39)), APC_ITER_VALUE, 100);
    $it->rewind();
    $it->current();
    $first = scans() - $before;
    echo "values read for the first page: ", ($first >= 8 && $first <= 16) ? "8 to 16" : $first, "\n";
    echo "all: ", iterator_count($it), "\n";
    apc_delete(new APCUIterator("/^big/"));
');
$left = apcdb_redis_cmd($port, ['KEYS', '*']);
sort($left);
echo "left on the server: ", str_replace("\0", '\0', implode(" ", $left)), "\n";

echo "-- apc_clear_cache and the iterator of an empty pool\n";
echo apcdb_run($a, 'var_dump(apc_clear_cache(), iterator_count(new APCUIterator()), apc_cache_info("user", true)["num_entries"]);');

echo "-- the server lost in the middle of an iteration: one warning, the iteration ends\n";
putenv('SERVER_PID=' . proc_get_status($server)['pid']);
echo apcdb_run($a + ['apcdb.redis_timeout' => '0.5'], '
    for ($i = 0; $i < 500; $i++) apc_store("k$i", $i);
    $n = 0;
    foreach (new APCUIterator(null, APC_ITER_KEY, 10) as $k => $v) { if (++$n === 5) posix_kill((int) getenv("SERVER_PID"), 9); usleep(1000); }
    echo $n < 500 ? "stopped early" : "all $n", "\n";
    var_dump(apc_cache_info(), apc_key_info("k1"), iterator_count(new APCUIterator()));
', $rc, ['-d', 'extension=posix']);
?>
--EXPECTF--
-- filters and formats
admin,user1,user2
user1,user2
admin,user2
array(11) {
  ["type"]=>
  string(4) "user"
  ["key"]=>
  string(5) "user1"
  ["value"]=>
  array(1) {
    ["n"]=>
    int(1)
  }
  ["num_hits"]=>
  int(0)
  ["mtime"]=>
  int(0)
  ["creation_time"]=>
  int(0)
  ["deletion_time"]=>
  int(0)
  ["access_time"]=>
  bool(true)
  ["ref_count"]=>
  int(0)
  ["mem_size"]=>
  int(11)
  ["ttl"]=>
  bool(true)
}
array(2) {
  ["key"]=>
  string(5) "admin"
  ["value"]=>
  float(3.5)
}
int(2)
bool(true)
int(0)

Warning: preg_grep(): Compilation failed: missing closing parenthesis at offset 1 in Command line code on line %d

Warning: APCUIterator::__construct(): Could not compile regular expression: /(/ in Command line code on line %d
int(0)
-- apc_key_info, apc_cache_info, apc_sma_info

Warning: apc_key_info(): apcdb: the Redis server refused a command: Pipeline failure: [(Index 0, error: "WRONGTYPE": Operation against a key holding the wrong kind of value)] in Command line code on line %d
array(7) {
  ["hits"]=>
  int(0)
  ["access_time"]=>
  bool(true)
  ["mtime"]=>
  int(0)
  ["creation_time"]=>
  int(0)
  ["deletion_time"]=>
  int(0)
  ["ttl"]=>
  bool(true)
  ["refs"]=>
  int(0)
}
NULL
bool(false)
num_slots,ttl,num_hits,num_misses,num_inserts,num_entries,expunges,start_time,mem_size,memory_type,cache_list,deleted_list,slot_distribution
int(3)
string(5) "redis"
bool(true)
array(3) {
  ["admin"]=>
  int(0)
  ["user1"]=>
  bool(true)
  ["user2"]=>
  int(0)
}
array(10) {
  [0]=>
  string(9) "num_slots"
  [1]=>
  string(3) "ttl"
  [2]=>
  string(8) "num_hits"
  [3]=>
  string(10) "num_misses"
  [4]=>
  string(11) "num_inserts"
  [5]=>
  string(11) "num_entries"
  [6]=>
  string(8) "expunges"
  [7]=>
  string(10) "start_time"
  [8]=>
  string(8) "mem_size"
  [9]=>
  string(11) "memory_type"
}
int(1)
float(0)
float(0)
float(100000000)
bool(true)
int(1)
-- many entries: values are read a page (one SCAN step) at a time, as iteration reaches them
first entry: a few SCAN steps; the whole iteration: many
entries 3000, wrong values 0
many1=vvvvvv1 many3=changed 
bool(true)
int(0)
int(3)
-- a page holds about 1 MiB of values, however large $chunk_size
values read for the first page: 8 to 16
all: 40
left on the server: a:\0apcdb:lock:user9 a:a-list a:admin a:user1 a:user2 b:other b:user1
-- apc_clear_cache and the iterator of an empty pool
bool(true)
int(0)
int(0)
-- the server lost in the middle of an iteration: one warning, the iteration ends

Warning: APCUIterator::valid(): apcdb: the Redis server failed: %s in Command line code on line %d
stopped early
bool(false)
bool(false)
int(0)
