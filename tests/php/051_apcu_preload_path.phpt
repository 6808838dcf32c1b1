--TEST--
apc.preload_path in drop-in mode (issue 11 item 6): *.data files are loaded into an empty store at start, never into one that has entries
--DESCRIPTION--
As APCu documents it: each <key>.data file holds one value in serialize() format and is added
under <key> with no TTL; other files are ignored. (APCu 5.1 as installed here crashes at startup
with apc.preload_path set, so this output could not be compared with it.)
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$dir = sys_get_temp_dir() . '/apcdb-phpt-preload-' . getmypid();
@mkdir($dir);
file_put_contents("$dir/config.data", serialize(['db' => 'main', 'ports' => [1, 2]]));
file_put_contents("$dir/count.data", serialize(42));
file_put_contents("$dir/off.data", serialize(false));
file_put_contents("$dir/bad.data", 'not serialized');
file_put_contents("$dir/notes.txt", serialize('ignored'));
register_shutdown_function(function () use ($dir) {
    array_map('unlink', glob("$dir/*"));
    rmdir($dir);
});
$ini = apcdb_pool_ini('preload') + ['apcdb.apcu_compat' => 1, 'apc.preload_path' => $dir,
        'error_reporting' => E_ALL & ~E_NOTICE];
// First process: the store is new and empty, so the files are loaded.
echo apcdb_run($ini, 'var_dump(apcu_fetch("config"), apcu_fetch("count"), apcu_fetch("off", $ok), $ok,
    apcu_exists("bad"), apcu_exists("notes"), apcu_cache_info(true)["num_entries"],
    apcu_key_info("count")["ttl"]);
    apcu_delete("count"); apcu_store("count", 7);
    // Cleared during the process: not loaded again by this process.
    apcu_clear_cache(); var_dump(apcu_exists("config"));
    apcu_store("mine", 1);');
echo "---\n";
// Second process: the store has an entry, so nothing is loaded.
echo apcdb_run($ini, 'var_dump(apcu_exists("config"), apcu_fetch("mine"));');
echo "---\n";
// Without drop-in mode apc.preload_path means nothing.
echo apcdb_run(apcdb_pool_ini('preload2') + ['apc.preload_path' => $dir], 'var_dump(apc_exists("config"));');
echo "---\n";
// A directory that cannot be read: one warning, the store works.
echo apcdb_run(apcdb_pool_ini('preload3') + ['apcdb.apcu_compat' => 1, 'apc.preload_path' => "$dir/missing"], 'var_dump(apcu_store("a", 1));');
?>
--EXPECTF--
Warning: apcu_fetch(): apcdb: apc.preload_path: %s/bad.data is not a serialized PHP value; skipped in Command line code on line 1
array(2) {
  ["db"]=>
  string(4) "main"
  ["ports"]=>
  array(2) {
    [0]=>
    int(1)
    [1]=>
    int(2)
  }
}
int(42)
bool(false)
bool(true)
bool(false)
bool(false)
int(3)
int(0)
bool(false)
---
bool(false)
int(1)
---
bool(false)
---

Warning: apcu_store(): apcdb: apc.preload_path: cannot read the directory "%s/missing": No such file or directory (os error 2) in Command line code on line 1
bool(true)
