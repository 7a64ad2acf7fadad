//! Pieces of the cluster benchmarks (`presence-cluster`): the churn each node applies,
//! and the message that per-event replication would publish for each join or leave.
//!
//! The churn keeps about `presences` presences on a node, over `topics` topics: a join
//! tracks a new connection in a random topic, as a random user of a pool shared by every
//! node (so the same user is often on several nodes) or, one join in five, anonymously; a
//! leave untracks a random present connection. Joins and leaves are about as frequent, and
//! the population stays within ±10 % of its size. The sequence is seeded and repeats.

use crate::rng::Rng;
use presence_core::{ClusterConfig, Config, Engine, Format};

/// The shared secret of every benchmark cluster.
pub const SECRET: &str = "presence-engine benchmark cluster secret";

/// A cluster engine for the benchmarks: the default timers unless given, limits raised.
pub fn cluster_engine(
    format: Format,
    node: &str,
    tick_ms: u64,
    down_after_ms: u64,
    snapshot_interval_ms: u64,
) -> Engine {
    let mut cluster = ClusterConfig::new(node, SECRET);
    cluster.tick_ms = tick_ms;
    cluster.down_after_ms = down_after_ms;
    cluster.snapshot_interval_ms = snapshot_interval_ms;
    Engine::new(Config {
        format,
        max_topics: 4_000_000,
        max_presences: 40_000_000,
        cluster: Some(cluster),
        ..Config::default()
    })
    .expect("benchmark cluster config is valid")
}

/// One presence a node holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Presence {
    /// Topic index.
    pub topic: u32,
    /// Connection id, unique on its node.
    pub conn: u64,
    /// User index, `None` for an anonymous viewer.
    pub user: Option<u32>,
}

/// What one churn step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A presence joined.
    Join(Presence),
    /// A presence left.
    Leave(Presence),
}

/// The churn of one node (see the module comment).
pub struct Churn {
    rng: Rng,
    node: String,
    topics: Vec<String>,
    users: Vec<String>,
    present: Vec<Presence>,
    next_conn: u64,
    low: usize,
    high: usize,
    refs: u64,
}

impl Churn {
    /// A churn of about `presences` presences over `topics` topics and a pool of `users`.
    pub fn new(node: &str, presences: usize, topics: usize, users: usize, seed: u64) -> Churn {
        Churn {
            rng: Rng::new(seed),
            node: node.to_owned(),
            topics: (0..topics.max(1)).map(|t| format!("t{t}")).collect(),
            users: (0..users.max(1)).map(|u| format!("u{u}")).collect(),
            present: Vec::with_capacity(presences + presences / 5 + 1),
            next_conn: 0,
            low: presences - presences / 10,
            high: presences + presences / 10,
            refs: 0,
        }
    }

    /// The name of topic `t`.
    pub fn topic(&self, t: u32) -> &str {
        &self.topics[t as usize]
    }

    /// The key of a presence.
    pub fn key(&self, p: &Presence) -> Option<&str> {
        p.user.map(|u| self.users[u as usize].as_str())
    }

    /// The presences held now.
    pub fn present(&self) -> &[Presence] {
        &self.present
    }

    fn new_presence(&mut self) -> Presence {
        let conn = self.next_conn;
        self.next_conn += 1;
        Presence {
            topic: self.rng.below(self.topics.len()) as u32,
            conn,
            user: (self.rng.below(5) != 0).then(|| self.rng.below(self.users.len()) as u32),
        }
    }

    /// Tracks presences until the node holds its nominal population.
    pub fn populate(&mut self, engine: &Engine, meta: Option<&str>) {
        let target = (self.low + self.high) / 2;
        while self.present.len() < target {
            let p = self.new_presence();
            engine
                .track(self.topic(p.topic), p.conn, self.key(&p), meta)
                .expect("track");
            self.present.push(p);
        }
    }

    /// Applies one join or leave to `engine`.
    pub fn step(&mut self, engine: &Engine, meta: Option<&str>) -> Event {
        let join = if self.present.len() <= self.low.max(1) {
            true
        } else if self.present.len() >= self.high {
            false
        } else {
            self.rng.coin()
        };
        if join {
            let p = self.new_presence();
            engine
                .track(self.topic(p.topic), p.conn, self.key(&p), meta)
                .expect("track");
            self.present.push(p);
            Event::Join(p)
        } else {
            let p = self.present.swap_remove(self.rng.below(self.present.len()));
            engine
                .untrack(self.topic(p.topic), p.conn)
                .expect("untrack");
            Event::Leave(p)
        }
    }

    /// The message per-event replication publishes for `event`: one JSON object per join
    /// or leave, `{"event","topic","conn","user"}`, plus in phoenix format the meta with its
    /// `phx_ref` (what a Phoenix presence_diff entry carries), e.g.
    /// `{"event":"join","topic":"t417","conn":"a:10233","user":"u2810"}`.
    pub fn per_event_message(&mut self, event: &Event, meta: Option<&str>) -> String {
        let (kind, p) = match event {
            Event::Join(p) => ("join", p),
            Event::Leave(p) => ("leave", p),
        };
        let user = match self.key(p) {
            Some(k) => format!("\"{k}\""),
            None => "null".to_owned(),
        };
        let mut msg = format!(
            "{{\"event\":\"{kind}\",\"topic\":\"{}\",\"conn\":\"{}:{}\",\"user\":{user}",
            self.topic(p.topic),
            self.node,
            p.conn
        );
        if let Some(meta) = meta {
            // An 11-character ref, as long as the engine's own phx_refs.
            self.refs += 1;
            let body = meta.trim_end().trim_end_matches('}');
            let sep = if body.trim_end().ends_with('{') {
                ""
            } else {
                ","
            };
            msg.push_str(&format!(
                ",\"meta\":{body}{sep}\"phx_ref\":\"F{:010x}\"}}",
                self.refs & 0xff_ffff_ffff
            ));
        }
        msg.push('}');
        msg
    }

    /// The bytes and messages of one full snapshot of the presences held now: what a node
    /// holding them publishes every `snapshot_interval_ms` (the first tick of a fresh engine
    /// with the same config returns exactly its snapshot).
    pub fn snapshot_size(&self, format: Format, node: &str, meta: Option<&str>) -> (usize, usize) {
        let scratch = cluster_engine(format, node, 250, 3000, 30_000);
        for p in &self.present {
            scratch
                .track(self.topic(p.topic), p.conn, self.key(p), meta)
                .expect("track");
        }
        let msgs = scratch.cluster_tick().expect("cluster mode");
        (msgs.iter().map(Vec::len).sum(), msgs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_stays_near_its_population_and_matches_the_engine() {
        let e = crate::engine(Format::Counts);
        let mut c = Churn::new("a", 1000, 50, 500, 7);
        c.populate(&e, None);
        assert_eq!(c.present().len(), 1000);
        let (mut joins, mut leaves) = (0, 0);
        for _ in 0..5000 {
            match c.step(&e, None) {
                Event::Join(_) => joins += 1,
                Event::Leave(_) => leaves += 1,
            }
            assert!((900..=1100).contains(&c.present().len()));
        }
        assert!(joins > 2000 && leaves > 2000, "{joins} {leaves}");
        assert_eq!(e.stats().presences as usize, c.present().len());
    }

    #[test]
    fn per_event_messages_are_json() {
        let e = crate::engine(Format::Phoenix);
        let mut c = Churn::new("a", 10, 3, 5, 1);
        c.populate(&e, Some(crate::META));
        for meta in [None, Some(crate::META), Some("{}")] {
            let ev = c.step(&e, meta);
            let m = c.per_event_message(&ev, meta);
            let v: serde_json::Value = serde_json::from_str(&m).expect(&m);
            assert!(v["topic"].as_str().unwrap().starts_with('t'));
            assert_eq!(v.get("meta").is_some(), meta.is_some(), "{m}");
            if meta.is_some() {
                assert_eq!(v["meta"]["phx_ref"].as_str().unwrap().len(), 11, "{m}");
            }
        }
    }
}
