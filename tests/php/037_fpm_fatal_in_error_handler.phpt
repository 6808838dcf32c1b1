--TEST--
PHP-FPM: a fatal error raised by a user error handler during an apcdb warning does not break the worker's later requests
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
$dir = sys_get_temp_dir() . '/apcdb-phpt-fpm-fatal-' . getmypid();
@mkdir($dir, 0755);
chmod($dir, 0755);
$nobody = posix_getpwnam('nobody');
mkdir("$dir/www", 0755);
file_put_contents("$dir/www/t.php", '<?php
set_error_handler(function ($no, $str) {
    echo "handler: $str\n";
    apc_fetch("x");
    trigger_error("fatal in the error handler", E_USER_ERROR);
});
$r = json_encode([apc_store("k", "v"), apc_fetch("k")]);
echo getmypid(), " ", $r, "\n";
');
chmod("$dir/www/t.php", 0644);
// One worker, so every request goes to the same process. The store's directory does not exist
// yet: the first request's open fails and warns.
$conf = "[global]\npid = $dir/fpm.pid\nerror_log = $dir/fpm.log\ndaemonize = no\n\n"
      . "[a]\nuser = nobody\ngroup = " . posix_getgrgid($nobody['gid'])['name'] . "\n"
      . "listen = $dir/a.sock\nlisten.mode = 0666\npm = static\npm.max_children = 1\n"
      . "php_admin_value[display_errors] = stdout\nphp_admin_value[html_errors] = 0\n"
      . "php_admin_value[apcdb.file] = $dir/data/s.db\n";
file_put_contents("$dir/fpm.conf", $conf);
$cmd = ['/usr/sbin/php-fpm8.2', '-n', '-F', '-R', '-y', "$dir/fpm.conf", '-d', 'extension=' . apcdb_ext(),
        '-d', 'extension=posix.so'];
$fpm = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$dir/fpm.out", 'a'], 2 => ['file', "$dir/fpm.out", 'a']], $pipes);
register_shutdown_function(function () use ($fpm, $dir) {
    proc_terminate($fpm, 15);
    proc_close($fpm);
    exec('rm -rf ' . escapeshellarg($dir));
});
for ($i = 0; $i < 100 && !file_exists("$dir/a.sock"); $i++) usleep(50000);
$t = "$dir/www/t.php";
$first = apcdb_fcgi("$dir/a.sock", $t);
echo trim($first), "\n";
mkdir("$dir/data", 0700);
chown("$dir/data", $nobody['uid']);
$pids = [];
for ($i = 0; $i < 3; $i++) {
    $out = trim(apcdb_fcgi("$dir/a.sock", $t));
    [$pid, $res] = explode(' ', $out, 2) + [1 => ''];
    $pids[] = $pid;
    echo "later request: $res\n";
}
echo "same worker: ", json_encode(count(array_unique($pids)) === 1), "\n";
?>
--EXPECTF--
handler: apc_store(): apcdb: cannot open the store file "%s/data/s.db": %s

Fatal error: fatal in the error handler in %s/www/t.php on line 5
later request: [true,"v"]
later request: [true,"v"]
later request: [true,"v"]
same worker: true
