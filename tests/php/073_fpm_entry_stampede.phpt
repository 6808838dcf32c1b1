--TEST--
PHP-FPM, anonymous store: workers forked from one master still make apc_entry callers of the same key wait for each other, and only them
--SKIPIF--
<?php
if (!is_executable('/usr/sbin/php-fpm8.2')) die('skip php-fpm8.2 is not installed');
if (!function_exists('posix_geteuid') || posix_geteuid() !== 0) die('skip needs root (the pool runs as nobody)');
if (!posix_getpwnam('nobody')) die('skip needs the user nobody');
?>
--EXTENSIONS--
posix
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$dir = sys_get_temp_dir() . '/apcdb-phpt-fpm-entry-' . getmypid();
@mkdir($dir, 0755);
chmod($dir, 0755);
mkdir("$dir/www", 0755);
file_put_contents("$dir/www/t.php", '<?php
$t = microtime(true);
if ($_GET["op"] === "gen") {
    $v = apc_entry("k", function ($k) { apc_store("generating", getmypid()); usleep(1000000); return "from " . getmypid(); });
} else {
    $v = apc_store("other", 1) ? "stored" : "failed";
}
echo getmypid(), " ", $v, " ", round(microtime(true) - $t, 1) >= 0.5 ? "waited" : "fast";
');
chmod("$dir/www/t.php", 0644);
$u = posix_getpwnam('nobody');
// No apcdb.file: the anonymous store, made by the master before it forks the workers (under
// tests/redis/run.sh, its server's pool).
file_put_contents("$dir/fpm.conf", "[global]\npid = $dir/fpm.pid\nerror_log = $dir/fpm.log\ndaemonize = no\n\n"
    . "[a]\nuser = nobody\ngroup = " . posix_getgrgid($u['gid'])['name'] . "\n"
    . "listen = $dir/a.sock\nlisten.mode = 0666\npm = static\npm.max_children = 3\n"
    . "php_admin_value[display_errors] = stdout\nphp_admin_value[html_errors] = 0\n");
$cmd = ['/usr/sbin/php-fpm8.2', '-n', '-F', '-R', '-y', "$dir/fpm.conf", '-d', 'extension=' . apcdb_ext(),
        ...apcdb_phpt_ini_args()];
$fpm = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$dir/fpm.out", 'a'], 2 => ['file', "$dir/fpm.out", 'a']], $pipes);
register_shutdown_function(function () use ($fpm, $dir) {
    proc_terminate($fpm, 15);
    proc_close($fpm);
    exec('rm -rf ' . escapeshellarg($dir));
});
for ($i = 0; $i < 100 && !file_exists("$dir/a.sock"); $i++) usleep(50000);
$t = "$dir/www/t.php";
$first = apcdb_fcgi_send("$dir/a.sock", $t, 'op=gen');
usleep(300000);
$second = apcdb_fcgi_send("$dir/a.sock", $t, 'op=gen');
usleep(100000);
[, $o] = explode(' ', apcdb_fcgi("$dir/a.sock", $t, 'op=store'), 2);
echo "unrelated store: $o\n";
[$p1, $a] = explode(' ', apcdb_fcgi_read($first), 2);
[$p2, $b] = explode(' ', apcdb_fcgi_read($second), 2);
echo "first: ", str_replace($p1, 'P1', $a), "\n";
echo "second: ", str_replace($p1, 'P1', $b), ", other worker: ", json_encode($p1 !== $p2), "\n";
?>
--EXPECT--
unrelated store: stored fast
first: from P1 waited
second: from P1 waited, other worker: true
