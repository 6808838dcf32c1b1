--TEST--
Isolation: processes with different apcdb.file values do not see each other's keys; the same file is shared
--FILE--
<?php
require __DIR__ . '/helpers.inc';
// Two files, or two pools (prefixes) on tests/redis/run.sh's server.
$a = apcdb_pool_ini('site-a');
$b = apcdb_pool_ini('site-b');
echo apcdb_run($a, 'var_dump(apc_store("secret", "a-only"), apc_store("shared-name", "A"));');
echo apcdb_run($b, 'var_dump(apc_fetch("secret"), apc_exists("shared-name"), apc_store("shared-name", "B"));
    var_dump(iterator_count(new APCIterator("user")));');
echo apcdb_run($a, 'var_dump(apc_fetch("secret"), apc_fetch("shared-name"), apc_cache_info(true)["num_entries"]);');
echo apcdb_run($b, 'var_dump(apc_fetch("shared-name"), apc_cache_info(true)["num_entries"]);');
// Clearing one store leaves the other alone.
echo apcdb_run($b, 'var_dump(apc_clear_cache());');
echo apcdb_run($a, 'var_dump(apc_fetch("secret"));');
// Two concurrent processes on the same file see each other's writes at once.
$cmd = apcdb_cmd($a);
$cmd[] = '-r';
$cmd[] = 'while (($l = fgets(STDIN)) !== false) { echo json_encode(apc_fetch(trim($l))), "\n"; }';
$p = proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
fwrite($pipes[0], "live\n"); echo fgets($pipes[1]);
echo apcdb_run($a, 'apc_store("live", "written by another process");');
fwrite($pipes[0], "live\n"); echo fgets($pipes[1]);
fclose($pipes[0]); fclose($pipes[1]); proc_close($p);
?>
--EXPECT--
bool(true)
bool(true)
bool(false)
bool(false)
bool(true)
int(1)
string(6) "a-only"
string(1) "A"
int(2)
string(1) "B"
int(1)
bool(true)
string(6) "a-only"
false
"written by another process"
