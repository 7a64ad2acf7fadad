//! The calls about the library rather than an engine: this thread's last error message,
//! the names of the statuses and the version. They take no engine and answer before one
//! exists.

use super::guard::{guard_value, with_last_error};
use super::types::presence_status;
use std::ffi::{c_char, CStr, CString};
use std::sync::OnceLock;

/// Copies the message of the last failed call on this thread into `buf`, NUL-terminated
/// and truncated to `cap - 1` bytes, and returns the message's full length (excluding
/// the NUL), like snprintf. With `buf` NULL or `cap` 0 nothing is written: call it that
/// way to learn the size. Returns 0 when no call has failed on this thread yet.
#[no_mangle]
pub unsafe extern "C" fn presence_last_error_message(buf: *mut c_char, cap: usize) -> usize {
    guard_value(0, || {
        with_last_error(|message| {
            if !buf.is_null() && cap > 0 {
                let n = message.len().min(cap - 1);
                // SAFETY: `buf` has room for `cap` bytes by contract, and n < cap.
                unsafe {
                    std::ptr::copy_nonoverlapping(message.as_ptr(), buf.cast::<u8>(), n);
                    *buf.add(n) = 0;
                }
            }
            message.len()
        })
    })
}

/// Returns the name of a status value, such as `"PRESENCE_STATUS_NOT_TRACKED"`, as a
/// static string the caller must not free. An unknown value gives `"PRESENCE_STATUS_UNKNOWN"`.
#[no_mangle]
pub extern "C" fn presence_status_name(status: u32) -> *const c_char {
    // Built once from the enum, so a new status is named without another list; the
    // strings live for the whole process.
    static NAMES: OnceLock<Vec<(u32, CString)>> = OnceLock::new();
    static UNKNOWN: &CStr = c"PRESENCE_STATUS_UNKNOWN";
    guard_value(UNKNOWN.as_ptr(), || {
        let names = NAMES.get_or_init(|| {
            presence_status::ALL
                .iter()
                .map(|s| {
                    let name = format!("PRESENCE_STATUS_{}", s.name());
                    (
                        *s as u32,
                        CString::new(name).expect("no NUL in a status name"),
                    )
                })
                .collect()
        });
        names
            .iter()
            .find(|(value, _)| *value == status)
            .map_or(UNKNOWN.as_ptr(), |(_, name)| name.as_ptr())
    })
}

/// Returns the library version (for example `"0.1.0"`) as a static string the caller must
/// not free. Compare it with `PRESENCE_VERSION` to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn presence_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header's PRESENCE_VERSION and `presence_version` come from this crate's
    /// Cargo.toml, the metrics' `version` label and Python's from the core's: one version.
    #[test]
    fn the_library_has_the_version_of_the_core() {
        // SAFETY: a static NUL-terminated string.
        let version = unsafe { CStr::from_ptr(presence_version()) }
            .to_str()
            .unwrap();
        assert_eq!(version, presence_core::VERSION);
    }

    #[test]
    fn every_status_has_its_c_name() {
        for status in presence_status::ALL {
            // SAFETY: static NUL-terminated strings.
            let name = unsafe { CStr::from_ptr(presence_status_name(*status as u32)) };
            assert_eq!(
                name.to_str().unwrap(),
                format!("PRESENCE_STATUS_{}", status.name())
            );
        }
        let unknown = unsafe { CStr::from_ptr(presence_status_name(13)) };
        assert_eq!(unknown.to_str().unwrap(), "PRESENCE_STATUS_UNKNOWN");
        let not_tracked = unsafe { CStr::from_ptr(presence_status_name(8)) };
        assert_eq!(not_tracked.to_str().unwrap(), "PRESENCE_STATUS_NOT_TRACKED");
    }
}
