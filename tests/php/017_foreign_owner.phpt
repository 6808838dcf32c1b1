--TEST--
Refusal: a store file owned by another user is refused with one warning naming the file; calls return false
--SKIPIF--
<?php
if (!function_exists('posix_geteuid')) die('skip posix extension needed');
if (posix_geteuid() !== 0) die('skip needs root (to chown the file to another user)');
?>
--EXTENSIONS--
posix
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_tmp('foreign');
echo apcdb_run(['apcdb.file' => $db], 'var_dump(apc_store("k", "v"));');
$nobody = posix_getpwnam('nobody')['uid'];
foreach (['', '.journal', '.lock'] as $s) chown($db . $s, $nobody);
clearstatcache();
echo apcdb_run(['apcdb.file' => $db],
    'var_dump(apc_fetch("k"), apc_store("k2", 1), apc_inc("n"), apc_exists("k"), apc_enabled(), apc_cache_info());');
// The file was not changed or taken over.
clearstatcache();
var_dump(fileowner($db) === $nobody);
// A group/other-writable file is refused too.
foreach (['', '.journal', '.lock'] as $s) chown($db . $s, 0);
chmod($db, 0666);
echo apcdb_run(['apcdb.file' => $db], 'var_dump(apc_fetch("k"));');
chmod($db, 0600);
echo apcdb_run(['apcdb.file' => $db], 'var_dump(apc_fetch("k"));');
?>
--EXPECTF--
bool(true)

Warning: apc_fetch(): apcdb: cannot open the store file "%s/apcdb-phpt-foreign-%d.db": refusing %s: owned by uid %d, but this process runs as uid 0 in Command line code on line 1
bool(false)
bool(false)
bool(false)
bool(false)
bool(false)
bool(false)
bool(true)

Warning: apc_fetch(): apcdb: cannot open the store file "%s": refusing %s in Command line code on line 1
bool(false)
string(1) "v"
