// Type declarations of presence-engine/socket.io (hand-written; they follow socket.io.js).
import type { Server, Namespace, Socket } from 'socket.io';
import type { Engine, PresenceDiff, PresenceState } from './index';

export interface SocketPresenceOptions {
  /** The presence key of a socket joining `room`: a user name, or null/undefined/'' for an
   * anonymous viewer (default: `socket.data.user`). A throw refuses the presence. */
  key?: (socket: Socket, room: string) => string | null | undefined;
  /** Which rooms are presence rooms (default: every room but a socket's own id room). */
  rooms?: RegExp | ((room: string) => boolean) | null;
  /** The namespace to attach to (default: the main namespace '/'). */
  namespace?: string;
  /** How often the engine is checked for changes, in ms (default 100): one diff per room per window. */
  intervalMs?: number;
  /** The event of the state sent to a joiner (default 'presence_state'). */
  stateEvent?: string;
  /** The event of each window's diff (default 'presence_diff'). */
  diffEvent?: string;
  /** The event sent to a socket whose presence the engine refused (default 'presence_error'). */
  errorEvent?: string;
}

/** What a joiner is sent (stateEvent). */
export interface PresenceStateMessage<S extends PresenceState = PresenceState> {
  topic: string;
  /** The seq of the last diff the state includes; the room's next diff has seq + 1. */
  seq: number;
  payload: S;
}

/** What a room is sent each window it changed (diffEvent). */
export interface PresenceDiffMessage<S extends PresenceState = PresenceState> {
  topic: string;
  seq: number;
  payload: PresenceDiff<S>;
}

/** What a socket is sent when its presence was refused (errorEvent); it is out of the room. */
export interface PresenceErrorMessage {
  topic: string;
  /** The engine error's kind (e.g. 'limit_reached'), or 'key function failed'. */
  reason: string;
}

export interface SocketPresence {
  readonly engine: Engine;
  /** The engine conn of a socket id, or undefined while it has no presence. */
  connOf(socketId: string): number | undefined;
  /** Detaches; every presence of this server is untracked. */
  close(): void;
}

/** Tracks the sockets of `io` that join presence rooms in `engine`, sends joiners the state and rooms their diffs. The engine's polling belongs to the attachment. */
export function attachPresence(io: Server | { of(name: string): Namespace; sockets: Namespace }, engine: Engine, options?: SocketPresenceOptions): SocketPresence;
