# Every target installs what it needs first, so `make run` and `make test` work on a fresh Debian 12
# machine with Rust (as root: the tests mount a small tmpfs, chown files and start php-fpm).
SHELL := /bin/bash
PHP_PACKAGES := php8.2-cli php8.2-dev php8.2-fpm libclang-dev clang php8.2-apcu php8.2-igbinary php8.2-sqlite3 php8.2-dba valgrind

.PHONY: setup build run test lint test-rust test-php test-crash php-ext bench bench-smoke
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

# Every test: the lint gate, Rust (unit, model, multi-process, crash, safety, harness tests), the .phpt suite,
# short runs of the kill -9 harness, the power-cut simulator and the corruption fuzzer, and the
# benchmarks in smoke mode (they assert no timings).
test: setup lint test-rust test-php test-crash bench-smoke

# Zero warnings: clippy (which includes every rustc warning) on every target, denied; rustfmt; and
# the metadata of every publishable crate.
lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --release -- -D warnings
	cargo metadata --format-version 1 --no-deps | php packaging/check-metadata.php

test-rust: setup
	cargo test --workspace --release

php-ext: setup
	cargo build --release -p apcdb-php

test-php: setup
	php-binding/run-phpt.sh

test-crash: setup
	cargo build --release -p apcdb-recovery -p apcdb-php
	target/release/apcdb crash-test --duration 15s --durability sync --seed 1
	target/release/apcdb crash-test --duration 10s --durability periodic --seed 2
	target/release/apcdb crash-test --duration 10s --durability none --max-size 1500000 --seed 3
	target/release/apcdb crash-test --duration 10s --php --seed 4
	target/release/apcdb powercut --images 3000 --durability sync --seed 5
	target/release/apcdb powercut --images 1500 --durability none --seed 6
	target/release/apcdb fuzz --iterations 300 --seed 7

bench: setup
	cargo run --release -p apcdb-bench -- --out bench-results.md
	bash bench/php/run.sh --out bench-php-results.md

bench-smoke: setup
	cargo run --release -p apcdb-bench -- --smoke
	bash bench/php/run.sh --smoke
