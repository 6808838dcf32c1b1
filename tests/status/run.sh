#!/usr/bin/env bash
# `make test-status`: the status page (php-binding/status/) served by `php -S` with the extension,
# checked over HTTP and in Debian's headless Chromium (tests/status/status_test.php says what).
# Needs the release builds of the extension and the tool, chromium and php8.2-gd (`make setup`).
set -euo pipefail
cd "$(dirname "$0")/../.."
T=${CARGO_TARGET_DIR:-$PWD/target}/release
PHP=${PHP:-php}
CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
[ -n "$CHROMIUM" ] || { echo "test-status: chromium is not installed (make setup installs it)"; echo "0 passed, 1 failed"; exit 1; }
# php -n: no php.ini, so only what the test names is loaded; gd reads the screenshot.
gd=()
"$PHP" -n -r 'exit(function_exists("imagecreatefrompng") ? 0 : 1);' || gd=(-d extension=gd)
exec "$PHP" -n "${gd[@]}" tests/status/status_test.php "$T/libapcdb.so" "$T/apcdb" "$CHROMIUM" php-binding/status
