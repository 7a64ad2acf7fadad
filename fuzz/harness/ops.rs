//! Operation sequences through the C ABI against a plain model.
//!
//! The input picks a format and small limits, then a sequence of calls with topics, keys
//! and metas drawn from small pools (so that calls meet) or from the input's raw bytes
//! (invalid UTF-8, empty, too long, NUL-cut). Every call's status must be the one the
//! model predicts, a refused call must change nothing observable (`presence_get_stats`,
//! bytes included), and after every poll the counts, `presence_list` and the client state
//! rebuilt by replaying every diff must equal the model. Tracks with a time to live use an
//! hour (none expires within a run) or one out of range, and `presence_touch` must renew
//! exactly the connection's TTL presences.

use super::input::{c_string, meta_is_valid, Input};
use presence::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_void, CString};
use std::ptr;

const TOPICS: [&str; 4] = ["t", "room:1", "é", "u"];
const KEYS: [&str; 5] = ["a", "b", "anon", "viewers", "ü"];
const VIEWERS_KEYS: [&str; 4] = ["viewers", "anon", "v", "a"];
const METAS: [&str; 10] = [
    "{}",
    r#"{"a":1}"#,
    r#" {"s":"x","n":[1,2.5,null]} "#,
    r#"{"a":{"phx_ref":1}}"#,
    r#"{"f":1e400}"#,
    r#"{"s":"\ud800"}"#,
    r#"{"s":"\ud83d\ude00"}"#,
    "[1]",
    r#"{"phx_ref":"x"}"#,
    r#"{"a":1}{}"#,
];

const OK: u32 = presence_status::Ok as u32;
const INVALID_UTF8: u32 = presence_status::InvalidUtf8 as u32;
const INVALID_META: u32 = presence_status::InvalidMeta as u32;
const INVALID_CONFIG: u32 = presence_status::InvalidConfig as u32;
const INVALID_ARGUMENT: u32 = presence_status::InvalidArgument as u32;
const TOO_LONG: u32 = presence_status::TooLong as u32;
const ALREADY_TRACKED: u32 = presence_status::AlreadyTracked as u32;
const NOT_TRACKED: u32 = presence_status::NotTracked as u32;
const LIMIT_REACHED: u32 = presence_status::LimitReached as u32;

struct Limits {
    phoenix: bool,
    viewers_key: String,
    topic: usize,
    key: usize,
    meta: usize,
    topics: usize,
    presences: usize,
}

#[derive(Clone, Debug)]
struct Presence {
    key: Option<String>,
    meta: Value,
    /// Changes at every track and update: what a phoenix client sees as a new ref.
    version: u64,
    /// Tracked with a time to live (an hour: none expires within a run).
    ttl: bool,
}

#[derive(Default)]
struct TopicModel {
    live: BTreeMap<u64, Presence>,
    /// As of the last poll: (viewers, users), and the presences' versions.
    published_counts: (u64, u64),
    published_versions: BTreeSet<u64>,
    seq: u64,
    /// What a client that joined at the first poll holds after replaying every diff.
    client: Client,
}

#[derive(Default, Clone, Debug, PartialEq)]
enum Client {
    #[default]
    Empty,
    Counts(i64, i64),
    Phoenix(BTreeMap<String, Vec<Value>>),
}

impl TopicModel {
    fn counts(&self) -> (u64, u64, u64) {
        let viewers = self.live.values().filter(|p| p.key.is_none()).count() as u64;
        let users: BTreeSet<&String> = self.live.values().filter_map(|p| p.key.as_ref()).collect();
        (viewers, users.len() as u64, self.live.len() as u64)
    }
}

/// A string argument: from a pool, from raw bytes, or NULL where allowed.
enum Arg {
    Null,
    Text(CString),
}

impl Arg {
    fn ptr(&self) -> *const std::ffi::c_char {
        match self {
            Arg::Null => ptr::null(),
            Arg::Text(c) => c.as_ptr(),
        }
    }
    fn text(&self) -> Option<Result<&str, ()>> {
        match self {
            Arg::Null => None,
            Arg::Text(c) => Some(c.to_str().map_err(|_| ())),
        }
    }
}

fn pick(input: &mut Input, pool: &[&str], raw: usize) -> CString {
    let b = input.byte();
    if (b as usize) < 200 {
        CString::new(pool[b as usize % pool.len()]).expect("pool strings have no NUL")
    } else {
        c_string(input.bytes(raw))
    }
}

fn conn(input: &mut Input) -> u64 {
    match input.byte() {
        b @ 0..=249 => u64::from(b % 6),
        b => u64::MAX - u64::from(b - 250),
    }
}

struct Engine(*mut presence_engine);

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: a live handle from presence_engine_new, freed once.
        unsafe { presence_engine_free(self.0) }
    }
}

fn stats(e: &Engine) -> presence_stats {
    let mut s = presence_stats::default();
    // SAFETY: a live handle and a writable out-parameter.
    let st = unsafe { presence_get_stats(e.0, &mut s) };
    assert_eq!(st as u32, OK);
    s
}

fn last_error() -> String {
    let mut buf = vec![0u8; 512];
    // SAFETY: `buf` has room for its length.
    let n = unsafe { presence_last_error_message(buf.as_mut_ptr().cast(), buf.len()) };
    buf.truncate(n.min(511));
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let setup = input.byte();
    let limits = Limits {
        phoenix: setup & 1 == 1,
        viewers_key: VIEWERS_KEYS[usize::from(setup >> 1) % VIEWERS_KEYS.len()].to_owned(),
        topic: 1 + usize::from(input.byte() % 8),
        key: 1 + usize::from(input.byte() % 8),
        meta: 2 + usize::from(input.byte() % 40),
        topics: 1 + usize::from(input.byte() % 5),
        presences: 1 + usize::from(input.byte() % 10),
    };
    let shards = 1usize << ((setup >> 3) & 3);
    let config = serde_json::json!({
        "format": if limits.phoenix { "phoenix" } else { "counts" },
        "viewers_key": limits.viewers_key,
        "shards": shards,
        "max_topic_bytes": limits.topic,
        "max_key_bytes": limits.key,
        "max_meta_bytes": limits.meta,
        "max_topics": limits.topics,
        "max_presences": limits.presences,
    })
    .to_string();
    let config = CString::new(config).expect("JSON text has no NUL");
    let mut handle = ptr::null_mut();
    // SAFETY: a NUL-terminated config and a writable out-parameter.
    let st = unsafe { presence_engine_new(config.as_ptr(), &mut handle) } as u32;
    // The viewers key is listed as a key in phoenix format only.
    if limits.phoenix && limits.viewers_key.len() > limits.key {
        assert_eq!(st, INVALID_CONFIG, "{config:?}");
        return;
    }
    assert_eq!(st, OK, "{config:?}: {}", last_error());
    let engine = Engine(handle);
    let mut model = Model {
        limits,
        topics: BTreeMap::new(),
        dirty: BTreeSet::new(),
        version: 0,
        seen_refs: BTreeSet::new(),
        polls: 0,
    };
    let mut steps = 0;
    while !input.is_empty() && steps < 2000 {
        steps += 1;
        model.step(&engine, &mut input);
    }
    model.poll(&engine, true);
    model.poll(&engine, false);
    assert!(model.dirty.is_empty());
}

struct Model {
    limits: Limits,
    topics: BTreeMap<String, TopicModel>,
    /// Topics changed since the last poll.
    dirty: BTreeSet<String>,
    version: u64,
    /// Every phx_ref any diff or list has shown: a join must bring a new one.
    seen_refs: BTreeSet<String>,
    /// Polls taken.
    polls: u64,
}

impl Model {
    fn presences(&self) -> usize {
        self.topics.values().map(|t| t.live.len()).sum()
    }

    /// The status a topic argument gets, before anything else is looked at.
    fn check_topic(&self, topic: &str) -> u32 {
        if topic.is_empty() {
            INVALID_ARGUMENT
        } else if topic.len() > self.limits.topic {
            TOO_LONG
        } else {
            OK
        }
    }

    fn check_meta(&self, meta: Option<&str>) -> Result<Value, u32> {
        match meta {
            None => Ok(Value::Object(Default::default())),
            Some(m) if m.len() > self.limits.meta => Err(TOO_LONG),
            Some(m) => meta_is_valid(m).ok_or(INVALID_META),
        }
    }

    fn step(&mut self, e: &Engine, input: &mut Input) {
        let before = stats(e);
        let op = input.byte() % 11;
        let (status, expected) = match op {
            0 | 1 => self.track(e, input, None),
            9 => {
                // A time to live of an hour, or one out of range.
                let ttl = [3_600_000, 0, 2_592_000_001][usize::from(input.byte() % 3)];
                self.track(e, input, Some(ttl))
            }
            10 => {
                let c = conn(input);
                let mut renewed = usize::MAX;
                // SAFETY: a live handle and a writable out-parameter.
                let st = unsafe { presence_touch(e.0, c, &mut renewed) } as u32;
                let n = self
                    .topics
                    .values()
                    .filter(|t| t.live.get(&c).is_some_and(|p| p.ttl))
                    .count();
                assert_eq!(renewed, n, "touch {c}");
                (st, OK)
            }
            2 => self.untrack(e, input),
            3 => {
                let c = conn(input);
                let mut removed = usize::MAX;
                // SAFETY: a live handle and a writable out-parameter.
                let st = unsafe { presence_untrack_conn(e.0, c, &mut removed) } as u32;
                let mut n = 0;
                for (name, t) in &mut self.topics {
                    if t.live.remove(&c).is_some() {
                        n += 1;
                        self.dirty.insert(name.clone());
                    }
                }
                assert_eq!(removed, n, "untrack_conn {c}");
                (st, OK)
            }
            4 => self.update(e, input),
            5 => {
                let json = input.byte() & 1 == 0;
                self.poll(e, json);
                return;
            }
            6 => {
                self.read(e, input);
                (OK, OK)
            }
            7 => {
                let mut pending = u64::MAX;
                // SAFETY: a live handle and a writable out-parameter.
                let st = unsafe { presence_pending_topics(e.0, &mut pending) } as u32;
                assert_eq!(pending, self.dirty.len() as u64);
                (st, OK)
            }
            _ => {
                let s = stats(e);
                assert_eq!(s.presences, self.presences() as u64);
                assert_eq!(s.topics, self.topics.len() as u64);
                (OK, OK)
            }
        };
        assert_eq!(status, expected, "op {op}: {}", last_error());
        if status != OK {
            assert!(!last_error().is_empty(), "a failure leaves a message");
            assert_eq!(stats(e), before, "a refused call changes nothing");
        }
        let after = stats(e);
        assert_eq!(after.presences, self.presences() as u64);
        assert_eq!(after.topics, self.topics.len() as u64);
        assert_eq!(after.topics_pending, self.dirty.len() as u64);
        assert_eq!(after.polls, self.polls);
    }

    fn track(&mut self, e: &Engine, input: &mut Input, ttl: Option<u64>) -> (u32, u32) {
        let topic = pick(input, &TOPICS, 10);
        let c = conn(input);
        let key = match input.byte() % 4 {
            0 => Arg::Null,
            _ => Arg::Text(pick(input, &KEYS, 10)),
        };
        let meta = match input.byte() % 3 {
            0 => Arg::Null,
            _ => Arg::Text(pick(input, &METAS, 48)),
        };
        // SAFETY: a live handle and NULL or NUL-terminated strings.
        let st = unsafe {
            match ttl {
                None => presence_track(e.0, topic.as_ptr(), c, key.ptr(), meta.ptr()),
                Some(ms) => presence_track_ttl(e.0, topic.as_ptr(), c, key.ptr(), meta.ptr(), ms),
            }
        } as u32;
        let (Ok(t), Ok(k), Ok(m)) = (
            topic.to_str(),
            key.text().transpose(),
            meta.text().transpose(),
        ) else {
            return (st, INVALID_UTF8);
        };
        if ttl.is_some_and(|ms| ms == 0 || ms > 2_592_000_000) {
            return (st, INVALID_ARGUMENT);
        }
        let expected = self.check_topic(t);
        if expected != OK {
            return (st, expected);
        }
        if let Some(k) = k {
            if k.is_empty() || (self.limits.phoenix && k == self.limits.viewers_key) {
                return (st, INVALID_ARGUMENT);
            }
            if k.len() > self.limits.key {
                return (st, TOO_LONG);
            }
        }
        let meta = match self.check_meta(m) {
            Ok(v) => v,
            Err(s) => return (st, s),
        };
        if self
            .topics
            .get(t)
            .is_some_and(|tm| tm.live.contains_key(&c))
        {
            return (st, ALREADY_TRACKED);
        }
        if self.presences() >= self.limits.presences
            || (!self.topics.contains_key(t) && self.topics.len() >= self.limits.topics)
        {
            return (st, LIMIT_REACHED);
        }
        self.version += 1;
        let p = Presence {
            key: k.map(str::to_owned),
            meta,
            version: self.version,
            ttl: ttl.is_some(),
        };
        self.topics
            .entry(t.to_owned())
            .or_default()
            .live
            .insert(c, p);
        self.dirty.insert(t.to_owned());
        (st, OK)
    }

    fn untrack(&mut self, e: &Engine, input: &mut Input) -> (u32, u32) {
        let topic = pick(input, &TOPICS, 10);
        let c = conn(input);
        // SAFETY: a live handle and a NUL-terminated string.
        let st = unsafe { presence_untrack(e.0, topic.as_ptr(), c) } as u32;
        let Ok(t) = topic.to_str() else {
            return (st, INVALID_UTF8);
        };
        let expected = self.check_topic(t);
        if expected != OK {
            return (st, expected);
        }
        match self.topics.get_mut(t).and_then(|tm| tm.live.remove(&c)) {
            Some(_) => {
                self.dirty.insert(t.to_owned());
                (st, OK)
            }
            None => (st, NOT_TRACKED),
        }
    }

    fn update(&mut self, e: &Engine, input: &mut Input) -> (u32, u32) {
        let topic = pick(input, &TOPICS, 10);
        let c = conn(input);
        let meta = match input.byte() % 3 {
            0 => Arg::Null,
            _ => Arg::Text(pick(input, &METAS, 48)),
        };
        // SAFETY: a live handle and NULL or NUL-terminated strings.
        let st = unsafe { presence_update(e.0, topic.as_ptr(), c, meta.ptr()) } as u32;
        let (Ok(t), Ok(m)) = (topic.to_str(), meta.text().transpose()) else {
            return (st, INVALID_UTF8);
        };
        let expected = self.check_topic(t);
        if expected != OK {
            return (st, expected);
        }
        let meta = match self.check_meta(m) {
            Ok(v) => v,
            Err(s) => return (st, s),
        };
        let phoenix = self.limits.phoenix;
        self.version += 1;
        let version = self.version;
        match self.topics.get_mut(t).and_then(|tm| tm.live.get_mut(&c)) {
            Some(p) => {
                if phoenix {
                    p.meta = meta;
                    p.version = version;
                    self.dirty.insert(t.to_owned());
                }
                (st, OK)
            }
            None => (st, NOT_TRACKED),
        }
    }

    /// Counts are live; a list is the state as of the last poll.
    fn read(&mut self, e: &Engine, input: &mut Input) {
        let topic = pick(input, &TOPICS, 10);
        let mut counts = presence_counts {
            viewers: 0,
            users: 0,
            connections: 0,
        };
        // SAFETY: a live handle, a NUL-terminated string, a writable out-parameter.
        let st = unsafe { presence_get_counts(e.0, topic.as_ptr(), &mut counts) } as u32;
        // Reads no more input: the seeds and crashes of earlier versions replay as they did.
        self.check_counts_many(e, &topic);
        let Ok(t) = topic.to_str() else {
            assert_eq!(st, INVALID_UTF8);
            return;
        };
        assert_eq!(st, self.check_topic(t));
        if st != OK {
            return;
        }
        let want = self
            .topics
            .get(t)
            .map(TopicModel::counts)
            .unwrap_or_default();
        assert_eq!(
            (counts.viewers, counts.users, counts.connections),
            want,
            "counts of {t:?}"
        );
        self.check_list(e, t);
    }

    /// `presence_counts_many` over the pool and `last` gives each topic's counts, or refuses
    /// the first name `presence_get_counts` would refuse and writes nothing.
    fn check_counts_many(&self, e: &Engine, last: &CString) {
        let names: Vec<CString> = TOPICS
            .iter()
            .map(|t| CString::new(*t).expect("pool strings have no NUL"))
            .chain([last.clone()])
            .collect();
        let ptrs: Vec<*const std::ffi::c_char> = names.iter().map(|n| n.as_ptr()).collect();
        let untouched = presence_counts {
            viewers: u64::MAX,
            users: u64::MAX,
            connections: u64::MAX,
        };
        let mut out = vec![untouched; names.len()];
        // SAFETY: a live handle, `n` NUL-terminated strings and room for `n` counts.
        let st = unsafe { presence_counts_many(e.0, ptrs.as_ptr(), ptrs.len(), out.as_mut_ptr()) }
            as u32;
        let expected = names
            .iter()
            .map(|n| n.to_str().map_or(INVALID_UTF8, |t| self.check_topic(t)))
            .find(|&s| s != OK)
            .unwrap_or(OK);
        assert_eq!(st, expected, "counts_many: {}", last_error());
        if st != OK {
            assert!(
                out.iter().all(|c| *c == untouched),
                "a refused call writes nothing"
            );
            return;
        }
        for (name, c) in names.iter().zip(&out) {
            let t = name.to_str().expect("checked above");
            let want = self
                .topics
                .get(t)
                .map(TopicModel::counts)
                .unwrap_or_default();
            assert_eq!(
                (c.viewers, c.users, c.connections),
                want,
                "counts_many of {t:?}"
            );
        }
    }

    /// `presence_list` equals what a client holds after replaying every diff.
    fn check_list(&mut self, e: &Engine, t: &str) {
        let topic = CString::new(t).expect("a C string's text");
        let mut buf = presence_buf {
            data: ptr::null(),
            len: 0,
        };
        let mut seq = u64::MAX;
        // SAFETY: a live handle, a NUL-terminated string, writable out-parameters.
        let st = unsafe { presence_list(e.0, topic.as_ptr(), &mut buf, &mut seq) } as u32;
        assert_eq!(st, OK, "{}", last_error());
        // SAFETY: a buffer the library returned, `len` bytes at `data`.
        let text = unsafe { std::slice::from_raw_parts(buf.data, buf.len) }.to_vec();
        // SAFETY: freed once.
        unsafe { presence_buf_free(&mut buf) };
        let state: Value = serde_json::from_slice(&text).expect("a list is JSON");
        let (want_seq, client) = match self.topics.get(t) {
            Some(tm) => (tm.seq, tm.client.clone()),
            None => (0, Client::Empty),
        };
        assert_eq!(seq, want_seq, "list seq of {t:?}");
        let phoenix = self.limits.phoenix;
        let got = read_state(&state, phoenix);
        let want = match client {
            Client::Empty if phoenix => Client::Phoenix(BTreeMap::new()),
            Client::Empty => Client::Counts(0, 0),
            c => c,
        };
        assert_eq!(got, want, "list of {t:?}");
        if let Client::Phoenix(s) = &got {
            for m in s.values().flatten() {
                assert!(
                    self.seen_refs
                        .contains(m["phx_ref"].as_str().expect("a ref")),
                    "a listed ref came in a diff"
                );
            }
        }
    }

    fn poll(&mut self, e: &Engine, json: bool) {
        let diffs = if json { poll_json(e) } else { poll_each(e) };
        self.polls += 1;
        let dirty = std::mem::take(&mut self.dirty);
        let mut seen = BTreeSet::new();
        for (topic, seq, counts, payload) in diffs {
            assert!(seen.insert(topic.clone()), "{topic:?} once per poll");
            assert!(
                dirty.contains(&topic),
                "{topic:?} changed since the last poll"
            );
            let vk = self.limits.viewers_key.clone();
            let phoenix = self.limits.phoenix;
            let tm = self.topics.get_mut(&topic).expect("a diff of a held topic");
            assert_eq!(seq, tm.seq + 1, "seq of {topic:?}");
            tm.seq = seq;
            assert_eq!(counts, tm.counts(), "poll counts of {topic:?}");
            let payload: Value = serde_json::from_str(&payload).expect("a payload is JSON");
            if phoenix {
                let mut state = match std::mem::take(&mut tm.client) {
                    Client::Phoenix(s) => s,
                    _ => BTreeMap::new(),
                };
                // Joins bring fresh refs; a phx_ref_prev names a ref leaving in the same diff.
                let leaving: BTreeSet<&str> = payload["leaves"]
                    .as_object()
                    .expect("leaves")
                    .values()
                    .flat_map(|p| p["metas"].as_array().expect("metas"))
                    .map(|m| m["phx_ref"].as_str().expect("a ref"))
                    .collect();
                for m in payload["joins"]
                    .as_object()
                    .expect("joins")
                    .values()
                    .flat_map(|p| p["metas"].as_array().expect("metas"))
                {
                    let r = m["phx_ref"].as_str().expect("a ref").to_owned();
                    assert!(self.seen_refs.insert(r), "a join's ref is new");
                    if let Some(prev) = m.get("phx_ref_prev") {
                        assert!(leaving.contains(prev.as_str().expect("a ref")));
                    }
                }
                sync_diff(&mut state, &payload);
                tm.client = Client::Phoenix(state);
                // The client now holds exactly the live presences.
                let live = group(&tm.live, &vk);
                let Client::Phoenix(s) = &tm.client else {
                    unreachable!()
                };
                assert_eq!(strip(s), live, "replayed diffs of {topic:?}");
            } else {
                let (mut v, mut u) = match tm.client {
                    Client::Counts(v, u) => (v, u),
                    _ => (0, 0),
                };
                let n = |side: &str, g: &str| payload[side][g]["count"].as_i64().expect("count");
                v += n("joins", "viewers") - n("leaves", "viewers");
                u += n("joins", "users") - n("leaves", "users");
                tm.client = Client::Counts(v, u);
                let (lv, lu, _) = tm.counts();
                assert_eq!(
                    (v, u),
                    (lv as i64, lu as i64),
                    "replayed diffs of {topic:?}"
                );
            }
        }
        // A topic appears exactly when its clients' view changed.
        for t in &dirty {
            let Some(tm) = self.topics.get_mut(t) else {
                continue;
            };
            let (v, u, _) = tm.counts();
            let versions: BTreeSet<u64> = tm.live.values().map(|p| p.version).collect();
            let changed = if self.limits.phoenix {
                versions != tm.published_versions
            } else {
                (v, u) != tm.published_counts
            };
            assert_eq!(seen.contains(t), changed, "{t:?} in the poll");
            tm.published_counts = (v, u);
            tm.published_versions = versions;
        }
        // A topic with no presence left is dropped at the poll.
        self.topics.retain(|_, tm| !tm.live.is_empty());
        let topics: Vec<String> = dirty.into_iter().collect();
        for t in topics {
            self.check_list(e, &t);
        }
        let s = stats(e);
        assert_eq!(s.topics, self.topics.len() as u64);
        assert_eq!(s.topics_pending, 0);
        assert_eq!(s.polls, self.polls);
    }
}

type Polled = (String, u64, (u64, u64, u64), String);

fn poll_json(e: &Engine) -> Vec<Polled> {
    let mut buf = presence_buf {
        data: ptr::null(),
        len: 0,
    };
    // SAFETY: a live handle and a writable out-parameter.
    let st = unsafe { presence_poll_diff(e.0, &mut buf) } as u32;
    assert_eq!(st, OK);
    // SAFETY: a buffer the library returned.
    let text = unsafe { std::slice::from_raw_parts(buf.data, buf.len) }.to_vec();
    // SAFETY: freed once.
    unsafe { presence_buf_free(&mut buf) };
    let batch: Value = serde_json::from_slice(&text).expect("a poll is JSON");
    batch
        .as_array()
        .expect("an array")
        .iter()
        .map(|d| {
            let c = &d["counts"];
            let n = |k: &str| c[k].as_u64().expect("a count");
            (
                d["topic"].as_str().expect("topic").to_owned(),
                d["seq"].as_u64().expect("seq"),
                (n("viewers"), n("users"), n("connections")),
                d["payload"].to_string(),
            )
        })
        .collect()
}

unsafe extern "C" fn collect(userdata: *mut c_void, diff: *const presence_topic_diff) {
    // SAFETY: `userdata` is the Vec passed by `poll_each`; `diff` lives across the call.
    let (out, d) = unsafe { (&mut *userdata.cast::<Vec<Polled>>(), &*diff) };
    let text = |s: &presence_str| {
        // SAFETY: `len` bytes at `data`, valid during the call.
        let b = unsafe { std::slice::from_raw_parts(s.data.cast::<u8>(), s.len) };
        String::from_utf8(b.to_vec()).expect("UTF-8")
    };
    out.push((
        text(&d.topic),
        d.seq,
        (d.counts.viewers, d.counts.users, d.counts.connections),
        text(&d.payload),
    ));
}

fn poll_each(e: &Engine) -> Vec<Polled> {
    let mut out: Vec<Polled> = Vec::new();
    // SAFETY: a live handle; `collect` matches `presence_diff_cb` and `out` outlives the call.
    let st = unsafe {
        presence_poll_diff_each(e.0, Some(collect), (&mut out as *mut Vec<Polled>).cast())
    } as u32;
    assert_eq!(st, OK);
    out
}

/// A list payload as the model's client state.
fn read_state(state: &Value, phoenix: bool) -> Client {
    if phoenix {
        let mut out = BTreeMap::new();
        for (k, p) in state.as_object().expect("a state object") {
            let mut metas = p["metas"].as_array().expect("metas").clone();
            metas.sort_by(|a, b| a["phx_ref"].as_str().cmp(&b["phx_ref"].as_str()));
            out.insert(k.clone(), metas);
        }
        Client::Phoenix(out)
    } else {
        let n = |g: &str| state[g]["count"].as_i64().expect("a count");
        Client::Counts(n("viewers"), n("users"))
    }
}

/// phoenix.js `Presence.syncDiff`, metas kept sorted by ref.
fn sync_diff(state: &mut BTreeMap<String, Vec<Value>>, diff: &Value) {
    for (key, p) in diff["joins"].as_object().expect("joins") {
        let joined = p["metas"].as_array().expect("metas");
        let refs: Vec<&Value> = joined.iter().map(|m| &m["phx_ref"]).collect();
        let metas = state.entry(key.clone()).or_default();
        metas.retain(|m| !refs.contains(&&m["phx_ref"]));
        metas.extend(joined.iter().cloned());
        metas.sort_by(|a, b| a["phx_ref"].as_str().cmp(&b["phx_ref"].as_str()));
    }
    for (key, p) in diff["leaves"].as_object().expect("leaves") {
        let left: Vec<&Value> = p["metas"]
            .as_array()
            .expect("metas")
            .iter()
            .map(|m| &m["phx_ref"])
            .collect();
        if let Some(metas) = state.get_mut(key) {
            metas.retain(|m| !left.contains(&&m["phx_ref"]));
            if metas.is_empty() {
                state.remove(key);
            }
        }
    }
}

/// Key → sorted host metas (without the engine's ref fields).
fn strip(state: &BTreeMap<String, Vec<Value>>) -> BTreeMap<String, Vec<String>> {
    state
        .iter()
        .map(|(k, metas)| {
            let mut v: Vec<String> = metas
                .iter()
                .map(|m| {
                    let mut m = m.as_object().expect("a meta").clone();
                    m.remove("phx_ref");
                    m.remove("phx_ref_prev");
                    Value::Object(m).to_string()
                })
                .collect();
            v.sort();
            (k.clone(), v)
        })
        .collect()
}

fn group(live: &BTreeMap<u64, Presence>, vk: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in live.values() {
        let k = p.key.clone().unwrap_or_else(|| vk.to_owned());
        out.entry(k).or_default().push(p.meta.to_string());
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}
