--TEST--
apc_exists and apc_delete: string, array and APCIterator forms
--FILE--
<?php
apc_store(['a' => 1, 'b' => 2, 'c' => 3, 'x1' => 1, 'x2' => 2, 'y' => 0]);
var_dump(apc_exists('a'), apc_exists('zz'));
var_dump(apc_exists(['a', 'zz', 'c']));
var_dump(apc_exists(3));
var_dump(apc_delete('a'), apc_delete('a'));
var_dump(apc_delete(['b', 'zz', 'c']));
var_dump(apc_exists(['b', 'c']));
// Delete through an iterator: every key matching /^x/.
var_dump(apc_delete(new APCIterator('user', '/^x/')));
var_dump(apc_exists(['x1', 'x2', 'y']));
var_dump(apc_delete(3));
var_dump(apc_delete(new stdClass));
?>
--EXPECTF--
bool(true)
bool(false)
array(2) {
  ["a"]=>
  bool(true)
  ["c"]=>
  bool(true)
}
bool(false)
bool(true)
bool(false)
array(1) {
  [0]=>
  string(2) "zz"
}
array(0) {
}
bool(true)
array(1) {
  ["y"]=>
  bool(true)
}

Warning: apc_delete(): apc_delete() expects a string, array of strings, or APCIterator instance in %s on line %d
bool(false)

Warning: apc_delete(): apc_delete object argument must be instance of APCIterator. in %s on line %d
bool(false)
