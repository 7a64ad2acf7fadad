'use strict';

// The Engine class: one presence_engine, its calls, its pollers and its cluster mode.

const { isUint8Array } = require('node:util/types');
const { native } = require('./native');
const { Status, errorFor, statusCode, InvalidInputError, EngineClosedError } = require('./errors');
const scratch = require('./scratch');
const { COUNTS, CLUSTER_STATS, u64Scratch, seqScratch, sizeScratch, u64, u64Big, structObject } = scratch;
const { bufferScratch, takeBuffer, collectMessages, fail } = scratch;
const { checkConn, checkText, checkTopic, checkKey, checkMeta, checkInterval, describe, configJson } = require('./checks');
const { fastPath, envelopeArgs, readyScratchFor, takeReady } = require('./batch');
const { ttlCalls, checkTtl } = require('./ttl');
const { httpReads, COUNTS_WORDS, refusedTopic } = require('./reads');

// The backstop for engines that are dropped without close(): the handle (a BigInt
// address) is freed once the Engine object has been collected.
// The held value is the engine's handles ({engine, ready}): its ready batch is made at
// its first pollBatch(), after the registration.
const registry = new FinalizationRegistry((handles) => {
  native().engine_free(handles.engine);
  if (handles.ready !== null) fastPath(native()).ready_batch_free(handles.ready);
});

class Engine {
  #handle; // BigInt address of the presence_engine, or null once closed
  #format;
  #fd;
  #stops = new Set(); // onDiff subscriptions and sleeping diffs() iterators
  #inflight = 0; // stopRedis() calls running on a worker thread
  #freeLater = null; // the handle close() could not free while #inflight > 0
  #handles; // {engine, ready}: what the registry frees; ready is the presence_ready_batch, or null

  /**
   * @param {object} [options] format ('counts' | 'phoenix'), viewersKey, shards,
   *   maxTopicBytes, maxKeyBytes, maxMetaBytes, maxTopics, maxPresences, cluster
   *   ({node, secret, tickMs, downAfterMs, staleAfterMs, snapshotIntervalMs, maxMessageBytes,
   *   maxNodes})
   */
  constructor(options) {
    const n = native();
    const json = configJson(n, options);
    const out = [null];
    const status = n.engine_new(json, out);
    if (status !== Status.OK) fail(n, status);
    this.#handle = out[0];
    this.#format = (options && options.format) || 'counts';
    this.#fd = n.wakeup_fd(this.#handle);
    this.#handles = { engine: this.#handle, ready: null };
    registry.register(this, this.#handles, this);
  }

  #h() {
    if (this.#handle === null) throw new EngineClosedError();
    return this.#handle;
  }

  /** 'counts' or 'phoenix'. */
  get format() {
    return this.#format;
  }

  /** True once close() has run. */
  get closed() {
    return this.#handle === null;
  }

  /**
   * The wake-up descriptor: readable while a poll may return something. The engine owns
   * it: wait on it, never read, write or close it.
   */
  get fd() {
    this.#h();
    return this.#fd;
  }

  /** Same as `fd`. */
  fileno() {
    return this.fd;
  }

  /**
   * Tracks `conn` in `topic` as user `key` (null/undefined: an anonymous viewer). With
   * `options.ttlMs` the presence leaves by itself once that many milliseconds pass without
   * a touch(conn) (presence_track_ttl).
   */
  track(topic, conn, key, meta, options) {
    const h = this.#h();
    checkTopic(topic);
    checkConn(conn);
    const k = checkKey(key);
    const m = checkMeta(meta);
    const ttl = checkTtl(options);
    const n = native();
    const status = ttl === null ? n.track(h, topic, conn, k, m) : ttlCalls(n).track_ttl(h, topic, conn, k, m, ttl);
    if (status !== Status.OK) fail(n, status);
  }

  /** Renews every presence of `conn` tracked with a ttlMs, in every topic; returns how many. */
  touch(conn) {
    const h = this.#h();
    checkConn(conn);
    const n = native();
    const status = ttlCalls(n).touch(h, conn, sizeScratch);
    if (status !== Status.OK) fail(n, status);
    return n.pointerSize === 8 ? u64(sizeScratch, 0) : sizeScratch[0];
  }

  /** Stops tracking `conn` in `topic`; NotTrackedError if it is not tracked there. */
  untrack(topic, conn) {
    const h = this.#h();
    checkTopic(topic);
    checkConn(conn);
    const n = native();
    const status = n.untrack(h, topic, conn);
    if (status !== Status.OK) fail(n, status);
  }

  /** Stops tracking `conn` everywhere (its socket closed); returns how many presences it had. */
  untrackConn(conn) {
    const h = this.#h();
    checkConn(conn);
    const n = native();
    const status = n.untrack_conn(h, conn, sizeScratch);
    if (status !== Status.OK) fail(n, status);
    return n.pointerSize === 8 ? u64(sizeScratch, 0) : sizeScratch[0];
  }

  /** Replaces the meta of a tracked presence (phoenix format shows a leave and a join). */
  update(topic, conn, meta) {
    const h = this.#h();
    checkTopic(topic);
    checkConn(conn);
    const m = checkMeta(meta);
    const n = native();
    const status = n.update(h, topic, conn, m);
    if (status !== Status.OK) fail(n, status);
  }

  /** The live counts of `topic`, O(1); zeros for an unknown topic. */
  counts(topic) {
    const h = this.#h();
    checkTopic(topic);
    const n = native();
    const status = n.get_counts(h, topic, u64Scratch);
    if (status !== Status.OK) fail(n, status);
    return {
      viewers: u64(u64Scratch, COUNTS.viewers),
      users: u64(u64Scratch, COUNTS.users),
      connections: u64(u64Scratch, COUNTS.connections),
    };
  }

  /**
   * The live counts of each of `topics` (an array or an iterable of strings), in order,
   * in one call whose cost grows with the number of topics asked (presence_counts_many);
   * zeros for an unknown topic. A bad topic throws for the whole call, with `index` set to
   * its position and its message starting with `topics[i]: `.
   */
  countsMany(topics) {
    const h = this.#h();
    if (typeof topics === 'string' || typeof topics !== 'object' || topics === null || typeof topics[Symbol.iterator] !== 'function') {
      throw new TypeError(`topics must be an array (or an iterable) of strings, got ${describe(topics)}`);
    }
    const list = Array.isArray(topics) ? topics : Array.from(topics);
    const n = native();
    const read = (names) => {
      const words = new Uint32Array(names.length * COUNTS_WORDS * 2);
      const status = names.length === 0 ? Status.OK : httpReads(n).counts_many(h, names, names.length, words);
      if (status !== Status.OK) {
        try {
          fail(n, status);
        } catch (err) {
          // The library names the first bad topic in its message.
          const at = /^topics\[(\d+)\]: /.exec(err.message);
          if (at) err.index = Number(at[1]);
          throw err;
        }
      }
      return words;
    };
    const refused = refusedTopic(list);
    if (refused !== null) {
      // The error is the first bad topic's: one before it that the library refuses
      // (empty, too long) comes first.
      read(list.slice(0, refused[0]));
      throw refused[1];
    }
    const words = read(list);
    const out = new Array(list.length);
    for (let i = 0; i < list.length; i++) {
      const base = i * COUNTS_WORDS;
      out[i] = {
        viewers: u64(words, base + COUNTS.viewers),
        users: u64(words, base + COUNTS.users),
        connections: u64(words, base + COUNTS.connections),
      };
    }
    return out;
  }

  /**
   * The presence_state payload of `topic` as of the last poll, as JSON text, with the seq
   * of the last diff it includes (the next diff of the topic has seq + 1).
   */
  state(topic) {
    const h = this.#h();
    checkTopic(topic);
    const n = native();
    const out = bufferScratch(n);
    const status = n.list(h, topic, out, seqScratch);
    if (status !== Status.OK) fail(n, status);
    const json = takeBuffer(n);
    return { json, seq: u64(seqScratch, 0) };
  }

  /** The presence_state payload of `topic` as of the last poll, as JSON text. */
  listJson(topic) {
    return this.state(topic).json;
  }

  /** The presence_state payload of `topic` as of the last poll, parsed. */
  list(topic) {
    return JSON.parse(this.state(topic).json);
  }

  /**
   * Takes every change since the last poll, as the JSON array text of
   * presence_poll_diff: `[{"topic","seq","counts","payload"}, ...]`, `[]` when idle.
   */
  pollDiffJson() {
    const h = this.#h();
    const n = native();
    const out = bufferScratch(n);
    const status = n.poll_diff(h, out);
    if (status !== Status.OK) fail(n, status);
    return takeBuffer(n);
  }

  /** Takes every change since the last poll: `[{topic, seq, counts, payload}, ...]`. */
  pollDiff() {
    return JSON.parse(this.pollDiffJson());
  }

  /**
   * The host's fast path: takes every change since the last poll as one Diff per
   * changed topic, each with its whole message already rendered (by the engine) in
   * `envelope`: 'event' for `{"event":"presence_diff","topic":T,"seq":S,"payload":P}`,
   * 'phoenix' for the Phoenix Channels V2 frame `[joinRef,null,T,"presence_diff",P]`
   * (joinRef null unless given: Phoenix broadcasts diffs with a null join_ref), or null
   * for none (`message` null, the payload in `payloadJson`). Nothing is parsed unless
   * `payload` is read.
   */
  pollReady({ envelope = null, joinRef = null } = {}) {
    const batch = this.pollBatch({ envelope, joinRef });
    const diffs = new Array(batch.length);
    for (let i = 0; i < diffs.length; i++) diffs[i] = batch.at(i);
    return diffs;
  }

  /**
   * The host's fast path, without an object per topic: takes every change since the last
   * poll, like pollReady({envelope, joinRef}), as one Batch. `batch.topic(i)` and
   * `batch.message(i)` are what a host sends (`batch.messageBytes(i)`: the message as
   * UTF-8 bytes, without encoding it); `batch.at(i)` and iteration give Diffs.
   */
  pollBatch({ envelope = null, joinRef = null } = {}) {
    const h = this.#h();
    const [kind, ref] = envelopeArgs(envelope, joinRef);
    const n = native();
    const f = fastPath(n);
    let ready = this.#handles.ready;
    if (ready === null) {
      const out = [null];
      const made = f.ready_batch_new(out);
      if (made !== Status.OK) fail(n, made);
      ready = this.#handles.ready = out[0];
    }
    const status = f.poll_ready_into(h, kind, ref, ready, readyScratchFor(n));
    if (status !== Status.OK) fail(n, status);
    return takeReady(n, kind !== 0);
  }

  /**
   * The state of `topic` as of the last poll (see state()) as the whole message to send
   * to a client that joins now, with its seq: in `envelope` ('event' by default:
   * `{"event":"presence_state","topic":T,"seq":S,"payload":P}`; 'phoenix':
   * `[joinRef,null,T,"presence_state",P]`, joinRef being the joining channel's, or null;
   * null: the payload alone).
   */
  stateMessage(topic, { envelope = 'event', joinRef = null } = {}) {
    const h = this.#h();
    checkTopic(topic);
    const [kind, ref] = envelopeArgs(envelope, joinRef);
    const n = native();
    const f = fastPath(n);
    const out = bufferScratch(n);
    const status = f.state_message(h, topic, kind, ref, out, seqScratch);
    if (status !== Status.OK) fail(n, status);
    const message = takeBuffer(n);
    return { message, seq: u64(seqScratch, 0) };
  }

  /** Engine-wide figures. `bytes` visits every topic: call it for monitoring, not per event. */
  stats() {
    const h = this.#h();
    const n = native();
    // A library older than this package writes fewer fields: those read as 0.
    u64Scratch.fill(0);
    const status = n.get_stats(h, u64Scratch);
    if (status !== Status.OK) fail(n, status);
    return structObject('presence_stats');
  }

  /**
   * The engine's figures in the Prometheus text exposition format (presence_metrics),
   * rendered by the engine: serve it at /metrics with `Content-Type: text/plain;
   * version=0.0.4`. Those of stats() and, in cluster mode, of clusterStats(). Like stats()
   * it visits every topic: render it when scraped.
   */
  metrics() {
    const h = this.#h();
    const n = native();
    const status = httpReads(n).metrics(h, bufferScratch(n));
    if (status !== Status.OK) fail(n, status);
    return takeBuffer(n);
  }

  /**
   * How many topics changed since the last poll (presence_pending_topics): O(1), no
   * syscall. Non-zero does not promise a non-empty poll (changes may cancel out).
   */
  pendingTopics() {
    const h = this.#h();
    const n = native();
    const status = n.pending_topics(h, u64Scratch);
    if (status !== Status.OK) fail(n, status);
    return u64(u64Scratch, 0);
  }

  /** True when a poll may return something: pendingTopics() > 0. */
  hasPending() {
    return this.pendingTopics() > 0;
  }

  /**
   * Calls `callback(batch)` with each non-empty poll: pollReady({envelope, joinRef}), an
   * array of Diff, or with `batch: true` pollBatch({envelope, joinRef}), a Batch. Every
   * `intervalMs` (default 50) a timer asks hasPending() (one atomic load in the engine)
   * and polls only when it is true. Returns a function that stops it; close() stops it
   * too. With `unref: true` the timer does not keep the process alive.
   */
  onDiff(callback, { intervalMs = 50, unref = false, envelope = null, joinRef = null, batch = false } = {}) {
    this.#h();
    if (typeof callback !== 'function') throw new TypeError(`callback must be a function, got ${describe(callback)}`);
    checkInterval(intervalMs);
    const poll = this.#poller(envelope, joinRef, batch);
    const timer = setInterval(() => {
      if (this.#handle === null) return stop();
      if (!this.hasPending()) return undefined;
      const batch = poll();
      if (batch.length > 0) callback(batch);
      return undefined;
    }, intervalMs);
    if (unref) timer.unref();
    const stop = () => {
      clearInterval(timer);
      this.#stops.delete(stop);
    };
    this.#stops.add(stop);
    return stop;
  }

  /**
   * An async iterator of non-empty poll batches (pollReady({envelope, joinRef}), arrays
   * of Diff, or with `batch: true` pollBatch({envelope, joinRef}), Batches), checking
   * hasPending() every `intervalMs` (default 50). It ends when the engine is closed or
   * `signal` aborts.
   */
  diffs({ intervalMs = 50, signal, envelope = null, joinRef = null, batch = false } = {}) {
    this.#h();
    checkInterval(intervalMs);
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new TypeError(`signal must be an AbortSignal, got ${describe(signal)}`);
    }
    return this.#diffs(intervalMs, signal, this.#poller(envelope, joinRef, batch));
  }

  /** The poll of onDiff() and diffs(), its options checked now. */
  #poller(envelope, joinRef, batch) {
    envelopeArgs(envelope, joinRef);
    if (typeof batch !== 'boolean') throw new TypeError(`batch must be a boolean, got ${describe(batch)}`);
    const options = { envelope, joinRef };
    return batch ? () => this.pollBatch(options) : () => this.pollReady(options);
  }

  async *#diffs(intervalMs, signal, poll) {
    while (this.#handle !== null && !(signal && signal.aborted)) {
      if (this.hasPending()) {
        const batch = poll();
        if (batch.length > 0) yield batch;
        if (this.#handle === null || (signal && signal.aborted)) return;
      }
      await this.#sleep(intervalMs, signal);
    }
  }

  /** Waits `ms`, or less if the engine is closed or `signal` aborts meanwhile. */
  #sleep(ms, signal) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#stops.delete(done);
        if (signal) signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#stops.add(done);
      if (signal) signal.addEventListener('abort', done, { once: true });
    });
  }

  // --- cluster mode ----------------------------------------------------------------------

  /**
   * Cluster mode over the host's own bus: the messages this node must publish now, in
   * order (its changes or a heartbeat; snapshots when due or asked for; snapshot
   * requests after a gap). Call it every `tickMs`; it also drops nodes silent for
   * `downAfterMs`, whose presences then leave through pollDiff(). NoClusterError on a
   * single-node engine.
   */
  clusterTick() {
    const h = this.#h();
    const n = native();
    return collectMessages(n, n.cluster_tick, h);
  }

  /**
   * Cluster mode: applies a message another node published (this node's own echoes are
   * ignored). RejectedError for a message that is forged, tampered, truncated, of another
   * secret or format, oversized or replayed: nothing of it is merged, and it is counted
   * in clusterStats().
   */
  clusterIngest(message) {
    const h = this.#h();
    if (!isUint8Array(message)) {
      throw new TypeError(`message must be a Buffer or a Uint8Array, got ${describe(message)}`);
    }
    const n = native();
    const status = n.cluster_ingest(h, message, message.length);
    if (status !== Status.OK) fail(n, status);
  }

  /**
   * Cluster mode: the message announcing that this node leaves, so the others drop its
   * presences at once. Publish it before shutting down; later ticks publish nothing.
   */
  clusterLeave() {
    const h = this.#h();
    const n = native();
    return collectMessages(n, n.cluster_leave, h)[0];
  }

  /**
   * Cluster mode: after the host's bus reconnects (messages may have been lost both
   * ways), the message to publish that asks every node for a snapshot; this node's next
   * tick sends its own. The Redis link needs none (losses show as sequence gaps).
   */
  clusterResync() {
    const h = this.#h();
    const n = native();
    return collectMessages(n, n.cluster_resync, h)[0];
  }

  /** Cluster mode: the replication counters (presence_cluster_stats, camelCased). */
  clusterStats() {
    const h = this.#h();
    const n = native();
    const status = n.cluster_get_stats(h, u64Scratch);
    if (status !== Status.OK) fail(n, status);
    // Every field of the C struct, camelCased; incarnation (milliseconds << 16 | random)
    // goes beyond 2^53, hence a bigint, and link_up is a flag.
    const out = structObject('presence_cluster_stats');
    out.incarnation = u64Big(u64Scratch, CLUSTER_STATS.incarnation);
    out.linkUp = out.linkUp !== 0;
    return out;
  }

  /**
   * Cluster mode: starts the built-in Redis link, a native background thread that
   * publishes this node's messages on the pub/sub `channel` at `url` every tick and
   * ingests the other nodes' messages. Every Redis call has a timeout; while Redis is away
   * or stops answering, the other nodes' presences are kept (stale) for staleAfterMs, and
   * it reconnects by itself; an unreachable Redis is not an error. Returns at once, except when it replaces a
   * running link, whose thread it waits for (about one tick).
   */
  startRedis(url, channel) {
    const h = this.#h();
    checkText(url, 'url', Status.INVALID_ARGUMENT, InvalidInputError);
    checkText(channel, 'channel', Status.INVALID_ARGUMENT, InvalidInputError);
    const n = native();
    const status = n.redis_start(h, url, channel);
    if (status !== Status.OK) fail(n, status);
  }

  /**
   * Stops the Redis link after it has published this node's departure. The native call
   * blocks until the link's thread ends (about one tick, plus up to a connection timeout
   * when Redis is away), so it runs on a worker thread and this returns a promise.
   * Resolves also when no link runs.
   */
  async stopRedis() {
    const h = this.#h();
    const n = native();
    this.#inflight++;
    try {
      const status = await new Promise((resolve, reject) => {
        n.redis_stop.async(h, (err, res) => (err ? reject(err) : resolve(res)));
      });
      // The error message is thread-local in C, on the worker thread: only the status
      // reaches this thread.
      if (status !== Status.OK) throw errorFor(status, `presence_redis_stop failed (${statusCode(status)})`);
    } finally {
      this.#inflight--;
      if (this.#inflight === 0 && this.#freeLater !== null) {
        const later = this.#freeLater;
        this.#freeLater = null;
        n.engine_free(later);
      }
    }
  }

  /**
   * Frees the engine. Idempotent; every other call afterwards throws EngineClosedError.
   * A running Redis link is stopped first (its departure published), which blocks for
   * about one tick: `await stopRedis()` before close() keeps the event loop free. While
   * a stopRedis() is still running, the free waits for it (the engine is closed at once).
   */
  close() {
    const h = this.#handle;
    if (h === null) return;
    this.#handle = null;
    for (const stop of [...this.#stops]) stop();
    registry.unregister(this);
    if (this.#handles.ready !== null) {
      fastPath(native()).ready_batch_free(this.#handles.ready);
      this.#handles.ready = null;
    }
    if (this.#inflight > 0) this.#freeLater = h;
    else native().engine_free(h);
  }

  [Symbol.dispose]() {
    this.close();
  }
}

module.exports = { Engine };
