/**
 * Per-server connection tracking, installed before the first connection can arrive
 * (listen(), serve() and track() call it). shutdown() needs it to tell idle keep-alive
 * connections from busy ones, to mark in-flight responses `Connection: close`, and to find
 * HTTP/2 sessions and upgraded sockets, none of which Node lets a caller enumerate.
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import { observe } from './stats.js';
import type { AnyServer, ShutdownCounts } from './types.js';

/** What the tracker needs from a running drain. */
export interface DrainHooks {
  idleGrace: number;
  onUpgrade: ((socket: Duplex) => void) | undefined;
  /** One item of `kind` finished during the drain. */
  closed(kind: keyof ShutdownCounts): void;
}

interface Http1Connection {
  socket: Duplex;
  inFlight: number;
  idleTimer: NodeJS.Timeout | undefined;
}

const trackers = new WeakMap<AnyServer, Tracker>();

/** The tracker of `server`, if it has one. */
export function trackerOf(server: AnyServer): Tracker | undefined {
  return trackers.get(server);
}

/** Instruments `server` once; later calls return the same tracker. */
export function instrument(server: AnyServer): Tracker {
  let tracker = trackers.get(server);
  if (tracker === undefined) {
    tracker = new Tracker(server);
    trackers.set(server, tracker);
    observe(server); // traffic figures for the master (stats.ts)
  }
  return tracker;
}

function isHttp2(server: AnyServer): boolean {
  return typeof (server as unknown as { updateSettings?: unknown }).updateSettings === 'function';
}

export class Tracker {
  /** Raw TCP connections of every kind. */
  readonly sockets = new Set<net.Socket>();
  /** Connections speaking HTTP/1 (for https: the TLS sockets requests see). */
  readonly http1 = new Map<Duplex, Http1Connection>();
  readonly responses = new Set<http.ServerResponse>();
  readonly sessions = new Set<Http2Session>();
  readonly streams = new Set<ServerHttp2Stream>();
  readonly upgraded = new Set<Duplex>();
  private drain: DrainHooks | undefined;

  constructor(readonly server: AnyServer) {
    const plainHttp1 = server instanceof http.Server;
    const tlsHttp1 = server instanceof https.Server || isHttp2(server);
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.drain?.closed('connections');
      });
      if (plainHttp1) this.http1Connection(socket);
    });
    if (tlsHttp1) {
      server.on('secureConnection', (socket: import('node:tls').TLSSocket) => {
        // h2 connections belong to their session; only HTTP/1 ones are idle-closed here.
        if (socket.alpnProtocol !== 'h2') this.http1Connection(socket);
      });
    }
    // Prepended so a response gets `Connection: close` before the application's
    // handler can send its headers.
    server.prependListener('request', (req: http.IncomingMessage, res: unknown) => {
      if (res instanceof http.ServerResponse) this.http1Request(req, res);
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
    this.watchUpgrades();
  }

  /** True when nothing this tracker saw is still open. */
  isEmpty(): boolean {
    return (
      this.sockets.size === 0 &&
      this.responses.size === 0 &&
      this.streams.size === 0 &&
      this.sessions.size === 0 &&
      this.upgraded.size === 0
    );
  }

  /** Starts draining: marks responses, schedules idle closes, closes sessions, announces upgrades. */
  beginDrain(hooks: DrainHooks): void {
    this.drain = hooks;
    for (const res of this.responses) markClose(res);
    for (const conn of this.http1.values()) if (conn.inFlight === 0) this.scheduleIdleClose(conn);
    for (const session of this.sessions) session.close();
    for (const socket of this.upgraded) announce(hooks, socket);
  }

  /** Destroys everything still open; returns what that was. */
  forceAll(): ShutdownCounts {
    const forced: ShutdownCounts = {
      requests: this.responses.size + this.streams.size,
      connections: this.sockets.size,
      sessions: this.sessions.size,
      upgraded: this.upgraded.size,
    };
    this.drain = undefined; // close events from here on are forced, not drained
    for (const res of this.responses) res.socket?.destroy();
    for (const session of this.sessions) session.destroy();
    for (const socket of this.upgraded) socket.destroy();
    for (const socket of this.sockets) socket.destroy();
    return forced;
  }

  /** Ends the drain bookkeeping (after the last close, or after forceAll). */
  endDrain(): void {
    this.drain = undefined;
    for (const conn of this.http1.values()) clearTimeout(conn.idleTimer);
  }

  private http1Connection(socket: Duplex): Http1Connection {
    let conn = this.http1.get(socket);
    if (conn !== undefined) return conn;
    const created: Http1Connection = { socket, inFlight: 0, idleTimer: undefined };
    this.http1.set(socket, created);
    socket.once('close', () => {
      clearTimeout(created.idleTimer);
      this.http1.delete(socket);
    });
    if (this.drain !== undefined) this.scheduleIdleClose(created);
    conn = created;
    return conn;
  }

  private http1Request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const conn = this.http1Connection(req.socket);
    conn.inFlight++;
    clearTimeout(conn.idleTimer);
    conn.idleTimer = undefined;
    this.responses.add(res);
    if (this.drain !== undefined) markClose(res);
    let done = false;
    const finished = (): void => {
      if (done) return;
      done = true;
      this.responses.delete(res);
      conn.inFlight--;
      this.drain?.closed('requests');
      if (this.drain !== undefined && conn.inFlight === 0) this.scheduleIdleClose(conn);
    };
    res.once('finish', finished);
    res.once('close', finished);
  }

  private scheduleIdleClose(conn: Http1Connection): void {
    const grace = this.drain?.idleGrace ?? 0;
    clearTimeout(conn.idleTimer);
    // A request already on the wire would be reset by an immediate close (DESIGN.md,
    // "Keep-alive is where reloads fail"): wait until the connection stayed idle a while.
    conn.idleTimer = setTimeout(() => {
      if (conn.inFlight === 0) conn.socket.destroy();
    }, grace);
    conn.idleTimer.unref();
  }

  /**
   * Node treats an `Upgrade` request as a plain request while the server has no 'upgrade'
   * listener, so ours is present only while the application has one of its own.
   */
  private watchUpgrades(): void {
    const server = this.server;
    const onUpgrade = (_req: http.IncomingMessage, socket: Duplex): void => {
      // The socket leaves the HTTP machinery: never idle-close it as an HTTP connection.
      const conn = this.http1.get(socket);
      if (conn !== undefined) clearTimeout(conn.idleTimer);
      this.http1.delete(socket);
      this.upgraded.add(socket);
      socket.once('close', () => {
        this.upgraded.delete(socket);
        this.drain?.closed('upgraded');
      });
      const drain = this.drain;
      // Announce after the application's own listener completed the handshake.
      if (drain !== undefined) setImmediate(() => announce(drain, socket));
    };
    const others = (): number => server.listeners('upgrade').filter((l) => l !== onUpgrade).length;
    const ours = (): boolean => server.listeners('upgrade').includes(onUpgrade);
    server.on('newListener', (event: string | symbol, listener: unknown) => {
      if (event === 'upgrade' && listener !== onUpgrade && !ours()) server.prependListener('upgrade', onUpgrade);
    });
    server.on('removeListener', (event: string | symbol, listener: unknown) => {
      if (event === 'upgrade' && listener !== onUpgrade && others() === 0 && ours()) {
        server.removeListener('upgrade', onUpgrade);
      }
    });
    if (others() > 0) server.prependListener('upgrade', onUpgrade);
  }
}

function markClose(res: http.ServerResponse): void {
  // Node closes the connection after a response that says `Connection: close`.
  if (!res.headersSent) res.setHeader('Connection', 'close');
}

function announce(hooks: DrainHooks, socket: Duplex): void {
  if (hooks.onUpgrade === undefined || socket.destroyed) return;
  try {
    hooks.onUpgrade(socket);
  } catch {
    // The application's close attempt failed; the deadline destroys the socket anyway.
  }
}
