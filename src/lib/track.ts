/**
 * Per-server connection tracking, installed before the first connection can arrive
 * (listen(), serve() and track() call it). shutdown() needs it to tell idle keep-alive
 * connections from busy ones, to mark in-flight responses `Connection: close`, and to find
 * HTTP/2 sessions and upgraded sockets, none of which Node lets a caller enumerate.
 * A hand-over drain (handover.ts) moves plain HTTP/1.1 connections to another process at a
 * request boundary instead of closing them.
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import { watchRequestStart } from './boundary.js';
import { Http1Connections, type DrainHooks } from './http1.js';
import { observe } from './stats.js';
import type { AnyServer, ShutdownCounts } from './types.js';
import { announce, watchUpgrades } from './upgrades.js';

export type { DrainHooks, HandoverSink } from './http1.js';

const trackers = new WeakMap<AnyServer, Tracker>();

/** The tracker of `server`, if it has one. */
export function trackerOf(server: AnyServer): Tracker | undefined {
  return trackers.get(server);
}

/** Instruments `server` once; later calls return the same tracker. */
export function instrument(server: AnyServer): Tracker {
  let tracker = trackers.get(server);
  if (tracker === undefined) {
    const t = new Tracker(server);
    tracker = t;
    trackers.set(server, t);
    observe(server, () => t.sockets.size); // traffic figures for the master (stats.ts)
  }
  return tracker;
}

function isHttp2(server: AnyServer): boolean {
  return typeof (server as unknown as { updateSettings?: unknown }).updateSettings === 'function';
}

export class Tracker {
  /** Raw TCP connections of every kind. */
  readonly sockets = new Set<net.Socket>();
  /** HTTP/1 connections and responses. */
  readonly http1: Http1Connections;
  readonly sessions = new Set<Http2Session>();
  readonly streams = new Set<ServerHttp2Stream>();
  readonly upgraded = new Set<Duplex>();
  private drain: DrainHooks | undefined;

  constructor(readonly server: AnyServer) {
    this.http1 = new Http1Connections(server, () => this.drain);
    const plainHttp1 = server instanceof http.Server;
    const tlsHttp1 = server instanceof https.Server || isHttp2(server);
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        if (this.http1.wasMoved(socket)) this.drain?.movedClosed?.();
        else this.drain?.closed('connections');
      });
      if (plainHttp1) watchRequestStart(this.http1.add(socket));
    });
    if (tlsHttp1) {
      server.on('secureConnection', (socket: import('node:tls').TLSSocket) => {
        // h2 connections belong to their session; only HTTP/1 ones are idle-closed here.
        if (socket.alpnProtocol !== 'h2') this.http1.add(socket);
      });
    }
    // Prepended so a response gets `Connection: close` before the application's
    // handler can send its headers.
    server.prependListener('request', (req: http.IncomingMessage, res: unknown) => {
      if (res instanceof http.ServerResponse) this.http1.request(req, res);
    });
    server.on('stream', (stream: ServerHttp2Stream) => {
      this.streams.add(stream);
      stream.once('close', () => {
        this.streams.delete(stream);
        this.drain?.closed('requests');
      });
    });
    server.on('session', (session: Http2Session) => {
      this.sessions.add(session);
      session.once('close', () => {
        this.sessions.delete(session);
        this.drain?.closed('sessions');
      });
      if (this.drain !== undefined) session.close();
    });
    watchUpgrades(server, (_req, socket) => this.upgrade(socket));
  }

  /** True when nothing this tracker saw is still open. */
  isEmpty(): boolean {
    return (
      this.sockets.size === 0 &&
      this.http1.responses.size === 0 &&
      this.streams.size === 0 &&
      this.sessions.size === 0 &&
      this.upgraded.size === 0
    );
  }

  /**
   * Starts draining: marks responses, schedules idle closes, closes sessions, announces
   * upgrades. With `hooks.handover`, this server's HTTP/1.1 connections are offered for
   * hand-over instead (idle ones now, busy ones when their response completes).
   */
  beginDrain(hooks: DrainHooks): void {
    this.drain = hooks;
    this.http1.beginDrain(hooks.handover !== undefined);
    for (const session of this.sessions) session.close();
    for (const socket of this.upgraded) announce(hooks.onUpgrade, socket);
  }

  /** Destroys everything still open except `spare` (a hand-over under way); returns what that was. */
  forceAll(spare?: Duplex): ShutdownCounts {
    let connections = 0;
    for (const socket of this.sockets) if (socket !== spare && !this.http1.wasMoved(socket)) connections++;
    const forced: ShutdownCounts = {
      requests: this.http1.responses.size + this.streams.size,
      connections,
      sessions: this.sessions.size,
      upgraded: this.upgraded.size,
    };
    const sink = this.drain?.handover;
    this.drain = undefined; // close events from here on are forced, not drained
    this.http1.force(spare);
    for (const session of this.sessions) session.destroy();
    for (const socket of this.upgraded) socket.destroy();
    for (const socket of this.sockets) if (socket !== spare) socket.destroy();
    sink?.settled();
    return forced;
  }

  /** Ends the drain bookkeeping (after the last close, or after forceAll). */
  endDrain(): void {
    this.drain = undefined;
    this.http1.endDrain();
  }

  /** Open connections that were not handed over. */
  keptConnections(): number {
    let kept = 0;
    for (const socket of this.sockets) if (!this.http1.wasMoved(socket)) kept++;
    return kept;
  }

  /** The socket left the HTTP machinery: never idle-close or hand it over as an HTTP connection. */
  private upgrade(socket: Duplex): void {
    this.http1.remove(socket);
    this.upgraded.add(socket);
    socket.once('close', () => {
      this.upgraded.delete(socket);
      this.drain?.closed('upgraded');
    });
    const drain = this.drain;
    // Announce after the application's own listener completed the handshake.
    if (drain !== undefined) setImmediate(() => announce(drain.onUpgrade, socket));
  }
}
