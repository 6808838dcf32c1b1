--TEST--
apc_entry: exit() or a fatal error inside the generator releases the store lock; nothing is stored
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_pool('bailout');
$ini = ['apcdb.file' => $db];
echo apcdb_run($ini, 'apc_entry("e", function ($k) { echo "generating\n"; exit(3); }); echo "not reached\n";', $rc), "rc=$rc\n";
echo apcdb_run($ini, 'apc_entry("e", function ($k) { trigger_error("fatal in generator", E_USER_ERROR); });', $rc), "rc=$rc\n";
// The next process is not blocked by a leftover lock, and nothing was stored.
echo apcdb_run($ini, 'var_dump(apc_exists("e"), apc_store("x", 1), apc_entry("e", fn($k) => "ok"));');
// In the same process too: the shutdown function runs after the bailout and can use the store.
echo apcdb_run($ini, 'register_shutdown_function(function () { var_dump(apc_store("y", 2), apc_fetch("y")); });
    apc_entry("f", function ($k) { exit(0); });');
?>
--EXPECTF--
generating
rc=3

Fatal error: fatal in generator in Command line code on line 1
rc=255
bool(false)
bool(true)
string(2) "ok"
bool(true)
int(2)
