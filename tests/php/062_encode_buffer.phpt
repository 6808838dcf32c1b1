--TEST--
Values are encoded into a buffer kept between stores (SPEC §10): every type and every key/string length comes back exactly, in the documented native bytes, whatever was encoded before it; arrays too big for the buffer count against memory_limit
--INI--
apcdb.durability=none
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_pool('encbuf');
$ini = ['apcdb.file' => $db, 'apcdb.durability' => 'none', 'apcdb.size' => '256M'];

// The values, in the order they are stored: each one is encoded into the buffer the one before
// left behind (bigger, smaller, full of other bytes), so a byte of an earlier value that leaked
// into a later one, a length written short, or a buffer that grew wrong shows as a difference.
$values = <<<'PHP'
$o = new stdClass; $o->a = [1, 2];
$v = [];
foreach ([0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 100] as $n) {
    $s = substr(str_repeat("abcdefghijklmnopqrstuvwxyz0123456789", 4), 0, $n);
    $v["key of $n"] = [$s => $s, 'x' => $s, $n => [$s]];
    $v["string of $n"] = $s;
}
$v += [
    'null' => null, 'false' => false, 'true' => true, 'int' => PHP_INT_MIN, 'float' => -1.5,
    // Around the 256 bytes a scalar is encoded into on the stack (tag + string).
    'string of 254' => str_repeat('p', 254), 'string of 255' => str_repeat('q', 255),
    'string of 256' => str_repeat('r', 256), 'int after' => PHP_INT_MAX, 'empty string' => '',
    'empty array' => [],
    'mixed' => [null, false, true, 0, -1, PHP_INT_MAX, 0.1, INF, "a\0b", [[]], 'k' => ['l' => 'm']],
    // Around the kept buffer's 64 KiB limit: the encoder wants 32 bytes of room beyond the
    // encoding, which is 1 (tag) + 1 (list of one) + 1 (string tag) + 3 (length) + n bytes.
    'just under the buffer' => [str_repeat('u', 65536 - 38)],
    'just over the buffer' => [str_repeat('o', 65536 - 37)],
    // Int keys and ints at the varint and zigzag edges, in a hash (keys written).
    'int edges' => [PHP_INT_MIN => PHP_INT_MIN, PHP_INT_MAX => PHP_INT_MAX, -1 => -1, 63 => 63,
        64 => 64, -64 => -64, -65 => -65, 8191 => 8191, 8192 => 8192, (1 << 61) - 1 => 1 << 61,
        -(1 << 61) => -(1 << 61), 1 << 61 => (1 << 61) - 1, -(1 << 61) - 1 => -(1 << 62)],
    // Rows sharing their keys: written once, referred to afterwards (the first 64 of a value).
    'rows' => [['id' => 1, 'name' => 'a', 'tags' => ['x' => 1]], ['id' => 2, 'name' => 'b', 'tags' => ['x' => 2]],
        'id' => ['name' => ['id' => 'name']]],
    'rows past 64 keys' => (function () {
        $names = [];
        for ($i = 0; $i < 80; $i++) $names[] = "field$i";
        $rows = [];
        for ($r = 0; $r < 3; $r++) foreach ($names as $j => $n) $rows["row$r"][$n] = $r * 100 + $j;
        return $rows;
    })(),
    'string edges' => ['' => '', str_repeat('k', 31) => str_repeat('s', 127),
        str_repeat('k', 32) => str_repeat('s', 128), str_repeat('k', 4096) => str_repeat('s', 16383),
        str_repeat('l', 4095) => str_repeat('s', 16384)],
    'small after big' => [1],
    // Bigger than the buffer holds so far, with an object after the point where it ran out: the
    // whole value goes to serialize().
    'object past the buffer' => array_merge(array_fill(0, 5000, 'filler'), [$o]),
    'reference' => (function () { $a = [1]; $a[1] = &$a[0]; return $a; })(),
    'object' => $o,
    'huge' => array_fill(0, 20000, str_repeat('h', 50)),
    'small after huge' => ['s' => 's'],
];
PHP;

$out = apcdb_run($ini, $values . '
    foreach ($v as $k => $x) {
        if (!apc_store($k, $x)) echo "store of $k failed\n";
        // Read back at once too: the same process, right after its own store.
        if (serialize(apc_fetch($k)) !== serialize($x)) echo "$k differs in the storing process\n";
    }
    // The same again in reverse order: each value now follows a different one.
    foreach (array_reverse($v, true) as $k => $x) apc_store("again $k", $x);
    echo "stored ", count($v), "\n";
');
echo $out;
echo apcdb_run($ini, $values . '
    $bad = 0;
    foreach ($v as $k => $x) {
        foreach ([$k, "again $k"] as $key) {
            $got = apc_fetch($key, $ok);
            if (!$ok || serialize($got) !== serialize($x)) { echo "$key differs\n"; $bad++; }
        }
    }
    echo $bad === 0 ? "all the same in another process\n" : "";
');

// The bytes in the store: SPEC §10's native form, written here from the spec, for the arrays of
// every key and string length.
if (!str_contains($db, '://')) {
    // LEB128 of a 64-bit pattern taken as unsigned (a zigzagged PHP_INT_MIN is all ones).
    function varint(int $n): string {
        $s = '';
        while (($n & ~0x7f) !== 0) {
            $s .= chr(($n & 0x7f) | 0x80);
            $n = ($n >> 7) & ((1 << 57) - 1);
        }
        return $s . chr($n);
    }
    function zigzag(int $n): int { return ($n << 1) ^ ($n >> 63); }
    // The string keys of nested arrays written in full in the value so far, numbered (the first
    // 64): later uses of an equal key in a nested array are written as references.
    $GLOBALS['keys'] = [];
    function native($v, int $depth = -1): string {
        return match (true) {
            $v === null => "\x00", $v === false => "\x01", $v === true => "\x02",
            is_int($v) => "\x03" . varint(zigzag($v)), is_float($v) => "\x04" . pack('e', $v),
            is_string($v) => "\x05" . varint(strlen($v)) . $v,
            is_array($v) => "\x09" . body($v, $depth + 1),
        };
    }
    function body(array $a, int $depth = 0): string {
        // These arrays are lists exactly when PHP holds them packed (literals).
        $list = array_is_list($a);
        $b = varint(count($a) << 1 | (int) $list);
        foreach ($a as $k => $x) {
            if ($list) {
                // no key
            } elseif (is_string($k) && $depth > 0 && isset($GLOBALS['keys'][$k])) {
                $b .= varint($GLOBALS['keys'][$k] << 2 | 3);
            } elseif (is_string($k)) {
                $b .= varint(strlen($k) << 2) . $k;
                if ($depth > 0 && count($GLOBALS['keys']) < 64) $GLOBALS['keys'][$k] = count($GLOBALS['keys']);
            } elseif ((zigzag($k) >> 62 & 3) === 0) {
                $b .= varint(zigzag($k) << 2 | 1);
            } else {
                $b .= "\x02" . pack('P', $k);
            }
            $b .= native($x, $depth);
        }
        return $b;
    }
    eval($values);
    $file = file_get_contents($db);
    $missing = [];
    foreach ($v as $k => $x) {
        $GLOBALS['keys'] = [];
        if ((str_starts_with($k, 'key of') || str_ends_with($k, ' edges') || str_starts_with($k, 'rows'))
            && !str_contains($file, native($x))) $missing[] = $k;
    }
    echo $missing ? "not in native form: " . implode(', ', $missing) . "\n" : "native bytes as specified\n";
} else {
    echo "native bytes as specified\n";
}

// A native array too big for the kept buffer is encoded in PHP's memory, so memory_limit stops
// it with PHP's own error (the array shares one string: it is small, its encoding is 20 MB).
echo apcdb_run($ini + ['memory_limit' => '16M'], '
    $a = array_fill(0, 2000, str_repeat("m", 10000));
    var_dump(apc_store("too big", $a));
', $rc);
echo "exit $rc\n";
?>
--EXPECTF--
stored 52
all the same in another process
native bytes as specified
%AFatal error: Allowed memory size of 16777216 bytes exhausted%A
exit 255
