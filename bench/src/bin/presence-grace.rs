//! The leave grace (`leave_grace_ms`), measured (`make bench`, suite "grace"):
//!
//! - `reload`: a room of `--users` presences (a fifth of them anonymous viewers) where
//!   `--reload-pct` percent of the presences reload per minute: the connection leaves and,
//!   0.3 to 3 s later, the same user (a viewer: a new anonymous connection) comes back on a
//!   new connection, with the meta it had. Polled every 100 ms for `--minutes` simulated
//!   minutes on a manual clock (so a run repeats exactly for a seed), once without a grace
//!   and once with `--grace` ms. Records the diff messages (topic entries of a poll) and
//!   their payload bytes per simulated minute, in both formats; each run is one seed.
//! - `poll`: the cost of a poll with the grace on against off, same workload: `--topics`
//!   rooms holding `--presences` presences, and between two polls `--changes` changes (half
//!   leaves, half joins, of which half are the reloads of a recent leave). The clock moves
//!   100 ms per poll, so held leaves fall due and are made inside the polls measured. Each
//!   run is the median of `--polls` polls after as many polls of warm-up; a second record
//!   times the whole window (the changes and the poll), since the grace moves the work of
//!   a leave from `untrack` into the poll where it falls due.
//! - `check` (make test-bench): the reload room, small, asserts that the grace leaves no
//!   diff at all and that without it there are some (counts, no timing).

use presence_bench::args::{self, Args};
use presence_bench::out::Record;
use presence_bench::rng::Rng;
use presence_core::{Clock, Config, Engine, Format, ManualClock};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: presence-grace (reload|poll|check) [--users N] [--reload-pct P] \
                     [--minutes M] [--grace MS] [--topics T] [--presences N] [--changes C] \
                     [--polls P] [--runs R]";

/// The host's poll window, in ms of the simulated clock.
const WINDOW_MS: u64 = 100;

fn main() {
    let args = Args::from_env(USAGE);
    match args.command.as_str() {
        "reload" => reload(&args),
        "poll" => poll(&args),
        "check" => check(),
        other => args::fail(USAGE, &format!("unknown command {other:?}")),
    }
}

fn engine(format: Format, grace: u64, clock: &Arc<ManualClock>) -> Engine {
    let config = Config {
        format,
        leave_grace_ms: grace,
        ..Config::default()
    };
    Engine::with_clock(config, clock.clone()).expect("a valid config")
}

/// What the clients of the room were sent.
#[derive(Default, Clone, Copy)]
struct Sent {
    messages: u64,
    bytes: u64,
}

/// One simulated run of the reload room; the same seed makes the same calls.
fn reload_room(
    format: Format,
    grace: u64,
    users: usize,
    pct: f64,
    minutes: u64,
    seed: u64,
) -> Sent {
    let clock = Arc::new(ManualClock::default());
    let e = engine(format, grace, &clock);
    let mut rng = Rng::new(seed);
    let key = |u: usize| (u % 5 != 4).then(|| format!("user-{u}"));
    let meta = |u: usize| format!("{{\"device\":\"d{}\"}}", u % 3);
    // conn of each user's current connection (0: reloading).
    let mut conn_of: Vec<u64> = (1..=users as u64).collect();
    let mut next_conn = users as u64 + 1;
    for (u, &conn) in conn_of.iter().enumerate() {
        e.track("room", conn, key(u).as_deref(), Some(&meta(u)))
            .unwrap();
    }
    e.poll_diff();
    // (time due back, user)
    let mut coming: VecDeque<(u64, usize)> = VecDeque::new();
    let mut sent = Sent::default();
    let polls = minutes * 60_000 / WINDOW_MS;
    // Reloads per window: users × pct% per minute.
    let per_window = users as f64 * pct / 100.0 * WINDOW_MS as f64 / 60_000.0;
    let mut owed = 0.0;
    for _ in 0..polls {
        owed += per_window;
        while owed >= 1.0 {
            owed -= 1.0;
            let u = rng.below(users);
            if conn_of[u] == 0 {
                continue;
            }
            e.untrack("room", conn_of[u]).unwrap();
            conn_of[u] = 0;
            let back = clock.now_ms() + 300 + rng.below(2_700) as u64;
            // Keep `coming` ordered by due time.
            let at = coming.partition_point(|&(t, _)| t <= back);
            coming.insert(at, (back, u));
        }
        clock.advance(Duration::from_millis(WINDOW_MS));
        while coming.front().is_some_and(|&(t, _)| t <= clock.now_ms()) {
            let (_, u) = coming.pop_front().unwrap();
            conn_of[u] = next_conn;
            next_conn += 1;
            e.track("room", conn_of[u], key(u).as_deref(), Some(&meta(u)))
                .unwrap();
        }
        for d in e.poll_diff().iter() {
            sent.messages += 1;
            sent.bytes += d.payload.len() as u64;
        }
    }
    sent
}

fn reload(args: &Args) {
    let users = args.usize("users", 10_000);
    let pct = args.usize("reload-pct", 5) as f64;
    let minutes = args.usize("minutes", 5) as u64;
    let grace = args.usize("grace", 5_000) as u64;
    let runs = args.usize("runs", 5);
    for format in [Format::Counts, Format::Phoenix] {
        let name = if format == Format::Counts {
            "counts"
        } else {
            "phoenix"
        };
        let mut off = (Vec::new(), Vec::new());
        let mut on = (Vec::new(), Vec::new());
        for run in 0..runs {
            let seed = 1 + run as u64;
            for (g, out) in [(0, &mut off), (grace, &mut on)] {
                let s = reload_room(format, g, users, pct, minutes, seed);
                out.0.push(s.messages as f64 / minutes as f64);
                out.1.push(s.bytes as f64 / minutes as f64);
            }
        }
        let params = json!({"format": name, "users": users, "reload_pct_per_min": pct,
                            "minutes": minutes, "grace_ms": grace});
        for (bench, unit, idx) in [
            ("grace_messages", "messages/min", 0),
            ("grace_bytes", "bytes/min", 1),
        ] {
            let pick = |t: &(Vec<f64>, Vec<f64>)| if idx == 0 { t.0.clone() } else { t.1.clone() };
            Record::new(bench, "grace-off", unit)
                .params(params.clone())
                .emit(&pick(&off));
            Record::new(bench, "grace-on", unit)
                .baseline("grace-off")
                .params(params.clone())
                .emit(&pick(&on));
        }
    }
}

/// Median µs of `polls` polls after as many of warm-up, for one grace setting, and median
/// µs of a whole window (the changes and the poll).
fn poll_run(
    grace: u64,
    topics: usize,
    presences: usize,
    changes: usize,
    polls: usize,
) -> (f64, f64) {
    let clock = Arc::new(ManualClock::default());
    let e = engine(Format::Counts, grace, &clock);
    let mut rng = Rng::new(7);
    let name = |t: usize| format!("room:{t}");
    // (topic, conn, user) of each live presence, and of recent leaves (for the reloads).
    let mut live: Vec<(usize, u64, usize)> = Vec::with_capacity(presences);
    let mut left: VecDeque<(usize, usize)> = VecDeque::new();
    let mut next_conn = 1u64;
    for i in 0..presences {
        let (t, user) = (i % topics, i);
        e.track(&name(t), next_conn, Some(&format!("u{user}")), None)
            .unwrap();
        live.push((t, next_conn, user));
        next_conn += 1;
    }
    e.poll_diff();
    let mut times = Vec::with_capacity(polls);
    let mut windows = Vec::with_capacity(polls);
    for round in 0..2 * polls {
        let window = Instant::now();
        for c in 0..changes {
            if c % 2 == 0 && !live.is_empty() {
                let i = rng.below(live.len());
                let (t, conn, user) = live.swap_remove(i);
                e.untrack(&name(t), conn).unwrap();
                left.push_back((t, user));
                if left.len() > changes * 10 {
                    left.pop_front();
                }
            } else {
                // Half the joins are a recent leave coming back, half a new user.
                let (t, user) = match (c % 4 == 1).then(|| left.pop_back()).flatten() {
                    Some(back) => back,
                    None => (rng.below(topics), presences + rng.below(presences)),
                };
                e.track(&name(t), next_conn, Some(&format!("u{user}")), None)
                    .unwrap();
                live.push((t, next_conn, user));
                next_conn += 1;
            }
        }
        clock.advance(Duration::from_millis(WINDOW_MS));
        let started = Instant::now();
        let batch = e.poll_diff();
        let elapsed = started.elapsed();
        drop(std::hint::black_box(batch));
        if round >= polls {
            times.push(elapsed.as_secs_f64() * 1e6);
            windows.push(window.elapsed().as_secs_f64() * 1e6);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(times), median(windows))
}

fn poll(args: &Args) {
    let topics = args.usize("topics", 1_000);
    let presences = args.usize("presences", 100_000);
    let changes = args.usize("changes", 1_000);
    let polls = args.usize("polls", 200);
    let runs = args.usize("runs", 5);
    let grace = args.usize("grace", 5_000) as u64;
    let (mut off, mut on) = (Vec::new(), Vec::new());
    let (mut off_window, mut on_window) = (Vec::new(), Vec::new());
    // Alternate the two, so that a slower stretch of the machine hits both alike.
    for _ in 0..runs {
        let (p, w) = poll_run(0, topics, presences, changes, polls);
        off.push(p);
        off_window.push(w);
        let (p, w) = poll_run(grace, topics, presences, changes, polls);
        on.push(p);
        on_window.push(w);
    }
    let params = json!({"topics": topics, "presences": presences, "changes_per_poll": changes,
                        "polls": polls, "grace_ms": grace});
    Record::new("grace_poll", "grace-off", "µs/poll")
        .params(params.clone())
        .emit(&off);
    Record::new("grace_poll", "grace-on", "µs/poll")
        .baseline("grace-off")
        .params(params.clone())
        .emit(&on);
    Record::new("grace_window", "grace-off", "µs/window")
        .params(params.clone())
        .emit(&off_window);
    Record::new("grace_window", "grace-on", "µs/window")
        .baseline("grace-off")
        .params(params)
        .emit(&on_window);
}

fn check() {
    for format in [Format::Counts, Format::Phoenix] {
        let off = reload_room(format, 0, 500, 20.0, 1, 1);
        let on = reload_room(format, 5_000, 500, 20.0, 1, 1);
        println!(
            "{}",
            json!({"check": "grace", "format": format!("{format:?}"),
                   "messages_without": off.messages, "messages_with": on.messages})
        );
        assert!(
            off.messages > 0,
            "{format:?}: reloads without a grace send diffs"
        );
        assert_eq!(
            on.messages, 0,
            "{format:?}: reloads within the grace send none"
        );
    }
}
