--TEST--
Refusal: an unopenable path gives one clear warning naming the file and the reason; no crash
--FILE--
<?php
require __DIR__ . '/helpers.inc';
echo apcdb_run(['apcdb.file' => '/nonexistent-apcdb-dir/x.db'],
    'var_dump(apc_store("k", 1), apc_fetch("k"), apc_add("k", 1), apc_entry("k", fn() => 1));
     var_dump(new APCIterator("user") instanceof Iterator); echo "still running\n";');
$dir = sys_get_temp_dir() . '/apcdb-phpt-dir-' . getmypid();
@mkdir($dir);
echo apcdb_run(['apcdb.file' => $dir], 'var_dump(apc_store("k", 1));');
rmdir($dir);
// A symlink is refused.
$db = apcdb_tmp('real');
$link = sys_get_temp_dir() . '/apcdb-phpt-link-' . getmypid() . '.db';
echo apcdb_run(['apcdb.file' => $db], 'var_dump(apc_store("k", 1));');
@unlink($link);
symlink($db, $link);
echo apcdb_run(['apcdb.file' => $link], 'var_dump(apc_fetch("k"));');
unlink($link);
// apcdb.enabled=0: functions return false silently.
echo apcdb_run(['apcdb.enabled' => 0], 'var_dump(apc_store("k", 1), apc_fetch("k"), apc_enabled());');
?>
--EXPECTF--
Warning: apc_store(): apcdb: cannot open the store file "/nonexistent-apcdb-dir/x.db": %s/nonexistent-apcdb-dir/x.db%s in Command line code on line 1
bool(false)
bool(false)
bool(false)
bool(false)
bool(true)
still running

Warning: apc_store(): apcdb: cannot open the store file "%s": %s in Command line code on line 1
bool(false)
bool(true)

Warning: apc_fetch(): apcdb: cannot open the store file "%s/apcdb-phpt-link-%d.db": %s in Command line code on line 1
bool(false)
bool(false)
bool(false)
bool(false)
