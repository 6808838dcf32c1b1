//! The APC/APCu user-cache rules of the `apcdb` PHP extension, as plain Rust: data in, a decision
//! or a plain struct out. Nothing here touches PHP values or the Zend engine, so `cargo test` runs
//! these rules without a PHP runtime; the extension (`php-binding/src`) only converts arguments
//! and results between PHP and these functions.
//!
//! * [`ttl`]: a TTL argument to an expiry, an expiry back to the TTL APCu reports, liveness;
//! * [`counter`]: `inc`/`dec`/`cas` as one read-modify-write decision;
//! * [`filter`]: which entries an `APCIterator` selects, in which order, with which page size;
//! * [`info`]: the layout of every info array (`apc_cache_info`, `apc_key_info`, `apc_sma_info`,
//!   the iterator's `current()`), built once from one plain struct;
//! * [`ini`]: APCu's INI settings as aliases of apcdb's (drop-in mode);
//! * [`value`]: the stored form of an int and the tag bytes of the value encoding (SPEC §10);
//! * [`secret`]: a Redis password read from a file that not every user may read.

pub mod counter;
pub mod filter;
pub mod info;
pub mod ini;
pub mod secret;
pub mod ttl;
pub mod value;
