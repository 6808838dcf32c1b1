--TEST--
TTL: 0 = forever, wall-clock seconds, an entry lives between ttl and ttl+1 seconds; negative = expired
--FILE--
<?php
// Start just after a second boundary so that the checks below do not straddle one.
$t = microtime(true);
usleep((int)((ceil($t) - $t) * 1e6) + 20000);
var_dump(apc_store('one', 'v', 1), apc_store('forever', 'v', 0), apc_store('long', 'v', 3600));
var_dump(apc_add('added', 'v', 1));
usleep(900000);                     // 0.9 s: younger than ttl
var_dump(apc_fetch('one'), apc_exists('added'));
usleep(1300000);                    // 2.2 s: older than ttl + 1
var_dump(apc_fetch('one'), apc_exists('added'), apc_fetch('forever'), apc_fetch('long'));
var_dump(apc_key_info('forever')['ttl'], apc_key_info('long')['ttl'], apc_key_info('one'));
// An expired key can be added again.
var_dump(apc_add('one', 'again'), apc_fetch('one'));
// A negative TTL stores an entry that is already expired.
var_dump(apc_store('neg', 'v', -5), apc_exists('neg'));
// apc_inc keeps the expiry of the entry.
apc_store('cnt', 1, 1);
apc_inc('cnt');
usleep(2100000);
var_dump(apc_fetch('cnt'));
// TTL through the array form.
apc_store(['x' => 1, 'y' => 2], null, 3600);
var_dump(apc_key_info('x')['ttl'], apc_key_info('y')['ttl']);
?>
--EXPECT--
bool(true)
bool(true)
bool(true)
bool(true)
string(1) "v"
bool(true)
bool(false)
bool(false)
string(1) "v"
string(1) "v"
int(0)
int(3600)
NULL
bool(true)
string(5) "again"
bool(true)
bool(false)
bool(false)
int(3600)
int(3600)
