'use strict';

// The exception classes. Every failure the C library reports becomes one of these, with
// the status number, its name (from presence_status_name) and the message of
// presence_last_error_message. Wrong JS types are plain TypeError/RangeError instead:
// they are caught before anything crosses into C.

const { STATUSES, CLASSES, CLASS_OF } = require('./generated');

/** The status values of include/presence.h (enum presence_status). */
const Status = STATUSES;

/** The name the C library gives a status (what presence_status_name returns). */
function statusCode(status) {
  for (const [name, value] of Object.entries(Status)) {
    if (value === status) return `PRESENCE_STATUS_${name}`;
  }
  return 'PRESENCE_STATUS_UNKNOWN';
}

class PresenceError extends Error {
  /**
   * @param {string} message
   * @param {number} status a presence_status value
   * @param {string} [code] its name; derived from `status` when omitted
   */
  constructor(message, status, code) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.code = code === undefined ? statusCode(status) : code;
    // The status name in lower case without its prefix, as Python's `PresenceError.kind`:
    // what the framework integrations send to clients as a refusal's reason.
    this.kind = this.code.replace(/^PRESENCE_STATUS_/, '').toLowerCase();
  }
}

// The classes of the core's failures, built from its table (lib/generated.js), parents
// first. Each is a named subclass, so `err.name` and stack traces show its name.
const classes = { PresenceError };
for (const [name, parent] of CLASSES) {
  const Parent = classes[parent || 'PresenceError'];
  classes[name] = { [name]: class extends Parent {} }[name];
}

/**
 * The engine was closed. There is no engine left to call, which is what C reports as
 * PRESENCE_STATUS_NULL_ARGUMENT for a NULL handle, hence that status.
 */
class EngineClosedError extends PresenceError {
  constructor(message = 'the engine is closed') {
    super(message, Status.NULL_ARGUMENT);
  }
}

// The statuses of the C layer alone (no core failure) have classes of this binding.
const CLASS_BY_STATUS = new Map([
  [Status.NULL_ARGUMENT, classes.InvalidInputError],
  ...Object.entries(CLASS_OF).map(([status, name]) => [Status[status], classes[name]]),
]);

/** The error for a failed status: the class by status, `PresenceError` for an unknown one. */
function errorFor(status, message, code) {
  const Cls = CLASS_BY_STATUS.get(status) || PresenceError;
  return new Cls(message, status, code);
}

module.exports = {
  Status,
  statusCode,
  errorFor,
  ...classes,
  EngineClosedError,
};
