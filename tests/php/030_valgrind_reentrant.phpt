--TEST--
valgrind (USE_ZEND_ALLOC=0): no invalid read or write when user code run by unserialize() frees a fetched key or rewinds the iterator
--SKIPIF--
<?php
exec('command -v valgrind 2>/dev/null', $o, $rc);
if ($rc !== 0) die('skip valgrind is not installed (the Makefile lists it in PHP_PACKAGES)');
?>
--FILE--
<?php
// The re-entrancy cases of 027 (a fetched key borrowed from a PHP string that user code freed) and
// 028 (an iterator snapshot freed from a __wakeup), under valgrind: with PHP's own allocator off
// every emalloc is a malloc that valgrind tracks, so a read of a freed key string or iterator
// snapshot is reported.
require __DIR__ . '/helpers.inc';
$code = <<<'PHP'
class W {
    public function __wakeup(): void {
        $GLOBALS['k'] = 0;
        $GLOBALS['spray'] = [];
        for ($i = 0; $i < 64; $i++) $GLOBALS['spray'][] = str_repeat('A', 40);
    }
}
class R {
    public function __wakeup(): void {
        global $it, $left, $reconstruct;
        if ($left-- > 0) {
            static $pad = 0;
            for ($i = 0; $i < 40; $i++) apc_store('pad' . $pad++, 1);
            if ($reconstruct) {
                $it->__construct('user', '/^r\d$/');
            } else {
                $it->rewind();
            }
        }
    }
}
$key = str_repeat('k', 40);
apc_store($key, [new W]);
$k = str_repeat('k', 40);
$r = apc_fetch([&$k]);
echo 'fetch: ', array_keys($r) === [$key] ? 'ok' : 'wrong key', "\n";

for ($i = 0; $i < 3; $i++) apc_store("r$i", [new R, $i], 100);
foreach ([false, true] as $reconstruct) {
    $left = 2;
    $it = new APCIterator('user', '/^r\d$/');
    $n = 0;
    foreach ($it as $e) {
        // The TTL as set; a server's counts down (tests/redis/run.sh), by seconds under valgrind.
        $n += $e['value'][1] === (int) substr($e['key'], 1) && $e['ttl'] <= 100 && $e['ttl'] > 80;
    }
    echo 'iterator: ', $n, "\n";
}
PHP;
putenv('USE_ZEND_ALLOC=0');
$cmd = array_merge(['valgrind', '-q', '--error-exitcode=99', '--leak-check=no'],
                   apcdb_cmd([], ['-r', $code]));
$p = proc_open($cmd, [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
fclose($pipes[0]);
$vg = stream_get_contents($pipes[1]);
fclose($pipes[1]);
$vrc = proc_close($p);
// The script's own output (valgrind's lines start with ==pid==).
echo preg_replace('/^==\d+==.*\n/m', '', $vg);
echo "valgrind exit: $vrc\n";
preg_match_all('/Invalid (read|write|free)[^\n]*/', $vg, $m);
echo 'invalid accesses: ', count($m[0]), "\n";
if ($vrc !== 0) echo substr($vg, 0, 3000), "\n";
?>
--EXPECT--
fetch: ok
iterator: 4
iterator: 4
valgrind exit: 0
invalid accesses: 0
