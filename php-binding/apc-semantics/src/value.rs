//! The tag bytes of the value encoding (SPEC §10, "Value encoding") and the int form that the
//! counters read and write. Encoding other PHP values needs PHP (`serialize()`): that stays in the
//! extension's `codec`.

pub const TAG_NULL: u8 = 0;
pub const TAG_FALSE: u8 = 1;
pub const TAG_TRUE: u8 = 2;
pub const TAG_LONG: u8 = 3;
pub const TAG_DOUBLE: u8 = 4;
pub const TAG_STRING: u8 = 5;
pub const TAG_SERIALIZED: u8 = 6;
/// An array or object in igbinary's format (`apcdb.serializer=igbinary`).
pub const TAG_IGBINARY: u8 = 7;
/// An array of nulls, booleans, ints, floats, strings and such arrays in apcdb's first native
/// form (SPEC §10, fixed-width fields), read back without PHP's serializer; written by earlier
/// builds, still read.
pub const TAG_NATIVE_ARRAY: u8 = 8;
/// The same arrays in the compact native form (SPEC §10: varints, lists without keys), which
/// is what is written now.
pub const TAG_COMPACT_ARRAY: u8 = 9;

/// The integer of an encoded value, if it is an int: only such values can be incremented or
/// compared-and-swapped (a float or a numeric string is not an int, as in APCu).
pub fn as_long(b: &[u8]) -> Option<i64> {
    match b {
        [TAG_LONG, rest @ ..] => Some(i64::from_le_bytes(rest.try_into().ok()?)),
        _ => None,
    }
}

/// The encoded form of an int: the tag, then 8 bytes little-endian two's complement.
pub fn encode_long(l: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    out.push(TAG_LONG);
    out.extend_from_slice(&l.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_round_trip_in_nine_bytes() {
        for n in [0, 1, -1, i64::MAX, i64::MIN, 0x0102_0304_0506_0708] {
            let b = encode_long(n);
            assert_eq!(b.len(), 9);
            assert_eq!(b[0], TAG_LONG);
            assert_eq!(as_long(&b), Some(n));
        }
        assert_eq!(&encode_long(1)[1..], &[1, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn other_values_are_not_ints() {
        let mut float = vec![TAG_DOUBLE];
        float.extend_from_slice(&1.0f64.to_bits().to_le_bytes());
        assert_eq!(as_long(&float), None);
        assert_eq!(as_long(&[TAG_STRING, b'4', b'2']), None);
        assert_eq!(as_long(&[TAG_NULL]), None);
        assert_eq!(as_long(&[]), None);
        // A truncated or over-long int payload is not an int either.
        assert_eq!(as_long(&encode_long(5)[..8]), None);
        let mut long = encode_long(5);
        long.push(0);
        assert_eq!(as_long(&long), None);
    }
}
