--TEST--
Drop-in mode (apcdb.apcu_compat=1): apcu_* functions and APCUIterator with APCu 5.1 semantics
--INI--
apcdb.apcu_compat=1
--FILE--
<?php
foreach (['apcu_store', 'apcu_add', 'apcu_fetch', 'apcu_exists', 'apcu_delete', 'apcu_inc', 'apcu_dec',
          'apcu_cas', 'apcu_entry', 'apcu_clear_cache', 'apcu_cache_info', 'apcu_sma_info',
          'apcu_key_info', 'apcu_enabled', 'apc_store', 'apc_fetch'] as $f) {
    if (!function_exists($f)) echo "missing $f\n";
}
var_dump(class_exists('APCUIterator'), class_exists('APCIterator'), apcu_enabled());
// Both names address the same store.
var_dump(apcu_store('k', 'v'), apc_fetch('k'), apcu_fetch('k', $ok), $ok);
// APCu 5.1: apcu_inc/apcu_dec create a missing key (with the given TTL); apc_inc does not.
var_dump(apc_inc('new1'), apcu_inc('new1'), apcu_inc('new1', 4, $ok), $ok);
var_dump(apcu_dec('new2'), apcu_dec('new3', 5, $ok, 100), $ok, apcu_key_info('new3')['ttl']);
var_dump(apcu_cas('new1', 5, 50), apcu_fetch('new1'));
var_dump(apcu_add('k', 'other'), apcu_add(['k' => 1, 'k2' => 2]));
var_dump(apcu_exists(['k', 'k2', 'zz']));
var_dump(apcu_entry('e', fn($key) => strtoupper($key)), apcu_entry('e', fn($key) => 'no'));
// APCUIterator: APCu's constructor has no $cache parameter.
$it = new APCUIterator('/^new/', APC_ITER_KEY | APC_ITER_VALUE);
$got = [];
foreach ($it as $key => $item) $got[$key] = $item['value'];
ksort($got);
var_dump($got, $it->getTotalCount());
var_dump(apcu_delete(new APCUIterator('/^new/')), apcu_exists('new1'));
var_dump(apcu_delete(['k', 'zz']));
echo implode(',', array_keys(apcu_cache_info(true))), "\n";
echo implode(',', array_keys(apcu_sma_info(true))), "\n";
try { apcu_cache_info('user', true); } catch (ArgumentCountError $e) { echo $e->getMessage(), "\n"; }
try { apcu_inc('k', 1, $ok, 'x'); } catch (TypeError $e) { echo $e->getMessage(), "\n"; }
var_dump(apcu_clear_cache(), apcu_exists('k2'));
try { apcu_clear_cache('user'); } catch (ArgumentCountError $e) { echo $e->getMessage(), "\n"; }
var_dump(apcu_store('r', STDIN));
?>
--EXPECTF--
bool(true)
bool(true)
bool(true)
bool(true)
string(1) "v"
string(1) "v"
bool(true)
bool(false)
int(1)
int(5)
bool(true)
int(-1)
int(-5)
bool(true)
int(100)
bool(true)
int(50)
bool(false)
array(1) {
  ["k"]=>
  int(-1)
}
array(2) {
  ["k"]=>
  bool(true)
  ["k2"]=>
  bool(true)
}
string(1) "E"
string(1) "E"
array(3) {
  ["new1"]=>
  int(50)
  ["new2"]=>
  int(-1)
  ["new3"]=>
  int(-5)
}
int(3)
bool(true)
bool(false)
array(1) {
  [0]=>
  string(2) "zz"
}
num_slots,ttl,num_hits,num_misses,num_inserts,num_entries,expunges,start_time,mem_size,memory_type
num_seg,seg_size,avail_mem
apcu_cache_info() expects at most 1 argument, 2 given
apcu_inc(): Argument #4 ($ttl) must be of type int, string given
bool(true)
bool(false)
apcu_clear_cache() expects exactly 0 arguments, 1 given

Warning: apcu_store(): Cannot store resources in apcu cache in %s on line %d
bool(false)
