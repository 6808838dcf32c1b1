--TEST--
apc_add: stores only absent keys; the array form returns the keys that were not added
--FILE--
<?php
var_dump(apc_add('a', 1));
var_dump(apc_add('a', 2));
var_dump(apc_fetch('a'));
var_dump(apc_add(['a' => 10, 'b' => 20, 5 => 30]));
var_dump(apc_fetch(['a', 'b', '5']));
// An expired entry does not block apc_add.
var_dump(apc_store('gone', 1, -1), apc_add('gone', 2), apc_fetch('gone'));
// After delete, add works again.
apc_delete('a');
var_dump(apc_add('a', 3), apc_fetch('a'));
var_dump(apc_add('nov'));
?>
--EXPECT--
bool(true)
bool(false)
int(1)
array(1) {
  ["a"]=>
  int(-1)
}
array(3) {
  ["a"]=>
  int(1)
  ["b"]=>
  int(20)
  [5]=>
  int(30)
}
bool(true)
bool(true)
int(2)
bool(true)
int(3)
bool(false)
