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
//! | 8 | array | apcdb's first native array encoding (`serializer_ctx.c`), written by earlier builds |
//! | 9 | array | the compact native array encoding: arrays of scalars and arrays |
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
    TAG_COMPACT_ARRAY, TAG_DOUBLE, TAG_FALSE, TAG_IGBINARY, TAG_LONG, TAG_NATIVE_ARRAY, TAG_NULL,
    TAG_SERIALIZED, TAG_STRING, TAG_TRUE,
};
use ext_php_rs::boxed::ZBox;
use ext_php_rs::types::{ZendCallable, ZendStr, Zval};
use std::cell::Cell;
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

thread_local! {
    /// The buffer values are encoded into, kept between stores so that storing a scalar or a
    /// native array allocates nothing here (and its bytes are written once, not grown or
    /// trimmed). Taken out while in use: an encode that runs user code (`__serialize`) may store
    /// again, and that nested store then encodes into a buffer of its own.
    static ENCODE_BUF: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Values up to this size are encoded into the kept buffer; larger native arrays go to a string
/// of PHP's allocator, which counts against `memory_limit` (a long-lived worker that once stored
/// a big value does not hold its size for good either).
const ENCODE_BUF_KEEP: usize = 64 << 10;

/// Encoded bytes: in the kept buffer (given back when this is dropped), or a string made in C
/// (serializer, or a native array too big for the buffer), used as it is, not copied.
pub enum Encoded {
    Buf(Vec<u8>),
    Php(ZBox<ZendStr>),
}

impl Deref for Encoded {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Encoded::Buf(b) => b,
            Encoded::Php(s) => s.as_bytes(),
        }
    }
}

impl Drop for Encoded {
    fn drop(&mut self) {
        if let Encoded::Buf(b) = self {
            if b.capacity() <= ENCODE_BUF_KEEP {
                let b = std::mem::take(b);
                // During thread teardown the slot may be gone: the buffer is then just freed.
                let _ = ENCODE_BUF.try_with(|c| c.set(b));
            }
        }
    }
}

/// The kept buffer, emptied, with room for `len` bytes.
fn buffer(len: usize) -> Vec<u8> {
    let mut b = ENCODE_BUF.try_with(Cell::take).unwrap_or_default();
    b.clear();
    b.reserve(len);
    b
}

/// `tag` followed by `payload`, in the kept buffer.
fn tagged(tag: u8, payload: &[u8]) -> Result<Encoded, EncodeError> {
    let mut b = buffer(1 + payload.len());
    b.push(tag);
    b.extend_from_slice(payload);
    Ok(Encoded::Buf(b))
}

/// Encode `v`; arrays and objects with `ser`.
pub fn encode(v: &Zval, ser: Serializer) -> Result<Encoded, EncodeError> {
    let v = v.dereference();
    if v.is_null() {
        return tagged(TAG_NULL, &[]);
    }
    if v.is_false() {
        return tagged(TAG_FALSE, &[]);
    }
    if v.is_true() {
        return tagged(TAG_TRUE, &[]);
    }
    if let Some(l) = v.long() {
        return tagged(TAG_LONG, &l.to_le_bytes());
    }
    if let Some(d) = v.double() {
        return tagged(TAG_DOUBLE, &d.to_bits().to_le_bytes());
    }
    if let Some(s) = v.zend_str() {
        return tagged(TAG_STRING, s.as_bytes());
    }
    if v.is_resource() {
        return Err(EncodeError::Resource);
    }
    if v.is_array() || v.is_object() {
        return match ser {
            Serializer::Php => {
                // Arrays of plain values skip the serializer (no user code can run for them).
                if let Some(e) = encode_native(v) {
                    return Ok(e);
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

/// Encoded scalars up to this size (a tag and a string of 255 bytes) are built on the caller's
/// stack by [`encode_small`].
pub const SMALL: usize = 256;

/// A null, boolean, int, float or string of at most `SMALL - 1` bytes, encoded into `out` (the
/// store's common case: no thread-local buffer to take and give back, which in a loaded
/// library costs a `__tls_get_addr` call each); `None` for anything else.
#[inline]
pub fn encode_small<'a>(v: &Zval, out: &'a mut [u8; SMALL]) -> Option<&'a [u8]> {
    let len = if let Some(l) = v.long() {
        out[0] = TAG_LONG;
        out[1..9].copy_from_slice(&l.to_le_bytes());
        9
    } else if let Some(s) = v.zend_str() {
        let b = s.as_bytes();
        let dst = out.get_mut(1..1 + b.len())?;
        dst.copy_from_slice(b);
        out[0] = TAG_STRING;
        1 + b.len()
    } else if let Some(d) = v.double() {
        out[0] = TAG_DOUBLE;
        out[1..9].copy_from_slice(&d.to_bits().to_le_bytes());
        9
    } else if v.is_null() {
        out[0] = TAG_NULL;
        1
    } else if v.is_false() {
        out[0] = TAG_FALSE;
        1
    } else if v.is_true() {
        out[0] = TAG_TRUE;
        1
    } else {
        return None;
    };
    Some(&out[..len])
}

/// An array of plain values (`serializer_ctx.c`, tag 9), written once into the kept buffer
/// (sized first only when it did not fit; a PHP string if bigger than the buffer is kept);
/// `None` when something in it needs the serializer.
pub fn encode_native(v: &Zval) -> Option<Encoded> {
    let z = std::ptr::from_ref(v).cast_mut();
    let mut b = buffer(0);
    // SAFETY: `z` is a live zval of this request, which the writer only reads (no user code
    // runs); it writes at most `b.capacity()` bytes into `b`'s spare room and says how many.
    let wrote = unsafe {
        ffi::apcdb_native_write(z, TAG_COMPACT_ARRAY, b.as_mut_ptr().cast(), b.capacity())
    };
    let len = match wrote {
        0 => {
            drop(Encoded::Buf(b));
            return None;
        }
        usize::MAX => {
            // SAFETY: as above; sizing only reads.
            unsafe { ffi::apcdb_native_size(z) }
        }
        n => {
            // SAFETY: the writer wrote these `n` bytes, within the capacity.
            unsafe { b.set_len(n) };
            return Some(Encoded::Buf(b));
        }
    };
    if len == 0 {
        // Found something for the serializer past where the buffer ran out.
        drop(Encoded::Buf(b));
        return None;
    }
    // SAFETY: plain arithmetic in C.
    let room = unsafe { ffi::apcdb_native_room(len) };
    if room > ENCODE_BUF_KEEP {
        drop(Encoded::Buf(b));
        // SAFETY: as above, and nothing ran since it was sized; a null result allocated nothing.
        let s = unsafe { ffi::apcdb_native_encode(z, TAG_COMPACT_ARRAY, len) };
        // SAFETY: a new string (refcount 1) that we now own; ZBox releases it.
        return (!s.is_null()).then(|| Encoded::Php(unsafe { ZBox::from_raw(s.cast()) }));
    }
    b.reserve(room);
    // SAFETY: as the first write, into room for `room` bytes.
    let wrote =
        unsafe { ffi::apcdb_native_write(z, TAG_COMPACT_ARRAY, b.as_mut_ptr().cast(), room) };
    if wrote != len {
        // Cannot happen (the same array, sized just now); the serializer then stores it.
        drop(Encoded::Buf(b));
        return None;
    }
    // SAFETY: the writer wrote these `len` bytes, within the capacity.
    unsafe { b.set_len(len) };
    Some(Encoded::Buf(b))
}

/// Encode an array or object with the userland serializer function `func`.
fn encode_by_name(v: &Zval, func: &str, tag: u8) -> Result<Encoded, EncodeError> {
    let f = ZendCallable::try_from_name(func).map_err(|e| EncodeError::Other(e.to_string()))?;
    match isolated(|| f.try_call(vec![v])) {
        Ok(s) => match s.zend_str() {
            Some(s) => tagged(tag, s.as_bytes()),
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
        TAG_NATIVE_ARRAY | TAG_COMPACT_ARRAY => {
            // SAFETY: `z` is a zval we own; the payload outlives the call, which only reads it.
            let ok = unsafe {
                let decode = if tag == TAG_COMPACT_ARRAY {
                    ffi::apcdb_compact_decode
                } else {
                    ffi::apcdb_native_decode
                };
                decode(&mut z, payload.as_ptr().cast(), payload.len())
            };
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
