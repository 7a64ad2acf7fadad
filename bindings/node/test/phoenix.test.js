'use strict';

// presence-engine/phoenix with the official `phoenix` client (Socket + Channel +
// Presence, unchanged, over `ws` in Node) against a real server on a loopback port: the
// join reply carries the seq of the state that follows and the node id, the state and
// every window's diff arrive as presence_state / presence_diff pushes, in phoenix format
// (Presence.list) and in counts format; refused joins, heartbeats, leaves and closes; and
// a server restart, after which phoenix.js reconnects and rejoins by itself.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { Socket, Presence } = require('phoenix');
const WebSocket = require('ws');
const { Engine } = require('..');
const { attachPhoenix, JoinRefused } = require('../phoenix');
const { CountsView, sleep, waitFor } = require('./helpers/presence-clients');

const WINDOW_MS = 30;

async function startServer({ format = 'phoenix', port = 0, node = null, engineOptions = {}, key } = {}) {
  const engine = new Engine({ format, ...engineOptions });
  const server = http.createServer();
  const endpoint = attachPhoenix(server, engine, { intervalMs: WINDOW_MS, node, ...(key && { key }) });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const stop = async () => {
    endpoint.close();
    await new Promise((resolve) => server.close(resolve));
    engine.close();
  };
  return { engine, server, port: server.address().port, stop };
}

function phoenixSocket(port) {
  const socket = new Socket(`ws://127.0.0.1:${port}/socket`, {
    transport: WebSocket,
    reconnectAfterMs: () => 50,
    rejoinAfterMs: () => 50,
  });
  socket.connect();
  return socket;
}

/** Joins `topic` as `user`; resolves {channel, reply} with the join's reply, or rejects with the error reply. */
function join(socket, topic, user) {
  const channel = socket.channel(topic, user ? { user } : {});
  return {
    channel,
    joined: new Promise((resolve, reject) => {
      channel
        .join()
        .receive('ok', (reply) => resolve(reply))
        .receive('error', (reply) => reject(Object.assign(new Error('join refused'), { reply })));
    }),
  };
}

const names = (presence) => presence.list((key, { metas }) => `${key}:${metas.length}`).sort();

test('phoenix format: Presence lists who is there, from the state and every diff', async (t) => {
  const server = await startServer({ node: 'n1' });
  const sockets = [phoenixSocket(server.port), phoenixSocket(server.port), phoenixSocket(server.port)];
  t.after(async () => {
    for (const s of sockets) s.disconnect();
    await server.stop();
  });

  const alice = join(sockets[0], 'room:1', 'alice');
  const alicePresence = new Presence(alice.channel);
  const reply = await alice.joined;
  assert.deepEqual(reply, { seq: 0, node: 'n1' }, 'the join reply: the seq of the state that follows, the node');
  await waitFor(() => names(alicePresence).join() === 'alice:1', () => names(alicePresence).join());

  const bob = join(sockets[1], 'room:1', 'bob');
  const bobPresence = new Presence(bob.channel);
  const viewer = join(sockets[2], 'room:1', null);
  const viewerPresence = new Presence(viewer.channel);
  await Promise.all([bob.joined, viewer.joined]);
  for (const p of [alicePresence, bobPresence, viewerPresence]) {
    await waitFor(
      () => names(p).join() === 'alice:1,bob:1,viewers:1',
      () => `presence list ${names(p).join()}`
    );
  }
  // bob's second tab: one more meta under bob.
  const bob2 = join(sockets[2], 'room:1', 'bob');
  // Same socket, same topic: the second join replaces the viewer's channel.
  const bob2Presence = new Presence(bob2.channel);
  await bob2.joined;
  await waitFor(() => names(alicePresence).join() === 'alice:1,bob:2', () => names(alicePresence).join());
  await waitFor(() => names(bob2Presence).join() === 'alice:1,bob:2', () => names(bob2Presence).join());

  // phx_leave untracks and is answered ok.
  const left = new Promise((resolve) => alice.channel.leave().receive('ok', resolve));
  await left;
  await waitFor(() => names(bobPresence).join() === 'bob:2', () => names(bobPresence).join());
  assert.deepEqual(server.engine.counts('room:1'), { viewers: 0, users: 1, connections: 2 });

  // A closed socket untracks everything of it.
  sockets[1].disconnect();
  await waitFor(() => names(bob2Presence).join() === 'bob:1', () => names(bob2Presence).join());
  sockets[2].disconnect();
  await waitFor(() => server.engine.counts('room:1').connections === 0, () => JSON.stringify(server.engine.counts('room:1')));
});

test('counts format: presence_state and presence_diff pushes give the engine\'s counts', async (t) => {
  const server = await startServer({ format: 'counts' });
  const sockets = [];
  t.after(async () => {
    for (const s of sockets) s.disconnect();
    await server.stop();
  });
  const open = async (user, name) => {
    const socket = phoenixSocket(server.port);
    sockets.push(socket);
    const { channel, joined } = join(socket, 'video:9', user);
    const view = new CountsView(name);
    // The seed article's client: channel.on for each event, nothing else; the seq of
    // the state is the join reply's, and each diff is the next.
    channel.joinPush.receive('ok', (reply) => (view.replySeq = reply.seq));
    channel.on('presence_state', (payload) => view.state({ seq: view.replySeq, payload }));
    channel.on('presence_diff', (payload) => view.diff({ seq: view.seq + 1, payload }));
    const reply = await joined;
    assert.equal(reply.node, null);
    return view;
  };
  const views = [await open('alice', 'alice'), await open(null, 'viewer'), await open('alice', "alice's tab 2")];
  for (const v of views) await v.expect(1, 1);
  await sleep(3 * WINDOW_MS);
  assert.deepEqual(server.engine.counts('video:9'), { viewers: 1, users: 1, connections: 3 });
  for (const v of views) assert.equal(v.seq, server.engine.state('video:9').seq, `${v.name}: seq`);
});

test('refused joins reply an error with the reason; heartbeats and stray frames are answered', async (t) => {
  const server = await startServer({
    engineOptions: { maxKeyBytes: 8 },
    key: (topic, params) => {
      if (topic === 'boom') throw new TypeError('a bug in the key function');
      if (!topic.startsWith('room:')) throw new JoinRefused('unknown topic');
      return params.user || null;
    },
  });
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/socket/websocket?vsn=2.0.0`);
  t.after(async () => {
    ws.terminate();
    await server.stop();
  });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const frames = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
  const next = async (n) => {
    await waitFor(() => frames.length >= n, () => JSON.stringify(frames));
    return frames[n - 1];
  };
  ws.send(JSON.stringify(['1', '1', 'room:1', 'phx_join', { user: 'a-name-longer-than-eight' }]));
  assert.deepEqual(await next(1), ['1', '1', 'room:1', 'phx_reply', { status: 'error', response: { reason: 'too_long' } }]);
  ws.send(JSON.stringify(['2', '2', 'lobby', 'phx_join', {}]));
  assert.deepEqual(await next(2), ['2', '2', 'lobby', 'phx_reply', { status: 'error', response: { reason: 'unknown topic' } }]);
  ws.send(JSON.stringify([null, '3', 'phoenix', 'heartbeat', {}]));
  assert.deepEqual(await next(3), [null, '3', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
  ws.send(JSON.stringify([null, '4', 'room:2', 'shout', {}]));
  assert.deepEqual(await next(4), [null, '4', 'room:2', 'phx_reply', { status: 'error', response: { reason: 'unmatched topic' } }]);
  // An empty user is an anonymous viewer; the state comes with the channel's join_ref.
  ws.send(JSON.stringify(['5', '5', 'room:3', 'phx_join', { user: '' }]));
  assert.deepEqual(await next(5), ['5', '5', 'room:3', 'phx_reply', { status: 'ok', response: { seq: 0, node: null } }]);
  assert.deepEqual(await next(6), ['5', null, 'room:3', 'presence_state', {}]);
  assert.deepEqual((await next(7)).slice(0, 4), [null, null, 'room:3', 'presence_diff']);
  assert.deepEqual(Object.keys(frames[6][4].joins), ['viewers']);
  assert.equal(server.engine.counts('room:1').connections, 0, 'a refused join tracks nothing');
  // A key function that throws anything else refuses that join and the server goes on.
  ws.send(JSON.stringify(['8', '8', 'boom', 'phx_join', {}]));
  assert.deepEqual(await next(8), ['8', '8', 'boom', 'phx_reply', { status: 'error', response: { reason: 'join failed' } }]);
  ws.send(JSON.stringify([null, '9', 'phoenix', 'heartbeat', {}]));
  assert.deepEqual(await next(9), [null, '9', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
});

test('after a server restart, phoenix.js reconnects and rejoins, and Presence shows the new state', { timeout: 30000 }, async (t) => {
  for (const format of ['phoenix', 'counts']) {
    let server = await startServer({ format });
    const port = server.port;
    const socket = phoenixSocket(port);
    const other = phoenixSocket(port);
    t.after(() => {
      socket.disconnect();
      other.disconnect();
    });
    const { channel, joined } = join(socket, 'room:r', 'alice');
    const presence = format === 'phoenix' ? new Presence(channel) : null;
    const counts = new CountsView(`alice (${format})`);
    const replies = [];
    channel.on('presence_state', (payload) => format === 'counts' && counts.state({ seq: 0, payload }));
    channel.on('presence_diff', (payload) => format === 'counts' && counts.diff({ seq: counts.seq + 1, payload }));
    await joined;
    channel.joinPush.receive('ok', (reply) => replies.push(reply));
    await join(other, 'room:r', 'bob').joined;
    const shows = (users) =>
      format === 'phoenix'
        ? waitFor(() => names(presence).join() === users.map((u) => `${u}:1`).join(), () => names(presence).join())
        : counts.expect(users.length, 0);
    await shows(['alice', 'bob']);

    // The server goes away and comes back (a new engine) on the same port; bob does not come back.
    await server.stop();
    other.disconnect();
    server = await startServer({ format, port });
    await waitFor(() => server.engine.counts('room:r').users === 1, () => JSON.stringify(server.engine.counts('room:r')), 10000);
    await shows(['alice']);
    assert.ok(replies.length >= 1, 'phoenix.js rejoined by itself');
    await server.stop();
    socket.disconnect();
  }
});
