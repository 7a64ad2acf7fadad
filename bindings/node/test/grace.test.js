'use strict';

// The leave grace (leaveGraceMs) and the occupancy of a poll's topics: a reload within the
// window sends nothing in either format, a leave without a rejoin comes out once its
// window ends (pendingTopics() counts it then, so onDiff() delivers it), and every poll
// form says which topics became occupied or vacated.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Engine, InvalidConfigError } = require('..');

// A window no run of these tests outlasts, for the reloads.
const LONG = 600000;

test('leaveGraceMs is a setting with its bounds', () => {
  new Engine({ leaveGraceMs: 0 }).close();
  new Engine({ leaveGraceMs: 3600000 }).close();
  assert.throws(() => new Engine({ leaveGraceMs: 3600001 }), InvalidConfigError);
});

for (const format of ['counts', 'phoenix']) {
  test(`${format}: a reload within the window sends nothing`, () => {
    const e = new Engine({ format, leaveGraceMs: LONG });
    e.track('room', 1, 'alice', { device: 'phone' });
    e.track('room', 2, null);
    const [first] = e.pollDiff();
    assert.equal(first.occupancy, 'occupied');
    const state = e.state('room');
    e.untrackConn(1);
    e.untrack('room', 2);
    assert.deepEqual(e.counts('room'), { viewers: 1, users: 1, connections: 2 });
    e.track('room', 3, 'alice', { device: 'phone' });
    e.track('room', 4, null); // a reload makes a new anonymous connection
    assert.deepEqual(e.pollDiff(), []);
    assert.deepEqual(e.pollReady(), []);
    assert.deepEqual(e.state('room'), state); // phoenix: the same refs, the same metas
    e.close();
  });
}

test('phoenix: a rejoin with another meta is an update, the key never leaves', () => {
  const e = new Engine({ format: 'phoenix', leaveGraceMs: LONG });
  e.track('room', 1, 'alice', { device: 'phone' });
  e.pollDiff();
  e.untrack('room', 1);
  e.track('room', 2, 'alice', { device: 'laptop' });
  const [d] = e.pollReady({ envelope: 'phoenix' });
  assert.equal(d.occupancy, null);
  const [joined] = d.payload.joins.alice.metas;
  const [left] = d.payload.leaves.alice.metas;
  assert.equal(joined.device, 'laptop');
  assert.equal(joined.phx_ref_prev, left.phx_ref);
  e.close();
});

test('a leave without a rejoin is delivered by onDiff when its window ends', async () => {
  const e = new Engine({ leaveGraceMs: 100 });
  e.track('room', 1, 'alice');
  e.pollDiff();
  const left = Date.now();
  e.untrackConn(1);
  assert.equal(e.pendingTopics(), 0);
  assert.deepEqual(e.counts('room'), { viewers: 0, users: 1, connections: 1 });
  const batch = await new Promise((resolve) => {
    const stop = e.onDiff((b) => {
      stop();
      resolve(b);
    }, { intervalMs: 10 });
  });
  assert.ok(Date.now() - left >= 90);
  assert.equal(batch.length, 1);
  const [d] = batch;
  assert.equal(d.occupancy, 'vacated');
  assert.deepEqual(d.counts, { viewers: 0, users: 0, connections: 0 });
  assert.deepEqual(d.payload.leaves.users, { count: 1 });
  assert.equal(JSON.parse(JSON.stringify(d)).occupancy, 'vacated');
  e.close();
});

test('occupancy is absent from a pollDiff entry, and null on a Diff, when unchanged', () => {
  const e = new Engine();
  e.track('a', 1, null);
  assert.equal(e.pollReady()[0].occupancy, 'occupied');
  e.track('a', 2, 'bob');
  const [d] = e.pollReady();
  assert.equal(d.occupancy, null);
  assert.equal('occupancy' in JSON.parse(JSON.stringify(d)), false);
  e.untrackConn(1);
  e.untrackConn(2);
  assert.deepEqual(e.pollDiff().map((x) => [x.topic, x.occupancy]), [['a', 'vacated']]);
  e.close();
});
