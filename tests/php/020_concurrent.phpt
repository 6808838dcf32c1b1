--TEST--
Atomicity across processes: concurrent apc_inc loses no update, apc_cas has one winner, apc_entry generates once
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_pool('concurrent');
$log = sys_get_temp_dir() . '/apcdb-phpt-entrylog-' . getmypid();
@unlink($log);
$ini = ['apcdb.file' => $db];
echo apcdb_run($ini, 'apc_store("n", 0); apc_store("c", 0);');
$procs = [];
for ($w = 0; $w < 4; $w++) {
    $cmd = apcdb_cmd($ini);
    $cmd[] = '-r';
    $cmd[] = '
        for ($i = 0; $i < 300; $i++) { apc_inc("n"); }
        $won = 0;
        for ($i = 0; $i < 100; $i++) { $cur = apc_fetch("c"); if (apc_cas("c", $cur, $cur + 1)) $won++; }
        $v = apc_entry("gen", function ($k) { file_put_contents("' . $log . '", "called\n", FILE_APPEND); usleep(200000); return "generated"; });
        echo json_encode([$won, $v]), "\n";';
    $procs[] = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
    $outs[] = $pipes[1];
}
$won = 0;
foreach ($procs as $i => $p) {
    $r = json_decode(trim(stream_get_contents($outs[$i])), true);
    proc_close($p);
    $won += $r[0];
    if ($r[1] !== 'generated') echo "worker $i got ", var_export($r[1], true), "\n";
}
echo apcdb_run($ini, 'var_dump(apc_fetch("n"));');
$c = (int)trim(apcdb_run($ini, 'echo apc_fetch("c");'));
var_dump($c === $won);
var_dump(file_get_contents($log));
unlink($log);
?>
--EXPECT--
int(1200)
bool(true)
string(7) "called
"
