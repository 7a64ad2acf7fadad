//! The time an engine's leave grace counts: the system's monotonic clock, or a clock the
//! caller moves by hand, which makes tests of the grace deterministic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Where an engine reads the time, in milliseconds of a monotonic clock.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// `CLOCK_MONOTONIC`: the wake-up descriptor turns readable when a held leave is due.
    #[default]
    System,
    /// A clock that moves only when told to. The engine reads it at each call that needs
    /// the time; nothing wakes the host when a held leave falls due, so the caller polls
    /// after moving it (`pending_topics` counts due leaves).
    Manual(ManualClock),
}

/// A clock moved by hand (see [`Clock::Manual`]); clones share the same time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at 0 ms.
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::AcqRel);
    }

    /// The time, in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

impl Clock {
    /// The time, in milliseconds.
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => monotonic_ms(),
            Clock::Manual(m) => m.now_ms(),
        }
    }

    /// Whether the wake-up descriptor can be set to turn readable at a time of this clock.
    pub(crate) fn wakes(&self) -> bool {
        matches!(self, Clock::System)
    }
}

/// `CLOCK_MONOTONIC` in milliseconds: the clock a timerfd is armed against, so a due time
/// read here is the time the descriptor turns readable.
pub(crate) fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec into a live local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_share_it() {
        let m = ManualClock::new();
        let clock = Clock::Manual(m.clone());
        assert_eq!(clock.now_ms(), 0);
        m.advance(250);
        assert_eq!(clock.now_ms(), 250);
        assert!(!clock.wakes());
    }

    #[test]
    fn the_system_clock_does_not_go_back() {
        let a = Clock::System.now_ms();
        let b = Clock::System.now_ms();
        assert!(b >= a);
        assert!(Clock::System.wakes());
    }
}
