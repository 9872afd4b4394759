/**
 * What the WebSocket hand-over reads of `ws`'s own objects (ws 8.18 and later; checked at
 * each move, so another version moves nothing and every connection is closed with 1001
 * instead). `ws` has no public way to tell whether a WebSocket stands between two frames,
 * nor to build one on an existing socket after its handshake: its receiver's and sender's
 * state, and the fields `WebSocketServer` sets itself (`_protocol`, `_extensions`), are the
 * only place this lives. The facts (ws/lib/receiver.js, sender.js, websocket.js):
 *
 * - The receiver parses frames in states GET_INFO (0, between frames), then payload length,
 *   mask, data; it holds unparsed bytes in `_buffers` (`_bufferedBytes`), the opcode of a
 *   fragmented message in progress in `_fragmented` (0: none). In GET_INFO what it holds is
 *   raw bytes of the next frame (fewer than 2), which can travel with the socket.
 * - The sender writes a frame whole and at once (`socket.cork()`, writes, `uncork()`), except
 *   while compressing or reading a Blob (`_state` not 0: later frames wait in `_queue`);
 *   `_firstFragment` is false while the application streams a fragmented message.
 * - permessage-deflate keeps a zlib context per direction unless both
 *   `server_no_context_takeover` and `client_no_context_takeover` were negotiated: a context
 *   cannot move to another process, so such a connection cannot either.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

/** The receiver's state between two frames. */
const GET_INFO = 0;
/** The sender's state when it writes frames as they come. */
const SENDER_IDLE = 0;
/** ws's readyState OPEN and CLOSED. */
export const OPEN = 1;
export const CLOSED = 3;

export interface ReceiverInternals {
  _state?: unknown;
  _fragmented?: unknown;
  _buffers?: Buffer[];
  _bufferedBytes?: unknown;
  writableLength: number;
}

export interface SenderInternals {
  _state?: unknown;
  _deflating?: unknown;
  _queue?: unknown[];
  _firstFragment?: unknown;
}

export interface DeflateInternals {
  params?: Record<string, number | boolean> | null;
}

/** A `ws` WebSocket with the fields the hand-over reads and sets. */
export type WsInternals = WebSocket & {
  _socket: Duplex | null;
  _receiver: ReceiverInternals | null;
  _sender: SenderInternals | null;
  _extensions: Record<string, DeflateInternals>;
  _protocol: string;
  _readyState: number;
  setSocket(socket: Duplex, head: Buffer, options: Record<string, unknown>): void;
};

/** Why a WebSocket cannot move now: `never` (closed instead), or `later` (try again). */
export type NotNow = { never: string } | { later: string } | undefined;

/**
 * Whether `ws` can move now (its sender idle, nothing half written): undefined when it can
 * as far as the outgoing side goes; the incoming side is checked once reading stopped
 * ({@link incomingBoundary}).
 *
 * @example
 * const why = outgoingBoundary(ws); if (why && 'never' in why) closeInstead(ws);
 */
export function outgoingBoundary(ws: WsInternals): NotNow {
  if (ws.readyState !== OPEN) return { never: 'not open' };
  const sender = ws._sender;
  const receiver = ws._receiver;
  if (sender == null || receiver == null || typeof receiver._state !== 'number' || !Array.isArray(sender._queue)) {
    return { never: 'an unknown version of ws' };
  }
  const deflate = deflateParams(ws);
  if (deflate === null) return { never: 'permessage-deflate with context takeover' };
  if (ws.isPaused) return { never: 'paused by the application' };
  const idle = typeof sender._state === 'number' ? sender._state === SENDER_IDLE : sender._deflating === false;
  if (!idle || sender._queue.length > 0) return { later: 'a frame is being compressed' };
  if (sender._firstFragment !== true) return { later: 'a fragmented message is being sent' };
  if ((ws._socket?.writableLength ?? 0) > 0) return { later: 'bytes still to write' };
  return undefined;
}

/**
 * With reading stopped: the raw bytes of the client's next frame already read (what the
 * receiving side must parse first), or why it stands inside a frame now.
 */
export function incomingBoundary(ws: WsInternals): { head: Buffer } | { later: string } {
  const receiver = ws._receiver as ReceiverInternals;
  const socket = ws._socket as Duplex;
  if (receiver._state !== GET_INFO || receiver.writableLength > 0) return { later: 'inside a frame from the client' };
  if (receiver._fragmented !== 0) return { later: 'a fragmented message from the client is in progress' };
  if (socket.readableLength > 0) return { later: 'bytes read but not parsed yet' };
  return { head: Buffer.concat(receiver._buffers ?? []) };
}

/**
 * The negotiated permessage-deflate parameters: undefined when not negotiated, null when
 * they keep a compression context (the connection cannot move).
 */
export function deflateParams(ws: WsInternals): Record<string, number | boolean> | undefined | null {
  const pmd = ws._extensions['permessage-deflate'];
  if (pmd === undefined) return undefined;
  const params = pmd.params;
  if (params == null || params.server_no_context_takeover !== true || params.client_no_context_takeover !== true) return null;
  return { ...params };
}

/** ws's own listeners on its socket, by the names ws 8 gives them. */
const WS_SOCKET_LISTENERS = new Set(['socketOnClose', 'socketOnData', 'socketOnEnd', 'socketOnError']);

/**
 * Detaches a WebSocket whose socket is moving to another process: `ws` no longer reads or
 * writes it, its sends from now on are refused as after a close (their callback gets an
 * error), and it emits no 'close' (the connection lives on elsewhere). Returns what puts it
 * back, for a move the master did not take.
 */
export function detach(ws: WsInternals): () => void {
  const socket = ws._socket;
  const removed: Array<[string, (...args: unknown[]) => void]> = [];
  if (socket != null) {
    for (const event of ['close', 'data', 'end', 'error'] as const) {
      for (const fn of socket.listeners(event) as Array<(...args: unknown[]) => void>) {
        if (!WS_SOCKET_LISTENERS.has(fn.name)) continue;
        socket.removeListener(event, fn);
        removed.push([event, fn]);
      }
    }
  }
  const readyState = ws._readyState;
  ws._readyState = CLOSED;
  return () => {
    ws._readyState = readyState;
    for (const [event, fn] of removed) socket?.on(event, fn);
  };
}
