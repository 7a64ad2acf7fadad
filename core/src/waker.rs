//! The wake-up descriptor: readable while a poll may have something to return.
//!
//! Linux gets an `eventfd`, other Unix systems a non-blocking self-pipe. Either way the
//! host only ever waits for readability; the engine drains it at each poll.
//!
//! An engine with a leave grace must also wake the host when a held leave falls due, with
//! no call to trigger it: on Linux its waker adds a `timerfd`, and the host waits on an
//! epoll descriptor holding both (an epoll descriptor is readable while one of its
//! descriptors is).

use crate::error::{Error, ErrorKind, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The descriptor(s), closed when the waker is dropped.
pub(crate) struct Waker {
    read: OwnedFd,
    /// The pipe's write end; `None` for an eventfd, which is written where it is read.
    write: Option<OwnedFd>,
    /// The due-time timer and the epoll descriptor the host waits on; `None` without one.
    timer: Option<Timer>,
}

struct Timer {
    epoll: OwnedFd,
    timerfd: OwnedFd,
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
            timer: None,
        })
    }

    /// A waker that can also be set to turn readable after a delay of `CLOCK_MONOTONIC`
    /// (see [`Waker::wake_in`]).
    #[cfg(target_os = "linux")]
    pub fn with_timer() -> Result<Waker> {
        let mut waker = Waker::new()?;
        // SAFETY: plain syscalls with constant flags; each result is checked before use.
        let timerfd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if timerfd < 0 {
            return Err(os_error("timerfd_create"));
        }
        // SAFETY: timerfd_create returned a new descriptor that nothing else owns.
        let timerfd = unsafe { OwnedFd::from_raw_fd(timerfd) };
        // SAFETY: as above.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(os_error("epoll_create1"));
        }
        // SAFETY: epoll_create1 returned a new descriptor that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
        for fd in [waker.read.as_raw_fd(), timerfd.as_raw_fd()] {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: fd as u64,
            };
            // SAFETY: registers descriptors this waker owns with its own epoll descriptor.
            if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) }
                != 0
            {
                return Err(os_error("epoll_ctl"));
            }
        }
        waker.timer = Some(Timer { epoll, timerfd });
        Ok(waker)
    }

    /// Without a timerfd the host learns of due leaves from `pending_topics` only.
    #[cfg(not(target_os = "linux"))]
    pub fn with_timer() -> Result<Waker> {
        Waker::new()
    }

    /// Makes the descriptor turn readable `in_ms` milliseconds from now (at once for 0),
    /// replacing the time set before; `None` unsets it. The delay is relative because the
    /// engine's clock (`Instant`, also `CLOCK_MONOTONIC`) has an origin of its own.
    /// Does nothing for a waker without a timer.
    pub fn wake_in(&self, in_ms: Option<u64>) {
        #[cfg(target_os = "linux")]
        if let Some(t) = &self.timer {
            // SAFETY: an all-zero itimerspec is a valid value (a disarmed timer).
            let mut spec: libc::itimerspec = unsafe { std::mem::zeroed() };
            if let Some(ms) = in_ms {
                // A zero it_value disarms, so "at once" is 1 ns.
                spec.it_value.tv_sec = (ms / 1000) as libc::time_t;
                spec.it_value.tv_nsec = ((ms % 1000) * 1_000_000).max(1) as libc::c_long;
            }
            // SAFETY: sets a timer this waker owns from a live itimerspec.
            unsafe { libc::timerfd_settime(t.timerfd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        }
        #[cfg(not(target_os = "linux"))]
        let _ = in_ms;
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
            timer: None,
        })
    }

    /// The descriptor the host waits on.
    pub fn fd(&self) -> RawFd {
        match &self.timer {
            Some(t) => t.epoll.as_raw_fd(),
            None => self.read.as_raw_fd(),
        }
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
        while unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {
            if self.write.is_none() {
                break; // an eventfd is emptied by a single read
            }
        }
        if let Some(t) = &self.timer {
            // An expired timerfd stays readable until read; the poll sets the next time.
            // SAFETY: as above, from the non-blocking timerfd this waker owns.
            unsafe { libc::read(t.timerfd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
        }
    }
}

fn os_error(what: &str) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("{what} failed: {}", std::io::Error::last_os_error()),
    )
}
