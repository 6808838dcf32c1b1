--TEST--
Compact native array form (SPEC §10, tag 9): stored bytes damaged at random (truncated, a byte changed, a byte inserted) read back as a warning and false or as some array, never a crash, a hang or a leak into later values
--SKIPIF--
<?php
if (!is_executable(dirname(getenv('APCDB_EXT')) . '/apcdb')) die('skip the apcdb tool is not built (cargo build --release -p apcdb-recovery)');
?>
--INI--
apcdb.durability=none
--FILE--
<?php
require __DIR__ . '/helpers.inc';
require dirname(__DIR__, 2) . '/bench/php/values.inc';
$tool = dirname(getenv('APCDB_EXT')) . '/apcdb';
$src = apcdb_tmp('damaged-src');
$dst = apcdb_tmp('damaged-dst');

// Valid tag-9 values of every shape, written by the extension, then read as raw bytes.
echo apcdb_run(['apcdb.file' => $src], 'require ' . var_export(dirname(__DIR__, 2) . '/bench/php/values.inc', true) . ';
    apc_store("big", value_of("nested", 3));
    apc_store("row", value_of("array", 5));
    apc_store("list", [1, -1, PHP_INT_MIN, PHP_INT_MAX, 1.5, "x", str_repeat("y", 300), null, true, false, [], [[]]]);
    apc_store("keys", [PHP_INT_MIN => 1, PHP_INT_MAX => 2, -7 => [3 => 4], "a" => ["a" => ["a" => "a"]], "" => ""]);');
$lines = [];
exec(escapeshellarg($tool) . ' dump ' . escapeshellarg($src) . ' 2>/dev/null', $lines);
$good = [];
foreach ($lines as $l) {
    $j = json_decode($l, true);
    $good[base64_decode($j['key'])] = base64_decode($j['value']);
}
ksort($good);
echo implode(',', array_keys($good)), ': ', implode(',', array_map(fn($v) => ord($v[0]), $good)), "\n";

// 400 damaged copies, the same every run.
mt_srand(11);
$out = '';
for ($i = 0; $i < 400; $i++) {
    $v = $good[array_keys($good)[$i % 4]];
    $at = mt_rand(1, strlen($v) - 1);
    $v = match ($i % 3) {
        0 => substr($v, 0, $at),
        1 => substr_replace($v, chr(mt_rand(0, 255)), $at, 1),
        2 => substr_replace($v, chr(mt_rand(0, 255)), $at, 0),
    };
    $out .= json_encode(['key' => base64_encode("d$i"), 'value' => base64_encode($v), 'expires_at_ms' => 0]) . "\n";
}
$p = proc_open([$tool, 'load', $dst], [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
fwrite($pipes[0], $out);
fclose($pipes[0]);
echo stream_get_contents($pipes[1]);
fclose($pipes[1]);
proc_close($p);

// Every damaged value: a warning and false, or an array (a change that still decodes), and a
// good value stored and read after each one comes back whole.
echo apcdb_run(['apcdb.file' => $dst, 'memory_limit' => '64M'], '
    set_error_handler(function ($no, $msg) { global $warned; $warned++; return true; });
    $warned = 0; $false = 0; $arrays = 0; $other = 0; $bad = 0;
    $check = ["k" => [1, "two", ["three" => 3.0]], "l" => [null]];
    for ($i = 0; $i < 400; $i++) {
        $v = apc_fetch("d$i", $ok);
        if ($v === false && !$ok) $false++; elseif (is_array($v)) $arrays++; else $other++;
        apc_store("check", $check);
        if (apc_fetch("check") !== $check) $bad++;
    }
    echo "false $false (warnings $warned), arrays $arrays, other $other, good values changed $bad\n";
    var_dump($false + $arrays === 400 && $warned === $false && $false > 200);
', $rc);
echo "exit $rc\n";
?>
--EXPECTF--
big,keys,list,row: 9,9,9,9
loaded 400 entries (0 already expired, skipped)
false %d (warnings %d), arrays %d, other 0, good values changed 0
bool(true)
exit 0
