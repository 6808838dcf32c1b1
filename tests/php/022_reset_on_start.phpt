--TEST--
apcdb.reset_on_start: a new server generation (each CLI run is one) starts with an empty store; 0 keeps data
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_tmp('reset');
echo apcdb_run(['apcdb.file' => $db], 'var_dump(apc_store("k", "kept"));');
echo apcdb_run(['apcdb.file' => $db, 'apcdb.reset_on_start' => 0], 'var_dump(apc_fetch("k"));');
usleep(20000);
echo apcdb_run(['apcdb.file' => $db, 'apcdb.reset_on_start' => 1], 'var_dump(apc_fetch("k"), apc_store("k2", "new generation"));');
echo apcdb_run(['apcdb.file' => $db], 'var_dump(apc_fetch("k"), apc_fetch("k2"));');
// Within one generation (forked children) the data is not reset again.
echo apcdb_run(['apcdb.file' => $db, 'apcdb.reset_on_start' => 1], '
    apc_store("p", "parent");
    if (($pid = pcntl_fork()) === 0) { apc_store("c", apc_fetch("p") . "+child"); exit(0); }
    pcntl_waitpid($pid, $s);
    var_dump(apc_fetch("c"), apc_fetch("k2"));');
?>
--EXPECT--
bool(true)
string(4) "kept"
bool(false)
bool(true)
bool(false)
string(14) "new generation"
string(12) "parent+child"
bool(false)
