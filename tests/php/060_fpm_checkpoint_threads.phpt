--TEST--
PHP-FPM: each worker that writes flushes checkpoints in a thread of its own, never in a request; the master (which made the anonymous store) has none; workers exit cleanly
--SKIPIF--
<?php
if (!is_executable('/usr/sbin/php-fpm8.2')) die('skip php-fpm8.2 is not installed');
if (!function_exists('posix_geteuid') || posix_geteuid() !== 0) die('skip needs root (pools run as another user)');
if (!posix_getpwnam('nobody')) die('skip needs the user nobody');
?>
--EXTENSIONS--
posix
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$dir = sys_get_temp_dir() . '/apcdb-phpt-fpm-ckpt-' . getmypid();
@mkdir($dir, 0755);
chmod($dir, 0755);
$nobody = posix_getpwnam('nobody');
mkdir("$dir/data", 0700);
chown("$dir/data", $nobody['uid']);
mkdir("$dir/www", 0755);
// One request writes until 5 more checkpoints completed, and reports what this worker saw.
file_put_contents("$dir/www/t.php", '<?php
function threads(int $pid): int {
    $n = 0;
    foreach (glob("/proc/$pid/task/*/comm") ?: [] as $f) $n += trim((string) @file_get_contents($f)) === "apcdb-ckpt";
    return $n;
}
$c0 = apcdb_stats()["checkpoints"];
for ($i = 0; apcdb_stats()["checkpoints"] < $c0 + 5 && $i < 500000; $i++) apc_store("k" . ($i % 300), str_repeat("v", 500));
$s = apcdb_stats();
echo json_encode(["pid" => getmypid(), "threads" => threads(getmypid()), "flushes_by_writes" => $s["flushes_by_writes"],
    "crossed" => $s["checkpoints"] - $c0 >= 5]);
');
chmod("$dir/www/t.php", 0644);
$pool = function (string $name, string $file) use ($dir, $nobody) {
    return "[$name]\nuser = nobody\ngroup = " . posix_getgrgid($nobody['gid'])['name'] . "\n"
         . "listen = $dir/$name.sock\nlisten.mode = 0666\npm = static\npm.max_children = 2\n"
         . "php_admin_value[display_errors] = stdout\nphp_admin_value[html_errors] = 0\n"
         . "php_admin_value[apcdb.file] = $file\n\n";
};
file_put_contents("$dir/fpm.conf", "[global]\npid = $dir/fpm.pid\nerror_log = $dir/fpm.log\ndaemonize = no\nlog_level = notice\n\n"
    . $pool('file', "$dir/data/site.db") . $pool('anon', ''));
$cmd = ['/usr/sbin/php-fpm8.2', '-n', '-F', '-R', '-y', "$dir/fpm.conf", '-d', 'extension=' . apcdb_ext(),
        '-d', 'apcdb.durability=none', '-d', 'apcdb.journal_size=64K', '-d', 'apcdb.size=16M'];
$fpm = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', "$dir/fpm.out", 'a'], 2 => ['file', "$dir/fpm.out", 'a']], $pipes);
register_shutdown_function(function () use ($dir) { exec('rm -rf ' . escapeshellarg($dir)); });
for ($i = 0; $i < 100 && !(file_exists("$dir/file.sock") && file_exists("$dir/anon.sock") && file_exists("$dir/fpm.pid")); $i++) usleep(50000);
$master = (int) file_get_contents("$dir/fpm.pid");
$count = function (int $pid): int {
    $n = 0;
    foreach (glob("/proc/$pid/task/*/comm") ?: [] as $f) $n += trim((string) @file_get_contents($f)) === 'apcdb-ckpt';
    return $n;
};
foreach (['file', 'anon'] as $p) {
    for ($r = 0; $r < 3; $r++) {
        $o = json_decode(apcdb_fcgi("$dir/$p.sock", "$dir/www/t.php"), true);
        echo "$p request $r: ", json_encode(['threads' => $o['threads'] ?? null, 'flushes_by_writes' => $o['flushes_by_writes'] ?? null,
            'crossed' => $o['crossed'] ?? null, 'worker' => isset($o['pid']) && $o['pid'] !== $master]), "\n";
    }
}
echo "master threads: ", $count($master), "\n";
// A graceful stop: every worker runs module shutdown, which stops its thread before PHP
// unloads the extension; none may die of a signal.
proc_terminate($fpm, 3);
proc_close($fpm);
$log = (string) @file_get_contents("$dir/fpm.log");
echo "workers died of a signal: ", preg_match('/exited on signal|SIGSEGV|core dumped/', $log) ? "yes\n$log" : "no", "\n";
?>
--EXPECT--
file request 0: {"threads":1,"flushes_by_writes":0,"crossed":true,"worker":true}
file request 1: {"threads":1,"flushes_by_writes":0,"crossed":true,"worker":true}
file request 2: {"threads":1,"flushes_by_writes":0,"crossed":true,"worker":true}
anon request 0: {"threads":1,"flushes_by_writes":0,"crossed":true,"worker":true}
anon request 1: {"threads":1,"flushes_by_writes":0,"crossed":true,"worker":true}
anon request 2: {"threads":1,"flushes_by_writes":0,"crossed":true,"worker":true}
master threads: 0
workers died of a signal: no
