--TEST--
apc_store of every value type, and of strings of every length around where the checksum changes method, round-trips; after the writer is killed with SIGKILL and its journal replayed, a fresh process reads every value back and `apcdb check` finds every checksum whole
--SKIPIF--
<?php
if (!is_executable(dirname(getenv('APCDB_EXT')) . '/apcdb')) die('skip the apcdb tool is not built (cargo build --release -p apcdb-recovery)');
?>
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_tmp('checksums');
$tool = dirname(getenv('APCDB_EXT')) . '/apcdb';
// Keys of 1 to 40 bytes; string values of 0 to 80 bytes one by one (the short checksum and its
// 8/4/2/1-byte tails), then up to 1,100 bytes (the three-stream checksum from 72 bytes, and past
// the 512 bytes where the general one takes over); scalars, arrays and an object.
$values = 'function values(): array {
    $v = [];
    $pattern = str_repeat("0123456789abcdef\x00\xff", 60);
    for ($n = 0; $n <= 1100; $n += ($n < 80 ? 1 : 37)) {
        $v[str_repeat("k", 1 + $n % 40) . $n] = substr($pattern, $n % 7, $n);
    }
    $v += ["int" => 12345, "neg" => -7, "big" => PHP_INT_MAX, "float" => 1.5, "true" => true,
        "false" => false, "null" => null, "empty" => "",
        "list" => [1, 2, "a", "bb", true, null, 1.5, 3, "ccc", 4],
        "nested" => ["a" => ["b" => [1, 2, 3], "c" => [4, 5, 6]], "d" => [7, 8, 9]],
        "object" => new ArrayObject([1, "two" => 2])];
    return $v;
}';
$ini = ['apcdb.file' => $db, 'apcdb.durability' => 'none'];
// Each value stored twice (the second time over the first: an overwrite), then the writer is
// killed while it still has the store open.
$cmd = apcdb_cmd($ini);
$cmd[] = '-r';
$cmd[] = $values . '
$n = 0;
foreach ([1, 2] as $pass) foreach (values() as $k => $v) $n += apc_store($k, $v) ? 1 : 0;
echo "stored $n\n";
sleep(60);';
$p = proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
echo fgets($pipes[1]);
proc_terminate($p, 9);
fclose($pipes[0]); fclose($pipes[1]);
proc_close($p);
// Without the lock file (as after a reboot) the next open cannot take over the shared state the
// writer left: it recovers from the data file and replays the journal's records, each checked.
unlink("$db.lock");
echo apcdb_run($ini, $values . '
$bad = [];
foreach (values() as $k => $v) {
    $got = apc_fetch($k, $ok);
    if (!$ok || ($v instanceof ArrayObject ? $got != $v : $got !== $v)) $bad[] = $k;
}
echo count(values()), " values, ", count($bad), " wrong ", json_encode(array_slice($bad, 0, 3)), "\n";');
exec(escapeshellarg($tool) . ' check ' . escapeshellarg($db) . ' 2>&1', $out, $rc);
echo "check rc=$rc\n";
?>
--EXPECT--
stored 238
119 values, 0 wrong []
check rc=0
