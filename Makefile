# Every target installs what it needs first, so `make run` and `make test` work on a fresh Debian 12
# machine with Rust.
SHELL := /bin/bash
PHP_PACKAGES := php8.2-cli php8.2-dev libclang-dev clang php8.2-apcu php8.2-sqlite3

.PHONY: setup run test test-rust
setup:
	@missing=""; for p in $(PHP_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

run: setup
	cargo run --release -p apcdb --example demo

test: setup test-rust

test-rust:
	cargo test --workspace --release
