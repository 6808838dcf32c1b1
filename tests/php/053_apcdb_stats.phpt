--TEST--
apcdb_stats(): the store's counters under the names of `apcdb stats --json`; false without a store
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_tmp('stats');
$ini = ['apcdb.file' => $db];
echo apcdb_run($ini, '
    apc_store("a", "x"); apc_store("b", 1); apc_store("c", 2); apc_delete("c");
    apc_fetch("a"); apc_fetch("a"); apc_fetch("nope");
    $s = apcdb_stats();
    echo implode(",", array_keys($s)), "\n";
    echo count(array_filter($s, "is_int")) === count($s) ? "all ints\n" : "not all ints\n";
    var_dump($s["entries"], $s["hits"], $s["misses"], $s["inserts"], $s["deletes"]);
    var_dump($s["free_bytes"] === $s["max_size"] - $s["used_bytes"], $s["max_size"] === 128 << 20);
    var_dump($s["journal_used"] <= $s["journal_size"], $s["max_value_len"] > 0);
    try { apcdb_stats(1); } catch (ArgumentCountError $e) { echo $e->getMessage(), "\n"; }
');
echo "--- two writers\n";
// Another process stores in a loop while this one does: this process's takings of the write lock
// that found the other one holding it are counted (they happen within milliseconds on two cores).
$stop = $db . '.stop';
$cmd = apcdb_cmd($ini);
$cmd[] = '-r';
$cmd[] = '$end = microtime(true) + 60; $i = 0;
    while (microtime(true) < $end && !file_exists(' . var_export($stop, true) . ')) {
        apc_store("bg" . ($i++ % 100), $i);
    }';
$bg = proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes);
echo apcdb_run($ini, '
    $end = microtime(true) + 30; $i = 0;
    do {
        for ($j = 0; $j < 1000; $j++) { apc_store("fg" . ($i++ % 100), $i); }
        $s = apcdb_stats();
    } while ($s["write_lock_contended"] === 0 && microtime(true) < $end);
    var_dump($s["write_lock_contended"] > 0, $s["write_lock_slept"] <= $s["write_lock_contended"]);
');
touch($stop);
proc_close($bg);
@unlink($stop);
echo "--- disabled\n";
echo apcdb_run($ini + ['apcdb.enabled' => '0'], 'var_dump(apcdb_stats());');
?>
--EXPECT--
entries,used_bytes,file_size,max_size,free_bytes,journal_size,journal_used,checkpoints,checkpoint_epoch,generation,index_slots,index_tombstones,hits,misses,inserts,deletes,recovered_records,recoveries,recovered_at_open,max_value_len,flushes_by_writes,paced_writes,full_half_waits,pace_overruns,write_lock_contended,write_lock_slept,pace_wait_max_ns
all ints
int(2)
int(2)
int(1)
int(3)
int(1)
bool(true)
bool(true)
bool(true)
bool(true)
apcdb_stats() expects exactly 0 arguments, 1 given
--- two writers
bool(true)
bool(true)
--- disabled
bool(false)
