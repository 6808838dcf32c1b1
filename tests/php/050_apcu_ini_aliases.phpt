--TEST--
APCu's INI names in drop-in mode (issue 11 item 6): apc.* read as aliases when the apcdb.* setting is not set
--DESCRIPTION--
The apc.* defaults shown by ini_get() and the effects of apc.shm_size (including its old syntax,
a plain number of MiB), apc.enabled and apc.enable_cli=1 were confirmed against APCu 5.1
(php -n -d extension=apcu.so). Deliberate differences (SPEC.md §10): the CLI is enabled unless
apc.enable_cli is set to off; an apcdb.* setting that is set wins over its apc.* alias.
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$on = ['apcdb.apcu_compat' => 1];
$show = 'foreach (["apc.enabled", "apc.shm_size", "apc.entries_hint", "apc.ttl", "apc.gc_ttl",
                   "apc.use_request_time", "apc.serializer", "apc.enable_cli", "apc.preload_path"] as $n)
             echo $n, "=", var_export(ini_get($n), true), " ";
         echo "\n";';
echo "defaults: ", apcdb_run($on, $show);
echo "not in apcdb mode: ", apcdb_run([], 'var_dump(ini_get("apc.shm_size"));');
$size = 'echo apcu_sma_info(true)["seg_size"], " ", var_export(apcu_enabled(), true), "\n";';
echo "shm_size=64M: ", apcdb_run($on + ['apc.shm_size' => '64M'], $size);
echo "shm_size=16: ", apcdb_run($on + ['apc.shm_size' => '16'], $size);
echo "shm_size=512K (a suffix: no MiB rule): ", apcdb_run($on + ['apc.shm_size' => '512K'], $size);
echo "apcdb.size wins: ", apcdb_run($on + ['apc.shm_size' => '64M', 'apcdb.size' => '8M'], $size);
echo "apcdb.size=128M named wins: ", apcdb_run($on + ['apc.shm_size' => '64M', 'apcdb.size' => '128M'], $size);
echo "apc_* mode ignores apc.shm_size: ", apcdb_run(['apc.shm_size' => '64M'], 'echo apc_sma_info(true)["seg_size"], "\n";');
$en = 'var_dump(apcu_enabled(), apcu_store("k", 1));';
echo "enabled=0: ", apcdb_run($on + ['apc.enabled' => '0'], $en);
echo "enabled=0, apcdb.enabled=1: ", apcdb_run($on + ['apc.enabled' => '0', 'apcdb.enabled' => '1'], $en);
echo "enable_cli=0: ", apcdb_run($on + ['apc.enable_cli' => '0'], $en);
echo "enable_cli=1: ", apcdb_run($on + ['apc.enable_cli' => '1'], $en);
echo "enable_cli=0, apcdb.enabled=1: ", apcdb_run($on + ['apc.enable_cli' => '0', 'apcdb.enabled' => '1'], $en);
echo "entries_hint, ttl, gc_ttl accepted: ",
    apcdb_run($on + ['apc.entries_hint' => '100000', 'apc.ttl' => '60', 'apc.gc_ttl' => '0'], $en);
echo "entries_hint invalid: ", apcdb_run($on + ['apc.entries_hint' => 'many'], $en);
echo "serializer=php: ", apcdb_run($on + ['apc.serializer' => 'php'], $en);
echo "serializer=igbinary, extension not loaded: ", apcdb_run($on + ['apc.serializer' => 'igbinary'],
    'var_dump(apcu_store("k", [1, 2]), apcu_fetch("k"));');
// apc.use_request_time=1: TTLs count from the request's start, which was 2 s ago.
$rt = 'sleep(2); apcu_store("a", 1, 1); apcu_store("b", 1, 5);
       var_dump(apcu_fetch("a"), apcu_fetch("b"));
       ini_set("apc.use_request_time", "0"); apcu_store("c", 1, 1); var_dump(apcu_fetch("c"));';
echo "use_request_time=1: ", apcdb_run($on + ['apc.use_request_time' => '1'], $rt);
echo "use_request_time=0: ", apcdb_run($on, 'sleep(2); apcu_store("a", 1, 1); var_dump(apcu_fetch("a"));');
?>
--EXPECTF--
defaults: apc.enabled='1' apc.shm_size='32M' apc.entries_hint='4096' apc.ttl='0' apc.gc_ttl='3600' apc.use_request_time='0' apc.serializer='php' apc.enable_cli='0' apc.preload_path='' 
not in apcdb mode: bool(false)
shm_size=64M: 67108864 true
shm_size=16: 16777216 true
shm_size=512K (a suffix: no MiB rule): 
Warning: apcu_sma_info(): apcdb: apc.shm_size=524288 is below the minimum of 1M; using 1M in Command line code on line 1
1048576 true
apcdb.size wins: 8388608 true
apcdb.size=128M named wins: 134217728 true
apc_* mode ignores apc.shm_size: 134217728
enabled=0: bool(false)
bool(false)
enabled=0, apcdb.enabled=1: bool(true)
bool(true)
enable_cli=0: bool(false)
bool(false)
enable_cli=1: bool(true)
bool(true)
enable_cli=0, apcdb.enabled=1: bool(true)
bool(true)
entries_hint, ttl, gc_ttl accepted: bool(true)
bool(true)
entries_hint invalid: 
Warning: apcu_enabled(): apcdb: apc.entries_hint="many" is not a number; using the default in Command line code on line 1
bool(true)
bool(true)
serializer=php: bool(true)
bool(true)
serializer=igbinary, extension not loaded: 
Warning: apcu_store(): apcdb: apc.serializer=igbinary needs the igbinary extension, which is not loaded; using php in Command line code on line 1
bool(true)
array(2) {
  [0]=>
  int(1)
  [1]=>
  int(2)
}
use_request_time=1: bool(false)
int(1)
int(1)
use_request_time=0: int(1)
