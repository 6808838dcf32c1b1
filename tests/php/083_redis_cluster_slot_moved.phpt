--TEST--
Redis Cluster: while the pool's hash slot moves to another node (resharding), a php-fpm worker's call answered ASK is run again on the new node after ASKING, and once the slot moved, a call answered MOVED is run again there, from then on the worker's node
--SKIPIF--
<?php
if (!is_executable('/usr/bin/redis-server')) die('skip redis-server is not installed (make setup)');
exec('command -v redis-cli 2>/dev/null', $o, $rc);
if ($rc !== 0) die('skip redis-cli is not installed');
if (!is_executable('/usr/sbin/php-fpm8.2')) die('skip php-fpm8.2 is not installed');
if (!function_exists('posix_geteuid') || posix_geteuid() !== 0) die('skip needs root (php-fpm pools run as nobody)');
?>
--EXTENSIONS--
posix
--FILE--
<?php
require __DIR__ . '/redis.inc';
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
$slot = apcdb_redis_cmd($ports[0], ['CLUSTER', 'KEYSLOT', '{apcdb:}']);
$from = 0;
foreach (apcdb_redis_cmd($ports[0], ['CLUSTER', 'SLOTS']) as [$first, $last, $node]) {
    if ($slot >= $first && $slot <= $last) $from = (int) $node[1];
}
$to = current(array_filter($ports, fn($p) => $p !== $from));

$dir = sys_get_temp_dir() . '/apcdb-phpt-redis-cluster-fpm-' . getmypid();
@mkdir($dir, 0755);
chmod($dir, 0755);
file_put_contents("$dir/t.php", '<?php
if ($_GET["op"] === "set") var_dump(apc_store("k", "one"));
if ($_GET["op"] === "get") var_dump(apc_fetch("k"), apc_store("n", 1));
');
chmod("$dir/t.php", 0644);
file_put_contents("$dir/fpm.conf", "[global]\npid = $dir/fpm.pid\nerror_log = $dir/fpm.log\ndaemonize = no\n\n"
    . "[r]\nuser = nobody\ngroup = " . posix_getgrgid(posix_getpwnam('nobody')['gid'])['name'] . "\n"
    . "listen = $dir/r.sock\nlisten.mode = 0666\npm = static\npm.max_children = 1\n"
    . "php_admin_value[display_errors] = stdout\nphp_admin_value[html_errors] = 0\n"
    . "php_admin_value[apcdb.file] = redis://127.0.0.1:{$ports[0]}/0\nphp_admin_value[apcdb.redis_cluster] = 1\n");
$fpm = proc_open(['/usr/sbin/php-fpm8.2', '-n', '-F', '-R', '-y', "$dir/fpm.conf", '-d', 'extension=' . apcdb_ext()],
    [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$dir/fpm.out", 'a'], 2 => ['file', "$dir/fpm.out", 'a']], $pipes);
for ($i = 0; $i < 100 && !file_exists("$dir/r.sock"); $i++) usleep(50000);
register_shutdown_function(function () use ($fpm, $dir) {
    proc_terminate($fpm, 15);
    proc_close($fpm);
    exec('rm -rf ' . escapeshellarg($dir));
});
$s = "$dir/t.php";
echo apcdb_fcgi("$dir/r.sock", $s, 'op=set');
echo apcdb_fcgi("$dir/r.sock", $s, 'op=get');

// Move the slot, with its keys, from its node to another (what redis-cli --cluster reshard does),
// a request made halfway: "k" moved, "n" not yet.
$fromId = apcdb_redis_cmd($from, ['CLUSTER', 'MYID']);
$toId = apcdb_redis_cmd($to, ['CLUSTER', 'MYID']);
apcdb_redis_cmd($to, ['CLUSTER', 'SETSLOT', (string) $slot, 'IMPORTING', $fromId]);
apcdb_redis_cmd($from, ['CLUSTER', 'SETSLOT', (string) $slot, 'MIGRATING', $toId]);
echo "migrate k: ", apcdb_redis_cmd($from, ['MIGRATE', '127.0.0.1', (string) $to, '', '0', '5000', 'KEYS', '{apcdb:}k']), "\n";
echo "-- during the move (ASK)\n";
echo apcdb_fcgi("$dir/r.sock", $s, 'op=get');
$keys = apcdb_redis_cmd($from, ['CLUSTER', 'GETKEYSINSLOT', (string) $slot, '100']);
echo "migrate ", count($keys), " more: ",
    apcdb_redis_cmd($from, array_merge(['MIGRATE', '127.0.0.1', (string) $to, '', '0', '5000', 'KEYS'], $keys)), "\n";
foreach ($ports as $p) apcdb_redis_cmd($p, ['CLUSTER', 'SETSLOT', (string) $slot, 'NODE', $toId]);

echo "-- the request after the move (MOVED)\n";
echo apcdb_fcgi("$dir/r.sock", $s, 'op=get');
// The old node's command counts now (without INFO, this test's own): the MOVED call was
// refused there.
$cmdstats = fn($p) => preg_replace('/^cmdstat_info:.*$/m', '', apcdb_redis_cmd($p, ['INFO', 'commandstats']));
$stats = $cmdstats($from);
echo "-- the next one\n";
echo apcdb_fcgi("$dir/r.sock", $s, 'op=get');
// The worker now talks to the new node only: the old one saw no command since.
echo "old node's commands after the move: ", $cmdstats($from) === $stats ? 0 : 'some', "\n";
var_dump(apcdb_redis_cmd($to, ['GET', '{apcdb:}n']) !== null, apcdb_redis_cmd($from, ['DBSIZE']));
?>
--EXPECTF--
bool(true)
string(3) "one"
bool(true)
migrate k: OK
-- during the move (ASK)
string(3) "one"
bool(true)
migrate 1 more: OK
-- the request after the move (MOVED)
string(3) "one"
bool(true)
-- the next one
string(3) "one"
bool(true)
old node's commands after the move: 0
bool(true)
int(0)
