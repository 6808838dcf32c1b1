--TEST--
apc_entry: kill -9 of the process whose generator runs releases the waiter, which then generates
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_pool('entrykill');
$mark = sys_get_temp_dir() . '/apcdb-phpt-entrykill-' . getmypid();
@unlink($mark);
$ini = ['apcdb.file' => $db];
echo apcdb_run($ini, 'apc_store("warm", 1);');
$start = function (string $code) use ($ini) {
    $cmd = apcdb_cmd($ini);
    $cmd[] = '-r';
    $cmd[] = $code;
    $p = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
    return [$p, $pipes[1]];
};
// A generator that never finishes on its own.
[$p1, $o1] = $start('apc_entry("k", function ($k) { touch("' . $mark . '"); sleep(60); return "never"; });');
for ($i = 0; $i < 500 && !file_exists($mark); $i++) usleep(10000);
[$p2, $o2] = $start('$t = microtime(true);
                     $v = apc_entry("k", fn($k) => "made by the waiter");
                     echo "$v after ", microtime(true) - $t > 0.5 ? "waiting" : "no wait", "\n";');
usleep(800000);
proc_terminate($p1, 9);
echo "holder: ", stream_get_contents($o1), proc_close($p1), "\n";
echo stream_get_contents($o2);
proc_close($p2);
echo apcdb_run($ini, 'var_dump(apc_fetch("k"));');
unlink($mark);
?>
--EXPECT--
holder: 9
made by the waiter after waiting
string(18) "made by the waiter"
