// Type declarations of presence-engine/phoenix (hand-written; they follow phoenix.js).
/// <reference types="node" />
import type { IncomingMessage, Server } from 'node:http';
import type { Engine } from './index';

export interface PhoenixEndpointOptions {
  /** The endpoint's path (default '/socket/websocket', where phoenix.js `new Socket('/socket')` connects). */
  path?: string;
  /** The presence key of a join: a user name, or null for an anonymous viewer (default:
   * `params.user`, '' or absent being anonymous). Throw JoinRefused(reason) to refuse it (any other throw refuses it as 'join failed'). */
  key?: (topic: string, params: Record<string, unknown>, request: IncomingMessage) => string | null | undefined;
  /** The node id put in every join reply (default null): the cluster node serving the socket. */
  node?: string | null;
  /** How often the engine is checked for changes, in ms (default 100): one diff per topic per window. */
  intervalMs?: number;
  /** A socket that sent nothing (phoenix.js heartbeats every 30 s) this long is closed, in ms (default 60000). */
  heartbeatTimeoutMs?: number;
  /** Largest frame accepted from a client, in bytes (default 65536). */
  maxPayload?: number;
}

export interface PhoenixEndpoint {
  /** The `ws` WebSocketServer (noServer mode) holding the endpoint's sockets. */
  readonly wss: { readonly clients: Set<unknown>; on(event: string, listener: (...args: any[]) => void): unknown };
  /** Stops serving: closes every socket (which untracks it) and stops the diffs. */
  close(): void;
}

/** Refuses a join from the key function: the reply is {"status":"error","response":{"reason":reason}}. */
export class JoinRefused extends Error {
  constructor(reason: string);
  readonly reason: string;
}

/** Serves the Phoenix Channels V2 endpoint for presence on `server`. The engine's polling belongs to the endpoint. */
export function attachPhoenix(server: Server | { on: Server['on']; off: Server['off'] }, engine: Engine, options?: PhoenixEndpointOptions): PhoenixEndpoint;
