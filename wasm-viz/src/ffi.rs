//! The wasm module's raw C-ABI exports (no wasm-bindgen): memory for the
//! caller's input, [`trace_hash`](crate::trace_hash) over it, and the last
//! error. Compiled (and exported, `#[no_mangle]`) for wasm32 only; native
//! builds compile it just for its tests and these docs.
//!
//! This is the crate's only unsafe code: turning the caller's pointers into
//! a slice and handing memory to and back from the allocator. Every function
//! taking a pointer is `unsafe` and states what the caller must guarantee;
//! the host (JavaScript) upholds it by passing exactly what
//! [`shen_alloc`] returned and the length it asked for.
#![allow(unsafe_code)]

use std::alloc::{alloc, dealloc, Layout};
use std::cell::RefCell;
use std::ptr::{self, NonNull};

thread_local! {
    /// The error of the last [`shen_trace_hash`] call; empty after a success.
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_error(message: String) {
    LAST_ERROR.with_borrow_mut(|e| *e = message);
}

/// Allocate `len` bytes (uninitialised, alignment 1) for the caller to fill,
/// e.g. with a scenario's UTF-8 text. Returns null if the allocation fails;
/// for `len == 0`, a dangling non-null pointer that must not be read. Give
/// the memory back with [`shen_free`] and the same `len`.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub extern "C" fn shen_alloc(len: usize) -> *mut u8 {
    let Ok(layout) = Layout::array::<u8>(len) else {
        return ptr::null_mut();
    };
    if len == 0 {
        return NonNull::dangling().as_ptr();
    }
    // SAFETY: `layout` has a non-zero size (checked above).
    unsafe { alloc(layout) }
}

/// Free memory [`shen_alloc`] returned. Null pointers and `len == 0` are
/// ignored.
///
/// # Safety
///
/// `ptr` is null or was returned by `shen_alloc(len)` with this same `len`,
/// and is not used again after this call.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn shen_free(ptr: *mut u8, len: usize) {
    if ptr.is_null() || len == 0 {
        return;
    }
    let Ok(layout) = Layout::array::<u8>(len) else {
        return;
    };
    // SAFETY: the caller guarantees `ptr` came from `shen_alloc(len)`, which
    // allocated it with this very layout, and that it is freed only once.
    unsafe { dealloc(ptr, layout) }
}

/// [`trace_hash`](crate::trace_hash) of the scenario whose UTF-8 text is the
/// `len` bytes at `ptr`, run with `seed`. Returns 0 on error and records the
/// message (read it with [`shen_error_len`] and [`shen_error_ptr`]); a
/// success clears it, so `shen_error_len() == 0` tells a real hash of 0 from
/// an error.
///
/// # Safety
///
/// Unless `len == 0`, `ptr` points to `len` initialised bytes (e.g. memory
/// from [`shen_alloc`]) that nothing writes during the call.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn shen_trace_hash(ptr: *const u8, len: usize, seed: u64) -> u64 {
    let bytes: &[u8] = if len == 0 {
        &[]
    } else if ptr.is_null() {
        set_error("shen_trace_hash: null pointer".to_string());
        return 0;
    } else {
        // SAFETY: the caller guarantees `len` initialised bytes at `ptr`,
        // unchanged for the duration of this call (the slice's lifetime).
        unsafe { std::slice::from_raw_parts(ptr, len) }
    };
    let result = std::str::from_utf8(bytes)
        .map_err(|e| format!("scenario is not UTF-8: {e}"))
        .and_then(|text| crate::trace_hash(text, seed));
    match result {
        Ok(hash) => {
            set_error(String::new());
            hash
        }
        Err(e) => {
            set_error(e);
            0
        }
    }
}

/// Byte length of the last [`shen_trace_hash`] call's error message; 0 when
/// it succeeded (or none was made).
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub extern "C" fn shen_error_len() -> usize {
    LAST_ERROR.with_borrow(|e| e.len())
}

/// Pointer to the last error message's UTF-8 bytes ([`shen_error_len`] of
/// them). Valid until the next [`shen_trace_hash`] call.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub extern "C" fn shen_error_ptr() -> *const u8 {
    LAST_ERROR.with_borrow(|e| e.as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the JS host does: copy the text in, hash, read any error, free.
    fn call(text: &str, seed: u64) -> (u64, String) {
        let ptr = shen_alloc(text.len());
        assert!(!ptr.is_null());
        // SAFETY: `ptr` holds `text.len()` bytes from shen_alloc.
        unsafe { ptr::copy_nonoverlapping(text.as_ptr(), ptr, text.len()) };
        // SAFETY: `ptr` holds `text.len()` initialised bytes.
        let hash = unsafe { shen_trace_hash(ptr, text.len(), seed) };
        // SAFETY: from shen_alloc with this length, freed once.
        unsafe { shen_free(ptr, text.len()) };
        // SAFETY: shen_error_ptr points to shen_error_len bytes of a String.
        let err = unsafe { std::slice::from_raw_parts(shen_error_ptr(), shen_error_len()) };
        (hash, String::from_utf8(err.to_vec()).unwrap())
    }

    #[test]
    fn the_exports_round_trip() {
        let text = include_str!("../../scenarios/relay-basic.toml");
        let (hash, err) = call(text, 5);
        assert_eq!(err, "");
        assert_eq!(hash, crate::trace_hash(text, 5).unwrap());

        let (hash, err) = call("name = 1", 5);
        assert_eq!(hash, 0);
        assert!(err.contains("name"), "{err}");

        // An error is cleared by the next success.
        assert_eq!(call(text, 5).1, "");

        let (hash, err) = call("", 5);
        assert_eq!(hash, 0);
        assert!(!err.is_empty());

        // SAFETY: a null pointer with a length is rejected before any read.
        assert_eq!(unsafe { shen_trace_hash(ptr::null(), 3, 1) }, 0);
        assert!(shen_error_len() > 0);
        // SAFETY: null and zero-length frees are no-ops.
        unsafe {
            shen_free(ptr::null_mut(), 4);
            shen_free(shen_alloc(0), 0);
        }
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let bytes = [0xff, 0xfe];
        // SAFETY: two initialised bytes.
        assert_eq!(unsafe { shen_trace_hash(bytes.as_ptr(), 2, 1) }, 0);
        // SAFETY: as in `call`.
        let err = unsafe { std::slice::from_raw_parts(shen_error_ptr(), shen_error_len()) };
        assert!(String::from_utf8_lossy(err).contains("UTF-8"));
    }
}
