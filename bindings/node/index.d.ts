// Type declarations of presence-engine (hand-written; they follow index.js).
/// <reference types="node" />

/** A connection id: an unsigned 64-bit integer, as a safe integer or a bigint. */
export type Conn = number | bigint;

/** A meta: a JSON object, given as an object (JSON.stringify'd) or as JSON text. */
export type Meta = Record<string, unknown> | string;

export type Format = 'counts' | 'phoenix';

export interface EngineOptions {
  /** 'counts' (default: anonymous counts only) or 'phoenix' (Phoenix presence lists). */
  format?: Format;
  /** Phoenix format: the key anonymous presences are listed under (default 'viewers'). */
  viewersKey?: string;
  /** Lock shards (default 64, 1..4096). */
  shards?: number;
  /** Longest topic in UTF-8 bytes (default 256). */
  maxTopicBytes?: number;
  /** Longest key in UTF-8 bytes (default 256). */
  maxKeyBytes?: number;
  /** Longest meta JSON text in bytes (default 4096). */
  maxMetaBytes?: number;
  /** Most topics held at once (default 1,000,000). */
  maxTopics?: number;
  /** Most presences held at once (default 10,000,000). */
  maxPresences?: number;
  /** Cluster mode: share presence with other nodes (null or absent: a single node). */
  cluster?: ClusterOptions | null;
}

/** Cluster mode settings; the timers shown are the defaults. */
export interface ClusterOptions {
  /** This node's name, unique in the cluster (1 to 255 bytes). */
  node: string;
  /** The shared secret, the same on every node (16 bytes or more). */
  secret: string;
  /** How often clusterTick() is called (or the Redis link ticks), in ms (250). */
  tickMs?: number;
  /** A node silent this long is dropped, in ms (3000; more than tickMs). Only time during
   * which this node can hear the bus counts. */
  downAfterMs?: number;
  /** While this node's Redis link is down or unresponsive, its peers' presences are kept
   * (stale) this long before they are dropped, in ms (30000; or downAfterMs if longer). */
  staleAfterMs?: number;
  /** Each node broadcasts a full snapshot this often, in ms (300000): a backstop, since lost
   * messages are found from sequence gaps and healed by snapshots sent on request. */
  snapshotIntervalMs?: number;
  /** Largest message sent or accepted, in bytes (262144; at least 16384). */
  maxMessageBytes?: number;
  /** Most other nodes tracked at once (64). */
  maxNodes?: number;
}

/** Counters of a node's replication traffic. */
export interface ClusterStats {
  /** This node's incarnation: milliseconds << 16 plus random bits, so a bigint. */
  incarnation: bigint;
  /** Other nodes currently held: live, or stale while the Redis link is down. */
  nodes: number;
  /** Messages handed out by clusterTick() and clusterLeave() (or sent by the Redis link). */
  messagesSent: number;
  bytesSent: number;
  /** Messages ingested, echoes of this node's own included. */
  messagesReceived: number;
  bytesReceived: number;
  /** Refused: forged, tampered, truncated, or of another secret. */
  rejectedUnauthenticated: number;
  /** Refused: authentic but undecodable, of the other format, or over a bound. */
  rejectedMalformed: number;
  /** Refused: larger than maxMessageBytes. */
  rejectedOversized: number;
  /** Refused: a sequence number or incarnation already seen. */
  rejectedReplayed: number;
  snapshotsSent: number;
  /** Snapshot requests sent after a gap. */
  snapshotRequestsSent: number;
  /** Nodes dropped for silence or after announcing their departure. */
  nodesDropped: number;
  /** Nodes held from before the Redis link went down or stopped answering, kept until it
   * is back or staleAfterMs has passed; 0 while the link is up. */
  staleNodes: number;
  /** Whether this node can hear the bus: false while its Redis link is connecting, down
   * or unresponsive; always true for your own bus. */
  linkUp: boolean;
}

/** The three numbers of a topic. */
export interface Counts {
  /** Anonymous presences (tracked without a key). */
  viewers: number;
  /** Distinct keys (a user with three tabs counts once). */
  users: number;
  /** All presences. */
  connections: number;
}

/** Engine-wide figures. */
export interface Stats {
  topics: number;
  presences: number;
  /** Estimated heap bytes held by the engine. */
  bytes: number;
  /** Topics changed since the last poll. */
  topicsPending: number;
}

/** A topic's presence_state payload as of the last poll, and the seq of the last diff in it. */
export interface State {
  json: string;
  seq: number;
}

/** Counts format: `{"viewers":{"count":V},"users":{"count":U}}`. */
export interface CountsState {
  viewers: { count: number };
  users: { count: number };
}

/** One meta of a phoenix presence list: the host's meta plus the engine's refs. */
export interface PhoenixMeta {
  phx_ref: string;
  phx_ref_prev?: string;
  [field: string]: unknown;
}

/** Phoenix format: `{key: {metas: [...]}}`. */
export type PhoenixState = Record<string, { metas: PhoenixMeta[] }>;

export type PresenceState = CountsState | PhoenixState;

/** A presence_diff payload: what joined and what left, in the state's shape. */
export interface PresenceDiff<S extends PresenceState = PresenceState> {
  joins: S;
  leaves: S;
}

/** One changed topic of a poll. */
export interface TopicDiff<S extends PresenceState = PresenceState> {
  topic: string;
  /** 1 for a topic's first diff, then one more each time; a gap means a missed diff. */
  seq: number;
  /** The live counts after this diff. */
  counts: Counts;
  /** The presence_diff payload to send to the topic's clients. */
  payload: PresenceDiff<S>;
}

/**
 * The message shapes the engine renders around a payload: 'event' is
 * `{"event":E,"topic":T,"seq":S,"payload":P}` (the web demo's protocol); 'phoenix' is the
 * Phoenix Channels V2 frame `[joinRef,null,T,E,P]` that phoenix.js reads.
 */
export type EnvelopeName = 'event' | 'phoenix';

export interface ReadyOptions {
  /** The envelope of every message; null (the default) for none (`message` is null). */
  envelope?: EnvelopeName | null;
  /** 'phoenix' only: the join_ref of every frame (null, the default, as Phoenix broadcasts diffs). */
  joinRef?: string | null;
}

export interface StateMessageOptions {
  /** The envelope of the message (default 'event'); null for the payload alone. */
  envelope?: EnvelopeName | null;
  /** 'phoenix' only: the joining channel's join_ref (null sends null, which phoenix.js accepts). */
  joinRef?: string | null;
}

/** A topic's state as the whole message to send to a client that joins now. */
export interface StateMessage {
  /** The presence_state message in the envelope asked for. */
  message: string;
  /** The seq of the last diff it includes; the next diff of the topic has seq + 1. */
  seq: number;
}

/**
 * One changed topic of pollReady() (and of onDiff() and diffs()): what to send to the
 * topic's clients. The engine renders the message; nothing is parsed unless `payload` is
 * read.
 */
export class Diff<S extends PresenceState = PresenceState> {
  private constructor();
  /** The topic name. */
  readonly topic: string;
  /** 1 for a topic's first diff, then one more each time; a gap means a missed diff. */
  readonly seq: number;
  /** The live counts after this diff. */
  readonly counts: Counts;
  /** The whole message in the poll's envelope, ready to send as a text frame; null without one. */
  readonly message: string | null;
  /** The presence_diff payload as JSON text. */
  readonly payloadJson: string;
  /** The presence_diff payload, parsed on the first read and kept. */
  readonly payload: PresenceDiff<S>;
  /** This topic's pollDiff() entry: {topic, seq, counts, payload}. */
  toJSON(): TopicDiff<S>;
}

export interface OnDiffOptions extends ReadyOptions {
  /** How often to check the wake-up descriptor, in ms (default 50). */
  intervalMs?: number;
  /** Do not keep the process alive for this timer (default false). */
  unref?: boolean;
}

export interface DiffsOptions extends ReadyOptions {
  /** How often to check the wake-up descriptor, in ms (default 50). */
  intervalMs?: number;
  /** Ends the iteration when aborted. */
  signal?: AbortSignal;
}

export class Engine {
  constructor(options?: EngineOptions | null);
  /** 'counts' or 'phoenix'. */
  readonly format: Format;
  /** True once close() has run. */
  readonly closed: boolean;
  /** The wake-up descriptor: readable while a poll may return something. Never read or close it. */
  readonly fd: number;
  /** Same as `fd`. */
  fileno(): number;
  /** Tracks `conn` in `topic` as user `key` (null/undefined: an anonymous viewer). */
  track(topic: string, conn: Conn, key?: string | null, meta?: Meta | null): void;
  /** Stops tracking `conn` in `topic`; throws NotTrackedError if it is not tracked there. */
  untrack(topic: string, conn: Conn): void;
  /** Stops tracking `conn` in every topic; returns how many presences it had. */
  untrackConn(conn: Conn): number;
  /** Replaces the meta of a tracked presence. */
  update(topic: string, conn: Conn, meta?: Meta | null): void;
  /** The live counts of `topic`, in O(1); zeros for an unknown topic. */
  counts(topic: string): Counts;
  /** The presence_state payload as of the last poll, parsed. */
  list(topic: string): PresenceState;
  /** The presence_state payload as of the last poll, as JSON text. */
  listJson(topic: string): string;
  /** The presence_state payload as of the last poll, with its seq. */
  state(topic: string): State;
  /** Every change since the last poll, one entry per changed topic; [] when idle. */
  pollDiff(): TopicDiff[];
  /** Every change since the last poll as the JSON array text of presence_poll_diff. */
  pollDiffJson(): string;
  /** The host's fast path: every change since the last poll, one Diff per changed topic with its message rendered in `envelope`. */
  pollReady(options?: ReadyOptions): Diff[];
  /** The state of `topic` as of the last poll as the whole presence_state message (default envelope 'event'), with its seq. */
  stateMessage(topic: string, options?: StateMessageOptions): StateMessage;
  /** Engine-wide figures; `bytes` costs O(topics). */
  stats(): Stats;
  /** Topics changed since the last poll, in O(1) (a poll may still return [] if changes cancelled out). */
  pendingTopics(): number;
  /** pendingTopics() > 0: a poll may return something. */
  hasPending(): boolean;
  /** Calls `callback` with each non-empty pollReady() batch, checked every intervalMs; returns a stop function. */
  onDiff(callback: (batch: Diff[]) => void, options?: OnDiffOptions): () => void;
  /** Non-empty pollReady() batches, checked every intervalMs; ends on close() or abort. */
  diffs(options?: DiffsOptions): AsyncIterableIterator<Diff[]>;
  /** Own bus: the messages to publish now, in order; call every tickMs. NoClusterError on a single node. */
  clusterTick(): Buffer[];
  /** Own bus: applies a message another node published. RejectedError for a refused one. */
  clusterIngest(message: Uint8Array): void;
  /** Own bus: the departure message to publish before shutting down. */
  clusterLeave(): Buffer;
  /** Own bus: after the bus reconnects, the message asking every node for a snapshot. */
  clusterResync(): Buffer;
  /** The replication counters. */
  clusterStats(): ClusterStats;
  /** Starts the built-in Redis pub/sub link (a native thread); replaces a running one. */
  startRedis(url: string, channel: string): void;
  /** Stops the Redis link after it published this node's departure; resolves when its thread ended. */
  stopRedis(): Promise<void>;
  /** Frees the engine (stopping a Redis link first); idempotent. Any other call afterwards throws EngineClosedError. */
  close(): void;
  [Symbol.dispose](): void;
}

// generated by `make header`: errors
/** The status values of include/presence.h. */
export const Status: Readonly<{
  OK: 0;
  NULL_ARGUMENT: 1;
  INVALID_UTF8: 2;
  INVALID_META: 3;
  INVALID_CONFIG: 4;
  INVALID_ARGUMENT: 5;
  TOO_LONG: 6;
  ALREADY_TRACKED: 7;
  NOT_TRACKED: 8;
  LIMIT_REACHED: 9;
  IO: 10;
  NO_CLUSTER: 11;
  REJECTED: 12;
  PANIC: 99;
}>;

/** Base class of every error reported by the engine. */
export class PresenceError extends Error {
  constructor(message: string, status: number, code?: string);
  /** The presence_status value. */
  readonly status: number;
  /** Its name, e.g. 'PRESENCE_STATUS_NOT_TRACKED'. */
  readonly code: string;
}
/** An argument the engine refuses: a topic or key that is empty or equals the phoenix viewers key, a string that is not valid UTF-8, a bad meta, or a value over its byte limit. */
export class InvalidInputError extends PresenceError {}
/** The meta is not a JSON object, nests too deep, uses a reserved key (phx_ref, phx_ref_prev), or holds a non-finite number or an escaped lone surrogate. */
export class InvalidMetaError extends InvalidInputError {}
/** A topic, key or meta is longer than the engine's configured limit. */
export class TooLongError extends InvalidInputError {}
/** An engine setting is malformed, unknown or out of range. */
export class ConfigError extends PresenceError {}
/** The (topic, conn) pair is tracked already. */
export class AlreadyTrackedError extends PresenceError {}
/** The (topic, conn) pair is not tracked. */
export class NotTrackedError extends PresenceError {}
/** The engine's max_topics or max_presences is reached. */
export class LimitReachedError extends PresenceError {}
/** The operating system refused a resource (the wake-up descriptor, or the Redis link's thread). */
export class ResourceError extends PresenceError {}
/** A cluster call on an engine created without the cluster setting. */
export class NoClusterError extends PresenceError {}
/** A replication message was refused (unauthenticated, malformed, oversized or replayed): nothing of it was merged, and the cluster stats count it. */
export class RejectedError extends PresenceError {}
// end of generated errors
/** A bug inside the engine was caught at the C boundary. */
export class PanicError extends PresenceError {}
/** A call on a closed engine. */
export class EngineClosedError extends PresenceError {
  constructor(message?: string);
}

/** The version of the loaded libpresence, e.g. "0.1.0". */
export function version(): string;
/** The name of a status value, e.g. "PRESENCE_STATUS_NOT_TRACKED". */
export function statusName(status: number): string;
/** The file the native library was loaded from. */
export function libraryPath(): string;
