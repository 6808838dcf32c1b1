--TEST--
apcdb: the extension loads, defines the apc_* API and its constants, and shows a phpinfo() section
--FILE--
<?php
var_dump(extension_loaded('apcdb'));
$fns = ['apc_store', 'apc_add', 'apc_fetch', 'apc_exists', 'apc_delete', 'apc_inc', 'apc_dec',
        'apc_cas', 'apc_entry', 'apc_clear_cache', 'apc_cache_info', 'apc_sma_info', 'apc_key_info',
        'apc_enabled'];
foreach ($fns as $f) {
    if (!function_exists($f)) echo "missing $f\n";
}
// Drop-in mode is off by default: no apcu_* functions, no APCUIterator.
var_dump(function_exists('apcu_fetch'), class_exists('APCUIterator'));
var_dump(class_exists('APCIterator'), (new ReflectionClass('APCIterator'))->implementsInterface('Iterator'));
foreach (['APC_ITER_TYPE', 'APC_ITER_KEY', 'APC_ITER_VALUE', 'APC_ITER_NUM_HITS', 'APC_ITER_MTIME',
          'APC_ITER_CTIME', 'APC_ITER_DTIME', 'APC_ITER_ATIME', 'APC_ITER_REFCOUNT', 'APC_ITER_MEM_SIZE',
          'APC_ITER_TTL', 'APC_ITER_NONE', 'APC_ITER_ALL', 'APC_LIST_ACTIVE', 'APC_LIST_DELETED'] as $c) {
    if (!defined($c)) echo "missing $c\n";
}
var_dump(APC_ITER_ALL & APC_ITER_VALUE ? true : false, APC_ITER_NONE);
var_dump(apc_enabled());
var_dump(ini_get('apcdb.enabled'), ini_get('apcdb.file'), ini_get('apcdb.durability'));

ob_start();
phpinfo(INFO_MODULES);
$info = ob_get_clean();
foreach (['apcdb support => enabled', 'Version => ', 'File => (anonymous, not durable)', 'Size => 128M',
          'Durability => sync', 'Entries => ', 'Hits => ', 'Misses => ', 'Recovered at open => ',
          'apcdb.apcu_compat => 0 => 0'] as $needle) {
    if (strpos($info, $needle) === false) echo "phpinfo lacks: $needle\n";
}
$r = new ReflectionFunction('apc_fetch');
echo $r->getNumberOfParameters(), ' ', $r->getNumberOfRequiredParameters(), ' ',
     $r->getParameters()[1]->isPassedByReference() ? 'byref' : 'byval', "\n";
echo "done\n";
?>
--EXPECT--
bool(true)
bool(false)
bool(false)
bool(true)
bool(true)
bool(true)
int(0)
bool(true)
string(1) "1"
string(0) ""
string(4) "sync"
2 1 byref
done
