'use strict';

// presence-engine for Node: the Engine class over the C ABI of libpresence (see
// include/presence.h in the repository, which is the manual for every call made here).
// The package's front: what it exports, and the calls about the library itself. The
// engine is lib/engine.js; lib/native.js loads the library.

const { native } = require('./lib/native');
const errors = require('./lib/errors');
const { Engine } = require('./lib/engine');
const { Batch, Diff } = require('./lib/batch');
const { Status } = errors;

/** The version of the loaded libpresence, e.g. "0.1.0". */
function version() {
  return native().version();
}

/** The name of a status value, from the C library: e.g. "PRESENCE_STATUS_NOT_TRACKED". */
function statusName(status) {
  if (!Number.isInteger(status) || status < 0 || status > 0xffffffff) {
    throw new RangeError(`status must be an unsigned 32-bit integer, got ${status}`);
  }
  return native().status_name(status);
}

/** The file the native library was loaded from. */
function libraryPath() {
  return native().path;
}

module.exports = {
  Engine,
  Batch,
  Diff,
  version,
  statusName,
  libraryPath,
  Status,
  ...Object.fromEntries(Object.entries(errors).filter(([name]) => name.endsWith('Error'))),
};
