# Every target installs what it needs first, so `make run` and `make test` work on a fresh Debian 12
# machine with Rust (as root: the tests mount a small tmpfs, chown files and start php-fpm).
SHELL := /bin/bash
PHP_PACKAGES := php8.2-cli php8.2-dev php8.2-fpm libclang-dev clang php8.2-apcu php8.2-igbinary php8.2-sqlite3 php8.2-dba valgrind chromium php8.2-gd redis-server

.PHONY: setup build run test lint test-rust test-php test-crash php-ext bench bench-smoke \
	install uninstall test-install deb test-deb test-status test-redis
PREFIX ?= /usr/local
DESTDIR ?=
PHP_CONFIG ?= php-config
setup:
	@missing=""; for p in $(PHP_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: setup
	cargo build --release --workspace

# The main job: the Rust store in every durability mode, then PHP processes sharing a durable
# cache across a kill -9.
run: build
	cargo run --release -p apcdb --example demo
	php-binding/demo.sh

# Every test: the lint gate, Rust (unit, model, multi-process, crash, safety, harness tests), the .phpt suite (and the part of it that applies to the Redis backend),
# the status page in headless Chromium,
# short runs of the kill -9 harness, the power-cut simulator and the corruption fuzzer, `make
# install` staged and the .deb installed and purged, and the benchmarks in smoke mode (they assert
# no timings).
test: setup lint test-rust test-php test-redis test-status test-crash test-install test-deb bench-smoke

# Zero warnings: clippy (which includes every rustc warning) on every target, denied; rustfmt; and
# the metadata of every publishable crate.
lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --release -- -D warnings
	cargo metadata --format-version 1 --no-deps | php packaging/check-metadata.php

# The extension first: the PHP crash-test among the Rust tests runs it (and skips when it is
# missing), so it must be this tree's build, never a stale one.
test-rust: setup php-ext
	cargo test --workspace --release

php-ext: setup
	cargo build --release -p apcdb-php

test-php: setup
	php-binding/run-phpt.sh

# The Redis backend (apcdb.file=redis://...): the .phpt files that apply to it run against a
# redis-server of their own (tests/redis/run.sh; phpt 081-089 and 090-099 run in test-php and start their own).
test-redis: setup
	tests/redis/run.sh
	cargo build --release -p apcdb-recovery -p apcdb-php
	target/release/apcdb crash-test --php --redis --duration 10s --seed 9

# The status page (php-binding/status/) served by `php -S`: its protection over HTTP, then Debian's
# Chromium in headless mode takes a screenshot, reads the DOM and deletes and clears by clicking.
test-status: setup
	cargo build --release -p apcdb-php -p apcdb-recovery
	tests/status/run.sh

test-crash: setup
	cargo build --release -p apcdb-recovery -p apcdb-php
	target/release/apcdb crash-test --duration 15s --durability sync --seed 1
	target/release/apcdb crash-test --duration 10s --durability periodic --seed 2
	target/release/apcdb crash-test --duration 10s --durability none --max-size 1500000 --seed 3
	target/release/apcdb crash-test --duration 10s --php --seed 4
	target/release/apcdb crash-test --duration 10s --php --evict --max-size 2000000 --seed 8
	target/release/apcdb powercut --images 3000 --durability sync --seed 5
	target/release/apcdb powercut --images 1500 --durability none --seed 6
	target/release/apcdb fuzz --iterations 300 --seed 7

# The extension (with an ini file enabled for every SAPI of the PHP that php-config names) and the
# `apcdb` tool; PREFIX and DESTDIR as usual. packaging/install.sh says how.
install: setup
	cargo build --release -p apcdb-php -p apcdb-recovery
	PHP_CONFIG="$(PHP_CONFIG)" PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" packaging/install.sh

uninstall:
	PHP_CONFIG="$(PHP_CONFIG)" PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" packaging/install.sh --uninstall

# `make install` into a scratch DESTDIR: every file where php-config says, an ini link in every
# SAPI's conf.d, and the staged extension loads.
test-install: setup
	@set -euo pipefail; d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; \
	$(MAKE) --no-print-directory install DESTDIR="$$d" PREFIX=/usr/local; \
	ext="$$d$$($(PHP_CONFIG) --extension-dir)/apcdb.so"; test -f "$$ext"; \
	test -x "$$d/usr/local/bin/apcdb"; "$$d/usr/local/bin/apcdb" --version; \
	test -f "$$d/usr/local/share/apcdb/status/index.php"; \
	confd=$$(dirname "$$($(PHP_CONFIG) --ini-dir)"); root=$$(dirname "$$confd"); \
	for s in "$$root"/*/conf.d; do \
		if [ -d "$$root/mods-available" ]; then test -L "$$d$$s/20-apcdb.ini" || { echo "no ini for $$s"; exit 1; }; fi; \
	done; \
	info=$$(php -n -d extension="$$ext" --ri apcdb); grep -q 'apcdb support => enabled' <<<"$$info"; \
	echo "test-install: passed"

# A .deb of the extension and the tool (target/debian/), built with cargo-deb.
deb: setup
	@case "$$($(PHP_CONFIG) --extension-dir)" in */20220829) ;; \
		*) echo "deb: the package is for PHP 8.2 (API 20220829); $(PHP_CONFIG) names another PHP"; exit 2;; esac
	command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
	cargo build --release -p apcdb-php -p apcdb-recovery
	rm -f target/debian/*.deb
	cargo deb -p apcdb-php --no-build

# Installs the .deb on this machine, checks PHP loads it and the tool runs, then purges it.
test-deb: deb
	@set -euo pipefail; \
	if dpkg -s php8.2-apcdb >/dev/null 2>&1; then echo "test-deb: php8.2-apcdb is already installed; not touching it"; exit 1; fi; \
	trap 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq php8.2-apcdb >/dev/null' EXIT; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ./target/debian/*.deb; \
	info=$$(php --ri apcdb); grep -q 'apcdb support => enabled' <<<"$$info"; echo "$$info" | head -4; \
	test -L /etc/php/8.2/cli/conf.d/20-apcdb.ini; \
	test -f /usr/share/apcdb/status/index.php; \
	/usr/bin/apcdb --version; \
	DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq php8.2-apcdb; trap - EXIT; \
	mods=$$(php -m); ! grep -qx apcdb <<<"$$mods"; test ! -e /etc/php/8.2/cli/conf.d/20-apcdb.ini; test ! -e /usr/share/apcdb/status/index.php; \
	echo "test-deb: passed"

bench: setup
	cargo run --release -p apcdb-bench -- --out bench-results.md
	bash bench/php/run.sh --out bench-php-results.md

bench-smoke: setup
	cargo run --release -p apcdb-bench -- --smoke
	bash bench/php/run.sh --smoke
