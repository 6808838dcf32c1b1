//! The public handle. (API skeleton; bodies being written.)
use crate::{Entry, Options, Result, Stats, Update};
use std::path::Path;
use std::time::Duration;

/// A handle on one store. `Send + Sync`: share it between threads by reference or `Arc`.
pub struct Store {
    _p: (),
}

/// A group of changes applied all or nothing by [`Store::batch`].
pub struct Batch {
    _p: (),
}

impl Batch {
    pub fn put(&mut self, _key: &[u8], _value: &[u8]) {
        todo!()
    }
    pub fn put_with_ttl(&mut self, _key: &[u8], _value: &[u8], _ttl: Duration) {
        todo!()
    }
    pub fn delete(&mut self, _key: &[u8]) {
        todo!()
    }
}

impl Store {
    pub fn open(_path: impl AsRef<Path>, _opts: Options) -> Result<Store> {
        todo!()
    }
    /// A store in unlinked temporary files: not durable, shared with children forked after this call.
    pub fn open_anonymous(_opts: Options) -> Result<Store> {
        todo!()
    }
    pub fn path(&self) -> &Path {
        todo!()
    }
    pub fn put(&self, _key: &[u8], _value: &[u8]) -> Result<()> {
        todo!()
    }
    pub fn put_with_ttl(&self, _key: &[u8], _value: &[u8], _ttl: Duration) -> Result<()> {
        todo!()
    }
    /// `expires_at_ms`: unix milliseconds, 0 = never.
    pub fn put_with_expiry(&self, _key: &[u8], _value: &[u8], _expires_at_ms: u64) -> Result<()> {
        todo!()
    }
    pub fn get(&self, _key: &[u8]) -> Result<Option<Vec<u8>>> {
        todo!()
    }
    pub fn get_entry(&self, _key: &[u8]) -> Result<Option<Entry>> {
        todo!()
    }
    pub fn contains(&self, _key: &[u8]) -> Result<bool> {
        todo!()
    }
    pub fn add(&self, _key: &[u8], _value: &[u8]) -> Result<bool> {
        todo!()
    }
    pub fn add_with_expiry(&self, _key: &[u8], _value: &[u8], _expires_at_ms: u64) -> Result<bool> {
        todo!()
    }
    pub fn delete(&self, _key: &[u8]) -> Result<bool> {
        todo!()
    }
    pub fn batch(&self, _f: impl FnOnce(&mut Batch)) -> Result<()> {
        todo!()
    }
    /// Atomic read-modify-write across processes: `f` sees the current live entry (None if absent
    /// or expired) while the write lock is held, and decides. Returns what `f` returned.
    pub fn update<R>(&self, _key: &[u8], _f: impl FnOnce(Option<&Entry>) -> (Update, R)) -> Result<R> {
        todo!()
    }
    /// Replace the value only if the current one equals `expected` (None = absent).
    pub fn compare_and_swap(&self, _key: &[u8], _expected: Option<&[u8]>, _new: Option<&[u8]>) -> Result<bool> {
        todo!()
    }
    /// Every live entry whose key starts with `prefix`, in no particular order.
    pub fn scan_prefix(&self, _prefix: &[u8]) -> Result<Vec<(Vec<u8>, Entry)>> {
        todo!()
    }
    pub fn clear(&self) -> Result<()> {
        todo!()
    }
    pub fn sync(&self) -> Result<()> {
        todo!()
    }
    pub fn checkpoint(&self) -> Result<()> {
        todo!()
    }
    pub fn stats(&self) -> Result<Stats> {
        todo!()
    }
    /// True if opening this handle ran recovery that replayed journal records.
    pub fn recovered_at_open(&self) -> bool {
        todo!()
    }
    /// Largest value accepted by this store, in bytes.
    pub fn max_value_len(&self) -> usize {
        todo!()
    }
}
