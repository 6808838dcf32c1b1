--TEST--
apc_store/apc_fetch: every PHP value type round-trips; references and object identity inside one value are kept
--FILE--
<?php
class Point { public $x = 1; protected $y = 2; private $z = 3; public $self; }
class Custom {
    public $data;
    public function __construct($d) { $this->data = $d; }
    public function __serialize(): array { return ['d' => strtoupper($this->data)]; }
    public function __unserialize(array $a): void { $this->data = $a['d'] . '!'; }
}
$values = [
    'null' => null, 'false' => false, 'true' => true,
    'int' => 42, 'negint' => -7, 'maxint' => PHP_INT_MAX, 'minint' => PHP_INT_MIN,
    'float' => 3.25, 'negzero' => -0.0, 'inf' => INF,
    'empty' => '', 'string' => 'hello', 'binary' => "a\0b\xff\x00",
    'array' => [1, 'two' => 2.0, 'nested' => ['deep' => [true, null]], "bin\0key" => 'v', -5 => 'neg'],
    'emptyarray' => [],
];
foreach ($values as $k => $v) {
    if (apc_store($k, $v) !== true) echo "store $k failed\n";
}
foreach ($values as $k => $v) {
    $got = apc_fetch($k, $ok);
    if ($got !== $v || $ok !== true) { echo "mismatch for $k: "; var_dump($got, $ok); }
}
var_dump(is_nan(apc_store('nan', NAN) ? apc_fetch('nan') : 0));
var_dump(fdiv(1, apc_fetch('negzero')));

// Objects, with identity and references inside one value.
$p = new Point; $p->self = $p;
$shared = new stdClass; $shared->n = 1;
$arr = ['a' => 1]; $arr['b'] = &$arr['a'];
var_dump(apc_store('graph', [$p, $shared, $shared, $arr]));
$g = apc_fetch('graph');
var_dump($g[0] instanceof Point, $g[0]->self === $g[0], $g[1] === $g[2]);
$g[3]['b'] = 99;
var_dump($g[3]['a']);
$g[1]->n = 5;
var_dump(apc_fetch('graph')[1]->n); // the stored copy is not changed by the fetched one
var_dump(apc_store('custom', new Custom('abc')));
var_dump(apc_fetch('custom')->data);

// Missing keys.
var_dump(apc_fetch('missing', $ok), $ok);
// Array form: only found keys, in the order asked; $success is true.
$r = apc_fetch(['int', 'missing', 'string', 'binary'], $ok);
$r['binary'] = bin2hex($r['binary']);
var_dump($r, $ok);
// Overwrite.
apc_store('int', 'now a string');
var_dump(apc_fetch('int'));
// Binary-safe keys.
var_dump(apc_store("k\0ey", 1), apc_fetch("k\0ey"), apc_fetch('k'));
// A key that is neither a string nor an array is refused (as by APCu); apc_fetch converts it.
var_dump(apc_store(123, 'numeric'));
apc_store('123', 'numeric');
var_dump(apc_fetch(123));
// Array form of store returns the keys that failed: none.
var_dump(apc_store(['m1' => 1, 'm2' => [2], 7 => 'seven']));
var_dump(apc_fetch(['m1', 'm2', '7']));
?>
--EXPECTF--
bool(true)
float(-INF)
bool(true)
bool(true)
bool(true)
bool(true)
int(99)
int(1)
bool(true)
string(4) "ABC!"
bool(false)
bool(false)
array(3) {
  ["int"]=>
  int(42)
  ["string"]=>
  string(5) "hello"
  ["binary"]=>
  string(10) "610062ff00"
}
bool(true)
string(12) "now a string"
bool(true)
int(1)
bool(false)

Warning: apc_store(): apc_store expects key parameter to be a string or an array of key/value pairs. in %s on line %d
bool(false)
string(7) "numeric"
array(0) {
}
array(3) {
  ["m1"]=>
  int(1)
  ["m2"]=>
  array(1) {
    [0]=>
    int(2)
  }
  [7]=>
  string(5) "seven"
}
