--TEST--
APCIterator::current(): a __wakeup that rewinds or reconstructs the same iterator gets consistent fields
--FILE--
<?php
// current() kept references into the iterator's snapshot while unserialize()
// ran user code; rewind() or __construct() from a __wakeup freed the snapshot. The child runs
// with glibc's free-perturbation so that reading freed memory shows up as wrong numbers.
require __DIR__ . '/helpers.inc';
putenv('MALLOC_PERTURB_=165');
echo apcdb_run([], <<<'PHP'
class R {
    public $tag = 't';
    public function __wakeup(): void {
        global $it, $left, $reconstruct;
        if ($left-- > 0) {
            // Grow the store, so that the new snapshot needs a bigger block than the old one.
            static $pad = 0;
            for ($i = 0; $i < 40; $i++) apc_store('pad' . $pad++, 1);
            if ($reconstruct) {
                $it->__construct('user', '/^r\d$/', $GLOBALS['fmt']);
            } else {
                $it->rewind();
            }
            $GLOBALS['spray'] = [];
            for ($i = 0; $i < 300; $i++) $GLOBALS['spray'][] = str_repeat('Z', 200 + $i % 100);
        }
    }
}
$fmt = APC_ITER_KEY | APC_ITER_VALUE | APC_ITER_MEM_SIZE | APC_ITER_TTL | APC_ITER_MTIME;
for ($i = 0; $i < 5; $i++) apc_store("r$i", [new R, str_repeat('v', 100 + $i)], 100);
$t = time();
foreach ([false, true] as $reconstruct) {
    $left = 3;
    $it = new APCIterator('user', '/^r\d$/', $fmt);
    $out = [];
    foreach ($it as $k => $e) {
        $i = (int) substr($e['key'], 1);
        $ok = is_array($e['value']) && $e['value'][0] instanceof R
            && $e['value'][1] === str_repeat('v', 100 + $i)
            && $e['mem_size'] === strlen($e['key']) + 1 + strlen(serialize($e['value']))
            && $e['ttl'] === 100 && abs($e['mtime'] - $t) <= 2;
        $out[] = "$k:{$e['key']}:" . ($ok ? 'ok' : 'BAD ' . json_encode([$e['mem_size'], $e['ttl'], $e['mtime']]));
    }
    echo implode(' ', $out), "\n";
}
// Every other method may be re-entered from a __wakeup too.
class Q {
    public function __wakeup(): void {
        global $it2;
        $it2->valid(); $it2->key(); $it2->next(); $it2->getTotalCount(); $it2->rewind();
        apc_delete($it2 instanceof APCIterator ? new APCIterator('user', '/^none$/') : null);
    }
}
apc_store('q1', [new Q]);
$it2 = new APCIterator('user', '/^q/');
var_dump($it2->current()['value'][0] instanceof Q, $it2->key());
echo "done\n";
PHP, $rc);
var_dump($rc);
?>
--EXPECT--
r0:r0:ok r0:r1:ok r0:r1:ok r1:r1:ok r2:r2:ok r3:r3:ok r4:r4:ok
r0:r0:ok r0:r1:ok r0:r1:ok r1:r1:ok r2:r2:ok r3:r3:ok r4:r4:ok
bool(true)
string(2) "q1"
done
int(0)
