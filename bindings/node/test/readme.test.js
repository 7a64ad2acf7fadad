'use strict';

// Runs the README's quick start (the first ```js block) as a server on a loopback port
// and drives it with two ws clients, applying the diffs it pushes like a client would.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const WebSocket = require('ws');
const { applyCountsDiff } = require('./helpers/model');

const ROOT = path.join(__dirname, '..');

function quickStart() {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const m = /```js\n([\s\S]*?)```/.exec(section);
  assert.ok(m, 'the quick start has a js block');
  return m[1];
}

/** A client that keeps its topic's state from presence_state + presence_diff messages. */
function client(port, query) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/?${query}`);
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
