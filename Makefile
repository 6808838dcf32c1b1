# Every target installs what it needs first, so `make run` and `make test` work on a fresh Debian 12
# machine with Rust (as root: the tests mount a small tmpfs, chown files and start php-fpm).
SHELL := /bin/bash
PHP_PACKAGES := php8.2-cli php8.2-dev php8.2-fpm libclang-dev clang php8.2-apcu php8.2-sqlite3

.PHONY: setup run test test-rust test-php test-harness build php-ext bench bench-php
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

# Every test: Rust (unit, model, multi-process, crash, safety, harness), then the .phpt suite,
# then short runs of the kill -9 harness and the power-cut simulator.
test: setup test-rust test-php test-harness

test-rust:
	cargo test --workspace --release

php-ext: setup
	cargo build --release -p apcdb-php

test-php: setup
	php-binding/run-phpt.sh

test-harness: build
	target/release/apcdb crash-test --duration 20s --workers 4 --durability sync --seed 1
	target/release/apcdb crash-test --duration 15s --workers 4 --durability none --seed 2
	target/release/apcdb powercut --images 1500 --durability sync --seed 1
	target/release/apcdb powercut --images 800 --durability none --seed 2

bench: build
	cargo run --release -p apcdb-bench

bench-php: php-ext
	php -n php-binding/bench.php
