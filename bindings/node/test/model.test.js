'use strict';

// Randomized sequences of calls, checked against the plain JS model of test/helpers.
// After every poll: the reported topics, seqs and counts match the model; the state at
// the previous poll plus the diff gives the new state (the seed's counts reducer, and
// for phoenix both our syncDiff and the official phoenix.js Presence.syncDiff); the new
// state matches the model's presences, phx_refs and phx_ref_prev included.
//
// PRESENCE_TEST_SEED=<n> replays one seed; PRESENCE_TEST_SEEDS=<count> runs more.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Presence } = require('phoenix');
const pe = require('..');
const { rng, Model, applyCountsDiff, syncDiff } = require('./helpers/model');

const SEEDS = process.env.PRESENCE_TEST_SEED
  ? [Number(process.env.PRESENCE_TEST_SEED)]
  : Array.from({ length: Number(process.env.PRESENCE_TEST_SEEDS || 12) }, (_, i) => 1000 + i * 7919);
const STEPS = 700;

const TOPICS = ['room:a', 'room:b', 'video:42', 'salle:é🙂', 'x', 't'.repeat(40)];
const KEYS = ['alice', 'bob', 'carol', 'ü-ser 🙂', 'dave'];
const CONNS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 2 ** 53 - 1, 2n ** 63n + 5n, 2n ** 64n - 1n];

function emptyState(format) {
  return format === 'counts' ? { viewers: { count: 0 }, users: { count: 0 } } : {};
}

/** The official client's syncDiff, on a copy; its null-prototype result made plain. */
function officialSyncDiff(state, diff) {
  const out = Presence.syncDiff(JSON.parse(JSON.stringify(state)), diff);
  return JSON.parse(JSON.stringify(out));
}

/** Phoenix state -> sorted [{key, c, v, s, ref, prev}] for comparing with the model. */
function flatten(state) {
  const out = [];
  for (const [key, { metas }] of Object.entries(state)) {
    for (const m of metas) out.push({ key, c: m.c, v: m.v, s: m.s, ref: m.phx_ref, prev: m.phx_ref_prev });
  }
  return out.sort((a, b) => (a.c < b.c ? -1 : a.c > b.c ? 1 : 0));
}

function runSequence(format, seed) {
  const r = rng(seed);
  const viewersKey = format === 'phoenix' ? r.pick(['viewers', 'anon']) : 'viewers';
  const options = { format, maxKeyBytes: 32, shards: r.pick([1, 4, 64]) };
  if (format === 'phoenix') options.viewersKey = viewersKey;
  const engine = new pe.Engine(options);
  const model = new Model(format, viewersKey);
  const client = new Map(); // topic -> state a client holds after the last poll
  const refs = new Map(); // topic -> Map<conn string, {ref, prev}> as published
  const seen = new Set(); // every phx_ref ever published
  const ctx = () => `format=${format} seed=${seed}`;

  const connArg = (c) => (typeof c === 'bigint' || r.chance(0.5) ? c : BigInt(c));
  const metaFor = (conn, v) => {
    const obj = { c: String(conn), v, s: r.pick(['', 'plain', 'é "quoted"\n', '🙂\\']) };
    const form = r.int(3);
    return { obj, arg: form === 0 ? obj : form === 1 ? JSON.stringify(obj) : JSON.stringify(obj, null, 2) };
  };
  const checkCounts = (topic) => assert.deepEqual(engine.counts(topic), model.counts(topic), `${ctx()} counts ${topic}`);

  function verifyPoll(useJson) {
    const expected = model.changed();
    const batch = useJson ? JSON.parse(engine.pollDiffJson()) : engine.pollDiff();
    assert.deepEqual(batch.map((b) => b.topic).sort(), expected, `${ctx()} changed topics`);
    for (const item of batch) {
      const { topic, payload } = item;
      const { occupancy, ...rest } = item;
      assert.deepEqual(Object.keys(rest).sort(), ['counts', 'payload', 'seq', 'topic']);
      assert.equal(item.seq, model.seq(topic) + 1, `${ctx()} seq of ${topic}`);
      assert.deepEqual(item.counts, model.counts(topic), `${ctx()} envelope counts of ${topic}`);
      const prev = client.get(topic) || emptyState(format);
      let next;
      if (format === 'counts') {
        for (const side of ['joins', 'leaves']) {
          assert.deepEqual(Object.keys(payload[side]).sort(), ['users', 'viewers'], `${ctx()} ${side} groups`);
        }
        for (const g of ['viewers', 'users']) {
          // Net changes: a group never both joins and leaves in one diff.
          assert.ok(payload.joins[g].count === 0 || payload.leaves[g].count === 0, `${ctx()} net ${g}`);
        }
        next = applyCountsDiff(prev, payload);
      } else {
        checkPhoenixDiff(topic, payload);
        next = syncDiff(prev, payload);
        assert.deepEqual(officialSyncDiff(prev, payload), next, `${ctx()} official syncDiff of ${topic}`);
      }
      client.set(topic, next);
      // Occupancy is the passage of the client's state between empty and not empty.
      const isEmpty = (state) =>
        format === 'counts' ? state.viewers.count === 0 && state.users.count === 0 : Object.keys(state).length === 0;
      const want = isEmpty(prev) === isEmpty(next) ? undefined : isEmpty(prev) ? 'occupied' : 'vacated';
      assert.equal(occupancy, want, `${ctx()} occupancy of ${topic}`);
    }
    model.polled(expected);

    for (const topic of new Set([...TOPICS, ...client.keys(), ...model.topics.keys()])) {
      const { json, seq } = engine.state(topic);
      const state = JSON.parse(json);
      assert.equal(seq, model.seq(topic), `${ctx()} state seq of ${topic}`);
      assert.deepEqual(state, client.get(topic) || emptyState(format), `${ctx()} previous state + diff = state (${topic})`);
      if (format === 'counts') {
        assert.deepEqual(state, model.countsState(topic), `${ctx()} counts state of ${topic}`);
      } else {
        checkPhoenixState(topic, state);
      }
      if (!model.topics.has(topic)) client.delete(topic);
    }
  }

  function checkPhoenixDiff(topic, payload) {
    const live = model.topics.get(topic).live;
    const published = model.published(topic);
    const known = refs.get(topic) || new Map();
    const joins = flatten(payload.joins);
    const leaves = flatten(payload.leaves);
    const expJoins = [];
    // phx_ref_prev of a join: a presence clients saw and that was updated once since
    // must name the ref clients know; one updated more often names a ref (the engine
    // may pick the published or the intermediate one); a fresh track updated in the same
    // window may or may not carry one; a fresh track never updated carries none.
    const prevRule = new Map(); // conn -> exact ref | 'absent' | 'any-ref' | 'any'
    for (const [conn, p] of live) {
      const q = published.get(conn);
      if (!q || q.version !== p.version) {
        const sameInstance = q !== undefined && q.instance === p.instance;
        let rule;
        if (sameInstance) rule = p.updates - q.updates === 1 ? known.get(String(conn)).ref : 'any-ref';
        else rule = p.updates === 0 ? 'absent' : 'any';
        prevRule.set(String(conn), rule);
        expJoins.push({ key: p.key === null ? viewersKey : p.key, c: String(conn), v: p.version, s: p.meta.s });
      }
    }
    const expLeaves = [];
    for (const [conn, q] of published) {
      const p = live.get(conn);
      if (!p || p.version !== q.version) {
        const k = known.get(String(conn));
        expLeaves.push({ key: q.key === null ? viewersKey : q.key, c: String(conn), v: q.version, s: q.meta.s, ref: k.ref, prev: k.prev });
      }
    }
    const byC = (a, b) => (a.c < b.c ? -1 : a.c > b.c ? 1 : 0);
    assert.deepEqual(
      joins.map(({ ref, prev, ...rest }) => rest),
      expJoins.sort(byC),
      `${ctx()} joins of ${topic}`
    );
    for (const j of joins) {
      const rule = prevRule.get(j.c);
      if (rule === 'absent') assert.equal(j.prev, undefined, `${ctx()} no phx_ref_prev on a fresh join (conn ${j.c})`);
      else if (rule === 'any-ref') assert.match(j.prev, /^[A-Za-z0-9_-]{11}$/, `${ctx()} phx_ref_prev on an update (conn ${j.c})`);
      else if (rule !== 'any') assert.equal(j.prev, rule, `${ctx()} phx_ref_prev names the published ref (conn ${j.c})`);
      if (j.prev !== undefined) assert.match(j.prev, /^[A-Za-z0-9_-]{11}$/);
      assert.match(j.ref, /^[A-Za-z0-9_-]{11}$/, `${ctx()} phx_ref shape`);
      assert.ok(!seen.has(j.ref), `${ctx()} a joined phx_ref is new`);
    }
    assert.deepEqual(leaves, expLeaves.sort(byC), `${ctx()} leaves of ${topic}`);
  }

  function checkPhoenixState(topic, state) {
    const flat = flatten(state);
    const expected = [...model.published(topic)].map(([conn, p]) => ({
      key: p.key === null ? viewersKey : p.key,
      c: String(conn),
      v: p.version,
      s: p.meta.s,
    }));
    assert.deepEqual(
      flat.map(({ ref, prev, ...rest }) => rest),
      expected.sort((a, b) => (a.c < b.c ? -1 : a.c > b.c ? 1 : 0)),
      `${ctx()} phoenix state of ${topic}`
    );
    for (const [key, { metas }] of Object.entries(state)) {
      assert.ok(metas.length > 0, `${ctx()} no empty key ${key}`);
    }
    const m = new Map();
    for (const f of flat) {
      m.set(f.c, { ref: f.ref, prev: f.prev });
      seen.add(f.ref);
    }
    refs.set(topic, m);
  }

  for (let step = 0; step < STEPS; step++) {
    const op = r();
    const topic = r.pick(TOPICS);
    const conn = r.pick(CONNS);
    if (op < 0.34) {
      const key = r.chance(0.3) ? null : r.pick(KEYS);
      const v = model.version();
      const meta = metaFor(conn, v);
      if (model.has(topic, conn)) {
        assert.throws(() => engine.track(topic, connArg(conn), key, meta.arg), (e) => e instanceof pe.AlreadyTrackedError && e.status === 7, ctx());
      } else {
        engine.track(topic, connArg(conn), r.chance(0.2) && key === null ? undefined : key, meta.arg);
        model.track(topic, conn, key, meta.obj, v);
      }
      checkCounts(topic);
    } else if (op < 0.54) {
      if (model.has(topic, conn)) {
        engine.untrack(topic, connArg(conn));
        model.untrack(topic, conn);
      } else {
        assert.throws(() => engine.untrack(topic, connArg(conn)), pe.NotTrackedError, ctx());
      }
      checkCounts(topic);
    } else if (op < 0.62) {
      assert.equal(engine.untrackConn(connArg(conn)), model.untrackConn(conn), `${ctx()} untrackConn`);
      for (const t of TOPICS) checkCounts(t);
    } else if (op < 0.76) {
      const v = model.version();
      const meta = metaFor(conn, v);
      if (model.has(topic, conn)) {
        engine.update(topic, connArg(conn), meta.arg);
        model.update(topic, conn, meta.obj, v);
      } else {
        assert.throws(() => engine.update(topic, connArg(conn), meta.arg), pe.NotTrackedError, ctx());
      }
      checkCounts(topic);
    } else if (op < 0.79) {
      // Rejected calls change nothing (checked by everything that follows).
      const bad = r.int(4);
      if (bad === 0) assert.throws(() => engine.track(topic, connArg(conn), 'k'.repeat(33)), pe.TooLongError);
      if (bad === 1) assert.throws(() => engine.track('', connArg(conn), null), pe.InvalidInputError);
      if (bad === 2) assert.throws(() => engine.track(topic, connArg(conn), 'alice', { phx_ref: 'x' }), pe.InvalidMetaError);
      if (bad === 3 && format === 'phoenix') {
        assert.throws(() => engine.track(topic, connArg(conn), viewersKey), pe.InvalidInputError);
      }
      checkCounts(topic);
    } else if (op < 0.85) {
      // Between polls, the state stays the one of the last poll.
      const { json, seq } = engine.state(topic);
      assert.deepEqual(JSON.parse(json), client.get(topic) || emptyState(format), `${ctx()} state between polls`);
      assert.equal(seq, model.seq(topic));
    } else {
      verifyPoll(r.chance(0.5));
    }
  }
  verifyPoll(false);
  // Drain everything: all topics must end empty and be dropped.
  for (const conn of CONNS) engine.untrackConn(conn), model.untrackConn(conn);
  verifyPoll(false);
  assert.deepEqual(engine.stats().presences, 0);
  assert.deepEqual(engine.stats().topics, 0, `${ctx()} every topic dropped`);
  engine.close();
}

for (const format of ['counts', 'phoenix']) {
  test(`randomized ${format} sequences match the model (${SEEDS.length} seeds x ${STEPS} steps)`, () => {
    for (const seed of SEEDS) runSequence(format, seed);
  });
}
