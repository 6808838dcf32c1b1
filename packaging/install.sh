#!/usr/bin/env bash
# `make install`: the extension into the local PHP's extension directory with an ini file enabled
# for every SAPI (cli, fpm, apache2, ...), and the `apcdb` tool into PREFIX/bin. Everything is read
# from php-config, so it follows whichever PHP that is. DESTDIR stages the files (for packagers):
# then the conf.d links are made by hand instead of with phpenmod, which only works on /.
#
#   PHP_CONFIG=php-config PREFIX=/usr/local DESTDIR= packaging/install.sh
#   packaging/install.sh --uninstall
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-$PWD/target}/release
PHP_CONFIG=${PHP_CONFIG:-php-config}
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
command -v "$PHP_CONFIG" >/dev/null || { echo "install: $PHP_CONFIG not found (install the php-dev package)" >&2; exit 2; }
extdir=$("$PHP_CONFIG" --extension-dir)
# The scan directory of the SAPI php-config was built for, e.g. /etc/php/8.2/cli/conf.d. On Debian's
# layout its grandparent holds mods-available/ and one <sapi>/conf.d/ per installed SAPI.
inidir=$("$PHP_CONFIG" --ini-dir)
verdir=$(dirname "$(dirname "$inidir")")
debian=no
[ -d "$verdir/mods-available" ] && debian=yes

if [ "${1:-}" = --uninstall ]; then
    if [ $debian = yes ] && [ -z "$DESTDIR" ] && command -v phpdismod >/dev/null; then
        phpdismod -v "$(basename "$verdir")" -s ALL apcdb || true
    fi
    rm -fv "$DESTDIR$extdir/apcdb.so" "$DESTDIR$PREFIX/bin/apcdb" \
        "$DESTDIR$PREFIX/share/apcdb/apcdb.stub.php" "$DESTDIR$PREFIX/share/apcdb/status/index.php" "$DESTDIR$verdir/mods-available/apcdb.ini" \
        "$DESTDIR$inidir/apcdb.ini" "$DESTDIR$verdir"/*/conf.d/20-apcdb.ini
    rmdir "$DESTDIR$PREFIX/share/apcdb/status" 2>/dev/null || true
    exit 0
fi

for f in "$T/libapcdb.so" "$T/apcdb"; do
    [ -f "$f" ] || { echo "install: $f is missing; run: cargo build --release -p apcdb-php -p apcdb-recovery" >&2; exit 2; }
done
install -D -m 0644 "$T/libapcdb.so" "$DESTDIR$extdir/apcdb.so"
install -D -m 0755 "$T/apcdb" "$DESTDIR$PREFIX/bin/apcdb"
install -D -m 0644 php-binding/apcdb.stub.php "$DESTDIR$PREFIX/share/apcdb/apcdb.stub.php"
# The status page (README "Status page"): served only where a web server is pointed at it.
install -D -m 0644 php-binding/status/index.php "$DESTDIR$PREFIX/share/apcdb/status/index.php"
echo "installed $DESTDIR$extdir/apcdb.so, $DESTDIR$PREFIX/bin/apcdb"

if [ $debian = no ]; then
    # Another layout: the one scan directory php-config knows.
    install -D -m 0644 packaging/apcdb.ini "$DESTDIR$inidir/apcdb.ini"
    echo "enabled in $DESTDIR$inidir/apcdb.ini"
    exit 0
fi
install -D -m 0644 packaging/apcdb.ini "$DESTDIR$verdir/mods-available/apcdb.ini"
if [ -z "$DESTDIR" ] && command -v phpenmod >/dev/null; then
    phpenmod -v "$(basename "$verdir")" -s ALL apcdb
else
    for confd in "$verdir"/*/conf.d; do
        mkdir -p "$DESTDIR$confd"
        ln -sfn "$verdir/mods-available/apcdb.ini" "$DESTDIR$confd/20-apcdb.ini"
    done
fi
for confd in "$DESTDIR$verdir"/*/conf.d; do
    if [ -L "$confd/20-apcdb.ini" ]; then echo "enabled in $confd/20-apcdb.ini"; fi
done
