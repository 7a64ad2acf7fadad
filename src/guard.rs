//! What the exported functions share: the panic boundary, the thread's last error, the
//! checks that turn raw pointers into Rust references and out-parameters, and the body of
//! the calls that hand out one text.

use super::types::{presence_buf, presence_engine, presence_status};
use presence_core::{Engine, Error};
use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A failed call: the status to return and the message to keep for this thread.
pub(crate) struct Failure {
    pub status: presence_status,
    pub message: String,
}

impl Failure {
    pub fn new(status: presence_status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        // Every kind is a status (checked by the tests of `types`); a kind without one
        // would be a bug of this library, reported as such rather than as another kind.
        let status =
            presence_status::from_value(e.kind().status()).unwrap_or(presence_status::Panic);
        Failure::new(status, e.message())
    }
}

/// Runs an exported body: a failure or a panic becomes a status and this thread's last
/// error; nothing unwinds into the caller.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Failure>) -> presence_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => presence_status::Ok,
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!("internal error (panic): {what}"));
            presence_status::Panic
        }
    }
}

/// Like `guard` for functions that return a plain value: `fallback` on a panic.
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        set_last_error("internal error (panic)");
        fallback
    })
}

pub(crate) fn set_last_error(message: &str) {
    LAST_ERROR.with(|e| {
        let mut e = e.borrow_mut();
        e.clear();
        e.push_str(message);
    });
}

pub(crate) fn with_last_error<R>(f: impl FnOnce(&str) -> R) -> R {
    LAST_ERROR.with(|e| f(&e.borrow()))
}

/// The engine behind a handle, or `NullArgument`, or `Panic` for a poisoned engine.
///
/// # Safety
/// `engine` is NULL or a live handle from `presence_engine_new`.
pub(crate) unsafe fn engine<'a>(engine: *const presence_engine) -> Result<&'a Engine, Failure> {
    // SAFETY: handles are `Box<Engine>` pointers (see `presence_engine_new`).
    let engine = unsafe { engine.cast::<Engine>().as_ref() }.ok_or_else(|| null("engine"))?;
    // A poisoned engine refuses every call, those that return no status of their own
    // through the engine (a poll, the stats) included.
    engine.check_usable()?;
    Ok(engine)
}

/// A required NUL-terminated UTF-8 string.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    // SAFETY: forwarded from the caller.
    unsafe { optional_text(p, what) }?.ok_or_else(|| null(what))
}

/// An optional NUL-terminated UTF-8 string: NULL gives `None`.
///
/// # Safety
/// As for `text`.
pub(crate) unsafe fn optional_text<'a>(
    p: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, Failure> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    std::str::from_utf8(bytes).map(Some).map_err(|e| {
        Failure::new(
            presence_status::InvalidUtf8,
            format!("{what} is not valid UTF-8: {e}"),
        )
    })
}

/// A required out-parameter, checked for NULL with the other arguments, before the call
/// does anything. Writing it consumes it, and a failed call returns before the write, so
/// the value is written once and only on success.
pub(crate) struct Out<'a, T> {
    ptr: NonNull<T>,
    call: PhantomData<&'a mut T>,
}

impl<'a, T> Out<'a, T> {
    /// The out-parameter `out`, or `NullArgument` naming `what` if it is NULL.
    ///
    /// # Safety
    /// `out` is NULL or valid for a write of a `T` during `'a`.
    pub unsafe fn new(out: *mut T, what: &str) -> Result<Out<'a, T>, Failure> {
        let ptr = NonNull::new(out).ok_or_else(|| null(what))?;
        Ok(Out {
            ptr,
            call: PhantomData,
        })
    }

    /// Writes the call's result.
    pub fn write(self, value: T) {
        // SAFETY: non-NULL, hence writable during 'a by the contract of `new`. `write` drops
        // nothing, as the memory may hold no initialized value.
        unsafe { self.ptr.as_ptr().write(value) }
    }
}

/// Writes `value` through an optional out-parameter: NULL means the caller does not want
/// it, so nothing is written and the call still succeeds.
///
/// # Safety
/// `out` is NULL or valid for a write of a `T`: the header documents every such parameter
/// as receiving its value only if it is not NULL.
pub(crate) unsafe fn write_optional<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL, hence writable by the caller's contract. `write` drops nothing,
        // as the memory may hold no initialized value.
        unsafe { out.write(value) };
    }
}

/// The body of the calls that hand out one text of the engine's in a `presence_buf`:
/// checks `engine` and `out`, then moves what `make` returns into `*out`.
///
/// # Safety
/// `engine` is NULL or a live handle; `out` is NULL or writable.
pub(crate) unsafe fn string_out(
    engine: *const presence_engine,
    out: *mut presence_buf,
    make: impl FnOnce(&Engine) -> String,
) -> presence_status {
    guard(|| {
        // SAFETY: pointers are NULL or valid by the caller's contract.
        let e = unsafe { self::engine(engine) }?;
        let out = unsafe { Out::new(out, "out") }?;
        let text = make(e);
        out.write(presence_buf::from_string(text));
        Ok(())
    })
}

/// The failure of a required pointer argument that is NULL.
pub(crate) fn null(what: &str) -> Failure {
    Failure::new(
        presence_status::NullArgument,
        format!("{what} must not be NULL"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = guard(|| panic!("boom {}", 7));
        assert_eq!(status, presence_status::Panic);
        with_last_error(|m| assert!(m.contains("boom 7"), "{m}"));
        assert_eq!(guard_value(-1, || -> i32 { panic!("static message") }), -1);
        with_last_error(|m| assert!(m.contains("panic"), "{m}"));
    }

    #[test]
    fn failures_keep_their_message_per_thread() {
        let status = guard(|| Err(Failure::new(presence_status::NotTracked, "gone")));
        assert_eq!(status, presence_status::NotTracked);
        with_last_error(|m| assert_eq!(m, "gone"));
        std::thread::spawn(|| with_last_error(|m| assert_eq!(m, "")))
            .join()
            .unwrap();
    }

    #[test]
    fn a_poisoned_engine_answers_panic_to_every_call() {
        use crate::*;
        use presence_core::test_hooks::panic_in_next_track;
        use presence_core::Config;
        let engine = Engine::new(Config::default()).unwrap();
        panic_in_next_track();
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| engine.track("room", 1, None, None)));
        assert!(outcome.is_err());
        let handle = Box::into_raw(Box::new(engine)).cast::<presence_engine>();
        let mut counts = presence_counts::default();
        // SAFETY: a live handle, a NUL-terminated string and a valid out-parameter.
        let status = unsafe { presence_get_counts(handle, c"room".as_ptr(), &mut counts) };
        assert_eq!(status, presence_status::Panic);
        with_last_error(|m| assert!(m.contains("an earlier call panicked"), "{m}"));
        // SAFETY: a live handle.
        assert_eq!(unsafe { presence_wakeup_fd(handle) }, -1);
        // SAFETY: the handle is live and freed once.
        unsafe { presence_engine_free(handle) };
    }
}
