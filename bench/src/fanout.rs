//! Fan-out: how many messages a server pushes for one churning room.
//!
//! A room holds about `subscribers` connections (every present connection subscribes to
//! the room's presence events). Joins and leaves arrive at `churn` per second, in 100 ms
//! windows of `churn / 10` events each (fractional rates spread over the windows). The
//! engine really runs: each event is a track or an untrack, and we poll either
//!
//! - after every event (what Phoenix.Presence does: one `handle_diff` and one broadcast
//!   per join or leave), or
//! - once per 100 ms window (coalesced diffs),
//!
//! and count, for every topic a poll returns, one message per subscriber present (and
//! the payload bytes those messages carry). Time is simulated, so the figures do not
//! depend on the speed of the machine; the event sequence is seeded and repeats exactly.

use crate::rng::Rng;
use presence_core::{Engine, Format};

/// How the host turns changes into messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A poll (and a broadcast) after each join or leave.
    PerEvent,
    /// A poll every 100 ms.
    Coalesced,
}

/// What the host pushed over the simulated run, per simulated second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pushed {
    /// Joins and leaves applied per second.
    pub events: f64,
    /// Messages (one per subscriber per topic returned by a poll) per second.
    pub messages: f64,
    /// Payload bytes of those messages per second.
    pub bytes: f64,
    /// Of `messages`, those whose payload announces no change at all (counts format: a
    /// diff of zero joins and zero leaves, which a connections-only change produces).
    pub empty: f64,
}

/// The counts-format payload that changes nothing for a client.
pub const EMPTY_COUNTS_DIFF: &str = r#"{"joins":{"viewers":{"count":0},"users":{"count":0}},"leaves":{"viewers":{"count":0},"users":{"count":0}}}"#;

const ROOM: &str = "room:fanout";

/// Runs one room for `seconds` simulated seconds.
pub fn simulate(
    format: Format,
    mode: Mode,
    subscribers: usize,
    churn: u64,
    seconds: u64,
) -> Pushed {
    let engine = crate::engine(format);
    let meta = (format == Format::Phoenix).then_some(crate::META);
    let users = (subscribers / 2).max(1);
    let keys: Vec<String> = (0..users).map(|u| format!("u{u}")).collect();
    let mut present: Vec<u64> = Vec::with_capacity(subscribers * 2);
    for i in 0..subscribers {
        engine
            .track(ROOM, i as u64, Some(&keys[i / 2 % users]), meta)
            .expect("track");
        present.push(i as u64);
    }
    // Subscribers that join now get the state from `list`; the first poll is theirs.
    engine.poll_diff();
    let mut next_conn = subscribers as u64;
    let mut rng = Rng::new(0x5eed ^ subscribers as u64 ^ (churn << 20));
    let (low, high) = (
        subscribers - subscribers / 10,
        subscribers + subscribers / 10,
    );
    let (mut messages, mut bytes, mut empty, mut events) = (0u64, 0u64, 0u64, 0u64);
    let mut push = |engine: &Engine| {
        for d in engine.poll_diff().iter() {
            messages += d.counts.connections;
            bytes += d.counts.connections * d.payload.len() as u64;
            if d.payload == EMPTY_COUNTS_DIFF {
                empty += d.counts.connections;
            }
        }
    };
    let windows = seconds * 10;
    for w in 0..windows {
        let n = (w + 1) * churn / 10 - w * churn / 10;
        for _ in 0..n {
            let join = if present.len() <= low.max(1) {
                true
            } else if present.len() >= high {
                false
            } else {
                rng.coin()
            };
            if join {
                let key = &keys[rng.below(users)];
                engine
                    .track(ROOM, next_conn, Some(key), meta)
                    .expect("track");
                present.push(next_conn);
                next_conn += 1;
            } else {
                let conn = present.swap_remove(rng.below(present.len()));
                engine.untrack(ROOM, conn).expect("untrack");
            }
            events += 1;
            if mode == Mode::PerEvent {
                push(&engine);
            }
        }
        if mode == Mode::Coalesced {
            push(&engine);
        }
    }
    let s = seconds as f64;
    Pushed {
        events: events as f64 / s,
        messages: messages as f64 / s,
        bytes: bytes as f64 / s,
        empty: empty as f64 / s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_event_phoenix_pushes_one_message_per_subscriber_per_event() {
        let p = simulate(Format::Phoenix, Mode::PerEvent, 100, 50, 4);
        assert_eq!(p.events, 50.0);
        // Every event changes the phoenix list, so every event goes to ~100 subscribers.
        assert!(
            p.messages > 50.0 * 85.0 && p.messages < 50.0 * 115.0,
            "{p:?}"
        );
    }

    #[test]
    fn coalescing_pushes_at_most_one_message_per_subscriber_per_window() {
        for format in [Format::Counts, Format::Phoenix] {
            let p = simulate(format, Mode::Coalesced, 100, 1000, 3);
            assert_eq!(p.events, 1000.0);
            assert!(p.messages <= 10.0 * 115.0, "{format:?} {p:?}");
            assert!(p.messages > 0.0);
        }
    }

    #[test]
    fn no_churn_pushes_nothing() {
        let p = simulate(Format::Counts, Mode::Coalesced, 10, 0, 2);
        assert_eq!(p, Pushed::default());
    }
}
