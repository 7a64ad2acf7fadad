'use strict';

// The exception classes. Every failure the C library reports becomes one of these, with
// the status number, its name (from presence_status_name) and the message of
// presence_last_error_message. Wrong JS types are plain TypeError/RangeError instead:
// they are caught before anything crosses into C.

/** The status values of include/presence.h (enum presence_status). */
const Status = Object.freeze({
  OK: 0,
  NULL_ARGUMENT: 1,
  INVALID_UTF8: 2,
  INVALID_META: 3,
  INVALID_CONFIG: 4,
  INVALID_ARGUMENT: 5,
  TOO_LONG: 6,
  ALREADY_TRACKED: 7,
  NOT_TRACKED: 8,
  LIMIT_REACHED: 9,
  IO: 10,
  NO_CLUSTER: 11,
  REJECTED: 12,
  PANIC: 99,
});

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
  }
}

/** A topic, key or meta the engine refuses: empty, too long, not UTF-8, bad meta. */
class InvalidInputError extends PresenceError {}
/** The meta is not a JSON object, uses a reserved key (phx_ref, phx_ref_prev), or holds a non-finite number or an escaped lone surrogate. */
class InvalidMetaError extends InvalidInputError {}
/** A topic, key or meta is longer than the engine's configured limit. */
class TooLongError extends InvalidInputError {}
/** The engine options are malformed, unknown or out of range. */
class ConfigError extends PresenceError {}
/** The connection is already tracked in that topic. */
class AlreadyTrackedError extends PresenceError {}
/** The connection is not tracked in that topic. */
class NotTrackedError extends PresenceError {}
/** The configured maximum number of topics or presences is reached. */
class LimitReachedError extends PresenceError {}
/**
 * The operating system refused a resource (the wake-up descriptor, the Redis link's
 * thread), or the library was built without its Redis link.
 */
class ResourceError extends PresenceError {}
/** A bug inside the engine was caught at the C boundary. */
class PanicError extends PresenceError {}
/** A cluster call on an engine created without the `cluster` option. */
class NoClusterError extends PresenceError {}
/**
 * A replication message was refused (forged, tampered, truncated, another secret or
 * format, oversized, replayed): nothing of it was merged, and it is counted in
 * clusterStats().
 */
class RejectedError extends PresenceError {}
/**
 * The engine was closed. There is no engine left to call, which is what C reports as
 * PRESENCE_STATUS_NULL_ARGUMENT for a NULL handle, hence that status.
 */
class EngineClosedError extends PresenceError {
  constructor(message = 'the engine is closed') {
    super(message, Status.NULL_ARGUMENT);
  }
}

const CLASS_BY_STATUS = new Map([
  [Status.NULL_ARGUMENT, InvalidInputError],
  [Status.INVALID_UTF8, InvalidInputError],
  [Status.INVALID_META, InvalidMetaError],
  [Status.INVALID_CONFIG, ConfigError],
  [Status.INVALID_ARGUMENT, InvalidInputError],
  [Status.TOO_LONG, TooLongError],
  [Status.ALREADY_TRACKED, AlreadyTrackedError],
  [Status.NOT_TRACKED, NotTrackedError],
  [Status.LIMIT_REACHED, LimitReachedError],
  [Status.IO, ResourceError],
  [Status.NO_CLUSTER, NoClusterError],
  [Status.REJECTED, RejectedError],
  [Status.PANIC, PanicError],
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
  PresenceError,
  InvalidInputError,
  InvalidMetaError,
  TooLongError,
  ConfigError,
  AlreadyTrackedError,
  NotTrackedError,
  LimitReachedError,
  ResourceError,
  PanicError,
  EngineClosedError,
  NoClusterError,
  RejectedError,
};
