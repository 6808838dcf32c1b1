<?php
// One of the processes of bench/php/multi_store.sh: stores values of one type under 1,000 keys,
// says it is ready (a file), waits for the common start, stores for MS milliseconds and prints
// "<ns per store> <stores>".
//
//   php ... multi_store.php TYPE MS GO_FILE        (TYPE: int, string, array, nested)

declare(strict_types=1);

[$type, $ms, $go] = [$argv[1], (int)$argv[2], $argv[3]];
$keys = 1000;

/** The same values as bench.php's value types. */
function value_of(string $type, int $i)
{
    $row = fn(int $id, int $r) => [
        'id' => $id, 'name' => "item-$i-$r", 'price' => $r * 1.5, 'ok' => ($r % 2) === 0,
        'tags' => "t$r", 'a' => $r, 'b' => $i, 'c' => 'x', 'd' => null, 'e' => -$r,
    ];
    switch ($type) {
        case 'int':
            return $i;
        case 'string':
            return str_repeat(chr(65 + $i % 26), 100);
        case 'array':
            return $row($i, $i % 10);
        default:
            $rows = [];
            for ($r = 0; $r < 10; $r++) {
                $rows["row$r"] = $row($i * 10 + $r, $r);
            }
            return $rows;
    }
}

$names = [];
for ($i = 0; $i < $keys; $i++) {
    $names[] = "bench:$type:$i";
    apc_store($names[$i], value_of($type, $i));
}
$vals = [];
for ($i = 0; $i < 64; $i++) {
    $vals[] = value_of($type, $i);
}
touch("$go.ready." . getmypid());
while (!file_exists($go)) {
    usleep(500);
    clearstatcache();
}
$n = 0;
$start = hrtime(true);
$deadline = $start + $ms * 1000000;
do {
    for ($j = 0; $j < 64; $j++) {
        apc_store($names[mt_rand(0, $keys - 1)], $vals[$j]);
    }
    $n += 64;
    $now = hrtime(true);
} while ($now < $deadline);
printf("%.0f %d\n", ($now - $start) / $n, $n);
