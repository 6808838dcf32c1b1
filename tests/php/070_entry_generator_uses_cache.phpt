--TEST--
apc_entry/apcu_entry: the generator may store, increment, fetch and call apc_entry (also for its own key)
--INI--
apcdb.apcu_compat=1
--FILE--
<?php
apcu_store('base', 10);
$v = apcu_entry('outer', function ($k) {
    $a = apcu_store('side', 'S');
    $b = apcu_inc('counter');          // APCu: a missing counter is created
    $c = apcu_inc('base', 5);
    $d = apcu_fetch('base');
    $e = apcu_entry('inner', fn($k) => "made $k");
    $f = apcu_entry('inner', fn($k) => 'not called');
    return compact('a', 'b', 'c', 'd', 'e', 'f');
});
var_dump($v == apcu_fetch('outer'));
print_r($v);
var_dump(apcu_fetch('side'), apcu_fetch('counter'), apcu_fetch('inner'));

// A nested call for the generator's own key runs its generator directly (it would otherwise
// wait for itself); the first value stored wins, each call returns what its generator made.
$calls = [];
$r = apcu_entry('self', function ($k) use (&$calls) {
    $calls[] = 'outer';
    $in = apcu_entry('self', function ($k) use (&$calls) { $calls[] = 'inner'; return 'inner value'; });
    return "outer value (inner gave: $in)";
});
var_dump($r, apcu_fetch('self'), $calls);
// A generator that stores its own key itself: the stored value is kept.
var_dump(apc_entry('own', function ($k) { apc_store($k, 'stored by the generator'); return 'returned'; }),
         apc_fetch('own'));
?>
--EXPECT--
bool(true)
Array
(
    [a] => 1
    [b] => 1
    [c] => 15
    [d] => 15
    [e] => made inner
    [f] => made inner
)
string(1) "S"
int(1)
string(10) "made inner"
string(37) "outer value (inner gave: inner value)"
string(11) "inner value"
array(2) {
  [0]=>
  string(5) "outer"
  [1]=>
  string(5) "inner"
}
string(8) "returned"
string(23) "stored by the generator"
