--TEST--
A data file truncated under a running PHP process: apc_fetch gives false and a warning, no SIGBUS
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_tmp('trunc');
$code = '$db = ' . var_export($db, true) . ';
for ($i = 0; $i < 500; $i++) apc_store("k$i", str_repeat("x", 200));
var_dump(apc_fetch("k1") === str_repeat("x", 200));
$f = fopen($db, "r+"); ftruncate($f, 8192); fclose($f);
var_dump(apc_fetch("k1"));
var_dump(apc_store("k2", "v"));
var_dump(apc_fetch("k3"));
echo "still running\n";';
echo apcdb_run(['apcdb.file' => $db, 'apcdb.durability' => 'periodic'], $code, $rc);
echo "rc=$rc\n";
// The handle was dropped after its error; the reopen at the next call fails with a clear message
// (reported once per request). The next process is refused the same way, not killed.
echo apcdb_run(['apcdb.file' => $db], 'var_dump(apc_fetch("k1")); echo "next still running\n";', $rc);
echo "rc=$rc\n";
?>
--EXPECTF--
bool(true)

Warning: apc_fetch(): apcdb: %struncated or replaced under the open store%s in Command line code on line 5
bool(false)

Warning: apc_store(): apcdb: cannot open the store file "%s": %s8192 bytes but the last checkpoint recorded %d in Command line code on line 6
bool(false)
bool(false)
still running
rc=0

Warning: apc_fetch(): apcdb: %s8192 bytes but the last checkpoint recorded %d%s in Command line code on line 1
bool(false)
next still running
rc=0
