//! `apcdb crash-test die-in-checkpoint`: a process that dies (abort, no cleanup) at an exact spot:
//! inside a checkpoint, after the new superblock is on disk, while it rewrites the other index
//! copy with lock-free readers held out. The engine's observer seam tells it when it is there.

use super::config::{store_options, DEFAULT_MAX_SIZE};
use apcdb::Store;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

struct DieAfterSuperblock {
    superblock_flushed: AtomicBool,
}

impl apcdb::Observer for DieAfterSuperblock {
    fn data_synced(&self, _off: u64, len: u64) {
        // The checkpoint flushes the whole file, then just the superblock.
        if len == apcdb::format::SUPERBLOCK_LEN as u64 {
            self.superblock_flushed.store(true, Ordering::SeqCst);
        }
    }
    fn data_written(&self, _off: u64, _len: u64) {
        if self.superblock_flushed.load(Ordering::SeqCst) {
            std::process::abort();
        }
    }
}

pub fn run(path: &Path, durability: apcdb::Durability) -> Result<i32, String> {
    let observer = Arc::new(DieAfterSuperblock {
        superblock_flushed: AtomicBool::new(false),
    });
    let opts = store_options(durability, DEFAULT_MAX_SIZE).observer(observer);
    let store = Store::open(path, opts).map_err(|e| e.to_string())?;
    // Dirty some index pages so the checkpoint has copying to do.
    for i in 0..200u32 {
        store
            .put(format!("dier/{i}").as_bytes(), b"x")
            .map_err(|e| e.to_string())?;
    }
    store.checkpoint().map_err(|e| e.to_string())?;
    Err("the checkpoint finished without the expected write: nothing to die in".into())
}
