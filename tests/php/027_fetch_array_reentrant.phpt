--TEST--
apc_fetch(array): a __wakeup that frees a key passed by reference does not change the result (keys are copied first)
--FILE--
<?php
// The key bytes were borrowed from the PHP string while unserialize() ran
// user code; freeing that string and reusing its memory changed the key of the result.
class W {
    public $n = 1;
    public function __wakeup(): void {
        // Free the string the caller's key array refers to, then reuse memory of its size.
        $GLOBALS['k'] = 0;
        $GLOBALS['spray'] = [];
        for ($i = 0; $i < 64; $i++) {
            $GLOBALS['spray'][] = str_repeat(chr(65 + $i % 26), 40);
        }
    }
}
$key = str_repeat('k', 40);
apc_store($key, [new W]);
apc_store('plain', 'p');

$k = str_repeat('k', 40); // built at run time: not an interned string
$r = apc_fetch([&$k, 'plain'], $ok);
var_dump($ok, array_keys($r) === [$key, 'plain'], $r[$key][0] instanceof W, $r['plain']);

// The same with the reference as the only key and the success flag as the freed variable.
$k = str_repeat('k', 40);
$ok = str_repeat('s', 40);
$r = apc_fetch([&$k], $ok);
var_dump($ok, array_keys($r) === [$key]);

// apc_exists/apc_delete with an array: an error handler run by a warning cannot change the keys
// already taken.
$k2 = str_repeat('x', 40);
set_error_handler(function ($no, $msg) {
    $GLOBALS['k2'] = 0;
    $GLOBALS['spray'] = [];
    for ($i = 0; $i < 64; $i++) {
        $GLOBALS['spray'][] = str_repeat('B', 40);
    }
    echo "handler: $msg\n";
    return true;
});
apc_store(str_repeat('x', 40), 1);
var_dump(array_keys(apc_exists([1.5, &$k2])) === [str_repeat('x', 40)]);
$k2 = str_repeat('x', 40);
var_dump(apc_delete([1.5, &$k2]), apc_exists(str_repeat('x', 40)));
restore_error_handler();
?>
--EXPECT--
bool(true)
bool(true)
bool(true)
string(1) "p"
bool(true)
bool(true)
handler: apc_exists(): apc_exists() expects a string or array of strings.
bool(true)
handler: apc_delete(): apc_delete() expects a string, array of strings, or APCIterator instance
array(1) {
  [0]=>
  float(1.5)
}
bool(false)
