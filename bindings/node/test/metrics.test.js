'use strict';

// engine.metrics(): the Prometheus text format, read back by a strict parser of the
// exposition format and compared with stats() and clusterStats(), on one node and on the
// nodes of a cluster over an in-test bus (clusterTick / clusterIngest).

const test = require('node:test');
const assert = require('node:assert/strict');
const pe = require('..');

const { Engine } = pe;
const SECRET = 'a shared secret of the test cluster';

const ENGINE_FAMILIES = {
  presence_info: 'gauge',
  presence_topics: 'gauge',
  presence_presences: 'gauge',
  presence_heap_bytes: 'gauge',
  presence_topics_pending: 'gauge',
  presence_polls_total: 'counter',
  presence_expired_total: 'counter',
};
const CLUSTER_FAMILIES = {
  presence_cluster_info: 'gauge',
  presence_cluster_link_up: 'gauge',
  presence_cluster_nodes: 'gauge',
  presence_cluster_nodes_dropped_total: 'counter',
  presence_cluster_messages_sent_total: 'counter',
  presence_cluster_sent_bytes_total: 'counter',
  presence_cluster_messages_received_total: 'counter',
  presence_cluster_received_bytes_total: 'counter',
  presence_cluster_messages_rejected_total: 'counter',
  presence_cluster_snapshots_sent_total: 'counter',
  presence_cluster_snapshot_requests_sent_total: 'counter',
};

/** `a="x",b="y"` into an object, undoing the format's escapes. */
function parseLabels(text) {
  const labels = {};
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"(,|$)/y;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    assert.ok(m, `bad labels: ${text}`);
    labels[m[1]] = m[2].replace(/\\(["\\n])/g, (_, c) => (c === 'n' ? '\n' : c));
    at = re.lastIndex;
  }
  return labels;
}

/**
 * Parses the text format strictly: HELP then TYPE before a family's samples, each family
 * once, samples of that family only, a final line feed. Returns {types, value(name, labels)}.
 */
function parse(text) {
  assert.equal(typeof text, 'string');
  assert.ok(text.endsWith('\n'), 'a final line feed');
  const types = {};
  const samples = new Map();
  let current = null;
  for (const line of text.slice(0, -1).split('\n')) {
    let m;
    if ((m = /^# HELP ([a-z_]+) (.+)$/.exec(line))) {
      assert.ok(!(m[1] in types), `${m[1]} twice`);
      current = m[1];
      types[current] = null;
    } else if ((m = /^# TYPE ([a-z_]+) (counter|gauge)$/.exec(line))) {
      assert.equal(m[1], current, 'TYPE right after HELP');
      types[current] = m[2];
    } else {
      m = /^([a-z_]+)(?:\{(.*)\})? (\d+)$/.exec(line);
      assert.ok(m, `not a sample: ${JSON.stringify(line)}`);
      assert.equal(m[1], current, `a sample of ${m[1]} under ${current}`);
      assert.ok(types[current], 'a sample after TYPE');
      const labels = m[2] === undefined ? {} : parseLabels(m[2]);
      const key = `${m[1]}${JSON.stringify(Object.entries(labels).sort())}`;
      assert.ok(!samples.has(key), `${key} twice`);
      samples.set(key, Number(m[3]));
    }
  }
  return {
    types,
    value(name, labels = {}) {
      const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
      assert.ok(samples.has(key), `no sample ${key} in\n${text}`);
      return samples.get(key);
    },
  };
}

function checkStats(scrape, s) {
  assert.equal(scrape.value('presence_topics'), s.topics);
  assert.equal(scrape.value('presence_presences'), s.presences);
  assert.equal(scrape.value('presence_heap_bytes'), s.bytes);
  assert.equal(scrape.value('presence_topics_pending'), s.topicsPending);
  assert.equal(scrape.value('presence_polls_total'), s.polls);
  assert.equal(scrape.value('presence_expired_total'), s.expired);
}

for (const format of ['counts', 'phoenix']) {
  test(`${format}: a single node shows its stats and its polls`, () => {
    const e = new Engine({ format });
    const first = parse(e.metrics());
    assert.deepEqual(first.types, ENGINE_FAMILIES);
    assert.equal(first.value('presence_info', { version: pe.version(), format }), 1);
    assert.equal(first.value('presence_polls_total'), 0);
    checkStats(first, e.stats());

    for (let conn = 0; conn < 40; conn++) e.track(`room:${conn % 6}`, conn, `u${conn % 9}`);
    e.pollReady();
    e.untrackConn(0);
    e.untrackConn(6);
    e.pollDiff();
    e.pollDiffJson(); // empty: counted too
    e.track('room:9', 99);
    const s = e.stats();
    assert.deepEqual([s.topics, s.presences, s.topicsPending, s.polls], [7, 39, 1, 3]);
    checkStats(parse(e.metrics()), s);
    e.close();
  });
}

test('the polls of onDiff count too', async () => {
  const e = new Engine();
  e.track('t', 1);
  await new Promise((resolve) => {
    const stop = e.onDiff(() => {
      stop();
      resolve();
    }, { intervalMs: 5 });
  });
  assert.equal(e.stats().polls, 1);
  assert.equal(parse(e.metrics()).value('presence_polls_total'), 1);
  e.close();
});

function checkCluster(scrape, cs) {
  assert.equal(scrape.value('presence_cluster_info', { node: cs.node, incarnation: String(cs.incarnation) }), 1);
  assert.equal(scrape.value('presence_cluster_link_up'), cs.linkUp ? 1 : 0);
  assert.equal(scrape.value('presence_cluster_nodes', { state: 'live' }), cs.nodes - cs.staleNodes);
  assert.equal(scrape.value('presence_cluster_nodes', { state: 'stale' }), cs.staleNodes);
  const pairs = {
    presence_cluster_nodes_dropped_total: cs.nodesDropped,
    presence_cluster_messages_sent_total: cs.messagesSent,
    presence_cluster_sent_bytes_total: cs.bytesSent,
    presence_cluster_messages_received_total: cs.messagesReceived,
    presence_cluster_received_bytes_total: cs.bytesReceived,
    presence_cluster_snapshots_sent_total: cs.snapshotsSent,
    presence_cluster_snapshot_requests_sent_total: cs.snapshotRequestsSent,
  };
  for (const [name, want] of Object.entries(pairs)) assert.equal(scrape.value(name), want, name);
  const causes = {
    unauthenticated: cs.rejectedUnauthenticated,
    malformed: cs.rejectedMalformed,
    oversized: cs.rejectedOversized,
    replayed: cs.rejectedReplayed,
  };
  for (const [cause, want] of Object.entries(causes)) {
    assert.equal(scrape.value('presence_cluster_messages_rejected_total', { cause }), want, cause);
  }
}

test('cluster nodes show their cluster stats', () => {
  const node = (name) => new Engine({ cluster: { node: name, secret: SECRET } });
  const names = ['a', 'b "quoted" \\ name', 'c'];
  const [a, b, c] = names.map(node);
  // clusterStats() has no node name: the test knows each node's.
  const nameOf = new Map([[a, names[0]], [b, names[1]], [c, names[2]]]);
  a.track('video:1', 1, 'alice');
  a.track('video:1', 2);
  b.track('video:1', 1, 'bob');
  c.track('video:2', 1);
  for (let round = 0; round < 3; round++) {
    for (const sender of [a, b, c]) {
      for (const m of sender.clusterTick()) for (const e of [a, b, c]) e.clusterIngest(m);
    }
  }
  const replay = a.clusterTick()[0];
  b.clusterIngest(replay);
  assert.throws(() => b.clusterIngest(replay), pe.RejectedError);
  assert.throws(() => a.clusterIngest(Buffer.from('not a message of this cluster')), pe.RejectedError);
  assert.throws(() => a.clusterIngest(Buffer.alloc(300_000)), pe.RejectedError);
  a.clusterIngest(c.clusterLeave());
  c.close();
  a.pollReady();

  for (const n of [a, b]) {
    const text = n.metrics();
    const scrape = parse(text);
    const cs = { ...n.clusterStats(), node: nameOf.get(n) };
    assert.deepEqual(scrape.types, { ...ENGINE_FAMILIES, ...CLUSTER_FAMILIES });
    checkCluster(scrape, cs);
    checkStats(scrape, n.stats());
  }
  const sa = parse(a.metrics());
  assert.equal(sa.value('presence_cluster_nodes', { state: 'live' }), 1);
  assert.equal(sa.value('presence_cluster_nodes_dropped_total'), 1);
  assert.equal(sa.value('presence_cluster_messages_rejected_total', { cause: 'unauthenticated' }), 1);
  assert.equal(sa.value('presence_cluster_messages_rejected_total', { cause: 'oversized' }), 1);
  assert.equal(sa.value('presence_presences'), 2); // this node's own
  assert.deepEqual(a.counts('video:1'), { viewers: 1, users: 2, connections: 3 }); // the cluster's
  assert.equal(parse(b.metrics()).value('presence_cluster_messages_rejected_total', { cause: 'replayed' }), 1);
  a.close();
  b.close();
});
