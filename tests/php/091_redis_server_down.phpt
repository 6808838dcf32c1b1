--TEST--
Redis backend, server down: calls return false with one warning per request and wait no longer than apcdb.redis_timeout; a php-fpm worker keeps one connection across requests and reconnects on the request after the server is back
--SKIPIF--
<?php
if (!is_executable('/usr/bin/redis-server')) die('skip redis-server is not installed (make setup)');
if (!is_executable('/usr/sbin/php-fpm8.2')) die('skip php-fpm8.2 is not installed');
if (!function_exists('posix_geteuid') || posix_geteuid() !== 0) die('skip needs root (php-fpm pools run as nobody)');
if (!posix_getpwnam('nobody')) die('skip needs the user nobody');
?>
--EXTENSIONS--
posix
--FILE--
<?php
require __DIR__ . '/redis.inc';

// A listener that accepts connections (the kernel's backlog) but never answers: every wait ends
// at the timeout, and the rest of the request does not wait again.
$hole = stream_socket_server('tcp://127.0.0.1:0');
$hole_port = (int) substr(strrchr(stream_socket_get_name($hole, false), ':'), 1);
foreach (["redis://127.0.0.1:$hole_port/0", "redis://127.0.0.1:$hole_port/3"] as $url) {
    $t = microtime(true);
    echo apcdb_run(['apcdb.file' => $url, 'apcdb.redis_timeout' => '0.5'],
        'var_dump(apc_fetch("k"), apc_store("k", 1), apc_inc("k"), apc_exists("k"), apc_clear_cache());');
    $e = microtime(true) - $t;
    echo "silent server: ", ($e >= 0.45 && $e < 1.5) ? 'one timeout' : "took $e s", "\n";
}
fclose($hole);
// Nobody listening: refused at once.
echo apcdb_run(['apcdb.file' => 'redis://127.0.0.1:' . apcdb_free_port() . '/0'], 'var_dump(apc_fetch("k"), apc_delete("k"));');
echo apcdb_run(['apcdb.file' => 'redis://no:such:url'], 'var_dump(apc_fetch("k"));');

// The server killed in the middle of a request: from then on the request's calls return false,
// with one warning in all, at once.
[$mport, $mserver] = apcdb_redis_start();
$cmd = apcdb_cmd(['apcdb.file' => "redis://127.0.0.1:$mport/0", 'apcdb.redis_timeout' => '0.5']);
$cmd[] = '-r';
$cmd[] = '$w = 0; set_error_handler(function ($n, $m) use (&$w) { $w++; echo "warning: $m\n"; return true; });
    apc_store("k", "v"); echo "ready\n";
    $t = microtime(true); while (apc_fetch("k") === "v") { if (microtime(true) - $t > 20) { echo "server never went away\n"; break; } usleep(2000); }
    $t = microtime(true); $r = [];
    for ($i = 0; $i < 50; $i++) { $r[] = apc_fetch("k"); $r[] = apc_store("k", "v"); $r[] = apc_inc("n"); }
    echo "after the kill: ", count(array_filter($r)), " calls succeeded, $w warning(s), ", microtime(true) - $t < 0.5 ? "no wait" : "waited", "\n";';
$child = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $cp);
echo fgets($cp[1]);
usleep(100000);
apcdb_redis_kill($mserver);
echo preg_replace('/^warning: \w+\(\): apcdb: the Redis server failed: .*$/m', 'warning: apcdb: the Redis server failed: ...', stream_get_contents($cp[1]));
proc_close($child);

// php-fpm: one worker, one connection for all its requests.
[$port, $server] = apcdb_redis_start();
$dir = sys_get_temp_dir() . '/apcdb-phpt-redis-fpm-' . getmypid();
@mkdir($dir, 0755);
chmod($dir, 0755);
file_put_contents("$dir/t.php", '<?php
$t = microtime(true);
$op = $_GET["op"];
if ($op === "set") var_dump(apc_store("k", $_GET["v"]));
if ($op === "get") var_dump(apc_fetch("k"));
if ($op === "down") { var_dump(apc_fetch("k"), apc_store("k", "x"), apc_inc("n"), apc_add("a", 1));
    echo microtime(true) - $t < 1.5 ? "fast\n" : "slow\n"; }
');
chmod("$dir/t.php", 0644);
file_put_contents("$dir/fpm.conf", "[global]\npid = $dir/fpm.pid\nerror_log = $dir/fpm.log\ndaemonize = no\n\n"
    . "[r]\nuser = nobody\ngroup = " . posix_getgrgid(posix_getpwnam('nobody')['gid'])['name'] . "\n"
    . "listen = $dir/r.sock\nlisten.mode = 0666\npm = static\npm.max_children = 1\n"
    . "php_admin_value[display_errors] = stdout\nphp_admin_value[html_errors] = 0\n"
    . "php_admin_value[apcdb.file] = redis://127.0.0.1:$port/0\nphp_admin_value[apcdb.redis_timeout] = 0.5\n");
$fpm = proc_open(['/usr/sbin/php-fpm8.2', '-n', '-F', '-R', '-y', "$dir/fpm.conf", '-d', 'extension=' . apcdb_ext()],
    [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$dir/fpm.out", 'a'], 2 => ['file', "$dir/fpm.out", 'a']], $pipes);
for ($i = 0; $i < 100 && !file_exists("$dir/r.sock"); $i++) usleep(50000);
register_shutdown_function(function () use ($fpm, $dir) {
    proc_terminate($fpm, 15);
    proc_close($fpm);
    exec('rm -rf ' . escapeshellarg($dir));
});
$s = "$dir/t.php";
echo apcdb_fcgi("$dir/r.sock", $s, 'op=set&v=one');
for ($i = 0; $i < 5; $i++) $out = apcdb_fcgi("$dir/r.sock", $s, 'op=get');
echo $out;
$clients = apcdb_redis_cmd($port, ['CLIENT', 'LIST']);
echo "connections from the worker after 6 requests: ", substr_count($clients, "\n") - 1, "\n";

apcdb_redis_kill($server);
echo trim(apcdb_fcgi("$dir/r.sock", $s, 'op=down')), "\n";
echo trim(apcdb_fcgi("$dir/r.sock", $s, 'op=down')), "\n";

[$port2, $server] = apcdb_redis_start($port);
echo apcdb_fcgi("$dir/r.sock", $s, 'op=set&v=two');
echo apcdb_fcgi("$dir/r.sock", $s, 'op=get');
echo "fpm log: ", preg_match('/WARNING|ERROR|exited/', (string) @file_get_contents("$dir/fpm.log")) ? file_get_contents("$dir/fpm.log") : "clean", "\n";
?>
--EXPECTF--
Warning: apc_fetch(): apcdb: the Redis server failed: no answer within apcdb.redis_timeout (0.5 s) in Command line code on line 1
bool(false)
bool(false)
bool(false)
bool(false)
bool(false)
silent server: one timeout

Warning: apc_fetch(): apcdb: cannot connect to the Redis server: no answer within apcdb.redis_timeout (0.5 s) in Command line code on line 1
bool(false)
bool(false)
bool(false)
bool(false)
bool(false)
silent server: one timeout

Warning: apc_fetch(): apcdb: cannot connect to the Redis server: Connection refused (os error 111) in Command line code on line 1
bool(false)
bool(false)

Warning: apc_fetch(): apcdb: invalid Redis URL in apcdb.file: %s in Command line code on line 1
bool(false)
ready
warning: apcdb: the Redis server failed: ...
after the kill: 0 calls succeeded, 1 warning(s), no wait
bool(true)
string(3) "one"
connections from the worker after 6 requests: 1
Warning: apc_fetch(): apcdb: the Redis server failed: %s in %s on line 6
bool(false)
bool(false)
bool(false)
bool(false)
fast
Warning: apc_fetch(): apcdb: cannot connect to the Redis server: Connection refused (os error 111) in %s on line 6
bool(false)
bool(false)
bool(false)
bool(false)
fast
bool(true)
string(3) "two"
fpm log: clean
