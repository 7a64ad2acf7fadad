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
  version,
  statusName,
  libraryPath,
  type Counts,
  type Stats,
  type State,
  type TopicDiff,
  type EngineOptions,
  type PresenceState,
  type PhoenixState,
  type CountsState,
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
  void [t, s, joins, d.payload.leaves];
}
const text: string = engine.pollDiffJson();
const stats: Stats = engine.stats();
const pending: number = stats.topicsPending + stats.bytes + stats.presences + stats.topics;
const maybe: boolean = engine.hasPending();
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
