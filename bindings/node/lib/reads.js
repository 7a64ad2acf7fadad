'use strict';

// The reads of an HTTP side (countsMany(), metrics()), and the check of countsMany()'s topics.

const { STRUCT_WORDS } = require('./generated');
const { Status, InvalidInputError } = require('./errors');
const { describe } = require('./checks');
const { declaredOnFirstUse } = require('./declare');

// The reads of an HTTP side: presence_counts_many (koffi passes a JS array of strings as
// the `const char **`, each encoded as UTF-8) and presence_metrics.

const httpReads = declaredOnFirstUse({
  counts_many: 'int presence_counts_many(const presence_engine *engine, const char **topics, size_t n, void *out)',
  metrics: 'int presence_metrics(const presence_engine *engine, void *out)',
});

const COUNTS_WORDS = STRUCT_WORDS.presence_counts.length;

/**
 * The first topic of countsMany() that JS refuses before C sees it (see checkText), as
 * [index, error], or null: a TypeError for one that is not a string, InvalidInputError for
 * one C cannot receive intact.
 */
function refusedTopic(list) {
  for (let i = 0; i < list.length; i++) {
    const topic = list[i];
    let err = null;
    if (typeof topic !== 'string') {
      err = new TypeError(`topics[${i}] must be a string, got ${describe(topic)}`);
    } else if (topic.includes('\0')) {
      err = new InvalidInputError(`topics[${i}]: topic must not contain NUL characters`, Status.INVALID_ARGUMENT);
    } else if (!topic.isWellFormed()) {
      err = new InvalidInputError(
        `topics[${i}]: topic is not well-formed UTF-16 (it has a lone surrogate), so it has no UTF-8 form`,
        Status.INVALID_UTF8
      );
    }
    if (err !== null) {
      err.index = i;
      return [i, err];
    }
  }
  return null;
}

module.exports = { httpReads, COUNTS_WORDS, refusedTopic };
