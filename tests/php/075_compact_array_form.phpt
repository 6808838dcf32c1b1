--TEST--
Compact native array form (SPEC §10, tag 9): arrays written by an earlier build in the first native form (tag 8) still read back; damaged tag-9 bytes give a warning and false, never a crash; lists and hashes with list-like keys keep their keys and next free key
--SKIPIF--
<?php
if (!is_executable(dirname(getenv('APCDB_EXT')) . '/apcdb')) die('skip the apcdb tool is not built (cargo build --release -p apcdb-recovery)');
?>
--INI--
apcdb.durability=none
--FILE--
<?php
require __DIR__ . '/helpers.inc';
$db = apcdb_tmp('compact');
$ini = ['apcdb.file' => $db, 'apcdb.durability' => 'none'];
$tool = dirname(getenv('APCDB_EXT')) . '/apcdb';

// Raw stored values, put in with `apcdb load` (the bytes a store holds, as SPEC §10 gives them).
$le32 = fn(int $n) => pack('V', $n);
$le64 = fn(int $n) => pack('P', $n);
$raw = [
    // The first native form, as builds before the compact one wrote ['a' => [1, 'x'], 7 => 2.5]:
    // u32 count, then 1 + u32 length + bytes of a string key or 0 + i64 of an int key, each value
    // tagged as at the top level (a string with a u32 length).
    'tag 8' => "\x08" . $le32(2) . "\x01" . $le32(1) . 'a' . "\x08" . $le32(2) . "\x00" . $le64(0)
        . "\x03" . $le64(1) . "\x00" . $le64(1) . "\x05" . $le32(1) . 'x' . "\x00" . $le64(7)
        . "\x04" . pack('e', 2.5),
    // The same value in the compact form, for comparison: hash of 2, 'a' => list [1, 'x'],
    // 7 => 2.5 (zigzag 14, key kind 1: 14 << 2 | 1 = 57).
    'tag 9' => "\x09\x04" . "\x04a" . "\x09\x05\x03\x02\x05\x01x" . "\x39" . "\x04" . pack('e', 2.5),
    // A long int key (kind 2) and a 10-byte varint (zigzag of PHP_INT_MIN: all ones).
    'tag 9 long key' => "\x09\x02" . "\x02" . $le64(PHP_INT_MIN) . "\x03" . str_repeat("\xff", 9) . "\x01",
    // Key references: ['r1' => ['id' => 1], 'r2' => ['id' => 2]]: the keys of nested arrays are
    // numbered ('id' 0; the outer 'r1' and 'r2' are not), the second 'id' is reference 0 (0 << 2 | 3).
    'tag 9 key refs' => "\x09\x04" . "\x08r1" . "\x09\x02\x08id\x03\x02" . "\x08r2" . "\x09\x02\x03\x03\x04",
    // Damaged forms.
    'truncated' => "\x09\x04" . "\x04a" . "\x09\x05\x03\x02\x05\x01",
    'trailing byte' => "\x09\x03\x00\x00",
    'count past the end' => "\x09\x15\x00",
    'key ref past the keys' => "\x09\x04" . "\x04a\x00" . "\x07\x00",
    'kind 2 with bits' => "\x09\x02\x06" . $le64(1) . "\x00",
    'varint too long' => "\x09\x03\x03" . str_repeat("\xff", 10) . "\x01",
    'varint 10th byte' => "\x09\x03\x03" . str_repeat("\xff", 9) . "\x02",
    'string past the end' => "\x09\x03\x05\x7f" . 'abc',
    'unknown value tag' => "\x09\x03\x0a",
    'too deep' => "\x09" . str_repeat("\x03\x09", 70) . "\x00",
    'list cut mid-way' => "\x09\x07\x05\x01a\x05\x01b",
];
$lines = '';
foreach ($raw as $k => $v) {
    $lines .= json_encode(['key' => base64_encode($k), 'value' => base64_encode($v), 'expires_at_ms' => 0]) . "\n";
}
$p = proc_open([$tool, 'load', $db], [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
fwrite($pipes[0], $lines);
fclose($pipes[0]);
echo stream_get_contents($pipes[1]);
fclose($pipes[1]);
echo "load exit ", proc_close($p), "\n";

echo apcdb_run($ini, '
    foreach (["tag 8", "tag 9"] as $k) {
        $v = apc_fetch($k, $ok);
        echo "$k: ", var_export($ok, true), " ", serialize($v), "\n";
    }
    var_dump(apc_fetch("tag 8") === apc_fetch("tag 9"));
    var_dump(apc_fetch("tag 9 long key") === [PHP_INT_MIN => PHP_INT_MIN]);
    var_dump(apc_fetch("tag 9 key refs") === ["r1" => ["id" => 1], "r2" => ["id" => 2]]);
    foreach (["truncated", "trailing byte", "count past the end", "key ref past the keys", "kind 2 with bits",
              "varint too long", "varint 10th byte", "string past the end", "unknown value tag",
              "too deep", "list cut mid-way"] as $k) {
        $v = apc_fetch($k, $ok);
        echo "$k: ", var_export($v, true), " ", var_export($ok, true), "\n";
    }
    // A value read after the damaged ones is whole: nothing leaked into it.
    var_dump(apc_fetch("tag 9") === ["a" => [1, "x"], 7 => 2.5]);
');

// Lists (written without keys) against arrays that only look like lists.
echo apcdb_run($ini, '
    $holes = [1, 2, 3, 4]; unset($holes[1]);             // packed with a hole: keys written
    $tail = [1, 2, 3]; unset($tail[2]);                  // packed, keys 0 and 1, a hole at the end
    $hash = ["x" => 0]; unset($hash["x"]); $hash[] = "a"; $hash[] = "b"; // a hash with keys 0, 1
    $rev = [1 => "b", 0 => "a"];                          // list keys out of order
    $big = range(0, 99999);                               // a list past the kept buffer
    foreach (compact("holes", "tail", "hash", "rev", "big") as $k => $v) {
        apc_store($k, $v);
        $g = apc_fetch($k);
        $s = unserialize(serialize($v));
        // The next free key is the one unserialize(serialize()) gives (for $tail: 2, not 3).
        $g[] = "next"; $s[] = "next";
        echo "$k: ", $g === $s ? "same" : "DIFFERENT", " ", array_key_last($g), "\n";
    }
');
?>
--EXPECTF--
loaded 15 entries (0 already expired, skipped)
load exit 0
tag 8: true a:2:{s:1:"a";a:2:{i:0;i:1;i:1;s:1:"x";}i:7;d:2.5;}
tag 9: true a:2:{s:1:"a";a:2:{i:0;i:1;i:1;s:1:"x";}i:7;d:2.5;}
bool(true)
bool(true)
bool(true)

Warning: apc_fetch(): apcdb: cannot decode the value of this key: the stored array is damaged in Command line code on line %d
truncated: false false

Warning: apc_fetch(): apcdb: cannot decode the value of this key: the stored array is damaged in Command line code on line %d
trailing byte: false false

Warning: apc_fetch(): apcdb: cannot decode the value of this key: the stored array is damaged in Command line code on line %d
count past the end: false false

Warning: apc_fetch(): apcdb: cannot decode the value of this key: the stored array is damaged in Command line code on line %d
key ref past the keys: false false

Warning: apc_fetch(): apcdb: cannot decode the value of this key: the stored array is damaged in Command line code on line %d
kind 2 with bits: false false

Warning: apc_fetch(): apcdb: cannot decode the value of this key: the stored array is damaged in Command line code on line %d
varint too long: false false

Warning: apc_fetch(): apcdb: cannot decode the value of this key: the stored array is damaged in Command line code on line %d
varint 10th byte: false false

Warning: apc_fetch(): apcdb: cannot decode the value of this key: the stored array is damaged in Command line code on line %d
string past the end: false false

Warning: apc_fetch(): apcdb: cannot decode the value of this key: the stored array is damaged in Command line code on line %d
unknown value tag: false false

Warning: apc_fetch(): apcdb: cannot decode the value of this key: the stored array is damaged in Command line code on line %d
too deep: false false

Warning: apc_fetch(): apcdb: cannot decode the value of this key: the stored array is damaged in Command line code on line %d
list cut mid-way: false false
bool(true)
holes: same 4
tail: same 2
hash: same 2
rev: same 2
big: same 100000
