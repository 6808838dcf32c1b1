--TEST--
By-reference $success respects typed properties (issue 11 item 5): PHP's TypeError, not a bool written into an array property
--DESCRIPTION--
Expected output confirmed against APCu 5.1 (php -n -d extension=apcu.so -d apc.enable_cli=1) for the
apcu_* lines: the TypeError is thrown, the property keeps its value, and apcu_inc/apcu_dec still
change the counter. One deliberate difference: on a miss into a `string` property APCu on PHP 8.2
leaves "1", because that PHP's ZEND_TRY_ASSIGN_REF_BOOL macro passes true to the typed assignment
whatever the value; apcdb assigns the real `false` (coerced to "").
--INI--
apcdb.apcu_compat=1
--FILE--
<?php
class Holder {
    public array $arr = [];
    public ?bool $flag = null;
    public int $num = 7;
    public string $str = 's';
}
$h = new Holder;
function attempt(string $label, callable $f): void {
    try {
        $r = var_export($f(), true);
        echo "$label: $r\n";
    } catch (Throwable $e) {
        echo "$label: ", get_class($e), ": ", $e->getMessage(), "\n";
    }
}
apcu_store('k', 1);
attempt('apcu_fetch', fn() => apcu_fetch('k', $h->arr));
attempt('apcu_fetch many', fn() => apcu_fetch(['k'], $h->arr));
attempt('apcu_inc', fn() => apcu_inc('k', 1, $h->arr));
var_dump(apcu_fetch('k'));
attempt('apcu_dec', fn() => apcu_dec('k', 5, $h->arr));
var_dump(apcu_fetch('k'));
attempt('apc_fetch', fn() => apc_fetch('k', $h->arr));
attempt('apc_inc', fn() => apc_inc('k', 1, $h->arr));
var_dump($h->arr);
// A type that accepts a bool gets it; int and string properties get the coerced value (weak mode).
attempt('?bool', fn() => apcu_fetch('k', $h->flag));
var_dump($h->flag);
attempt('int', fn() => apcu_fetch('k', $h->num));
var_dump($h->num);
attempt('string miss', fn() => apcu_fetch('missing', $h->str));
var_dump($h->str);
// A plain variable still gets a bool.
$plain = [];
var_dump(apcu_fetch('missing', $plain), $plain);
?>
--EXPECT--
apcu_fetch: TypeError: Cannot assign bool to reference held by property Holder::$arr of type array
apcu_fetch many: TypeError: Cannot assign bool to reference held by property Holder::$arr of type array
apcu_inc: TypeError: Cannot assign bool to reference held by property Holder::$arr of type array
int(2)
apcu_dec: TypeError: Cannot assign bool to reference held by property Holder::$arr of type array
int(-3)
apc_fetch: TypeError: Cannot assign bool to reference held by property Holder::$arr of type array
apc_inc: TypeError: Cannot assign bool to reference held by property Holder::$arr of type array
array(0) {
}
?bool: -2
bool(true)
int: -2
int(1)
string miss: false
string(0) ""
bool(false)
bool(false)
