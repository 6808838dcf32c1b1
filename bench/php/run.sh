#!/usr/bin/env bash
# Runs the PHP benchmark: apc_* (apcdb, each durability mode) vs APCu, dba/lmdb and pdo_sqlite.
#
#   bench/php/run.sh [--smoke] [--rounds R] [--ms MS] [--keys K] [--out FILE] [--only ID,ID]
#
# Installs what the comparison needs on Debian (php8.2-cli, -apcu, -dba, -sqlite3) when missing,
# builds the apcdb extension if it is not built yet, then hands its arguments to bench.php.
# Set APCDB_EXT=/path/to/libapcdb.so to benchmark an extension built elsewhere.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

need=()
for p in php8.2-cli php8.2-apcu php8.2-dba php8.2-sqlite3; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "installing: ${need[*]}" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
    else
        echo "missing packages (install them to compare against them): ${need[*]}" >&2
    fi
fi

ext="${APCDB_EXT:-${CARGO_TARGET_DIR:-$root/target}/release/libapcdb.so}"
if [ ! -f "$ext" ] && [ -z "${APCDB_EXT:-}" ]; then
    # Best effort: without the extension bench.php still runs the other stores and says why
    # apcdb's rows are missing.
    echo "building the apcdb extension (cargo build --release -p apcdb-php)" >&2
    (cd "$root" && cargo build --release -p apcdb-php >&2) || echo "extension build failed; apcdb rows will be skipped" >&2
fi

exec php "$here/bench.php" --ext "$ext" "$@"
