//! Small helpers around the engine: warnings, arguments with PHP's own coercion and error wording,
//! by-reference parameters, time.

use crate::ffi;
use ext_php_rs::ffi::zval;
use ext_php_rs::types::{ZendStr, Zval};
use ext_php_rs::zend::ExecuteData;
use std::ffi::CString;

/// `php_error_docref(NULL, E_WARNING, ...)`: PHP prefixes the current function, e.g.
/// "Warning: apc_store(): <msg>".
pub fn warn(msg: &str) {
    error_docref(ffi::E_WARNING, msg);
}

pub fn error_docref(ty: i32, msg: &str) {
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    unsafe { ffi::php_error_docref(std::ptr::null(), ty, c"%s".as_ptr(), c.as_ptr()) };
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// APCu's TTL rule in wall-clock time: an entry stored at second `t` with `ttl > 0` is live while
/// the current second is at most `t + ttl`, i.e. between `ttl` and `ttl + 1` seconds. 0 = forever;
/// a negative TTL stores an entry that is already expired.
pub fn expiry_for_ttl(ttl: i64) -> u64 {
    if ttl == 0 {
        return 0;
    }
    let now_s = now_ms() / 1000;
    if ttl < 0 {
        return 1; // 1 ms after the epoch: expired, never "forever"
    }
    now_s
        .saturating_add(ttl as u64)
        .saturating_add(1)
        .saturating_mul(1000)
}

/// The TTL (seconds) APCu would report for an entry, from its expiry and modification time.
pub fn ttl_of(expires_at_ms: u64, modified_at_ms: u64) -> i64 {
    if expires_at_ms == 0 {
        0
    } else {
        ((expires_at_ms / 1000)
            .saturating_sub(modified_at_ms / 1000)
            .saturating_sub(1)) as i64
    }
}

/// Arguments of a call as the engine passed them.
pub struct Args<'a> {
    ex: &'a mut ExecuteData,
}

impl<'a> Args<'a> {
    pub fn new(ex: &'a mut ExecuteData) -> Self {
        Args { ex }
    }

    pub fn count(&self) -> usize {
        unsafe { self.ex.This.u2.num_args as usize }
    }

    /// PHP's ArgumentCountError ("expects at least 1 argument, 0 given") when the count is wrong.
    pub fn check_count(&self, min: usize, max: usize) -> bool {
        let n = self.count();
        if n < min || n > max {
            unsafe { ffi::zend_wrong_parameters_count_error(min as u32, max as u32) };
            return false;
        }
        true
    }

    /// Argument `i` (0-based), as passed (may be a reference for by-reference parameters).
    pub fn raw(&mut self, i: usize) -> Option<&'a mut Zval> {
        if i >= self.count() {
            return None;
        }
        unsafe { self.ex.zend_call_arg(i) }
    }

    /// Argument `i` with references resolved.
    pub fn get(&mut self, i: usize) -> Option<&'a mut Zval> {
        self.raw(i).map(|z| z.dereference_mut())
    }

    /// An `int` parameter (Z_PARAM_LONG): PHP's weak/strict coercion and TypeError wording.
    /// `Ok(None)` when not passed; `Err(())` after the engine raised the error.
    pub fn long(&mut self, i: usize) -> Result<Option<i64>, ()> {
        let Some(z) = self.get(i) else {
            return Ok(None);
        };
        if let Some(l) = z.long() {
            return Ok(Some(l));
        }
        let mut out: i64 = 0;
        let p = z as *mut Zval as *mut zval;
        if unsafe { ffi::zend_parse_arg_long_slow(p, &mut out, i as u32 + 1) } {
            Ok(Some(out))
        } else {
            if !has_exception() {
                unsafe {
                    ffi::zend_wrong_parameter_type_error(i as u32 + 1, ffi::Z_EXPECTED_LONG, p)
                };
            }
            Err(())
        }
    }

    /// A `bool` parameter (Z_PARAM_BOOL).
    pub fn bool(&mut self, i: usize) -> Result<Option<bool>, ()> {
        let Some(z) = self.get(i) else {
            return Ok(None);
        };
        if let Some(b) = z.bool() {
            return Ok(Some(b));
        }
        let mut out = false;
        let p = z as *mut Zval as *mut zval;
        if unsafe { ffi::zend_parse_arg_bool_slow(p, &mut out, i as u32 + 1) } {
            Ok(Some(out))
        } else {
            if !has_exception() {
                unsafe {
                    ffi::zend_wrong_parameter_type_error(i as u32 + 1, ffi::Z_EXPECTED_BOOL, p)
                };
            }
            Err(())
        }
    }

    /// A `string` parameter (Z_PARAM_STR): scalars are converted as PHP does, arrays and other
    /// types raise PHP's TypeError.
    pub fn string(&mut self, i: usize) -> Result<Option<Vec<u8>>, ()> {
        let Some(z) = self.get(i) else {
            return Ok(None);
        };
        if let Some(s) = z.zend_str() {
            return Ok(Some(s.as_bytes().to_vec()));
        }
        let mut out: *mut ext_php_rs::ffi::zend_string = std::ptr::null_mut();
        let p = z as *mut Zval as *mut zval;
        // On success the engine has converted the argument to a string in place.
        if unsafe { ffi::zend_parse_arg_str_slow(p, &mut out, i as u32 + 1) } && !out.is_null() {
            let s = unsafe { &*(out as *const ZendStr) };
            Ok(Some(s.as_bytes().to_vec()))
        } else {
            if !has_exception() {
                unsafe {
                    ffi::zend_wrong_parameter_type_error(i as u32 + 1, ffi::Z_EXPECTED_STRING, p)
                };
            }
            Err(())
        }
    }

    /// A `callable` parameter (Z_PARAM_FUNC): PHP's "must be a valid callback, ..." TypeError.
    pub fn callable(&mut self, i: usize) -> Result<&'a mut Zval, ()> {
        let z = self.get(i).ok_or(())?;
        let mut err: *mut std::os::raw::c_char = std::ptr::null_mut();
        let ok = unsafe {
            ffi::zend_is_callable_ex(
                z as *mut Zval as *mut zval,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut err,
            )
        };
        if ok {
            if !err.is_null() {
                unsafe { ffi::_efree(err.cast()) };
            }
            Ok(z)
        } else {
            if err.is_null() {
                unsafe {
                    ffi::zend_wrong_parameter_type_error(
                        i as u32 + 1,
                        12, /* Z_EXPECTED_FUNC */
                        z as *mut Zval as *mut zval,
                    )
                };
            } else {
                // Frees `err`.
                unsafe { ffi::zend_wrong_callback_error(i as u32 + 1, err) };
            }
            Err(())
        }
    }
}

/// Assign to a by-reference parameter (`&$success`).
pub fn set_ref_bool(arg: Option<&mut Zval>, v: bool) {
    if let Some(z) = arg {
        if z.is_reference() {
            z.dereference_mut().set_bool(v);
        }
    }
}

pub fn has_exception() -> bool {
    // EG(exception), read without ext-php-rs's globals lock.
    unsafe { ext_php_rs::ffi::ext_php_rs_executor_globals().as_ref() }
        .is_some_and(|eg| !eg.exception.is_null())
}

/// Bytes of a zval converted to a string the way `convert_to_string` does for scalars; None for
/// arrays, objects without __toString and resources.
pub fn scalar_bytes(z: &Zval) -> Option<Vec<u8>> {
    if let Some(s) = z.zend_str() {
        return Some(s.as_bytes().to_vec());
    }
    if let Some(l) = z.long() {
        return Some(l.to_string().into_bytes());
    }
    if z.is_null() || z.is_false() {
        return Some(Vec::new());
    }
    if z.is_true() {
        return Some(b"1".to_vec());
    }
    if z.is_double() {
        return z.coerce_to_string().map(String::into_bytes);
    }
    None
}

/// A PHP string zval from bytes.
pub fn bytes_zval(b: &[u8]) -> Zval {
    let mut z = Zval::new();
    z.set_zend_string(ZendStr::new(b, false));
    z
}
