#!/usr/bin/env bash
# The PHP side of `make run`: durable APC storage across php processes and a kill -9.
set -euo pipefail
cd "$(dirname "$0")/.."
EXT=$PWD/target/release/libapcdb.so
DIR=$(mktemp -d /tmp/apcdb-php-demo.XXXXXX)
trap 'rm -rf "$DIR"' EXIT

php() { command php -n -d "extension=$EXT" -d "apcdb.file=$DIR/site.db" "$@"; }

echo "== one php process stores, the next one fetches"
php -r 'apc_store("greeting", "hello from an earlier process"); apc_store("config", ["db" => "x", "ttl" => 60]);'
php -r 'var_dump(apc_fetch("greeting"), apc_fetch("config"));'

echo "== a php process incrementing a counter is killed with SIGKILL"
command php -n -d "extension=$EXT" -d "apcdb.file=$DIR/site.db" -r 'for (;;) { $n = apc_inc("hits") ?: (apc_add("hits", 1) ? 1 : apc_inc("hits")); file_put_contents("'"$DIR"'/last", $n); }' &
pid=$!
sleep 1
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
echo "last acknowledged increment: $(cat "$DIR/last")"
php -r 'echo "counter after the kill:      ", apc_fetch("hits"), "\n";'

echo "== the phpinfo() section"
php --ri apcdb
