--TEST--
APCIterator: APC 3.1 constructor, regex and key-list search, format bits, totals, rewind
--FILE--
<?php
apc_store('user:1', 'alice');
apc_store('user:2', ['name' => 'bob']);
apc_store('session:9', 42, 100);
apc_store("bin\0ary", 'b');

$it = new APCIterator('user', '/^user:/');
$seen = [];
foreach ($it as $k => $v) {
    $seen[$k] = $v;
}
ksort($seen);
echo implode(',', array_keys($seen)), "\n";
echo implode(',', array_keys($seen['user:1'])), "\n";
var_dump($seen['user:1']['type'], $seen['user:1']['key'], $seen['user:1']['value'], $seen['user:2']['value']);
var_dump($it->getTotalCount(), $it->getTotalHits(), $it->getTotalSize() > 0);

// Format bits select the fields.
$it = new APCIterator('user', '/^session/', APC_ITER_KEY | APC_ITER_VALUE | APC_ITER_TTL);
foreach ($it as $k => $v) var_dump($k, $v);
$it = new APCIterator('user', '/^session/', APC_ITER_NONE);
foreach ($it as $k => $v) var_dump($k, $v);

// Key-list search (binary-safe).
$it = new APCIterator('user', ["bin\0ary", 'user:2', 'absent'], APC_ITER_KEY);
$keys = [];
foreach ($it as $k => $v) $keys[] = bin2hex($v['key']);
sort($keys);
var_dump($keys);

// All entries, rewind, chunk size accepted.
$it = new APCIterator('user', null, APC_ITER_KEY, 1);
var_dump(iterator_count($it), $it->getTotalCount());
$it->rewind();
var_dump($it->valid(), is_string($it->key()));
$it->next(); $it->next(); $it->next(); $it->next();
var_dump($it->valid());
try { $it->current(); } catch (Error $e) { echo $e->getMessage(), "\n"; }
// Default arguments.
var_dump(iterator_count(new APCIterator()), iterator_count(new APCIterator('user')));
// The deleted list is empty: apcdb frees deleted entries at once.
var_dump(iterator_count(new APCIterator('user', null, APC_ITER_ALL, 100, APC_LIST_DELETED)));
// Only the user cache exists.
$it = new APCIterator('file');
var_dump(iterator_count($it));
// A pattern that does not compile.
$it = new APCIterator('user', '/(/');
var_dump(iterator_count($it));
// Wrong types are PHP TypeErrors.
try { new APCIterator('user', null, 'x'); } catch (TypeError $e) { echo $e->getMessage(), "\n"; }
?>
--EXPECTF--
user:1,user:2
type,key,value,num_hits,mtime,creation_time,deletion_time,access_time,ref_count,mem_size,ttl
string(4) "user"
string(6) "user:1"
string(5) "alice"
array(1) {
  ["name"]=>
  string(3) "bob"
}
int(2)
int(0)
bool(true)
string(9) "session:9"
array(3) {
  ["key"]=>
  string(9) "session:9"
  ["value"]=>
  int(42)
  ["ttl"]=>
  int(100)
}
string(9) "session:9"
array(0) {
}
array(2) {
  [0]=>
  string(14) "62696e00617279"
  [1]=>
  string(12) "757365723a32"
}
int(4)
int(4)
bool(true)
bool(true)
bool(false)
Cannot call current() on invalid iterator
int(4)
int(4)
int(0)

Warning: APCIterator::__construct(): APCIterator: the cache type must be 'user' (apcdb has no opcode cache) in %s on line %d
int(0)

Warning: preg_grep(): Compilation failed: missing closing parenthesis at offset 1 in %s on line %d

Warning: APCIterator::__construct(): Could not compile regular expression: /(/ in %s on line %d
int(0)
APCIterator::__construct(): Argument #3 ($format) must be of type int, string given
