//! APCu's TTL rule in wall-clock time (`apc.use_request_time=0`), SPEC §10 "TTL".
//!
//! An entry stored during second `t` with `ttl > 0` is live while the current second is at most
//! `t + ttl`: it lives between `ttl` and `ttl + 1` seconds. `ttl == 0` means forever; a negative
//! TTL stores an entry that is already expired. The store keeps an absolute expiry in ms (0 =
//! never) and hides an entry from the millisecond of its expiry on.

/// The expiry (Unix ms, 0 = never) of an entry stored at `now_ms` with `ttl` seconds.
pub fn expiry_for_ttl(ttl: i64, now_ms: u64) -> u64 {
    if ttl == 0 {
        return 0;
    }
    if ttl < 0 {
        return 1; // 1 ms after the epoch: already expired, and never the 0 that means "forever"
    }
    (now_ms / 1000)
        .saturating_add(ttl as u64)
        .saturating_add(1)
        .saturating_mul(1000)
}

/// The time a write counts from: now, or with APCu's `apc.use_request_time=1` the start of the
/// request (APCu then uses the request's whole second for every write of the request).
pub fn write_time_ms(use_request_time: bool, now_ms: u64, request_start_ms: u64) -> u64 {
    if use_request_time && request_start_ms > 0 {
        request_start_ms
    } else {
        now_ms
    }
}

/// Whether an entry with this expiry reads as present at `now_ms`. The engine applies this rule
/// itself on every read (its index's `is_live`); it is stated here so that the TTL rule above can
/// be checked without a clock (`the_engine_hides_what_the_rule_says_is_expired` ties the two).
pub fn is_live(expires_at_ms: u64, now_ms: u64) -> bool {
    expires_at_ms == 0 || expires_at_ms > now_ms
}

/// The TTL (seconds) the info functions report for an entry: what was asked when it was written,
/// recovered from its expiry and its modification time. 0 for an entry that never expires.
pub fn reported_ttl(expires_at_ms: u64, modified_at_ms: u64) -> i64 {
    if expires_at_ms == 0 {
        return 0;
    }
    (expires_at_ms / 1000)
        .saturating_sub(modified_at_ms / 1000)
        .saturating_sub(1) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_700_000_000; // a second of wall-clock time

    #[test]
    fn request_time_is_the_base_only_when_asked() {
        assert_eq!(
            write_time_ms(false, T * 1000 + 7, (T - 5) * 1000),
            T * 1000 + 7
        );
        assert_eq!(
            write_time_ms(true, T * 1000 + 7, (T - 5) * 1000),
            (T - 5) * 1000
        );
        // No request time known: now.
        assert_eq!(write_time_ms(true, T * 1000, 0), T * 1000);
        // A TTL of 2 counted from a request that started 5 s ago has already run out.
        let exp = expiry_for_ttl(2, write_time_ms(true, T * 1000, (T - 5) * 1000));
        assert!(!is_live(exp, T * 1000));
    }

    #[test]
    fn zero_is_forever() {
        assert_eq!(expiry_for_ttl(0, T * 1000 + 5), 0);
        assert!(is_live(0, u64::MAX));
        assert_eq!(reported_ttl(0, T * 1000), 0);
    }

    #[test]
    fn positive_ttl_lives_through_second_t_plus_ttl() {
        for ttl in [1i64, 2, 60, 86_400] {
            // Stored at any millisecond of second T.
            for stored_ms in [T * 1000, T * 1000 + 1, T * 1000 + 999] {
                let exp = expiry_for_ttl(ttl, stored_ms);
                let last_live_second = T + ttl as u64;
                assert!(is_live(exp, stored_ms));
                assert!(is_live(exp, last_live_second * 1000));
                assert!(is_live(exp, last_live_second * 1000 + 999));
                assert!(!is_live(exp, (last_live_second + 1) * 1000));
                assert!(!is_live(exp, (last_live_second + 1) * 1000 + 1));
            }
        }
    }

    #[test]
    fn negative_ttl_is_already_expired() {
        for ttl in [-1i64, -3600, i64::MIN] {
            let exp = expiry_for_ttl(ttl, T * 1000);
            assert_ne!(exp, 0, "an expired entry must not read as 'forever'");
            assert!(!is_live(exp, T * 1000));
            assert!(!is_live(exp, 2)); // even with a clock near the epoch
        }
    }

    #[test]
    fn huge_ttl_saturates_instead_of_wrapping() {
        let exp = expiry_for_ttl(i64::MAX, T * 1000);
        assert!(exp >= T * 1000);
        assert!(is_live(exp, T * 1000 + 1));
    }

    #[test]
    fn reported_ttl_gives_back_the_ttl_asked() {
        for ttl in [1i64, 7, 3600] {
            for stored_ms in [T * 1000, T * 1000 + 500, T * 1000 + 999] {
                let exp = expiry_for_ttl(ttl, stored_ms);
                assert_eq!(reported_ttl(exp, stored_ms), ttl);
            }
        }
        // An entry rewritten by inc/dec keeps its expiry but gets a new mtime: the TTL shrinks.
        let exp = expiry_for_ttl(10, T * 1000);
        assert_eq!(reported_ttl(exp, (T + 4) * 1000), 6);
        // Never negative, even for an mtime past the expiry.
        assert_eq!(reported_ttl(1, T * 1000), 0);
    }

    #[test]
    fn the_engine_hides_what_the_rule_says_is_expired() {
        let store = apcdb::Store::open_anonymous(apcdb::Options::default()).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        store
            .put_with_expiry(b"gone", b"v", expiry_for_ttl(-1, now))
            .unwrap();
        store
            .put_with_expiry(b"kept", b"v", expiry_for_ttl(3600, now))
            .unwrap();
        store
            .put_with_expiry(b"forever", b"v", expiry_for_ttl(0, now))
            .unwrap();
        assert_eq!(store.get(b"gone").unwrap(), None);
        assert_eq!(store.get(b"kept").unwrap(), Some(b"v".to_vec()));
        assert_eq!(store.get(b"forever").unwrap(), Some(b"v".to_vec()));
    }
}
