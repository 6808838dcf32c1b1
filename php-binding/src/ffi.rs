//! Zend engine entry points that ext-php-rs does not bind. All are exported by the PHP binary
//! (`ZEND_API`); `ZEND_FASTCALL` is the plain C convention on x86-64 and aarch64 Linux.

use ext_php_rs::ffi::{zend_class_entry, zend_function_entry, zend_string, zval, HashTable};
use std::os::raw::{c_char, c_int};

/// `zend_expected_type` values (Zend/zend_API.h, `Z_EXPECTED_TYPES`).
pub const Z_EXPECTED_LONG: c_int = 0;
pub const Z_EXPECTED_BOOL: c_int = 2;
pub const Z_EXPECTED_STRING: c_int = 4;
pub const Z_EXPECTED_FUNC: c_int = 12;

pub const E_WARNING: c_int = 2;
pub const E_CORE_WARNING: c_int = 32;
pub const MODULE_PERSISTENT: c_int = 1;

extern "C" {
    /// From `src/serializer_ctx.c` (compiled by build.rs against PHP's headers).
    pub fn apcdb_serializer_lock() -> std::os::raw::c_uint;
    pub fn apcdb_serializer_unlock(saved: std::os::raw::c_uint);
    /// PHP's serializer, its output prefixed with `tag`; NULL with an exception pending.
    pub fn apcdb_serialize(value: *mut zval, tag: u8) -> *mut zend_string;
    /// `unserialize()` without options, into `rv` (false after a notice or an exception).
    pub fn apcdb_unserialize(rv: *mut zval, bytes: *const c_char, len: usize);
    /// Writes the array `value` in the compact native encoding, prefixed with `tag`, into `out`
    /// (room for `cap` bytes): the length; 0 when it does not fit the encoding; `usize::MAX` when
    /// the room was too small.
    pub fn apcdb_native_write(value: *mut zval, tag: u8, out: *mut c_char, cap: usize) -> usize;
    /// Bytes that encoding takes with its tag; 0 when it does not fit the encoding.
    pub fn apcdb_native_size(value: *mut zval) -> usize;
    /// The room `apcdb_native_write` needs to write an encoding of `len` bytes (it checks its room
    /// against upper bounds, so a buffer of exactly `len` bytes may be refused).
    pub fn apcdb_native_room(len: usize) -> usize;
    /// The encoding (`len` from `apcdb_native_size`) in a new PHP string; NULL on a mismatch.
    pub fn apcdb_native_encode(value: *mut zval, tag: u8, len: usize) -> *mut zend_string;
    /// An array in the first native encoding (tag 8, no tag byte) into `rv`; 0 if the bytes are
    /// not one.
    pub fn apcdb_native_decode(rv: *mut zval, bytes: *const c_char, len: usize) -> c_int;
    /// An array in the compact native encoding (tag 9, no tag byte) into `rv`; 0 if the bytes are
    /// not one.
    pub fn apcdb_compact_decode(rv: *mut zval, bytes: *const c_char, len: usize) -> c_int;
    pub fn zend_parse_arg_long_slow(arg: *mut zval, dest: *mut i64, arg_num: u32) -> bool;
    pub fn zend_parse_arg_bool_slow(arg: *mut zval, dest: *mut bool, arg_num: u32) -> bool;
    pub fn zend_parse_arg_str_slow(
        arg: *mut zval,
        dest: *mut *mut zend_string,
        arg_num: u32,
    ) -> bool;
    pub fn zend_wrong_parameter_type_error(num: u32, expected_type: c_int, arg: *mut zval);
    pub fn zend_wrong_parameters_count_error(min: u32, max: u32);
    pub fn zend_wrong_callback_error(num: u32, error: *mut c_char);
    pub fn zend_is_callable_ex(
        callable: *mut zval,
        object: *mut std::ffi::c_void,
        check_flags: u32,
        callable_name: *mut *mut zend_string,
        fcc: *mut std::ffi::c_void,
        error: *mut *mut c_char,
    ) -> bool;
    pub fn zend_register_functions(
        scope: *mut zend_class_entry,
        functions: *const zend_function_entry,
        function_table: *mut HashTable,
        type_: c_int,
    ) -> c_int;
    pub fn zend_get_constant_str(name: *const c_char, len: usize) -> *mut zval;
    pub fn zend_ini_string_ex(
        name: *const c_char,
        len: usize,
        orig: c_int,
        exists: *mut bool,
    ) -> *mut c_char;
    pub fn zend_unregister_ini_entries(module_number: c_int);
    pub fn php_error_docref(docref: *const c_char, type_: c_int, format: *const c_char, ...);
    pub fn display_ini_entries(module: *mut ext_php_rs::ffi::zend_module_entry);
    pub fn zend_try_assign_typed_ref_bool(
        r: *mut ext_php_rs::ffi::zend_reference,
        val: bool,
    ) -> c_int;
    pub fn cfg_get_entry(name: *const c_char, len: usize) -> *mut zval;
    pub fn sapi_get_request_time() -> f64;
    pub fn _efree(ptr: *mut std::ffi::c_void);
    pub static mut module_registry: HashTable;
}
