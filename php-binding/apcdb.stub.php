<?php
/**
 * Signatures of the apcdb PHP extension, for IDEs and static analysers (never loaded by PHP).
 * The contract is SPEC.md §10; tests/php/054_stub_matches_reflection.phpt keeps this file equal
 * to what the extension registers (parameter names, types, by-reference, defaults).
 *
 * The apcu_* functions and APCUIterator exist only with apcdb.apcu_compat=1.
 */

const APC_ITER_TYPE = 1;
const APC_ITER_KEY = 2;
const APC_ITER_VALUE = 4;
const APC_ITER_NUM_HITS = 8;
const APC_ITER_MTIME = 16;
const APC_ITER_CTIME = 32;
const APC_ITER_DTIME = 64;
const APC_ITER_ATIME = 128;
const APC_ITER_REFCOUNT = 256;
const APC_ITER_MEM_SIZE = 512;
const APC_ITER_TTL = 1024;
const APC_ITER_NONE = 0;
const APC_ITER_ALL = 4294967295;
const APC_LIST_ACTIVE = 1;
const APC_LIST_DELETED = 2;

/**
 * @param string|array<string, mixed> $key a key, or an array of key => value
 * @return bool|array<string, int> for an array: the keys that failed, each => -1
 */
function apc_store(mixed $key, mixed $value = null, int $ttl = 0): bool|array {}

/** As apc_store(), only where the key is absent or expired. */
function apc_add(mixed $key, mixed $value = null, int $ttl = 0): bool|array {}

/** @param string|string[] $key */
function apc_fetch(mixed $key, mixed &$success = null): mixed {}

/** @param string|string[] $key */
function apc_exists(mixed $key): bool|array {}

/** @param string|string[]|APCIterator $key */
function apc_delete(mixed $key): bool|array {}

function apc_inc(string $key, int $step = 1, mixed &$success = null): int|false {}

function apc_dec(string $key, int $step = 1, mixed &$success = null): int|false {}

function apc_cas(string $key, int $old, int $new): bool {}

/** Calls $callback($key) under the store's write lock on a miss and stores its result. */
function apc_entry(string $key, callable $callback, int $ttl = 0): mixed {}

function apc_clear_cache(string $cache_type = ''): bool {}

/** @return array<string, mixed>|false */
function apc_cache_info(string $cache_type = '', bool $limited = false): array|false {}

/** @return array<string, mixed>|false */
function apc_sma_info(bool $limited = false): array|false {}

/** @return array<string, int>|null|false */
function apc_key_info(string $key): array|null|false {}

function apc_enabled(): bool {}

/**
 * The store's counters under the names of `apcdb stats --json`; false when there is no store.
 * @return array<string, int>|false
 */
function apcdb_stats(): array|false {}

function apcu_store(mixed $key, mixed $value = null, int $ttl = 0): bool|array {}

function apcu_add(mixed $key, mixed $value = null, int $ttl = 0): bool|array {}

function apcu_fetch(mixed $key, mixed &$success = null): mixed {}

function apcu_exists(mixed $key): bool|array {}

function apcu_delete(mixed $key): bool|array {}

/** Creates a missing key with $step and $ttl. */
function apcu_inc(string $key, int $step = 1, mixed &$success = null, int $ttl = 0): int|false {}

/** Creates a missing key with -$step and $ttl. */
function apcu_dec(string $key, int $step = 1, mixed &$success = null, int $ttl = 0): int|false {}

function apcu_cas(string $key, int $old, int $new): bool {}

function apcu_entry(string $key, callable $callback, int $ttl = 0): mixed {}

function apcu_clear_cache(): bool {}

/** @return array<string, mixed>|false */
function apcu_cache_info(bool $limited = false): array|false {}

/** @return array<string, mixed>|false */
function apcu_sma_info(bool $limited = false): array|false {}

/** @return array<string, int>|null|false */
function apcu_key_info(string $key): array|null|false {}

function apcu_enabled(): bool {}

/** APC 3.1's iterator over the user cache. */
class APCIterator implements Iterator
{
    /**
     * @param string|null $cache 'user' (null: the same)
     * @param string|string[]|null $search a PCRE pattern or a list of keys; null selects all
     * @param int|null $format APC_ITER_* bits (null: APC_ITER_ALL)
     * @param int|null $chunk_size entries read per page (null, 0 or less: 100)
     * @param int|null $list APC_LIST_ACTIVE or APC_LIST_DELETED (null: APC_LIST_ACTIVE)
     */
    public function __construct(mixed $cache = null, mixed $search = null, mixed $format = null, mixed $chunk_size = null, mixed $list = null) {}
    public function rewind(): void {}
    public function valid(): bool {}
    public function next(): void {}
    public function key(): mixed {}
    public function current(): mixed {}
    public function getTotalHits(): int {}
    public function getTotalSize(): int {}
    public function getTotalCount(): int {}
}

/** APCu 5.1's iterator (with apcdb.apcu_compat=1). */
class APCUIterator implements Iterator
{
    /**
     * @param string|string[]|null $search a PCRE pattern or a list of keys; null selects all
     * @param int|null $format APC_ITER_* bits (null: APC_ITER_ALL)
     * @param int|null $chunk_size entries read per page (null, 0 or less: 100)
     * @param int|null $list APC_LIST_ACTIVE or APC_LIST_DELETED (null: APC_LIST_ACTIVE)
     */
    public function __construct(mixed $search = null, mixed $format = null, mixed $chunk_size = null, mixed $list = null) {}
    public function rewind(): void {}
    public function valid(): bool {}
    public function next(): void {}
    public function key(): mixed {}
    public function current(): mixed {}
    public function getTotalHits(): int {}
    public function getTotalSize(): int {}
    public function getTotalCount(): int {}
}
