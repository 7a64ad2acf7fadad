'use strict';

// Every method, every error class, bad inputs and use after close.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const v8 = require('node:v8');
const vm = require('node:vm');
const pe = require('..');
const errors = require('../lib/errors');

const { Engine, Status } = pe;

const COUNTS_EMPTY = { viewers: { count: 0 }, users: { count: 0 } };

/** Asserts that fn throws `Cls` with the given status and the matching code. */
function throwsStatus(fn, Cls, status, messagePattern) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof Cls, `expected ${Cls.name}, got ${err && err.constructor.name}: ${err && err.message}`);
    assert.ok(err instanceof pe.PresenceError);
    assert.ok(err instanceof Error);
    assert.equal(err.name, err.constructor.name);
    assert.equal(err.status, status);
    assert.equal(err.code, pe.statusName(status));
    if (messagePattern) assert.match(err.message, messagePattern);
    return true;
  });
}

/** Asserts that a rejected call left no trace: nothing pending, nothing to poll. */
function assertUntouched(engine) {
  assert.equal(engine.stats().topicsPending, 0);
  assert.deepEqual(engine.pollDiff(), []);
}

test('exports the documented names', () => {
  for (const name of [
    'Engine',
    'version',
    'statusName',
    'libraryPath',
    'Status',
    'PresenceError',
    'InvalidInputError',
    'InvalidMetaError',
    'TooLongError',
    'ConfigError',
    'AlreadyTrackedError',
    'NotTrackedError',
    'LimitReachedError',
    'ResourceError',
    'PanicError',
    'EngineClosedError',
    'NoClusterError',
    'RejectedError',
  ]) {
    assert.ok(pe[name] !== undefined, name);
  }
});

test('the ES module entry point exports the same objects', async () => {
  const esm = await import('../index.mjs');
  for (const [name, value] of Object.entries(pe)) assert.equal(esm[name], value, name);
  assert.equal(esm.default, pe);
});

test('version() is the library version and matches the crate', () => {
  const cargo = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'Cargo.toml'), 'utf8');
  const crate = /^version\s*=\s*"([^"]+)"/m.exec(cargo)[1];
  assert.equal(pe.version(), crate);
  assert.equal(require('../package.json').version.split('.').slice(0, 2).join('.'), crate.split('.').slice(0, 2).join('.'));
  assert.ok(fs.existsSync(pe.libraryPath()));
});

test('statusName and the Status table agree with presence_status_name', () => {
  for (const [name, value] of Object.entries(Status)) {
    assert.equal(pe.statusName(value), `PRESENCE_STATUS_${name}`);
    assert.equal(errors.statusCode(value), `PRESENCE_STATUS_${name}`);
  }
  // No status of the library is missing from the table (0..255 covers the header's).
  for (let v = 0; v < 256; v++) assert.equal(errors.statusCode(v), pe.statusName(v), `status ${v}`);
  assert.equal(pe.statusName(12345), 'PRESENCE_STATUS_UNKNOWN');
  assert.equal(errors.statusCode(12345), 'PRESENCE_STATUS_UNKNOWN');
  assert.throws(() => pe.statusName(-1), RangeError);
  assert.throws(() => pe.statusName(1.5), RangeError);
  assert.throws(() => pe.statusName('8'), RangeError);
  assert.throws(() => pe.statusName(2 ** 32), RangeError);
});

test('each status maps to its error class', () => {
  const expected = {
    [Status.NULL_ARGUMENT]: pe.InvalidInputError,
    [Status.INVALID_UTF8]: pe.InvalidInputError,
    [Status.INVALID_META]: pe.InvalidMetaError,
    [Status.INVALID_CONFIG]: pe.ConfigError,
    [Status.INVALID_ARGUMENT]: pe.InvalidInputError,
    [Status.TOO_LONG]: pe.TooLongError,
    [Status.ALREADY_TRACKED]: pe.AlreadyTrackedError,
    [Status.NOT_TRACKED]: pe.NotTrackedError,
    [Status.LIMIT_REACHED]: pe.LimitReachedError,
    [Status.IO]: pe.ResourceError,
    [Status.PANIC]: pe.PanicError,
    [Status.NO_CLUSTER]: pe.NoClusterError,
    [Status.REJECTED]: pe.RejectedError,
  };
  for (const [status, Cls] of Object.entries(expected)) {
    const err = errors.errorFor(Number(status), 'm');
    assert.equal(err.constructor, Cls, `status ${status}`);
    assert.equal(err.status, Number(status));
    assert.equal(err.code, pe.statusName(Number(status)));
    assert.equal(err.message, 'm');
  }
  const unknown = errors.errorFor(77, 'x');
  assert.equal(unknown.constructor, pe.PresenceError);
  assert.equal(unknown.code, 'PRESENCE_STATUS_UNKNOWN');
  assert.ok(new pe.TooLongError('x', 6) instanceof pe.InvalidInputError);
  assert.ok(new pe.InvalidMetaError('x', 3) instanceof pe.InvalidInputError);
});

test('constructor: defaults and every option', () => {
  const e = new Engine();
  assert.equal(e.format, 'counts');
  assert.deepEqual(e.list('t'), COUNTS_EMPTY);
  e.close();
  assert.equal(new Engine(null).format, 'counts');
  assert.equal(new Engine({}).format, 'counts');

  const small = new Engine({ maxTopicBytes: 5, maxKeyBytes: 7, maxMetaBytes: 10, maxTopics: 2, maxPresences: 3, shards: 2 });
  small.track('12345', 1, 'abcdefg', '{"a":1}');
  throwsStatus(() => small.track('123456', 1), pe.TooLongError, Status.TOO_LONG, /topic is 6 bytes, the limit is 5/);
  throwsStatus(() => small.track('t', 1, 'abcdefgh'), pe.TooLongError, Status.TOO_LONG, /key is 8 bytes, the limit is 7/);
  throwsStatus(() => small.track('t', 1, 'a', '{"abc":123}'), pe.TooLongError, Status.TOO_LONG, /meta is 11 bytes, the limit is 10/);
  small.track('t2', 2);
  throwsStatus(() => small.track('t3', 3), pe.LimitReachedError, Status.LIMIT_REACHED, /2 topics/);
  small.track('t2', 3);
  throwsStatus(() => small.track('t2', 4), pe.LimitReachedError, Status.LIMIT_REACHED, /3 presences/);
  small.close();

  const phx = new Engine({ format: 'phoenix', viewersKey: 'anon' });
  assert.equal(phx.format, 'phoenix');
  phx.track('t', 1);
  phx.pollDiff();
  assert.deepEqual(Object.keys(phx.list('t')), ['anon']);
  throwsStatus(() => phx.track('t', 2, 'anon'), pe.InvalidInputError, Status.INVALID_ARGUMENT, /group name/);
  phx.close();
});

test('constructor: bad options', () => {
  throwsStatus(() => new Engine({ maxTopic: 3 }), pe.ConfigError, Status.INVALID_CONFIG, /unknown option "maxTopic"/);
  throwsStatus(() => new Engine({ max_topics: 3 }), pe.ConfigError, Status.INVALID_CONFIG, /unknown option/);
  throwsStatus(() => new Engine({ format: 'xml' }), pe.ConfigError, Status.INVALID_CONFIG, /format: unknown variant `xml`, expected `counts` or `phoenix`/);
  throwsStatus(() => new Engine({ shards: 0 }), pe.ConfigError, Status.INVALID_CONFIG, /shards/);
  throwsStatus(() => new Engine({ shards: 5000 }), pe.ConfigError, Status.INVALID_CONFIG, /shards/);
  throwsStatus(() => new Engine({ maxTopics: -1 }), pe.ConfigError, Status.INVALID_CONFIG, /max_topics/);
  throwsStatus(() => new Engine({ maxTopics: 1.5 }), pe.ConfigError, Status.INVALID_CONFIG, /max_topics/);
  throwsStatus(() => new Engine({ maxPresences: NaN }), pe.ConfigError, Status.INVALID_CONFIG, /max_presences/);
  throwsStatus(() => new Engine({ viewersKey: '' }), pe.ConfigError, Status.INVALID_CONFIG, /viewers_key/);
  assert.throws(() => new Engine({ format: 42 }), TypeError);
  assert.throws(() => new Engine({ viewersKey: 1 }), TypeError);
  assert.throws(() => new Engine({ shards: '4' }), TypeError);
  assert.throws(() => new Engine({ maxTopics: 10n }), TypeError);
  assert.throws(() => new Engine('{}'), TypeError);
  assert.throws(() => new Engine([]), TypeError);
  assert.throws(() => new Engine(5), TypeError);
  // An undefined option keeps its default.
  new Engine({ format: undefined, shards: undefined }).close();
});

test('track, counts, untrack, untrackConn', () => {
  const e = new Engine();
  e.track('room', 1, 'alice');
  e.track('room', 2, 'alice', { tab: 2 });
  e.track('room', 3n, null);
  e.track('room', 4, undefined, '{"x":[1,2]}');
  e.track('other', 1, 'alice');
  e.track('room', 2n ** 64n - 1n, 'bob');
  e.track('room', Number.MAX_SAFE_INTEGER, 'carol');
  assert.deepEqual(e.counts('room'), { viewers: 2, users: 3, connections: 6 });
  assert.deepEqual(e.counts('nowhere'), { viewers: 0, users: 0, connections: 0 });
  throwsStatus(() => e.track('room', 1, 'alice'), pe.AlreadyTrackedError, Status.ALREADY_TRACKED, /connection 1 is already tracked in topic "room"/);
  throwsStatus(() => e.track('room', 1n, null), pe.AlreadyTrackedError, Status.ALREADY_TRACKED);
  e.untrack('room', 4);
  throwsStatus(() => e.untrack('room', 4), pe.NotTrackedError, Status.NOT_TRACKED, /connection 4 is not tracked in topic "room"/);
  throwsStatus(() => e.untrack('nowhere', 1), pe.NotTrackedError, Status.NOT_TRACKED);
  assert.equal(e.untrackConn(1), 2);
  assert.equal(e.untrackConn(1n), 0);
  assert.equal(e.untrackConn(12345), 0);
  assert.equal(e.untrackConn(2n ** 64n - 1n), 1);
  assert.deepEqual(e.counts('room'), { viewers: 1, users: 2, connections: 3 });
  assert.deepEqual(e.counts('other'), { viewers: 0, users: 0, connections: 0 });
  e.close();
});

test('update: phoenix shows a leave and a join with phx_ref_prev; counts format reports nothing', () => {
  const p = new Engine({ format: 'phoenix' });
  p.track('t', 1, 'alice', { status: 'away' });
  const [first] = p.pollDiff();
  const ref = first.payload.joins.alice.metas[0].phx_ref;
  p.update('t', 1, { status: 'online' });
  const [second] = p.pollDiff();
  assert.equal(second.seq, 2);
  assert.deepEqual(second.payload.leaves, { alice: { metas: [{ phx_ref: ref, status: 'away' }] } });
  const joined = second.payload.joins.alice.metas[0];
  assert.equal(joined.phx_ref_prev, ref);
  assert.equal(joined.status, 'online');
  assert.notEqual(joined.phx_ref, ref);
  p.update('t', 1);
  assert.deepEqual(Object.keys(p.pollDiff()[0].payload.joins.alice.metas[0]).sort(), ['phx_ref', 'phx_ref_prev']);
  throwsStatus(() => p.update('t', 2, {}), pe.NotTrackedError, Status.NOT_TRACKED);
  throwsStatus(() => p.update('t', 1, '[]'), pe.InvalidMetaError, Status.INVALID_META);
  assertUntouched(p);
  p.close();

  const c = new Engine();
  c.track('t', 1, 'alice');
  c.pollDiff();
  c.update('t', 1, { any: 'thing' });
  assert.deepEqual(c.pollDiff(), []);
  throwsStatus(() => c.update('t', 9), pe.NotTrackedError, Status.NOT_TRACKED);
  throwsStatus(() => c.update('t', 1, '{"phx_ref":1}'), pe.InvalidMetaError, Status.INVALID_META, /reserved/);
  c.close();
});

test('list, listJson, state and pollDiff in counts format', () => {
  const e = new Engine();
  assert.equal(e.pollDiffJson(), '[]');
  assert.deepEqual(e.pollDiff(), []);
  assert.deepEqual(e.state('t'), { json: JSON.stringify(COUNTS_EMPTY), seq: 0 });
  e.track('t', 1, 'alice');
  e.track('t', 2, 'alice');
  e.track('t', 3);
  // The state is the one of the last poll until the next poll.
  assert.deepEqual(e.list('t'), COUNTS_EMPTY);
  const json = e.pollDiffJson();
  assert.deepEqual(JSON.parse(json), [
    {
      topic: 't',
      seq: 1,
      counts: { viewers: 1, users: 1, connections: 3 },
      occupancy: 'occupied',
      payload: {
        joins: { viewers: { count: 1 }, users: { count: 1 } },
        leaves: { viewers: { count: 0 }, users: { count: 0 } },
      },
    },
  ]);
  assert.equal(e.listJson('t'), '{"viewers":{"count":1},"users":{"count":1}}');
  assert.deepEqual(e.state('t'), { json: '{"viewers":{"count":1},"users":{"count":1}}', seq: 1 });
  // A join and a leave in one window cancel.
  e.track('t', 4);
  e.untrack('t', 4);
  assert.deepEqual(e.pollDiff(), []);
  e.untrack('t', 3);
  const [d] = e.pollDiff();
  assert.equal(d.seq, 2);
  assert.deepEqual(d.payload.leaves, { viewers: { count: 1 }, users: { count: 0 } });
  e.close();
});

test('list and pollDiff in phoenix format', () => {
  const e = new Engine({ format: 'phoenix' });
  assert.deepEqual(e.list('t'), {});
  e.track('t', 1, 'alice', { device: 'phone' });
  e.track('t', 2);
  const [d] = e.pollDiff();
  assert.equal(d.topic, 't');
  assert.deepEqual(Object.keys(d.payload.joins).sort(), ['alice', 'viewers']);
  assert.deepEqual(d.payload.leaves, {});
  const state = e.list('t');
  assert.deepEqual(state, d.payload.joins);
  assert.equal(state.alice.metas[0].device, 'phone');
  assert.equal(e.listJson('t'), JSON.stringify(state));
  e.close();
});

test('stats', () => {
  const e = new Engine();
  assert.deepEqual(Object.keys(e.stats()).sort(), ['bytes', 'expired', 'polls', 'presences', 'topics', 'topicsPending']);
  e.track('a', 1, 'x');
  e.track('b', 1, 'x');
  e.track('b', 2);
  const s = e.stats();
  assert.equal(s.topics, 2);
  assert.equal(s.presences, 3);
  assert.equal(s.topicsPending, 2);
  assert.ok(Number.isSafeInteger(s.bytes) && s.bytes > 0);
  e.pollDiff();
  assert.equal(e.stats().topicsPending, 0);
  e.untrackConn(1);
  e.untrackConn(2);
  e.pollDiff();
  assert.deepEqual({ ...e.stats(), bytes: 0 }, { topics: 0, presences: 0, bytes: 0, topicsPending: 0, polls: 2, expired: 0 });
  e.close();
});

test('the wake-up fd and hasPending', () => {
  const e = new Engine();
  const fd = e.fd;
  assert.ok(Number.isInteger(fd) && fd >= 0);
  assert.equal(e.fileno(), fd);
  assert.ok(fs.fstatSync(fd), 'a live descriptor');
  assert.equal(e.hasPending(), false);
  e.track('t', 1);
  assert.equal(e.hasPending(), true);
  assert.equal(e.hasPending(), true, 'checking does not consume it');
  e.pollDiff();
  assert.equal(e.hasPending(), false);
  const other = new Engine();
  assert.notEqual(other.fd, fd);
  other.close();
  e.close();
});

test('bad arguments: wrong JS types are TypeError/RangeError and never reach C', () => {
  const e = new Engine({ format: 'phoenix' });
  for (const topic of [1, null, undefined, {}, ['t'], Symbol('t'), 1n, Buffer.from('t')]) {
    assert.throws(() => e.track(topic, 1), TypeError);
    assert.throws(() => e.untrack(topic, 1), TypeError);
    assert.throws(() => e.update(topic, 1), TypeError);
    assert.throws(() => e.counts(topic), TypeError);
    assert.throws(() => e.list(topic), TypeError);
    assert.throws(() => e.listJson(topic), TypeError);
    assert.throws(() => e.state(topic), TypeError);
  }
  for (const conn of ['1', null, undefined, {}, true, [1]]) {
    assert.throws(() => e.track('t', conn), TypeError);
    assert.throws(() => e.untrack('t', conn), TypeError);
    assert.throws(() => e.untrackConn(conn), TypeError);
    assert.throws(() => e.update('t', conn), TypeError);
  }
  for (const conn of [-1, 1.5, NaN, Infinity, 2 ** 53, -1n, 2n ** 64n]) {
    assert.throws(() => e.track('t', conn), RangeError);
    assert.throws(() => e.untrack('t', conn), RangeError);
    assert.throws(() => e.untrackConn(conn), RangeError);
    assert.throws(() => e.update('t', conn), RangeError);
  }
  for (const key of [1, {}, ['a'], true, 1n]) assert.throws(() => e.track('t', 1, key), TypeError);
  for (const meta of [1, true, ['a'], [], () => ({}), 1n, Buffer.from('{}'), new Uint8Array(2)]) {
    assert.throws(() => e.track('t', 1, 'k', meta), TypeError);
    e.track('t', 9);
    assert.throws(() => e.update('t', 9, meta), TypeError);
    e.untrack('t', 9);
    assert.deepEqual(e.pollDiff(), []);
  }
  const circular = {};
  circular.self = circular;
  assert.throws(() => e.track('t', 1, 'k', circular), TypeError);
  assert.throws(() => e.track('t', 1, 'k', { n: 1n }), TypeError);
  assertUntouched(e);
  e.close();
});

test('bad values: the engine refuses them with its status and message, and nothing changes', () => {
  const e = new Engine({ format: 'phoenix' });
  throwsStatus(() => e.track('', 1), pe.InvalidInputError, Status.INVALID_ARGUMENT, /topic must not be empty/);
  throwsStatus(() => e.track('t', 1, ''), pe.InvalidInputError, Status.INVALID_ARGUMENT, /key must not be empty/);
  throwsStatus(() => e.track('t', 1, 'viewers'), pe.InvalidInputError, Status.INVALID_ARGUMENT, /group name/);
  throwsStatus(() => e.counts(''), pe.InvalidInputError, Status.INVALID_ARGUMENT);
  // Strings C could not receive intact.
  throwsStatus(() => e.track('a\0b', 1), pe.InvalidInputError, Status.INVALID_ARGUMENT, /NUL/);
  throwsStatus(() => e.track('t', 1, 'al\0ice'), pe.InvalidInputError, Status.INVALID_ARGUMENT, /NUL/);
  throwsStatus(() => e.track('t', 1, 'k', '{"a":"\0"}'), pe.InvalidMetaError, Status.INVALID_META, /NUL/);
  throwsStatus(() => e.track('\ud800', 1), pe.InvalidInputError, Status.INVALID_UTF8, /surrogate/);
  throwsStatus(() => e.track('t', 1, 'x\udc00'), pe.InvalidInputError, Status.INVALID_UTF8, /surrogate/);
  throwsStatus(() => e.counts('\ud83d'), pe.InvalidInputError, Status.INVALID_UTF8);
  // Metas that are not JSON objects.
  for (const meta of ['[1]', '1', '"x"', 'null', '{', '{}{}', "{'a':1}", '', '{"phx_ref":"x"}', '{"phx_ref_prev":1}']) {
    throwsStatus(() => e.track('t', 1, 'k', meta), pe.InvalidMetaError, Status.INVALID_META);
  }
  throwsStatus(() => e.track('t', 1, 'k', { phx_ref: 'mine' }), pe.InvalidMetaError, Status.INVALID_META, /reserved/);
  // An object whose JSON is not an object (toJSON) is refused by the engine.
  throwsStatus(() => e.track('t', 1, 'k', new Date(0)), pe.InvalidMetaError, Status.INVALID_META);
  // Huge strings.
  const huge = 'x'.repeat(8 * 1024 * 1024);
  throwsStatus(() => e.track(huge, 1), pe.TooLongError, Status.TOO_LONG, /topic is 8388608 bytes, the limit is 256/);
  throwsStatus(() => e.track('t', 1, huge), pe.TooLongError, Status.TOO_LONG, /key is 8388608 bytes/);
  throwsStatus(() => e.track('t', 1, 'k', `{"a":"${huge}"}`), pe.TooLongError, Status.TOO_LONG, /meta is/);
  throwsStatus(() => e.track('t', 1, 'k', { a: huge }), pe.TooLongError, Status.TOO_LONG, /meta is/);
  throwsStatus(() => e.untrack(huge, 1), pe.TooLongError, Status.TOO_LONG);
  throwsStatus(() => e.counts(huge), pe.TooLongError, Status.TOO_LONG);
  throwsStatus(() => e.state(huge), pe.TooLongError, Status.TOO_LONG);
  // Multi-byte characters count in UTF-8 bytes: 86 x 3 bytes = 258 > 256.
  throwsStatus(() => e.track('€'.repeat(86), 1), pe.TooLongError, Status.TOO_LONG, /258 bytes/);
  assertUntouched(e);
  e.track('€'.repeat(85), 1, 'é🙂');
  assert.deepEqual(e.counts('€'.repeat(85)), { viewers: 0, users: 1, connections: 1 });
  assert.deepEqual(Object.keys(e.pollDiff()[0].payload.joins), ['é🙂']);
  e.close();
});

test('an error message longer than the scratch buffer arrives whole', () => {
  const e = new Engine({ maxTopicBytes: 5000 });
  const topic = 'long-topic-'.repeat(300);
  throwsStatus(() => e.untrack(topic, 7), pe.NotTrackedError, Status.NOT_TRACKED);
  try {
    e.untrack(topic, 7);
  } catch (err) {
    assert.equal(err.message, `connection 7 is not tracked in topic ${JSON.stringify(topic)}`);
    assert.ok(err.message.length > 3000);
  }
  e.close();
});

test('close: idempotent, and every call afterwards throws EngineClosedError', async () => {
  const e = new Engine();
  e.track('t', 1);
  assert.equal(e.closed, false);
  e.close();
  e.close();
  assert.equal(e.closed, true);
  const calls = {
    track: () => e.track('t', 2),
    untrack: () => e.untrack('t', 1),
    untrackConn: () => e.untrackConn(1),
    update: () => e.update('t', 1, {}),
    counts: () => e.counts('t'),
    countsMany: () => e.countsMany(['t']),
    list: () => e.list('t'),
    listJson: () => e.listJson('t'),
    state: () => e.state('t'),
    pollDiff: () => e.pollDiff(),
    pollDiffJson: () => e.pollDiffJson(),
    stats: () => e.stats(),
    metrics: () => e.metrics(),
    fd: () => e.fd,
    fileno: () => e.fileno(),
    hasPending: () => e.hasPending(),
    pendingTopics: () => e.pendingTopics(),
    onDiff: () => e.onDiff(() => {}),
    diffs: () => e.diffs(),
  };
  for (const [name, call] of Object.entries(calls)) {
    assert.throws(call, (err) => err instanceof pe.EngineClosedError && err instanceof pe.PresenceError && err.status === Status.NULL_ARGUMENT && /closed/.test(err.message), name);
  }
  // Checked before the arguments: a closed engine says so whatever it is given.
  assert.throws(() => e.track(1, 'x'), pe.EngineClosedError);
  const d = new Engine();
  d[Symbol.dispose]();
  assert.equal(d.closed, true);
});

test('onDiff delivers non-empty batches on a timer and stops', async () => {
  const e = new Engine();
  assert.throws(() => e.onDiff('nope'), TypeError);
  assert.throws(() => e.onDiff(() => {}, { intervalMs: 0 }), RangeError);
  assert.throws(() => e.onDiff(() => {}, { intervalMs: '5' }), TypeError);
  const batches = [];
  let wake;
  const stop = e.onDiff((batch) => {
    batches.push(batch);
    if (wake) wake();
  }, { intervalMs: 5 });
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(batches.length, 0, 'nothing pending: no callback');
  const got = new Promise((r) => (wake = r));
  e.track('a', 1);
  e.track('b', 2, 'bob');
  await got;
  assert.equal(batches.length, 1);
  assert.deepEqual(batches[0].map((b) => b.topic).sort(), ['a', 'b']);
  stop();
  e.track('c', 3);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(batches.length, 1, 'stopped');
  assert.equal(e.stats().topicsPending, 1);
  // close() stops subscriptions too.
  const more = [];
  e.onDiff((b) => more.push(b), { intervalMs: 5, unref: true });
  e.close();
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(more.length, 0);
});

test('diffs() is an async iterator that ends on close or abort', async () => {
  const e = new Engine({ format: 'phoenix' });
  assert.throws(() => e.diffs({ intervalMs: -1 }), RangeError);
  assert.throws(() => e.diffs({ signal: {} }), TypeError);
  e.track('t', 1, 'alice');
  const seen = [];
  const loop = (async () => {
    for await (const batch of e.diffs({ intervalMs: 5 })) {
      seen.push(batch);
      if (seen.length === 1) e.track('t', 2, 'bob');
      if (seen.length === 2) setTimeout(() => e.close(), 20);
    }
  })();
  await loop;
  assert.equal(seen.length, 2);
  assert.deepEqual(Object.keys(seen[0][0].payload.joins), ['alice']);
  assert.deepEqual(Object.keys(seen[1][0].payload.joins), ['bob']);
  assert.equal(seen[1][0].seq, 2);

  const f = new Engine();
  const ac = new AbortController();
  const started = Date.now();
  setTimeout(() => ac.abort(), 20);
  for await (const batch of f.diffs({ intervalMs: 10_000, signal: ac.signal })) assert.fail(`unexpected ${batch}`);
  assert.ok(Date.now() - started < 5000, 'the abort cut the wait short');
  // Leaving the loop early is fine and leaves the engine usable.
  f.track('x', 1);
  for await (const batch of f.diffs({ intervalMs: 5 })) {
    assert.equal(batch[0].topic, 'x');
    break;
  }
  assert.deepEqual(f.counts('x'), { viewers: 1, users: 0, connections: 1 });
  f.close();
});

test('engines dropped without close() are freed by the FinalizationRegistry backstop', async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  const openFds = () => fs.readdirSync('/proc/self/fd').length;
  const settle = async () => {
    for (let i = 0; i < 10; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
  };
  await settle();
  const before = openFds();
  (() => {
    for (let i = 0; i < 100; i++) new Engine().track('t', i);
  })();
  assert.ok(openFds() >= before + 100, 'each engine holds a wake-up descriptor');
  let after = openFds();
  for (let i = 0; i < 50 && after > before; i++) {
    await settle();
    after = openFds();
  }
  assert.equal(after, before, 'every dropped engine was freed');
});
