--TEST--
APCIterator reads values a page ($chunk_size entries) at a time: later pages see deletions and new values
--FILE--
<?php
for ($i = 0; $i < 10; $i++) apc_store("p$i", "v$i");

// Pages of 3: p0-p2 are read before the loop body first runs, p3-p5 when p3 is reached, ...
$it = new APCIterator('user', '/^p\d$/', APC_ITER_KEY | APC_ITER_VALUE, 3);
$seen = [];
foreach ($it as $k => $e) {
    $seen[] = "$k=" . $e['value'];
    if ($k === 'p1') {
        apc_delete('p2'); // already read with its page: still listed
        apc_delete('p5'); // its page is read later: skipped
        apc_store('p7', 'changed');
    }
}
echo implode(' ', $seen), "\n";

// Without values the snapshot (keys and metadata) is all there is: p5 is gone from it now.
$it = new APCIterator('user', '/^p\d$/', APC_ITER_KEY, 1);
$keys = [];
foreach ($it as $k => $e) $keys[] = $k;
sort($keys);
echo implode(' ', $keys), "\n";
var_dump($it->getTotalCount());

// A chunk size of 0 or less means the default; next() past the end stays invalid.
$it = new APCIterator('user', '/^p\d$/', APC_ITER_VALUE, -5);
var_dump(iterator_count($it));
$it->rewind();
for ($i = 0; $i < 20; $i++) $it->next();
var_dump($it->valid());
try { $it->current(); } catch (Error $e) { echo $e->getMessage(), "\n"; }
try { $it->key(); } catch (Error $e) { echo $e->getMessage(), "\n"; }
?>
--EXPECT--
p0=v0 p1=v1 p2=v2 p3=v3 p4=v4 p6=v6 p7=changed p8=v8 p9=v9
p0 p1 p3 p4 p6 p7 p8 p9
int(8)
int(8)
bool(false)
Cannot call current() on invalid iterator
Cannot call key() on invalid iterator
