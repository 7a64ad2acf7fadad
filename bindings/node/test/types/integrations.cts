// Type usage of presence-engine/socket.io and presence-engine/phoenix, checked by tsc
// (test/types.test.js); never run.
import http = require('node:http');
import { Server } from 'socket.io';
import { Engine } from 'presence-engine';
import { attachPresence, type PresenceStateMessage, type PresenceDiffMessage } from 'presence-engine/socket.io';
import { attachPhoenix, JoinRefused } from 'presence-engine/phoenix';

const server = http.createServer();
const io = new Server(server);
const presence = attachPresence(io, new Engine(), {
  key: (socket) => (typeof socket.handshake.auth['user'] === 'string' ? socket.handshake.auth['user'] : null),
  rooms: /^video:/,
  intervalMs: 100,
});
const conn: number | undefined = presence.connOf('abc');
presence.close();

const onState = (m: PresenceStateMessage): number => m.seq;
const onDiff = (m: PresenceDiffMessage): string => m.topic;

const endpoint = attachPhoenix(server, new Engine({ format: 'phoenix' }), {
  node: 'web-1',
  key: (topic, params) => {
    if (!topic.startsWith('room:')) throw new JoinRefused('unknown topic');
    return typeof params['user'] === 'string' ? params['user'] : null;
  },
});
const sockets: number = endpoint.wss.clients.size;
endpoint.close();

export { conn, onState, onDiff, sockets };
