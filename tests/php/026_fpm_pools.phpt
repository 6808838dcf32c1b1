--TEST--
PHP-FPM: per-pool files opened lazily in the workers (after setuid and chroot), shared by a pool's workers, durable across restarts, refused to other pools
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
$dir = sys_get_temp_dir() . '/apcdb-phpt-fpm-' . getmypid();
@mkdir($dir, 0755);
chmod($dir, 0755);
$nobody = posix_getpwnam('nobody');
$www = posix_getpwnam('www-data');
foreach (['a' => $nobody, 'b' => $www] as $d => $u) { mkdir("$dir/$d", 0700); chown("$dir/$d", $u['uid']); }
mkdir("$dir/c", 0755); mkdir("$dir/c/data", 0700); chown("$dir/c/data", $nobody['uid']);
mkdir("$dir/www", 0755);
$script = '<?php
$op = $_GET["op"] ?? "inc";
if ($op === "inc") { $n = apc_inc("hits"); if ($n === false) { apc_add("hits", 0); $n = apc_inc("hits"); } echo json_encode($n); }
elseif ($op === "get") { echo json_encode(apc_fetch($_GET["k"])); }
elseif ($op === "set") { echo json_encode(apc_store($_GET["k"], $_GET["v"])); }
';
file_put_contents("$dir/www/t.php", $script);
file_put_contents("$dir/c/t.php", $script);
chmod("$dir/www/t.php", 0644); chmod("$dir/c/t.php", 0644);
$pool = function (string $name, array $user, string $file, string $extra = '') use ($dir) {
    $f = $file === '' ? '' : "php_admin_value[apcdb.file] = $file\n";
    return "[$name]\nuser = {$user['name']}\ngroup = " . posix_getgrgid($user['gid'])['name'] . "\n"
         . "listen = $dir/$name.sock\nlisten.mode = 0666\npm = static\npm.max_children = 2\n"
         . "php_admin_value[display_errors] = stdout\nphp_admin_value[html_errors] = 0\n$f$extra\n";
};
$conf = "[global]\npid = $dir/fpm.pid\nerror_log = $dir/fpm.log\ndaemonize = no\n\n"
      . $pool('a', $nobody, "$dir/a/site.db")
      . $pool('b', $www, "$dir/b/site.db")
      . $pool('c', $nobody, '/data/site.db', "chroot = $dir/c\n")
      . $pool('d', $www, "$dir/a/site.db")           // points at pool a's file: must be refused
      . $pool('e', $nobody, '');                     // no file: the anonymous store of the master
file_put_contents("$dir/fpm.conf", $conf);

$fpm = null;
$start = function () use (&$fpm, $dir) {
    $cmd = ['/usr/sbin/php-fpm8.2', '-n', '-F', '-R', '-y', "$dir/fpm.conf", '-d', 'extension=' . apcdb_ext(),
            '-d', 'extension=posix.so'];
    $fpm = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$dir/fpm.out", 'a'], 2 => ['file', "$dir/fpm.out", 'a']], $pipes);
    for ($i = 0; $i < 100 && !(file_exists("$dir/a.sock") && file_exists("$dir/e.sock")); $i++) usleep(50000);
};
$stop = function () use (&$fpm, $dir) {
    if ($fpm) { proc_terminate($fpm, 15); proc_close($fpm); $fpm = null; }
    foreach (['a', 'b', 'c', 'd', 'e'] as $p) @unlink("$dir/$p.sock");
};
register_shutdown_function(function () use (&$stop, $dir) {
    $stop();
    exec('rm -rf ' . escapeshellarg($dir));
});

$start();
$t = "$dir/www/t.php";
$n = 0;
for ($i = 0; $i < 10; $i++) $n = apcdb_fcgi("$dir/a.sock", $t);
echo "pool a after 10 requests on 2 workers: $n\n";
echo "pool b: ", apcdb_fcgi("$dir/b.sock", $t), "\n";
echo "pool c (chroot): ", apcdb_fcgi("$dir/c.sock", '/t.php'), ' ', apcdb_fcgi("$dir/c.sock", '/t.php'), "\n";
echo "pool a set: ", apcdb_fcgi("$dir/a.sock", $t, 'op=set&k=secret&v=a-data'), "\n";
echo "pool b get: ", apcdb_fcgi("$dir/b.sock", $t, 'op=get&k=secret'), "\n";
echo "pool d (pool a's file, other user):\n", trim(apcdb_fcgi("$dir/d.sock", $t, 'op=get&k=secret')), "\n";
$e = [];
for ($i = 0; $i < 4; $i++) $e[] = apcdb_fcgi("$dir/e.sock", $t);
echo "pool e (anonymous): ", implode(',', $e), "\n";
clearstatcache();
printf("a: owner %s mode %o\n", posix_getpwuid(fileowner("$dir/a/site.db"))['name'], fileperms("$dir/a/site.db") & 0777);
printf("b: owner %s\n", posix_getpwuid(fileowner("$dir/b/site.db"))['name']);
printf("c: created inside the chroot, owner %s\n", posix_getpwuid(fileowner("$dir/c/data/site.db"))['name']);
$stop();
$start();
echo "after restart, pool a: ", apcdb_fcgi("$dir/a.sock", $t), ' ', apcdb_fcgi("$dir/a.sock", $t, 'op=get&k=secret'), "\n";
echo "after restart, pool e (anonymous, not durable): ", apcdb_fcgi("$dir/e.sock", $t), "\n";
?>
--EXPECTF--
pool a after 10 requests on 2 workers: 10
pool b: 1
pool c (chroot): 1 2
pool a set: true
pool b get: false
pool d (pool a's file, other user):
Warning: apc_fetch(): apcdb: cannot open the store file "%s/a/site.db": %s in %s/www/t.php on line 4
false
pool e (anonymous): 1,2,3,4
a: owner nobody mode 600
b: owner www-data
c: created inside the chroot, owner nobody
after restart, pool a: 11 "a-data"
after restart, pool e (anonymous, not durable): 1
