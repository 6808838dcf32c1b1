#!/usr/bin/env bash
# Interleaved before/after comparison (BENCHMARKS.md, PHP, "Before and after, interleaved"):
# for each round, each value type runs loop.php with the old extension, the new one and APCu,
# one after the other, so that a busy machine slows all three alike; then medians over rounds.
#
#   bench/php/interleaved.sh OLD.so NEW.so [rounds=5] [types="int str list nested"]
#
# durability=none rows (the fastest mode, what a cache user would pick) for every type; the
# default durability (sync) for int and 100-byte string, with 2,000 stores per pass.
set -euo pipefail
old=$1 new=$2 rounds=${3:-5} types=${4:-"int str list nested"}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run_apc() { # label ext durability type stores
    rm -f "$tmp"/s.db*
    php -n -d extension="$2" -d apcdb.file="$tmp/s.db" -d apcdb.durability="$3" -d apcdb.size=64M \
        "$here/loop.php" apc "$4" "$5" | sed "s/^apc /$1 /"
}
for r in $(seq "$rounds"); do
    for t in $types; do
        run_apc old-none "$old" none "$t" 100000
        run_apc new-none "$new" none "$t" 100000
        php -n -d extension=apcu -d apc.enable_cli=1 "$here/loop.php" apcu "$t" 100000
    done
    for t in int str; do
        run_apc old-sync "$old" sync "$t" 2000
        run_apc new-sync "$new" sync "$t" 2000
    done
done | tee "$tmp/out" >&2
# Medians per (configuration, type) of every column.
php -r '
$rows = [];
foreach (file($argv[1]) as $l) {
    $f = preg_split("/\s+/", trim($l));
    $k = $f[0] . " " . $f[1];
    // "store N cpu N fetch N cpu N ...": each cpu column is named after the one before it.
    for ($i = 2, $prev = ""; $i + 1 < count($f); $i += 2) {
        $c = $f[$i] === "cpu" ? "$prev-cpu" : $f[$i];
        $prev = $f[$i];
        $rows[$k][$c][] = (float)$f[$i + 1];
    }
}
function med($a) { sort($a); $n = count($a); return $n % 2 ? $a[intdiv($n, 2)] : ($a[$n / 2 - 1] + $a[$n / 2]) / 2; }
ksort($rows);
foreach ($rows as $k => $cols) {
    echo $k; $n = 0;
    foreach ($cols as $c => $v) { $n = count($v); printf(" %s %.0f", $c, med($v)); }
    echo " (n=$n)\n";
}' "$tmp/out"
