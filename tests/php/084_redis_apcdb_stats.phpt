--TEST--
Redis backend: apcdb_stats() gives the names and order of a local store's, with this pool's entries and the server's memory (SPEC §10, "Redis backend")
--SKIPIF--
<?php if (!is_executable('/usr/bin/redis-server')) die('skip redis-server is not installed'); ?>
--FILE--
<?php
require __DIR__ . '/redis.inc';
[$port, $server] = apcdb_redis_start(0, '', ['--maxmemory', '64mb']);
$url = "redis://127.0.0.1:$port/0";
$code = 'apc_store("a", "x"); apc_store("b", [1, 2]); apc_store("c", 3); apc_delete("c");
    apc_store("t", 1, 1);
    $s = apcdb_stats(); echo json_encode(array_keys($s)), "\n", json_encode($s), "\n";';
$local = explode("\n", apcdb_run(['apcdb.file' => apcdb_tmp('stats-both')], $code));
$remote = explode("\n", apcdb_run(['apcdb.file' => $url], $code));
echo "same names, same order: ", json_encode($local[0] === $remote[0]), "\n";
$s = json_decode($remote[1], true);
echo "all ints: ", json_encode(count(array_filter($s, 'is_int')) === count($s)), "\n";
// Another pool's keys on the same server are not this pool's entries.
echo apcdb_run(['apcdb.file' => $url, 'apcdb.redis_prefix' => 'other:'],
    'apc_store("o1", 1); apc_store("o2", 2); var_dump(apcdb_stats()["entries"]);');
echo "entries: {$s['entries']}\n";
echo "server memory: ", json_encode($s['used_bytes'] > 0 && $s['max_size'] === 64 << 20
    && $s['free_bytes'] === $s['max_size'] - $s['used_bytes']), "\n";
// No file, journal, index or counters of ours on a server.
$zero = array_diff_key($s, array_flip(['entries', 'used_bytes', 'max_size', 'free_bytes']));
echo "the rest: ", json_encode(array_unique(array_values($zero))), "\n";
// An expired entry is not counted.
sleep(2);
echo apcdb_run(['apcdb.file' => $url], 'var_dump(apcdb_stats()["entries"]);');
// The server gone: the request's one warning and false.
apcdb_redis_kill($server);
echo apcdb_run(['apcdb.file' => $url, 'apcdb.redis_timeout' => 1], 'var_dump(apcdb_stats(), apcdb_stats());');
?>
--EXPECTF--
same names, same order: true
all ints: true
int(2)
entries: 3
server memory: true
the rest: [0]
int(2)

Warning: apcdb_stats(): apcdb: %s in Command line code on line 1
bool(false)
bool(false)
