#!/usr/bin/env bash
# Several CLI processes storing into one apcdb file at once (BENCHMARKS.md, PHP, "PHP, several
# processes"): besides the wall time per store, what each store costs the machine, from
# `perf stat` of every process (its threads included: the checkpoint thread's work counts):
# CPU time, and `madvise`, `futex` calls, context switches and page faults per store. On a busy
# machine the wall time follows the load; the CPU time and the counts much less.
#
#   bench/php/multi_store.sh EXT.so TYPE PROCESSES [MS=1500]    (TYPE: int, string, array, nested)
set -euo pipefail
ext=$1 type=$2 procs=$3 ms=${4:-1500}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir=$(mktemp -d /var/tmp/apcdb-multi-XXXXXX)
trap 'rm -rf "$dir"' EXIT
for i in $(seq "$procs"); do
    perf stat -x, -o "$dir/perf.$i" \
        -e task-clock,context-switches,page-faults,syscalls:sys_enter_futex,syscalls:sys_enter_madvise \
        php -n -d extension="$ext" -d apcdb.file="$dir/s.db" -d apcdb.durability=none \
        -d apcdb.size=64M "$here/multi_store.php" "$type" "$ms" "$dir/go" > "$dir/out.$i" &
done
until [ "$(find "$dir" -name 'go.ready.*' | wc -l)" -ge "$procs" ]; do sleep 0.05; done
touch "$dir/go"
wait
stores=$(cat "$dir"/out.* | awk '{n += $2} END {print n}')
wall=$(cat "$dir"/out.* | awk '{ns += $1; k++} END {printf "%.2f", ns / k / 1000}')
cat "$dir"/perf.* | awk -F, -v n="$stores" -v wall="$wall" -v t="$type" -v p="$procs" -v e="$(basename "$ext")" '
    $3 ~ /task-clock/ {cpu += $1} $3 ~ /context-switches/ {cs += $1} $3 ~ /page-faults/ {pf += $1}
    $3 ~ /futex/ {fx += $1} $3 ~ /madvise/ {ma += $1}
    END {printf "%s %s x%d: wall %s us/store, CPU %.2f us/store; per store: madvise %.3f, futex %.4f, context switches %.4f, page faults %.3f (%d stores)\n",
        e, t, p, wall, cpu * 1000 / n, ma / n, fx / n, cs / n, pf / n, n}'
