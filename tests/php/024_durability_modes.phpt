--TEST--
Durability modes periodic and none: values survive the end of the process and a SIGKILL of a writer
--FILE--
<?php
require __DIR__ . '/helpers.inc';
foreach (['periodic', 'none'] as $mode) {
    $db = apcdb_tmp("mode-$mode");
    $ini = ['apcdb.file' => $db, 'apcdb.durability' => $mode, 'apcdb.sync_interval_ms' => 50];
    echo apcdb_run($ini, 'var_dump(apc_store("k", "v"), apc_store("n", 0));');
    // A writer killed with SIGKILL: every value it acknowledged is there for the next process.
    $cmd = apcdb_cmd($ini);
    $cmd[] = '-r';
    $cmd[] = 'for ($i = 1; ; $i++) { apc_store("n", $i); echo "$i\n"; }';
    $p = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
    $last = 0;
    while ($last < 300 && ($l = fgets($pipes[1])) !== false) $last = (int)$l;
    proc_terminate($p, 9);
    fclose($pipes[1]); proc_close($p);
    $n = (int)trim(apcdb_run($ini, 'echo apc_fetch("n");'));
    echo "$mode: ", $n >= $last ? 'ok' : "lost ($n < $last)", "\n";
    echo apcdb_run($ini, 'var_dump(apc_fetch("k"));');
}
?>
--EXPECT--
bool(true)
bool(true)
periodic: ok
string(1) "v"
bool(true)
bool(true)
none: ok
string(1) "v"
