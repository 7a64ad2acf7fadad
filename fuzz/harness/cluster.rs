//! Cluster ingest: what another node may send, authenticated or not.
//!
//! A peer engine (`b`) makes genuine messages with `cluster_tick`; the input then feeds
//! the engine under test (`a`) raw bytes, genuine messages (replayed, reordered), genuine
//! messages with bytes changed and the tag computed again with the shared secret, and
//! decoded genuine messages with fields changed and encoded again, so that most inputs
//! get past the HMAC into the decoder and the merge. Local tracks and polls run between.
//! Whatever it is fed, `a` must not panic, its polls and lists must be JSON, and its own
//! messages must decode.

use super::input::Input;
use presence_core::cluster::wire::{self, Body, Change, Message};
use presence_core::{ClusterConfig, Config, Engine, Format};
use serde_json::Value;

pub const SECRET: &str = "fuzz-test-secret-0123456789";
const TOPICS: [&str; 3] = ["t", "u", "room:1"];
const KEYS: [&str; 4] = ["alice", "bob", "viewers", "a"];

fn engine(node: &str, phoenix: bool) -> Engine {
    Engine::new(Config {
        format: if phoenix {
            Format::Phoenix
        } else {
            Format::Counts
        },
        shards: 2,
        max_topic_bytes: 32,
        max_key_bytes: 16,
        max_meta_bytes: 64,
        max_topics: 16,
        max_presences: 64,
        cluster: Some(ClusterConfig {
            max_message_bytes: 16 * 1024,
            max_nodes: 4,
            ..ClusterConfig::new(node, SECRET)
        }),
        ..Config::default()
    })
    .expect("a valid config")
}

/// Genuine messages: `b`'s first tick (a snapshot), its deltas, its leave, and `a`'s own.
fn genuine(a: &Engine, phoenix: bool) -> Vec<Vec<u8>> {
    let b = engine("b", phoenix);
    b.track("t", 1, Some("alice"), Some(r#"{"n":1}"#)).unwrap();
    b.track("t", 2, None, None).unwrap();
    b.track("u", 3, Some("bob"), None).unwrap();
    let mut pool = b.cluster_tick().unwrap();
    b.update("t", 1, Some(r#"{"n":2}"#)).unwrap();
    b.untrack("t", 2).unwrap();
    b.track("room:1", 4, Some("alice"), None).unwrap();
    pool.extend(b.cluster_tick().unwrap());
    b.untrack_conn(1);
    pool.extend(b.cluster_tick().unwrap());
    pool.extend(b.cluster_resync());
    pool.push(b.cluster_leave().unwrap());
    a.track("t", 9, Some("alice"), None).unwrap();
    pool.extend(a.cluster_tick().unwrap());
    pool
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let phoenix = input.byte() & 1 == 1;
    let a = engine("a", phoenix);
    let pool = genuine(&a, phoenix);
    let mut steps = 0;
    while !input.is_empty() && steps < 200 {
        steps += 1;
        let op = input.byte() % 6;
        let pick = |input: &mut Input| pool[usize::from(input.byte()) % pool.len()].clone();
        match op {
            0 => {
                let _ = a.cluster_ingest(input.bytes(255));
            }
            1 => {
                let _ = a.cluster_ingest(&pick(&mut input));
            }
            2 => {
                let m = resign(mutate_bytes(pick(&mut input), &mut input));
                let _ = a.cluster_ingest(&m);
            }
            3 => {
                let m = pick(&mut input);
                let mut msg = wire::decode(&m, SECRET.as_bytes(), usize::MAX)
                    .expect("a genuine message decodes");
                mutate(&mut msg, &mut input);
                let _ = a.cluster_ingest(&wire::encode(&msg, SECRET.as_bytes()));
            }
            4 => {
                let topic = TOPICS[usize::from(input.byte()) % TOPICS.len()];
                let conn = u64::from(input.byte() % 4);
                let key = match input.byte() % 5 {
                    4 => None,
                    k => Some(KEYS[usize::from(k)]),
                };
                if input.byte() & 1 == 0 {
                    let _ = a.track(topic, conn, key, None);
                } else {
                    let _ = a.untrack(topic, conn);
                }
            }
            _ => check(&a),
        }
    }
    check(&a);
}

/// Polls, lists and ticks `a`: everything it hands a host must be well-formed.
fn check(a: &Engine) {
    let batch = a.poll_diff().into_json();
    let batch: Value = serde_json::from_str(&batch).expect("a poll is JSON");
    for d in batch.as_array().expect("an array") {
        let topic = d["topic"].as_str().expect("a topic");
        let state = a.list(topic);
        if let Ok(state) = state {
            let _: Value = serde_json::from_str(&state.json).expect("a list is JSON");
            // As of this poll, or gone with it (a topic left empty is dropped).
            let seq = d["seq"].as_u64().expect("a seq");
            assert!(
                state.seq == seq || state.seq == 0,
                "list seq {}, diff seq {seq}",
                state.seq
            );
        }
    }
    for topic in TOPICS {
        let _: Value = serde_json::from_str(&a.list(topic).unwrap().json).expect("JSON");
    }
    for m in a.cluster_tick().unwrap() {
        wire::decode(&m, SECRET.as_bytes(), usize::MAX).expect("a's own messages decode");
    }
}

fn resign(mut body: Vec<u8>) -> Vec<u8> {
    let tag = wire::mac(SECRET.as_bytes(), &body);
    body.extend_from_slice(&tag);
    body
}

/// The message without its tag, with a few bytes flipped, inserted, removed or cut.
fn mutate_bytes(mut m: Vec<u8>, input: &mut Input) -> Vec<u8> {
    m.truncate(m.len().saturating_sub(32));
    for _ in 0..1 + input.byte() % 4 {
        let at = if m.is_empty() {
            0
        } else {
            usize::from(input.byte()) * m.len() / 256
        };
        match input.byte() % 5 {
            0 if at < m.len() => m[at] ^= input.byte() | 1,
            1 if at < m.len() => m[at] = [0, 0x7f, 0x80, 0xff][usize::from(input.byte() % 4)],
            2 => {
                let b = input.bytes(8).to_vec();
                m.splice(at..at, b);
            }
            3 if at < m.len() => {
                let n = usize::from(input.byte() % 8).min(m.len() - at);
                m.drain(at..at + n);
            }
            _ => m.truncate(at),
        }
    }
    m
}

fn number(input: &mut Input, near: u64) -> u64 {
    match input.byte() % 8 {
        0 => 0,
        1 => u64::MAX,
        2 => near.wrapping_add(1),
        3 => near.wrapping_sub(1),
        4 => near.wrapping_add(2),
        5 => 1 << 63,
        6 => u64::from(input.byte()),
        _ => input.u64(),
    }
}

fn text(input: &mut Input) -> String {
    match input.byte() % 8 {
        0 => String::new(),
        1 => "t\0".to_owned(),
        2 => "viewers".to_owned(),
        3 => "x".repeat(300),
        4 => "a".to_owned(),
        5 => "b".to_owned(),
        6 => "t".to_owned(),
        _ => String::from_utf8_lossy(input.bytes(16)).into_owned(),
    }
}

fn meta(input: &mut Input) -> String {
    match input.byte() % 6 {
        0 => "{}".to_owned(),
        1 => r#"{"phx_ref":1}"#.to_owned(),
        2 => "[".to_owned(),
        3 => r#"{"f":1e400}"#.to_owned(),
        4 => "x".repeat(200),
        _ => String::from_utf8_lossy(input.bytes(16)).into_owned(),
    }
}

/// Changes fields of a decoded message: the claims a hostile peer holding the secret can make.
fn mutate(msg: &mut Message, input: &mut Input) {
    for _ in 0..1 + input.byte() % 4 {
        match input.byte() % 10 {
            0 => msg.node = text(input),
            1 => msg.incarnation = number(input, msg.incarnation),
            2 => msg.seq = number(input, msg.seq),
            3 => {
                msg.body = match input.byte() % 4 {
                    0 => Body::Heartbeat,
                    1 => Body::Leave,
                    2 => Body::SnapshotRequest {
                        target: text(input),
                    },
                    _ => Body::Delta(Vec::new()),
                }
            }
            9 => {
                msg.format = match msg.format {
                    Format::Counts => Format::Phoenix,
                    Format::Phoenix => Format::Counts,
                }
            }
            op => {
                let topics = match &mut msg.body {
                    Body::Delta(t) => t,
                    Body::Snapshot { topics, part, last } => {
                        if op == 8 {
                            *part = number(input, u64::from(*part)) as u32;
                            *last = !*last;
                        }
                        topics
                    }
                    _ => continue,
                };
                if topics.is_empty() {
                    continue;
                }
                let i = usize::from(input.byte()) % topics.len();
                match op {
                    4 => {
                        let copy = topics[i].clone();
                        topics.push(copy);
                    }
                    5 => topics[i].topic = text(input),
                    _ => mutate_change(&mut topics[i].change, input),
                }
            }
        }
    }
}

fn mutate_change(change: &mut Change, input: &mut Input) {
    match change {
        Change::Counts {
            viewers,
            connections,
            added,
            removed,
        } => match input.byte() % 4 {
            0 => *viewers = number(input, *viewers),
            1 => *connections = number(input, *connections),
            2 => {
                let h = added.first().copied().unwrap_or(0);
                added.push(number(input, h));
            }
            _ => {
                let h = added.first().copied().unwrap_or(1);
                removed.push(number(input, h));
            }
        },
        Change::Phoenix { joins, leaves } => {
            if joins.is_empty() || input.byte().is_multiple_of(4) {
                let r = joins.first().map_or(1, |j| j.phx_ref);
                leaves.push(number(input, r));
                return;
            }
            let i = usize::from(input.byte()) % joins.len();
            let other = joins[usize::from(input.byte()) % joins.len()].phx_ref;
            let j = &mut joins[i];
            match input.byte() % 5 {
                0 => j.phx_ref = number(input, other),
                1 => j.prev_ref = number(input, j.phx_ref),
                2 => j.key = (!input.byte().is_multiple_of(3)).then(|| text(input)),
                3 => j.meta = meta(input),
                _ => {
                    let copy = j.clone();
                    joins.push(copy);
                }
            }
        }
    }
}
