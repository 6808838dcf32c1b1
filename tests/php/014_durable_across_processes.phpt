--TEST--
Durability: what one php process stores, the next php process fetches (apcdb.file)
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_pool('durable');
$ini = ['apcdb.file' => $db];
echo apcdb_run($ini, '
    var_dump(apc_store("str", "persisted"), apc_store("arr", ["a" => [1, 2], "o" => new ArrayObject([3])]));
    var_dump(apc_store("cnt", 10), apc_inc("cnt", 5), apc_store("ttl", "t", 3600), apc_store("gone", 1));
    var_dump(apc_delete("gone"));
');
echo "--- second process\n";
echo apcdb_run($ini, '
    var_dump(apc_fetch("str"), apc_fetch("arr")["a"], apc_fetch("arr")["o"]->count(), apc_fetch("cnt"));
    var_dump(apc_key_info("ttl")["ttl"] > 3590, apc_exists("gone"));
    var_dump(apc_inc("cnt"));
');
echo "--- third process\n";
echo apcdb_run($ini, 'var_dump(apc_fetch("cnt"), apc_cache_info(true)["num_entries"]);');
// The files exist with mode 0600 (a server's pool has none: tests/redis/run.sh).
if (!str_contains($db, '://')) {
    printf("%o %o %o\n", fileperms($db) & 0777, fileperms("$db.journal") & 0777, fileperms("$db.lock") & 0777);
}
?>
--EXPECTF--
bool(true)
bool(true)
bool(true)
int(15)
bool(true)
bool(true)
bool(true)
--- second process
string(9) "persisted"
array(2) {
  [0]=>
  int(1)
  [1]=>
  int(2)
}
int(1)
int(15)
bool(true)
bool(false)
int(16)
--- third process
int(16)
int(4)%r(\n600 600 600)?%r