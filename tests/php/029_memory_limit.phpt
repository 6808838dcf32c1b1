--TEST--
40,000 entries with memory_limit=8M: cache_info, iterators and apc_fetch(array) end with PHP's memory error or a correct result, never a killed process
--FILE--
<?php
// apc_cache_info() and every APCIterator copied every value of the store into
// Rust memory, outside memory_limit, and apc_cache_info()/apc_fetch(array) built their result past
// PHP's hard memory limit (exit 137). The children run with memory_limit=8M and a data-segment
// limit (ulimit -d, as a container's memory limit would) far below the 160 MB of values.
require __DIR__ . '/helpers.inc';
$db = apcdb_tmp('memlimit');
$ini = ['apcdb.file' => $db, 'apcdb.size' => '512M', 'apcdb.durability' => 'none'];
echo apcdb_run($ini, '
    $v = str_repeat("x", 4000);
    for ($i = 0; $i < 40000; $i++) {
        if (!apc_store("key:$i", $v)) { echo "store failed at $i\n"; break; }
    }
    echo apc_cache_info("user", true)["num_entries"], " stored\n";
');

function limited(array $ini, string $code, ?int &$rc): string {
    $cmd = array_merge(['sh', '-c', 'ulimit -d 64000 && exec "$0" "$@"'],
                       apcdb_cmd($ini + ['memory_limit' => '8M'], ['-r', $code]));
    $p = proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
    fclose($pipes[0]);
    $out = stream_get_contents($pipes[1]);
    fclose($pipes[1]);
    $rc = proc_close($p);
    return $out;
}

$cases = [
    'cache_info full' => ['echo count(apc_cache_info("user")["cache_list"]);', '40000'],
    'cache_info limited' => ['echo apc_cache_info("user", true)["num_entries"];', '40000'],
    'iterator, one key' => ['$n = 0; foreach (new APCIterator("user", "/^key:7$/") as $e) { $n += strlen($e["value"]); } echo $n;', '4000'],
    'iterator, key list' => ['echo iterator_count(new APCIterator("user", ["key:1", "key:2"]));', '2'],
    'iterator, all values' => ['$n = 0; foreach (new APCIterator("user") as $e) { $n += strlen($e["value"]) === 4000; } echo $n;', '40000'],
    'iterator totals' => ['$it = new APCIterator("user", null, APC_ITER_NONE); echo $it->getTotalCount();', '40000'],
    'fetch array' => ['$k = []; for ($i = 0; $i < 40000; $i++) $k[] = "key:$i"; echo count(apc_fetch($k));', '40000'],
];
foreach ($cases as $name => [$code, $want]) {
    $out = limited($ini, $code, $rc);
    if ($rc === 0 && $out === $want) {
        echo "$name: correct\n";
    } elseif ($rc === 255 && str_contains($out, 'Allowed memory size of 8388608 bytes exhausted')) {
        echo "$name: PHP memory error\n";
    } else {
        echo "$name: exit $rc: ", substr(trim($out), 0, 200), "\n";
    }
}
?>
--EXPECT--
40000 stored
cache_info full: PHP memory error
cache_info limited: correct
iterator, one key: correct
iterator, key list: correct
iterator, all values: correct
iterator totals: correct
fetch array: PHP memory error
