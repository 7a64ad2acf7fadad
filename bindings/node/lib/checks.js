'use strict';

// The checks of the JS arguments, and the Engine options translated into the JSON config
// of presence_engine_new.

const { Status, InvalidInputError, InvalidMetaError, ConfigError } = require('./errors');
const { bufferScratch, takeBuffer, fail } = require('./scratch');

// Argument checks: wrong JS types throw TypeError/RangeError before any C call. Strings
// that C cannot receive intact (an embedded NUL would cut them short; a lone surrogate
// has no UTF-8 form) throw InvalidInputError with the status C gives the same problem.

const MAX_U64 = (1n << 64n) - 1n;

function checkConn(conn, name = 'conn') {
  if (typeof conn === 'number') {
    if (!Number.isSafeInteger(conn) || conn < 0) {
      throw new RangeError(`${name} must be a non-negative safe integer or a bigint, got ${conn}`);
    }
    return conn;
  }
  if (typeof conn === 'bigint') {
    if (conn < 0n || conn > MAX_U64) throw new RangeError(`${name} must fit in 64 unsigned bits, got ${conn}`);
    return conn;
  }
  throw new TypeError(`${name} must be a number or a bigint, got ${describe(conn)}`);
}

function checkText(value, name, nulStatus, Cls) {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${describe(value)}`);
  if (value.includes('\0')) {
    throw new Cls(`${name} must not contain NUL characters`, nulStatus);
  }
  if (!value.isWellFormed()) {
    throw new Cls(`${name} is not well-formed UTF-16 (it has a lone surrogate), so it has no UTF-8 form`, Status.INVALID_UTF8);
  }
  return value;
}

const checkTopic = (topic) => checkText(topic, 'topic', Status.INVALID_ARGUMENT, InvalidInputError);

function checkKey(key) {
  if (key === undefined || key === null) return null;
  return checkText(key, 'key', Status.INVALID_ARGUMENT, InvalidInputError);
}

function strictMember(key, value) {
  if (!key.isWellFormed()) {
    throw new InvalidInputError('a meta key is not well-formed UTF-16 (it has a lone surrogate), so it has no UTF-8 form', Status.INVALID_UTF8);
  }
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new InvalidMetaError(`meta value ${JSON.stringify(key)} is ${value}: numbers in a meta must be finite`, Status.INVALID_META);
  }
  if (typeof value === 'string' && !value.isWellFormed()) {
    throw new InvalidInputError('a meta string is not well-formed UTF-16 (it has a lone surrogate), so it has no UTF-8 form', Status.INVALID_UTF8);
  }
  return value;
}

function checkMeta(meta) {
  if (meta === undefined || meta === null) return null;
  if (typeof meta === 'string') return checkText(meta, 'meta', Status.INVALID_META, InvalidMetaError);
  if (typeof meta === 'object' && !Array.isArray(meta) && !ArrayBuffer.isView(meta)) {
    // JSON.stringify would write a non-finite number as null and escape a lone surrogate;
    // both are refused instead, as the core refuses them in JSON text and Python in a dict.
    return JSON.stringify(meta, strictMember);
  }
  throw new TypeError(`meta must be a plain object, a JSON object string, null or undefined, got ${describe(meta)}`);
}

function checkInterval(intervalMs) {
  if (typeof intervalMs !== 'number') throw new TypeError(`intervalMs must be a number, got ${describe(intervalMs)}`);
  if (!(intervalMs >= 1 && intervalMs <= 2147483647)) {
    throw new RangeError(`intervalMs must be between 1 and 2147483647, got ${intervalMs}`);
  }
  return intervalMs;
}

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

// The options: each field of the presence_engine_new JSON config, camelCased, of the JS
// type of its default. Built once from the library's own list (presence_config_defaults),
// so a field the core adds is an option here without a change.
let optionSpec = null;

function specOf(defaults) {
  const spec = {};
  for (const [field, value] of Object.entries(defaults)) {
    const name = field.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
    spec[name] = [field, isPlainObject(value) ? specOf(value) : typeof value];
  }
  return Object.freeze(spec);
}

function options(n) {
  if (optionSpec === null) {
    const status = n.config_defaults(bufferScratch(n));
    if (status !== Status.OK) fail(n, status);
    optionSpec = specOf(JSON.parse(takeBuffer(n)));
  }
  return optionSpec;
}

/**
 * Translates an options object by its spec: known names only, JS types checked here,
 * values checked by the engine. `what` names the object in messages ('option',
 * 'cluster option'). Undefined values keep the engine's defaults.
 */
function translate(options, spec, what) {
  const config = {};
  for (const [name, value] of Object.entries(options)) {
    if (!Object.hasOwn(spec, name)) {
      throw new ConfigError(
        `unknown ${what} ${JSON.stringify(name)}; known ${what}s: ${Object.keys(spec).join(', ')}`,
        Status.INVALID_CONFIG
      );
    }
    if (value === undefined) continue;
    const [field, type] = spec[name];
    if (typeof type === 'object') {
      // A nested object (cluster); null means none, like leaving it out.
      if (value === null) continue;
      if (!isPlainObject(value)) throw new TypeError(`${what} ${name} must be an object, got ${describe(value)}`);
      config[field] = translate(value, type, `${name} option`);
      continue;
    }
    if (typeof value !== type) throw new TypeError(`${what} ${name} must be a ${type}, got ${describe(value)}`);
    config[field] = value;
  }
  return config;
}

function isPlainObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function configJson(n, given) {
  if (given === undefined || given === null) return '{}';
  if (!isPlainObject(given)) {
    throw new TypeError(`options must be an object, got ${describe(given)}`);
  }
  return JSON.stringify(translate(given, options(n), 'option'));
}

module.exports = {
  checkConn,
  checkText,
  checkTopic,
  checkKey,
  checkMeta,
  checkInterval,
  describe,
  configJson,
};
