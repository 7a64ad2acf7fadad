'use strict';

// A Phoenix Channels endpoint (V2 JSON serializer, what phoenix.js speaks with
// `vsn=2.0.0`) over `ws`, for presence only: a front end written for Phoenix (the
// `phoenix` npm Socket + Channel + Presence, or a client of its own handling
// "presence_state" / "presence_diff") connects to a Node server unchanged.
//
// Every frame is [join_ref, ref, topic, event, payload]. A channel's topic is the
// presence topic itself; joining it tracks the socket (join params {user}: none is an
// anonymous viewer), replies {"seq":S,"node":N} and pushes the engine's state rendered
// with the channel's join_ref; each poll window's diff is one frame per topic, rendered
// once by the engine with a null join_ref (as Phoenix broadcasts) and written as is to
// every socket of the topic. phx_leave untracks; a closed socket untracks everything.

const { Engine, PresenceError } = require('./index.js');

const DEFAULTS = {
  path: '/socket/websocket',
  key: (topic, params) => (typeof params.user === 'string' && params.user !== '' ? params.user : null),
  node: null,
  intervalMs: 100,
  // phoenix.js sends a heartbeat every 30 s; Phoenix closes a socket silent for 60 s.
  heartbeatTimeoutMs: 60000,
  maxPayload: 64 * 1024,
};

/** A join refused by the host's key function: `reason` goes to the client as is. */
class JoinRefused extends Error {
  constructor(reason) {
    super(reason);
    this.name = 'JoinRefused';
    this.reason = reason;
  }
}

function loadWs() {
  try {
    return require('ws');
  } catch (err) {
    if (err.code === 'MODULE_NOT_FOUND') {
      throw new Error("presence-engine/phoenix needs the 'ws' package: npm install ws", { cause: err });
    }
    throw err;
  }
}

const reply = (joinRef, ref, topic, status, response) =>
  JSON.stringify([joinRef, ref, topic, 'phx_reply', { status, response }]);

/**
 * Serves the Phoenix endpoint on `server` (a node:http or node:https server) at
 * `options.path` (default '/socket/websocket', where `new Socket('/socket')` connects).
 * Upgrades to other paths are left to their own handlers. Returns {wss, close()}. The
 * engine's polling belongs to the endpoint from then on.
 */
function attachPhoenix(server, engine, options = {}) {
  if (!server || typeof server.on !== 'function') throw new TypeError('attachPhoenix(server, ...): server must be an http.Server');
  if (!(engine instanceof Engine)) throw new TypeError('attachPhoenix(server, engine): engine must be an Engine');
  const opts = { ...DEFAULTS, ...options };
  if (typeof opts.key !== 'function') throw new TypeError('key must be a function(topic, params, request)');
  if (opts.node !== null && typeof opts.node !== 'string') throw new TypeError('node must be a string or null');
  const { WebSocket, WebSocketServer } = loadWs();
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload });
  /** topic -> the sockets joined to it */
  const rooms = new Map();
  let nextConn = 1;

  const onUpgrade = (req, socket, head) => {
    const q = req.url.indexOf('?');
    if ((q === -1 ? req.url : req.url.slice(0, q)) !== opts.path) return;
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  };
  server.on('upgrade', onUpgrade);

  wss.on('connection', (ws, req) => {
    const conn = nextConn++;
    /** topic -> its channel's join_ref */
    const channels = new Map();
    ws.lastSeen = Date.now();

    const leave = (topic) => {
      channels.delete(topic);
      engine.untrack(topic, conn);
      const room = rooms.get(topic);
      room.delete(ws);
      if (room.size === 0) rooms.delete(topic);
    };

    const join = (joinRef, ref, topic, params) => {
      const previous = channels.get(topic);
      if (previous !== undefined) {
        // A second join of a topic replaces the first channel, as Phoenix does.
        leave(topic);
        ws.send(JSON.stringify([previous, null, topic, 'phx_close', {}]));
      }
      let key;
      try {
        key = opts.key(topic, params && typeof params === 'object' ? params : {}, req);
        engine.track(topic, conn, key ?? null);
      } catch (err) {
        let reason;
        if (err instanceof PresenceError) reason = err.kind;
        else if (err instanceof JoinRefused) reason = err.reason;
        else {
          // A bug in the host's key function: refuse this join, keep serving the others.
          reason = 'join failed';
          process.emitWarning(`presence-engine/phoenix: the key function threw: ${err && err.stack ? err.stack : err}`);
        }
        ws.send(reply(joinRef, ref, topic, 'error', { reason }));
        return;
      }
      channels.set(topic, joinRef);
      if (!rooms.has(topic)) rooms.set(topic, new Set());
      rooms.get(topic).add(ws);
      // The state is as of the last poll and the next diff carries this join: no poll can
      // run between the track above and this render (both happen in this one handler).
      const { message, seq } = engine.stateMessage(topic, { envelope: 'phoenix', joinRef });
      ws.send(reply(joinRef, ref, topic, 'ok', { seq, node: opts.node }));
      ws.send(message);
    };

    ws.on('message', (data, isBinary) => {
      ws.lastSeen = Date.now();
      let frame;
      try {
        frame = isBinary ? null : JSON.parse(data.toString());
      } catch {
        frame = null;
      }
      if (!Array.isArray(frame) || frame.length !== 5 || typeof frame[2] !== 'string' || typeof frame[3] !== 'string') {
        ws.close(1003, 'expected a Phoenix V2 JSON frame');
        return;
      }
      const [joinRef, ref, topic, event, payload] = frame;
      if (topic === 'phoenix' && event === 'heartbeat') {
        ws.send(reply(null, ref, 'phoenix', 'ok', {}));
      } else if (event === 'phx_join') {
        if (typeof joinRef !== 'string' || topic === '') {
          ws.send(reply(joinRef, ref, topic, 'error', { reason: 'join needs a join_ref and a topic' }));
        } else {
          join(joinRef, ref, topic, payload);
        }
      } else if (event === 'phx_leave') {
        if (channels.get(topic) === joinRef) leave(topic);
        ws.send(reply(joinRef, ref, topic, 'ok', {}));
      } else if (channels.get(topic) === joinRef && joinRef !== undefined) {
        ws.send(reply(joinRef, ref, topic, 'error', { reason: 'unknown event' }));
      } else {
        ws.send(reply(joinRef, ref, topic, 'error', { reason: 'unmatched topic' }));
      }
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      for (const topic of [...channels.keys()]) {
        channels.delete(topic);
        const room = rooms.get(topic);
        room.delete(ws);
        if (room.size === 0) rooms.delete(topic);
      }
      if (!engine.closed) engine.untrackConn(conn);
    });
  });

  // One frame per changed topic, rendered by the engine and written as its UTF-8 bytes
  // (a view of the batch, encoded by nobody) to every socket of the topic.
  const stopDiffs = engine.onDiff(
    (batch) => {
      for (let i = 0; i < batch.length; i++) {
        const room = rooms.get(batch.topic(i));
        if (!room) continue;
        const data = batch.messageBytes(i);
        for (const ws of room) if (ws.readyState === WebSocket.OPEN) ws.send(data, { binary: false });
      }
    },
    { intervalMs: opts.intervalMs, envelope: 'phoenix', batch: true },
  );

  const reaper = setInterval(() => {
    const limit = Date.now() - opts.heartbeatTimeoutMs;
    for (const ws of wss.clients) if (ws.lastSeen < limit) ws.terminate();
  }, Math.max(1000, opts.heartbeatTimeoutMs / 4));
  reaper.unref();

  let closed = false;
  return {
    wss,
    /** Stops serving: closes every socket (which untracks it) and stops the diffs. */
    close() {
      if (closed) return;
      closed = true;
      server.off('upgrade', onUpgrade);
      stopDiffs();
      clearInterval(reaper);
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}

module.exports = { attachPhoenix, JoinRefused };
