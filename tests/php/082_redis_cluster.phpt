--TEST--
Redis backend on a Redis Cluster (apcdb.redis_cluster=1): the pool's keys share one hash slot through a hash tag in the prefix, so the URL may name any node; every function works as on one server, and the keys live on the node serving that slot
--SKIPIF--
<?php
if (!is_executable('/usr/bin/redis-server')) die('skip redis-server is not installed (make setup)');
exec('command -v redis-cli 2>/dev/null', $o, $rc);
if ($rc !== 0) die('skip redis-cli is not installed');
?>
--FILE--
<?php
require __DIR__ . '/redis.inc';
// Three primaries on loopback, every slot assigned.
$ports = [];
for ($i = 0; $i < 3; $i++) {
    [$ports[]] = apcdb_redis_start(0, '', ['--cluster-enabled', 'yes', '--cluster-node-timeout', '5000']);
}
$nodes = implode(' ', array_map(fn($p) => "127.0.0.1:$p", $ports));
exec("redis-cli --cluster create $nodes --cluster-replicas 0 --cluster-yes 2>&1", $out, $rc);
if ($rc !== 0) { echo implode("\n", $out), "\n"; exit(1); }
foreach ($ports as $p) {
    for ($i = 0; $i < 400 && !str_contains((string) apcdb_redis_cmd($p, ['CLUSTER', 'INFO']), 'cluster_state:ok'); $i++) usleep(25000);
}
/** The port of the node serving $key's slot. */
function owner(array $ports, string $key): int {
    $slot = apcdb_redis_cmd($ports[0], ['CLUSTER', 'KEYSLOT', $key]);
    foreach (apcdb_redis_cmd($ports[0], ['CLUSTER', 'SLOTS']) as [$first, $last, $node]) {
        if ($slot >= $first && $slot <= $last) return (int) $node[1];
    }
    return 0;
}
$own = owner($ports, '{apcdb:}');
$other = current(array_filter($ports, fn($p) => $p !== $own));
echo "the URL names another node than the pool's: ", var_export($other !== $own, true), "\n";
$url = "redis://127.0.0.1:$other/0";
$code = '
    var_dump(apc_store("k", ["v" => 1]), apc_fetch("k"), apc_add("k", 2), apc_add("n", 1));
    var_dump(apc_inc("n", 2), apc_cas("n", 3, 10), apc_fetch("n"));
    var_dump(apc_entry("e", fn() => "made"), apc_entry("e", fn() => "again"));
    $keys = []; foreach (new APCIterator("user", "/^[kn]$/") as $e) $keys[] = $e["key"];
    sort($keys); echo implode(",", $keys), "\n";
    var_dump(apc_delete("e"), apc_exists("e"));
';
echo "-- apcdb.redis_cluster=1\n";
echo apcdb_run(['apcdb.file' => $url, 'apcdb.redis_cluster' => 1], $code);
// On the slot's node, under the tagged prefix; on no other node.
var_dump(apcdb_redis_cmd($own, ['EXISTS', '{apcdb:}k', '{apcdb:}n']));
var_dump(apcdb_redis_cmd($other, ['DBSIZE']));
echo "-- a prefix with a hash tag of its own is kept as it is\n";
$shop = owner($ports, 'shop');
echo apcdb_run(['apcdb.file' => $url, 'apcdb.redis_cluster' => 1, 'apcdb.redis_prefix' => 'x{shop}:'],
    'var_dump(apc_store("a", 1), apc_store("b", 2), apc_fetch("a"));');
var_dump(apcdb_redis_cmd($shop, ['EXISTS', 'x{shop}:a', 'x{shop}:b']));
echo "-- apc_clear_cache clears this pool only\n";
echo apcdb_run(['apcdb.file' => $url, 'apcdb.redis_cluster' => 1],
    'var_dump(apc_clear_cache(), apc_exists("k"));');
var_dump(apcdb_redis_cmd($shop, ['EXISTS', 'x{shop}:a']));
echo "-- without apcdb.redis_cluster, the node that does not serve the slot refuses\n";
echo apcdb_run(['apcdb.file' => $url, 'apcdb.redis_prefix' => '{apcdb:}'], 'var_dump(apc_store("k", 1));');
?>
--EXPECTF--
the URL names another node than the pool's: true
-- apcdb.redis_cluster=1
bool(true)
array(1) {
  ["v"]=>
  int(1)
}
bool(false)
bool(true)
int(3)
bool(true)
int(10)
string(4) "made"
string(4) "made"
k,n
bool(true)
bool(false)
int(2)
int(0)
-- a prefix with a hash tag of its own is kept as it is
bool(true)
bool(true)
int(1)
int(2)
-- apc_clear_cache clears this pool only
bool(true)
bool(false)
int(1)
-- without apcdb.redis_cluster, the node that does not serve the slot refuses

Warning: apc_store(): apcdb: the Redis server failed: Moved: %d 127.0.0.1:%d in Command line code on line 1
bool(false)
