--TEST--
Native array encoding (SPEC §10, tag 9): arrays of plain values are stored in apcdb's compact form and come back identical; arrays holding objects or references still go through serialize()
--INI--
apcdb.durability=none
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_pool('native');

$deep = 'leaf';
for ($i = 0; $i < 100; $i++) $deep = [$deep]; // deeper than the native form goes
$holes = [1, 2, 3, 4];
unset($holes[1]);
$code = <<<'PHP'
$o = new stdClass; $o->a = 1;
$r = [1, 2]; $r[2] = &$r[0];
$cases = [
    'empty' => [], 'list' => [1, 2, 3],
    'int keys' => [-5 => 'a', PHP_INT_MIN => 'b', PHP_INT_MAX => 'c', 7 => PHP_INT_MIN],
    'floats' => [-0.0, INF, -INF, 1.5, 0.1, 1e300],
    'binary' => ["a\0b" => "x\0y", '' => '', 'é' => "\xff"],
    'nested' => ['a' => ['b' => ['c' => [null, true, false]]], 'd' => [[], [[]]]],
    'mixed keys' => [0 => 'a', 'k' => 'b', 5 => 'c', '05' => 'd'],
    'big string' => [str_repeat('z', 70000)],
    'object inside' => ['x' => $o], 'reference inside' => $r,
];
// A foreach by reference leaves the last element a reference that nothing else holds once $v is
// gone: written as a plain value (native form), as serialize() does.
$fe = [1, [2, 3]];
foreach ($fe as &$v) {}
unset($v);
$cases['foreach by reference'] = $fe;
// The same in an array that is in the value twice: serialize() writes values there too.
$t = 5;
$x = [0];
$x[0] = &$t;
unset($t);
$cases['shared array'] = [$x, $x];
PHP;
$check = $code . '
$cases["holes"] = unserialize(' . var_export(serialize($holes), true) . ');
$cases["deep"] = unserialize(' . var_export(serialize($deep), true) . ');
foreach ($cases as $name => $v) {
    $got = apc_fetch($name, $ok);
    printf("%-16s %s\n", $name, $ok && serialize($got) === serialize($v) && $got == $v ? "same" : "DIFFERENT");
}
';
// Written by one process, read by another.
echo apcdb_run(['apcdb.file' => $db, 'apcdb.durability' => 'none'], $code . '
$cases["holes"] = unserialize(' . var_export(serialize($holes), true) . ');
$cases["deep"] = unserialize(' . var_export(serialize($deep), true) . ');
foreach ($cases as $name => $v) apc_store($name, $v);');
echo apcdb_run(['apcdb.file' => $db, 'apcdb.durability' => 'none'], $check);
echo apcdb_run(['apcdb.file' => $db, 'apcdb.durability' => 'none'], '
$f = apc_fetch("floats"); var_dump(fdiv(1, $f[0]) < 0);            // -0.0 kept
$h = apc_fetch("holes"); $h[] = 9; var_dump(array_key_last($h));  // next free key kept
$l = apc_fetch("list"); var_dump(array_is_list($l));
$r = apc_fetch("reference inside"); $r[0] = "changed"; var_dump($r[2]); // the reference kept
apc_store("nan", [NAN]); var_dump(is_nan(apc_fetch("nan")[0]));
');

// The bytes in the data file, or of the values on tests/redis/run.sh's server (the same encoding):
// the documented native form for plain arrays, serialize() output for an array with an object inside.
if (str_contains($db, '://')) {
    require_once __DIR__ . '/redis.inc';
    $port = (int) parse_url($db, PHP_URL_PORT);
    $file = '';
    foreach (['list', 'nested', 'foreach by reference', 'object inside'] as $k) {
        $file .= apcdb_redis_cmd($port, ['GET', "apcdb:$k"]) . "\n";
    }
} else {
    $file = file_get_contents($db);
}
// Tag 9: varint headers; a list's values without keys (count 3: 3 << 1 | 1), ints zigzagged.
$list = "\x09" . "\x07" . "\x03\x02" . "\x03\x04" . "\x03\x06";
echo "list in native form: ", var_export(str_contains($file, $list), true), "\n";
// The string key 'c' (length 1 << 2), then the list [null, true, false].
$nested = "\x04" . 'c' . "\x09" . "\x07" . "\x00\x02\x01";
echo "nested array in native form: ", var_export(str_contains($file, $nested), true), "\n";
$fe = "\x09" . "\x05" . "\x03\x02" . "\x09" . "\x05" . "\x03\x04" . "\x03\x06";
echo "foreach by reference in native form: ", var_export(str_contains($file, $fe), true), "\n";
echo "object inside as serialize(): ", var_export(str_contains($file, "\x06" . 'a:1:{s:1:"x";O:8:"stdClass":1:{s:1:"a";i:1;}}'), true), "\n";
?>
--EXPECT--
empty            same
list             same
int keys         same
floats           same
binary           same
nested           same
mixed keys       same
big string       same
object inside    same
reference inside same
foreach by reference same
shared array     same
holes            same
deep             same
bool(true)
int(4)
bool(true)
string(7) "changed"
bool(true)
list in native form: true
nested array in native form: true
foreach by reference in native form: true
object inside as serialize(): true
