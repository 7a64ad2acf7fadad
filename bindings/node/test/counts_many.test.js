'use strict';

// engine.countsMany(): the counts of many topics in one call, each what counts() gives,
// on one node and on the nodes of a cluster over an in-test bus; a bad topic throws for
// the whole call with its position.

const test = require('node:test');
const assert = require('node:assert/strict');
const pe = require('..');
const { rng } = require('./helpers/model');

const { Engine, Status } = pe;
const SECRET = 'a shared secret of the test cluster';

for (const format of ['counts', 'phoenix']) {
  test(`${format}: each topic gets what counts() gives, unknown ones zeros`, () => {
    const e = new Engine({ format });
    const r = rng(7).int;
    for (let conn = 0; conn < 1500; conn++) {
      e.track(`t${r(30)}`, conn, r(10) < 7 ? `u${r(200)}` : null);
      if (r(10) < 2) e.untrackConn(r(conn + 1));
      if (r(50) === 0) e.pollReady();
    }
    const asked = Array.from({ length: 300 }, () => `t${r(45)}`).concat(['nowhere', 't0', 'é:ü']);
    const many = e.countsMany(asked);
    assert.equal(many.length, asked.length);
    assert.deepEqual(many, asked.map((t) => e.counts(t)));
    assert.deepEqual(many[asked.length - 3], { viewers: 0, users: 0, connections: 0 });
    assert.ok(many.some((c) => c.connections > 0));
    e.close();
  });
}

test('any iterable of strings, and none at all', () => {
  const e = new Engine();
  e.track('a', 1, 'alice');
  e.track('a', 2);
  e.track('b', 3, 'bob');
  const want = [
    { viewers: 1, users: 1, connections: 2 },
    { viewers: 0, users: 1, connections: 1 },
    { viewers: 0, users: 0, connections: 0 },
  ];
  assert.deepEqual(e.countsMany(['a', 'b', 'c']), want);
  assert.deepEqual(e.countsMany(new Set(['a', 'b', 'c'])), want);
  assert.deepEqual(e.countsMany((function* () { yield 'a'; yield 'b'; yield 'c'; })()), want);
  assert.deepEqual(e.countsMany([]), []);
  // Live counts, not those of the last poll.
  e.pollDiff();
  e.track('c', 4);
  assert.deepEqual(e.countsMany(['c']), [{ viewers: 1, users: 0, connections: 1 }]);
  e.close();
});

test('a bad topic throws for the whole call with its position', () => {
  const e = new Engine({ maxTopicBytes: 8 });
  e.track('a', 1);
  const throwsAt = (topics, Cls, index, status) =>
    assert.throws(
      () => e.countsMany(topics),
      (err) => {
        assert.ok(err instanceof Cls, `${err.constructor.name}: ${err.message}`);
        assert.equal(err.index, index, err.message);
        if (status !== undefined) {
          assert.equal(err.status, status);
          assert.ok(err.message.startsWith(`topics[${index}]: `), err.message);
        }
        return true;
      }
    );
  throwsAt(['a', 'b', ''], pe.InvalidInputError, 2, Status.INVALID_ARGUMENT);
  throwsAt(['a\0b'], pe.InvalidInputError, 0, Status.INVALID_ARGUMENT);
  throwsAt(['a', 'much-too-long', ''], pe.TooLongError, 1, Status.TOO_LONG);
  throwsAt(['a', '\ud800'], pe.InvalidInputError, 1, Status.INVALID_UTF8);
  throwsAt(['a', 7], TypeError, 1);
  throwsAt(['a', null], TypeError, 1);
  // Whichever side finds it, the first bad topic is the error.
  throwsAt(['a', '', 7], pe.InvalidInputError, 1, Status.INVALID_ARGUMENT);
  throwsAt(['a', 7, ''], TypeError, 1);
  assert.throws(() => e.countsMany('ab'), TypeError);
  assert.throws(() => e.countsMany(7), TypeError);
  assert.throws(() => e.countsMany(null), TypeError);
  assert.throws(() => e.countsMany(), TypeError);
  assert.deepEqual(e.countsMany(['a']), [{ viewers: 1, users: 0, connections: 1 }]);
  e.close();
  assert.throws(() => e.countsMany(['a']), pe.EngineClosedError);
});

test('a cluster node counts the whole cluster', () => {
  const node = (name) => new Engine({ cluster: { node: name, secret: SECRET } });
  const [a, b] = [node('a'), node('b')];
  a.track('video:1', 1, 'alice');
  a.track('video:1', 2);
  b.track('video:1', 1, 'alice');
  b.track('video:1', 2, 'bob');
  b.track('video:2', 3);
  for (let round = 0; round < 3; round++) {
    for (const sender of [a, b]) {
      for (const m of sender.clusterTick()) for (const e of [a, b]) e.clusterIngest(m);
    }
  }
  const asked = ['video:1', 'video:2', 'video:3'];
  const want = [
    { viewers: 1, users: 2, connections: 4 },
    { viewers: 1, users: 0, connections: 1 },
    { viewers: 0, users: 0, connections: 0 },
  ];
  for (const n of [a, b]) {
    assert.deepEqual(n.countsMany(asked), want);
    assert.deepEqual(n.countsMany(asked), asked.map((t) => n.counts(t)));
  }
  a.clusterIngest(b.clusterLeave());
  assert.deepEqual(a.countsMany(asked)[0], { viewers: 1, users: 1, connections: 2 });
  a.close();
  b.close();
});
