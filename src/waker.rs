//! The wake-up descriptor: readable while a poll may have something to return.
//!
//! Linux gets an `eventfd`, other Unix systems a non-blocking self-pipe. Either way the
//! host only ever waits for readability; the engine drains it at each poll.

use crate::error::{Error, ErrorKind, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The descriptor(s), closed when the waker is dropped.
pub(crate) struct Waker {
    read: OwnedFd,
    /// The pipe's write end; `None` for an eventfd, which is written where it is read.
    write: Option<OwnedFd>,
}

impl Waker {
    #[cfg(target_os = "linux")]
    pub fn new() -> Result<Waker> {
        // SAFETY: plain syscall with constant flags.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(os_error("eventfd"));
        }
        Ok(Waker {
            // SAFETY: eventfd returned a new descriptor that nothing else owns.
            read: unsafe { OwnedFd::from_raw_fd(fd) },
            write: None,
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new() -> Result<Waker> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(os_error("pipe"));
        }
        // SAFETY: pipe returned two new descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in fds {
            // SAFETY: fcntl on descriptors owned above.
            unsafe {
                libc::fcntl(
                    fd,
                    libc::F_SETFL,
                    libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
                );
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        Ok(Waker {
            read,
            write: Some(write),
        })
    }

    /// The descriptor the host waits on.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Makes the descriptor readable. A full pipe or a saturated counter is already readable.
    pub fn signal(&self) {
        let fd = self.write.as_ref().unwrap_or(&self.read).as_raw_fd();
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to a descriptor this waker owns.
        unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
    }

    /// Empties the descriptor so it stops being readable.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reads into a live local buffer from a non-blocking descriptor we own.
        while unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {
            if self.write.is_none() {
                break; // an eventfd is emptied by a single read
            }
        }
    }
}

fn os_error(what: &str) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("{what} failed: {}", std::io::Error::last_os_error()),
    )
}
