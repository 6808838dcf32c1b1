--TEST--
Redis backend, durability said honestly: apcdb.durability checked against the server's appendonly/appendfsync at connect (one warning when it cannot give it), WAIT for apcdb.redis_replicas in sync; what an acknowledged write survives: a server kill -9 with and without the append-only file, the loss of a primary with a replica that acknowledged it
--SKIPIF--
<?php if (!is_executable('/usr/bin/redis-server')) die('skip redis-server is not installed (make setup)'); ?>
--FILE--
<?php
require __DIR__ . '/redis.inc';
[$port, $p] = apcdb_redis_start();
$url = "redis://127.0.0.1:$port/0";
$two = 'var_dump(apc_store("k", 1), apc_fetch("k"));';

echo "-- a server without an append-only file\n";
foreach (['(not set)', 'none', 'periodic', 'sync'] as $d) {
    echo "durability $d:\n";
    echo apcdb_run(['apcdb.file' => $url] + ($d === '(not set)' ? [] : ['apcdb.durability' => $d]), $two);
}
echo "-- appendonly yes, appendfsync everysec\n";
apcdb_redis_cmd($port, ['CONFIG', 'SET', 'appendonly', 'yes']);
apcdb_redis_cmd($port, ['CONFIG', 'SET', 'appendfsync', 'everysec']);
foreach (['periodic', 'sync'] as $d) {
    echo "durability $d:\n";
    echo apcdb_run(['apcdb.file' => $url, 'apcdb.durability' => $d], $two);
}
echo "-- appendfsync always\n";
apcdb_redis_cmd($port, ['CONFIG', 'SET', 'appendfsync', 'always']);
// AOF switched on at run time starts with a rewrite: let it finish before relying on the file.
for ($i = 0; $i < 400 && !preg_match('/aof_rewrite_in_progress:0.*aof_rewrite_scheduled:0/s', (string) apcdb_redis_cmd($port, ['INFO', 'persistence'])); $i++) usleep(25000);
echo apcdb_run(['apcdb.file' => $url, 'apcdb.durability' => 'sync'], $two);
// A user not allowed CONFIG: the check cannot be made, and says so.
apcdb_redis_cmd($port, ['ACL', 'SETUSER', 'app', 'on', 'nopass', '~*', '+@all', '-config']);
echo apcdb_run(['apcdb.file' => "redis://app@127.0.0.1:$port/0", 'apcdb.durability' => 'sync'], $two);

echo "-- server kill -9: a write acknowledged with appendfsync always survives\n";
echo apcdb_run(['apcdb.file' => $url, 'apcdb.durability' => 'sync'], 'var_dump(apc_store("durable", "yes"));');
apcdb_redis_kill($p);
[, $p] = apcdb_redis_start($port, '', ['--appendonly', 'yes', '--appendfsync', 'always']);
echo apcdb_run(['apcdb.file' => $url], 'var_dump(apc_fetch("durable"));');
echo "-- and without the append-only file it is lost\n";
[$port2, $p2] = apcdb_redis_start();
echo apcdb_run(['apcdb.file' => "redis://127.0.0.1:$port2/0", 'apcdb.durability' => 'none'], 'var_dump(apc_store("volatile", "yes"), apc_fetch("volatile"));');
apcdb_redis_kill($p2);
apcdb_redis_start($port2);
echo apcdb_run(['apcdb.file' => "redis://127.0.0.1:$port2/0"], 'var_dump(apc_fetch("volatile"));');

echo "-- sync with apcdb.redis_replicas=1 and no replica: not acknowledged\n";
$t = microtime(true);
echo apcdb_run(['apcdb.file' => "redis://127.0.0.1:$port2/0", 'apcdb.durability' => 'sync', 'apcdb.redis_replicas' => 1,
    'apcdb.redis_timeout' => '0.4'], 'var_dump(apc_store("w", 1), apc_inc("w"), apc_delete("w"), apc_store("w2", "x"), apc_fetch("w2"));');
$e = microtime(true) - $t;
echo "waited for the replica: ", ($e >= 0.3 && $e < 3) ? 'within the timeout' : "$e s", "; the primary has it: ", substr((string) apcdb_redis_cmd($port2, ['GET', 'apcdb:w2']), 1) ?: 'no', "\n";

echo "-- a primary and a replica: a write acknowledged with WAIT is on the replica when the primary is killed\n";
[$rport, $r] = apcdb_redis_start(0, '', ['--replicaof', '127.0.0.1', (string) $port]);
for ($i = 0; $i < 400 && !str_contains((string) apcdb_redis_cmd($rport, ['INFO', 'replication']), 'master_link_status:up'); $i++) usleep(25000);
$ini = ['apcdb.file' => $url, 'apcdb.durability' => 'sync', 'apcdb.redis_replicas' => 1, 'apcdb.redis_timeout' => '2'];
echo apcdb_run($ini, 'var_dump(apc_store("replicated", "on both"), apc_inc("n") === false, apc_store("n", 41), apc_inc("n"));');
apcdb_redis_kill($p);
echo "replica: ", substr((string) apcdb_redis_cmd($rport, ['GET', 'apcdb:replicated']), 1), ", n = ", unpack('P', substr((string) apcdb_redis_cmd($rport, ['GET', 'apcdb:n']), 1))[1], "\n";
echo "primary: ", @stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 1) ? 'up' : 'down', "\n";
?>
--EXPECTF--
-- a server without an append-only file
durability (not set):
bool(true)
int(1)
durability none:
bool(true)
int(1)
durability periodic:

Warning: apc_store(): apcdb: apcdb.durability=periodic needs the Redis server to run with appendonly yes and appendfsync everysec or always, but it has appendonly no, appendfsync everysec: an acknowledged write can be lost if the server or its machine stops in Command line code on line 1
bool(true)
int(1)
durability sync:

Warning: apc_store(): apcdb: apcdb.durability=sync needs the Redis server to run with appendonly yes and appendfsync always, but it has appendonly no, appendfsync everysec: an acknowledged write can be lost if the server or its machine stops in Command line code on line 1
bool(true)
int(1)
-- appendonly yes, appendfsync everysec
durability periodic:
bool(true)
int(1)
durability sync:

Warning: apc_store(): apcdb: apcdb.durability=sync needs the Redis server to run with appendonly yes and appendfsync always, but it has appendonly yes, appendfsync everysec: an acknowledged write can be lost if the server or its machine stops in Command line code on line 1
bool(true)
int(1)
-- appendfsync always
bool(true)
int(1)

Warning: apc_store(): apcdb: cannot check that the Redis server gives apcdb.durability=sync (CONFIG GET: %s); an acknowledged write is as durable as the server's configuration makes it in Command line code on line 1
bool(true)
int(1)
-- server kill -9: a write acknowledged with appendfsync always survives
bool(true)
string(3) "yes"
-- and without the append-only file it is lost
bool(true)
string(3) "yes"
bool(false)
-- sync with apcdb.redis_replicas=1 and no replica: not acknowledged

Warning: apc_store(): apcdb: apcdb.durability=sync needs the Redis server to run with appendonly yes and appendfsync always, but it has appendonly no, appendfsync everysec: an acknowledged write can be lost if the server or its machine stops in Command line code on line 1

Warning: apc_store(): apcdb: the write reached 0 of the 1 replicas apcdb.redis_replicas asks for within 300 ms: not acknowledged (the primary has it) in Command line code on line 1

Warning: apc_inc(): apcdb: the write reached 0 of the 1 replicas apcdb.redis_replicas asks for within 300 ms: not acknowledged (the primary has it) in Command line code on line 1

Warning: apc_delete(): apcdb: the write reached 0 of the 1 replicas apcdb.redis_replicas asks for within 300 ms: not acknowledged (the primary has it) in Command line code on line 1

Warning: apc_store(): apcdb: the write reached 0 of the 1 replicas apcdb.redis_replicas asks for within 300 ms: not acknowledged (the primary has it) in Command line code on line 1
bool(false)
bool(false)
bool(false)
bool(false)
string(1) "x"
waited for the replica: within the timeout; the primary has it: x
-- a primary and a replica: a write acknowledged with WAIT is on the replica when the primary is killed
bool(true)
bool(true)
bool(true)
int(42)
replica: on both, n = 42
primary: down
