//! What an embedding application relies on from the crate's types: they can be printed with
//! `{:?}` (naming what matters, never dumping the map), and a handle can be shared with and moved
//! to other threads.

use apcdb::{Batch, Options, Store};
use std::sync::Arc;

#[test]
fn public_types_print_usefully_and_cross_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.db");
    let store = Arc::new(Store::open(&path, Options::default()).unwrap());
    store.put(b"k", b"v").unwrap();

    let shown = format!("{store:?}");
    assert!(
        shown.starts_with("Store") && shown.contains("api.db"),
        "{shown}"
    );
    let scan = store.scan(b"k");
    assert!(format!("{scan:?}").contains("cursor"));
    let mut batch = Batch::default();
    batch.put(b"a", b"1");
    assert!(format!("{batch:?}").contains("Put"));
    assert!(format!("{:?}", Options::default()).contains("durability"));
    let exclusive_err = apcdb::Exclusive::acquire(&path).unwrap_err();
    assert!(!format!("{exclusive_err:?}").is_empty());

    // A handle moved into another thread and used there, and a scan sent along.
    let s = store.clone();
    let got = std::thread::spawn(move || {
        let n = s.scan(b"").count();
        (s.get(b"k").unwrap(), n)
    })
    .join()
    .unwrap();
    assert_eq!(got, (Some(b"v".to_vec()), 1));
    fn sendable<T: Send>(_: &T) {}
    sendable(&store.scan(b""));
}
