'use strict';

// The top README's Socket.IO and Phoenix endpoint servers, run as written (each in a
// child process on a free loopback port, as the snippet runner runs them) and driven by
// real clients: socket.io-client, and the official phoenix client with Presence.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { io: connect } = require('socket.io-client');
const { Socket, Presence } = require('phoenix');
const WebSocket = require('ws');
const { waitFor } = require('./helpers/presence-clients');

const README = path.join(__dirname, '..', '..', '..', 'README.md');

/** The first ```js block after `heading` in the top README. */
function block(heading) {
  const text = fs.readFileSync(README, 'utf8');
  const at = text.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `the README has ${heading}`);
  const m = /```js\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(m, `${heading} has a js block`);
  return m[1];
}

/** Runs `code` from a file inside this package (so that `presence-engine/...` resolves to
 * it) with PORT=0; resolves {port, stop()} once it prints "listening on <port>". */
function run(t, code) {
  const dir = fs.mkdtempSync(path.join(__dirname, '.readme-'));
  const file = path.join(dir, 'server.cjs');
  fs.writeFileSync(file, code);
  const child = spawn(process.execPath, [file], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (d) => {
      output += d;
      const m = /listening on (\d+)/.exec(output);
      if (m) resolve(Number(m[1]));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (output += d));
    child.once('exit', (code) => reject(new Error(`the README server exited with ${code}:\n${output}`)));
  });
}

test('the README Socket.IO server: joiners get the state, rooms get the diffs', async (t) => {
  const port = await run(t, block('## Add presence to a Socket.IO server'));
  const open = (user) => {
    const socket = connect(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, auth: user ? { user } : {} });
    t.after(() => socket.disconnect());
    return socket;
  };
  const alice = open('alice');
  const got = { states: [], diffs: [] };
  alice.on('presence_state', (m) => got.states.push(m));
  alice.on('presence_diff', (m) => got.diffs.push(m));
  alice.emit('watch', 'video:42');
  const viewer = open(null);
  viewer.emit('watch', 'video:42');
  const counts = () => {
    const c = { users: got.states[0]?.payload.users.count ?? 0, viewers: got.states[0]?.payload.viewers.count ?? 0 };
    for (const { payload } of got.diffs) {
      for (const g of ['users', 'viewers']) c[g] += (payload.joins[g]?.count ?? 0) - (payload.leaves[g]?.count ?? 0);
    }
    return c;
  };
  await waitFor(() => counts().users === 1 && counts().viewers === 1, () => JSON.stringify(got));
  assert.equal(got.states.length, 1);
  assert.equal(got.states[0].topic, 'video:42');
  assert.deepEqual(got.diffs.map((d) => d.seq), got.diffs.map((_, i) => got.states[0].seq + i + 1));
  viewer.disconnect();
  await waitFor(() => counts().viewers === 0, () => JSON.stringify(got));
});

test('the README Phoenix endpoint: the official client and Presence, unchanged', async (t) => {
  const port = await run(t, block('### Node'));
  const socket = new Socket(`ws://127.0.0.1:${port}/socket`, { transport: WebSocket });
  socket.connect();
  t.after(() => socket.disconnect());
  const channel = socket.channel('room:42', { user: 'alice' });
  const presence = new Presence(channel);
  const reply = await new Promise((resolve, reject) => channel.join().receive('ok', resolve).receive('error', reject));
  assert.deepEqual(reply, { seq: 0, node: null });
  await waitFor(() => presence.list((key) => key).join() === 'alice', () => JSON.stringify(presence.state));
});
