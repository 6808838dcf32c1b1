--TEST--
Errors: PHP's own TypeError/ArgumentCountError wording, APCu's warnings, closures and resources store nothing
--FILE--
<?php
function t(callable $f) {
    try { var_dump($f()); } catch (Throwable $e) { echo get_class($e), ': ', $e->getMessage(), "\n"; }
}
t(fn() => apc_store());
t(fn() => apc_store('k', 1, 'abc'));
t(fn() => apc_store('k', 1, 2, 3));
t(fn() => apc_fetch());
t(fn() => apc_inc([]));
t(fn() => apc_inc('k', 'x'));
t(fn() => apc_cas('k', 'a', 1));
t(fn() => apc_key_info(['x']));
t(fn() => apc_entry('k'));
t(fn() => apc_enabled(1));
t(fn() => apc_sma_info([]));
t(fn() => apc_cache_info('user', []));
t(fn() => apc_store(new stdClass, 1));
t(fn() => apc_fetch([1, 'k']));
t(fn() => apc_exists(['k', 2]));
// Closures: the serializer's exception, nothing stored.
t(fn() => apc_store('c', function () {}));
t(fn() => apc_exists('c'));
t(fn() => apc_store('c', [1, [function () {}]]));
t(fn() => apc_exists('c'));
// Resources: APCu's warning, nothing stored.
t(fn() => apc_store('r', STDIN));
t(fn() => apc_exists('r'));
t(fn() => apc_add(['r1' => STDERR, 'ok' => 1]));
t(fn() => apc_exists(['r1', 'ok']));
// Weak mode coerces numeric strings for int parameters, as PHP does.
t(fn() => apc_store('k', 1, '10'));
?>
--EXPECTF--
ArgumentCountError: apc_store() expects at least 1 argument, 0 given
TypeError: apc_store(): Argument #3 ($ttl) must be of type int, string given
ArgumentCountError: apc_store() expects at most 3 arguments, 4 given
ArgumentCountError: apc_fetch() expects at least 1 argument, 0 given
TypeError: apc_inc(): Argument #1 ($key) must be of type string, array given
TypeError: apc_inc(): Argument #2 ($step) must be of type int, string given
TypeError: apc_cas(): Argument #2 ($old) must be of type int, string given
TypeError: apc_key_info(): Argument #1 ($key) must be of type string, array given
ArgumentCountError: apc_entry() expects at least 2 arguments, 1 given
ArgumentCountError: apc_enabled() expects exactly 0 arguments, 1 given
TypeError: apc_sma_info(): Argument #1 ($limited) must be of type bool, array given
TypeError: apc_cache_info(): Argument #2 ($limited) must be of type bool, array given

Warning: apc_store(): apc_store expects key parameter to be a string or an array of key/value pairs. in %s on line %d
bool(false)

Warning: apc_fetch(): apc_fetch() expects a string or array of strings. in %s on line %d
array(0) {
}

Warning: apc_exists(): apc_exists() expects a string or array of strings. in %s on line %d
array(0) {
}
Exception: Serialization of 'Closure' is not allowed
bool(false)
Exception: Serialization of 'Closure' is not allowed
bool(false)

Warning: apc_store(): Cannot store resources in apc cache in %s on line %d
bool(false)
bool(false)

Warning: apc_add(): Cannot store resources in apc cache in %s on line %d
array(1) {
  ["r1"]=>
  int(-1)
}
array(1) {
  ["ok"]=>
  bool(true)
}
bool(true)
