'use strict';

// Runs the README's quick start (the first ```js block) as a server on a loopback port
// and drives it with ws clients, applying the diffs it pushes like a client would. Then
// the same with each cluster example of the README in place of its `const engine` line:
// two servers, linked by Redis (a redis-server of the test's own) or by the UDP bus,
// whose clients see the users of both.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const dgram = require('node:dgram');
const { spawn } = require('node:child_process');
const WebSocket = require('ws');
const { applyCountsDiff } = require('./helpers/model');
const { startRedis } = require('./helpers/redis');

const ROOT = path.join(__dirname, '..');

function quickStart() {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const m = /```js\n([\s\S]*?)```/.exec(section);
  assert.ok(m, 'the quick start has a js block');
  return m[1];
}

/** The first ```js block after `heading` in the README. */
function example(heading) {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `the README has ${heading}`);
  const m = /```js\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, `${heading} has a js block`);
  return m[1];
}

/** The quick start with its `const engine = ...` line replaced by a cluster example. */
function clusterServer(snippet) {
  const source = quickStart();
  const line = /^const engine = new Engine\(.*$/gm;
  assert.equal(source.match(line).length, 1, 'the quick start has one engine line');
  return source.replace(line, () => snippet);
}

/** Starts a server script; resolves with {child, port, exited} once it is listening. */
async function startServer(t, script, env) {
  const child = spawn(process.execPath, ['-e', script], {
    cwd: ROOT, // resolves 'presence-engine' (the package itself) and 'ws'
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    exited.then((e) => reject(new Error(`server exited: ${JSON.stringify(e)}`)));
  });
  return { child, port, exited };
}

/** A UDP port that was free a moment ago on 127.0.0.1. */
function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    sock.on('error', reject);
    sock.bind(0, '127.0.0.1', () => {
      const { port } = sock.address();
      sock.close(() => resolve(port));
    });
  });
}

/** A client that keeps its topic's state from presence_state + presence_diff messages. */
function client(port, query) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/?${query}`);
  ws.on('error', () => {}); // a server stopped under a client: its close event is enough
  const c = { ws, state: null, seq: 0, waiters: [] };
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    if (msg.event === 'presence_state') {
      c.state = msg.payload;
      c.seq = msg.seq;
    } else {
      assert.equal(msg.event, 'presence_diff');
      assert.equal(msg.seq, c.seq + 1, 'no gap in seq');
      c.state = applyCountsDiff(c.state, msg.payload);
      c.seq = msg.seq;
    }
    c.waiters = c.waiters.filter((w) => !w());
  });
  c.until = (pred, what) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; state ${JSON.stringify(c.state)}`)), 10_000);
      const check = () => {
        if (c.state && pred(c.state)) {
          clearTimeout(timer);
          resolve();
          return true;
        }
        return false;
      };
      if (!check()) c.waiters.push(check);
    });
  return c;
}

test('the README quick start serves presence over ws', { timeout: 60_000 }, async (t) => {
  const server = spawn(process.execPath, ['-e', quickStart()], {
    cwd: ROOT, // resolves 'presence-engine' (the package itself) and 'ws'
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => server.kill());
  const port = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });

  const alice = client(port, 'topic=video:42&user=alice');
  await alice.until((s) => s.users.count === 1 && s.viewers.count === 0, 'alice to see herself');
  const anon = client(port, 'topic=video:42');
  const alice2 = client(port, 'topic=video:42&user=alice');
  await alice.until((s) => s.users.count === 1 && s.viewers.count === 1, 'a viewer, alice counted once');
  await anon.until((s) => s.users.count === 1 && s.viewers.count === 1, 'the viewer to catch up');
  const other = client(port, 'topic=other&user=bob');
  await other.until((s) => s.users.count === 1, 'bob in his own topic');
  anon.ws.close();
  alice2.ws.close();
  await alice.until((s) => s.users.count === 1 && s.viewers.count === 0, 'the viewer to leave');
  assert.deepEqual(alice.state, { viewers: { count: 0 }, users: { count: 1 } });
  assert.deepEqual(other.state, { viewers: { count: 0 }, users: { count: 1 } });
  alice.ws.close();
  other.ws.close();
});

const SECRET = 'the README cluster test secret';

/**
 * Two nodes of a cluster example: a page on each sees the users of both, an anonymous
 * viewer leaving on one is seen on the other, and a node stopped with SIGTERM (the
 * example's handler announces the departure) is dropped by the other at once.
 */
async function twoNodes(t, heading, envOf) {
  const script = clusterServer(example(heading));
  const env = await envOf();
  const one = await startServer(t, script, { NODE_NAME: 'one', CLUSTER_SECRET: SECRET, ...env[0] });
  const two = await startServer(t, script, { NODE_NAME: 'two', CLUSTER_SECRET: SECRET, ...env[1] });
  const clients = [];
  t.after(() => clients.forEach((c) => c.ws.close()));
  const open = (server, query) => {
    const c = client(server.port, query);
    clients.push(c);
    return c;
  };
  const alice = open(one, 'topic=video:42&user=alice');
  open(two, 'topic=video:42&user=alice');
  const viewer = open(two, 'topic=video:42');
  open(two, 'topic=video:42&user=bob');
  const both = (s) => s.users.count === 2 && s.viewers.count === 1;
  await alice.until(both, 'alice on node one to see bob and the viewer of node two (alice counted once)');
  await viewer.until(both, 'the viewer on node two to see the same');
  viewer.ws.close();
  await alice.until((s) => s.users.count === 2 && s.viewers.count === 0, 'the viewer to leave');

  const stoppedAt = Date.now();
  two.child.kill('SIGTERM');
  assert.deepEqual(await two.exited, { code: 0, signal: null }, 'the SIGTERM handler ran');
  await alice.until((s) => s.users.count === 1 && s.viewers.count === 0, 'bob to leave with node two');
  const took = Date.now() - stoppedAt;
  // downAfterMs is 3000 ms: well before, so it was the departure message.
  assert.ok(took < 2000, `node two dropped after ${took} ms`);
  t.diagnostic(`node two dropped ${took} ms after SIGTERM`);
  assert.deepEqual(alice.state, { viewers: { count: 0 }, users: { count: 1 } });
}

test('the README Redis example: two nodes share presence', { timeout: 60_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  await twoNodes(t, '### With Redis', async () => [{ REDIS_URL: redis.url }, { REDIS_URL: redis.url }]);
});

test('the README own-bus example: two nodes share presence over UDP', { timeout: 60_000 }, async (t) => {
  await twoNodes(t, '### Over your own bus', async () => {
    const p1 = await freeUdpPort();
    let p2 = await freeUdpPort();
    while (p2 === p1) p2 = await freeUdpPort();
    return [
      { BUS_HOST: '127.0.0.1', BUS_PORT: String(p1), PEERS: `127.0.0.1:${p2}` },
      { BUS_HOST: '127.0.0.1', BUS_PORT: String(p2), PEERS: `127.0.0.1:${p1}` },
    ];
  });
});

test('the README HTTP endpoints answer countsMany and metrics', { timeout: 60_000 }, async (t) => {
  const { port } = await startServer(t, example('## HTTP endpoints: counts of many channels, and metrics'), {});
  const get = async (path) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
  };
  let r = await get('/channels?topic=video:1&topic=video:2');
  assert.equal(r.status, 200);
  assert.equal(r.type, 'application/json');
  assert.deepEqual(JSON.parse(r.body), { channels: { 'video:1': { user_count: 1 }, 'video:2': { user_count: 0 } } });
  r = await get('/channels?topic=video:1&topic=');
  assert.equal(r.status, 400);
  assert.match(r.body, /^topics\[1\]: /);
  r = await get('/metrics');
  assert.equal(r.status, 200);
  assert.equal(r.type, 'text/plain; version=0.0.4');
  assert.match(r.body, /^presence_presences 2$/m);
  assert.match(r.body, /^presence_topics 1$/m);
  assert.match(r.body, /^# TYPE presence_polls_total counter$/m);
  assert.equal((await get('/elsewhere')).status, 404);
});
