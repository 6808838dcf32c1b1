--TEST--
APCIterator and apc_cache_info() over many entries: the streaming scan's chunks (256 entries each) give every key once, also when the index grows between two listings
--FILE--
<?php
apc_clear_cache('user');
$n = 5000;
for ($i = 0; $i < $n; $i++) apc_store("k:$i", $i);

function listed_iter(): array {
    $keys = [];
    foreach (new APCIterator('user', '/^k:/', APC_ITER_KEY) as $k => $v) $keys[] = $k;
    return $keys;
}
function listed_info(): array {
    return array_map(fn($e) => $e['info'] ?? $e['key'], apc_cache_info('user')['cache_list']);
}

$it = listed_iter();
$info = listed_info();
var_dump(count($it), count(array_unique($it)), count($info), count(array_unique($info)));
sort($it, SORT_NATURAL);
var_dump($it[0], $it[$n - 1]);

// More keys than the index had room for: it is rebuilt larger; every listing is still whole.
for ($i = $n; $i < 3 * $n; $i++) apc_store("k:$i", $i);
$it = listed_iter();
$info = listed_info();
var_dump(count($it), count(array_unique($it)), count($info), count(array_unique($info)));
--EXPECT--
int(5000)
int(5000)
int(5000)
int(5000)
string(3) "k:0"
string(6) "k:4999"
int(15000)
int(15000)
int(15000)
int(15000)
