--TEST--
Redis backend (apcdb.file=redis://...): the local store's value encoding under the pool's prefix, TTL as an absolute expiry, add only when absent, atomic inc/dec/cas across processes, clear removes only this pool's keys
--SKIPIF--
<?php if (!is_executable('/usr/bin/redis-server')) die('skip redis-server is not installed (make setup)'); ?>
--FILE--
<?php
require __DIR__ . '/redis.inc';
[$port] = apcdb_redis_start();
$url = "redis://127.0.0.1:$port/0";
$a = ['apcdb.file' => $url, 'apcdb.redis_prefix' => 'site-a:'];
$b = ['apcdb.file' => $url, 'apcdb.redis_prefix' => 'site-b:'];

echo apcdb_run($a, 'var_dump(apc_store("int", 5), apc_store("arr", ["x" => [1.5, null]]), apc_store("ttl", "v", 100),
    apc_add("int", 6), apc_add("new", "n"), apc_store(["m1" => 1, 7 => "seven"]), apc_enabled());');
// The bytes of the local store (SPEC §10 "Value encoding": tag 3, 8 bytes little-endian), under the prefix.
echo bin2hex(apcdb_redis_cmd($port, ['GET', 'site-a:int'])), ' ', bin2hex(apcdb_redis_cmd($port, ['GET', 'site-a:7'])), "\n";
$ms = apcdb_redis_cmd($port, ['PTTL', 'site-a:ttl']);
echo "ttl 100 s: ", ($ms > 99000 && $ms <= 101000) ? 'ok' : "wrong: $ms", "; no ttl: ", apcdb_redis_cmd($port, ['PTTL', 'site-a:int']), "\n";

// Another pool on the same database sees none of it, and its writes do not reach pool a.
echo apcdb_run($b, 'var_dump(apc_fetch("int"), apc_exists("arr"), apc_store("int", "b-value"));');
echo apcdb_run($a, 'var_dump(apc_fetch("int"), apc_fetch("arr"), apc_fetch("new"), apc_fetch(["m1", "7", "none"]), apc_exists(["int", "none"]));');

// A negative TTL stores an entry that is already expired.
echo apcdb_run($a, 'var_dump(apc_store("gone", 1, -1), apc_fetch("gone"), apc_exists("gone"), apc_add("gone", 2), apc_fetch("gone"));');

// inc/dec/cas change only ints and keep the expiry; apc_inc on a missing key fails, apcu_inc creates it.
echo apcdb_run($a, 'apc_store("c", 10, 100); var_dump(apc_inc("c", 5), apc_dec("c"), apc_cas("c", 14, 20), apc_cas("c", 14, 30),
    apc_fetch("c"), apc_inc("arr"), apc_inc("missing", 1, $ok), $ok, apc_store("max", PHP_INT_MAX), apc_inc("max"));');
$ms = apcdb_redis_cmd($port, ['PTTL', 'site-a:c']);
echo "inc kept the expiry: ", $ms > 90000 ? 'yes' : "no ($ms)", "\n";
echo apcdb_run($a + ['apcdb.apcu_compat' => 1], 'var_dump(apcu_inc("fresh", 3, $ok, 50), $ok);');
$ms = apcdb_redis_cmd($port, ['PTTL', 'site-a:fresh']);
echo "apcu_inc created with its ttl: ", ($ms > 49000 && $ms <= 51000) ? 'yes' : "no ($ms)", "\n";

// 4 processes x 300 increments of one key (none lost), and 4 x 100 fetch-then-cas of another.
echo apcdb_run($a, 'var_dump(apc_store("n", 0), apc_store("cas", 0));');
$procs = [];
for ($i = 0; $i < 4; $i++) {
    $cmd = apcdb_cmd($a);
    $cmd[] = '-r';
    $cmd[] = '$w = 0; for ($i = 0; $i < 300; $i++) { if (apc_inc("n") === false) echo "inc failed\n"; }
        for ($i = 0; $i < 100; $i++) { $v = apc_fetch("cas"); if (apc_cas("cas", $v, $v + 1)) $w++; } echo "$w\n";';
    $procs[] = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
    $outs[] = $pipes[1];
}
$wins = 0;
foreach ($procs as $i => $p) {
    $o = stream_get_contents($outs[$i]);
    fclose($outs[$i]);
    proc_close($p);
    if (!preg_match('/^\d+\n$/', $o)) echo "child: $o";
    $wins += (int) $o;
}
[$n, $c] = explode(' ', apcdb_run($a, 'echo apc_fetch("n"), " ", apc_fetch("cas");'));
// Every successful cas moved the value by one: exactly one winner per value.
echo "n: $n; cas value equals the wins: ", ((int) $c === $wins && $wins >= 100) ? 'yes' : "no ($c, $wins)", "\n";

// apc_clear_cache: this pool's keys only (SCAN + UNLINK, never FLUSHDB); a prefix with glob
// characters matches only itself.
apcdb_redis_cmd($port, ['SET', 'unrelated', 'x']);
apcdb_redis_cmd($port, ['SET', 'gX:k', 'x']);
$g = ['apcdb.file' => $url, 'apcdb.redis_prefix' => 'g*:'];
echo apcdb_run($g, 'var_dump(apc_store("k", 1), apc_clear_cache(), apc_fetch("k"));');
echo apcdb_run($a, 'var_dump(apc_clear_cache(), apc_fetch("int"), apc_fetch("n"));');
$keys = apcdb_redis_cmd($port, ['KEYS', '*']);
sort($keys);
echo implode(' ', $keys), "\n";
echo apcdb_run($b, 'var_dump(apc_fetch("int"));');
// A unix socket, and a database chosen in the URL (quoted in INI: it holds '?' and '=').
$sock = sys_get_temp_dir() . '/apcdb-phpt-redis-' . getmypid() . '.sock';
[$uport] = apcdb_redis_start(0, $sock);
register_shutdown_function(fn() => @unlink($sock));
echo apcdb_run(['apcdb.file' => "\"redis+unix://$sock?db=2\""], 'var_dump(apc_store("u", "via socket"), apc_fetch("u"));');
echo "db 0 of that server: ", json_encode(apcdb_redis_cmd($uport, ['KEYS', '*'])), "\n";
// Keys are limited as on the local store (65535 bytes).
echo apcdb_run($b, 'var_dump(apc_store(str_repeat("k", 65536), 1), apc_store(str_repeat("k", 65535), 2), apc_fetch(str_repeat("k", 65535)));');
// A key of this pool that another client made a list: a warning and false for that call only.
apcdb_redis_cmd($port, ['RPUSH', 'site-b:list', '1']);
echo apcdb_run($b, 'var_dump(apc_fetch("list"), apc_inc("list"), apc_store("x", 3), apc_inc("x"));');
// An invalid setting: one warning per request, the default used.
echo apcdb_run($a + ['apcdb.redis_timeout' => 'abc'], 'var_dump(apc_fetch("x"), apc_store("x", 1), apc_fetch("x"));');
// phpinfo(): the password is not shown in apcdb's own rows, and nothing is connected.
echo apcdb_run(['apcdb.file' => '"redis://bob:s3cret@127.0.0.1:1/0"'],
    'ob_start(); phpinfo(INFO_MODULES); preg_match_all("/^(File|Store) => .*$/m", ob_get_clean(), $m); echo implode("\n", $m[0]), "\n";');
// apcdb_stats() answers from the server (084); nothing becomes a file.
echo apcdb_run($a, 'var_dump(apcdb_stats()["entries"] >= 0);');
var_dump(file_exists('redis:'));
?>
--EXPECTF--
bool(true)
bool(true)
bool(true)
bool(false)
bool(true)
array(0) {
}
bool(true)
030500000000000000 05736576656e
ttl 100 s: ok; no ttl: -1
bool(false)
bool(false)
bool(true)
int(5)
array(1) {
  ["x"]=>
  array(2) {
    [0]=>
    float(1.5)
    [1]=>
    NULL
  }
}
string(1) "n"
array(2) {
  ["m1"]=>
  int(1)
  [7]=>
  string(5) "seven"
}
array(1) {
  ["int"]=>
  bool(true)
}
bool(true)
bool(false)
bool(false)
bool(true)
int(2)
int(15)
int(14)
bool(true)
bool(false)
int(20)
bool(false)
bool(false)
bool(false)
bool(true)
int(%i)
inc kept the expiry: yes
int(3)
bool(true)
apcu_inc created with its ttl: yes
bool(true)
bool(true)
n: 1200; cas value equals the wins: yes
bool(true)
bool(true)
bool(false)
bool(true)
bool(false)
bool(false)
gX:k site-b:int unrelated
string(7) "b-value"
bool(true)
string(10) "via socket"
db 0 of that server: []

Warning: apc_store(): apcdb: key of 65536 bytes exceeds the limit of 65535 bytes in Command line code on line 1
bool(false)
bool(true)
int(2)

Warning: apc_fetch(): apcdb: the Redis server refused a command: "WRONGTYPE": %s in Command line code on line 1

Warning: apc_inc(): apcdb: the Redis server refused a command: %sWRONGTYPE%s in Command line code on line 1
bool(false)
bool(false)
bool(true)
int(4)

Warning: apc_fetch(): apcdb: apcdb.redis_timeout="abc" is not a number of seconds in (0, 3600]; using 1 in Command line code on line 1
bool(false)
bool(true)
int(1)
File => redis://bob:***@127.0.0.1:1/0
Store => a Redis server, connected on first use (keys under "apcdb:", timeout 1000 ms)
bool(true)
bool(false)
