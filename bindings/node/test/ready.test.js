'use strict';

// The host's fast path: pollReady() and stateMessage() hand out what a host sends (the
// topic, and the whole message in an envelope, rendered by the engine), and parse a
// payload only when asked. What they hand out is what the object path (pollDiff(),
// list()) gives, serialised with JSON.stringify: byte for byte.

const test = require('node:test');
const assert = require('node:assert/strict');
const pe = require('..');

const { Engine, Batch, Diff } = pe;
const { Serializer } = require('phoenix');

/** The value each envelope is the JSON.stringify of. */
function envelope(name, event, topic, seq, payload, joinRef = null) {
  if (name === 'event') return { event, topic, seq, payload };
  return [joinRef, null, topic, event, payload];
}

/** A small deterministic generator, so a failure can be replayed. */
function random(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

// Names and metas with what JSON must escape (quotes, backslashes, every control
// character) and non-ASCII text, astral characters included (two UTF-16 units each).
const PIECES = ['a', 'Z', '"', '\\', '\b', '\f', '\n', '\u0001', '\u001f', '\u007f', 'é', '漢', '🙂', '\u2028', ' ', '/'];

function text(rand, min = 0) {
  let s = '';
  const n = min + rand(6);
  for (let i = 0; i < n; i++) s += PIECES[rand(PIECES.length)];
  return s;
}

function value(rand, depth) {
  switch (rand(depth > 2 ? 5 : 7)) {
    case 0:
      return null;
    case 1:
      return rand(2) === 0;
    case 2:
      return rand(1000) - 500;
    case 3:
      return [1e21, 1e-7, 0.1, -0, 123.456, 2 ** 53][rand(6)];
    case 4:
      return text(rand);
    case 5:
      return Array.from({ length: rand(3) }, () => value(rand, depth + 1));
    default:
      return meta(rand, depth + 1);
  }
}

function meta(rand, depth = 0) {
  const m = {};
  for (let i = rand(4); i > 0; i--) m[text(rand)] = value(rand, depth);
  delete m.phx_ref;
  delete m.phx_ref_prev;
  return m;
}

for (const format of ['counts', 'phoenix']) {
  for (const env of ['event', 'phoenix']) {
    test(`${format} format, ${env} envelope: every message is the JSON.stringify of the object path`, () => {
      for (let seed = 1; seed <= 40; seed++) {
        const rand = random(seed);
        const e = new Engine({ format });
        const topics = Array.from({ length: 1 + rand(4) }, () => text(rand, 1));
        const tracked = [];
        for (let conn = 0; conn < 1 + rand(12); conn++) {
          const topic = topics[rand(topics.length)];
          const key = rand(3) === 0 ? null : `${text(rand, 1)}k`;
          e.track(topic, conn, key, meta(rand));
          tracked.push([topic, conn]);
        }
        e.update(tracked[0][0], tracked[0][1], meta(rand));
        const batch = e.pollBatch({ envelope: env });
        const diffs = [...batch];
        assert.deepEqual(diffs.map((d) => d.topic).sort(), [...new Set(tracked.map(([t]) => t))].sort(), `seed ${seed}`);
        diffs.forEach((d, i) => {
          assert.ok(d instanceof Diff);
          const payload = JSON.parse(d.payloadJson);
          assert.equal(d.payloadJson, JSON.stringify(payload), `seed ${seed}`);
          assert.equal(d.message, JSON.stringify(envelope(env, 'presence_diff', d.topic, d.seq, payload)), `seed ${seed}`);
          assert.deepEqual(d.counts, e.counts(d.topic));
          assert.equal(batch.topic(i), d.topic);
          assert.equal(batch.message(i), d.message);
          assert.deepEqual(batch.messageBytes(i), Buffer.from(d.message), `seed ${seed}`);
          if (env === 'phoenix') {
            // What phoenix.js's Socket hands its channels for the frame.
            Serializer.decode(batch.message(i), (m) => {
              assert.deepEqual(m, { join_ref: null, ref: null, topic: d.topic, event: 'presence_diff', payload });
            });
          }
        });
        for (const topic of new Set(topics)) {
          const { json, seq } = e.state(topic);
          const want = JSON.stringify(envelope(env, 'presence_state', topic, seq, JSON.parse(json)));
          assert.deepEqual(e.stateMessage(topic, { envelope: env }), { message: want, seq });
          if (env === 'phoenix') {
            const withRef = JSON.stringify(envelope(env, 'presence_state', topic, seq, JSON.parse(json), 'r"1'));
            assert.equal(e.stateMessage(topic, { envelope: env, joinRef: 'r"1' }).message, withRef);
          }
          assert.deepEqual(e.stateMessage(topic, { envelope: null }), { message: json, seq });
        }
        e.close();
      }
    });
  }
}

test('pollReady gives what pollDiff gives (counts format: no random refs)', () => {
  const engines = [new Engine(), new Engine()];
  for (const e of engines) {
    for (let conn = 0; conn < 40; conn++) e.track(`t${conn % 7}`, conn, conn % 3 ? null : `u${conn % 5}`);
    e.untrack('t1', 1);
    e.untrackConn(2);
  }
  const byTopic = (a, b) => (a.topic < b.topic ? -1 : 1);
  const fast = engines[0].pollReady({ envelope: 'event' }).map((d) => d.toJSON()).sort(byTopic);
  const slow = engines[1].pollDiff().sort(byTopic);
  assert.equal(fast.length, 7);
  assert.deepEqual(JSON.parse(JSON.stringify(fast)), slow);
  for (const e of engines) e.close();
});

test('a Diff reads like a pollDiff entry and parses its payload once', () => {
  const e = new Engine({ format: 'phoenix' });
  e.track('room', 1, 'alice', { n: 1 });
  const [d] = e.pollReady({ envelope: 'phoenix' });
  assert.equal(d.topic, 'room');
  assert.equal(d.seq, 1);
  assert.deepEqual(d.counts, { viewers: 0, users: 1, connections: 1 });
  assert.equal(d.payload, d.payload); // parsed on the first read, kept
  assert.equal(d.payload.joins.alice.metas[0].n, 1);
  assert.equal(d.message, `[null,null,"room","presence_diff",${d.payloadJson}]`);
  assert.equal(d.occupancy, 'occupied');
  assert.deepEqual(JSON.parse(JSON.stringify(d)), {
    topic: 'room',
    seq: 1,
    counts: d.counts,
    occupancy: 'occupied',
    payload: d.payload,
  });
  e.close();
  // The batch's text lives in the Diff: it outlives the engine.
  assert.equal(d.payloadJson.startsWith('{"joins":{"alice"'), true);
});

test('without an envelope there is no message', () => {
  const e = new Engine();
  e.track('t', 1);
  const [d] = e.pollReady();
  assert.equal(d.message, null);
  assert.deepEqual(JSON.parse(d.payloadJson), d.payload);
  assert.deepEqual(e.pollReady({ envelope: 'event' }), []);
  e.close();
});

test('a Batch gives topics and messages by index, and Diffs', () => {
  const e = new Engine();
  for (let conn = 0; conn < 5; conn++) e.track(`t${conn}`, conn, conn % 2 ? null : `u${conn}`);
  const batch = e.pollBatch({ envelope: 'event' });
  assert.ok(batch instanceof Batch);
  assert.equal(batch.length, 5);
  const diffs = e.pollReady({ envelope: 'event' });
  assert.deepEqual(diffs, []); // drained by pollBatch
  const topics = Array.from({ length: 5 }, (_, i) => batch.topic(i));
  assert.deepEqual([...topics].sort(), ['t0', 't1', 't2', 't3', 't4']);
  assert.deepEqual([...batch].map((d) => d.topic), topics);
  assert.deepEqual([...batch].map((d) => d.message), topics.map((_, i) => batch.message(i)));
  assert.equal(batch.at(-1).topic, topics[4]);
  assert.equal(batch.at(0).topic, topics[0]);
  assert.notEqual(batch.at(0), batch.at(0)); // a new Diff on each call
  assert.equal(batch.at(5), undefined);
  assert.equal(batch.at(-6), undefined);
  for (const bad of [5, -1, 1.5, '0', null]) {
    assert.throws(() => batch.topic(bad), RangeError);
    assert.throws(() => batch.message(bad), RangeError);
    assert.throws(() => batch.messageBytes(bad), RangeError);
  }
  e.track('t0', 9);
  e.close();
  // The batch owns its text: it outlives the engine.
  assert.equal(JSON.parse(batch.message(0)).topic, topics[0]);
  assert.equal(batch.at(0).payload.joins.users.count + batch.at(0).payload.joins.viewers.count, 1);
  const empty = new Engine().pollBatch({ envelope: 'event' });
  assert.equal(empty.length, 0);
  assert.deepEqual([...empty], []);
});

test('a Batch gives the occupancy of each topic by index and in its Diffs', () => {
  const e = new Engine();
  e.track('a', 1);
  e.track('b', 2);
  let batch = e.pollBatch({ envelope: 'event' });
  for (let i = 0; i < batch.length; i++) {
    assert.equal(batch.occupancy(i), 'occupied');
    assert.equal(batch.at(i).occupancy, 'occupied');
  }
  assert.throws(() => batch.occupancy(2), RangeError);
  e.track('a', 3);
  e.untrack('b', 2);
  batch = e.pollBatch();
  const seen = Object.fromEntries(Array.from({ length: batch.length }, (_, i) => [batch.topic(i), batch.occupancy(i)]));
  assert.deepEqual(seen, { a: null, b: 'vacated' });
  assert.deepEqual([...batch].map((d) => [d.topic, d.occupancy]).sort(), [['a', null], ['b', 'vacated']]);
  e.close();
});

test('without an envelope a Batch message is the payload', () => {
  const e = new Engine({ format: 'phoenix' });
  e.track('t', 1, 'k', { a: 1 });
  e.track('u', 2);
  const batch = e.pollBatch();
  for (let i = 0; i < batch.length; i++) {
    assert.equal(batch.message(i), batch.at(i).payloadJson);
    assert.equal(batch.at(i).message, null);
    assert.deepEqual(batch.messageBytes(i), Buffer.from(batch.at(i).payloadJson));
  }
  e.close();
});

test('topics and keys beyond ASCII are sliced at the right places', () => {
  const e = new Engine({ format: 'phoenix' });
  const topics = ['🙂', 'é:1', '漢字🙂漢', 'plain'];
  topics.forEach((t, i) => e.track(t, i, `k🙂${i}é`, { s: '🙂'.repeat(i) }));
  const batch = e.pollBatch({ envelope: 'event' });
  const diffs = [...batch];
  assert.deepEqual(diffs.map((d) => d.topic).sort(), [...topics].sort());
  diffs.forEach((d, k) => {
    const i = topics.indexOf(d.topic);
    assert.deepEqual(Object.keys(d.payload.joins), [`k🙂${i}é`]);
    assert.equal(d.payload.joins[`k🙂${i}é`].metas[0].s, '🙂'.repeat(i));
    assert.equal(JSON.parse(d.message).topic, d.topic);
    assert.equal(batch.topic(k), d.topic);
    assert.equal(batch.messageBytes(k).toString('utf8'), d.message);
  });
  e.close();
});

test('the phoenix joinRef goes into every frame', () => {
  const e = new Engine();
  e.track('t', 1);
  const [d] = e.pollReady({ envelope: 'phoenix', joinRef: '5' });
  assert.equal(d.message, `["5",null,"t","presence_diff",${d.payloadJson}]`);
  const { message, seq } = e.stateMessage('t', { envelope: 'phoenix', joinRef: '5' });
  assert.ok(message.startsWith('["5",null,"t","presence_state",'));
  assert.equal(seq, 1);
  e.close();
});

test('bad envelopes are refused before anything is polled', () => {
  const e = new Engine();
  e.track('t', 1);
  assert.throws(() => e.pollReady({ envelope: 'xml' }), RangeError);
  assert.throws(() => e.pollReady({ envelope: 1 }), TypeError);
  assert.throws(() => e.pollReady({ envelope: 'event', joinRef: '1' }), RangeError);
  assert.throws(() => e.pollReady({ joinRef: '1' }), RangeError);
  assert.throws(() => e.pollReady({ envelope: 'phoenix', joinRef: 1 }), TypeError);
  assert.throws(() => e.pollReady({ envelope: 'phoenix', joinRef: 'a\0b' }), pe.InvalidInputError);
  assert.throws(() => e.stateMessage('t', { envelope: 'xml' }), RangeError);
  assert.throws(() => e.stateMessage('t', { joinRef: '1' }), RangeError);
  assert.throws(() => e.stateMessage(''), pe.InvalidInputError);
  assert.throws(() => e.stateMessage(1), TypeError);
  assert.throws(() => e.onDiff(() => {}, { envelope: 'xml' }), RangeError);
  assert.throws(() => e.diffs({ envelope: 'event', joinRef: '1' }), RangeError);
  assert.throws(() => e.onDiff(() => {}, { batch: 1 }), TypeError);
  assert.throws(() => e.diffs({ batch: 'yes' }), TypeError);
  assert.throws(() => e.pollBatch({ envelope: 'xml' }), RangeError);
  assert.equal(e.pendingTopics(), 1);
  assert.deepEqual(
    e.pollReady({ envelope: 'event' }).map((d) => d.topic),
    ['t']
  );
  e.close();
  assert.throws(() => e.pollReady(), pe.EngineClosedError);
  assert.throws(() => e.stateMessage('t'), pe.EngineClosedError);
});

test('onDiff and diffs() deliver Diffs with messages in the envelope asked for', async () => {
  const e = new Engine({ format: 'phoenix' });
  const got = new Promise((resolve) => {
    const stop = e.onDiff(
      (batch) => {
        stop();
        resolve(batch);
      },
      { intervalMs: 5, envelope: 'phoenix' }
    );
  });
  e.track('t', 1, 'alice', { a: 1 });
  const [d] = await got;
  assert.ok(d instanceof Diff);
  assert.equal(d.message, `[null,null,"t","presence_diff",${d.payloadJson}]`);
  e.untrack('t', 1);
  for await (const batch of e.diffs({ intervalMs: 5, envelope: 'event' })) {
    assert.equal(batch[0].message, `{"event":"presence_diff","topic":"t","seq":2,"payload":${batch[0].payloadJson}}`);
    assert.deepEqual(Object.keys(batch[0].payload.leaves), ['alice']);
    break;
  }
  e.track('t', 2);
  const batch = await new Promise((resolve) => {
    const stop = e.onDiff(
      (b) => {
        stop();
        resolve(b);
      },
      { intervalMs: 5, envelope: 'phoenix', batch: true }
    );
  });
  assert.ok(batch instanceof Batch);
  assert.equal(batch.message(0), `[null,null,"t","presence_diff",${batch.at(0).payloadJson}]`);
  e.untrack('t', 2);
  for await (const b of e.diffs({ intervalMs: 5, envelope: 'event', batch: true })) {
    assert.ok(b instanceof Batch);
    assert.deepEqual(JSON.parse(b.message(0)), { event: 'presence_diff', topic: 't', seq: 2, payload: b.at(0).payload });
    break;
  }
  e.close();
});
