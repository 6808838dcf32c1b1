--TEST--
The outermost value is a value (issue 11 item 3): a top-level &array containing that reference round-trips as in APCu
--DESCRIPTION--
Expected output confirmed against APCu 5.1 (php -n -d extension=apcu.so -d apc.enable_cli=1): same
output, for every way a value enters the cache (store, array store, add, entry) and leaves it
(fetch, array fetch, iterator).
--INI--
apcdb.apcu_compat=1
--FILE--
<?php
// $a is a reference (taken by `&$a`) to an array that contains that same reference: the value
// stored is the array itself, and the recursion shows one level down.
$a = [1];
$a[] = &$a;
$b = ['x' => 1];
$b['self'] = &$b;
$r = &$b;

apcu_store('k', $a);
echo serialize(apcu_fetch('k')), "\n";
var_dump(apcu_fetch('k'));
apcu_store(['m' => $a]);
echo serialize(apcu_fetch('m')), "\n";
apcu_store('b', $b);
echo serialize(apcu_fetch('b')), "\n";
apcu_store('r', $r);
echo serialize(apcu_fetch('r')), "\n";
apcu_store(['rr' => &$b]);
echo serialize(apcu_fetch('rr')), "\n";
apcu_add('added', $r);
echo serialize(apcu_fetch('added')), "\n";
echo serialize(apcu_entry('e', function () use (&$b) { return $b; })), "\n";
echo serialize(apcu_fetch('e')), "\n";
echo serialize(apcu_fetch(['k'])), "\n";
foreach (new APCUIterator('/^k$/') as $item) echo serialize($item['value']), "\n";
$o = new stdClass;
$o->a = [1];
$o->a[] = &$o->a;
apcu_store('o', $o);
echo serialize(apcu_fetch('o')), "\n";
// The fetched copy is independent of the original.
$f = apcu_fetch('k');
$f[1][0] = 99;
echo serialize($f), "\n", serialize(apcu_fetch('k')), "\n";

?>
--EXPECT--
a:2:{i:0;i:1;i:1;a:2:{i:0;i:1;i:1;R:3;}}
array(2) {
  [0]=>
  int(1)
  [1]=>
  &array(2) {
    [0]=>
    int(1)
    [1]=>
    *RECURSION*
  }
}
a:2:{i:0;i:1;i:1;a:2:{i:0;i:1;i:1;R:3;}}
a:2:{s:1:"x";i:1;s:4:"self";a:2:{s:1:"x";i:1;s:4:"self";R:3;}}
a:2:{s:1:"x";i:1;s:4:"self";a:2:{s:1:"x";i:1;s:4:"self";R:3;}}
a:2:{s:1:"x";i:1;s:4:"self";a:2:{s:1:"x";i:1;s:4:"self";R:3;}}
a:2:{s:1:"x";i:1;s:4:"self";a:2:{s:1:"x";i:1;s:4:"self";R:3;}}
a:2:{s:1:"x";i:1;s:4:"self";a:2:{s:1:"x";i:1;s:4:"self";R:3;}}
a:2:{s:1:"x";i:1;s:4:"self";a:2:{s:1:"x";i:1;s:4:"self";R:3;}}
a:1:{s:1:"k";a:2:{i:0;i:1;i:1;a:2:{i:0;i:1;i:1;R:4;}}}
a:2:{i:0;i:1;i:1;a:2:{i:0;i:1;i:1;R:3;}}
O:8:"stdClass":1:{s:1:"a";a:2:{i:0;i:1;i:1;R:2;}}
a:2:{i:0;i:1;i:1;a:2:{i:0;i:99;i:1;R:3;}}
a:2:{i:0;i:1;i:1;a:2:{i:0;i:1;i:1;R:3;}}
