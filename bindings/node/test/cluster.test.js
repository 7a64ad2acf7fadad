'use strict';

// Cluster mode through the host's own bus: engines in this process exchange their
// messages through an in-test bus (every message to every engine, sender included, as
// pub/sub does). Convergence in both formats, refused messages, the options, the errors,
// leave, resync, the timers, and the Redis calls that need no server.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const pe = require('..');

const { Engine, Status } = pe;
const SECRET = 'a shared secret of the test cluster';

function node(name, options = {}) {
  const { format = 'counts', ...cluster } = options;
  return new Engine({ format, cluster: { node: name, secret: SECRET, ...cluster } });
}

/**
 * The in-test bus. round() ticks every engine in turn and delivers each message at once
 * to every engine (echoes included). Messages of the engines in `dropped` are lost;
 * `published` keeps every message handed out.
 */
function bus(engines) {
  const b = {
    engines,
    dropped: new Set(),
    published: [],
    deliver(from, messages) {
      for (const m of messages) {
        assert.ok(Buffer.isBuffer(m) && m.length > 0);
        b.published.push({ from, m });
        if (b.dropped.has(from)) continue;
        for (const e of b.engines) if (!e.closed) e.clusterIngest(m);
      }
    },
    round() {
      for (const e of b.engines) if (!e.closed) b.deliver(e, e.clusterTick());
    },
    /** Rounds until `check()` holds on every engine; returns how many it took. */
    until(check, limit, what) {
      for (let r = 1; r <= limit; r++) {
        b.round();
        if (b.engines.every((e) => e.closed || check(e))) return r;
      }
      assert.fail(`${what}: not reached within ${limit} rounds: ${JSON.stringify(b.engines.map((e) => (e.closed ? 'closed' : e.counts('video:1'))))}`);
    },
  };
  return b;
}

const countsIs = (topic, want) => (e) => JSON.stringify(e.counts(topic)) === JSON.stringify(want);

/** Asserts that fn throws `Cls` with `status`, its code and a message matching `pattern`. */
function throwsStatus(fn, Cls, status, pattern) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof Cls, `expected ${Cls.name}, got ${err && err.constructor.name}: ${err && err.message}`);
    assert.ok(err instanceof pe.PresenceError);
    assert.equal(err.status, status);
    assert.equal(err.code, pe.statusName(status));
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

const rejectedTotal = (s) => s.rejectedUnauthenticated + s.rejectedMalformed + s.rejectedOversized + s.rejectedReplayed;

test('counts format: three nodes converge to exact counts, a user on several nodes counts once', () => {
  const [a, b, c] = [node('a'), node('b'), node('c')];
  const net = bus([a, b, c]);
  // alice on all three nodes (twice on a), bob on a and c, two viewers on b, one on c.
  a.track('video:1', 1, 'alice');
  a.track('video:1', 2, 'alice');
  a.track('video:1', 3, 'bob');
  b.track('video:1', 1, 'alice');
  b.track('video:1', 2);
  b.track('video:1', 3);
  c.track('video:1', 1, 'alice');
  c.track('video:1', 2, 'bob');
  c.track('video:1', 3);
  c.track('lobby', 4, 'carol');
  const want = { viewers: 3, users: 2, connections: 9 };
  // The first deltas of a new peer are enough here; a gap would cost a snapshot round trip.
  net.until(countsIs('video:1', want), 3, 'convergence');
  for (const e of [a, b, c]) {
    assert.deepEqual(e.counts('video:1'), want);
    assert.deepEqual(e.counts('lobby'), { viewers: 0, users: 1, connections: 1 });
    // Remote changes come out of pollDiff like local ones, and the state follows.
    const diff = e.pollDiff().find((d) => d.topic === 'video:1');
    assert.deepEqual(diff.counts, want);
    assert.deepEqual(e.list('video:1'), { viewers: { count: 3 }, users: { count: 2 } });
    assert.equal(e.clusterStats().nodes, 2);
  }

  // alice leaves b and one tab on a: still on a and c, so still one user.
  b.untrack('video:1', 1);
  a.untrack('video:1', 2);
  net.until(countsIs('video:1', { viewers: 3, users: 2, connections: 7 }), 3, 'alice leaves b');
  // alice leaves everywhere: one user fewer on every node, and b's pollDiff says so.
  b.pollDiff();
  a.untrackConn(1);
  c.untrack('video:1', 1);
  net.until(countsIs('video:1', { viewers: 3, users: 1, connections: 5 }), 3, 'alice leaves');
  const [d] = b.pollDiff();
  assert.equal(d.topic, 'video:1');
  assert.deepEqual(d.payload, { joins: { viewers: { count: 0 }, users: { count: 0 } }, leaves: { viewers: { count: 0 }, users: { count: 1 } } });

  // Counts format never puts a user id or a meta on the wire.
  const wire = Buffer.concat(net.published.map((p) => p.m));
  for (const secret of ['alice', 'bob', 'carol']) assert.equal(wire.indexOf(secret), -1, `${secret} on the wire`);
  for (const e of [a, b, c]) {
    const s = e.clusterStats();
    assert.equal(rejectedTotal(s), 0);
    assert.equal(s.messagesSent, net.published.filter((p) => p.from === e).length);
    assert.equal(s.bytesSent, net.published.filter((p) => p.from === e).reduce((n, p) => n + p.m.length, 0));
    // Every message reached every engine, its own echoes included.
    assert.equal(s.messagesReceived, net.published.length);
    e.close();
  }
});

test('phoenix format: every node lists every node\'s presences, metas included', () => {
  const [a, b] = [node('a', { format: 'phoenix' }), node('b', { format: 'phoenix' })];
  const net = bus([a, b]);
  a.track('video:1', 1, 'alice', { device: 'phone' });
  b.track('video:1', 1, 'alice', { device: 'laptop' });
  b.track('video:1', 2, null, { anon: true });
  net.until(countsIs('video:1', { viewers: 1, users: 1, connections: 3 }), 3, 'convergence');
  const sorted = (list) =>
    Object.fromEntries(Object.entries(list).map(([k, v]) => [k, v.metas.slice().sort((x, y) => x.phx_ref.localeCompare(y.phx_ref))]));
  for (const e of [a, b]) e.pollDiff();
  const la = sorted(a.list('video:1'));
  // Each node gives the entries it lists refs of its own: the lists agree on all but those.
  const withoutRefs = (list) =>
    Object.fromEntries(Object.entries(list).map(([k, v]) => [k, v.metas.map(({ phx_ref: _r, phx_ref_prev: _p, ...m }) => JSON.stringify(m)).sort()]));
  assert.deepEqual(withoutRefs(b.list('video:1')), withoutRefs(a.list('video:1')));
  assert.deepEqual(la.alice.map((m) => m.device).sort(), ['laptop', 'phone']);
  assert.deepEqual(la.viewers.map((m) => m.anon), [true]);
  // The entries travel in this format (the contrast with counts format above).
  assert.ok(Buffer.concat(net.published.map((p) => p.m)).includes('phone'));

  // An update on b reaches a as a leave and a join with phx_ref_prev.
  const before = la.alice.find((m) => m.device === 'laptop').phx_ref;
  b.update('video:1', 1, { device: 'tablet' });
  net.round();
  const [d] = a.pollDiff();
  assert.equal(d.payload.leaves.alice.metas[0].phx_ref, before);
  assert.equal(d.payload.joins.alice.metas[0].device, 'tablet');
  assert.equal(d.payload.joins.alice.metas[0].phx_ref_prev, before);
  a.close();
  b.close();
});

test('refused messages throw RejectedError, change nothing and are counted', () => {
  const a = node('a', { maxMessageBytes: 20_000 });
  const b = node('b', { maxMessageBytes: 20_000 });
  b.track('video:1', 1, 'bob');
  const [first] = b.clusterTick();
  a.clusterIngest(first);
  a.pollDiff();
  b.track('video:1', 2, 'carol');
  const [msg] = b.clusterTick();
  const base = a.clusterStats();
  const untouched = () => {
    assert.deepEqual(a.counts('video:1'), { viewers: 0, users: 1, connections: 1 });
    assert.equal(a.pendingTopics(), 0);
  };
  const refused = (m, counter, pattern) => {
    const was = a.clusterStats();
    throwsStatus(() => a.clusterIngest(m), pe.RejectedError, Status.REJECTED, pattern);
    const now = a.clusterStats();
    assert.equal(now[counter], was[counter] + 1, counter);
    assert.equal(rejectedTotal(now), rejectedTotal(was) + 1, `only ${counter} moved`);
    assert.equal(now.messagesReceived, was.messagesReceived + 1);
    assert.equal(now.bytesReceived, was.bytesReceived + m.length);
    untouched();
  };

  // Tampered: one bit flipped anywhere, the body or the tag.
  for (const at of [0, 5, msg.length >> 1, msg.length - 1]) {
    const t = Buffer.from(msg);
    t[at] ^= 1;
    refused(t, 'rejectedUnauthenticated', /authentication/);
  }
  // Truncated, extended, empty.
  refused(msg.subarray(0, msg.length - 1), 'rejectedUnauthenticated');
  refused(Buffer.concat([msg, Buffer.from([0])]), 'rejectedUnauthenticated');
  refused(Buffer.alloc(0), 'rejectedUnauthenticated');
  // Signed with another secret.
  const stranger = new Engine({ cluster: { node: 'x', secret: 'another secret, same length!!' } });
  stranger.track('video:1', 9, 'mallory');
  refused(stranger.clusterTick()[0], 'rejectedUnauthenticated');
  stranger.close();
  // Larger than maxMessageBytes, whatever it holds.
  refused(Buffer.alloc(20_001), 'rejectedOversized', /too large/);
  // Authentic, but of the other format.
  const phx = node('p', { format: 'phoenix' });
  phx.track('video:1', 1, 'alice');
  refused(phx.clusterTick()[0], 'rejectedMalformed', /format/);
  phx.close();

  // The real message, then its replay.
  a.clusterIngest(msg);
  assert.deepEqual(a.counts('video:1'), { viewers: 0, users: 2, connections: 2 });
  a.pollDiff();
  throwsStatus(() => a.clusterIngest(msg), pe.RejectedError, Status.REJECTED, /replayed/);
  throwsStatus(() => a.clusterIngest(first), pe.RejectedError, Status.REJECTED, /replayed/);
  assert.deepEqual(a.counts('video:1'), { viewers: 0, users: 2, connections: 2 });
  assert.equal(a.pendingTopics(), 0);
  const s = a.clusterStats();
  assert.equal(s.rejectedReplayed, base.rejectedReplayed + 2);
  assert.equal(s.rejectedUnauthenticated, base.rejectedUnauthenticated + 8);
  assert.equal(s.rejectedOversized, 1);
  assert.equal(s.rejectedMalformed, 1);
  a.close();
  b.close();
});

test('maxNodes bounds the peers a node tracks', () => {
  const a = node('a', { maxNodes: 1 });
  const [b, c] = [node('b'), node('c')];
  a.clusterIngest(b.clusterTick()[0]);
  throwsStatus(() => a.clusterIngest(c.clusterTick()[0]), pe.RejectedError, Status.REJECTED, /too many nodes/);
  assert.equal(a.clusterStats().nodes, 1);
  assert.equal(a.clusterStats().rejectedMalformed, 1);
  for (const e of [a, b, c]) e.close();
});

test('messages are copies: bytes held from earlier ticks stay valid', () => {
  const [a, b] = [node('a'), node('b')];
  const held = [];
  for (let i = 0; i < 50; i++) {
    a.track(`t${i}`, i, `u${i}`);
    held.push(...a.clusterTick());
  }
  // Later messages would overwrite the bytes if they were views of freed memory.
  for (let i = 0; i < 200; i++) held.push(...a.clusterTick());
  for (const m of held) b.clusterIngest(m);
  assert.equal(rejectedTotal(b.clusterStats()), 0);
  assert.equal(b.stats().topics, 50);
  assert.deepEqual(b.counts('t49'), { viewers: 0, users: 1, connections: 1 });
  // A Uint8Array (not a Buffer), and a view at an offset into a larger buffer.
  a.track('x', 1);
  const [m] = a.clusterTick();
  const big = new Uint8Array(m.length + 10);
  big.set(m, 7);
  b.clusterIngest(big.subarray(7, 7 + m.length));
  assert.deepEqual(b.counts('x'), { viewers: 1, users: 0, connections: 1 });
  a.track('y', 1);
  b.clusterIngest(new Uint8Array(a.clusterTick()[0]));
  assert.deepEqual(b.counts('y'), { viewers: 1, users: 0, connections: 1 });
  a.close();
  b.close();
});

test('clean leave: the others drop the node at once; later ticks publish nothing', () => {
  const [a, b, c] = [node('a'), node('b'), node('c')];
  const net = bus([a, b, c]);
  a.track('video:1', 1, 'alice');
  b.track('video:1', 1, 'bob');
  c.track('video:1', 1);
  net.until(countsIs('video:1', { viewers: 1, users: 2, connections: 3 }), 3, 'convergence');
  for (const e of [b, c]) e.pollDiff();
  const sent = a.clusterStats().messagesSent;
  const leave = a.clusterLeave();
  assert.ok(Buffer.isBuffer(leave) && leave.length > 0);
  net.deliver(a, [leave]);
  for (const e of [b, c]) {
    assert.deepEqual(e.counts('video:1'), { viewers: 1, users: 1, connections: 2 });
    assert.deepEqual(e.pollDiff()[0].payload.leaves, { viewers: { count: 0 }, users: { count: 1 } });
    const s = e.clusterStats();
    assert.equal(s.nodes, 1);
    assert.equal(s.nodesDropped, 1);
  }
  assert.equal(a.clusterStats().messagesSent, sent + 1);
  assert.deepEqual(a.clusterTick(), []);
  assert.deepEqual(a.clusterTick(), []);
  for (const e of [a, b, c]) e.close();
});

test('downAfterMs: a silent node is dropped by the next tick after it', async () => {
  const opts = { tickMs: 20, downAfterMs: 150 };
  const [a, b, c] = [node('a', opts), node('b', opts), node('c', opts)];
  const net = bus([a, b, c]);
  c.track('video:1', 1, 'carol');
  // Taken before c's last message: c is dropped at least downAfterMs after this.
  const started = Date.now();
  net.until(countsIs('video:1', { viewers: 0, users: 1, connections: 1 }), 3, 'convergence');
  a.pollDiff();
  // c goes silent (a crash: no leave). a and b keep ticking.
  net.engines = [a, b];
  while (a.counts('video:1').connections !== 0 || b.counts('video:1').connections !== 0) {
    assert.ok(Date.now() - started < 5000, 'c was never dropped');
    await new Promise((r) => setTimeout(r, 20));
    net.round();
  }
  const took = Date.now() - started;
  assert.ok(took >= 150, `dropped after ${took} ms, before downAfterMs`);
  assert.equal(a.clusterStats().nodesDropped, 1);
  assert.deepEqual(a.pollDiff()[0].payload.leaves, { viewers: { count: 0 }, users: { count: 1 } });
  for (const e of [a, b, c]) e.close();
});

test('lost messages: a gap asks for a snapshot; resync asks every node for one', async () => {
  const [a, b] = [node('a', { snapshotIntervalMs: 60_000 }), node('b', { snapshotIntervalMs: 60_000 })];
  const net = bus([a, b]);
  a.track('video:1', 1, 'alice');
  net.until(countsIs('video:1', { viewers: 0, users: 1, connections: 1 }), 3, 'convergence');
  // Two of a's messages are lost: b sees the gap, asks, and a sends a snapshot.
  net.dropped.add(a);
  a.track('video:1', 2, 'bob');
  net.round();
  a.track('video:1', 3);
  net.round();
  net.dropped.clear();
  const snaps = a.clusterStats().snapshotsSent;
  net.until(countsIs('video:1', { viewers: 1, users: 2, connections: 3 }), 4, 'recovery after a gap');
  assert.ok(b.clusterStats().snapshotRequestsSent >= 1);
  assert.ok(a.clusterStats().snapshotsSent > snaps);

  // After "the bus reconnected", b's resync makes a send a snapshot on its next tick.
  const before = a.clusterStats().snapshotsSent;
  const resync = b.clusterResync();
  assert.ok(Buffer.isBuffer(resync) && resync.length > 0);
  net.deliver(b, [resync]);
  net.round();
  assert.equal(a.clusterStats().snapshotsSent, before + 1);
  assert.deepEqual(b.counts('video:1'), { viewers: 1, users: 2, connections: 3 });

  // snapshotIntervalMs: a node also sends one on its own when the interval has passed.
  const p = node('p', { snapshotIntervalMs: 100 });
  p.clusterTick();
  const first = p.clusterStats().snapshotsSent;
  await new Promise((r) => setTimeout(r, 150));
  p.clusterTick();
  assert.equal(p.clusterStats().snapshotsSent, first + 1);
  for (const e of [a, b, p]) e.close();
});

test('a single-node engine: NoClusterError from every cluster call', async () => {
  for (const options of [undefined, {}, { cluster: null }, { cluster: undefined }]) {
    const e = new Engine(options);
    throwsStatus(() => e.clusterTick(), pe.NoClusterError, Status.NO_CLUSTER, /without a cluster config/);
    throwsStatus(() => e.clusterIngest(Buffer.from('x')), pe.NoClusterError, Status.NO_CLUSTER);
    throwsStatus(() => e.clusterLeave(), pe.NoClusterError, Status.NO_CLUSTER);
    throwsStatus(() => e.clusterResync(), pe.NoClusterError, Status.NO_CLUSTER);
    throwsStatus(() => e.clusterStats(), pe.NoClusterError, Status.NO_CLUSTER);
    throwsStatus(() => e.startRedis('redis://127.0.0.1:1/', 'presence'), pe.NoClusterError, Status.NO_CLUSTER);
    // presence_redis_stop succeeds when no link runs, cluster or not.
    await e.stopRedis();
    e.close();
  }
});

test('cluster options: camelCase to the engine\'s config, checked', () => {
  const e = node('a', { tickMs: 10, downAfterMs: 11, staleAfterMs: 12, snapshotIntervalMs: 5, maxMessageBytes: 16384, maxNodes: 2 });
  assert.equal(typeof e.clusterStats().incarnation, 'bigint');
  assert.ok(e.clusterStats().incarnation > 2n ** 53n, 'milliseconds << 16: beyond a Number');
  e.close();
  const bad = (cluster, pattern) =>
    throwsStatus(() => new Engine({ cluster }), pe.ConfigError, Status.INVALID_CONFIG, pattern);
  bad({ node: 'a' }, /cluster\.secret must be a string of at least 16 bytes/);
  bad({ secret: SECRET }, /cluster\.node must be a string of 1 to 255 bytes/);
  bad({ node: 'a', secret: 'short' }, /cluster\.secret must be a string of at least 16 bytes/);
  bad({ node: '', secret: SECRET }, /cluster\.node must be a string of 1 to 255 bytes/);
  bad({ node: 'a', secret: SECRET, tickMs: 500, downAfterMs: 400 }, /down_after_ms must exceed/);
  bad({ node: 'a', secret: SECRET, tickMs: 0 }, /cluster\.tick_ms: invalid value: integer `0`, expected a positive integer/);
  bad({ node: 'a', secret: SECRET, staleAfterMs: 0 }, /cluster\.stale_after_ms: invalid value: integer `0`, expected a positive integer/);
  bad({ node: 'a', secret: SECRET, maxNodes: 1.5 }, /cluster\.max_nodes: invalid type: floating point `1\.5`, expected a positive integer/);
  bad({ node: 'a', secret: SECRET, maxMessageBytes: 100 }, /max_message_bytes must be at least/);
  bad({ node: 'a', secret: SECRET, tick: 5 }, /unknown cluster option "tick"; known cluster options: node, secret, tickMs/);
  bad({ node: 'a', secret: SECRET, tick_ms: 5 }, /unknown cluster option/);
  assert.throws(() => new Engine({ cluster: 'a' }), TypeError);
  assert.throws(() => new Engine({ cluster: [] }), TypeError);
  assert.throws(() => new Engine({ cluster: { node: 1, secret: SECRET } }), TypeError);
  assert.throws(() => new Engine({ cluster: { node: 'a', secret: SECRET, tickMs: '5' } }), TypeError);
  // Undefined fields keep their defaults.
  node('a', { tickMs: undefined, maxNodes: undefined }).close();
});

test('bad arguments: TypeError before C; closed engines throw EngineClosedError', async () => {
  const e = node('a');
  for (const m of ['text', 1, null, undefined, {}, [1, 2], new ArrayBuffer(4), new DataView(new ArrayBuffer(4)), new Uint16Array(2), new Int8Array(2)]) {
    assert.throws(() => e.clusterIngest(m), TypeError);
  }
  assert.equal(e.clusterStats().messagesReceived, 0, 'none reached the engine');
  for (const [url, channel] of [[1, 'c'], ['u', null], [undefined, 'c']]) assert.throws(() => e.startRedis(url, channel), TypeError);
  throwsStatus(() => e.startRedis('redis://127.0.0.1:1/\0', 'c'), pe.InvalidInputError, Status.INVALID_ARGUMENT, /NUL/);
  throwsStatus(() => e.startRedis('redis://127.0.0.1:1/', '\ud800'), pe.InvalidInputError, Status.INVALID_UTF8, /surrogate/);
  throwsStatus(() => e.startRedis('not a url', 'presence'), pe.InvalidInputError, Status.INVALID_ARGUMENT, /bad Redis URL/);
  throwsStatus(() => e.startRedis('redis://127.0.0.1:1/', ''), pe.InvalidInputError, Status.INVALID_ARGUMENT, /channel must not be empty/);
  e.close();
  for (const [name, call] of Object.entries({
    pendingTopics: () => e.pendingTopics(),
    clusterTick: () => e.clusterTick(),
    clusterIngest: () => e.clusterIngest(Buffer.alloc(1)),
    clusterLeave: () => e.clusterLeave(),
    clusterResync: () => e.clusterResync(),
    clusterStats: () => e.clusterStats(),
    startRedis: () => e.startRedis('redis://127.0.0.1:1/', 'c'),
  })) {
    assert.throws(call, pe.EngineClosedError, name);
  }
  await assert.rejects(e.stopRedis(), pe.EngineClosedError);
});

test('pendingTopics: O(1) count of topics to poll, behind hasPending()', () => {
  const a = node('a');
  assert.equal(a.pendingTopics(), 0);
  assert.equal(a.hasPending(), false);
  a.track('t1', 1);
  a.track('t1', 2);
  a.track('t2', 1);
  assert.equal(a.pendingTopics(), 2);
  assert.equal(a.stats().topicsPending, 2);
  assert.equal(a.hasPending(), true);
  a.pollDiff();
  assert.equal(a.pendingTopics(), 0);
  // A change that cancels out still counts until the poll (which returns nothing).
  a.track('t3', 1);
  a.untrack('t3', 1);
  assert.equal(a.pendingTopics(), 1);
  assert.deepEqual(a.pollDiff(), []);
  assert.equal(a.hasPending(), false);
  // Remote changes count too.
  const b = node('b');
  b.track('t4', 1);
  a.clusterIngest(b.clusterTick()[0]);
  assert.equal(a.pendingTopics(), 1);
  a.close();
  b.close();
});

test('startRedis to an absent server is not an error; stopRedis stops the link; close waits for a stop in flight', async () => {
  const e = node('a', { tickMs: 20, downAfterMs: 100 });
  // Nothing listens on port 1: the link keeps retrying in its thread.
  e.startRedis('redis://127.0.0.1:1/', 'presence');
  e.startRedis('redis://127.0.0.1:1/', 'presence'); // replaces the running link
  e.track('t', 1);
  await new Promise((r) => setTimeout(r, 60));
  // While Redis is away the node cannot hear the bus: it keeps its peers and publishes
  // nothing (the one message sent is the replaced link's departure).
  const away = e.clusterStats();
  assert.equal(away.linkUp, false);
  assert.equal(away.staleNodes, 0);
  assert.equal(away.messagesSent, 1);
  await e.stopRedis();
  await e.stopRedis(); // no link: resolves
  const sent = e.clusterStats().messagesSent;
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(e.clusterStats().messagesSent, sent, 'the link is stopped');

  // close() while a stopRedis() is in flight: closed at once, freed when the stop ends.
  e.startRedis('redis://127.0.0.1:1/', 'presence');
  const fd = e.fd;
  const stopping = e.stopRedis();
  e.close();
  assert.equal(e.closed, true);
  assert.throws(() => e.counts('t'), pe.EngineClosedError);
  assert.ok(fs.fstatSync(fd), 'not freed while the stop runs');
  await stopping;
  assert.throws(() => fs.fstatSync(fd), /EBADF/, 'freed once the stop ended');
});
