'use strict';
// Strict input, the same rule as in C and Python: a meta holds only finite numbers and
// well-formed strings, whether it comes as JSON text or as an object; a refused call
// changes nothing; a counts engine takes any maxKeyBytes, a phoenix one needs its
// viewersKey to fit.

const test = require('node:test');
const assert = require('node:assert/strict');
const pe = require('..');

const { Engine, Status } = pe;

function throwsStatus(fn, Cls, status, pattern) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof Cls, `expected ${Cls.name}, got ${err && err.constructor.name}: ${err && err.message}`);
    assert.equal(err.status, status);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

for (const format of ['counts', 'phoenix']) {
  test(`${format}: a meta number no double holds is refused, as text or as an object`, () => {
    const e = new Engine({ format });
    for (const text of ['{"f":1e400}', '{"f":-1e400}', '{"a":[{"f":1E309}]}']) {
      throwsStatus(() => e.track('t', 1, null, text), pe.InvalidMetaError, Status.INVALID_META);
    }
    for (const meta of [{ f: Infinity }, { a: [-Infinity] }, { n: NaN }]) {
      throwsStatus(() => e.track('t', 1, null, meta), pe.InvalidMetaError, Status.INVALID_META, /finite/);
    }
    e.track('t', 1, null, '{"f":1e308,"g":1e-400}');
    throwsStatus(() => e.update('t', 1, '{"f":1e400}'), pe.InvalidMetaError, Status.INVALID_META);
    throwsStatus(() => e.update('t', 1, { f: Infinity }), pe.InvalidMetaError, Status.INVALID_META);
    e.close();
  });

  test(`${format}: a lone surrogate is refused in a meta as in a key`, () => {
    const e = new Engine({ format });
    // JSON text with an escaped lone surrogate: the text is ASCII, its content is not Unicode.
    for (const text of ['{"s":"\\ud800"}', '{"\\udfff":1}', '{"a":["x\\ud83d"]}']) {
      throwsStatus(() => e.track('t', 1, null, text), pe.InvalidMetaError, Status.INVALID_META);
    }
    // A JS string with a lone surrogate, as a key, a text meta, or inside an object meta.
    throwsStatus(() => e.track('t', 1, 'a\ud800'), pe.InvalidInputError, Status.INVALID_UTF8, /surrogate/);
    throwsStatus(() => e.track('t', 1, null, '{"s":"\ud800"}'), pe.InvalidInputError, Status.INVALID_UTF8, /surrogate/);
    throwsStatus(() => e.track('t', 1, null, { s: 'x\udc00' }), pe.InvalidInputError, Status.INVALID_UTF8, /surrogate/);
    throwsStatus(() => e.track('t', 1, null, { ['\ud800']: 1 }), pe.InvalidInputError, Status.INVALID_UTF8, /surrogate/);
    // A pair is a character, escaped or not.
    e.track('t', 1, null, '{"s":"\\ud83d\\ude00"}');
    e.track('t', 2, null, { s: '\ud83d\ude00' });
    assert.equal(e.counts('t').connections, 2);
    e.close();
  });

  test(`${format}: a refused track changes nothing, memory included`, () => {
    const e = new Engine({ format, shards: 1, maxPresences: 3 });
    for (let conn = 1; conn <= 3; conn++) e.track('t', conn, 'a', '{"n":1}');
    e.pollDiff();
    const before = [e.stats(), e.listJson('t'), e.counts('t')];
    throwsStatus(() => e.track('t', 3, 'b'), pe.AlreadyTrackedError, Status.ALREADY_TRACKED);
    throwsStatus(() => e.track('t', 4, 'b'), pe.LimitReachedError, Status.LIMIT_REACHED);
    throwsStatus(() => e.track('t', 5, 'b', { f: Infinity }), pe.InvalidMetaError, Status.INVALID_META);
    throwsStatus(() => e.track('t', 5, 'b', '{"s":"\\ud800"}'), pe.InvalidMetaError, Status.INVALID_META);
    assert.deepEqual([e.stats(), e.listJson('t'), e.counts('t')], before);
    assert.deepEqual(e.pollDiff(), []);
    e.close();
  });
}

test('viewersKey longer than maxKeyBytes: fine in counts format, refused in phoenix format', () => {
  const counts = new Engine({ maxKeyBytes: 3 });
  counts.track('t', 1, 'abc');
  assert.equal(counts.counts('t').users, 1);
  counts.close();
  throwsStatus(() => new Engine({ format: 'phoenix', maxKeyBytes: 3 }), pe.ConfigError, Status.INVALID_CONFIG, /viewers_key is 7 bytes, over max_key_bytes \(3\)/);
  const phx = new Engine({ format: 'phoenix', viewersKey: 'v', maxKeyBytes: 3 });
  phx.close();
});
