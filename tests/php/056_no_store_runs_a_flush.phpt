--TEST--
Checkpoints: no apc_store runs a checkpoint's flush (a thread of the process does); apcdb.background_checkpoints=0 brings the old way back
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_tmp('noflush');
// A 64K journal: a checkpoint every few hundred stores.
$ini = ['apcdb.file' => $db, 'apcdb.durability' => 'none', 'apcdb.journal_size' => '64K', 'apcdb.size' => '16M'];
$code = '
    $v = str_repeat("v", 500);
    $s0 = apcdb_stats();
    $worst = 0;
    for ($i = 0; apcdb_stats()["checkpoints"] < $s0["checkpoints"] + 20 && $i < 500000; $i++) {
        $t = hrtime(true);
        apc_store("k" . ($i % 500), $v);
        $worst = max($worst, hrtime(true) - $t);
    }
    $s = apcdb_stats();
    echo "checkpoints crossed: ", $s["checkpoints"] - $s0["checkpoints"] >= 20 ? "20" : "too few", "\n";
    echo "checkpoint flushes run by apc_store: ", $s["flushes_by_writes"] > 0 ? "some" : "none", "\n";
    $threads = 0;
    foreach (glob("/proc/self/task/*/comm") as $f) $threads += trim(file_get_contents($f)) === "apcdb-ckpt";
    echo "checkpoint threads: $threads\n";
    echo "values: ", json_encode(apc_fetch("k0") === $v && apc_fetch("k499") === $v), "\n";
    fwrite(STDERR, sprintf("%d stores, worst %.1f ms, full_half_waits %d\n", $i, $worst / 1e6, $s["full_half_waits"]));
';
echo "--- default\n";
echo apcdb_run($ini, $code);
echo "--- reopened after that process ended\n";
echo apcdb_run($ini, 'echo json_encode(apc_fetch("k7") === str_repeat("v", 500)), "\n";');
echo "--- apcdb.background_checkpoints=0\n";
echo apcdb_run($ini + ['apcdb.background_checkpoints' => '0'], $code);
?>
--EXPECTF--
--- default
checkpoints crossed: 20
checkpoint flushes run by apc_store: none
checkpoint threads: 1
values: true
%d stores, worst %f ms, full_half_waits %d
--- reopened after that process ended
true
--- apcdb.background_checkpoints=0
checkpoints crossed: 20
checkpoint flushes run by apc_store: some
checkpoint threads: 0
values: true
%d stores, worst %f ms, full_half_waits %d
