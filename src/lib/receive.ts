/**
 * Connection hand-over, the receiving side: the master passes a connection an older worker
 * handed over (`conn` + a raw TCP handle) and this process serves it as if it had just
 * accepted it on that listener. A worker that is itself draining serves it with the drain's
 * rules (a hand-back when no receiver was left).
 */
import type * as http from 'node:http';
import * as net from 'node:net';
import { closeHandle, type ConnMessage } from './protocol.js';
import { listenerName, markArrival, serverFor } from './registry.js';
import { trackerOf } from './track.js';

interface ServerInternals extends http.Server {
  _connections: number;
  allowHalfOpen?: boolean;
  keepAliveTimeoutBuffer?: number;
}

/** Node 20-24's fixed HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER (Node 26 has a server option). */
const KEEP_ALIVE_TIMEOUT_BUFFER = 1000;

function isTcpHandle(handle: unknown): boolean {
  const h = handle as { readStart?: unknown; getpeername?: unknown } | null | undefined;
  return typeof h?.readStart === 'function' && typeof h.getpeername === 'function';
}

/**
 * Serves a handed-over connection on the plain HTTP server registered under
 * `message.listener`, else on the first plain HTTP server (never dropped because names
 * disagree); closes it only when this process has no plain HTTP server at all.
 */
export function receiveConnection(message: ConnMessage, handle: unknown): void {
  if (!isTcpHandle(handle)) {
    if (handle != null) closeHandle(handle);
    return;
  }
  const server = serverFor(message.listener) as ServerInternals | undefined;
  if (server === undefined) {
    closeHandle(handle);
    return;
  }
  // What net.Server does for an accepted connection (lib/net.js onconnection). Socket
  // options such as TCP_NODELAY belong to the kernel socket and came along with it.
  const socket = new net.Socket({ handle, readable: true, writable: true, allowHalfOpen: server.allowHalfOpen } as net.SocketConstructorOpts);
  server._connections++;
  Object.assign(socket, { server, _server: server });
  // Served by a server listening on another socket (a relay's): it keeps the name of the
  // socket it arrived on for its next hand-over.
  if (typeof message.listener === 'string' && listenerName(server) !== message.listener) markArrival(socket, message.listener);
  server.emit('connection', socket);
  // It arrives idle between two requests: give it the keep-alive timeout Node arms after a
  // response, not a new connection's headersTimeout, which would answer an idle client 408.
  const conn = trackerOf(server)?.http1.connections.get(socket);
  if (conn !== undefined && server.keepAliveTimeout > 0 && !socket.destroyed) {
    socket.setTimeout(server.keepAliveTimeout + (server.keepAliveTimeoutBuffer ?? KEEP_ALIVE_TIMEOUT_BUFFER));
    conn.keepAliveArmed = true;
  }
}
