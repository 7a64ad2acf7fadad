'use strict';

// The memory the C calls write their out-parameters into, and how it is read: the u64
// words of the C structs, presence_buf strings, the messages of cluster calls, and the
// error of a failed call (fail). Every other lib/ file reads out-parameters through these.

const { native, LITTLE_ENDIAN } = require('./native');
const { STRUCT_WORDS } = require('./generated');
const { Status, errorFor } = require('./errors');

// Scratch memory for out-parameters. Calls are synchronous and JS is single-threaded
// (each worker thread loads its own copy of this module), so one set is enough.

// The position of each u64 of a C struct, from the header (lib/generated.js): a field
// added or moved in C moves here with it, and one removed fails at load.
function wordsOf(struct) {
  const at = Object.fromEntries(STRUCT_WORDS[struct].map((name, i) => [name, i]));
  return new Proxy(at, {
    get(target, name) {
      if (!Object.hasOwn(target, name)) throw new Error(`presence-engine: ${struct} has no field ${String(name)}`);
      return target[name];
    },
  });
}
const COUNTS = wordsOf('presence_counts');
const CLUSTER_STATS = wordsOf('presence_cluster_stats');
const READY_DIFF = wordsOf('presence_ready_diff');

const U64_WORDS = Math.max(...Object.values(STRUCT_WORDS).map((w) => w.length));
const u64Scratch = new Uint32Array(U64_WORDS * 2);
const seqScratch = new Uint32Array(2);
const sizeScratch = new Uint32Array(2);
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = LITTLE_ENDIAN ? 1 : 0;

/** The i-th u64 of a Uint32Array, as a Number (exact below 2^53, which counts stay). */
function u64(words, i) {
  return words[2 * i + LO] + words[2 * i + HI] * 4294967296;
}

/** The i-th u64 of a Uint32Array, as a BigInt (for values that use all 64 bits). */
function u64Big(words, i) {
  return (BigInt(words[2 * i + HI]) << 32n) | BigInt(words[2 * i + LO]);
}

// A stats struct just written into u64Scratch as an object of every field, camelCased:
// a figure the C struct gains reaches stats() and clusterStats() with no change here.
function structObject(struct) {
  const out = {};
  STRUCT_WORDS[struct].forEach((field, i) => {
    out[field.replace(/_([a-z])/g, (_, c) => c.toUpperCase())] = u64(u64Scratch, i);
  });
  return out;
}

/** `count` pointer-sized words, for a C struct of pointers and size_t the library writes. */
function pointerWords(n, count) {
  const buffer = new ArrayBuffer(count * n.pointerSize);
  return n.pointerSize === 8 ? new BigUint64Array(buffer) : new Uint32Array(buffer);
}

/** A pointer read from such words, as koffi takes it. */
const asPointer = (w) => (typeof w === 'bigint' ? w : BigInt(w));

// presence_buf {const uint8_t *data; size_t len;}: two pointer-sized words.
let bufWords = null;

function bufferScratch(n) {
  if (bufWords === null) bufWords = pointerWords(n, 2);
  return bufWords.buffer;
}

/** Decodes the presence_buf in the scratch as a string, and always frees it. */
function takeBuffer(n) {
  try {
    return n.koffi.decode.string(asPointer(bufWords[0]), Number(bufWords[1]));
  } finally {
    n.buf_free(bufWords.buffer);
  }
}

// The messages of a cluster call (presence_message_cb), collected while the call runs.
// The callback runs synchronously inside the call, on this thread; the bytes are only
// valid during the callback, so each message is copied out (koffi.decode of a uint8_t
// array allocates a fresh Uint8Array) and wrapped as a Buffer without a second copy.
let collected = null;

function onMessage(_userdata, data, len) {
  const n = Number(len);
  const bytes = n === 0 ? new Uint8Array(0) : native().koffi.decode(data, 'uint8_t', n);
  collected.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** Runs a presence_message_cb call and returns the messages it handed out, in order. */
function collectMessages(n, call, h) {
  const out = [];
  collected = out;
  let status;
  try {
    status = call(h, onMessage, null);
  } finally {
    collected = null;
  }
  if (status !== Status.OK) fail(n, status);
  return out;
}

let errScratch = Buffer.alloc(1024);

function lastErrorMessage(n) {
  let len = n.last_error_message(errScratch, errScratch.length);
  if (len >= errScratch.length) {
    errScratch = Buffer.alloc(len + 1);
    len = n.last_error_message(errScratch, errScratch.length);
  }
  return errScratch.toString('utf8', 0, len);
}

/** Throws the PresenceError subclass of a failed status, with the C library's message. */
function fail(n, status) {
  const message = lastErrorMessage(n);
  throw errorFor(status, message || `presence call failed with status ${status}`, n.status_name(status));
}

module.exports = {
  COUNTS,
  CLUSTER_STATS,
  READY_DIFF,
  u64Scratch,
  seqScratch,
  sizeScratch,
  LO,
  HI,
  u64,
  u64Big,
  structObject,
  pointerWords,
  asPointer,
  bufferScratch,
  takeBuffer,
  collectMessages,
  fail,
};
