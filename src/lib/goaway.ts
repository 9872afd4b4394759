/**
 * Telling upgraded (WebSocket) connections to go away when the drain begins (issue 24):
 * RFC 6455 close 1001 "going away" at a frame boundary instead of a cut at the deadline,
 * spread over a window so clients do not all reconnect in the same instant.
 *
 * How a close gets to a frame boundary, in order of preference:
 * 1. The application's own `onUpgrade` shutdown option: it knows its protocol; it is called
 *    instead, at the socket's turn in the window.
 * 2. A `ws` WebSocket on the socket (ws, and what builds on it: socket.io, graphql-ws, …):
 *    its own `close(1001)`. `ws` writes each frame whole and queues behind a compressing
 *    one, so its close lands between frames, and it completes the closing handshake itself
 *    (waits for the client's close, ends the socket). It is found without importing `ws`:
 *    `ws` keeps its WebSocket on the socket under a symbol described as "websocket".
 * 3. Any other RFC 6455 server: a close frame written by hitless where the bytes the
 *    application wrote end a frame (frames.ts counts them), then the socket's writable
 *    side ends; the application's later writes are dropped (nothing may follow a close).
 * Anything else (not a WebSocket, or a 101 never written) is left alone until the deadline.
 */
import type { Duplex } from 'node:stream';
import { framesOf } from './frames.js';

/** WebSocket close code 1001: the endpoint is going away (server shutdown). */
export const GOING_AWAY = 1001;
const REASON = 'going away';

/** What `ws`'s WebSocket offers that a close needs (readyState 1 is OPEN). */
interface WsLike {
  readyState: number;
  close(code: number, reason: string): void;
}

/**
 * The `ws` WebSocket serving `socket`, when there is one.
 *
 * @example
 * wsOf(socket)?.close(1001, 'going away');
 */
export function wsOf(socket: Duplex): WsLike | undefined {
  for (const key of Object.getOwnPropertySymbols(socket)) {
    if (key.description !== 'websocket') continue;
    const ws = (socket as unknown as Record<symbol, unknown>)[key] as Partial<WsLike> | undefined;
    if (typeof ws?.close === 'function' && typeof ws.readyState === 'number') return ws as WsLike;
  }
  return undefined;
}

/** A server's close frame (unmasked): code 1001 and the reason. */
function closeFrame(): Buffer {
  const reason = Buffer.from(REASON);
  const payload = Buffer.alloc(2 + reason.length);
  payload.writeUInt16BE(GOING_AWAY, 0);
  reason.copy(payload, 2);
  return Buffer.concat([Buffer.from([0x88, payload.length]), payload]);
}

/**
 * Closes `socket` with 1001 at a frame boundary (see the module comment). Returns false when
 * it cannot: not a WebSocket this process can frame (the deadline will destroy it).
 *
 * @example
 * if (!goAway(socket)) log('left to the deadline');
 */
export function goAway(socket: Duplex): boolean {
  if (socket.destroyed) return true;
  const ws = wsOf(socket);
  if (ws !== undefined) {
    // CONNECTING (0) cannot be: ws attaches itself to the socket when it opens. CLOSING and
    // CLOSED: its closing handshake is already under way.
    if (ws.readyState === 1) ws.close(GOING_AWAY, REASON);
    return true;
  }
  const watch = framesOf(socket);
  if (watch === undefined || watch.phase === 'unknown') return false;
  if (watch.phase === 'head') {
    // The handshake is not answered yet: look again once it is (a `ws` WebSocket attaches
    // itself right after writing the 101, and its own close is preferred).
    watch.whenBoundary(() => setImmediate(() => goAway(socket)));
    return true;
  }
  watch.whenBoundary(() => {
    watch.sendLast(closeFrame());
    // The client answers the close and ends its side; ending ours now lets it (RFC 6455 §7.1.1).
    if (!socket.writableEnded) socket.end();
    // Nothing may follow the client's close: an application that does not read would keep
    // its end (and the socket) from ever being seen; a reading one gets its bytes as before.
    if (socket.readableFlowing !== true) socket.resume();
  });
  return true;
}

/**
 * Sends each of a drain's upgraded connections away at its turn: evenly spread over
 * `spread` ms (from a random offset, so workers do not close in step), or at once when
 * `spread` is 0; connections upgraded later in the drain get a random turn in what is left
 * of the window.
 *
 * @example
 * const away = new GoAwaySchedule(onUpgrade, 5000);
 * away.schedule([...tracker.upgraded]);
 * // at the deadline:
 * away.cancel();
 */
export class GoAwaySchedule {
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #end: number;

  constructor(
    private readonly onUpgrade: ((socket: Duplex) => void) | undefined,
    private readonly spread: number,
  ) {
    this.#end = Date.now() + spread;
  }

  /** Gives each of `sockets` its turn in the window. */
  schedule(sockets: Duplex[]): void {
    const phase = Math.random();
    sockets.forEach((socket, i) => this.#at(socket, this.spread === 0 ? 0 : (this.spread * (i + phase)) / sockets.length, true));
  }

  /** A connection upgraded during the drain: a random turn in what is left of the window. */
  late(socket: Duplex): void {
    // At least a turn of the loop: the application's listener completes the handshake first.
    this.#at(socket, Math.random() * Math.max(0, this.#end - Date.now()), false);
  }

  /** No more turns (the deadline passed, or the drain ended). */
  cancel(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #at(socket: Duplex, delay: number, now: boolean): void {
    if (delay === 0 && now) return this.#go(socket);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#go(socket);
    }, delay);
    timer.unref();
    this.#timers.add(timer);
  }

  #go(socket: Duplex): void {
    if (socket.destroyed) return;
    if (this.onUpgrade === undefined) {
      goAway(socket);
      return;
    }
    try {
      this.onUpgrade(socket);
    } catch {
      // The application's close attempt failed; the deadline destroys the socket anyway.
    }
  }
}
