/**
 * Per-server connection tracking, installed before the first connection can arrive
 * (listen(), serve() and track() call it). shutdown() needs it to tell idle keep-alive
 * connections from busy ones, to mark in-flight responses `Connection: close`, and to find
 * HTTP/2 sessions and upgraded sockets, none of which Node lets a caller enumerate.
 * A hand-over drain (handover.ts) moves plain HTTP/1.1 connections to another process at a
 * request boundary instead of closing them.
 */
import type * as http from 'node:http';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import { watchRequestStart } from './boundary.js';
import { isWebSocketRequest, watchFrames } from './frames.js';
import { GoAwaySchedule } from './goaway.js';
import { Http1Connections, type DrainHooks } from './http1.js';
import { nodeHttp, nodeHttps } from './node-http.js';
import { isPlainHttp } from './registry.js';
import { observe } from './stats.js';
import type { AnyServer, ShutdownCounts } from './types.js';
import { watchUpgrades } from './upgrades.js';

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

  /** True while this server drains (between beginDrain and endDrain or forceAll). */
  get draining(): boolean {
    return this.drain !== undefined;
  }
  /** The turns at which the drain sends upgraded connections away (goaway.ts). */
  private away: GoAwaySchedule | undefined;
  /** Upgraded connections moved to another process (hitless/ws): their close is neither drained nor forced. */
  private readonly movedAway = new WeakSet<Duplex>();
  /**
   * True while upgraded connections are being moved (hitless/ws): until the master has said
   * where each one landed, one it gives back must still find this drain open.
   */
  private movingUpgraded = false;

  constructor(readonly server: AnyServer) {
    this.http1 = new Http1Connections(server, () => this.drain);
    const plainHttp1 = isPlainHttp(server);
    const tlsHttp1 = server instanceof nodeHttps.Server || isHttp2(server);
    server.on('connection', (socket: net.Socket) => {
      this.addSocket(socket);
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
      if (res instanceof nodeHttp.ServerResponse) this.http1.request(req, res);
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
    watchUpgrades(server, (req, socket) => this.upgrade(req, socket));
  }

  /** True when nothing this tracker saw is still open. */
  isEmpty(): boolean {
    return (
      this.sockets.size === 0 &&
      this.http1.responses.size === 0 &&
      this.streams.size === 0 &&
      this.sessions.size === 0 &&
      this.upgraded.size === 0 &&
      !this.movingUpgraded
    );
  }

  /**
   * Starts draining: marks responses, schedules idle closes, closes sessions, sends upgraded
   * connections away (close 1001, spread over `hooks.spread`; the application's `onUpgrade`
   * instead when it gave one). With `hooks.handover`, this server's HTTP/1.1 connections are
   * offered for hand-over instead (idle ones now, busy ones when their response completes).
   */
  beginDrain(hooks: DrainHooks): void {
    this.drain = hooks;
    this.http1.beginDrain(hooks.handover !== undefined);
    for (const session of this.sessions) session.close();
    const away = new GoAwaySchedule(hooks.onUpgrade, hooks.spread);
    this.away = away;
    const upgraded = [...this.upgraded];
    if (hooks.moveUpgraded === undefined || upgraded.length === 0) return away.schedule(upgraded);
    // Moved first (the client sees nothing), then what could not move is sent away. The
    // mover resolves once every moved one landed, so one the master gave back (no new worker
    // took it) is tracked here again by then, and closed with 1001, not cut by our exit.
    this.movingUpgraded = true;
    const moved = (): void => {
      this.movingUpgraded = false;
      hooks.movedClosed?.();
    };
    void hooks.moveUpgraded(upgraded, (socket) => this.movedOut(socket)).then(
      (rest) => {
        if (this.away === away) away.schedule(rest.filter((s) => !s.destroyed));
        moved();
      },
      () => {
        if (this.away === away) away.schedule([...this.upgraded]);
        moved();
      },
    );
  }

  /** Destroys everything still open except `spare` (a hand-over under way); returns what that was. */
  forceAll(spare?: Duplex): ShutdownCounts {
    let connections = 0;
    for (const socket of this.sockets) if (socket !== spare && !this.wasMoved(socket)) connections++;
    const forced: ShutdownCounts = {
      requests: this.http1.responses.size + this.streams.size,
      connections,
      sessions: this.sessions.size,
      upgraded: [...this.upgraded].filter((s) => !this.movedAway.has(s)).length,
    };
    const sink = this.drain?.handover;
    this.drain = undefined; // close events from here on are forced, not drained
    this.away?.cancel();
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
    this.away?.cancel();
    this.http1.endDrain();
  }

  /**
   * True when every request is answered and every connection left is an upgraded one (or was
   * handed over): the drain waits only for long-lived connections (a `lingering` report).
   */
  holdsOnlyUpgraded(): boolean {
    if (this.http1.responses.size > 0 || this.streams.size > 0 || this.sessions.size > 0) return false;
    for (const socket of this.sockets) if (!this.upgraded.has(socket) && !this.wasMoved(socket)) return false;
    return true;
  }

  /** Open connections that were not handed over. */
  keptConnections(): number {
    let kept = 0;
    for (const socket of this.sockets) if (!this.wasMoved(socket)) kept++;
    return kept;
  }

  /**
   * Tracks an upgraded connection that arrived from another process (a WebSocket hitless/ws
   * rebuilt here): it never was an HTTP connection of this server.
   */
  adoptUpgraded(socket: net.Socket): void {
    this.addSocket(socket);
    this.addUpgraded(socket);
  }

  /** True when `socket` went to another process (an HTTP hand-over or a moved WebSocket). */
  private wasMoved(socket: Duplex): boolean {
    return this.http1.wasMoved(socket) || this.movedAway.has(socket);
  }

  /** An upgraded connection went to another process: counted as handed over (its owner then destroys this copy). */
  private movedOut(socket: Duplex): void {
    this.movedAway.add(socket);
    this.drain?.moved?.();
  }

  private addSocket(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      if (this.wasMoved(socket)) this.drain?.movedClosed?.();
      else this.drain?.closed('connections');
    });
  }

  private addUpgraded(socket: Duplex): void {
    this.upgraded.add(socket);
    socket.once('close', () => {
      this.upgraded.delete(socket);
      if (this.movedAway.has(socket)) this.drain?.movedClosed?.();
      else this.drain?.closed('upgraded');
    });
    if (this.drain !== undefined) this.away?.late(socket);
  }

  /** The socket left the HTTP machinery: never idle-close or hand it over as an HTTP connection. */
  private upgrade(req: http.IncomingMessage, socket: Duplex): void {
    // Before the application's listener writes the 101: count its frames from the start.
    if (isWebSocketRequest(req.headers)) watchFrames(socket);
    this.http1.remove(socket);
    this.addUpgraded(socket);
  }
}
