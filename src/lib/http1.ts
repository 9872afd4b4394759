/**
 * The HTTP/1 connections and responses of one server (part of its Tracker): which
 * connections are idle, which responses are in flight, and, during a drain, what happens to
 * a connection once it is idle: closed after the idle grace, or, in a hand-over drain,
 * offered for hand-over (handover.ts) instead of told to close.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { canMove, type Http1Connection } from './boundary.js';
import type { AnyServer, ShutdownCounts } from './types.js';

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
      this.drain()?.handover?.settled();
    }
  }

  /** Tracks one request until its response finished or closed. */
  request(req: http.IncomingMessage, res: http.ServerResponse): void {
    const conn = this.add(req.socket);
    conn.inFlight++;
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
      if (drain === undefined || conn.inFlight !== 0) return;
      if (conn.unfinished === undefined || !conn.movable) return this.becameIdle(conn);
      conn.unfinished.once('end', () => {
        if (this.drain() !== undefined && conn.inFlight === 0) this.becameIdle(conn);
      });
    };
    res.once('finish', finished);
    res.once('close', finished);
  }

  /** A drain began: mark responses `Connection: close` and close idle connections, or offer them for hand-over. */
  beginDrain(handover: boolean): void {
    if (handover) for (const conn of this.connections.values()) this.setMovable(conn, canMove(conn));
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

  /** `conn` stays here after all: the drain's rules (Connection: close, idle grace). */
  keep(conn: Http1Connection): void {
    if (!conn.movable) return;
    this.setMovable(conn, false);
    for (const res of this.responses) if (socketOf(res) === conn.socket) markClose(res);
    if (this.drain() !== undefined && conn.inFlight === 0) this.scheduleIdleClose(conn);
    this.drain()?.handover?.settled();
  }

  /** Every connection stays here (the hand-over failed or was abandoned); one pass over responses. */
  keepAll(): void {
    if (this.movableCount === 0) return;
    for (const res of this.responses) if (this.isMovable(socketOf(res))) markClose(res);
    for (const conn of this.connections.values()) {
      if (!conn.movable) continue;
      this.setMovable(conn, false);
      if (this.drain() !== undefined && conn.inFlight === 0) this.scheduleIdleClose(conn);
    }
    this.drain()?.handover?.settled();
  }

  private setMovable(conn: Http1Connection, movable: boolean): void {
    if (conn.movable !== movable) this.movableCount += movable ? 1 : -1;
    conn.movable = movable;
  }

  private isMovable(socket: Duplex | null | undefined): boolean {
    return socket != null && this.connections.get(socket)?.movable === true;
  }

  private becameIdle(conn: Http1Connection): void {
    const sink = this.drain()?.handover;
    if (conn.movable && sink !== undefined) sink.offer(this, conn);
    else this.scheduleIdleClose(conn);
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
