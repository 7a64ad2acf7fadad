//! The wake-up descriptor: readable while a poll may have something to return.
//!
//! Linux gets an `eventfd`, other Unix systems a non-blocking self-pipe. Either way the
//! host only ever waits for readability; the engine drains it at each poll.

use crate::error::{Error, ErrorKind, Result};
use std::os::fd::RawFd;

/// Owns the descriptor(s) and closes them on drop.
pub(crate) struct Waker {
    read_fd: RawFd,
    write_fd: RawFd,
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
            read_fd: fd,
            write_fd: fd,
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new() -> Result<Waker> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(os_error("pipe"));
        }
        for fd in fds {
            // SAFETY: fcntl on descriptors we own.
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
            read_fd: fds[0],
            write_fd: fds[1],
        })
    }

    /// The descriptor the host waits on.
    pub fn fd(&self) -> RawFd {
        self.read_fd
    }

    /// Makes the descriptor readable. A full pipe or a saturated counter is already readable.
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to a descriptor we own.
        unsafe { libc::write(self.write_fd, (&one as *const u64).cast(), 8) };
    }

    /// Empties the descriptor so it stops being readable.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reads into a live local buffer from a non-blocking descriptor we own.
        while unsafe { libc::read(self.read_fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {
            if self.read_fd == self.write_fd {
                break; // an eventfd is emptied by a single read
            }
        }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        // SAFETY: closing descriptors this value owns, once.
        unsafe {
            libc::close(self.read_fd);
            if self.write_fd != self.read_fd {
                libc::close(self.write_fd);
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
