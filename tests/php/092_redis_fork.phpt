--TEST--
Redis backend: a process forked after a call (pcntl_fork) opens a connection of its own instead of sharing its parent's, so concurrent calls never read each other's replies
--SKIPIF--
<?php
if (!is_executable('/usr/bin/redis-server')) die('skip redis-server is not installed (make setup)');
if (!function_exists('pcntl_fork')) die('skip pcntl needed');
?>
--FILE--
<?php
require __DIR__ . '/redis.inc';
[$port] = apcdb_redis_start();
$code = '
for ($i = 0; $i < 4; $i++) apc_store("k$i", str_repeat((string) $i, 1000 + $i));
$kids = [];
for ($c = 0; $c < 4; $c++) {
    $pid = pcntl_fork();
    if ($pid === 0) {
        $bad = 0;
        for ($n = 0; $n < 500; $n++) {
            if (apc_fetch("k$c") !== str_repeat((string) $c, 1000 + $c)) $bad++;
            if (apc_inc("n$c") === false && !apc_add("n$c", 1)) $bad++;
        }
        exit($bad > 0 ? 1 : 0);
    }
    $kids[] = $pid;
}
$bad = 0;
for ($n = 0; $n < 500; $n++) if (apc_fetch("k0") !== str_repeat("0", 1000)) $bad++;
foreach ($kids as $pid) { pcntl_waitpid($pid, $st); if (pcntl_wexitstatus($st) !== 0) $bad++; }
echo "bad: $bad\n";
echo apc_fetch("n0") + apc_fetch("n1") + apc_fetch("n2") + apc_fetch("n3"), "\n";
';
echo apcdb_run(['apcdb.file' => "redis://127.0.0.1:$port/0"], $code);
?>
--EXPECT--
bad: 0
2000
