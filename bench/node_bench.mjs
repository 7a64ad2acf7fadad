#!/usr/bin/env node
// Node benchmark of presence-engine (bindings/node, over the C ABI through koffi) against
// a plain JS Map tracker of the same semantics, on the standard workload:
//
//   N connections over T topics; conn i is user floor(i/2) (key `u${floor(i/2)}`), in
//   topic `t${floor(i/2) % T}`. Defaults N = 1,000,000, T = 1,000.
//
// track_untrack: N tracks then N untracks, ops/s = 2N / time (strings are built before
// timing, for both). memory: with all N tracked, engine stats().bytes / presences, and
// for the JS tracker the V8 heap growth after full GCs / N (the key and topic strings
// are shared with the workload arrays, so neither side pays for them there).
//
// Usage: node bench/node_bench.mjs [--n N] [--topics T] [--runs R] [--check]
//        node bench/node_bench.mjs --host [--total T] [--changed A,B] [--state-n N] [--runs R]
// Output: one JSON object per line on stdout, `runs` in run order, `median` over them.
// --check: a small workload (N = 2000, T = 10 unless given) with anonymous viewers and
// connections in two topics; asserts that both trackers give identical counts for every
// topic after tracking, after untrackConn and after untracking; exits non-zero otherwise.

import v8 from 'node:v8';
import vm from 'node:vm';
import { Engine } from '../bindings/node/index.mjs';

if (typeof globalThis.gc !== 'function') {
  v8.setFlagsFromString('--expose-gc');
  globalThis.gc = vm.runInNewContext('gc');
}

/** The baseline: what a Node server would write with Maps. Throws like the engine. */
export class JsMapTracker {
  constructor() {
    this.topics = new Map(); // topic -> {viewers, users: Map<key, refcount>, conns: Map<conn, key|null>}
    this.connTopics = new Map(); // conn -> Set<topic>
  }

  track(topic, conn, key = null) {
    let t = this.topics.get(topic);
    if (t === undefined) {
      t = { viewers: 0, users: new Map(), conns: new Map() };
      this.topics.set(topic, t);
    } else if (t.conns.has(conn)) {
      throw new Error(`connection ${conn} is already tracked in topic ${topic}`);
    }
    t.conns.set(conn, key);
    if (key === null) t.viewers++;
    else t.users.set(key, (t.users.get(key) || 0) + 1);
    let s = this.connTopics.get(conn);
    if (s === undefined) {
      s = new Set();
      this.connTopics.set(conn, s);
    }
    s.add(topic);
  }

  untrack(topic, conn) {
    const t = this.topics.get(topic);
    if (t === undefined || !t.conns.has(conn)) throw new Error(`connection ${conn} is not tracked in topic ${topic}`);
    this.#remove(t, topic, conn);
    const s = this.connTopics.get(conn);
    s.delete(topic);
    if (s.size === 0) this.connTopics.delete(conn);
  }

  untrackConn(conn) {
    const s = this.connTopics.get(conn);
    if (s === undefined) return 0;
    for (const topic of s) this.#remove(this.topics.get(topic), topic, conn);
    this.connTopics.delete(conn);
    return s.size;
  }

  #remove(t, topic, conn) {
    const key = t.conns.get(conn);
    t.conns.delete(conn);
    if (key === null) t.viewers--;
    else {
      const n = t.users.get(key) - 1;
      if (n === 0) t.users.delete(key);
      else t.users.set(key, n);
    }
    if (t.conns.size === 0) this.topics.delete(topic);
  }

  counts(topic) {
    const t = this.topics.get(topic);
    if (t === undefined) return { viewers: 0, users: 0, connections: 0 };
    return { viewers: t.viewers, users: t.users.size, connections: t.conns.size };
  }

  presences() {
    let n = 0;
    for (const t of this.topics.values()) n += t.conns.size;
    return n;
  }
}

function parseArgs(argv) {
  const opts = { n: null, topics: null, runs: 3, check: false, host: false, total: 10_000, changed: [1_000, 10_000], stateN: 10_000 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => {
      const v = inline !== undefined ? inline : argv[++i];
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 1) usage(`${flag} needs a positive integer, got ${v}`);
      return n;
    };
    if (flag === '--n') opts.n = value();
    else if (flag === '--topics') opts.topics = value();
    else if (flag === '--runs') opts.runs = value();
    else if (flag === '--check') opts.check = true;
    else if (flag === '--host') opts.host = true;
    else if (flag === '--total') opts.total = value();
    else if (flag === '--state-n') opts.stateN = value();
    else if (flag === '--changed') {
      const v = inline !== undefined ? inline : argv[++i];
      opts.changed = String(v).split(',').map(Number);
      if (!opts.changed.every((k) => Number.isSafeInteger(k) && k >= 1)) usage(`--changed needs positive integers, got ${v}`);
    }
    else usage(`unknown argument ${argv[i]}`);
  }
  return opts;
}

function usage(message) {
  process.stderr.write(`node_bench: ${message}\nusage: node bench/node_bench.mjs [--n N] [--topics T] [--runs R] [--check]\n       node bench/node_bench.mjs --host [--total T] [--changed A,B] [--state-n N] [--runs R]\n`);
  process.exit(2);
}

/** The standard workload's strings, built once and shared by both trackers. */
function workload(n, topicCount) {
  const topics = Array.from({ length: topicCount }, (_, j) => `t${j}`);
  const users = Math.ceil(n / 2);
  const keys = Array.from({ length: users }, (_, u) => `u${u}`);
  const topicOf = new Array(n);
  const keyOf = new Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.floor(i / 2);
    topicOf[i] = topics[u % topicCount];
    keyOf[i] = keys[u];
  }
  return { n, topics, topicOf, keyOf };
}

function settle() {
  for (let i = 0; i < 4; i++) globalThis.gc();
}

const now = () => process.hrtime.bigint();
const seconds = (a, b) => Number(b - a) / 1e9;

function runEngine(w) {
  settle();
  const engine = new Engine();
  const { n, topicOf, keyOf } = w;
  const t0 = now();
  for (let i = 0; i < n; i++) engine.track(topicOf[i], i, keyOf[i]);
  const t1 = now();
  const stats = engine.stats();
  if (stats.presences !== n) throw new Error(`engine holds ${stats.presences} presences, expected ${n}`);
  const bytesPerPresence = stats.bytes / stats.presences;
  const t2 = now();
  for (let i = 0; i < n; i++) engine.untrack(topicOf[i], i);
  const t3 = now();
  engine.pollDiff();
  engine.close();
  return { opsPerSec: (2 * n) / (seconds(t0, t1) + seconds(t2, t3)), bytesPerPresence };
}

function runJs(w) {
  settle();
  const before = process.memoryUsage().heapUsed;
  const tracker = new JsMapTracker();
  const { n, topicOf, keyOf } = w;
  const t0 = now();
  for (let i = 0; i < n; i++) tracker.track(topicOf[i], i, keyOf[i]);
  const t1 = now();
  settle();
  const bytesPerPresence = (process.memoryUsage().heapUsed - before) / n;
  if (tracker.presences() !== n) throw new Error('the JS tracker lost presences');
  const t2 = now();
  for (let i = 0; i < n; i++) tracker.untrack(topicOf[i], i);
  const t3 = now();
  if (tracker.topics.size !== 0 || tracker.connTopics.size !== 0) throw new Error('the JS tracker kept entries');
  return { opsPerSec: (2 * n) / (seconds(t0, t1) + seconds(t2, t3)), bytesPerPresence };
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const round = (x, digits) => Number(x.toFixed(digits));

function line(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function bench(opts) {
  const n = opts.n ?? 1_000_000;
  const topicCount = opts.topics ?? 1_000;
  const w = workload(n, topicCount);
  const engine = [];
  const js = [];
  for (let r = 0; r < opts.runs; r++) {
    // Alternate which goes first, so neither always runs on a warmer or fuller heap.
    if (r % 2 === 0) {
      engine.push(runEngine(w));
      js.push(runJs(w));
    } else {
      js.push(runJs(w));
      engine.push(runEngine(w));
    }
  }
  const common = { n, topics: topicCount };
  const ops = (rs) => rs.map((x) => Math.round(x.opsPerSec));
  const mem = (rs) => rs.map((x) => round(x.bytesPerPresence, 1));
  line({ bench: 'track_untrack', impl: 'node-engine', baseline: 'js-map', unit: 'ops/s', ...common, runs: ops(engine), median: median(ops(engine)) });
  line({ bench: 'track_untrack', impl: 'js-map', unit: 'ops/s', ...common, runs: ops(js), median: median(ops(js)) });
  line({ bench: 'memory', impl: 'node-engine', baseline: 'js-map', unit: 'bytes/presence', ...common, runs: mem(engine), median: median(mem(engine)) });
  line({ bench: 'memory', impl: 'js-map', unit: 'bytes/presence', ...common, runs: mem(js), median: median(mem(js)) });
}

/** Both trackers through the same calls; every topic's counts compared at each stage. */
function check(opts) {
  const n = opts.n ?? 2000;
  const topicCount = opts.topics ?? 10;
  const w = workload(n, topicCount);
  const engine = new Engine();
  const js = new JsMapTracker();
  const allTopics = [...w.topics, ...w.topics.map((t) => `x${t}`)];
  const failures = [];
  const compare = (stage) => {
    for (const topic of allTopics) {
      const a = engine.counts(topic);
      const b = js.counts(topic);
      if (a.viewers !== b.viewers || a.users !== b.users || a.connections !== b.connections) {
        failures.push(`${stage}: ${topic}: engine ${JSON.stringify(a)} js-map ${JSON.stringify(b)}`);
      }
    }
    const presences = engine.stats().presences;
    if (presences !== js.presences()) failures.push(`${stage}: engine holds ${presences} presences, js-map ${js.presences()}`);
  };
  const both = (fn) => {
    const r1 = fn(engine);
    const r2 = fn(js);
    if (r1 !== r2) failures.push(`results differ: engine ${r1}, js-map ${r2}`);
  };
  for (let i = 0; i < n; i++) {
    both((t) => t.track(w.topicOf[i], i, w.keyOf[i]));
    // Every third connection also watches a second topic, anonymously.
    if (i % 3 === 0) both((t) => t.track(`x${w.topicOf[(i + 1) % n]}`, i, null));
  }
  compare('tracked');
  for (let i = 0; i < n; i += 4) both((t) => t.untrackConn(i));
  compare('after untrackConn');
  for (let i = 0; i < n; i++) {
    if (i % 4 === 0) continue;
    both((t) => t.untrack(w.topicOf[i], i));
  }
  compare('after untrack');
  for (let i = 0; i < n; i++) if (i % 3 === 0) both((t) => t.untrackConn(i));
  compare('empty');
  if (engine.stats().presences !== 0) failures.push('the engine is not empty at the end');
  engine.close();
  // The measurement path too, on this small workload, so that it cannot rot unnoticed.
  const small = workload(n, topicCount);
  runEngine(small);
  runJs(small);
  const ok = failures.length === 0;
  line({ bench: 'check', impl: 'node-engine', baseline: 'js-map', n, topics: topicCount, topicsChecked: allTopics.length, ok });
  if (!ok) {
    for (const f of failures.slice(0, 20)) process.stderr.write(`node_bench --check: ${f}\n`);
    process.exit(1);
  }
}

// --- the host path (run.py's "host" suite) ----------------------------------------------

const META = '{"online_at":1700000000}'; // the Rust driver's small meta

/** Microseconds of this process's CPU time that `fn` takes, and what it returned. */
function cpuTimed(fn) {
  const start = process.cpuUsage();
  const value = fn();
  const d = process.cpuUsage(start);
  return [d.user + d.system, value];
}

/**
 * What a host pays per changed topic to get each topic's name and its ready-to-send
 * message, on the workload of the Rust driver's `host` command (total topics of one
 * presence each, k of them changed by one more presence, one poll timed, the state
 * restored off the clock):
 *   node-fast  engine.pollBatch({envelope: 'event'}), reading each topic(i) and message(i)
 *   node-diffs engine.pollReady({envelope: 'event'}), reading each Diff's topic and message
 *   node-dict  engine.pollDiff(), writing each message with JSON.stringify (what the web
 *              demo did before the fast path)
 * Then the state of one phoenix topic of stateN presences: stateMessage(topic) and
 * list(topic). CPU time of the process (process.cpuUsage, µs resolution, so the polls
 * timed are of 1000 topics or more), as the other drivers time theirs, after five untimed
 * calls of each (the code compiled, as in a running server).
 */
function hostBench(opts) {
  const { total, changed, stateN, runs } = opts;
  for (const format of ['counts', 'phoenix']) {
    const e = new Engine({ format });
    const meta = format === 'phoenix' ? META : null;
    const names = Array.from({ length: total }, (_, j) => `p${j}`);
    names.forEach((name, j) => e.track(name, j, 'u', meta));
    e.pollDiffJson();
    for (const kk of changed) {
      const k = Math.min(kk, total);
      const chosen = Array.from({ length: k }, (_, i) => names[Math.floor((i * total) / k)]);
      const impls = [
        [
          'node-fast',
          () => {
            let n = 0;
            const batch = e.pollBatch({ envelope: 'event' });
            for (let i = 0; i < batch.length; i++) {
              if (batch.topic(i) !== undefined && batch.message(i) !== null) n++;
            }
            return n;
          },
        ],
        [
          'node-diffs',
          () => {
            let n = 0;
            for (const d of e.pollReady({ envelope: 'event' })) {
              if (d.topic !== undefined && d.message !== null) n++;
            }
            return n;
          },
        ],
        [
          'node-dict',
          () => {
            let n = 0;
            for (const d of e.pollDiff()) {
              const message = `{"event":"presence_diff","topic":${JSON.stringify(d.topic)},"seq":${d.seq},"payload":${JSON.stringify(d.payload)}}`;
              if (message.length > 0) n++;
            }
            return n;
          },
        ],
      ];
      const ns = Object.fromEntries(impls.map(([name]) => [name, []]));
      // Untimed polls of each first: a server polls with its code compiled (V8 optimises
      // a function after several calls, on background threads that process.cpuUsage
      // counts) and the library's functions declared.
      for (const [, fn] of [...impls, ...impls, ...impls, ...impls, ...impls]) {
        chosen.forEach((topic, c) => e.track(topic, total + c, 'v', meta));
        fn();
        chosen.forEach((topic, c) => e.untrack(topic, total + c));
        e.pollDiffJson();
      }
      for (let r = 0; r < runs; r++) {
        for (let i = 0; i < impls.length; i++) {
          const [name, fn] = impls[(r + i) % impls.length];
          chosen.forEach((topic, c) => e.track(topic, total + c, 'v', meta));
          const [us, got] = cpuTimed(fn);
          if (got !== k) throw new Error(`${name}: ${got} diffs for ${k} changed topics`);
          ns[name].push(round((us * 1000) / k, 1));
          chosen.forEach((topic, c) => e.untrack(topic, total + c));
          e.pollDiffJson();
        }
      }
      const params = { format, changed: k, total_topics: total };
      for (const [name] of impls) line({ bench: 'host_diff', impl: name, baseline: 'rust-poll_diff', unit: 'ns', params, runs: ns[name] });
    }
    e.close();
  }
  const e = new Engine({ format: 'phoenix' });
  for (let i = 0; i < stateN; i++) e.track('t0', i, `u${Math.floor(i / 2)}`, META);
  e.pollDiffJson();
  const state = { 'node-state-message': [], 'node-list': [] };
  e.stateMessage('t0');
  e.list('t0');
  for (let r = 0; r < runs; r++) {
    const order = r % 2 === 0 ? Object.keys(state) : Object.keys(state).reverse();
    for (const name of order) {
      const [us] = cpuTimed(() => (name === 'node-list' ? e.list('t0') : e.stateMessage('t0')));
      state[name].push(us);
    }
  }
  e.close();
  for (const [name, values] of Object.entries(state)) {
    line({ bench: 'host_state', impl: name, baseline: 'rust-list', unit: 'us', params: { presences: stateN, topic: 't0' }, runs: values });
  }
}

const opts = parseArgs(process.argv.slice(2));
if (opts.host) hostBench(opts);
else if (opts.check) check(opts);
else bench(opts);
