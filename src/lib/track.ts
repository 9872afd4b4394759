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
import { canMove, watchRequestStart, type Http1Connection } from './boundary.js';
import type { AnyServer, ShutdownCounts } from './types.js';
import { announce, watchUpgrades } from './upgrades.js';

export type { Http1Connection } from './boundary.js';

/** What the tracker needs from a running drain. */
export interface DrainHooks {
  idleGrace: number;
  onUpgrade: ((socket: Duplex) => void) | undefined;
  /** One item of `kind` finished during the drain. */
  closed(kind: keyof ShutdownCounts): void;
  /** Present when plain HTTP/1.1 connections are handed over instead of closed. */
  handover?: HandoverSink | undefined;
  /** One connection was handed over (counted when its send is written). */
  moved?(): void;
  /** A handed-over connection's copy here closed: the drain may be over. */
  movedClosed?(): void;
}

/** Where a hand-over drain sends connections that may be at a request boundary. */
export interface HandoverSink {
  /** `conn` finished its last response (or was idle): hand it over when its turn comes. */
  offer(tracker: Tracker, conn: Http1Connection): void;
  /** A movable connection closed or stopped being movable. */
  settled(): void;
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
  /** Connections handed over: their close is neither drained nor forced. */
  private readonly moved = new WeakSet<Duplex>();
  private movableCount = 0;
  private drain: DrainHooks | undefined;

  constructor(readonly server: AnyServer) {
    const plainHttp1 = server instanceof http.Server;
    const tlsHttp1 = server instanceof https.Server || isHttp2(server);
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        if (this.moved.has(socket)) this.drain?.movedClosed?.();
        else this.drain?.closed('connections');
      });
      if (plainHttp1) watchRequestStart(this.http1Connection(socket));
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
    watchUpgrades(server, (_req, socket) => this.upgrade(socket));
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

  /**
   * Starts draining: marks responses, schedules idle closes, closes sessions, announces
   * upgrades. With `hooks.handover`, this server's HTTP/1.1 connections are offered for
   * hand-over instead (idle ones now, busy ones when their response completes).
   */
  beginDrain(hooks: DrainHooks): void {
    this.drain = hooks;
    if (hooks.handover !== undefined) for (const conn of this.http1.values()) this.setMovable(conn, canMove(conn));
    for (const res of this.responses) if (!this.isMovable(socketOf(res))) markClose(res);
    for (const conn of this.http1.values()) if (conn.inFlight === 0) this.becameIdle(conn);
    for (const session of this.sessions) session.close();
    for (const socket of this.upgraded) announce(hooks.onUpgrade, socket);
  }

  /** Destroys everything still open except `spare` (a hand-over in flight); returns what that was. */
  forceAll(spare?: Duplex): ShutdownCounts {
    let connections = 0;
    for (const socket of this.sockets) if (socket !== spare && !this.moved.has(socket)) connections++;
    const forced: ShutdownCounts = {
      requests: this.responses.size + this.streams.size,
      connections,
      sessions: this.sessions.size,
      upgraded: this.upgraded.size,
    };
    const sink = this.drain?.handover;
    this.drain = undefined; // close events from here on are forced, not drained
    for (const conn of this.http1.values()) this.setMovable(conn, false);
    for (const res of this.responses) if (res.socket !== spare) res.socket?.destroy();
    for (const session of this.sessions) session.destroy();
    for (const socket of this.upgraded) socket.destroy();
    for (const socket of this.sockets) if (socket !== spare) socket.destroy();
    sink?.settled();
    return forced;
  }

  /** True between beginDrain() and the end of the drain. */
  draining(): boolean {
    return this.drain !== undefined;
  }

  /** Open connections that were not handed over. */
  keptConnections(): number {
    let kept = 0;
    for (const socket of this.sockets) if (!this.moved.has(socket)) kept++;
    return kept;
  }

  /** Connections that may still be handed over. */
  movable(): number {
    return this.movableCount;
  }

  /** `conn` went to another process: count it as handed over, not as drained (then destroy this copy). */
  handedOver(conn: Http1Connection): void {
    this.moved.add(conn.socket);
    this.setMovable(conn, false);
    this.drain?.moved?.();
  }

  /** `conn` stays here after all: today's drain rules (Connection: close, idle grace). */
  keep(conn: Http1Connection): void {
    if (!conn.movable) return;
    this.setMovable(conn, false);
    for (const res of this.responses) if (socketOf(res) === conn.socket) markClose(res);
    if (this.drain !== undefined && conn.inFlight === 0) this.scheduleIdleClose(conn);
    this.drain?.handover?.settled();
  }

  /** Every connection stays here (the hand-over failed or was abandoned); one pass over responses. */
  keepAll(): void {
    if (this.movableCount === 0) return;
    for (const res of this.responses) if (this.isMovable(socketOf(res))) markClose(res);
    for (const conn of this.http1.values()) {
      if (!conn.movable) continue;
      this.setMovable(conn, false);
      if (this.drain !== undefined && conn.inFlight === 0) this.scheduleIdleClose(conn);
    }
    this.drain?.handover?.settled();
  }

  /** `conn` can no longer move (closed, upgraded): tell a waiting hand-over. */
  private settle(conn: Http1Connection): void {
    if (!conn.movable) return;
    this.setMovable(conn, false);
    this.drain?.handover?.settled();
  }

  private setMovable(conn: Http1Connection, movable: boolean): void {
    if (conn.movable !== movable) this.movableCount += movable ? 1 : -1;
    conn.movable = movable;
  }

  private isMovable(socket: Duplex | null | undefined): boolean {
    return socket != null && this.http1.get(socket)?.movable === true;
  }

  private becameIdle(conn: Http1Connection): void {
    const sink = this.drain?.handover;
    if (conn.movable && sink !== undefined) sink.offer(this, conn);
    else this.scheduleIdleClose(conn);
  }

  /** Ends the drain bookkeeping (after the last close, or after forceAll). */
  endDrain(): void {
    this.drain = undefined;
    for (const conn of this.http1.values()) clearTimeout(conn.idleTimer);
  }

  private http1Connection(socket: Duplex): Http1Connection {
    let conn = this.http1.get(socket);
    if (conn !== undefined) return conn;
    const created: Http1Connection = { socket, inFlight: 0, idleTimer: undefined, partial: false, unfinished: undefined, movable: false, queued: false, keepAliveArmed: false };
    this.http1.set(socket, created);
    socket.once('close', () => {
      clearTimeout(created.idleTimer);
      this.http1.delete(socket);
      this.settle(created);
    });
    if (this.drain !== undefined) this.scheduleIdleClose(created);
    conn = created;
    return conn;
  }

  private http1Request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const conn = this.http1Connection(req.socket);
    conn.inFlight++;
    conn.partial = false;
    if (conn.keepAliveArmed) {
      conn.keepAliveArmed = false;
      req.socket.setTimeout((this.server as http.Server).timeout || 0);
    }
    clearTimeout(conn.idleTimer);
    conn.idleTimer = undefined;
    this.responses.add(res);
    if (this.drain !== undefined && !conn.movable) markClose(res);
    let done = false;
    const finished = (): void => {
      if (done) return;
      done = true;
      this.responses.delete(res);
      conn.inFlight--;
      // Answered before its body arrived: the rest of the body is still on its way.
      conn.unfinished = req.complete ? undefined : req;
      this.drain?.closed('requests');
      if (this.drain === undefined || conn.inFlight !== 0) return;
      if (conn.unfinished === undefined || !conn.movable) return this.becameIdle(conn);
      conn.unfinished.once('end', () => {
        if (this.drain !== undefined && conn.inFlight === 0) this.becameIdle(conn);
      });
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

  /** The socket left the HTTP machinery: never idle-close or hand it over as an HTTP connection. */
  private upgrade(socket: Duplex): void {
    const conn = this.http1.get(socket);
    if (conn !== undefined) {
      clearTimeout(conn.idleTimer);
      this.settle(conn);
    }
    this.http1.delete(socket);
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

/** A response's connection; a pipelined response waiting its turn has no socket yet. */
function socketOf(res: http.ServerResponse): Duplex | null | undefined {
  return res.socket ?? (res as { req?: http.IncomingMessage }).req?.socket;
}

function markClose(res: http.ServerResponse): void {
  // Node closes the connection after a response that says `Connection: close`.
  if (!res.headersSent) res.setHeader('Connection', 'close');
}
