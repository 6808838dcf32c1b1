--TEST--
Iterators (issue 11 item 4): a subclass that skips the parent constructor, and key()/current() on an invalid iterator, throw APCu's Errors
--DESCRIPTION--
Expected output confirmed against APCu 5.1 (php -n -d extension=apcu.so -d apc.enable_cli=1) for the
APCUIterator half; APCIterator follows the same rules under its own name.
--INI--
apcdb.apcu_compat=1
--FILE--
<?php
class Lazy extends APCUIterator { function __construct() {} }
class LazyApc extends APCIterator { function __construct() {} }
class Proper extends APCUIterator { function __construct() { parent::__construct('/^a$/'); } }

function attempt(string $label, callable $f): void {
    try {
        $r = var_export($f(), true);
        echo "$label: $r\n";
    } catch (Throwable $e) {
        echo "$label: ", get_class($e), ": ", $e->getMessage(), "\n";
    }
}

apcu_store('a', 1);
foreach ([new Lazy, new LazyApc] as $it) {
    foreach (['rewind', 'valid', 'current', 'key', 'next', 'getTotalHits', 'getTotalSize',
              'getTotalCount'] as $m) {
        attempt(get_class($it) . "::$m", fn() => $it->$m());
    }
}
attempt('foreach over Lazy', function () { foreach (new Lazy as $k => $v) {} });
// apcu_delete() with such an iterator throws too, and deletes nothing.
attempt('apcu_delete(new Lazy)', fn() => apcu_delete(new Lazy));
var_dump(apcu_exists('a'));
// An invalid $list leaves the object uninitialised (with a warning), as in APCu.
$bad = @new APCUIterator(null, APC_ITER_ALL, 0, 99);
attempt('invalid list valid()', fn() => $bad->valid());

// A subclass that does call the parent's constructor works.
$p = new Proper;
foreach ($p as $k => $v) echo "Proper: $k\n";
// Past the end: key() and current() throw; valid() and next() do not.
attempt('key past end', fn() => $p->key());
attempt('current past end', fn() => $p->current());
attempt('valid past end', fn() => $p->valid());
attempt('next past end', fn() => $p->next());
$p->rewind();
attempt('key after rewind', fn() => $p->key());

$empty = new APCIterator('user', '/^nothing/');
attempt('APCIterator key on empty', fn() => $empty->key());
attempt('APCIterator current on empty', fn() => $empty->current());
?>
--EXPECT--
Lazy::rewind: Error: Trying to use uninitialized APCUIterator
Lazy::valid: Error: Trying to use uninitialized APCUIterator
Lazy::current: Error: Trying to use uninitialized APCUIterator
Lazy::key: Error: Trying to use uninitialized APCUIterator
Lazy::next: Error: Trying to use uninitialized APCUIterator
Lazy::getTotalHits: Error: Trying to use uninitialized APCUIterator
Lazy::getTotalSize: Error: Trying to use uninitialized APCUIterator
Lazy::getTotalCount: Error: Trying to use uninitialized APCUIterator
LazyApc::rewind: Error: Trying to use uninitialized APCIterator
LazyApc::valid: Error: Trying to use uninitialized APCIterator
LazyApc::current: Error: Trying to use uninitialized APCIterator
LazyApc::key: Error: Trying to use uninitialized APCIterator
LazyApc::next: Error: Trying to use uninitialized APCIterator
LazyApc::getTotalHits: Error: Trying to use uninitialized APCIterator
LazyApc::getTotalSize: Error: Trying to use uninitialized APCIterator
LazyApc::getTotalCount: Error: Trying to use uninitialized APCIterator
foreach over Lazy: Error: Trying to use uninitialized APCUIterator
apcu_delete(new Lazy): Error: Trying to use uninitialized APCUIterator
bool(true)
invalid list valid(): Error: Trying to use uninitialized APCUIterator
Proper: a
key past end: Error: Cannot call key() on invalid iterator
current past end: Error: Cannot call current() on invalid iterator
valid past end: false
next past end: NULL
key after rewind: 'a'
APCIterator key on empty: Error: Cannot call key() on invalid iterator
APCIterator current on empty: Error: Cannot call current() on invalid iterator
