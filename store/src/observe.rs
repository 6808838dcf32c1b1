//! The seam through which every persistent write passes (SQLite's VFS idea, narrowed to what a
//! power-cut simulator needs): an `Observer` set in `Options` is told about each write to the
//! data file (through the map) and to the journal, and about each flush. `apcdb powercut` uses
//! it to know which pages and bytes a power cut could lose or tear. Without an observer the
//! normal path pays one branch on an `Option`.

/// Told, after the fact, about everything that changes the store's durable files.
pub trait Observer: Send + Sync {
    /// Bytes `[off, off+len)` of the data file changed (in the page cache, through the map).
    fn data_written(&self, _off: u64, _len: u64) {}
    /// `[off, off+len)` of the data file is now on disk (`msync` returned).
    fn data_synced(&self, _off: u64, _len: u64) {}
    /// The data file was extended to `len` bytes with real blocks.
    fn data_grown(&self, _len: u64) {}
    /// `bytes` were written to the journal at `off` (page cache).
    fn journal_written(&self, _off: u64, _bytes: &[u8]) {}
    /// Everything written to the journal so far is on disk (`fdatasync` returned).
    fn journal_synced(&self) {}
}

pub type SharedObserver = std::sync::Arc<dyn Observer>;
