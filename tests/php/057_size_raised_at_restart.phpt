--TEST--
apcdb.size: a larger value at the next start raises the store's limit (kept data, more room); a smaller one does not lower it
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_tmp('grow');
$fill = '
    $v = str_repeat("x", 100000);
    $before = apc_cache_info(true)["num_entries"];
    for ($i = $before; $i < 1000; $i++) {
        if (!@apc_store("k$i", $v)) break;
    }
    $s = apcdb_stats();
    echo "added ", $i - $before > 0 ? "some" : "none", ", max ", $s["max_size"] >> 20, "M, file ",
        $s["file_size"] > (4 << 20) ? "over" : "within", " 4M\n";
    $all = true;
    for ($j = 0; $j < $i; $j++) { $all = $all && apc_fetch("k$j") === $v; }
    var_dump($all);
';
echo apcdb_run(['apcdb.file' => $db, 'apcdb.size' => '4M'], $fill);
echo apcdb_run(['apcdb.file' => $db, 'apcdb.size' => '16M'], $fill);
echo apcdb_run(['apcdb.file' => $db, 'apcdb.size' => '4M'], $fill);
?>
--EXPECT--
added some, max 4M, file within 4M
bool(true)
added some, max 16M, file over 4M
bool(true)
added none, max 16M, file over 4M
bool(true)
