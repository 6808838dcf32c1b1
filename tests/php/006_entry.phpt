--TEST--
apc_entry: the generator runs once per miss, receives the key, and nothing is stored if it throws
--FILE--
<?php
$calls = 0;
$gen = function ($key) use (&$calls) { $calls++; return "value of $key"; };
var_dump(apc_entry('k', $gen));
var_dump(apc_entry('k', $gen));
var_dump($calls, apc_fetch('k'));
try {
    apc_entry('boom', function ($k) { throw new RuntimeException("generator failed for $k"); });
} catch (RuntimeException $e) {
    echo get_class($e), ': ', $e->getMessage(), "\n";
}
var_dump(apc_exists('boom'));
var_dump(apc_entry('arr', fn($k) => ['x' => [1, 2]], 100));
var_dump(apc_key_info('arr')['ttl']);
// A closure result cannot be stored: the serializer's exception propagates and nothing is stored.
try {
    apc_entry('clo', fn($k) => function () {});
} catch (Exception $e) {
    echo get_class($e), ': ', $e->getMessage(), "\n";
}
var_dump(apc_exists('clo'));
// Inside the generator the cache is usable: reads and writes (no store lock is held).
apc_store('other', 'O');
var_dump(apc_entry('nested', function ($k) { return [apc_fetch('other'), apc_store('w', 1)]; }));
var_dump(apc_fetch('w'));
try {
    apc_entry('x', 'no_such_function');
} catch (TypeError $e) {
    echo $e->getMessage(), "\n";
}
?>
--EXPECTF--
string(10) "value of k"
string(10) "value of k"
int(1)
string(10) "value of k"
RuntimeException: generator failed for boom
bool(false)
array(1) {
  ["x"]=>
  array(2) {
    [0]=>
    int(1)
    [1]=>
    int(2)
  }
}
int(100)
Exception: Serialization of 'Closure' is not allowed
bool(false)
array(2) {
  [0]=>
  string(1) "O"
  [1]=>
  bool(true)
}
int(1)
apc_entry(): Argument #2 ($callback) must be a valid callback, function "no_such_function" not found or invalid function name
