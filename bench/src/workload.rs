//! The standard workload shared by every language's driver, so that figures compare:
//! N connections over T topics; connection `i` is user `i/2` (two tabs per user, key
//! `u{i/2}`) in topic `t{(i/2) % T}`. The hot room is the same with T = 1.
//!
//! Every string is built before any clock starts; the floor gets the same workload as
//! pre-resolved integer ids.

use presence_core::{Counts, Engine};

/// The standard workload, with its strings built ahead of time.
pub struct Workload {
    /// Connections.
    pub n: usize,
    /// Topics.
    pub topics: usize,
    /// Every `anonymous_every`-th connection (i % k == k - 1) has no key; 0 for none.
    /// The standard workload has none; the correctness check uses some.
    pub anonymous_every: usize,
    topic_names: Vec<String>,
    keys: Vec<String>,
}

impl Workload {
    /// N connections over T topics, every connection with a key.
    pub fn standard(n: usize, topics: usize) -> Workload {
        Workload::with_anonymous(n, topics, 0)
    }

    /// The standard workload with every `every`-th connection anonymous (0: none).
    pub fn with_anonymous(n: usize, topics: usize, every: usize) -> Workload {
        assert!(topics >= 1, "at least one topic");
        let users = n.div_ceil(2);
        Workload {
            n,
            topics,
            anonymous_every: every,
            topic_names: (0..topics.min(users.max(1)))
                .map(|t| format!("t{t}"))
                .collect(),
            keys: (0..users).map(|u| format!("u{u}")).collect(),
        }
    }

    /// The user of connection `i`.
    #[inline]
    pub fn user(&self, i: usize) -> usize {
        i / 2
    }

    /// The topic index of connection `i`.
    #[inline]
    pub fn topic(&self, i: usize) -> usize {
        (i / 2) % self.topics
    }

    /// Whether connection `i` is anonymous.
    #[inline]
    pub fn anonymous(&self, i: usize) -> bool {
        self.anonymous_every != 0 && i % self.anonymous_every == self.anonymous_every - 1
    }

    /// The topic name of connection `i`.
    #[inline]
    pub fn topic_name(&self, i: usize) -> &str {
        &self.topic_names[self.topic(i)]
    }

    /// The name of topic index `t`.
    pub fn name_of_topic(&self, t: usize) -> &str {
        &self.topic_names[t]
    }

    /// Topics that have at least one connection.
    pub fn used_topics(&self) -> usize {
        self.topic_names.len()
    }

    /// The key of connection `i` (`None` when anonymous).
    #[inline]
    pub fn key(&self, i: usize) -> Option<&str> {
        if self.anonymous(i) {
            None
        } else {
            Some(&self.keys[self.user(i)])
        }
    }

    /// The pre-resolved user id of connection `i` (`None` when anonymous).
    #[inline]
    pub fn user_id(&self, i: usize) -> Option<u32> {
        (!self.anonymous(i)).then_some(self.user(i) as u32)
    }

    /// Tracks the connections `conns` in `engine`, with `meta`; panics on a failed call
    /// (a benchmark that silently measured errors would measure nothing).
    pub fn track_engine(&self, engine: &Engine, conns: &[u32], meta: Option<&str>) {
        for &i in conns {
            let i = i as usize;
            engine
                .track(self.topic_name(i), i as u64, self.key(i), meta)
                .expect("track succeeds");
        }
    }

    /// Untracks the connections `conns` from `engine`.
    pub fn untrack_engine(&self, engine: &Engine, conns: &[u32]) {
        for &i in conns {
            let i = i as usize;
            engine
                .untrack(self.topic_name(i), i as u64)
                .expect("untrack succeeds");
        }
    }

    /// All connections, in order.
    pub fn all(&self) -> Vec<u32> {
        (0..self.n as u32).collect()
    }

    /// The live counts of every used topic, in topic order.
    pub fn engine_counts(&self, engine: &Engine) -> Vec<Counts> {
        self.topic_names
            .iter()
            .map(|t| engine.counts(t).expect("valid topic"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Workload;

    #[test]
    fn follows_the_standard_mapping() {
        let w = Workload::standard(10, 3);
        assert_eq!(w.key(0), Some("u0"));
        assert_eq!(w.key(1), Some("u0"));
        assert_eq!(w.key(9), Some("u4"));
        assert_eq!(w.topic_name(0), "t0");
        assert_eq!(w.topic_name(7), "t0"); // user 3 -> topic 3 % 3
        assert_eq!(w.topic_name(5), "t2"); // user 2
        assert_eq!(w.used_topics(), 3);
        let w = Workload::with_anonymous(10, 3, 5);
        assert_eq!(w.key(4), None);
        assert_eq!(w.key(9), None);
        assert_eq!(w.user_id(3), Some(1));
    }
}
