/**
 * The master's broker for connection hand-over: a worker sends a keep-alive connection (a
 * raw socket handle, reading already stopped, at a request boundary) and the broker passes
 * the descriptor on to one of its receivers: round robin, or, in a reload's hand-over, one
 * receiver's share after the other's ({@link BrokerPacing.fill}). It passes descriptors,
 * never bytes: the master never reads from a handed-over socket.
 *
 * Every connection ends in exactly one place: a receiver (handedOver), back in the worker
 * that sent it when no receiver could take it (returned: it is served or drained there as
 * before), or closed when neither is alive (lost). The master's own copy of the descriptor
 * is closed once it went on.
 *
 * Nothing here assumes why a worker sends: a retiring generation hands its connections to
 * the next one (retire.ts), but a serving worker could as well hand a share to a canary,
 * and a receiver need not be a local worker (anything that implements {@link Receiver}).
 * {@link HandoverRoutes} says which broker takes what each worker sends.
 */
import { closeHandle, connMessage, message, type ConnMessage, type MasterMessage, type WsConnMessage } from '../lib/protocol.js';

export interface HandoverCounts {
  /** Connections now served by a receiver (a worker of the new generation). */
  handedOver: number;
  /** Connections given back to the worker that sent them (no receiver could take them). */
  returned: number;
  /** Connections closed because neither side was alive to take them. */
  lost: number;
}

/**
 * Connections a sender may have on their way (sent, not yet `landed`): the `window` of its
 * `stop`. One: a connection in transit is read by nobody, and every one more in the master
 * queues behind the others for its receiver (the master delivers one at a time per
 * receiver). Measured with 1000 paced users (issue 23): with one per sender a connection
 * spent 0.5–1 ms (median) in the master against 2–3 ms with the former 2 per receiving
 * worker (4 per sender with 2 new workers) and 30–50 ms with 8, and the hand-over took as
 * long: its pace is set by the CPU each connection costs, not by the window.
 */
export const HANDOVER_WINDOW = 1;

/**
 * Spreading the hand-over (issue 23): for its first `handoverSpread` (config, default
 * DEFAULT_HANDOVER_SPREAD_MS, 5 s), the master says `landed` to an old worker only after
 * HANDOVER_SPREAD times as long as that connection's whole cycle took (from the worker's
 * previous `landed` to this one's), so moving a few connections keeps the CPU busy about
 * 1/49 of the time. Moving one costs CPU in three processes (the old worker, the master, the
 * new worker): ~0.9 ms in all at full speed, where the hand-over of 1000 connections took
 * most of both cores while they also served, and ~1.8 ms paced, where each of its five
 * channel messages (`conn` and Node's acknowledgement, twice, and `landed`) wakes a process
 * for a loop turn of its own (bench/handover-cpu.ts: 1000 idle connections, 2 cores, Node
 * 24). The cost scales with the work: a few connections move in milliseconds; a sender with more
 * than that pace moves in the time left (its `conn` says how many) is paced just fast enough
 * to move them all by the spread's end ({@link HandoverBroker.paced}): 1000 idle ones (500
 * per old worker) move evenly over the 5 s. Before, about half of those moved within the
 * 5 s and the rest at full speed after it, the slowest ~300 ms of the reload for 1000 paced
 * users (reload-window p99 2.0–2.2 ms against 2.6–3.7 ms, steady 0.8–1.2 ms, Node 24).
 * Measured on 2 cores, one pass each (bench/notes-latency.md), p99 of the reload windows
 * with boot concurrency 1, 1000 paced users: 4.3–4.4 ms with ×2 for 3 s (the former
 * default), 3.6–3.8 ms ×12 for 3 s, 3.4 ms ×48 for 5 s, 2.8–3.7 ms ×48 for 8 s (steady
 * 0.7–1.2 ms); 50 saturating connections
 * 12.9–13.7 ms, 8.9–9.2 ms, 7.7 ms and 6.3–7.9 ms (steady 4.4–5.3 ms). After that time what
 * is left moves at full speed: the drain deadline counts from the last progress, so it
 * never cuts a hand-over that moves.
 */
export const HANDOVER_SPREAD = 48;

/** How a broker paces its senders (see {@link HANDOVER_SPREAD}). */
export interface BrokerPacing {
  /** The clock, ms. */
  now: () => number;
  /** Resolves after `ms`. */
  wait: (ms: number) => Promise<void>;
  /** Each `landed` waits this many times its connection's cycle (0: never waits). */
  spread: number;
  /** For this long after the broker was created. */
  spreadMs: number;
  /**
   * The receivers take their shares in turn instead of round robin: the first receiver gets
   * every connection until it has its share of all the senders said they have (their `left`),
   * then the next. Each receiver ends with the same share as round robin, but they do not
   * fill up together: with round robin the new workers got the same connections at the same
   * pace, so V8 tiered their code up and collected their young generations in the same
   * milliseconds, on every core at once (issue 23; bench/notes-latency.md, "The new workers
   * in turn"). Once a sender said how many it has (one that has not yet counts as none);
   * while none has, round robin.
   */
  fill?: boolean;
}

export const zeroHandover = (): HandoverCounts => ({ handedOver: 0, returned: 0, lost: 0 });

/** Somewhere a connection can go: a worker (worker.ts implements it), or any other process that takes descriptors. */
export interface Receiver {
  /** True while it takes a connection on `listener` now. */
  takes(listener: string | undefined): boolean;
  /**
   * Passes the descriptor on with `message`: true once the receiver holds it (the master's
   * copy may be closed), false when it does not (still the master's, to give elsewhere).
   */
  deliver(message: ConnMessage | WsConnMessage, handle: unknown): Promise<boolean>;
  /** True once it is gone without being asked to: what it took went with it. */
  readonly diedUnasked: boolean;
}

/** A worker that sends connections: also where they go back to, and told when each has landed. */
export interface Sender extends Receiver {
  send(message: MasterMessage): Promise<boolean>;
}

/**
 * Passes connections on to its receivers, round robin or in turn ({@link BrokerPacing.fill}),
 * and counts where each ended.
 *
 * @example
 * const broker = new HandoverBroker(() => next.live().filter((w) => w.acceptsConnections));
 * await broker.forward(oldWorker, 'http', handle);
 * await broker.settled(); broker.counts; // { handedOver: 1, returned: 0, lost: 0 }
 */
export class HandoverBroker {
  readonly counts = zeroHandover();
  /** How long each connection spent in the master, ms: from its arrival to its place (read by nobody meanwhile). */
  readonly transits: number[] = [];
  readonly #now: () => number;
  #next = 0;
  /** Connections delivered to each receiver. */
  readonly #delivered = new Map<Receiver, number>();
  /** Forwards still on their way (the sender may already have exited). */
  readonly #pending = new Set<Promise<void>>();
  readonly #targets: () => Receiver[];
  readonly #pacing: BrokerPacing | undefined;
  readonly #started: number;
  /** When each sender was last told `landed` (the start of its next cycle). */
  readonly #lastLanded = new Map<Receiver, number>();
  /** How many more each sender last said it has to send (its `conn`'s `left`). */
  readonly #left = new Map<Receiver, number>();
  /** Connections each receiver was picked for first (filling in turn). */
  readonly #picked = new Map<Receiver, number>();

  /**
   * `targets` lists the receivers that may take connections, read at each hand-over; `now`
   * times the transits; `pacing` spreads the senders' connections (none: full speed).
   */
  constructor(targets: () => Receiver[], now: () => number = () => performance.now(), pacing?: BrokerPacing) {
    this.#targets = targets;
    this.#now = now;
    this.#pacing = pacing;
    this.#started = pacing?.now() ?? 0;
  }

  /**
   * Resolves when `from` may be told its connection landed: at once, or, while the hand-over
   * is spread, after `spread` times the cycle that connection took, but never so late that
   * the `left` connections the sender still has (its count, when it says) could not move
   * by the end of the spread at the same cycle: the pace quickens instead of leaving a
   * remainder that would move at full speed all at once.
   */
  async paced(from: Receiver, left?: number): Promise<void> {
    const p = this.#pacing;
    if (p !== undefined && p.spread > 0) {
      const now = p.now();
      const cycle = now - (this.#lastLanded.get(from) ?? this.#started);
      const remaining = p.spreadMs - (now - this.#started);
      if (remaining > 0 && cycle > 0) {
        let ms = Math.min(cycle * p.spread, remaining);
        if (left !== undefined && left > 0) ms = Math.min(ms, Math.max(0, (remaining - left * cycle) / (left + 1)));
        if (ms > 0) await p.wait(ms);
      }
      this.#lastLanded.set(from, p.now());
    }
  }

  /**
   * Passes one connection from `from` on; resolves once it has landed somewhere. `as` builds
   * what receivers get with it (a `conn` by default; a WebSocket's `ws-conn`: ws-handover.ts);
   * `left`: how many more `from` says it has to send after this one.
   */
  forward(
    from: Receiver, listener: string | undefined, handle: unknown,
    as: (returned: boolean) => ConnMessage | WsConnMessage = (r) => connMessage(listener, r), left?: number,
  ): Promise<void> {
    const arrived = this.#now();
    if (left !== undefined) this.#left.set(from, left);
    const p = this.#forward(from, listener, handle, as).finally(() => {
      this.#pending.delete(p);
      this.transits.push(this.#now() - arrived);
    });
    this.#pending.add(p);
    return p;
  }

  /** True when a receiver takes connections now, of at least one listener. */
  hasReceiver(): boolean {
    return this.#targets().some((r) => r.takes(undefined));
  }

  /**
   * Resolves once every connection received so far has landed. Connections delivered to a
   * receiver that has died unasked since went with it: they move from `handedOver` to `lost`.
   */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
    for (const [r, n] of this.#delivered) {
      if (!r.diedUnasked) continue;
      this.counts.handedOver -= n;
      this.counts.lost += n;
      this.#delivered.delete(r);
    }
  }

  async #forward(from: Receiver, listener: string | undefined, handle: unknown, as: (returned: boolean) => ConnMessage | WsConnMessage): Promise<void> {
    const candidates = this.#targets().filter((r) => r.takes(listener));
    // Taken before the first await: forwards run concurrently, each to the next target.
    const start = this.#pick(candidates);
    for (let i = 0; i < candidates.length; i++) {
      const target = candidates[(start + i) % candidates.length] as Receiver;
      if (await target.deliver(as(false), handle)) {
        closeHandle(handle);
        this.counts.handedOver++;
        this.#delivered.set(target, (this.#delivered.get(target) ?? 0) + 1);
        return;
      }
    }
    if (await from.deliver(as(true), handle)) {
      closeHandle(handle);
      this.counts.returned++;
      return;
    }
    closeHandle(handle);
    this.counts.lost++;
  }

  /**
   * Which candidate is offered the connection first: the next in round robin, or, filling in
   * turn, the first whose share of all the connections the senders said they have is not yet
   * full. Shares are counted by the pick, not by the landing: forwards run concurrently.
   */
  #pick(candidates: Receiver[]): number {
    const turn = this.#next++;
    if (this.#pacing?.fill !== true || candidates.length < 2 || this.#left.size === 0) return turn;
    // Every connection received so far (this one's pick was the last: #next counts them) and what the senders still have.
    let total = this.#next;
    for (const n of this.#left.values()) total += n;
    const share = Math.ceil(total / candidates.length);
    const first = candidates.findIndex((r) => (this.#picked.get(r) ?? 0) < share);
    const at = first < 0 ? turn % candidates.length : first;
    const r = candidates[at] as Receiver;
    this.#picked.set(r, (this.#picked.get(r) ?? 0) + 1);
    return at;
  }
}

/**
 * Which broker takes the connections each worker sends. A connection from a worker with no
 * route (sent out of turn) goes back to it.
 *
 * @example
 * routes.open(oldWorker, broker);
 * worker.on('message', (m, handle) => m.type === 'conn' && routes.receive(worker, m.listener, handle));
 */
export class HandoverRoutes {
  readonly #routes = new Map<Sender, HandoverBroker>();

  open(from: Sender, broker: HandoverBroker): void {
    this.#routes.set(from, broker);
  }

  /** Ends `from`'s route (only while it is `broker`'s, when given: a later route is someone else's). */
  close(from: Sender, broker?: HandoverBroker): void {
    if (broker === undefined || this.#routes.get(from) === broker) this.#routes.delete(from);
  }

  /**
   * One connection `from` sent: passed on by its route, then `landed` tells `from` the next
   * may go. `left`: how many more it has to send (its `conn` message says, a valid count).
   */
  receive(from: Sender, listener: string | undefined, handle: unknown, left?: number): void {
    const broker = this.#routes.get(from) ?? new HandoverBroker(() => []);
    void broker.forward(from, listener, handle, undefined, left).then(() => broker.paced(from, left)).then(() => from.send(message({ type: 'landed' })));
  }
}
