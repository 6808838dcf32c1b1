--TEST--
apc_inc, apc_dec (APC semantics: a missing key fails) and apc_cas
--FILE--
<?php
var_dump(apc_inc('n', 1, $ok), $ok);        // missing: false
var_dump(apc_exists('n'));
apc_store('n', 10);
var_dump(apc_inc('n'), apc_inc('n', 5, $ok), $ok);
var_dump(apc_dec('n'), apc_dec('n', 20, $ok), $ok);
var_dump(apc_fetch('n'));
apc_store('s', 'text');
apc_store('f', 1.5);
var_dump(apc_inc('s', 1, $ok), $ok, apc_inc('f'), apc_fetch('s'));
apc_store('big', PHP_INT_MAX);
var_dump(apc_inc('big') === PHP_INT_MIN);   // wraps like APCu
// TTL of the entry is kept by inc.
apc_store('t', 1, 100);
apc_inc('t');
var_dump(apc_key_info('t')['ttl']);
// cas: only an int equal to $old is replaced.
apc_store('c', 1);
var_dump(apc_cas('c', 1, 2), apc_cas('c', 1, 3), apc_fetch('c'));
var_dump(apc_cas('missing', 0, 1), apc_cas('s', 0, 1));
// Numeric-string arguments are coerced, as by PHP for int parameters.
var_dump(apc_inc('c', '3'));
?>
--EXPECT--
bool(false)
bool(false)
bool(false)
int(11)
int(16)
bool(true)
int(15)
int(-5)
bool(true)
int(-5)
bool(false)
bool(false)
bool(false)
string(4) "text"
bool(true)
int(100)
bool(true)
bool(false)
int(2)
bool(false)
bool(false)
int(5)
