//! The `Engine` class: the core engine behind a read-write lock that `close()` empties.
//!
//! Locking rule: the lock is never held while Python code may run (which could switch
//! threads under the GIL) nor across a detach/attach, so `close()` waiting for the write
//! lock (detached) can never deadlock with a call waiting for the GIL.

use crate::cluster;
use crate::convert::{self, type_name};
use crate::errors;
use crate::ready::{self, json_loads, Batch};
use crate::settings;
use crate::values::{ClusterStats, Counts, Stats};
use presence_core::{Config, Engine, Format, ReadyBatch};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use std::ops::Range;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

/// Items a bulk call converts before applying them in one detached stretch.
const CHUNK_ITEMS: usize = 1024;
/// ...or fewer, once their strings reach this many bytes.
const CHUNK_BYTES: usize = 1 << 20;

/// A presence engine: who is present in which topic, and what changed since the last
/// poll, as ready-to-send payloads ("counts" or "phoenix" format). Every method may be
/// called from any thread. The full reference is in presence_engine's type stubs.
#[pyclass(module = "presence_engine._native", name = "Engine", subclass, frozen)]
pub struct PyEngine {
    inner: RwLock<Option<Engine>>,
    config: Config,
}

/// The fields of a bulk item, which must be a tuple or a list.
enum Fields<'a, 'py> {
    Tuple(&'a Bound<'py, PyTuple>),
    List(&'a Bound<'py, PyList>),
}

impl<'py> Fields<'_, 'py> {
    fn of<'a>(
        item: &'a Bound<'py, PyAny>,
        sizes: Range<usize>,
        shape: &str,
    ) -> PyResult<Fields<'a, 'py>> {
        let fields = if let Ok(t) = item.cast::<PyTuple>() {
            Fields::Tuple(t)
        } else if let Ok(l) = item.cast::<PyList>() {
            Fields::List(l)
        } else {
            return Err(PyTypeError::new_err(format!(
                "items must be tuples {shape}, not {}",
                type_name(item)
            )));
        };
        let len = fields.len();
        if !sizes.contains(&len) {
            return Err(PyTypeError::new_err(format!(
                "items must be tuples {shape}, got one of length {len}"
            )));
        }
        Ok(fields)
    }

    fn len(&self) -> usize {
        match self {
            Fields::Tuple(t) => t.len(),
            Fields::List(l) => l.len(),
        }
    }

    fn get(&self, i: usize) -> PyResult<Option<Bound<'py, PyAny>>> {
        if i >= self.len() {
            return Ok(None);
        }
        match self {
            Fields::Tuple(t) => t.get_item(i).map(Some),
            Fields::List(l) => l.get_item(i).map(Some),
        }
    }
}

/// A bulk call's converted items: strings in one buffer, ranges into it.
#[derive(Default)]
struct Chunk {
    text: String,
    items: Vec<ChunkItem>,
}

struct ChunkItem {
    topic: Range<usize>,
    conn: u64,
    key: Option<Range<usize>>,
    meta: Option<Range<usize>>,
}

impl Chunk {
    fn full(&self) -> bool {
        self.items.len() >= CHUNK_ITEMS || self.text.len() >= CHUNK_BYTES
    }

    fn push_str(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(s);
        start..self.text.len()
    }

    fn str(&self, r: &Range<usize>) -> &str {
        &self.text[r.clone()]
    }

    /// Converts one `(topic, conn[, key[, meta]])` item; on error the chunk is unchanged.
    fn push_track(&mut self, item: &Bound<'_, PyAny>, max_meta: usize) -> PyResult<()> {
        let mark = self.text.len();
        let result = self.convert_track(item, max_meta);
        if result.is_err() {
            self.text.truncate(mark);
        }
        result
    }

    fn convert_track(&mut self, item: &Bound<'_, PyAny>, max_meta: usize) -> PyResult<()> {
        let f = Fields::of(item, 2..5, "(topic, conn[, key[, meta]])")?;
        let topic = self.push_str(convert::text(&f.get(0)?.expect("len >= 2"), "topic")?);
        let conn = convert::conn(&f.get(1)?.expect("len >= 2"))?;
        let key = match f.get(2)? {
            Some(k) if !k.is_none() => Some(self.push_str(convert::text(&k, "key")?)),
            _ => None,
        };
        let meta_obj = f.get(3)?.filter(|m| !m.is_none());
        let start = self.text.len();
        let meta = convert::push_meta(meta_obj.as_ref(), max_meta, &mut self.text)?
            .then_some(start..self.text.len());
        self.items.push(ChunkItem {
            topic,
            conn,
            key,
            meta,
        });
        Ok(())
    }

    /// Converts one `(topic, conn)` item; on error the chunk is unchanged.
    fn push_untrack(&mut self, item: &Bound<'_, PyAny>) -> PyResult<()> {
        let f = Fields::of(item, 2..3, "(topic, conn)")?;
        let topic_obj = f.get(0)?.expect("len == 2");
        let topic = convert::text(&topic_obj, "topic")?;
        let conn = convert::conn(&f.get(1)?.expect("len == 2"))?;
        let topic = self.push_str(topic);
        self.items.push(ChunkItem {
            topic,
            conn,
            key: None,
            meta: None,
        });
        Ok(())
    }

    fn clear(&mut self) {
        self.text.clear();
        self.items.clear();
    }

    /// Tracks the items in order, each with `ttl` if given; stops at the first failure
    /// and returns its position.
    fn track(
        &self,
        engine: &Engine,
        ttl: Option<Duration>,
    ) -> Result<(), (usize, presence_core::Error)> {
        for (i, it) in self.items.iter().enumerate() {
            let key = it.key.as_ref().map(|r| self.str(r));
            let meta = it.meta.as_ref().map(|r| self.str(r));
            let topic = self.str(&it.topic);
            match ttl {
                Some(ttl) => engine.track_ttl(topic, it.conn, key, meta, ttl),
                None => engine.track(topic, it.conn, key, meta),
            }
            .map_err(|e| (i, e))?;
        }
        Ok(())
    }

    /// Untracks the items in order; stops at the first failure and returns its position.
    fn untrack(&self, engine: &Engine) -> Result<(), (usize, presence_core::Error)> {
        for (i, it) in self.items.iter().enumerate() {
            engine
                .untrack(self.str(&it.topic), it.conn)
                .map_err(|e| (i, e))?;
        }
        Ok(())
    }
}

/// The topics of `counts_many`, back to back in one string.
#[derive(Default)]
struct Names {
    text: String,
    ends: Vec<usize>,
}

impl Names {
    fn push(&mut self, name: &str) {
        self.text.push_str(name);
        self.ends.push(self.text.len());
    }

    fn list(&self) -> Vec<&str> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let name = &self.text[start..end];
                start = end;
                name
            })
            .collect()
    }
}

/// The exception of a topic `counts_many` refused, with its position as `index`.
fn counts_many_error(py: Python<'_>, e: &presence_core::Error) -> PyErr {
    match e.index() {
        Some(index) => errors::at_index(py, errors::engine_error(py, e), index),
        None => errors::engine_error(py, e),
    }
}

#[derive(Clone, Copy)]
enum BulkOp {
    /// With the time to live of every item, if the call gave one.
    Track(Option<Duration>),
    Untrack,
}

impl PyEngine {
    /// Runs an O(1) call while attached: no detach, whose cost would exceed the call's.
    fn with<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Engine) -> presence_core::Result<R>,
    ) -> PyResult<R> {
        let guard = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let Some(engine) = guard.as_ref() else {
            drop(guard);
            return Err(errors::closed(py));
        };
        let result = f(engine);
        drop(guard);
        result.map_err(|e| errors::engine_error(py, &e))
    }

    /// Runs a call whose cost grows with the data, detached from the interpreter so that
    /// other Python threads run meanwhile.
    fn detached<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Engine) -> R + Send,
    ) -> PyResult<R> {
        py.detach(|| {
            let guard = self.inner.read().unwrap_or_else(PoisonError::into_inner);
            guard.as_ref().map(f)
        })
        .ok_or_else(|| errors::closed(py))
    }

    fn state_of(&self, py: Python<'_>, topic: &Bound<'_, PyAny>) -> PyResult<presence_core::State> {
        let topic = convert::text(topic, "topic")?;
        if self.config.format == Format::Phoenix {
            // A phoenix state lists every presence: worth releasing the interpreter.
            self.detached(py, |e| e.list(topic))?
                .map_err(|e| errors::engine_error(py, &e))
        } else {
            self.with(py, |e| e.list(topic))
        }
    }

    /// Applies a chunk of a bulk call; `base` is the index of its first item.
    fn flush(&self, py: Python<'_>, op: BulkOp, chunk: &mut Chunk, base: usize) -> PyResult<()> {
        if chunk.items.is_empty() {
            return Ok(());
        }
        let outcome = self.detached(py, |e| match op {
            BulkOp::Track(ttl) => chunk.track(e, ttl),
            BulkOp::Untrack => chunk.untrack(e),
        })?;
        chunk.clear();
        outcome.map_err(|(i, e)| errors::item_error(py, &e, base + i))
    }

    fn bulk(&self, py: Python<'_>, op: BulkOp, items: &Bound<'_, PyAny>) -> PyResult<()> {
        let max_meta = self.config.max_meta_bytes;
        let mut chunk = Chunk::default();
        let mut base = 0;
        for (index, item) in items.try_iter()?.enumerate() {
            let converted = item.and_then(|item| {
                match op {
                    BulkOp::Track(_) => chunk.push_track(&item, max_meta),
                    BulkOp::Untrack => chunk.push_untrack(&item),
                }
                .map_err(|e| errors::at_index(py, e, index))
            });
            if let Err(e) = converted {
                // The items before this one are applied, as documented.
                self.flush(py, op, &mut chunk, base)?;
                return Err(e);
            }
            if chunk.full() {
                self.flush(py, op, &mut chunk, base)?;
                base = index + 1;
            }
        }
        self.flush(py, op, &mut chunk, base)
    }
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(signature = (**settings))]
    fn new(py: Python<'_>, settings: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let json = settings::config_json(py, settings)?;
        let config = Config::from_json(&json).map_err(|e| errors::engine_error(py, &e))?;
        let engine = Engine::new(config.clone()).map_err(|e| errors::engine_error(py, &e))?;
        Ok(PyEngine {
            inner: RwLock::new(Some(engine)),
            config,
        })
    }

    /// Adds the presence of conn in topic, as user key (None: anonymous), with an optional
    /// meta (a dict, a str of JSON, or None) and an optional time to live in seconds.
    #[pyo3(signature = (topic, conn, key=None, meta=None, *, ttl=None))]
    fn track(
        &self,
        py: Python<'_>,
        topic: &Bound<'_, PyAny>,
        conn: &Bound<'_, PyAny>,
        key: Option<&Bound<'_, PyAny>>,
        meta: Option<&Bound<'_, PyAny>>,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let topic = convert::text(topic, "topic")?;
        let conn = convert::conn(conn)?;
        let key = key.map(|k| convert::text(k, "key")).transpose()?;
        let ttl = ttl.map(convert::ttl).transpose()?;
        let mut buf = String::new();
        let has_meta = convert::push_meta(meta, self.config.max_meta_bytes, &mut buf)?;
        let meta = has_meta.then_some(buf.as_str());
        self.with(py, |e| match ttl {
            Some(ttl) => e.track_ttl(topic, conn, key, meta, ttl),
            None => e.track(topic, conn, key, meta),
        })
    }

    /// Renews every presence of conn tracked with a ttl; returns how many.
    fn touch(&self, py: Python<'_>, conn: &Bound<'_, PyAny>) -> PyResult<usize> {
        let conn = convert::conn(conn)?;
        self.with(py, |e| Ok(e.touch(conn)))
    }

    /// Removes the presence of conn in topic.
    fn untrack(
        &self,
        py: Python<'_>,
        topic: &Bound<'_, PyAny>,
        conn: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let topic = convert::text(topic, "topic")?;
        let conn = convert::conn(conn)?;
        self.with(py, |e| e.untrack(topic, conn))
    }

    /// Removes every presence of conn (on disconnect); returns how many.
    fn untrack_conn(&self, py: Python<'_>, conn: &Bound<'_, PyAny>) -> PyResult<usize> {
        let conn = convert::conn(conn)?;
        self.with(py, |e| Ok(e.untrack_conn(conn)))
    }

    /// Replaces the meta of a tracked presence (phoenix format shows a leave and a join).
    #[pyo3(signature = (topic, conn, meta=None))]
    fn update(
        &self,
        py: Python<'_>,
        topic: &Bound<'_, PyAny>,
        conn: &Bound<'_, PyAny>,
        meta: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let topic = convert::text(topic, "topic")?;
        let conn = convert::conn(conn)?;
        let mut buf = String::new();
        let has_meta = convert::push_meta(meta, self.config.max_meta_bytes, &mut buf)?;
        let meta = has_meta.then_some(buf.as_str());
        self.with(py, |e| e.update(topic, conn, meta))
    }

    /// Tracks (topic, conn[, key[, meta]]) items in order, each with the time to live `ttl`
    /// in seconds if given. On the first failing item, the items before it stay applied and
    /// its error is raised with `index` set.
    #[pyo3(signature = (items, *, ttl=None))]
    fn track_many(
        &self,
        py: Python<'_>,
        items: &Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let ttl = ttl.map(convert::ttl).transpose()?;
        self.bulk(py, BulkOp::Track(ttl), items)
    }

    /// Untracks (topic, conn) items in order; same failure rule as track_many.
    fn untrack_many(&self, py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<()> {
        self.bulk(py, BulkOp::Untrack, items)
    }

    /// untrack_conn for each conn; returns the total number of presences removed.
    fn untrack_conns(&self, py: Python<'_>, conns: &Bound<'_, PyAny>) -> PyResult<usize> {
        let flush = |chunk: &mut Vec<u64>| -> PyResult<usize> {
            if chunk.is_empty() {
                return Ok(0);
            }
            let removed = self.detached(py, |e| {
                chunk.iter().map(|c| e.untrack_conn(*c)).sum::<usize>()
            })?;
            chunk.clear();
            Ok(removed)
        };
        let mut chunk: Vec<u64> = Vec::with_capacity(CHUNK_ITEMS);
        let mut removed = 0;
        for (index, conn) in conns.try_iter()?.enumerate() {
            match conn.and_then(|c| convert::conn(&c).map_err(|e| errors::at_index(py, e, index))) {
                Ok(c) => chunk.push(c),
                Err(e) => {
                    flush(&mut chunk)?;
                    return Err(e);
                }
            }
            if chunk.len() >= CHUNK_ITEMS {
                removed += flush(&mut chunk)?;
            }
        }
        Ok(removed + flush(&mut chunk)?)
    }

    /// The live Counts(viewers, users, connections) of topic, in O(1).
    fn counts(&self, py: Python<'_>, topic: &Bound<'_, PyAny>) -> PyResult<Counts> {
        let topic = convert::text(topic, "topic")?;
        self.with(py, |e| e.counts(topic)).map(Counts::from)
    }

    /// The live Counts of each topic of an iterable of str, in order, in one call.
    fn counts_many<'py>(
        &self,
        py: Python<'py>,
        topics: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        if topics.is_instance_of::<PyString>() {
            // A str is an iterable of its characters: surely a mistake here.
            return Err(PyTypeError::new_err(
                "topics must be an iterable of str, not a str",
            ));
        }
        // The names are copied into one buffer so that the engine reads them detached: the
        // call grows with the number of topics, and Python strings are not ours to borrow
        // while other threads run.
        let mut names = Names::default();
        for (index, topic) in topics.try_iter()?.enumerate() {
            let topic = topic?;
            match convert::text(&topic, "topic") {
                Ok(name) => names.push(name),
                Err(e) => {
                    // The error is the first bad topic's: one before it that the engine
                    // refuses comes first.
                    self.detached(py, |e| e.counts_many(&names.list()))?
                        .map_err(|e| counts_many_error(py, &e))?;
                    return Err(errors::at_index(py, e, index));
                }
            }
        }
        let counts = self
            .detached(py, |e| e.counts_many(&names.list()))?
            .map_err(|e| counts_many_error(py, &e))?;
        PyList::new(py, counts.into_iter().map(Counts::from))
    }

    /// The topic's presence_state payload as of the last poll, as Python objects.
    fn list<'py>(&self, py: Python<'py>, topic: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let state = self.state_of(py, topic)?;
        json_loads(py, &state.json)
    }

    /// list(topic) as JSON text.
    fn list_json<'py>(
        &self,
        py: Python<'py>,
        topic: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyString>> {
        let state = self.state_of(py, topic)?;
        Ok(PyString::new(py, &state.json))
    }

    /// (list(topic), seq): the state and the seq of the last diff it includes.
    fn state<'py>(
        &self,
        py: Python<'py>,
        topic: &Bound<'_, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, u64)> {
        let state = self.state_of(py, topic)?;
        Ok((json_loads(py, &state.json)?, state.seq))
    }

    /// (list_json(topic), seq).
    fn state_json<'py>(
        &self,
        py: Python<'py>,
        topic: &Bound<'_, PyAny>,
    ) -> PyResult<(Bound<'py, PyString>, u64)> {
        let state = self.state_of(py, topic)?;
        Ok((PyString::new(py, &state.json), state.seq))
    }

    /// Takes every change since the last poll: [{"topic", "seq", "counts", "payload"}, ...].
    fn poll_diff<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let batch = self.detached(py, Engine::poll_diff)?;
        if batch.is_empty() {
            return Ok(PyList::empty(py).into_any());
        }
        json_loads(py, batch.json())
    }

    /// poll_diff() as one JSON array ("[]" when nothing changed).
    fn poll_diff_json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        let batch = self.detached(py, Engine::poll_diff)?;
        Ok(PyString::new(py, batch.json()))
    }

    /// The host's fast path: every change since the last poll as a Batch, each topic's
    /// message rendered in `envelope` (its `topics` and `messages` tuples; indexed or
    /// iterated, Diff objects with seq, counts and a lazily decoded payload).
    #[pyo3(signature = (envelope=None, *, join_ref=None))]
    fn poll<'py>(
        &self,
        py: Python<'py>,
        envelope: Option<&str>,
        join_ref: Option<&str>,
    ) -> PyResult<Bound<'py, Batch>> {
        let envelope = ready::envelope(envelope, join_ref)?;
        let env = envelope.as_ref();
        let diffs = self.detached(py, |e| {
            let mut batch = ReadyBatch::default();
            e.poll_ready(env, &mut batch);
            batch
        })?;
        Bound::new(py, Batch::new(diffs))
    }

    /// (message, seq): the state of topic as of the last poll in `envelope`, ready to send
    /// to a client that joins now.
    #[pyo3(
        signature = (topic, envelope=Some("event"), *, join_ref=None),
        text_signature = "($self, topic, envelope='event', *, join_ref=None)"
    )]
    fn state_message<'py>(
        &self,
        py: Python<'py>,
        topic: &Bound<'_, PyAny>,
        envelope: Option<&str>,
        join_ref: Option<&str>,
    ) -> PyResult<(Bound<'py, PyString>, u64)> {
        let envelope = ready::envelope(envelope, join_ref)?;
        let topic_name = convert::text(topic, "topic")?;
        let state = self.state_of(py, topic)?;
        let message = match envelope {
            Some(env) => env.state_message(topic_name, &state),
            None => state.json,
        };
        Ok((PyString::new(py, &message), state.seq))
    }

    /// How many topics changed since the last poll, in O(1).
    fn pending_topics(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |e| Ok(e.pending_topics()))
    }

    /// Engine-wide Stats(topics, presences, bytes, topics_pending, polls, expired).
    fn stats(&self, py: Python<'_>) -> PyResult<Stats> {
        self.detached(py, Engine::stats).map(Stats::from)
    }

    /// The engine's figures in the Prometheus text exposition format, for a /metrics
    /// endpoint.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyString>> {
        let text = self.detached(py, Engine::metrics)?;
        Ok(PyString::new(py, &text))
    }

    /// The wake-up descriptor: readable while a poll may return something. Never read or
    /// close it.
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        self.with(py, |e| Ok(e.wakeup_fd()))
    }

    /// Cluster mode, own bus: the messages to publish now, in order. Call it every tick_ms.
    fn cluster_tick<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let messages = self
            .detached(py, Engine::cluster_tick)?
            .map_err(|e| errors::engine_error(py, &e))?;
        PyList::new(py, messages.iter().map(|m| PyBytes::new(py, m)))
    }

    /// Cluster mode, own bus: applies a message another node published.
    fn cluster_ingest(&self, py: Python<'_>, message: &Bound<'_, PyAny>) -> PyResult<()> {
        let message = cluster::message(message)?;
        let message: &[u8] = &message;
        self.detached(py, |e| e.cluster_ingest(message))?
            .map_err(|e| errors::engine_error(py, &e))
    }

    /// Cluster mode, own bus: the departure message to publish before shutting down.
    fn cluster_leave<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let message = self.with(py, Engine::cluster_leave)?;
        Ok(PyBytes::new(py, &message))
    }

    /// Cluster mode, own bus: after the bus reconnects, the message asking every node for a
    /// snapshot.
    fn cluster_resync<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let message = self.with(py, Engine::cluster_resync)?;
        Ok(PyBytes::new(py, &message))
    }

    /// Cluster mode: the replication counters.
    fn cluster_stats(&self, py: Python<'_>) -> PyResult<ClusterStats> {
        self.with(py, |e| {
            e.cluster_stats().map(ClusterStats::from).ok_or_else(|| {
                presence_core::Error::new(
                    presence_core::ErrorKind::NoCluster,
                    "the engine was created without a cluster config",
                )
            })
        })
    }

    /// Cluster mode: starts the built-in Redis pub/sub link (a native thread).
    fn start_redis(
        &self,
        py: Python<'_>,
        url: &Bound<'_, PyAny>,
        channel: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let url = convert::text(url, "url")?;
        let channel = convert::text(channel, "channel")?;
        // Replacing a running link waits for its thread: detached.
        self.detached(py, |e| e.start_redis(url, channel))?
            .map_err(|e| errors::engine_error(py, &e))
    }

    /// Stops the Redis link after it published this node's departure; returns once its
    /// thread ended. Does nothing if no link runs.
    fn stop_redis(&self, py: Python<'_>) -> PyResult<()> {
        self.detached(py, |e| {
            e.stop_redis();
        })
    }

    /// Frees the engine (stopping a Redis link first); later calls raise
    /// EngineClosedError. Idempotent.
    fn close(&self, py: Python<'_>) {
        py.detach(|| {
            let engine = self
                .inner
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(engine) = engine {
                // Publishes the departure and waits for the link's thread.
                engine.stop_redis();
                drop(engine);
            }
        });
    }

    /// True once close() was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// "counts" or "phoenix".
    #[getter]
    fn format(&self) -> &'static str {
        self.config.format.name()
    }

    /// Every setting in force, as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        settings::config_dict(py, &self.config)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc_info))]
    fn __exit__(slf: &Bound<'_, Self>, _exc_info: &Bound<'_, PyTuple>) -> PyResult<bool> {
        // Through the method lookup, so that a subclass's close() runs too.
        slf.call_method0("close")?;
        Ok(false)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let this = slf.get();
        let state = if this.closed() { "closed" } else { "open" };
        let node = match &this.config.cluster {
            Some(c) => format!(" node={:?}", c.node),
            None => String::new(),
        };
        Ok(format!(
            "<{} format={:?}{node} {state}>",
            slf.get_type().qualname()?,
            this.format()
        ))
    }
}
