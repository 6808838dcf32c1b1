//! `apcdb crash-test hold-lock`: a process that grows the store, checkpoints, then sits inside an
//! `update` callback holding the write lock until it is killed. Tests use it to kill a lock holder
//! at a known moment instead of a random one.

use super::config::{store_options, DEFAULT_MAX_SIZE};
use apcdb::{Store, Update};
use std::io::Write;
use std::path::Path;

pub fn run(path: &Path, durability: apcdb::Durability, grow: u64) -> Result<i32, String> {
    let store = Store::open(path, store_options(durability, DEFAULT_MAX_SIZE))
        .map_err(|e| e.to_string())?;
    let chunk = vec![b'g'; 256 << 10];
    for i in 0..grow.div_ceil(chunk.len() as u64) {
        store
            .put(format!("grow/{i}").as_bytes(), &chunk)
            .map_err(|e| e.to_string())?;
    }
    store.checkpoint().map_err(|e| e.to_string())?;
    store
        .update(b"held", |_| {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"holding\n");
            let _ = out.flush();
            loop {
                std::thread::park();
            }
            #[allow(unreachable_code)]
            (Update::Keep, ())
        })
        .map_err(|e| e.to_string())?;
    Ok(0)
}
