--TEST--
A write is dated once (SPEC §10): with apc.use_request_time=1 mtime, creation_time and access_time are the request's start, as in APCu; the reported ttl is the one asked, whatever second the write lands in
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_tmp('wtime');
$ini = ['apcdb.file' => $db, 'apcdb.durability' => 'none', 'apcdb.apcu_compat' => 1];

// Two seconds into the request: every way apcdb reports an entry's dates and TTL, for a store,
// an add and an entry generator, against the request's start and the clock.
$code = '
    sleep(2);
    $req = $_SERVER["REQUEST_TIME"];
    $before = time();
    apcu_store("s", 1, 100);
    apcu_add("a", 2, 50);
    apcu_entry("e", fn($k) => 3, 70);
    apcu_store("forever", 4);
    $after = time();
    $when = function (int $t) use ($req, $before, $after) {
        return $t === $req ? "request start" : ($t >= $before && $t <= $after ? "now" : "wrong: $t");
    };
    $list = [];
    foreach (apcu_cache_info()["cache_list"] as $e) $list[$e["info"]] = $e;
    $iter = [];
    foreach (new APCUIterator() as $k => $e) $iter[$k] = $e;
    foreach (["s" => 100, "a" => 50, "e" => 70, "forever" => 0] as $k => $ttl) {
        $ki = apcu_key_info($k);
        printf("%s: key_info mtime %s, creation_time %s, access_time %s, ttl %s\n", $k,
            $when($ki["mtime"]), $when($ki["creation_time"]), $when($ki["access_time"]),
            $ki["ttl"] === $ttl ? "as asked" : "wrong: " . $ki["ttl"]);
        printf("%s: cache_info mtime %s, ttl %s; iterator mtime %s, ttl %s\n", $k,
            $when($list[$k]["mtime"]), $list[$k]["ttl"] === $ttl ? "as asked" : "wrong: " . $list[$k]["ttl"],
            $when($iter[$k]["mtime"]), $iter[$k]["ttl"] === $ttl ? "as asked" : "wrong: " . $iter[$k]["ttl"]);
    }
';
echo "use_request_time=1\n", apcdb_run($ini + ['apc.use_request_time' => 1], $code);
apcdb_unlink($db);
echo "use_request_time=0\n", apcdb_run($ini, $code);

// The dates survive a reopen: they are in the journal record and the entry.
echo apcdb_run($ini, 'var_dump(apcu_key_info("s")["mtime"] >= $_SERVER["REQUEST_TIME"] - 5, apcu_key_info("s")["ttl"]);');
?>
--EXPECT--
use_request_time=1
s: key_info mtime request start, creation_time request start, access_time request start, ttl as asked
s: cache_info mtime request start, ttl as asked; iterator mtime request start, ttl as asked
a: key_info mtime request start, creation_time request start, access_time request start, ttl as asked
a: cache_info mtime request start, ttl as asked; iterator mtime request start, ttl as asked
e: key_info mtime request start, creation_time request start, access_time request start, ttl as asked
e: cache_info mtime request start, ttl as asked; iterator mtime request start, ttl as asked
forever: key_info mtime request start, creation_time request start, access_time request start, ttl as asked
forever: cache_info mtime request start, ttl as asked; iterator mtime request start, ttl as asked
use_request_time=0
s: key_info mtime now, creation_time now, access_time now, ttl as asked
s: cache_info mtime now, ttl as asked; iterator mtime now, ttl as asked
a: key_info mtime now, creation_time now, access_time now, ttl as asked
a: cache_info mtime now, ttl as asked; iterator mtime now, ttl as asked
e: key_info mtime now, creation_time now, access_time now, ttl as asked
e: cache_info mtime now, ttl as asked; iterator mtime now, ttl as asked
forever: key_info mtime now, creation_time now, access_time now, ttl as asked
forever: cache_info mtime now, ttl as asked; iterator mtime now, ttl as asked
bool(true)
int(100)
