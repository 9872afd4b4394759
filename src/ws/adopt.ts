/**
 * The receiving side of the WebSocket hand-over (hitless/ws, issue 24): the master passes a
 * WebSocket an older worker moved (`ws-conn` + the socket handle) and this process rebuilds
 * a `ws` WebSocket on it — what `WebSocketServer` does after a handshake, without one: the
 * negotiated subprotocol and permessage-deflate parameters set, the bytes of the client's
 * next frame that the old worker had read put back first — adds it to the server's clients,
 * tracks it for this process's own drain, and gives it to the application with its state.
 * One that comes back to the worker that sent it (`returned`: no new worker could take it)
 * is rebuilt the same way and given to the application the same way, with the state it
 * left with: it is served here again until its turn in the drain's spread, then closed with
 * 1001 like the WebSockets that could not move (track.ts gives a connection adopted while
 * draining a turn in what is left of the window). Served, not only closed: the WebSocket it
 * was is gone (detached, `moved` called, its descriptor closed), and without the
 * application's listeners on the new one every message the client sent meanwhile would be
 * read and dropped until that turn (seconds with the default 5 s spread).
 */
import type * as http from 'node:http';
import * as net from 'node:net';
import { closeHandle, type WsConnMessage } from '../lib/protocol.js';
import { GOING_AWAY } from '../lib/goaway.js';
import { serverFor } from '../lib/registry.js';
import { trackerOf } from '../lib/track.js';
import * as wsModule from 'ws';
import { WebSocket, type WebSocketServer } from 'ws';
import type { WsInternals } from './internals.js';

/** ws's permessage-deflate extension (exported by ws, not declared by @types/ws). */
interface PerMessageDeflateClass {
  new (options: object, isServer: boolean, maxPayload: number | undefined): { params: unknown };
  extensionName: string;
}
const { PerMessageDeflate } = wsModule as unknown as { PerMessageDeflate: PerMessageDeflateClass };

/** WebSocket close code 1011: the server met a condition it could not handle (adopt() threw). */
const INTERNAL_ERROR = 1011;

interface ServerInternals extends http.Server {
  _connections: number;
  allowHalfOpen?: boolean;
}

/** What a registration (index.ts) gives the receiving side. */
export interface AdoptTarget {
  wss: WebSocketServer;
  adopt(ws: WsInternals, state: unknown): void;
  remember(ws: WsInternals): void;
}

function isTcpHandle(handle: unknown): boolean {
  const h = handle as { readStart?: unknown; getpeername?: unknown } | null | undefined;
  return typeof h?.readStart === 'function' && typeof h.getpeername === 'function';
}

/**
 * Rebuilds the WebSocket of a `ws-conn` on `handle` for the registration `pick` finds for
 * its server; closes the handle when there is none (this process cannot serve it).
 */
export function receiveWebSocket(message: WsConnMessage, handle: unknown, pick: (server: http.Server) => AdoptTarget | undefined): void {
  const server = serverFor(message.listener) as ServerInternals | undefined;
  const target = server && pick(server);
  if (!isTcpHandle(handle) || server === undefined || target === undefined) {
    if (handle != null) closeHandle(handle);
    return;
  }
  // What net.Server does for an accepted connection, without 'connection': node:http must
  // not parse it, its HTTP is long over.
  const socket = new net.Socket({ handle, readable: true, writable: true, allowHalfOpen: server.allowHalfOpen } as net.SocketConstructorOpts);
  server._connections++;
  Object.assign(socket, { server, _server: server });
  const tracker = trackerOf(server);
  tracker?.adoptUpgraded(socket);
  const ws = rebuild(target.wss, socket, message);
  target.remember(ws);
  // Before ws reads anything (it starts on the next turn of the loop): the bytes the client
  // sent while the WebSocket travelled reach the application's listeners, in order.
  try {
    target.adopt(ws, message.state);
  } catch {
    ws.close(INTERNAL_ERROR, 'could not adopt the connection');
    return;
  }
  // One that came back finds its drain still under way (the sender waits for every landing),
  // whose schedule sends it away at its turn; past the drain, it goes at once.
  if (message.returned === true && tracker?.draining !== true) ws.close(GOING_AWAY, 'going away');
}

/** A server-side `ws` WebSocket on `socket`, as `wss` would have made it after the handshake. */
function rebuild(wss: WebSocketServer, socket: net.Socket, m: WsConnMessage): WsInternals {
  const options = wss.options as WebSocketServer['options'] & Record<string, unknown>;
  const Ctor = (options.WebSocket ?? WebSocket) as unknown as new (address: null, protocols: undefined, options: unknown) => WsInternals;
  const ws = new Ctor(null, undefined, options);
  if (m.protocol !== undefined) ws._protocol = m.protocol;
  if (m.deflate !== undefined) {
    const own = typeof options.perMessageDeflate === 'object' ? options.perMessageDeflate : {};
    const pmd = new PerMessageDeflate(own, true, options.maxPayload);
    // Negotiated with the client by the old worker; without context takeover, so nothing else carries over.
    pmd.params = m.deflate;
    ws._extensions = { [PerMessageDeflate.extensionName]: pmd as never };
  }
  ws.setSocket(socket, Buffer.from(m.head ?? '', 'base64'), {
    allowSynchronousEvents: options.allowSynchronousEvents,
    maxBufferedChunks: options.maxBufferedChunks,
    maxFragments: options.maxFragments,
    maxPayload: options.maxPayload,
    skipUTF8Validation: options.skipUTF8Validation,
  });
  if (wss.clients) {
    wss.clients.add(ws);
    ws.on('close', () => wss.clients.delete(ws));
  }
  return ws;
}
