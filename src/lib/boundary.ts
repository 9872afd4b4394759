/**
 * Request boundaries of HTTP/1.1 connections: when a connection can leave this process
 * without a byte of the client's stream staying behind. node:http's parser reads the socket
 * in C++ (`parser.consume()`), so nothing read can be put back: a connection moves only when
 * no response is open, the last request (body included) was read completely, and no byte of
 * the next one was read yet. Bytes still in the kernel travel with the fd.
 */
import type * as http from 'node:http';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { channelEnabled } from './channel.js';

/** What the tracker knows about one HTTP/1 connection. */
export interface Http1Connection {
  socket: Duplex;
  inFlight: number;
  idleTimer: NodeJS.Timeout | undefined;
  /** A request began arriving and 'request' has not announced it yet (seen only under the master's channel). */
  partial: boolean;
  /** The last request, while its body still arrives after its response finished. */
  unfinished: http.IncomingMessage | undefined;
  /** Handed over instead of closed once at a request boundary (hand-over drains only). */
  movable: boolean;
  /** Waiting in the hand-over queue. */
  queued: boolean;
  /** Received idle with the keep-alive timeout armed; its first request clears it, as Node would. */
  keepAliveArmed: boolean;
  /** Requests it carried here (a move picks across how much each connection is used). */
  requests: number;
  /** When its last request began, as a count of this process's requests (a `recent` move picks the highest). */
  lastUse: number;
}

/** The parts of Node's TCP handle and socket the hand-over uses (not public API). */
export interface TcpHandle {
  reading?: boolean;
  readStart(): number;
  readStop(): number;
  close(callback?: () => void): void;
  getpeername?: unknown;
}

export interface SocketInternals extends net.Socket {
  _handle: TcpHandle | null;
  _httpMessage?: unknown;
  parser?: { constructor: { kOnMessageBegin?: unknown }; [slot: number]: unknown } | null;
}

function requestStartSlot(socket: Duplex): number | undefined {
  const slot = (socket as SocketInternals).parser?.constructor.kOnMessageBegin;
  return typeof slot === 'number' ? slot : undefined;
}

/**
 * Under the master's channel, notes when a request starts arriving (llhttp's
 * on_message_begin: Node calls the parser's kOnMessageBegin slot, which node:http leaves
 * empty, on Node 20 to 26). One call per request; standalone nothing is installed.
 */
export function watchRequestStart(conn: Http1Connection): void {
  if (!channelEnabled()) return;
  const slot = requestStartSlot(conn.socket);
  const parser = (conn.socket as SocketInternals).parser;
  if (slot === undefined || parser == null || parser[slot] != null) return;
  parser[slot] = () => {
    conn.partial = true;
  };
}

/**
 * True when `conn` could move at all: a plain TCP socket, open both ways, whose parser
 * reports request starts (without that report, bytes of a half-sent request could be lost).
 */
export function canMove(conn: Http1Connection): boolean {
  const socket = conn.socket as SocketInternals;
  const handle = socket._handle;
  const slot = requestStartSlot(socket);
  return (
    typeof handle?.getpeername === 'function' &&
    slot !== undefined &&
    typeof socket.parser?.[slot] === 'function' &&
    socket.writable &&
    socket.readable &&
    !socket.destroyed
  );
}

/**
 * True when `conn` is at a request boundary. Call it with reading stopped, so the answer
 * cannot change before the handle is gone: no request in flight or half-received, the last
 * body read completely, no response attached, nothing left to write.
 */
export function atBoundary(conn: Http1Connection): boolean {
  const socket = conn.socket as SocketInternals;
  return (
    conn.inFlight === 0 &&
    !conn.partial &&
    (conn.unfinished === undefined || conn.unfinished.complete) &&
    socket._httpMessage == null &&
    socket.writable &&
    socket.readable &&
    !socket.destroyed &&
    socket.writableLength === 0
  );
}
