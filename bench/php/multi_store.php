<?php
// One of the processes of bench/php/multi_store.sh: stores values of one type under 1,000 keys,
// says it is ready (a file), waits for the common start, stores for MS milliseconds and prints
// "<ns per store> <stores>".
//
//   php ... multi_store.php TYPE MS GO_FILE        (TYPE: int, string, array, nested)

declare(strict_types=1);

[$type, $ms, $go] = [$argv[1], (int)$argv[2], $argv[3]];
$keys = 1000;

require __DIR__ . '/values.inc';

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
