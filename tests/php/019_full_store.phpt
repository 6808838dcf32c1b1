--TEST--
Full store: apc_store returns false with a warning and no other entry is removed
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_tmp('full');
echo apcdb_run(['apcdb.file' => $db, 'apcdb.size' => '4M'], '
    $v = str_repeat("x", 100000);
    for ($i = 0; $i < 1000; $i++) {
        if (!apc_store("k$i", $v)) break;
    }
    echo $i > 10 && $i < 1000 ? "filled\n" : "not filled: $i\n";
    $all = true;
    for ($j = 0; $j < $i; $j++) { $all = $all && apc_fetch("k$j") === $v; }
    var_dump($all, apc_cache_info(true)["num_entries"] === $i);
    var_dump(apc_add("big", $v), apc_store(["a" => $v]));
    // Small values still fit; deleting makes room again.
    var_dump(apc_store("small", 1), apc_delete("k0"), apc_store("again", $v));
');
?>
--EXPECTF--
Warning: apc_store(): apcdb: unable to store the value: %s is full: %s (no other entry was removed) in Command line code on line %d
filled
bool(true)
bool(true)

Warning: apc_add(): apcdb: unable to store the value: %s is full: %s (no other entry was removed) in Command line code on line %d

Warning: apc_store(): apcdb: unable to store the value: %s is full: %s (no other entry was removed) in Command line code on line %d
bool(false)
array(1) {
  ["a"]=>
  int(-1)
}
bool(true)
bool(true)
bool(true)
