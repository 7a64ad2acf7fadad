'use strict';

// The calls of presences with a time to live, and the check of track()'s ttlMs option.

const { describe } = require('./checks');
const { declaredOnFirstUse } = require('./declare');

// Presences with a time to live: presence_track_ttl and presence_touch.

const ttlCalls = declaredOnFirstUse({
  track_ttl:
    'int presence_track_ttl(const presence_engine *engine, const char *topic, uint64_t conn, const char *key, const char *meta, uint64_t ttl_ms)',
  touch: 'int presence_touch(const presence_engine *engine, uint64_t conn, void *renewed)',
});

/** The ttlMs of track()'s options, or null; the library checks its range. */
function checkTtl(options) {
  if (options === undefined || options === null) return null;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`options must be an object like { ttlMs: 30000 }, got ${describe(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (name !== 'ttlMs') throw new TypeError(`unknown track option ${JSON.stringify(name)} (the only one is ttlMs)`);
  }
  const ttl = options.ttlMs;
  if (ttl === undefined || ttl === null) return null;
  if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 0) {
    throw new TypeError(`ttlMs must be a whole number of milliseconds, got ${describe(ttl)}`);
  }
  return ttl;
}

module.exports = { ttlCalls, checkTtl };
