//! The write lock's waits, as `Stats` shows them (SPEC.md §6.2): a handle counts its own
//! acquisitions that found the lock held by another process, and those that then slept.

mod common;

use apcdb::{Durability, Options, Store, Update};
use common::{expect_line, helper_piped, helper_role, say, Killed};
use std::io::BufReader;
use std::time::Duration;

fn opts() -> Options {
    Options::default()
        .durability(Durability::None)
        .initial_size(1 << 20)
        .max_size(8 << 20)
        .journal_size(1 << 20)
}

/// How long the helper keeps the write lock: far past the 10 µs a waiter spins.
const HOLD: Duration = Duration::from_millis(300);

#[test]
#[ignore = "run by the tests below as another process"]
fn helper() {
    let Some((role, path)) = helper_role() else {
        return;
    };
    let store = Store::open(&path, opts()).unwrap();
    match role.as_str() {
        // Holds the write lock (an update's callback runs under it), then reports its own
        // counts: it never waited.
        "holder" => {
            store
                .update(b"held", |_| {
                    say("holding");
                    std::thread::sleep(HOLD);
                    (
                        Update::Put {
                            value: b"by the holder".to_vec(),
                            expires_at_ms: 0,
                        },
                        (),
                    )
                })
                .unwrap();
            let st = store.stats().unwrap();
            say(&format!(
                "released {} {}",
                st.write_lock_contended, st.write_lock_slept
            ));
        }
        other => panic!("unknown helper role {other}"),
    }
}

#[test]
fn a_write_that_waits_for_another_process_is_counted_contended_and_slept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path, opts()).unwrap();
    store.put(b"mine", b"0").unwrap();
    let st = store.stats().unwrap();
    assert_eq!((st.write_lock_contended, st.write_lock_slept), (0, 0));

    let mut child = Killed(helper_piped("holder", &path).spawn().unwrap());
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    expect_line(&mut out, "holding");
    let start = std::time::Instant::now();
    store.put(b"mine", b"1").unwrap();
    let waited = start.elapsed();
    let st = store.stats().unwrap();
    assert_eq!(
        (st.write_lock_contended, st.write_lock_slept),
        (1, 1),
        "a put that waited {waited:?} for the other process"
    );
    assert_eq!(
        store.get(b"held").unwrap().as_deref(),
        Some(&b"by the holder"[..])
    );
    // The counts are the handle's own: the holder never waited.
    assert_eq!(expect_line(&mut out, "released"), "released 0 0");
    assert!(child.0.wait().unwrap().success());

    // Uncontended writes add nothing.
    for i in 0..100u32 {
        store.put(b"mine", &i.to_le_bytes()).unwrap();
    }
    let after = store.stats().unwrap();
    assert_eq!((after.write_lock_contended, after.write_lock_slept), (1, 1));
}
