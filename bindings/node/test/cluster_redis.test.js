'use strict';

// Two nodes in separate processes (test/fixtures/cluster-node.js), linked by
// startRedis() to a redis-server this test starts on a free loopback port and stops at
// the end. They converge to the exact cluster counts, remote changes come out of
// pollDiff(), and a node that leaves with stopRedis() is dropped by the other at once,
// long before downAfterMs.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { startRedis } = require('./helpers/redis');
const { Engine } = require('..');

const FIXTURE = path.join(__dirname, 'fixtures', 'cluster-node.js');
const TICK_MS = 50;
const DOWN_AFTER_MS = 3000;
// The bound for convergence. With 50 ms ticks it takes 0.05-0.3 s here (a delta or a
// snapshot round trip); 5 s leaves room for a loaded machine.
const CONVERGE_MS = 5000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A node process: ask(line) sends a command and resolves with its JSON answer. */
function startNode(name, url, channel) {
  const child = spawn(process.execPath, [FIXTURE, name, url, channel], {
    env: { ...process.env, TICK_MS: String(TICK_MS), DOWN_AFTER_MS: String(DOWN_AFTER_MS) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const waiting = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const w = waiting.shift();
    if (w) w.resolve(JSON.parse(line));
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then((e) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`node ${name} exited: ${JSON.stringify(e)}`));
  });
  return {
    name,
    child,
    exited,
    ask(line) {
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        child.stdin.write(`${line}\n`);
      });
    },
  };
}

/** Polls every node until each reports `want` for `topic`; returns the time it took. */
async function converge(nodes, topic, want, limit = CONVERGE_MS) {
  const started = Date.now();
  for (;;) {
    const seen = await Promise.all(nodes.map((n) => n.ask(`counts ${topic}`)));
    if (seen.every((c) => JSON.stringify(c) === JSON.stringify(want))) return Date.now() - started;
    if (Date.now() - started > limit) {
      assert.fail(`no convergence to ${JSON.stringify(want)} within ${limit} ms: ${JSON.stringify(seen)}`);
    }
    await sleep(10);
  }
}

test('two processes linked by startRedis converge, and a stopRedis() leave is seen at once', { timeout: 60_000 }, async (t) => {
  const redis = await startRedis();
  const nodes = [];
  t.after(async () => {
    for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.exited));
    await redis.stop();
    assert.ok(redis.child.exitCode !== null || redis.child.signalCode !== null, 'redis-server stopped');
  });
  const a = startNode('a', redis.url, 'presence-node-test');
  const b = startNode('b', redis.url, 'presence-node-test');
  nodes.push(a, b);

  // alice on both nodes counts once; bob on a; an anonymous viewer and carol on b.
  for (const [node, line] of [
    [a, 'track video:1 1 alice'],
    [a, 'track video:1 2 bob'],
    [b, 'track video:1 1 alice'],
    [b, 'track video:1 2'],
    [b, 'track video:1 3 carol'],
  ]) {
    assert.deepEqual(await node.ask(line), { ok: true }, `${node.name}: ${line}`);
  }
  const took = await converge([a, b], 'video:1', { viewers: 1, users: 3, connections: 5 });
  t.diagnostic(`converged in ${took} ms`);

  // Remote changes come out of pollDiff like local ones.
  const [diff] = await a.ask('poll');
  assert.equal(diff.topic, 'video:1');
  assert.deepEqual(diff.counts, { viewers: 1, users: 3, connections: 5 });
  assert.deepEqual(diff.payload.joins, { viewers: { count: 1 }, users: { count: 3 } });

  assert.deepEqual(await b.ask('untrack video:1 3'), { ok: true });
  await converge([a, b], 'video:1', { viewers: 1, users: 2, connections: 4 });
  assert.deepEqual((await a.ask('poll')).map((d) => d.counts), [{ viewers: 1, users: 2, connections: 4 }]);

  const statsA = await a.ask('stats');
  const statsB = await b.ask('stats');
  assert.equal(statsA.nodes, 1);
  assert.equal(statsB.nodes, 1);
  assert.notEqual(statsA.incarnation, statsB.incarnation);
  assert.ok(statsA.messagesSent > 0 && statsA.messagesReceived > 0, JSON.stringify(statsA));
  assert.equal(statsA.rejectedUnauthenticated + statsA.rejectedMalformed + statsA.rejectedReplayed, 0);

  // b leaves cleanly: stopRedis() publishes its departure, a drops it well before
  // downAfterMs would have.
  const leftAt = Date.now();
  assert.deepEqual(await b.ask('quit'), { ok: true });
  assert.deepEqual(await b.exited, { code: 0, signal: null });
  const dropped = await converge([a], 'video:1', { viewers: 0, users: 2, connections: 2 }, DOWN_AFTER_MS);
  t.diagnostic(`b dropped ${Date.now() - leftAt} ms after it left`);
  assert.ok(dropped < DOWN_AFTER_MS / 2, `dropped after ${dropped} ms: the departure message, not the timeout`);
  const after = await a.ask('stats');
  assert.equal(after.nodes, 0);
  assert.equal(after.nodesDropped, 1);

  assert.deepEqual(await a.ask('quit'), { ok: true });
  assert.deepEqual(await a.exited, { code: 0, signal: null });
});

test('stopRedis() waits for the link thread off the event loop', { timeout: 30_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  // The link ticks at once, then waits for messages until the next tick, 500 ms later;
  // a stop asked for meanwhile ends when that wait does.
  const e = new Engine({ cluster: { node: 'solo', secret: 'node test cluster secret', tickMs: 500, downAfterMs: 2000 } });
  e.startRedis(redis.url, 'presence-node-test-stop');
  await sleep(100);
  let timers = 0;
  const timer = setInterval(() => timers++, 1);
  const started = Date.now();
  await e.stopRedis();
  const took = Date.now() - started;
  clearInterval(timer);
  t.diagnostic(`stopRedis took ${took} ms; ${timers} timer callbacks ran meanwhile`);
  assert.ok(took >= 100, `the stop waited for the link's thread (${took} ms)`);
  assert.ok(timers >= 20, `the event loop ran during the stop (${timers} timer callbacks in ${took} ms)`);
  const sent = e.clusterStats().messagesSent;
  await sleep(600);
  assert.equal(e.clusterStats().messagesSent, sent, 'no tick after the stop');
  e.close();
});
