--TEST--
Beside APCu: with apcu_compat off both extensions load cleanly; with it on, a clear startup warning
--SKIPIF--
<?php if (!file_exists(PHP_EXTENSION_DIR . '/apcu.so')) die('skip APCu (php8.2-apcu) is not installed'); ?>
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$code = 'var_dump(extension_loaded("apcu"), extension_loaded("apcdb"), APC_ITER_VALUE);'
      . 'var_dump(apcu_store("k", "from apcu"), apc_store("k", "from apcdb"));'
      . 'var_dump(apcu_fetch("k"), apc_fetch("k"));'
      . '$r = new ReflectionFunction("apcu_fetch"); echo $r->getExtensionName(), "\n";'
      . 'var_dump(class_exists("APCUIterator"), (new ReflectionClass("APCUIterator"))->getExtensionName());';
// APCu loaded first or second, compat off: no warning at all.
echo apcdb_run(['apc.enable_cli' => 1], $code, $rc, ['-d', 'extension=apcu.so']);
echo "rc=$rc\n";
$cmd = [apcdb_php_binary(), '-n', '-d', 'extension=apcu.so', '-d', 'extension=' . apcdb_ext(),
        '-d', 'display_startup_errors=1', '-d', 'display_errors=1', '-r', 'echo "loaded\n";'];
$p = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
echo stream_get_contents($pipes[1]); proc_close($p);
// Compat on with APCu loaded: one clear message, APCu's functions stay APCu's.
echo apcdb_run(['apc.enable_cli' => 1, 'apcdb.apcu_compat' => 1],
    'var_dump(apcu_store("a", 1), (new ReflectionFunction("apcu_store"))->getExtensionName(), apc_store("a", 2));',
    $rc, ['-d', 'extension=apcu.so']);
echo "rc=$rc\n";
?>
--EXPECTF--
bool(true)
bool(true)
int(4)
bool(true)
bool(true)
string(9) "from apcu"
string(10) "from apcdb"
apcu
bool(true)
string(4) "apcu"
rc=0
loaded
%AWarning: PHP Startup: apcdb.apcu_compat=1 is ignored because the APCu extension is loaded in this PHP: the apcu_* functions and APCUIterator remain APCu's (in memory, not durable). Remove extension=apcu.so to run APCu code on apcdb, or set apcdb.apcu_compat=0 in Unknown on line 0
bool(true)
string(4) "apcu"
bool(true)
rc=0
