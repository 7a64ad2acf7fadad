'use strict';

// The ready fast path (presence_poll_ready_into, presence_state_message) and what it
// returns: the Batch of one poll and the Diff of one changed topic.

const { STRUCT_WORDS } = require('./generated');
const { Status, InvalidInputError } = require('./errors');
const { READY_DIFF, LO, HI, pointerWords, asPointer } = require('./scratch');
const { checkText, describe } = require('./checks');
const { declaredOnFirstUse } = require('./declare');

// The host's fast path: presence_poll_ready_into and presence_state_message. The core
// renders every message as it polls, into a presence_ready_batch of the engine's that
// keeps its memory between polls; one call polls, and the batch's text and records are
// copied into a Batch. Its strings are slices of the text decoded once (by the UTF-16
// spans the library computes) and its bytes views of the text, so nothing is parsed or
// serialised per topic.

const fastPath = declaredOnFirstUse({
  poll_ready_into:
    'int presence_poll_ready_into(const presence_engine *engine, uint32_t envelope, const char *join_ref, presence_ready_batch *batch, void *out)',
  ready_batch_new: 'int presence_ready_batch_new(_Out_ presence_ready_batch **out)',
  ready_batch_free: 'void presence_ready_batch_free(presence_ready_batch *batch)',
  state_message:
    'int presence_state_message(const presence_engine *engine, const char *topic, uint32_t envelope, const char *join_ref, void *out, void *seq)',
});

// presence_envelope values.
const ENVELOPES = Object.freeze({ event: 1, phoenix: 2 });

/** The presence_envelope of an `envelope` option (null: none) and a checked joinRef. */
function envelopeArgs(envelope, joinRef) {
  let kind = 0;
  if (envelope !== undefined && envelope !== null) {
    if (typeof envelope !== 'string') throw new TypeError(`envelope must be 'event', 'phoenix' or null, got ${describe(envelope)}`);
    if (!Object.hasOwn(ENVELOPES, envelope)) {
      throw new RangeError(`envelope must be 'event', 'phoenix' or null, got ${JSON.stringify(envelope)}`);
    }
    kind = ENVELOPES[envelope];
  }
  if (joinRef === undefined || joinRef === null) return [kind, null];
  if (kind !== ENVELOPES.phoenix) throw new RangeError("joinRef is only for envelope 'phoenix'");
  return [kind, checkText(joinRef, 'joinRef', Status.INVALID_ARGUMENT, InvalidInputError)];
}

// presence_ready_view {presence_str text; const presence_ready_diff *diffs; size_t count;}:
// four pointer-sized words.
let readyWords = null;

function readyScratchFor(n) {
  if (readyWords === null) readyWords = pointerWords(n, 4);
  return readyWords.buffer;
}

// presence_ready_diff: u64 words, as twice as many u32; the word positions below are
// resolved once, here, from the header's layout. Offsets and lengths stay far below 2^32:
// their low halves are read alone.
const DIFF_WORDS = 2 * STRUCT_WORDS.presence_ready_diff.length;
const RD = {
  seq: 2 * READY_DIFF.seq,
  viewers: 2 * READY_DIFF['counts.viewers'],
  users: 2 * READY_DIFF['counts.users'],
  connections: 2 * READY_DIFF['counts.connections'],
  payload: 2 * READY_DIFF['payload.offset'] + LO,
  payloadLen: 2 * READY_DIFF['payload.len'] + LO,
  message: 2 * READY_DIFF['message.offset'] + LO,
  messageLen: 2 * READY_DIFF['message.len'] + LO,
  topic16: 2 * READY_DIFF['topic_utf16.offset'] + LO,
  topic16Len: 2 * READY_DIFF['topic_utf16.len'] + LO,
  payload16: 2 * READY_DIFF['payload_utf16.offset'] + LO,
  payload16Len: 2 * READY_DIFF['payload_utf16.len'] + LO,
  message16: 2 * READY_DIFF['message_utf16.offset'] + LO,
  message16Len: 2 * READY_DIFF['message_utf16.len'] + LO,
  occupancy: 2 * READY_DIFF.occupancy + LO,
};

/** A presence_occupancy value as Diff.occupancy has it: unchanged, occupied, vacated. */
const OCCUPANCY = [null, 'occupied', 'vacated'];

/** Copies the presence_ready_view in the scratch into a Batch (the batch it views is reused by the next poll). */
function takeReady(n, withMessages) {
  const count = Number(readyWords[3]);
  if (count === 0) return new Batch('', EMPTY_WORDS, 0, true, withMessages);
  const len = Number(readyWords[1]);
  // The text ends with the last topic's message (or payload): it is ASCII when its length
  // in UTF-16 units equals its length in bytes, and then latin1 decodes it with a plain
  // copy instead of a UTF-8 decoder.
  const words = new Uint32Array(n.koffi.view(asPointer(readyWords[2]), count * DIFF_WORDS * 4).slice(0));
  const last = (count - 1) * DIFF_WORDS;
  const end16 = withMessages
    ? words[last + RD.message16] + words[last + RD.message16Len]
    : words[last + RD.payload16] + words[last + RD.payload16Len];
  const view = Buffer.from(n.koffi.view(asPointer(readyWords[0]), len), 0, len);
  const ascii = end16 === len;
  const text = ascii ? view.latin1Slice(0, len) : view.utf8Slice(0, len);
  return new Batch(text, words, count, ascii, withMessages);
}

const EMPTY_WORDS = new Uint32Array(0);

/**
 * One poll's changes, in poll order (pollBatch()): the text the engine rendered, every
 * changed topic's name and message, with where each is. `topic(i)` and `message(i)` are
 * slices of one string decoded on the first of them; `messageBytes(i)` is a view of the
 * UTF-8 bytes, for writing to sockets as they are; `at(i)` and iteration make Diffs.
 */
class Batch {
  #text;
  #words;
  #ascii;
  #messages;
  #bytes = null;

  constructor(text, words, count, ascii, withMessages) {
    this.#text = text;
    this.#words = words;
    this.#ascii = ascii;
    this.#messages = withMessages;
    /** The number of changed topics. */
    this.length = count;
  }

  /** Where the i-th topic's entry starts in the words; RangeError for a bad index. */
  #entry(i) {
    if (!(Number.isInteger(i) && i >= 0 && i < this.length)) {
      throw new RangeError(`index must be an integer from 0 to ${this.length - 1}, got ${typeof i === 'number' ? i : describe(i)}`);
    }
    return i * DIFF_WORDS;
  }

  /** The name of the i-th changed topic. */
  topic(i) {
    const b = this.#entry(i);
    const w = this.#words;
    const t = w[b + RD.topic16];
    return this.#text.slice(t, t + w[b + RD.topic16Len]);
  }

  /**
   * The i-th topic's whole message in the poll's envelope; for a poll without one, its
   * payload's JSON text (what is sent then).
   */
  message(i) {
    const b = this.#entry(i);
    const w = this.#words;
    const m = w[b + (this.#messages ? RD.message16 : RD.payload16)];
    return this.#text.slice(m, m + w[b + (this.#messages ? RD.message16Len : RD.payload16Len)]);
  }

  /** message(i) as UTF-8 bytes: a view of the batch's bytes, not a copy. */
  messageBytes(i) {
    const b = this.#entry(i);
    const w = this.#words;
    const m = w[b + (this.#messages ? RD.message : RD.payload)];
    // The text as UTF-8 again, encoded on the first call: the spans in bytes index it.
    if (this.#bytes === null) this.#bytes = Buffer.from(this.#text, this.#ascii ? 'latin1' : 'utf8');
    return this.#bytes.subarray(m, m + w[b + (this.#messages ? RD.messageLen : RD.payloadLen)]);
  }

  /**
   * 'occupied' when the i-th topic had no presence at the last poll (counting every
   * node's, as counts() does) and has some now, 'vacated' for the reverse, else null.
   */
  occupancy(i) {
    return OCCUPANCY[this.#words[this.#entry(i) + RD.occupancy]] ?? null;
  }

  /** The i-th topic as a Diff (a negative i counts from the end), or undefined past the end. */
  at(i) {
    let k = Math.trunc(i) || 0;
    if (k < 0) k += this.length;
    return k >= 0 && k < this.length ? this.#diff(k) : undefined;
  }

  /** Every topic as a Diff, in poll order. */
  *[Symbol.iterator]() {
    for (let i = 0; i < this.length; i++) yield this.#diff(i);
  }

  #diff(i) {
    const w = this.#words;
    const text = this.#text;
    const b = i * DIFF_WORDS;
    const t = w[b + RD.topic16];
    const p = w[b + RD.payload16];
    const m = w[b + RD.message16];
    return new Diff(
      text,
      text.slice(t, t + w[b + RD.topic16Len]),
      w[b + RD.seq + LO] + w[b + RD.seq + HI] * 4294967296,
      w[b + RD.viewers + LO] + w[b + RD.viewers + HI] * 4294967296,
      w[b + RD.users + LO] + w[b + RD.users + HI] * 4294967296,
      w[b + RD.connections + LO] + w[b + RD.connections + HI] * 4294967296,
      p,
      p + w[b + RD.payload16Len],
      this.#messages ? text.slice(m, m + w[b + RD.message16Len]) : null,
      OCCUPANCY[w[b + RD.occupancy]] ?? null
    );
  }
}

/**
 * One changed topic of a poll: what to send to the topic's clients. `topic` and
 * `message` are plain properties (slices of the batch's text, which the engine rendered);
 * `payloadJson` is sliced when read and `payload` parsed on its first read only.
 */
class Diff {
  #text;
  #start;
  #end;
  #viewers;
  #users;
  #connections;
  #payload = undefined;

  constructor(text, topic, seq, viewers, users, connections, start, end, message, occupancy = null) {
    this.#text = text;
    this.#start = start;
    this.#end = end;
    this.#viewers = viewers;
    this.#users = users;
    this.#connections = connections;
    /** The topic name. */
    this.topic = topic;
    /** 1 for a topic's first diff, then one more each time. */
    this.seq = seq;
    /** The whole message in the poll's envelope, or null for a poll without one. */
    this.message = message;
    /**
     * 'occupied' when the topic had no presence at the last poll (counting every node's,
     * as counts() does) and has some now, 'vacated' for the reverse, else null.
     */
    this.occupancy = occupancy;
  }

  /** The live counts after this diff (a new object on each read). */
  get counts() {
    return { viewers: this.#viewers, users: this.#users, connections: this.#connections };
  }

  /** The presence_diff payload as JSON text. */
  get payloadJson() {
    return this.#text.slice(this.#start, this.#end);
  }

  /** The presence_diff payload, parsed on the first read and kept. */
  get payload() {
    if (this.#payload === undefined) this.#payload = JSON.parse(this.payloadJson);
    return this.#payload;
  }

  /** The pollDiff() entry of this topic: {topic, seq, counts, payload}, and occupancy if it changed. */
  toJSON() {
    const entry = { topic: this.topic, seq: this.seq, counts: this.counts, payload: this.payload };
    if (this.occupancy !== null) entry.occupancy = this.occupancy;
    return entry;
  }
}

module.exports = {
  Batch,
  Diff,
  fastPath,
  envelopeArgs,
  readyScratchFor,
  takeReady,
};
