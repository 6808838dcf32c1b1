--TEST--
apcdb.when_full=evict: a small store accepts writes forever, recently read keys stay, and the info functions report num_hits, access_time and expunges
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_tmp('evict');
$code = '
$ok = true;
apc_store("hot", "kept because it is read");
for ($i = 0; $i < 6000; $i++) {
    $ok = apc_store("k$i", str_repeat("x", 1000)) && $ok;
    if ($i % 50 == 0 && apc_fetch("hot") !== "kept because it is read") { echo "hot evicted at $i\n"; }
}
$info = apc_cache_info("user", true);
$left = 0;
for ($i = 0; $i < 6000; $i++) $left += apc_exists("k$i");
echo "all writes ok: ", var_export($ok, true), "\n";
echo "last key there: ", var_export(apc_fetch("k5999") === str_repeat("x", 1000), true), "\n";
echo "evicted some: ", var_export($info["expunges"] > 1000, true), ", kept many: ", var_export($left > 300, true), "\n";
';
echo apcdb_run(['apcdb.file' => $db, 'apcdb.size' => '1M', 'apcdb.when_full' => 'evict'], $code);
// The anonymous store (no apcdb.file) evicts by default.
echo apcdb_run(['apcdb.size' => '1M'],
    '$ok = true; for ($i = 0; $i < 4000; $i++) $ok = apc_store("k$i", str_repeat("x", 1000)) && $ok;
     echo "anonymous: all writes ok: ", var_export($ok, true), "\n";');
// The default for a file is to refuse.
apcdb_unlink($db);
echo apcdb_run(['apcdb.file' => $db, 'apcdb.size' => '1M'],
    'for ($i = 0; $i < 6000 && @apc_store("k$i", str_repeat("x", 1000)); $i++); echo "refused after $i writes\n";');
// An unknown value is reported, and the file's default used.
echo apcdb_run(['apcdb.file' => $db, 'apcdb.when_full' => 'sometimes'], 'var_dump(apc_store("x", 1));');
// Hits and access time per key; hits start again at a write.
apcdb_unlink($db);
echo apcdb_run(['apcdb.file' => $db], '
apc_store("a", 1); apc_store("b", 2);
apc_fetch("a"); apc_fetch("a"); apc_fetch("a"); apc_fetch("b");
$t = time();
$list = [];
foreach (apc_cache_info()["cache_list"] as $e) $list[$e["info"]] = $e;
var_dump($list["a"]["num_hits"], $list["b"]["num_hits"], abs($list["a"]["access_time"] - $t) <= 1);
var_dump(apc_key_info("a")["hits"]);
foreach (new APCIterator("user", "/^a$/", APC_ITER_NUM_HITS | APC_ITER_ATIME) as $e) var_dump($e["num_hits"]);
apc_store("a", 5);
var_dump(apc_key_info("a")["hits"]);
var_dump(apc_cache_info("user", true)["expunges"]);
');
?>
--EXPECTF--
all writes ok: true
last key there: true
evicted some: true, kept many: true
anonymous: all writes ok: true
refused after %d writes

Warning: apc_store(): apcdb: apcdb.when_full="sometimes" is not one of refuse, evict; using refuse in Command line code on line 1
bool(true)
float(3)
float(1)
bool(true)
int(3)
int(3)
int(0)
float(0)
