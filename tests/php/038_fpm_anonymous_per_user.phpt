--TEST--
PHP-FPM without apcdb.file: the anonymous store belongs to the first user that uses it; another pool's user is refused
--SKIPIF--
<?php
if (!is_executable('/usr/sbin/php-fpm8.2')) die('skip php-fpm8.2 is not installed');
if (!function_exists('posix_geteuid') || posix_geteuid() !== 0) die('skip needs root (pools run as other users)');
if (!posix_getpwnam('nobody') || !posix_getpwnam('www-data')) die('skip needs the users nobody and www-data');
?>
--EXTENSIONS--
posix
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$dir = sys_get_temp_dir() . '/apcdb-phpt-fpm-anon-' . getmypid();
@mkdir($dir, 0755);
chmod($dir, 0755);
mkdir("$dir/www", 0755);
file_put_contents("$dir/www/t.php", '<?php
$op = $_GET["op"] ?? "inc";
if ($op === "inc") { $n = apc_inc("hits"); if ($n === false) { apc_add("hits", 0); $n = apc_inc("hits"); } if (isset($_GET["hold"])) usleep(500000); echo getmypid(), " ", json_encode($n); }
elseif ($op === "get") { echo json_encode([apc_fetch($_GET["k"]), apc_exists($_GET["k"]), apc_store("planted", $_GET["p"])]); }
elseif ($op === "set") { echo json_encode(apc_store($_GET["k"], $_GET["v"])); }
');
chmod("$dir/www/t.php", 0644);
$pool = function (string $name, string $user) use ($dir) {
    $u = posix_getpwnam($user);
    return "[$name]\nuser = $user\ngroup = " . posix_getgrgid($u['gid'])['name'] . "\n"
         . "listen = $dir/$name.sock\nlisten.mode = 0666\npm = static\npm.max_children = 2\n"
         . "php_admin_value[display_errors] = stdout\nphp_admin_value[html_errors] = 0\n\n";
};
// Neither pool sets apcdb.file.
file_put_contents("$dir/fpm.conf", "[global]\npid = $dir/fpm.pid\nerror_log = $dir/fpm.log\ndaemonize = no\n\n"
    . $pool('a', 'nobody') . $pool('b', 'www-data'));
$cmd = ['/usr/sbin/php-fpm8.2', '-n', '-F', '-R', '-y', "$dir/fpm.conf", '-d', 'extension=' . apcdb_ext(),
        '-d', 'extension=posix.so'];
$fpm = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$dir/fpm.out", 'a'], 2 => ['file', "$dir/fpm.out", 'a']], $pipes);
register_shutdown_function(function () use ($fpm, $dir) {
    proc_terminate($fpm, 15);
    proc_close($fpm);
    exec('rm -rf ' . escapeshellarg($dir));
});
for ($i = 0; $i < 100 && !(file_exists("$dir/a.sock") && file_exists("$dir/b.sock")); $i++) usleep(50000);
$t = "$dir/www/t.php";
echo "a set: ", apcdb_fcgi("$dir/a.sock", $t, 'op=set&k=secret&v=a-data'), "\n";
// Pool a's two workers share the store: while one worker holds a request, the other serves the
// next one, and the two increments are consecutive whichever ran first.
$n = 0;
for ($i = 0; $i < 10; $i++) {
    [, $n] = explode(' ', apcdb_fcgi("$dir/a.sock", $t));
}
echo "a after 10 requests: $n\n";
$held = apcdb_fcgi_send("$dir/a.sock", $t, 'op=inc&hold=1');
usleep(100000);
[$pid2, $n2] = explode(' ', apcdb_fcgi("$dir/a.sock", $t));
[$pid1, $n1] = explode(' ', is_string($held) ? $held : apcdb_fcgi_read($held));
echo "a two workers: ", json_encode($pid1 !== $pid2), ", consecutive: ", json_encode(abs((int) $n1 - (int) $n2) === 1 && max((int) $n1, (int) $n2) === 12), "\n";
echo "a get: ", apcdb_fcgi("$dir/a.sock", $t, 'op=get&k=secret&p=a'), "\n";
// Pool b runs as www-data: refused, with one warning per request, whichever worker serves it.
for ($i = 0; $i < 2; $i++) {
    echo "b get:\n", trim(apcdb_fcgi("$dir/b.sock", $t, 'op=get&k=secret&p=b')), "\n";
}
echo "a get planted: ", apcdb_fcgi("$dir/a.sock", $t, 'op=get&k=planted&p=a'), "\n";
?>
--EXPECTF--
a set: true
a after 10 requests: 10
a two workers: true, consecutive: true
a get: ["a-data",true,true]
b get:
Warning: apc_fetch(): apcdb: the anonymous store (apcdb.file is empty) belongs to uid %d, which used it first, and this process runs as uid %d: processes of different users never share entries. Give each PHP-FPM pool its own store, e.g. php_admin_value[apcdb.file] = /var/lib/apcdb/<pool>/cache.db in %s/www/t.php on line 4
[false,false,false]
b get:
Warning: apc_fetch(): apcdb: the anonymous store (apcdb.file is empty) belongs to uid %d, which used it first, and this process runs as uid %d: processes of different users never share entries. Give each PHP-FPM pool its own store, e.g. php_admin_value[apcdb.file] = /var/lib/apcdb/<pool>/cache.db in %s/www/t.php on line 4
[false,false,false]
a get planted: ["a",true,true]
