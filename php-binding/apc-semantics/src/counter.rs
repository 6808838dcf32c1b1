//! `inc`, `dec` and `cas`: each is one decision taken inside `Store::update`, under the store's
//! write lock, from the current live entry (SPEC §10, "Functions" and "Locking and atomicity").
//!
//! Only an int value is changed; arithmetic wraps at the ends of the int range as in APCu; the
//! entry keeps its expiry. What a missing key does is the one difference between the APC 3.1
//! (`apc_inc`) and APCu 5.1 (`apcu_inc`) semantics, chosen by [`OnMissing`].

use crate::value::{as_long, encode_long};
use apcdb::{Entry, Update};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    Inc,
    Dec,
}

/// What `inc`/`dec` does with a key that is absent or expired.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OnMissing {
    /// APC 3.1 (`apc_inc`): fail, store nothing.
    Fail,
    /// APCu 5.1 (`apcu_inc`): create the key with `step` (`-step` for `dec`) and this expiry (the
    /// caller's `$ttl`, converted before the lock is taken).
    Create { expires_at_ms: u64 },
}

/// The decision of `inc`/`dec` on the current entry: what to write, and the new value (`None`:
/// the call returns `false` and `$success` is false).
pub fn step(
    cur: Option<&Entry>,
    dir: Direction,
    step: i64,
    on_missing: OnMissing,
) -> (Update, Option<i64>) {
    let apply = |n: i64| match dir {
        Direction::Inc => n.wrapping_add(step),
        Direction::Dec => n.wrapping_sub(step),
    };
    let (n, expires_at_ms) = match (cur, on_missing) {
        (Some(e), _) => match as_long(&e.value) {
            Some(n) => (apply(n), e.expires_at_ms),
            None => return (Update::Keep, None), // not an int: left as it is
        },
        (None, OnMissing::Create { expires_at_ms }) => (apply(0), expires_at_ms),
        (None, OnMissing::Fail) => return (Update::Keep, None),
    };
    (
        Update::Put {
            value: encode_long(n),
            expires_at_ms,
        },
        Some(n),
    )
}

/// The decision of `cas`: replace an int equal to `old` by `new`, keeping the expiry. Whether it
/// was replaced is the call's result; a missing key or a non-int value is never replaced.
pub fn cas(cur: Option<&Entry>, old: i64, new: i64) -> (Update, bool) {
    match cur.and_then(|e| as_long(&e.value).map(|n| (n, e.expires_at_ms))) {
        Some((n, expires_at_ms)) if n == old => (
            Update::Put {
                value: encode_long(new),
                expires_at_ms,
            },
            true,
        ),
        _ => (Update::Keep, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::TAG_STRING;

    fn int_entry(n: i64, expires_at_ms: u64) -> Entry {
        Entry {
            value: encode_long(n),
            expires_at_ms,
            modified_at_ms: 1_000,
            version: 1,
        }
    }

    fn put(n: i64, expires_at_ms: u64) -> Update {
        Update::Put {
            value: encode_long(n),
            expires_at_ms,
        }
    }

    const CREATE: OnMissing = OnMissing::Create {
        expires_at_ms: 77_000,
    };

    #[test]
    fn inc_and_dec_change_an_int_and_keep_its_expiry() {
        let e = int_entry(10, 5_000);
        assert_eq!(
            step(Some(&e), Direction::Inc, 3, OnMissing::Fail),
            (put(13, 5_000), Some(13))
        );
        assert_eq!(
            step(Some(&e), Direction::Dec, 3, CREATE),
            (put(7, 5_000), Some(7))
        );
        // A negative step goes the other way.
        assert_eq!(
            step(Some(&e), Direction::Inc, -11, OnMissing::Fail),
            (put(-1, 5_000), Some(-1))
        );
    }

    #[test]
    fn missing_key_fails_for_apc_and_is_created_for_apcu() {
        assert_eq!(
            step(None, Direction::Inc, 5, OnMissing::Fail),
            (Update::Keep, None)
        );
        assert_eq!(
            step(None, Direction::Dec, 5, OnMissing::Fail),
            (Update::Keep, None)
        );
        assert_eq!(
            step(None, Direction::Inc, 5, CREATE),
            (put(5, 77_000), Some(5))
        );
        assert_eq!(
            step(None, Direction::Dec, 5, CREATE),
            (put(-5, 77_000), Some(-5))
        );
        // -i64::MIN does not exist: decrementing a new key by it wraps, as APCu's C arithmetic.
        assert_eq!(
            step(None, Direction::Dec, i64::MIN, CREATE),
            (put(i64::MIN, 77_000), Some(i64::MIN))
        );
    }

    #[test]
    fn non_int_values_are_left_alone() {
        let s = Entry {
            value: vec![TAG_STRING, b'1', b'0'],
            expires_at_ms: 0,
            modified_at_ms: 1_000,
            version: 1,
        };
        for on_missing in [OnMissing::Fail, CREATE] {
            assert_eq!(
                step(Some(&s), Direction::Inc, 1, on_missing),
                (Update::Keep, None)
            );
            assert_eq!(
                step(Some(&s), Direction::Dec, 1, on_missing),
                (Update::Keep, None)
            );
        }
        assert_eq!(cas(Some(&s), 10, 11), (Update::Keep, false));
    }

    #[test]
    fn overflow_wraps_around() {
        let max = int_entry(i64::MAX, 0);
        assert_eq!(
            step(Some(&max), Direction::Inc, 1, OnMissing::Fail),
            (put(i64::MIN, 0), Some(i64::MIN))
        );
        let min = int_entry(i64::MIN, 0);
        assert_eq!(
            step(Some(&min), Direction::Dec, 1, OnMissing::Fail),
            (put(i64::MAX, 0), Some(i64::MAX))
        );
        assert_eq!(
            step(Some(&min), Direction::Inc, -1, OnMissing::Fail),
            (put(i64::MAX, 0), Some(i64::MAX))
        );
    }

    #[test]
    fn cas_replaces_only_the_expected_int() {
        let e = int_entry(4, 9_000);
        assert_eq!(cas(Some(&e), 4, 40), (put(40, 9_000), true));
        assert_eq!(cas(Some(&e), 5, 40), (Update::Keep, false));
        assert_eq!(cas(None, 0, 1), (Update::Keep, false));
    }
}
