// Compiled by test/types.test.js with tsc --noEmit: every export and method of
// index.d.ts used as a TypeScript ES module would, plus uses that must not compile.
import presence, {
  Engine,
  Status,
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
  version,
  statusName,
  libraryPath,
  type Counts,
  type Stats,
  type State,
  type TopicDiff,
  Batch,
  type Occupancy,
  Diff,
  type EnvelopeName,
  type ReadyOptions,
  type StateMessage,
  type EngineOptions,
  type PresenceState,
  type PhoenixState,
  type CountsState,
  type ClusterOptions,
  type ClusterStats,
} from 'presence-engine';

const options: EngineOptions = {
  format: 'phoenix',
  viewersKey: 'anon',
  shards: 8,
  maxTopicBytes: 128,
  maxKeyBytes: 64,
  maxMetaBytes: 1024,
  maxTopics: 1000,
  maxPresences: 10000,
};
const engine = new Engine(options);
const other = new presence.Engine();
new Engine(null);
const format: 'counts' | 'phoenix' = engine.format;
const closed: boolean = engine.closed;
const fd: number = engine.fd + engine.fileno();

engine.track('room', 1, 'alice', { device: 'phone' });
engine.track('room', 2n, null, '{"a":1}');
engine.track('room', 3);
engine.track('room', 4, undefined, null);
engine.untrack('room', 1);
const removed: number = engine.untrackConn(2n);
engine.update('room', 3, { status: 'away' });
engine.update('room', 3);
const counts: Counts = engine.counts('room');
const total: number = counts.viewers + counts.users + counts.connections;
const list: PresenceState = engine.list('room');
const phoenix = list as PhoenixState;
const refs: string[] = Object.values(phoenix).flatMap((p) => p.metas.map((m) => m.phx_ref));
const countsState = list as CountsState;
const viewers: number = countsState.viewers.count;
const json: string = engine.listJson('room');
const state: State = engine.state('room');
const seq: number = state.seq;
const batch: TopicDiff[] = engine.pollDiff();
for (const d of batch) {
  const t: string = d.topic;
  const s: number = d.seq + d.counts.connections;
  const joins: PresenceState = d.payload.joins;
  const occupancy: Occupancy | null | undefined = d.occupancy;
  void [t, s, joins, d.payload.leaves, occupancy];
}
const text: string = engine.pollDiffJson();
const envelope: EnvelopeName = 'phoenix';
const readyOptions: ReadyOptions = { envelope, joinRef: null };
const ready: Diff[] = engine.pollReady(readyOptions);
for (const d of ready) {
  const m: string | null = d.message;
  const p: string = d.payloadJson;
  const legacy: TopicDiff = d.toJSON();
  const asEntry: TopicDiff = d;
  const ok: boolean = d instanceof Diff;
  const fired: Occupancy | null = d.occupancy;
  void [m, p, legacy, asEntry, ok, fired, d.topic, d.seq, d.counts.users, d.payload.joins];
}
const ready2: Batch = engine.pollBatch(readyOptions);
for (let i = 0; i < ready2.length; i++) {
  const topic: string = ready2.topic(i);
  const message: string = ready2.message(i);
  const bytes: Buffer = ready2.messageBytes(i);
  const diff: Diff | undefined = ready2.at(i);
  const occupancy: Occupancy | null = ready2.occupancy(i);
  void [topic, message, bytes, occupancy, diff?.occupancy, diff?.payload.joins, ready2 instanceof Batch];
}
const fromBatch: Diff[] = [...ready2];
void fromBatch;
// @ts-expect-error: a Batch is not an array (index it with topic(i), message(i), at(i))
void ready2[0];
const stopBatches: () => void = engine.onDiff((b: Batch) => void b.message(0), { batch: true, envelope: 'event' });
stopBatches();
// @ts-expect-error: without batch: true the callback gets Diffs
engine.onDiff((b: Batch) => void b.message(0), { envelope: 'event' });
for await (const b of engine.diffs({ batch: true })) {
  const firstTopic: string = b.topic(0);
  void firstTopic;
  break;
}
engine.pollReady();
engine.pollReady({ envelope: null });
// @ts-expect-error: not an envelope the engine renders
engine.pollReady({ envelope: 'xml' });
const sm: StateMessage = engine.stateMessage('room', { envelope: 'phoenix', joinRef: '3' });
const smText: string = engine.stateMessage('room').message + sm.message + String(sm.seq);
void smText;
const stats: Stats = engine.stats();
const pending: number = stats.topicsPending + stats.bytes + stats.presences + stats.topics + stats.polls;
const many: Counts[] = engine.countsMany(['room', 'lobby']);
const fromSet: number = engine.countsMany(new Set(['room']))[0].users;
// @ts-expect-error: topics are strings
engine.countsMany([1, 2]);
const metricsText: string = engine.metrics();
void [many, fromSet, metricsText];
const maybe: boolean = engine.hasPending();
const nPending: number = engine.pendingTopics();
const stop: () => void = engine.onDiff((b: TopicDiff[]) => void b.length, { intervalMs: 10, unref: true });
stop();
const ac = new AbortController();
for await (const b of engine.diffs({ intervalMs: 5, signal: ac.signal })) {
  void b[0]?.payload;
  break;
}
engine[Symbol.dispose]();
engine.close();
other.close();

const clusterOptions: ClusterOptions = {
  node: 'web-1',
  secret: 'a long random shared secret',
  tickMs: 250,
  downAfterMs: 3000,
  snapshotIntervalMs: 30000,
  maxMessageBytes: 262144,
  maxNodes: 64,
};
const node = new Engine({ format: 'counts', cluster: clusterOptions });
new Engine({ cluster: null });
const outgoing: Buffer[] = node.clusterTick();
for (const m of outgoing) node.clusterIngest(m);
node.clusterIngest(new Uint8Array(4));
const leave: Buffer = node.clusterLeave();
const resync: Buffer = node.clusterResync();
const cstats: ClusterStats = node.clusterStats();
const incarnation: bigint = cstats.incarnation;
const refused: number =
  cstats.rejectedUnauthenticated + cstats.rejectedMalformed + cstats.rejectedOversized + cstats.rejectedReplayed +
  cstats.nodes + cstats.messagesSent + cstats.bytesSent + cstats.messagesReceived + cstats.bytesReceived +
  cstats.snapshotsSent + cstats.snapshotRequestsSent + cstats.nodesDropped;
node.startRedis('redis://127.0.0.1:6379/', 'presence');
const stopped: Promise<void> = node.stopRedis();
await stopped;
try {
  node.clusterIngest(leave);
} catch (err) {
  if (err instanceof RejectedError || err instanceof NoClusterError) void err.status;
}
node.close();
// @ts-expect-error: a cluster needs a secret
new Engine({ cluster: { node: 'a' } });
// @ts-expect-error: cluster options are camelCase
new Engine({ cluster: { node: 'a', secret: 'x'.repeat(16), tick_ms: 5 } });
// @ts-expect-error: messages are bytes, not text
node.clusterIngest('message');
// @ts-expect-error: the incarnation is a bigint
const wrongIncarnation: number = cstats.incarnation;

const status: number = Status.NOT_TRACKED;
const name: string = statusName(status) + version() + libraryPath();
const errors = [
  new PresenceError('m', 1),
  new InvalidInputError('m', 5),
  new InvalidMetaError('m', 3),
  new TooLongError('m', 6),
  new ConfigError('m', 4),
  new AlreadyTrackedError('m', 7),
  new NotTrackedError('m', 8),
  new LimitReachedError('m', 9),
  new ResourceError('m', 10),
  new PanicError('m', 99, 'PRESENCE_STATUS_PANIC'),
  new EngineClosedError(),
  new NoClusterError('m', 11),
  new RejectedError('m', 12),
];
for (const e of errors) {
  const base: PresenceError = e;
  const code: string = base.code;
  const st: number = base.status;
  void [code, st];
}
const input: InvalidInputError = new TooLongError('m', 6);

// @ts-expect-error: unknown option
new Engine({ maxTopic: 3 });
// @ts-expect-error: format is 'counts' or 'phoenix'
new Engine({ format: 'xml' });
// @ts-expect-error: conn is a number or a bigint
engine.track('room', '1');
// @ts-expect-error: topic is a string
engine.counts(1);
// @ts-expect-error: meta is an object or JSON text
engine.track('room', 1, 'k', 5);
// @ts-expect-error: counts are read-only numbers, not strings
const wrong: string = engine.counts('room').users;

void [format, closed, fd, removed, total, refs, viewers, json, seq, text, pending, maybe, name, input, wrong];
void [nPending, resync, incarnation, refused, wrongIncarnation];
