#!/usr/bin/env bash
# Builds the apcdb PHP extension and runs the .phpt suite in tests/php with PHP's run-tests.php.
# Prints a final plain line "N passed, N failed" and exits non-zero if any test failed.
#
#   php-binding/run-phpt.sh            # release build, all tests
#   php-binding/run-phpt.sh tests/php/013_durable_across_processes.phpt
#
# Environment: PHP (the php binary, default: php on PATH), PHPT_JOBS (parallel workers, default 2),
# CARGO_PROFILE (release|dev, default release), PHPT_INI (extra space-separated key=value INI
# settings for every test, e.g. "apcdb.file=redis://127.0.0.1:6379/0": tests/redis/run.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PHP=${PHP:-$(command -v php)}
PROFILE=${CARGO_PROFILE:-release}
JOBS=${PHPT_JOBS:-2}

if [ "$PROFILE" = release ]; then
    cargo build --release -p apcdb-php || { echo "0 passed, 1 failed"; exit 1; }
    EXT=${CARGO_TARGET_DIR:-$ROOT/target}/release/libapcdb.so
else
    cargo build -p apcdb-php || { echo "0 passed, 1 failed"; exit 1; }
    EXT=${CARGO_TARGET_DIR:-$ROOT/target}/debug/libapcdb.so
fi

EXTDIR=$("$PHP" -n -r 'echo PHP_EXTENSION_DIR;')
RUN_TESTS=${RUN_TESTS:-$EXTDIR/build/run-tests.php}
[ -f "$RUN_TESTS" ] || RUN_TESTS=$(ls /usr/lib/php/*/build/run-tests.php 2>/dev/null | head -1)
if [ ! -f "$RUN_TESTS" ]; then
    echo "run-tests.php not found (install php8.2-dev)"; echo "0 passed, 1 failed"; exit 1
fi

# The tests start further php processes themselves; they find the extension through these.
export APCDB_EXT=$EXT TEST_PHP_EXECUTABLE=$PHP NO_INTERACTION=1 REPORT_EXIT_STATUS=1
LOG=$(mktemp /tmp/apcdb-phpt.XXXXXX)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(tests/php)

INI_ARGS=()
for kv in ${PHPT_INI:-}; do INI_ARGS+=(-d "$kv"); done

# -n: no php.ini (so a system-wide APCu is not loaded unless a test asks for it).
"$PHP" -n "$RUN_TESTS" -n -p "$PHP" -d "extension=$EXT" "${INI_ARGS[@]}" -q --no-color --show-diff -j"$JOBS" \
    "${TARGETS[@]}" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}

passed=$(sed -n 's/^Tests passed *: *\([0-9]*\).*/\1/p' "$LOG" | tail -1)
failed=$(sed -n 's/^Tests failed *: *\([0-9]*\).*/\1/p' "$LOG" | tail -1)
skipped=$(sed -n 's/^Tests skipped *: *\([0-9]*\).*/\1/p' "$LOG" | tail -1)
borked=$(sed -n 's/^Tests borked *: *\([0-9]*\).*/\1/p' "$LOG" | tail -1)
warned=$(sed -n 's/^Tests warned *: *\([0-9]*\).*/\1/p' "$LOG" | tail -1)
passed=${passed:-0}; failed=${failed:-0}; skipped=${skipped:-0}; borked=${borked:-0}; warned=${warned:-0}
failed=$((failed + borked + warned))
rm -f "$LOG"
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "phpt: ${passed} passed, ${failed} failed, ${skipped} skipped"
if [ "$failed" -ne 0 ] || [ "$status" -ne 0 ]; then exit 1; fi
exit 0
