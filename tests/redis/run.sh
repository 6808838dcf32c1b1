#!/usr/bin/env bash
# Runs the .phpt files of tests/php that apply to the Redis backend against a real redis-server
# (Debian's package, installed by `make setup`; append-only file fsynced at every write, as
# apcdb.durability=sync asks): each with `apcdb.file=redis://127.0.0.1:PORT/0` instead of the
# anonymous store (also for the php processes a test starts through helpers.inc), one at a time
# on an emptied database (the tests expect an empty cache, as the anonymous store of a fresh php
# process is). Prints "N passed, N failed".
#
#   tests/redis/run.sh                # the list below
#   tests/redis/run.sh tests/php/003_add.phpt
set -uo pipefail
cd "$(dirname "$0")/../.."

# Every .phpt of tests/php that does not depend on local-file behaviour. Each must also send the
# server at least one command (checked below), so that none passes on a store of its own.
TESTS=(
    tests/php/002_store_fetch_types.phpt
    tests/php/003_add.phpt
    tests/php/004_exists_delete.phpt
    tests/php/005_inc_dec_cas.phpt
    tests/php/006_entry.phpt
    tests/php/009_iterator.phpt
    tests/php/010_errors.phpt
    tests/php/011_strict_types.phpt
    tests/php/012_apcu_compat.phpt
    tests/php/013_beside_apcu.phpt
    tests/php/014_durable_across_processes.phpt
    tests/php/015_sigkill_inc.phpt
    tests/php/016_separate_files.phpt
    tests/php/020_concurrent.phpt
    tests/php/023_ini_phpinfo.phpt
    tests/php/025_bailout_in_entry.phpt
    tests/php/027_fetch_array_reentrant.phpt
    tests/php/030_valgrind_reentrant.phpt
    tests/php/035_fork_in_entry_generator.phpt
    tests/php/046_iterator_errors.phpt
    tests/php/047_success_typed_property.phpt
    tests/php/048_nested_unserialize.phpt
    tests/php/049_outermost_value.phpt
    tests/php/051_apcu_preload_path.phpt
    tests/php/052_igbinary_serializer.phpt
    tests/php/055_native_array_encoding.phpt
    tests/php/070_entry_generator_uses_cache.phpt
    tests/php/071_entry_stampede_only_same_key.phpt
    tests/php/072_entry_holder_killed.phpt
    tests/php/073_fpm_entry_stampede.phpt
    tests/php/080_scan_many_entries.phpt
)
# Tests whose processes share one store take it from helpers.inc's apcdb_pool() (or
# apcdb_pool_ini() for several), which returns this script's pool from APCDB_PHPT_INI.
# Not run here, and why (the 09x tests check the Redis side of most of these with servers of
# their own, in make test-php):
#   001         expects apcdb.file empty and the local store's phpinfo() rows (095: the Redis rows).
#   007 008     the TTL and mtime as written, and memory_type "mmap": a server keeps no write time
#   028 031     (its TTL counts down) and iterates in SCAN order, not write order (094 checks the
#               server's order and fields).
#   021 039     the anonymous store shared with forked children (092: a fork on a server).
#   050 074     apcdb.size / apc.shm_size, apcdb.when_full: ignored on a server (SPEC §10).
#   053         apcdb_stats()'s counters of a file (hits, inserts, journal; 084: a server's).
#   054         uses no store at all (the stub against reflection).
#   017 018 045 store files' owner, unopenable paths, a truncated file.
#   019 029     apcdb.size: a full store, a 512M file's mapping against memory_limit.
#   022         apcdb.reset_on_start (the file's generation; ignored on a server).
#   024         the file's durability modes (journal sync timing; 096 checks a server's).
#   036         an unopenable store file's warning, re-entered from an error handler.
#   040 057 058 a poisoned mapping (a file gone under the process), a file resized at or after open.
#   026 037 038 065: php-fpm pools each with a store file (or the anonymous store) of its own, its
#               owner and permissions, and the status page's file statistics.
[ $# -gt 0 ] && TESTS=("$@")

command -v redis-server >/dev/null || { echo "redis-server is not installed (make setup)"; echo "0 passed, 1 failed"; exit 1; }
cargo build --release -p apcdb-php || { echo "0 passed, 1 failed"; exit 1; }

dir=$(mktemp -d /tmp/apcdb-redis-suite.XXXXXX)
port=$(php -n -r '$s = stream_socket_server("tcp://127.0.0.1:0"); echo substr(strrchr(stream_socket_get_name($s, false), ":"), 1);')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync always --dir "$dir" --daemonize no \
    --logfile "$dir/log" &
server=$!
trap 'kill -9 $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done

# Commands a test sent to the server, other than this script's own (FLUSHALL, CONFIG RESETSTAT,
# INFO, PING): a test that passes without sending any ran on something else (e.g. a store file
# of its own), and proves nothing about the Redis backend.
used() {
    redis-cli -p "$port" info commandstats |
        grep -E '^cmdstat_' | grep -vE '^cmdstat_(info|flushall|ping|config\|resetstat):' | grep -c .
}

passed=0; failed=0
for t in "${TESTS[@]}"; do
    redis-cli -p "$port" flushall >/dev/null
    redis-cli -p "$port" config resetstat >/dev/null
    case "$t" in
        # These read apc_key_info()'s ttl right after the write: on a server it counts down (no
        # write time is kept there), so start them just after a second begins.
        *005_*|*006_*|*009_*|*012_*) php -r 'usleep((int) ((1 - fmod(microtime(true), 1)) * 1e6) + 5000);' ;;
    esac
    # A generous timeout: a server fsyncing every write, or a client under valgrind, on a busy
    # machine is slow, not wrong (phpt 091 tests the timeout).
    ini="apcdb.file=redis://127.0.0.1:$port/0 apcdb.redis_timeout=10"
    if APCDB_PHPT_INI="$ini" PHPT_JOBS=1 PHPT_INI="$ini" php-binding/run-phpt.sh "$t" >"$dir/out" 2>&1; then
        if [ "$(used)" -eq 0 ]; then
            failed=$((failed + 1)); echo "FAIL (redis) $t: passed without sending the server a command"
        else
            passed=$((passed + 1)); echo "PASS (redis) $t"
        fi
    else
        failed=$((failed + 1)); echo "FAIL (redis) $t"; cat "$dir/out"
    fi
done
echo "redis: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
