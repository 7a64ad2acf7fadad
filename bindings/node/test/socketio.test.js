'use strict';

// presence-engine/socket.io with a real Socket.IO 4 server and socket.io-client clients
// over loopback WebSockets: a socket joining a presence room is tracked under its key,
// the joiner gets the room's state with its seq, the room gets one diff per window with
// consecutive seqs, and leaving the room or disconnecting (cleanly or not) untracks it.
// Then two server processes, each with its own engine linked through a real redis-server
// (the engine's Redis link), without and with @socket.io/redis-adapter.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { Server } = require('socket.io');
const { io: connect } = require('socket.io-client');
const { Engine } = require('..');
const { attachPresence } = require('../socket.io');
const { startRedis } = require('./helpers/redis');
const { CountsView, sleep, startChild, waitFor } = require('./helpers/presence-clients');

const WINDOW_MS = 30;

/** A socket.io-client socket that feeds a CountsView per room from the pushes it gets. */
function client(port, user, name = user || 'viewer') {
  const socket = connect(`http://127.0.0.1:${port}`, {
    transports: ['websocket'],
    reconnection: false,
    auth: user ? { user } : {},
  });
  const views = new Map();
  const errors = [];
  const view = (topic) => {
    if (!views.has(topic)) views.set(topic, new CountsView(`${name} in ${topic}`));
    return views.get(topic);
  };
  socket.on('presence_state', (msg) => view(msg.topic).state(msg));
  socket.on('presence_diff', (msg) => view(msg.topic).diff(msg));
  socket.on('presence_error', (msg) => errors.push(msg));
  const connected = new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return { socket, view, errors, connected, watch: (topic) => socket.emit('watch', topic) };
}

async function startServer(t, engineOptions = {}, presenceOptions = {}) {
  const engine = new Engine(engineOptions);
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  const presence = attachPresence(io, engine, {
    key: (socket) => socket.handshake.auth.user,
    rooms: /^video:/,
    intervalMs: WINDOW_MS,
    ...presenceOptions,
  });
  io.on('connection', (socket) => {
    socket.on('watch', (topic) => socket.join(topic));
    socket.on('unwatch', (topic) => socket.leave(topic));
    socket.on('lobby', () => socket.join('lobby'));
  });
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const clients = [];
  t.after(async () => {
    for (const c of clients) c.socket.disconnect();
    presence.close();
    await new Promise((resolve) => io.close(resolve));
    engine.close();
  });
  const open = async (user, name) => {
    const c = client(httpServer.address().port, user, name);
    clients.push(c);
    await c.connected;
    return c;
  };
  return { engine, io, presence, open };
}

const settled = async (engine, topic, connections) => {
  await waitFor(
    () => engine.counts(topic).connections === connections && engine.pendingTopics() === 0,
    () => `${topic}: ${JSON.stringify(engine.counts(topic))}, expected ${connections} connections, nothing pending`
  );
  await sleep(3 * WINDOW_MS);
};

test('a joiner gets the state with its seq, then every window diff of its room', async (t) => {
  const { engine, open } = await startServer(t);
  const alice = await open('alice');
  alice.watch('video:1');
  await alice.view('video:1').expect(1, 0);
  const first = alice.view('video:1');
  assert.equal(first.states, 1);
  // The state alice got was as of the last poll (nothing yet: seq 0), her own join came as diff 1.
  assert.equal(first.seq, 1);
  assert.equal(first.diffs, 1);

  const viewer = await open(null);
  viewer.watch('video:1');
  await viewer.view('video:1').expect(1, 1);
  await alice.view('video:1').expect(1, 1);
  await settled(engine, 'video:1', 2);
  assert.equal(viewer.view('video:1').seq, engine.state('video:1').seq, "the viewer's seq is the engine's");
  assert.equal(alice.view('video:1').seq, engine.state('video:1').seq);
  assert.deepEqual(engine.counts('video:1'), { viewers: 1, users: 1, connections: 2 });
});

test('a user with two tabs counts once; a room leave and a socket disconnect untrack', async (t) => {
  const { engine, open } = await startServer(t);
  const watcher = await open(null, 'watcher');
  watcher.watch('video:2');
  const tab1 = await open('bob', 'bob tab 1');
  const tab2 = await open('bob', 'bob tab 2');
  tab1.watch('video:2');
  tab2.watch('video:2');
  await settled(engine, 'video:2', 3);
  await watcher.view('video:2').expect(1, 1);
  await tab2.view('video:2').expect(1, 1);
  const seq = engine.state('video:2').seq;

  // One of bob's tabs leaves the room: bob is still there, and counts format sends nothing.
  tab1.socket.emit('unwatch', 'video:2');
  await settled(engine, 'video:2', 2);
  assert.equal(engine.state('video:2').seq, seq, 'a diff for a change of connections alone');
  await tab2.view('video:2').expect(1, 1);

  // The other tab's connection dies without a clean leave (no close frame, no disconnect packet).
  tab2.socket.io.engine.transport.ws.terminate();
  await settled(engine, 'video:2', 1);
  await watcher.view('video:2').expect(0, 1);
  assert.deepEqual(engine.counts('video:2'), { viewers: 1, users: 0, connections: 1 });

  // A clean disconnect.
  watcher.socket.disconnect();
  await waitFor(() => engine.counts('video:2').connections === 0, () => JSON.stringify(engine.counts('video:2')));
});

test('only presence rooms are tracked, and the socket\'s rooms map to one engine conn', async (t) => {
  const { engine, io, presence, open } = await startServer(t);
  const carol = await open('carol');
  carol.socket.emit('lobby');
  carol.watch('video:3');
  carol.watch('video:4');
  await settled(engine, 'video:4', 1);
  assert.deepEqual(engine.counts('lobby'), { viewers: 0, users: 0, connections: 0 });
  const [id] = io.sockets.sockets.keys();
  const conn = presence.connOf(id);
  assert.ok(Number.isSafeInteger(conn));
  // Both rooms under one conn: untracking that conn empties both.
  assert.equal(engine.untrackConn(conn), 2);
});

test('a presence the engine refuses is reported to the socket, which is taken out of the room', async (t) => {
  const { engine, io, open } = await startServer(t, { maxKeyBytes: 8 });
  const long = await open('a-name-longer-than-eight-bytes', 'long');
  long.watch('video:5');
  await waitFor(() => long.errors.length === 1, () => 'no presence_error');
  assert.deepEqual(long.errors[0], { topic: 'video:5', reason: 'too_long' });
  assert.equal(io.sockets.adapter.rooms.has('video:5'), false);
  assert.deepEqual(engine.counts('video:5'), { viewers: 0, users: 0, connections: 0 });
});

for (const adapter of ['the engine link alone', '@socket.io/redis-adapter']) {
  test(`two Socket.IO processes over redis-server (${adapter}) count the whole cluster once`, { timeout: 60000 }, async (t) => {
    const redis = await startRedis();
    const env = (node) => ({
      NODE: node,
      REDIS: redis.url,
      CHANNEL: `presence-sio-${adapter.length}`,
      ...(adapter.startsWith('@') && { ADAPTER: 'redis' }),
    });
    const started = await Promise.allSettled([startChild('socketio-server.js', env('a')), startChild('socketio-server.js', env('b'))]);
    const servers = started.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    const clients = [];
    // The processes stop before their Redis does, all of them whatever one reports: a
    // process left running would keep this test file from ever exiting.
    t.after(async () => {
      for (const c of clients) c.socket.disconnect();
      const codes = await Promise.all(servers.map((s) => s.stop()));
      await redis.stop();
      codes.forEach((code, i) => assert.equal(code, 0, servers[i].output()));
    });
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const [a, b] = servers;
    const open = async (server, user, name) => {
      const c = client(server.port, user, name);
      clients.push(c);
      await c.connected;
      return c;
    };
    const aliceA = await open(a, 'alice', 'alice on a');
    const viewerB = await open(b, null, 'viewer on b');
    aliceA.watch('video:1');
    viewerB.watch('video:1');
    await aliceA.view('video:1').expect(1, 1);
    await viewerB.view('video:1').expect(1, 1);
    // alice in a second tab, on the other process: still one user.
    const aliceB = await open(b, 'alice', 'alice on b');
    aliceB.watch('video:1');
    await aliceB.view('video:1').expect(1, 1);
    const bobB = await open(b, 'bob', 'bob on b');
    bobB.watch('video:1');
    for (const c of [aliceA, viewerB, aliceB, bobB]) await c.view('video:1').expect(2, 1);
    // alice's tab on a dies without a clean leave: she stays (her tab on b), bob leaves the room.
    aliceA.socket.io.engine.transport.ws.terminate();
    bobB.socket.emit('unwatch', 'video:1');
    for (const c of [viewerB, aliceB]) await c.view('video:1').expect(1, 1);

    if (adapter.startsWith('@')) {
      // Socket.IO's own broadcasts still cross processes through the adapter.
      const got = new Promise((resolve) => aliceB.socket.once('chat', resolve));
      const carolA = await open(a, 'carol', 'carol on a');
      carolA.watch('video:1');
      await aliceB.view('video:1').expect(2, 1);
      carolA.socket.emit('chat', 'video:1', 'hello from a');
      assert.equal(await got, 'hello from a');
    }
    // Every diff came once, in order (CountsView checks consecutive seqs): no process
    // relayed its diffs to the other's sockets.
    for (const c of [viewerB, aliceB]) assert.ok(c.view('video:1').diffs >= 2, `${c.view('video:1').name} got diffs`);
  });
}
