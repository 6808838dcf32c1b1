//! How PHP values are stored: one tag byte, then the payload.
//!
//! | tag | value | payload |
//! |---|---|---|
//! | 0 | null | — |
//! | 1 | false | — |
//! | 2 | true | — |
//! | 3 | int | 8 bytes, little-endian two's complement |
//! | 4 | float | 8 bytes, little-endian IEEE 754 bits |
//! | 5 | string | the bytes (binary-safe) |
//! | 6 | array or object | PHP's `serialize()` output |
//!
//! Arrays and objects go through PHP's own serializer, called as the userland functions
//! `serialize()`/`unserialize()` so that `__serialize`, `__sleep`, `Serializable` and friends run,
//! and references and object identity inside one value come back as they were (as with APCu).
//! Decoding happens after the store returned the bytes, outside the store's lock.

use crate::util::bytes_zval;
use apc::value::{
    encode_long, TAG_DOUBLE, TAG_FALSE, TAG_LONG, TAG_NULL, TAG_SERIALIZED, TAG_STRING, TAG_TRUE,
};
use ext_php_rs::types::{ZendCallable, Zval};

pub enum EncodeError {
    /// A resource at the top level: APCu's "Cannot store resources" warning.
    Resource,
    /// `serialize()` threw (e.g. a Closure): the exception is pending, nothing is stored.
    Exception,
    /// Anything else, with a message.
    Other(String),
}

pub fn encode(v: &Zval) -> Result<Vec<u8>, EncodeError> {
    let v = v.dereference();
    if v.is_null() {
        return Ok(vec![TAG_NULL]);
    }
    if v.is_false() {
        return Ok(vec![TAG_FALSE]);
    }
    if v.is_true() {
        return Ok(vec![TAG_TRUE]);
    }
    if let Some(l) = v.long() {
        return Ok(encode_long(l));
    }
    if let Some(d) = v.double() {
        let mut out = Vec::with_capacity(9);
        out.push(TAG_DOUBLE);
        out.extend_from_slice(&d.to_bits().to_le_bytes());
        return Ok(out);
    }
    if let Some(s) = v.zend_str() {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len() + 1);
        out.push(TAG_STRING);
        out.extend_from_slice(b);
        return Ok(out);
    }
    if v.is_resource() {
        return Err(EncodeError::Resource);
    }
    if v.is_array() || v.is_object() {
        let f = ZendCallable::try_from_name("serialize")
            .map_err(|e| EncodeError::Other(e.to_string()))?;
        return match f.try_call(vec![v]) {
            Ok(s) => match s.zend_str() {
                Some(s) => {
                    let b = s.as_bytes();
                    let mut out = Vec::with_capacity(b.len() + 1);
                    out.push(TAG_SERIALIZED);
                    out.extend_from_slice(b);
                    Ok(out)
                }
                None => Err(EncodeError::Other(
                    "serialize() did not return a string".into(),
                )),
            },
            Err(_) if crate::util::has_exception() => Err(EncodeError::Exception),
            Err(e) => Err(EncodeError::Other(e.to_string())),
        };
    }
    Err(EncodeError::Other(format!(
        "cannot store a value of type {:?}",
        v.get_type()
    )))
}

/// Decode stored bytes into a PHP value. `Err` carries a message when the bytes are not a value
/// this extension wrote (or `unserialize()` threw: then the exception is pending).
pub fn decode(b: &[u8]) -> Result<Zval, String> {
    let (&tag, payload) = b
        .split_first()
        .ok_or_else(|| "empty stored value".to_string())?;
    let mut z = Zval::new();
    match tag {
        TAG_NULL => {}
        TAG_FALSE => z.set_bool(false),
        TAG_TRUE => z.set_bool(true),
        TAG_LONG if payload.len() == 8 => {
            z.set_long(i64::from_le_bytes(payload.try_into().unwrap()))
        }
        TAG_DOUBLE if payload.len() == 8 => z.set_double(f64::from_bits(u64::from_le_bytes(
            payload.try_into().unwrap(),
        ))),
        TAG_STRING => return Ok(bytes_zval(payload)),
        TAG_SERIALIZED => {
            let f = ZendCallable::try_from_name("unserialize").map_err(|e| e.to_string())?;
            let arg = bytes_zval(payload);
            return f.try_call(vec![&arg]).map_err(|e| e.to_string());
        }
        _ => return Err(format!("stored value has unknown type tag {tag}")),
    }
    Ok(z)
}
