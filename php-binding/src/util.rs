//! Small helpers around the engine: warnings, arguments with PHP's own coercion and error wording,
//! by-reference parameters, time, info arrays.

use crate::ffi;
use apc::info::{Field, Fields, Slot};
use ext_php_rs::boxed::ZBox;
use ext_php_rs::ffi::zval;
use ext_php_rs::types::{ZendHashTable, ZendStr, Zval};
use ext_php_rs::zend::{try_catch, CatchError, ExecuteData};
use std::ffi::CString;
use std::os::raw::c_int;
use std::panic::AssertUnwindSafe;

/// `php_error_docref(NULL, E_WARNING, ...)`: PHP prefixes the current function, e.g.
/// "Warning: apc_store(): <msg>".
pub fn warn(msg: &str) {
    error_docref(ffi::E_WARNING, msg);
}

pub fn error_docref(ty: i32, msg: &str) {
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    // SAFETY: a "%s" format with one NUL-terminated argument that outlives the call; a null
    // docref is allowed (no manual link).
    unsafe { ffi::php_error_docref(std::ptr::null(), ty, c"%s".as_ptr(), c.as_ptr()) };
}

pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec for the call's duration. (Read directly, as the
    // engine does: every store dates its write, and `SystemTime`'s conversions cost a third of
    // the read again.)
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } == 0 && ts.tv_sec >= 0 {
        return ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000;
    }
    0
}

/// The wall clock in milliseconds from the coarse clock (the kernel's last tick).
fn coarse_now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec for the call's duration.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 && ts.tv_sec >= 0 {
        return ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000;
    }
    now_ms()
}

/// The time a write counts from (APCu's rule: [`apc::ttl::write_time_ms`]): the request's start
/// with `apc.use_request_time=1`, else now.
fn write_time_ms() -> u64 {
    if crate::config::use_request_time() {
        // SAFETY: the SAPI's request time, read on PHP's thread during a request.
        let t = unsafe { ffi::sapi_get_request_time() };
        if t > 0.0 {
            return apc::ttl::write_time_ms(true, 0, (t * 1000.0) as u64);
        }
    }
    now_ms()
}

/// The expiry of an entry written now with `ttl` seconds (APCu's rule: [`apc::ttl`]), counted
/// from the request's start with `apc.use_request_time=1`.
pub fn expiry_for_ttl(ttl: i64) -> u64 {
    if ttl == 0 {
        return 0;
    }
    apc::ttl::expiry_for_ttl(ttl, write_time_ms())
}

/// A write's times: its expiry for `ttl` (as [`expiry_for_ttl`]) and the time it is dated
/// (its `mtime`), both from one reading of the clock (or the request's start, as APCu dates
/// every write of a request with `apc.use_request_time=1`).
pub fn write_times(ttl: i64) -> (u64, u64) {
    if ttl == 0 && !crate::config::use_request_time() {
        // No expiry to count: only the date is recorded, which every report gives in whole
        // seconds. The coarse clock (at most a tick behind, its seconds those of PHP's `time()`)
        // costs a fifth of the precise one here, which was 3 % of a small store.
        return (0, coarse_now_ms());
    }
    let at = write_time_ms();
    (apc::ttl::expiry_for_ttl(ttl, at), at)
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
        // SAFETY: `ex` is the frame of the internal-function call being handled; for such a frame
        // the engine keeps the argument count in `This.u2.num_args`, so that union field is the
        // one that is set.
        unsafe { self.ex.This.u2.num_args as usize }
    }

    /// PHP's ArgumentCountError ("expects at least 1 argument, 0 given") when the count is wrong.
    pub fn check_count(&self, min: usize, max: usize) -> bool {
        let n = self.count();
        if n < min || n > max {
            // SAFETY: called from a function handler, so the engine's current frame is this call;
            // the function only reads it to word and throw the error.
            unsafe { ffi::zend_wrong_parameters_count_error(min as u32, max as u32) };
            return false;
        }
        true
    }

    /// Argument `i` (0-based), as passed (may be a reference for by-reference parameters).
    ///
    /// The result borrows `self` mutably, so two arguments are never borrowed at once: copy what
    /// is needed out of one before reading the next. Do not keep it across a call that can run
    /// PHP code; read the argument again afterwards.
    pub fn raw(&mut self, i: usize) -> Option<&mut Zval> {
        if i >= self.count() {
            return None;
        }
        // SAFETY: `i < num_args`, so the slot is one of the arguments the caller pushed; they stay
        // in the call frame until the handler returns, which outlives this `&mut self` borrow,
        // and the borrow of `self` makes this the only reference handed out meanwhile.
        unsafe { self.ex.zend_call_arg(i) }
    }

    /// Argument `i` with references resolved.
    pub fn get(&mut self, i: usize) -> Option<&mut Zval> {
        self.raw(i).map(|z| z.dereference_mut())
    }

    /// An `int` parameter (Z_PARAM_LONG): PHP's weak/strict coercion and TypeError wording.
    /// `Ok(None)` when not passed; `Err(())` after the engine raised the error.
    pub fn long(&mut self, i: usize) -> Result<Option<i64>, ()> {
        match self.get(i) {
            Some(z) => coerce_long(z, i as u32 + 1).map(Some),
            None => Ok(None),
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
        let parse = ffi::zend_parse_arg_bool_slow;
        coerce_slow(z, i as u32 + 1, ffi::Z_EXPECTED_BOOL, false, parse, Some).map(Some)
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
        // On success the engine has converted the argument to a string in place and points `out`
        // at it.
        let bytes = |out: *mut ext_php_rs::ffi::zend_string| {
            // SAFETY: a non-null `out` is the argument's own string, alive while the argument is.
            unsafe { out.cast::<ZendStr>().as_ref() }.map(|s| s.as_bytes().to_vec())
        };
        let parse = ffi::zend_parse_arg_str_slow;
        coerce_slow(
            z,
            i as u32 + 1,
            ffi::Z_EXPECTED_STRING,
            std::ptr::null_mut(),
            parse,
            bytes,
        )
        .map(Some)
    }

    /// A `callable` parameter (Z_PARAM_FUNC): PHP's "must be a valid callback, ..." TypeError.
    pub fn callable(&mut self, i: usize) -> Result<&mut Zval, ()> {
        let z = self.get(i).ok_or(())?;
        let mut err: *mut std::os::raw::c_char = std::ptr::null_mut();
        // SAFETY: `z` is a live argument; the object, name and cache outputs may be null (not
        // wanted), and `err` is a valid place for the engine to put its message.
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
                // SAFETY: the message was emalloc'ed by the engine and handed to us to free.
                unsafe { ffi::_efree(err.cast()) };
            }
            Ok(z)
        } else {
            if err.is_null() {
                type_error(i as u32 + 1, ffi::Z_EXPECTED_FUNC, z);
            } else {
                // SAFETY: `err` is the engine's emalloc'ed message; this call consumes and frees it.
                unsafe { ffi::zend_wrong_callback_error(i as u32 + 1, err) };
            }
            Err(())
        }
    }
}

/// An engine `zend_parse_arg_*_slow` function.
type SlowParser<T> = unsafe extern "C" fn(*mut zval, *mut T, u32) -> bool;

/// PHP's TypeError for argument `argnum` (1-based) of the running function.
fn type_error(argnum: u32, expected: c_int, z: &mut Zval) {
    // SAFETY: called from a function handler (the error names the running function); `z` is a
    // live zval that the engine only reads to name its type.
    unsafe { ffi::zend_wrong_parameter_type_error(argnum, expected, z as *mut Zval as *mut zval) };
}

/// The slow path of a Z_PARAM_* parameter: `parse` coerces `z` as PHP would (weak or strict mode
/// of the caller), writing into `out`; `finish` turns that into the value. On failure the
/// TypeError is raised unless the engine already threw (e.g. a deprecation made an exception).
fn coerce_slow<T, R>(
    z: &mut Zval,
    argnum: u32,
    expected: c_int,
    mut out: T,
    parse: SlowParser<T>,
    finish: impl FnOnce(T) -> Option<R>,
) -> Result<R, ()> {
    // SAFETY: `z` is a live zval we may modify (the string parser converts it in place), `out`
    // has the type `parse` writes, and we run inside a function handler, as the parsers expect.
    let parsed = unsafe { parse(z as *mut Zval as *mut zval, &mut out, argnum) };
    if parsed {
        if let Some(v) = finish(out) {
            return Ok(v);
        }
    }
    if !has_exception() {
        type_error(argnum, expected, z);
    }
    Err(())
}

/// `z` as an `int` parameter at position `argnum` (1-based), with PHP's coercion and TypeError.
pub fn coerce_long(z: &mut Zval, argnum: u32) -> Result<i64, ()> {
    if let Some(l) = z.long() {
        return Ok(l);
    }
    let parse = ffi::zend_parse_arg_long_slow;
    coerce_slow(z, argnum, ffi::Z_EXPECTED_LONG, 0, parse, Some)
}

/// Assign to a by-reference parameter (`&$success`); pass `opt.as_deref_mut()` to keep the
/// argument for a later assignment. A reference held by a typed property (`public array $x`)
/// goes through the engine's typed assignment, which checks (and coerces to) the property's type
/// and throws PHP's TypeError when a bool does not fit, as ZEND_TRY_ASSIGN_REF_BOOL does.
pub fn set_ref_bool(arg: Option<&mut Zval>, v: bool) {
    let Some(z) = arg else { return };
    if !z.is_reference() {
        return;
    }
    // SAFETY: `z` is a reference zval (checked), so `value.ref_` points at its live
    // zend_reference; `sources` is non-null exactly when typed properties hold that reference,
    // and then the engine's typed assignment is the only correct store into it.
    unsafe {
        let r = z.value.ref_;
        if !(*r).sources.ptr.is_null() {
            let _ = ffi::zend_try_assign_typed_ref_bool(r, v);
            return;
        }
    }
    z.dereference_mut().set_bool(v);
}

pub fn has_exception() -> bool {
    // EG(exception), read without ext-php-rs's globals lock.
    // SAFETY: the executor globals are null or the engine's live globals; only PHP's own thread
    // calls this, and it does not write them meanwhile.
    unsafe { ext_php_rs::ffi::ext_php_rs_executor_globals().as_ref() }
        .is_some_and(|eg| !eg.exception.is_null())
}

/// Whether PHP's allocator has gone past `memory_limit` during this call. This PHP reports that
/// error when control is back in the VM (memory may grow to a hard limit meanwhile, past which
/// the process is killed), so a loop that builds a large PHP value checks this and stops early:
/// the script then ends with PHP's "Allowed memory size ... exhausted" fatal error.
pub fn has_oom() -> bool {
    // SAFETY: as in `has_exception`: the engine's live globals, read on PHP's own thread.
    unsafe { ext_php_rs::ffi::ext_php_rs_executor_globals().as_ref() }.is_some_and(|eg| {
        eg.delayed_oom.state != ext_php_rs::ffi::_zend_oom_state_ZEND_OOM_STATE_NONE
    })
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

/// A PHP bool zval.
pub fn bool_zval(b: bool) -> Zval {
    let mut z = Zval::new();
    z.set_bool(b);
    z
}

/// A PHP string zval from bytes.
pub fn bytes_zval(b: &[u8]) -> Zval {
    let mut z = Zval::new();
    z.set_zend_string(ZendStr::new(b, false));
    z
}

/// Runs `f`, which may run PHP code, on `owned`; if PHP bails out inside it (a fatal error,
/// `exit()` in a `__wakeup`), `owned` is freed before the bailout goes on, so a long-lived worker
/// does not leak the Rust side of a big listing. A panic inside `f` continues as a panic.
pub fn bailout_safe<T, R>(owned: T, f: impl FnOnce(&T) -> R) -> R {
    match try_catch(AssertUnwindSafe(|| f(&owned))) {
        Ok(r) => r,
        Err(CatchError::Bailout) => {
            drop(owned);
            // SAFETY: this frame now owns nothing that needs dropping; the jump continues to the
            // engine's zend_try around the running method, as it would have without us.
            unsafe { ext_php_rs::zend::bailout() }
        }
        Err(e) => panic!("{e}"),
    }
}

/// The PHP array of an info layout ([`apc::info`]): the one place where those arrays are made.
/// `fill` makes the values of its [`Slot`]s (it may run PHP code).
pub fn info_array(fields: Fields, fill: &mut dyn FnMut(Slot) -> Zval) -> ZBox<ZendHashTable> {
    let mut h = ZendHashTable::new();
    for (name, f) in fields {
        let _ = h.insert(name, field_zval(f, fill));
    }
    h
}

fn field_zval(f: Field, fill: &mut dyn FnMut(Slot) -> Zval) -> Zval {
    let mut z = Zval::new();
    match f {
        Field::Int(n) => z.set_long(n),
        Field::Float(d) => z.set_double(d),
        Field::Str(s) => {
            let _ = z.set_string(s, false);
        }
        Field::Slot(s) => return fill(s),
        Field::List(items) => {
            let mut h = ZendHashTable::new();
            for item in items {
                let _ = h.push(field_zval(item, fill));
            }
            z.set_hashtable(h);
        }
        Field::Map(fields) => z.set_hashtable(info_array(fields, fill)),
    }
    z
}
