'use strict';

// Presence for a Socket.IO 4 server: a socket that joins a presence room is tracked in
// the engine under the key the host's function gives (none: an anonymous viewer), and
// untracked when it leaves the room or disconnects. The joiner is sent the room's state
// with its seq; each poll window's diff goes to the room's sockets on this server.
//
// The adapter's own room events drive it ("join-room" / "leave-room", which Socket.IO
// emits for socket.join(), socket.leave(), io.socketsJoin() and on disconnect), so the
// host keeps calling socket.join() as it always did. Several Socket.IO processes each
// run their own engine, linked by the engine's cluster mode (its Redis link): every
// engine then produces the whole cluster's diffs, so each process sends them to its own
// sockets only (`local`), with or without @socket.io/redis-adapter for other messages.

const { Engine, PresenceError } = require('./index.js');

const DEFAULTS = {
  key: (socket) => socket.data?.user ?? null,
  rooms: null,
  intervalMs: 100,
  stateEvent: 'presence_state',
  diffEvent: 'presence_diff',
  errorEvent: 'presence_error',
};

function checkFunction(name, value) {
  if (typeof value !== 'function') throw new TypeError(`${name} must be a function`);
}

/**
 * Attaches an engine to a Socket.IO server (or one of its namespaces). Returns
 * {engine, conns, close()}. The engine's polling belongs to the attachment from then on.
 */
function attachPresence(io, engine, options = {}) {
  if (!io || typeof io.of !== 'function' || !io.sockets) {
    throw new TypeError('attachPresence(io, ...): io must be a Socket.IO Server');
  }
  if (!(engine instanceof Engine)) throw new TypeError('attachPresence(io, engine): engine must be an Engine');
  const opts = { ...DEFAULTS, ...options };
  checkFunction('key', opts.key);
  let isPresenceRoom;
  if (opts.rooms === null || opts.rooms === undefined) isPresenceRoom = () => true;
  else if (opts.rooms instanceof RegExp) isPresenceRoom = (room) => opts.rooms.test(room);
  else if (typeof opts.rooms === 'function') isPresenceRoom = opts.rooms;
  else throw new TypeError('rooms must be a RegExp, a function(room) or null (every room)');

  const nsp = typeof options.namespace === 'string' ? io.of(options.namespace) : io.sockets;
  const adapter = nsp.adapter;
  // Socket.IO ids are strings unique to this process; the engine wants integers. Each
  // socket with a presence gets the next number, and gives it back on its last leave.
  const tracked = new Map(); // socket id -> {conn, rooms: Set}
  let nextConn = 1;
  // A room's state is the same for every joiner until the next poll that changes it: it
  // is parsed once and handed to Socket.IO as an object for each of them.
  const states = new Map(); // room -> {topic, seq, payload}

  const stateOf = (room) => {
    let state = states.get(room);
    if (state === undefined) {
      const { message, seq } = engine.stateMessage(room, { envelope: null });
      state = { topic: room, seq, payload: JSON.parse(message) };
      states.set(room, state);
    }
    return state;
  };

  const onJoin = (room, id) => {
    // Every socket is in the room named by its own id: that is not a presence room.
    if (room === id || !isPresenceRoom(room)) return;
    const socket = nsp.sockets.get(id);
    if (!socket) return; // a socket of another process (adapters mirror only local ones)
    let entry = tracked.get(id);
    if (entry?.rooms.has(room)) return;
    const conn = entry ? entry.conn : nextConn++;
    let key;
    try {
      key = opts.key(socket, room);
      // Tracking runs between two polls (this handler ends before any timer fires): the
      // state sent now is as of the last poll, and the next diff carries this join.
      engine.track(room, conn, key === undefined || key === '' ? null : key);
    } catch (err) {
      const reason = err instanceof PresenceError ? err.kind : 'key function failed';
      socket.emit(opts.errorEvent, { topic: room, reason });
      // Out of the room too, so it receives no diffs for a presence it does not have.
      socket.leave(room);
      return;
    }
    if (!entry) {
      entry = { conn, rooms: new Set() };
      tracked.set(id, entry);
    }
    entry.rooms.add(room);
    socket.emit(opts.stateEvent, stateOf(room));
  };

  const onLeave = (room, id) => {
    const entry = tracked.get(id);
    if (!entry || !entry.rooms.delete(room)) return;
    engine.untrack(room, entry.conn);
    if (entry.rooms.size === 0) tracked.delete(id);
  };

  adapter.on('join-room', onJoin);
  adapter.on('leave-room', onLeave);
  // Sockets already in presence rooms when this is attached count from now on.
  for (const [room, ids] of adapter.rooms) for (const id of ids) onJoin(room, id);

  const stop = engine.onDiff(
    (batch) => {
      for (const diff of batch) {
        states.delete(diff.topic);
        if (!adapter.rooms.has(diff.topic)) continue;
        // One emit per room: Socket.IO encodes the packet once for all its sockets. The
        // payload is parsed from the engine's text once, here.
        nsp.local.to(diff.topic).emit(opts.diffEvent, { topic: diff.topic, seq: diff.seq, payload: diff.payload });
      }
    },
    { intervalMs: opts.intervalMs },
  );

  let closed = false;
  return {
    engine,
    /** The engine conn of a socket id, or undefined while it has no presence. */
    connOf: (id) => tracked.get(id)?.conn,
    /** Detaches: no more tracking or diffs; every presence of this server is untracked. */
    close() {
      if (closed) return;
      closed = true;
      stop();
      adapter.off('join-room', onJoin);
      adapter.off('leave-room', onLeave);
      if (!engine.closed) for (const { conn } of tracked.values()) engine.untrackConn(conn);
      tracked.clear();
      states.clear();
    },
  };
}

module.exports = { attachPresence };
