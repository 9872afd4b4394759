/**
 * The HTTP/1 connections and responses of one server (part of its Tracker): which
 * connections are idle, which responses are in flight, and, during a drain, what happens to
 * a connection once it is idle: closed after the idle grace, or, in a hand-over drain,
 * offered for hand-over (handover.ts) instead of told to close.
 *
 * Outside a drain, a move (move.ts) may pick some connections to leave while the server
 * keeps serving: those are `movable` with the move's sink, offered when idle, and every
 * other connection is left alone (no `Connection: close`, no idle close).
 */
import type * as http from 'node:http';
import type { Duplex } from 'node:stream';
import { canMove, type Http1Connection } from './boundary.js';
import { whenResponseCloses } from './response-end.js';
import type { AnyServer, ShutdownCounts } from './types.js';

/** Requests begun in this process, every tracked server together: the clock of {@link Http1Connection.lastUse}. */
let requestsBegun = 0;

/** What the tracker needs from a running drain. */
export interface DrainHooks {
  idleGrace: number;
  onUpgrade: ((socket: Duplex) => void) | undefined;
  /** Window over which upgraded connections are sent away (ms; goaway.ts). */
  spread: number;
  /**
   * Present when upgraded connections may move to the next generation (hitless/ws, in a
   * hand-over drain): moves what it can, calls `moved` for each, resolves with the rest.
   */
  moveUpgraded?: ((sockets: Duplex[], moved: (socket: Duplex) => void) => Promise<Duplex[]>) | undefined;
  /** One item of `kind` finished during the drain. */
  closed(kind: keyof ShutdownCounts): void;
  /** Present when plain HTTP/1.1 connections are handed over instead of closed. */
  handover?: HandoverSink | undefined;
  /** One connection was handed over (counted once the master acknowledged it). */
  moved?(): void;
  /** A handed-over connection's copy here closed: the drain may be over. */
  movedClosed?(): void;
}

/** Where a hand-over drain sends connections that may be at a request boundary. */
export interface HandoverSink {
  /** `conn` finished its last response (or was idle): hand it over when its turn comes. */
  offer(owner: Http1Connections, conn: Http1Connection): void;
  /** A movable connection closed or stopped being movable. */
  settled(): void;
}

export class Http1Connections {
  /** Connections speaking HTTP/1 (for https: the TLS sockets requests see). */
  readonly connections = new Map<Duplex, Http1Connection>();
  readonly responses = new Set<http.ServerResponse>();
  /** Connections handed over: their close is neither drained nor forced. */
  private readonly moved = new WeakSet<Duplex>();
  private movableCount = 0;
  /** Where a move outside a drain sends the connections it picked (move.ts); the drain's sink wins. */
  private mover: HandoverSink | undefined;

  constructor(
    private readonly server: AnyServer,
    private readonly drain: () => DrainHooks | undefined,
  ) {}

  /** The record of `socket`, created on first sight (and idle-closed if a drain runs). */
  add(socket: Duplex): Http1Connection {
    const known = this.connections.get(socket);
    if (known !== undefined) return known;
    const conn: Http1Connection = {
      socket,
      inFlight: 0,
      idleTimer: undefined,
      partial: false,
      unfinished: undefined,
      movable: false,
      queued: false,
      keepAliveArmed: false,
      requests: 0,
      lastUse: 0,
    };
    this.connections.set(socket, conn);
    socket.once('close', () => this.remove(socket));
    if (this.drain() !== undefined) this.scheduleIdleClose(conn);
    return conn;
  }

  /** Forgets `socket` (closed, or upgraded: it left the HTTP machinery). */
  remove(socket: Duplex): void {
    const conn = this.connections.get(socket);
    if (conn === undefined) return;
    clearTimeout(conn.idleTimer);
    this.connections.delete(socket);
    if (conn.movable) {
      this.setMovable(conn, false);
      this.sink()?.settled();
    }
  }

  /** Tracks one request until its response finished or closed. */
  request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const conn = this.add(req.socket);
    conn.inFlight++;
    conn.requests++;
    conn.lastUse = ++requestsBegun;
    conn.partial = false;
    if (conn.keepAliveArmed) {
      conn.keepAliveArmed = false;
      // What node:http does when a request arrives after it armed the keep-alive timer.
      req.socket.setTimeout((this.server as { timeout?: number }).timeout || 0);
    }
    clearTimeout(conn.idleTimer);
    conn.idleTimer = undefined;
    this.responses.add(res);
    if (this.drain() !== undefined && !conn.movable) markClose(res);
    let done = false;
    const finished = (): void => {
      if (done) return;
      done = true;
      this.responses.delete(res);
      conn.inFlight--;
      // Answered before its body arrived: the rest of the body is still on its way.
      conn.unfinished = req.complete ? undefined : req;
      const drain = this.drain();
      drain?.closed('requests');
      if (conn.inFlight !== 0 || !this.acting(conn)) return;
      if (conn.unfinished === undefined || !conn.movable) return this.becameIdle(conn);
      conn.unfinished.once('end', () => {
        if (this.acting(conn) && conn.inFlight === 0) this.becameIdle(conn);
      });
    };
    res.once('finish', finished);
    whenResponseCloses(req.socket, res, finished);
  }

  /** A drain began: mark responses `Connection: close` and close idle connections, or offer them for hand-over. */
  beginDrain(handover: boolean): void {
    // A move's picks (move.ts) follow the drain from here: handed over with the rest, or drained.
    if (!handover) this.keepAll();
    // A connection a move is sending right now (its handle out) stays movable: its send decides.
    if (handover) for (const conn of this.connections.values()) this.setMovable(conn, conn.movable || canMove(conn));
    for (const res of this.responses) if (!this.isMovable(socketOf(res))) markClose(res);
    for (const conn of this.connections.values()) if (conn.inFlight === 0) this.becameIdle(conn);
  }

  /** The deadline passed: nothing moves any more; destroys the sockets of open responses except `spare`. */
  force(spare: Duplex | undefined): void {
    for (const conn of this.connections.values()) this.setMovable(conn, false);
    for (const res of this.responses) if (res.socket !== spare) res.socket?.destroy();
  }

  /** The drain ended. */
  endDrain(): void {
    for (const conn of this.connections.values()) clearTimeout(conn.idleTimer);
  }

  /** True when `socket` was handed over. */
  wasMoved(socket: Duplex): boolean {
    return this.moved.has(socket);
  }

  /** Connections that may still be handed over. */
  movable(): number {
    return this.movableCount;
  }

  /**
   * A move outside a drain (move.ts): `conns` leave through `sink` at their next request
   * boundary, the idle ones now; the others are untouched.
   */
  pick(conns: Http1Connection[], sink: HandoverSink): void {
    this.mover = sink;
    for (const conn of conns) this.setMovable(conn, true);
    for (const conn of conns) if (conn.inFlight === 0 && conn.movable) this.becameIdle(conn);
  }

  /** The move that sent through `sink` is over: nothing more leaves unless a drain (or a later move) says so. */
  endMove(sink: HandoverSink): void {
    if (this.mover === sink) this.mover = undefined;
  }

  /** True while a drain runs. */
  draining(): boolean {
    return this.drain() !== undefined;
  }

  /** `conn` went to another process: count it as handed over, not as drained (its owner then destroys this copy). */
  handedOver(conn: Http1Connection): void {
    this.moved.add(conn.socket);
    this.setMovable(conn, false);
    this.drain()?.moved?.();
  }

  /** `conn` stays here after all: in a drain, the drain's rules (Connection: close, idle grace); else it just serves on. */
  keep(conn: Http1Connection): void {
    if (!conn.movable) return;
    this.setMovable(conn, false);
    if (this.drain() !== undefined) {
      for (const res of this.responses) if (socketOf(res) === conn.socket) markClose(res);
      if (conn.inFlight === 0) this.scheduleIdleClose(conn);
    }
    this.sink()?.settled();
  }

  /** Every connection stays here (the hand-over failed or was abandoned); one pass over responses. */
  keepAll(): void {
    if (this.movableCount === 0) return;
    const draining = this.drain() !== undefined;
    if (draining) for (const res of this.responses) if (this.isMovable(socketOf(res))) markClose(res);
    for (const conn of this.connections.values()) {
      if (!conn.movable) continue;
      this.setMovable(conn, false);
      if (draining && conn.inFlight === 0) this.scheduleIdleClose(conn);
    }
    this.sink()?.settled();
  }

  /** Where an idle movable connection goes: the drain's hand-over, else a move's. */
  private sink(): HandoverSink | undefined {
    return this.drain()?.handover ?? this.mover;
  }

  /** True when an idle `conn` needs action: a drain runs, or a move picked it. */
  private acting(conn: Http1Connection): boolean {
    return this.drain() !== undefined || (conn.movable && this.mover !== undefined);
  }

  private setMovable(conn: Http1Connection, movable: boolean): void {
    if (conn.movable !== movable) this.movableCount += movable ? 1 : -1;
    conn.movable = movable;
  }

  private isMovable(socket: Duplex | null | undefined): boolean {
    return socket != null && this.connections.get(socket)?.movable === true;
  }

  private becameIdle(conn: Http1Connection): void {
    const sink = this.sink();
    if (conn.movable && sink !== undefined) sink.offer(this, conn);
    else if (this.drain() !== undefined) this.scheduleIdleClose(conn);
  }

  private scheduleIdleClose(conn: Http1Connection): void {
    const grace = this.drain()?.idleGrace ?? 0;
    clearTimeout(conn.idleTimer);
    // A request already on the wire would be reset by an immediate close (DESIGN.md,
    // "Keep-alive is where reloads fail"): wait until the connection stayed idle a while.
    conn.idleTimer = setTimeout(() => {
      if (conn.inFlight === 0) conn.socket.destroy();
    }, grace);
    conn.idleTimer.unref();
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
