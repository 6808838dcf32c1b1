--TEST--
Redis backend, isolation with ACL users: two pools as two Redis users restricted to their prefixes (ACL SETUSER ... ~prefix*), the password read from apcdb.redis_password_file at connect (refused when readable by every user), never shown by ini_get or phpinfo; each pool unable to read or write the other's keys
--SKIPIF--
<?php if (!is_executable('/usr/bin/redis-server')) die('skip redis-server is not installed (make setup)'); ?>
--FILE--
<?php
require __DIR__ . '/redis.inc';
[$port] = apcdb_redis_start();
// Two users, each allowed every command but only the keys under its pool's prefix.
var_dump(apcdb_redis_cmd($port, ['ACL', 'SETUSER', 'pool_a', 'on', '>secret-a', '~a:*', '+@all']));
var_dump(apcdb_redis_cmd($port, ['ACL', 'SETUSER', 'pool_b', 'on', '>secret-b', '~b:*', '+@all']));
$pa = apcdb_tmp('095-pw-a');
$pb = apcdb_tmp('095-pw-b');
file_put_contents($pa, "secret-a\n");
file_put_contents($pb, "secret-b");
chmod($pa, 0600);
chmod($pb, 0640);
$a = ['apcdb.file' => "redis://pool_a@127.0.0.1:$port/0", 'apcdb.redis_prefix' => 'a:', 'apcdb.redis_password_file' => $pa];
$b = ['apcdb.file' => "redis://pool_b@127.0.0.1:$port/0", 'apcdb.redis_prefix' => 'b:', 'apcdb.redis_password_file' => $pb];

echo "-- each pool works as its own user\n";
echo apcdb_run($a, 'var_dump(apc_store("k", "of a"), apc_inc("n") , apc_store("n", 1), apc_inc("n"), apc_entry("e", fn() => "gen a"), iterator_count(new APCIterator()));');
echo apcdb_run($b, 'var_dump(apc_store("k", "of b"), apc_fetch("k"), apc_cache_info("user", true)["num_entries"]);');
echo apcdb_run($a, 'var_dump(apc_fetch("k"), apc_clear_cache(), apc_fetch("k"));');
echo "b's key after a's clear: ", substr(apcdb_redis_cmd($port, ['GET', 'b:k']), 1), "\n";

echo "-- pool a's user pointed at pool b's prefix: the server refuses every read and write\n";
echo apcdb_run(['apcdb.redis_prefix' => 'b:'] + $a, 'var_dump(apc_fetch("k"), apc_store("k", "from a"), apc_delete("k"), apc_inc("k"), apc_exists("k"));');
echo "b's key: ", substr(apcdb_redis_cmd($port, ['GET', 'b:k']), 1), "\n";
echo "-- and pool b's user at pool a's keys\n";
echo apcdb_run(['apcdb.redis_prefix' => 'a:'] + $b, 'var_dump(apc_store("x", 1), apc_fetch("e"));');
echo "a's keys: ", json_encode(apcdb_redis_cmd($port, ['KEYS', 'a:*'])), "\n";

echo "-- the password file\n";
chmod($pa, 0604);
echo apcdb_run($a, 'var_dump(apc_fetch("k"), apc_store("k", 1));');
chmod($pa, 0600);
echo apcdb_run(['apcdb.redis_password_file' => $pa . '.missing'] + $a, 'var_dump(apc_fetch("k"));');
file_put_contents($pa, "wrong\n");
echo apcdb_run($a, 'var_dump(apc_fetch("k"));');
file_put_contents($pa, "secret-a\n");
// Without the file the user cannot log in.
echo apcdb_run(['apcdb.redis_password_file' => ''] + $a, 'var_dump(apc_fetch("k"));');
putenv('PW_FILE=' . $pa);
// Neither ini_get() nor phpinfo() shows the password; only the file's name.
echo apcdb_run($a, 'var_dump(ini_get("apcdb.redis_password_file") === getenv("PW_FILE"), ini_get("apcdb.file"));
    ob_start(); phpinfo(); $i = ob_get_clean(); echo str_contains($i, "secret") ? "phpinfo shows the password\n" : "phpinfo: no password\n";
    preg_match("/^Store => .*$/m", $i, $m); echo str_replace(getenv("PW_FILE"), "PW_FILE", $m[0]), "\n";');
apcdb_unlink($pa);
apcdb_unlink($pb);
?>
--EXPECTF--
string(2) "OK"
string(2) "OK"
-- each pool works as its own user
bool(true)
bool(false)
bool(true)
int(2)
string(5) "gen a"
int(3)
bool(true)
string(4) "of b"
int(1)
string(4) "of a"
bool(true)
bool(false)
b's key after a's clear: of b
-- pool a's user pointed at pool b's prefix: the server refuses every read and write

Warning: apc_fetch(): apcdb: the Redis server refused a command: %ANoPerm: %s in Command line code on line 1

Warning: apc_store(): apcdb: the Redis server refused a command: %ANoPerm: %s in Command line code on line 1

Warning: apc_delete(): apcdb: the Redis server refused a command: %ANoPerm: %s in Command line code on line 1

Warning: apc_inc(): apcdb: the Redis server refused a command: %ANoPerm: %s in Command line code on line 1

Warning: apc_exists(): apcdb: the Redis server refused a command: %ANoPerm: %s in Command line code on line 1
bool(false)
bool(false)
bool(false)
bool(false)
bool(false)
b's key: of b
-- and pool b's user at pool a's keys

Warning: apc_store(): apcdb: the Redis server refused a command: %ANoPerm: %s in Command line code on line 1

Warning: apc_fetch(): apcdb: the Redis server refused a command: %ANoPerm: %s in Command line code on line 1
bool(false)
bool(false)
a's keys: []
-- the password file

Warning: apc_fetch(): apcdb: apcdb.redis_password_file "%s" is readable by every user (mode 604): not used; make it readable by the pool's user only (chmod o-r) in Command line code on line 1
bool(false)
bool(false)

Warning: apc_fetch(): apcdb: apcdb.redis_password_file "%s.missing" cannot be read: No such file or directory (os error 2) in Command line code on line 1
bool(false)

Warning: apc_fetch(): apcdb: cannot connect to the Redis server: %s in Command line code on line 1
bool(false)

Warning: apc_fetch(): apcdb: cannot connect to the Redis server: %s in Command line code on line 1
bool(false)
bool(true)
string(%d) "redis://pool_a@127.0.0.1:%d/0"
phpinfo: no password
Store => a Redis server, connected on first use (keys under "a:", timeout 1000 ms, password from PW_FILE)
