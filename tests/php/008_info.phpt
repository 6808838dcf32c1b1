--TEST--
apc_cache_info, apc_sma_info, apc_key_info, apc_enabled, apc_clear_cache
--FILE--
<?php
apc_store('a', 'x');
apc_store('b', [1, 2, 3], 50);
apc_fetch('a'); apc_fetch('nope');
$i = apc_cache_info();
echo implode(',', array_keys($i)), "\n";
var_dump($i['num_entries'], $i['memory_type'], is_float($i['num_hits']), $i['num_hits'] >= 1, $i['num_misses'] >= 1);
var_dump(count($i['cache_list']));
$e = $i['cache_list'][0]['info'] === 'a' ? $i['cache_list'][0] : $i['cache_list'][1];
echo implode(',', array_keys($e)), "\n";
var_dump($e['info'], $e['ttl'], abs($e['mtime'] - time()) <= 2, $e['mem_size'] > 0);
$l = apc_cache_info('user', true);
echo implode(',', array_keys($l)), "\n";
$s = apc_sma_info();
echo implode(',', array_keys($s)), "\n";
var_dump($s['num_seg'], $s['seg_size'] == 128 * 1024 * 1024, $s['avail_mem'] < $s['seg_size']);
echo implode(',', array_keys(apc_sma_info(true))), "\n";
var_dump(apc_key_info('b'));
var_dump(apc_key_info('nope'));
var_dump(apc_enabled());
// Clearing: 'opcode' names a cache apcdb does not have and leaves the user cache alone.
var_dump(apc_clear_cache('opcode'), apc_exists('a'));
var_dump(apc_clear_cache('user'), apc_exists('a'), apc_cache_info()['num_entries']);
apc_store('a', 1);
var_dump(apc_clear_cache(), apc_exists('a'));
?>
--EXPECTF--
num_slots,ttl,num_hits,num_misses,num_inserts,num_entries,expunges,start_time,mem_size,memory_type,cache_list,deleted_list,slot_distribution
int(2)
string(4) "mmap"
bool(true)
bool(true)
bool(true)
int(2)
info,ttl,num_hits,mtime,creation_time,deletion_time,access_time,ref_count,mem_size
string(1) "a"
int(0)
bool(true)
bool(true)
num_slots,ttl,num_hits,num_misses,num_inserts,num_entries,expunges,start_time,mem_size,memory_type
num_seg,seg_size,avail_mem,block_lists
int(1)
bool(true)
bool(true)
num_seg,seg_size,avail_mem
array(7) {
  ["hits"]=>
  int(0)
  ["access_time"]=>
  int(%d)
  ["mtime"]=>
  int(%d)
  ["creation_time"]=>
  int(%d)
  ["deletion_time"]=>
  int(0)
  ["ttl"]=>
  int(50)
  ["refs"]=>
  int(0)
}
NULL
bool(true)
bool(true)
bool(true)
bool(true)
bool(false)
int(0)
bool(true)
bool(false)
