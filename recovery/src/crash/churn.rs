//! `apcdb crash-test churn`: a process that writes and checkpoints in a loop (a checkpoint about
//! every millisecond) until killed.
//! The tool tests use it as a writer that keeps the store open and busy.

use super::config::{store_options, DEFAULT_MAX_SIZE};
use apcdb::Store;
use std::io::Write;
use std::path::Path;

pub fn run(path: &Path, durability: apcdb::Durability) -> Result<i32, String> {
    let store = Store::open(path, store_options(durability, DEFAULT_MAX_SIZE))
        .map_err(|e| e.to_string())?;
    let mut announced = false;
    for i in 0u64.. {
        store
            .put(format!("churn/{}", i % 64).as_bytes(), &i.to_le_bytes())
            .map_err(|e| e.to_string())?;
        store.checkpoint().map_err(|e| e.to_string())?;
        // At most about a thousand checkpoints a second: a read-only handle must read a whole
        // view between two of them, and on a disk whose flushes return in ~0.2 ms an unpaced
        // loop checkpointed ~4,500 times a second, faster than `apcdb stats` can take a view
        // (it then says Busy, as documented), which is not what the tests using this writer test.
        std::thread::sleep(std::time::Duration::from_millis(1));
        if !announced {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"churning\n");
            let _ = out.flush();
            announced = true;
        }
    }
    Ok(0)
}
