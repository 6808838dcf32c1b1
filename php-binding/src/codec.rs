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
//! | 7 | array or object | `igbinary_serialize()` output (`apcdb.serializer=igbinary`) |
//! | 8 | array | apcdb's native array encoding (`serializer_ctx.c`): arrays of scalars and arrays |
//!
//! Arrays and objects go through PHP's own serializer (`php_var_serialize` and the code behind
//! `unserialize()`, called directly through `serializer_ctx.c` rather than as userland functions
//! looked up by name), so that `__serialize`, `__sleep`, `Serializable` and friends run, and
//! references and object identity inside one value come back as they were (as with APCu). igbinary
//! is still called by function name. Decoding happens after the store returned the bytes, outside
//! the store's lock.
//!
//! Each encode and decode runs under PHP's serializer lock ([`isolated`]): a value is a document
//! by itself, even when it is stored or fetched from inside someone else's
//! `serialize()`/`unserialize()` (a `Serializable::unserialize` that calls `apc_fetch`).

use crate::ffi;
use crate::util::bytes_zval;
use apc::ini::Serializer;
use apc::value::{
    encode_long, TAG_DOUBLE, TAG_FALSE, TAG_IGBINARY, TAG_LONG, TAG_NATIVE_ARRAY, TAG_NULL,
    TAG_SERIALIZED, TAG_STRING, TAG_TRUE,
};
use ext_php_rs::boxed::ZBox;
use ext_php_rs::types::{ZendCallable, ZendStr, Zval};
use std::ops::Deref;

/// Runs `f`, which calls PHP's serializer, under PHP's serializer lock, as APCu does: the call
/// gets a back-reference table of its own instead of sharing that of an outer `serialize()` or
/// `unserialize()` still running (without this, a fetch from inside a `Serializable::unserialize`
/// resolves its references against the outer document and returns wrong data). Nested calls made
/// by the value's own classes also start their own table, as under APCu.
///
/// No zend_try here (it would cost every array fetch a setjmp): a bailout inside `f` (`exit()` in
/// a `__wakeup`) ends the request with the lock still taken, as under APCu; the only effect is that
/// shutdown functions of that request unserialize without sharing tables, and PHP resets the lock
/// when the next request starts.
fn isolated<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: only the basic extension's globals of this thread (PHP's, where every encode and
    // decode runs) are touched; the saved value is given back below.
    let saved = unsafe { ffi::apcdb_serializer_lock() };
    let r = f();
    // SAFETY: as above; `f` is over.
    unsafe { ffi::apcdb_serializer_unlock(saved) };
    r
}

pub enum EncodeError {
    /// A resource at the top level: APCu's "Cannot store resources" warning.
    Resource,
    /// `serialize()` threw (e.g. a Closure): the exception is pending, nothing is stored.
    Exception,
    /// Anything else, with a message.
    Other(String),
}

/// Encoded bytes: built here, or a string made in C (serializer or native array encoder), used as
/// it is, not copied.
pub enum Encoded {
    Bytes(Vec<u8>),
    Php(ZBox<ZendStr>),
}

impl Deref for Encoded {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Encoded::Bytes(b) => b,
            Encoded::Php(s) => s.as_bytes(),
        }
    }
}

impl Encoded {
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            Encoded::Bytes(b) => b,
            Encoded::Php(s) => s.as_bytes().to_vec(),
        }
    }
}

/// Encode `v`; arrays and objects with `ser`.
pub fn encode(v: &Zval, ser: Serializer) -> Result<Encoded, EncodeError> {
    let v = v.dereference();
    let bytes = |b: Vec<u8>| Ok(Encoded::Bytes(b));
    if v.is_null() {
        return bytes(vec![TAG_NULL]);
    }
    if v.is_false() {
        return bytes(vec![TAG_FALSE]);
    }
    if v.is_true() {
        return bytes(vec![TAG_TRUE]);
    }
    if let Some(l) = v.long() {
        return bytes(encode_long(l));
    }
    if let Some(d) = v.double() {
        let mut out = Vec::with_capacity(9);
        out.push(TAG_DOUBLE);
        out.extend_from_slice(&d.to_bits().to_le_bytes());
        return bytes(out);
    }
    if let Some(s) = v.zend_str() {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len() + 1);
        out.push(TAG_STRING);
        out.extend_from_slice(b);
        return bytes(out);
    }
    if v.is_resource() {
        return Err(EncodeError::Resource);
    }
    if v.is_array() || v.is_object() {
        return match ser {
            Serializer::Php => {
                // Arrays of plain values skip the serializer (no user code can run for them).
                // SAFETY: `v` is a live zval of this request; the encoder only reads it.
                let s = unsafe {
                    ffi::apcdb_native_encode(std::ptr::from_ref(v).cast_mut(), TAG_NATIVE_ARRAY)
                };
                if !s.is_null() {
                    // SAFETY: a new string (refcount 1) that we now own; ZBox releases it.
                    return Ok(Encoded::Php(unsafe { ZBox::from_raw(s.cast::<ZendStr>()) }));
                }
                // SAFETY: `v` is a live zval of this request; php_var_serialize only reads it
                // (and runs the value's own __serialize/__sleep, as serialize() would).
                let s = isolated(|| unsafe {
                    ffi::apcdb_serialize(std::ptr::from_ref(v).cast_mut(), TAG_SERIALIZED)
                });
                if s.is_null() {
                    // A Closure or a throwing __sleep: the exception is pending.
                    return Err(EncodeError::Exception);
                }
                // SAFETY: a new string (refcount 1) that we now own; ZBox releases it.
                Ok(Encoded::Php(unsafe { ZBox::from_raw(s.cast::<ZendStr>()) }))
            }
            Serializer::Igbinary => encode_by_name(v, "igbinary_serialize", TAG_IGBINARY),
        };
    }
    Err(EncodeError::Other(format!(
        "cannot store a value of type {:?}",
        v.get_type()
    )))
}

/// Encode an array or object with the userland serializer function `func`.
fn encode_by_name(v: &Zval, func: &str, tag: u8) -> Result<Encoded, EncodeError> {
    let f = ZendCallable::try_from_name(func).map_err(|e| EncodeError::Other(e.to_string()))?;
    match isolated(|| f.try_call(vec![v])) {
        Ok(s) => match s.zend_str() {
            Some(s) => {
                let b = s.as_bytes();
                let mut out = Vec::with_capacity(b.len() + 1);
                out.push(tag);
                out.extend_from_slice(b);
                Ok(Encoded::Bytes(out))
            }
            // The exception (e.g. a Closure) is pending; igbinary warns and returns null.
            None if crate::util::has_exception() => Err(EncodeError::Exception),
            None => Err(EncodeError::Other(format!(
                "{func}() did not return a string"
            ))),
        },
        Err(_) if crate::util::has_exception() => Err(EncodeError::Exception),
        Err(e) => Err(EncodeError::Other(e.to_string())),
    }
}

/// The PHP value of stored bytes that decode without running PHP code (null, booleans,
/// numbers, strings), built straight from `b`: a string is copied once, into its PHP string.
/// `None` for everything else (serialized values, arrays, damaged bytes), which the caller
/// copies out and hands to [`decode`] once no store read is in progress. Safe to call on bytes
/// in the store's mapping: it runs no user code and, with this PHP's delayed `memory_limit`
/// error, cannot bail out.
pub fn decode_plain(b: &[u8]) -> Option<Zval> {
    // Built here rather than through `decode`, whose error strings this path never needs.
    let mut z = Zval::new();
    match b.split_first() {
        Some((&TAG_NULL, [])) => {}
        Some((&TAG_FALSE, [])) => z.set_bool(false),
        Some((&TAG_TRUE, [])) => z.set_bool(true),
        Some((&TAG_LONG, p)) if p.len() == 8 => z.set_long(i64::from_le_bytes(p.try_into().ok()?)),
        Some((&TAG_DOUBLE, p)) if p.len() == 8 => {
            z.set_double(f64::from_bits(u64::from_le_bytes(p.try_into().ok()?)))
        }
        Some((&TAG_STRING, payload)) => return Some(bytes_zval(payload)),
        _ => return None,
    }
    Some(z)
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
            // SAFETY: `z` is a zval we own; the payload outlives the call, which only reads it.
            isolated(|| unsafe {
                ffi::apcdb_unserialize(&mut z, payload.as_ptr().cast(), payload.len())
            });
            if crate::util::has_exception() {
                // Thrown by the value's own classes; the caller leaves it pending.
                return Err("unserialize() threw".to_string());
            }
            return Ok(z);
        }
        TAG_NATIVE_ARRAY => {
            // SAFETY: `z` is a zval we own; the payload outlives the call, which only reads it.
            let ok =
                unsafe { ffi::apcdb_native_decode(&mut z, payload.as_ptr().cast(), payload.len()) };
            return if ok == 1 {
                Ok(z)
            } else {
                Err("the stored array is damaged".to_string())
            };
        }
        TAG_IGBINARY => {
            let f = ZendCallable::try_from_name("igbinary_unserialize").map_err(|_| {
                "it was stored with apcdb.serializer=igbinary and the igbinary extension is not loaded".to_string()
            })?;
            let arg = bytes_zval(payload);
            return isolated(|| f.try_call(vec![&arg])).map_err(|e| e.to_string());
        }
        _ => return Err(format!("stored value has unknown type tag {tag}")),
    }
    Ok(z)
}
