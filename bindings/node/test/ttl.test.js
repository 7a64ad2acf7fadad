'use strict';

// Presences with a time to live (track(..., { ttlMs }), touch(conn)): the expiry wakes the
// descriptor by itself, one touch renews every topic of a connection, untracks work as for
// any presence, bad options are refused, and over the own-bus calls the leave reaches the
// other node. The clock is the system's: the deterministic tests of deadlines are the
// core's (tests/model_ttl.rs).

const test = require('node:test');
const assert = require('node:assert/strict');
const pe = require('..');

const { Engine } = pe;
const SECRET = 'a shared secret of the test cluster';

/**
 * Resolves true once the engine has a change queued for a poll (what makes its descriptor
 * readable), false after `ms`. Nothing here polls or touches the engine: only its own timer
 * can queue the leave.
 */
function pendingWithin(engine, ms) {
  const deadline = Date.now() + ms;
  return new Promise((resolve) => {
    const check = () => {
      if (engine.pendingTopics() > 0) return resolve(true);
      if (Date.now() > deadline) return resolve(false);
      setTimeout(check, 5);
    };
    check();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('an expired presence leaves at the next poll, with no poll or touch to make it', async () => {
  for (const format of ['counts', 'phoenix']) {
    const e = new Engine({ format });
    try {
      e.track('inbox', 1, 'alice', { device: 'phone' }, { ttlMs: 50 });
      e.track('inbox', 2, 'bob');
      e.pollDiff();
      const start = Date.now();
      assert.equal(e.pendingTopics(), 0);
      assert.ok(await pendingWithin(e, 10000), 'the timer expired it');
      assert.ok(Date.now() - start >= 40);
      assert.deepEqual(e.counts('inbox'), { viewers: 0, users: 1, connections: 1 });
      const [diff] = e.pollDiff();
      if (format === 'counts') assert.deepEqual(diff.payload.leaves.users, { count: 1 });
      else assert.equal(diff.payload.leaves.alice.metas[0].device, 'phone');
      assert.equal(e.stats().presences, 1);
      assert.equal(e.stats().expired, 1);
      assert.equal(e.touch(1), 0);
    } finally {
      e.close();
    }
  }
});

test('one touch renews every topic of the connection; untracks work as usual', () => {
  const e = new Engine();
  try {
    e.track('a', 7, 'carol', null, { ttlMs: 60000 });
    e.track('b', 7n, 'carol', null, { ttlMs: 120000 });
    e.track('c', 7, 'carol', null, {});
    e.track('d', 7, 'carol', null, { ttlMs: undefined });
    assert.equal(e.touch(7), 2);
    assert.equal(e.touch(8), 0, 'no TTL presence: not an error');
    e.untrack('a', 7);
    assert.equal(e.touch(7n), 1);
    assert.equal(e.untrackConn(7), 3);
    assert.equal(e.touch(7), 0);
    assert.equal(e.stats().expired, 0, 'renewals and untracks are no expiries');
  } finally {
    e.close();
  }
});

test('a touched presence outlives its first deadline', async () => {
  const e = new Engine();
  try {
    e.track('inbox', 3, null, null, { ttlMs: 1000 });
    e.pollDiff();
    for (let i = 0; i < 3; i++) {
      await sleep(100);
      assert.equal(e.touch(3), 1);
    }
    assert.equal(e.counts('inbox').viewers, 1);
    assert.ok(await pendingWithin(e, 10000));
    assert.equal(e.counts('inbox').viewers, 0);
  } finally {
    e.close();
  }
});

test('bad ttl options are refused and change nothing', () => {
  const e = new Engine();
  try {
    for (const ttlMs of [0, 2592000001]) {
      assert.throws(() => e.track('a', 1, null, null, { ttlMs }), (err) => err instanceof pe.InvalidInputError && /ttl/.test(err.message));
    }
    for (const options of [{ ttlMs: 1.5 }, { ttlMs: -1 }, { ttlMs: '30' }, { ttlMs: 30n }, { ttl: 30 }, 30, [30]]) {
      assert.throws(() => e.track('a', 1, null, null, options), TypeError);
    }
    assert.equal(e.stats().presences, 0);
    assert.deepEqual(e.pollDiff(), []);
    assert.throws(() => e.touch(-1), RangeError);
    assert.throws(() => e.touch('1'), TypeError);
    e.close();
    assert.throws(() => e.touch(1), pe.EngineClosedError);
  } finally {
    e.close();
  }
});

test('over the own bus, an expiry on one node is a leave on the other', async () => {
  const a = new Engine({ cluster: { node: 'a', secret: SECRET, tickMs: 20 } });
  const b = new Engine({ cluster: { node: 'b', secret: SECRET, tickMs: 20 } });
  const exchange = () => {
    for (const [src, dst] of [[a, b], [b, a]]) for (const m of src.clusterTick()) dst.clusterIngest(m);
  };
  try {
    a.track('video:1', 1, 'erin', null, { ttlMs: 100 });
    b.track('video:1', 2, 'frank');
    exchange();
    exchange();
    assert.equal(b.counts('video:1').users, 2);
    a.pollDiff();
    b.pollDiff();
    assert.equal(b.touch(1), 0, "b holds no deadline of a's presences");
    assert.ok(await pendingWithin(a, 10000));
    exchange();
    assert.deepEqual(b.counts('video:1'), { viewers: 0, users: 1, connections: 1 });
    const [diff] = b.pollDiff();
    assert.deepEqual(diff.payload.leaves.users, { count: 1 });
    assert.deepEqual([a.stats().expired, b.stats().expired], [1, 0], 'each node counts its own expiries');
  } finally {
    a.close();
    b.close();
  }
});
