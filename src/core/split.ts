/**
 * A connection split (issue 18): while a canary is judged, the serving workers hand a part
 * of their kept-alive connections to the canary workers and keep serving the rest. Clients
 * that keep their connections (a proxy's upstream pool, API clients, browsers) open no new
 * ones, so without this a canary would get none of their requests. A scale-up splits the
 * same way, to the workers it started, until every sender has moved its part.
 *
 * Each serving worker that said hello with `moves` gets a `move` message (a share of its
 * connections, or its part of a count) and sends the picked ones at request boundaries, as
 * a retiring worker does (src/lib/move.ts); a broker (handover.ts) passes them to the
 * canary workers, round robin, paced by `landed`. A canary worker that dies while receiving
 * costs what it held (counted `lost`); one that cannot take a connection passes it to the
 * next, else it goes back to the serving worker that sent it (`returned`): never served
 * twice. {@link ConnectionSplit.end} stops it (`move-end`) before the canary is retired or
 * the rest goes live, so the two never overlap. {@link ConnectionSplit.topUp} asks one
 * sender for one more (the connection it used last: a starved canary, strategies/canary.ts);
 * each sender's moves are counted until their `move-done`s, so every one is ended and
 * waited for alike.
 */
import { message, moveMessage, type MoveMessage } from '../lib/protocol.js';
import { HANDOVER_WINDOW, HandoverBroker, type HandoverCounts, type HandoverRoutes, type Receiver } from './handover.js';
import type { Host } from './host.js';
import type { Worker, WorkerReport } from './worker.js';

/** What the serving workers are asked to hand over: a share (0..1) of each one's connections, or a count in all. */
export type SplitAsk = { share: number } | { count: number };

/** How long a connection picked for the canary may stay busy before it stays where it is (the `move`'s `within`). */
export const SPLIT_WITHIN_MS = 5000;

/** How long {@link ConnectionSplit.end} waits for each serving worker's `move-done` (a send under way finishes first). */
export const SPLIT_END_LIMIT_MS = 2000;

/** What a split did. */
export interface SplitCounts extends HandoverCounts {
  /** Serving workers asked to move connections. */
  asked: number;
  /** What they said they moved and kept (`move-done`, added up). */
  reported: { moved: number; kept: number };
}

export interface SplitOptions {
  /** The serving workers asked to move (those that said hello with `moves`). */
  senders: Worker[];
  /** Where the connections go, read at each one (the ready canary workers). */
  receivers: () => Receiver[];
  ask: SplitAsk;
  /** The `move`'s bound for busy connections, ms. */
  within: number;
  routes: HandoverRoutes;
  host: Pick<Host, 'setTimer'>;
  /** A sender's open connections as it last reported them, when known: a count is shared out by them. */
  open?: (w: Worker) => number | undefined;
}

/**
 * One split, from {@link start} to {@link end}.
 *
 * @example
 * const split = new ConnectionSplit({ senders: old.live(), receivers: () => canary, ask: { share: 1 / 3 }, within: 5000, routes, host });
 * split.start();
 * // … judge the canary …
 * const counts = await split.end(); // { handedOver: 9, returned: 0, lost: 0, asked: 3, reported: { moved: 9, kept: 0 } }
 */
export class ConnectionSplit {
  readonly #o: SplitOptions;
  readonly #broker: HandoverBroker;
  /** Moves sent to each sender and not answered by `move-done` yet. */
  readonly #pending = new Map<Worker, number>();
  /** What the senders said they moved and kept, added up over every `move-done`. */
  readonly #reported = { moved: 0, kept: 0 };
  #topUps = 0;
  readonly #waiting = new Set<() => void>();
  readonly #offs: Array<() => void> = [];
  #asked: Worker[] = [];
  #ended: Promise<SplitCounts> | undefined;

  constructor(options: SplitOptions) {
    this.#o = options;
    this.#broker = new HandoverBroker(options.receivers);
  }

  /** Connections moved so far (live, for progress lines): handed over, returned, lost. */
  get counts(): HandoverCounts {
    return { ...this.#broker.counts };
  }

  /** Asks every sender to move its part; the connections flow until {@link end}. */
  start(): void {
    const { senders, ask } = this.#o;
    const parts = 'count' in ask ? shareOut(ask.count, senders.map((w) => this.#o.open?.(w))) : senders.map(() => ask);
    senders.forEach((w, i) => {
      const part = parts[i];
      if (part === undefined || ('count' in part && part.count === 0)) return;
      this.#ask(w, moveMessage(part, HANDOVER_WINDOW, this.#o.within));
    });
  }

  /**
   * Lends one more connection: sender `w` moves the one that carried its latest request
   * (`move` with `recent`). For a canary that got no requests on what it holds: behind a
   * pool that reuses the connection it released last and is rarely busy, the few
   * connections that carry the traffic may all have stayed with the serving workers.
   * False, and nothing sent, once the split ends or when `w` is gone or not a sender.
   *
   * @example
   * split.topUp(busiestSender); // true
   */
  topUp(w: Worker): boolean {
    if (this.#ended !== undefined || w.exitInfo !== undefined || !this.#o.senders.includes(w)) return false;
    this.#ask(w, moveMessage({ count: 1 }, HANDOVER_WINDOW, this.#o.within, true));
    this.#topUps++;
    return true;
  }

  /** The serving workers this split may ask to move connections. */
  get senders(): readonly Worker[] {
    return this.#o.senders;
  }

  /** Connections lent by {@link topUp} so far (asked for; each counts in `handedOver` once it moved). */
  get topUps(): number {
    return this.#topUps;
  }

  /**
   * Resolves once every sender asked has reported `move-done` for every move it was sent
   * (it moved its part, or kept the picks still busy after `within`) or exited: the split's
   * natural end, which a scale-up waits for before {@link end}.
   */
  finished(): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.#moving().length > 0) return;
        this.#waiting.delete(check);
        resolve();
      };
      this.#waiting.add(check);
      check();
    });
  }

  /** Sends `m` to `w`, watching its `move-done`s and exit and opening its route the first time. */
  #ask(w: Worker, m: MoveMessage): void {
    if (!this.#asked.includes(w)) {
      this.#asked.push(w);
      const onMessage = (r: WorkerReport): void => {
        if (r.type !== 'move-done') return;
        this.#pending.set(w, Math.max(0, (this.#pending.get(w) ?? 0) - 1));
        this.#reported.moved += r.moved ?? 0;
        this.#reported.kept += r.kept ?? 0;
        this.#wake();
      };
      const onExit = (): void => this.#wake();
      w.on('message', onMessage);
      w.once('exit', onExit);
      this.#offs.push(() => w.off('message', onMessage).off('exit', onExit));
      this.#o.routes.open(w, this.#broker);
    }
    this.#pending.set(w, (this.#pending.get(w) ?? 0) + 1);
    void w.send(m);
  }

  /** Senders with a move not answered yet, alive. */
  #moving(): Worker[] {
    return this.#asked.filter((w) => (this.#pending.get(w) ?? 0) > 0 && w.exitInfo === undefined);
  }

  /**
   * Ends the split (idempotent): `move-end` to the senders still moving, waits for their
   * `move-done` (each at most {@link SPLIT_END_LIMIT_MS}; an exit also ends the wait), closes
   * their routes (a connection sent later goes back to its sender) and resolves once every
   * connection received has landed.
   */
  end(): Promise<SplitCounts> {
    this.#ended ??= this.#end();
    return this.#ended;
  }

  async #end(): Promise<SplitCounts> {
    const { routes, host } = this.#o;
    for (const w of this.#moving()) void w.send(message({ type: 'move-end' }));
    let timer: { cancel(): void } | undefined;
    await new Promise<void>((resolve) => {
      timer = host.setTimer(resolve, SPLIT_END_LIMIT_MS);
      const check = (): void => {
        if (this.#moving().length > 0) return;
        this.#waiting.delete(check);
        resolve();
      };
      this.#waiting.add(check);
      check();
    });
    timer?.cancel();
    this.#waiting.clear();
    for (const off of this.#offs) off();
    for (const w of this.#asked) routes.close(w, this.#broker);
    await this.#broker.settled();
    return { ...this.#broker.counts, asked: this.#asked.length, reported: { ...this.#reported } };
  }

  #wake(): void {
    for (const fn of [...this.#waiting]) fn();
  }
}

/**
 * `count` shared out among senders, by the connections each reported (largest remainder),
 * evenly when any of them did not report.
 *
 * @example
 * shareOut(10, [20, 10, 0]); // [{ count: 7 }, { count: 3 }, { count: 0 }]
 */
export function shareOut(count: number, open: Array<number | undefined>): Array<{ count: number }> {
  const known = open.every((n) => n !== undefined) && open.some((n) => (n ?? 0) > 0);
  const weights = open.map((n) => (known ? (n ?? 0) : 1));
  const sum = weights.reduce((a, b) => a + b, 0);
  if (sum === 0) return open.map(() => ({ count: 0 }));
  const exact = weights.map((w) => (count * w) / sum);
  const parts = exact.map(Math.floor);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0]);
  for (let left = count - parts.reduce((a, b) => a + b, 0), k = 0; left > 0; left--, k++) {
    const i = order[k % order.length]![1];
    parts[i] = (parts[i] ?? 0) + 1;
  }
  return parts.map((n) => ({ count: n }));
}
