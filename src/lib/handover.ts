/**
 * Connection hand-over, the sending side: on the master's `stop` with `handover: true`, every
 * plain HTTP/1.1 connection goes to the master (which passes it to the new generation) at a
 * request boundary, instead of being closed. Closing an idle keep-alive connection always
 * races with a client sending on it (RFC 9112 §9.6); moving it does not. The same courier
 * carries the connections a `move` picks while the process keeps serving (move.ts): there
 * is one per process, because Node's channel carries one handle at a time, and a stop that
 * comes during a move takes it over (`forStop`), queue and pacing included.
 *
 * One connection at a time, over Node's IPC channel, which passes the fd with SCM_RIGHTS and
 * holds the next handle until the receiver acknowledged the previous one anyway. Each
 * connection stops reading only right before it goes (a stopped connection waits for its
 * turn otherwise, and the queue can hold thousands). Once the master acknowledged the fd,
 * this process closes its copy; the kernel socket lives on in the receiver. If a send fails,
 * the channel closes, the rest stays here and drains as without hand-over (an unacknowledged
 * one resumes here: the master never passed it on): a connection is never served by two
 * processes and never left open. The drain deadline does not cut the connections waiting for
 * their turn (shutdown.ts): on a slow machine the hand-over takes longer, and the master's
 * drainTimeout, counted from the hand-over's last progress, bounds it.
 *
 * Paced by the master: its `stop` names a `window`, and at most that many connections sent
 * from here may wait in the master for a new worker at once (the master says `landed` for
 * each one that reached its place). The rest wait here, where they are still read and
 * served: a request sent on a connection that waits is answered by this process instead of
 * sitting unread in the master's queue. Without a window (an older master) sends are not
 * paced.
 */
import { channelConnected, onChannelDisconnect, onChannelMessage, send, sendHandle } from './channel.js';
import { atBoundary, type Http1Connection, type SocketInternals, type TcpHandle } from './boundary.js';
import type { HandoverSink, Http1Connections } from './http1.js';
import { arrivalOf } from './registry.js';

interface InFlight {
  owner: Http1Connections;
  conn: Http1Connection;
  handle: TcpHandle;
  wasReading: boolean;
}

/** How long the end of the process waits for `handover-done` to be written. */
const DONE_WRITE_LIMIT_MS = 1000;

/** The courier of this process (one: the channel carries one handle at a time). */
let active: Handover | undefined;
onChannelMessage('landed', () => active?.landed());

/** The hand-over of the whole process: every server of the stop, or the connections a move picked. */
export class Handover {
  private handed = 0;
  private readonly queue: Array<{ owner: Http1Connections; conn: Http1Connection }> = [];
  private head = 0;
  private current: InFlight | undefined;
  private readonly listeners = new Map<Http1Connections, string>();
  private stopped = false;
  /** True once the process stops (a drain with hand-over); before, it only moves what a move picked. */
  private stopping = false;
  private sealed = false;
  private ended = false;
  private done: Promise<void> | undefined;
  private readonly stopWatching: () => void;
  /** Called after every change (a send done, a connection kept or closed): a move checks whether it is over. */
  private readonly watchers = new Set<() => void>();

  /** When (Date.now()) the last connection was handed over: the master's drainTimeout counts from it. */
  private lastHandedAt: number | undefined;
  /** Sent and acknowledged by the master, not yet `landed` (counted only with a window). */
  private inTransit = 0;
  /** Called once no connection waits here for its turn any more (see whenNothingWaits). */
  private readonly nothingWaits = new Set<() => void>();

  /**
   * `kept` counts the connections this process still has and drains itself; `window`, the
   * master's, bounds the connections in transit (undefined: not paced).
   */
  private constructor(
    private kept: () => number,
    private window?: number,
  ) {
    this.stopWatching = onChannelDisconnect(() => this.abandon());
    active = this;
  }

  /**
   * The courier for a stop with hand-over: the one a move started, now stopping (its queue
   * and the connections in transit carry on), or a new one.
   *
   * @example
   * const handover = Handover.possible() ? Handover.forStop(keptConnections, how.window) : undefined;
   */
  static forStop(kept: () => number, window?: number): Handover {
    const h = active ?? new Handover(kept, window);
    // `handover-done` counts what the stop sent; a move reported its own (`move-done`).
    h.handed = 0;
    h.kept = kept;
    h.window = window;
    h.stopping = true;
    return h;
  }

  /**
   * The courier for a move while serving (a new one, or the one already there, with the
   * move's `window`); undefined once the process stops.
   *
   * @example
   * const handover = Handover.forMove(message.window);
   */
  static forMove(window?: number): Handover | undefined {
    if (active?.stopping === true) return undefined;
    const h = active ?? new Handover(() => 0, window);
    h.window = window;
    return h;
  }

  /** True once nothing more can be sent (the channel went away or a send failed). */
  get abandoned(): boolean {
    return this.stopped;
  }

  /** Calls `fn` after every change; returns the function that stops it. */
  watch(fn: () => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  /** True while `conn` is the one being sent. */
  isSending(conn: Http1Connection): boolean {
    return this.current?.conn === conn;
  }

  /** The master says one connection sent from here reached its place: the next may go. */
  landed(): void {
    if (this.inTransit > 0) this.inTransit--;
    this.pump();
    this.check();
  }

  /** True while the master's channel is there to receive connections. */
  static possible(): boolean {
    return channelConnected();
  }

  /** The sink for `owner`'s drain; its connections go to the master as listener `name`. */
  sinkFor(owner: Http1Connections, name: string): HandoverSink {
    this.listeners.set(owner, name);
    return { offer: (t, conn) => this.offer(t, conn), settled: () => this.check() };
  }

  /** Every drain of the stop has begun: once nothing can move any more, say `handover-done`. */
  seal(): void {
    this.sealed = true;
    this.check();
  }

  /** Connections that may still move after the one being sent: every owner's movable ones but that one. */
  private left(): number {
    let n = 0;
    for (const owner of this.listeners.keys()) n += owner.movable();
    return Math.max(0, n - 1);
  }

  /** Connections waiting here for their turn to move: queued, or being sent now. */
  waiting(): number {
    return (this.stopped ? 0 : this.queue.length - this.head) + (this.current === undefined ? 0 : 1);
  }

  /**
   * Calls `fn` once no connection waits for its turn any more: every one moved, or the
   * hand-over stopped (what was left then drains here). At once when nothing waits now.
   */
  whenNothingWaits(fn: () => void): void {
    if (this.waiting() === 0) fn();
    else this.nothingWaits.add(fn);
  }

  /** When (Date.now()) the last connection was handed over; undefined before the first. */
  lastProgress(): number | undefined {
    return this.lastHandedAt;
  }

  /** The socket whose send is in flight: the drain deadline must not destroy it under the send. */
  sending(): SocketInternals | undefined {
    return this.current?.conn.socket as SocketInternals | undefined;
  }

  /** After the drains ended: no more sends; resolves once `handover-done` was written (bounded). */
  finish(): Promise<void> {
    this.ended = true;
    this.abandon();
    // Ref'd on purpose: the channel is unref()ed, and the last message may still wait for
    // the master's acknowledgement of the last handle; without this the loop could empty
    // and the process end before the hooks ran.
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, DONE_WRITE_LIMIT_MS)));
    return Promise.race([this.sayDone(), limit]).finally(() => clearTimeout(timer));
  }

  private offer(owner: Http1Connections, conn: Http1Connection): void {
    if (this.stopped) return owner.keep(conn);
    if (conn.queued) return; // its turn re-checks the boundary
    conn.queued = true;
    this.queue.push({ owner, conn });
    this.pump();
  }

  private pump(): void {
    while (this.current === undefined && this.head < this.queue.length && (this.window === undefined || this.inTransit < this.window)) {
      const { owner, conn } = this.queue[this.head]!;
      this.queue[this.head++] = undefined as never;
      conn.queued = false;
      this.start(owner, conn);
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    }
  }

  private start(owner: Http1Connections, conn: Http1Connection): void {
    const socket = conn.socket as SocketInternals;
    const handle = socket._handle;
    if (!conn.movable || socket.destroyed || handle == null) return;
    // Stop reading first: what the kernel holds from now on travels with the fd.
    const wasReading = handle.reading !== false;
    handle.reading = false;
    handle.readStop();
    if (!atBoundary(conn)) {
      // Busy or half a request read: it is offered again when its response completes.
      resume(handle, wasReading);
      return;
    }
    // The keep-alive timer would destroy the socket while the send waits for its turn.
    socket.setTimeout(0);
    // Like Node's own net.Socket hand-over: without its handle, nothing here can read it.
    socket._handle = null;
    const item: InFlight = { owner, conn, handle, wasReading };
    this.current = item;
    // `left` lets the master pace the rest so that it moves within the hand-over's spread.
    // A relayed connection goes as the socket it arrived on (registry.ts, arrivalOf).
    const listener = arrivalOf(conn.socket) ?? this.listeners.get(owner);
    sendHandle({ type: 'conn', listener, left: this.left() }, handle, (received) => this.sent(item, received));
  }

  private sent(item: InFlight, received: boolean): void {
    this.current = undefined;
    const { owner, conn, handle } = item;
    const socket = conn.socket as SocketInternals;
    if (socket.destroyed) {
      // Destroyed without its handle (the application did; counted as closed): close the fd here.
      handle.close();
    } else if (received) {
      this.handed++;
      this.lastHandedAt = Date.now();
      if (this.window !== undefined) this.inTransit++;
      owner.handedOver(conn);
      // The next send first: the channel is idle until it goes, closing can wait a moment.
      this.pump();
      socket._handle = handle;
      socket.destroy(); // closes this process's fd only; the receiver holds the connection
    } else if (this.ended || (this.stopping && !owner.draining())) {
      // The drain is over (its deadline passed): nobody would close it any more.
      socket._handle = handle;
      socket.destroy();
    } else {
      socket._handle = handle;
      resume(handle, item.wasReading);
      owner.keep(conn);
      this.abandon();
    }
    this.pump();
    this.check();
  }

  /** Stops handing over: everything not yet sent drains here (a send under way completes). */
  private abandon(): void {
    if (!this.stopped) {
      this.stopped = true;
      this.stopWatching();
      for (let i = this.head; i < this.queue.length; i++) this.queue[i]!.conn.queued = false;
      this.queue.length = 0;
      this.head = 0;
      for (const owner of this.listeners.keys()) owner.keepAll();
    }
    this.check();
  }

  private check(): void {
    if (this.nothingWaits.size > 0 && this.waiting() === 0) {
      const waiters = [...this.nothingWaits];
      this.nothingWaits.clear();
      for (const fn of waiters) fn();
    }
    for (const fn of [...this.watchers]) fn();
    if (!this.sealed || this.current !== undefined || this.done !== undefined) return;
    for (const owner of this.listeners.keys()) if (owner.movable() > 0) return;
    void this.sayDone();
  }

  private sayDone(): Promise<void> {
    if (this.done === undefined) {
      const message = { type: 'handover-done', handedOver: this.handed, kept: this.kept() } as const;
      this.done = new Promise((resolve) => send(message, undefined, () => resolve()));
    }
    return this.done;
  }
}

function resume(handle: TcpHandle, wasReading: boolean): void {
  if (!wasReading) return;
  handle.reading = true;
  handle.readStart();
}
