/**
 * How a reload drains: retiring a set of workers. Each is asked to stop — with hand-over,
 * where it said hello and there are receivers, by a `stop` message whose connections the
 * broker (handover.ts) passes on; else by its stop signal — and the retirement waits until
 * every one exited (SIGKILL for what outlives the drain deadline) and every connection it
 * sent has landed. It resolves with the counts, from the master's side (handed over,
 * returned, lost, forced) and from the workers' own `drained` reports (drained, cut).
 *
 * A retirement owns nothing of the supervisor: it is given its workers, its receivers, a
 * deadline, a clock and the routes, and runs to its end on its own, so several can be under
 * way at once (each generation with its own deadline) and none needs the reload that
 * started it. The supervisor turns its start and its counts into events and phases.
 *
 * Long-lived connections (issue 24): a reload need not wait for the end. The retirement is
 * {@link Retirement.released} — the reload may be declared done — once every worker exited
 * or said it holds only upgraded connections (`lingering`), or after `reloadWait`; it then
 * drains on in the background until its own deadline (lingering.ts keeps those).
 */
import type { DrainedMessage } from '../lib/protocol.js';
import { DEFAULT_HANDOVER_SPREAD_MS } from '../config/defaults.js';
import { HANDOVER_SPREAD, HANDOVER_WINDOW, HandoverBroker, type HandoverCounts, type HandoverRoutes, type Receiver } from './handover.js';
import type { Host } from './host.js';
import type { WebSocketRoutes } from './ws-handover.js';
import type { ConnectionCounts } from './types.js';
import type { Worker, WorkerReport } from './worker.js';

/** What became of a retired set of workers and their connections. */
export interface RetireCounts extends HandoverCounts {
  /**
   * WebSockets handed over to the next generation (hitless/ws); those that came back or were
   * lost are in `returned` and `lost` with the HTTP connections.
   */
  webSockets: number;
  /** Workers SIGKILLed at the drain deadline (or stopped at once: lingering.ts's bound). */
  forced: number;
  /** Connections the workers closed gracefully (as they reported). */
  drained: number;
  /** Of `drained`: upgraded (WebSocket) connections, closed with 1001 instead of moved (as the workers reported). */
  webSocketsClosed: number;
  /**
   * Connections the workers destroyed at their own shutdown deadline (as they reported),
   * and those a worker SIGKILLed at the drain deadline last reported open.
   */
  cut: number;
}

export const zeroRetireCounts = (): RetireCounts => ({ handedOver: 0, returned: 0, lost: 0, webSockets: 0, forced: 0, drained: 0, webSocketsClosed: 0, cut: 0 });

/** Adds `c` to `into`, count by count; returns `into`. */
export function addRetireCounts(into: RetireCounts, c: RetireCounts): RetireCounts {
  for (const key of Object.keys(into) as (keyof RetireCounts)[]) into[key] += c[key];
  return into;
}

/** One retiring worker that is still alive, and what it last said it holds. */
export interface StillDraining {
  slot: number;
  pid: number | undefined;
  /** Undefined while it has not said (it still has HTTP work, or cannot say: no library). */
  upgraded: number | undefined;
  /**
   * While it has not said `lingering`: the requests in flight and the connections open at its
   * last traffic report (`stats` `busy` and `connections`); undefined when it sends none (no
   * in-app library or preload: it cannot say what it holds).
   */
  requests?: number | undefined;
  connections?: number | undefined;
}

/** What a retirement had done when the reload stopped waiting for it, and what it still holds. */
export interface Release {
  /** The counts so far: workers that exited are complete; the rest report at the end. */
  counts: RetireCounts;
  /** Workers still alive (empty: the retirement is over). */
  still: StillDraining[];
  /** Set (`drain.reloadWait`, ms) when the reload stopped waiting because that bound passed, not because every worker said `lingering`. */
  reloadWait?: number | undefined;
}

/**
 * The connection part of retirement counts, as a reload outcome carries it.
 *
 * @example
 * outcome.connections = connectionCounts(run.counts); // { handedOver, returned, lost, drained, cut }
 */
export const connectionCounts = ({ handedOver, returned, lost, drained, cut, webSockets, webSocketsClosed }: RetireCounts): ConnectionCounts =>
  ({ handedOver, returned, lost, drained, cut, ...(webSockets ? { webSockets } : {}), ...(webSocketsClosed ? { webSocketsClosed } : {}) });

export interface RetireOptions {
  workers: Worker[];
  /**
   * Where their keep-alive connections go, read at each hand-over (the ready workers of the
   * next generation that take them); undefined: no hand-over, drain only.
   */
  receivers: (() => Receiver[]) | undefined;
  /** How long the workers have before SIGKILL, ms. */
  drainTimeout: number;
  /**
   * Longest the reload waits before the retirement is released while workers that never
   * said `lingering` are still alive, ms (default: until they exit).
   */
  reloadWait?: number;
  host: Pick<Host, 'now' | 'setTimer'>;
  /** A worker's open connections as it last reported them (its `stats`), when known. */
  open?: (w: Worker) => number | undefined;
  /** A worker's requests in flight as it last reported them (its `stats` `busy`), when known. */
  busy?: (w: Worker) => number | undefined;
  /** Where the workers' `conn` messages are routed while they retire. */
  routes: HandoverRoutes;
  /** Where their WebSockets go (hitless/ws, ws-handover.ts): the receivers, read at each one, and the routes of `ws-conn`. */
  webSockets?: { receivers: () => Receiver[]; routes: WebSocketRoutes };
  /** Connections each worker may have on their way at once (default {@link HANDOVER_WINDOW}). */
  window?: number | undefined;
  /** How much the hand-over is spread (default {@link HANDOVER_SPREAD}; 0: full speed). */
  spread?: number | undefined;
  /** For how long it is spread, ms (default DEFAULT_HANDOVER_SPREAD_MS; 0: full speed). */
  spreadMs?: number | undefined;
  /** The receivers take their shares in turn (default; handover.ts's BrokerPacing.fill); false: round robin. */
  fill?: boolean | undefined;
}

/** How long connections spent in the master on their way, ms. */
export interface TransitFigures {
  median: number;
  p99: number;
  max: number;
}

/** The median, p99 and max of `ms` (rounded to 0.1 ms); undefined when empty. */
export function transitFigures(ms: number[]): TransitFigures | undefined {
  if (ms.length === 0) return undefined;
  const s = [...ms].sort((a, b) => a - b);
  const at = (p: number): number => Math.round((s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] ?? 0) * 10) / 10;
  return { median: at(0.5), p99: at(0.99), max: at(1) };
}

/** A set of workers on their way out (see the module comment); {@link Retirement.run} does it. */
export class Retirement {
  /** True when connections are handed over (there are receivers), false for a plain drain. */
  readonly handover: boolean;
  readonly generation: number;
  /** When it began (host clock). */
  readonly startedAt: number;
  /**
   * Resolves once the reload need not wait any more: every worker exited or said it holds
   * only upgraded connections, or `reloadWait` passed. Never rejects.
   */
  readonly released: Promise<Release>;
  /** True once {@link run} has resolved. */
  ended = false;
  /** `drain.reloadWait` (ms) once the reload stopped waiting because it passed (see {@link Release.reloadWait}). */
  reloadWaitReached: number | undefined;
  readonly #o: RetireOptions;
  readonly #receivers: () => Receiver[];
  readonly #broker: HandoverBroker;
  readonly #wsBroker: HandoverBroker;
  /** What each worker says its own drain did: closed gracefully, or cut at its deadline. */
  readonly #reports = new Map<Worker, DrainedMessage>();
  /** Upgraded connections each worker said it still holds once only those were left. */
  readonly #lingering = new Map<Worker, number>();
  #forcedEarly = 0;
  /** Connections that workers killed at the deadline last reported open. */
  #cutByKill = 0;
  /** When a worker last handed a connection over: the drain deadline counts from it. */
  #progressAt = -Infinity;
  #release: (r: Release) => void = () => {};
  /** The release was decided (every worker said, or reloadWait passed). */
  #releasing = false;

  constructor(options: RetireOptions) {
    this.#o = options;
    this.#receivers = options.receivers ?? (() => []);
    const wsReceivers = options.webSockets?.receivers ?? (() => []);
    this.handover = this.#receivers().length > 0 || wsReceivers().length > 0;
    this.#wsBroker = new HandoverBroker(wsReceivers);
    this.generation = options.workers[0]?.generation ?? 0;
    this.startedAt = options.host.now();
    const host = options.host;
    const wait = (ms: number): Promise<void> => new Promise((resolve) => host.setTimer(resolve, ms));
    this.#broker = new HandoverBroker(this.#receivers, undefined, {
      now: () => host.now(), wait, spread: options.spread ?? HANDOVER_SPREAD, spreadMs: options.spreadMs ?? DEFAULT_HANDOVER_SPREAD_MS,
      fill: options.fill ?? true,
    });
    this.released = new Promise((resolve) => (this.#release = resolve));
  }

  /**
   * When what is left is SIGKILLed (host clock): `drainTimeout` after the start, or after the
   * last connection a worker handed over while that keeps moving (a slow machine costs time,
   * never a connection: drain()).
   */
  get deadline(): number {
    return Math.max(this.startedAt, this.#progressAt) + this.#o.drainTimeout;
  }

  /**
   * Stops the workers and resolves with the counts once all of them exited and every
   * connection they sent has landed.
   *
   * @example
   * const r = new Retirement({ workers: old.live(), receivers: () => next.live(), drainTimeout, host, routes });
   * const { forced, handedOver } = await r.run();
   */
  async run(): Promise<RetireCounts & { ms: number; transitMs?: TransitFigures | undefined }> {
    const { workers, host, routes } = this.#o;
    const broker = this.#broker;
    const offs = workers.map((w) => {
      const fn = (m: WorkerReport): void => {
        if (m.type === 'drained') this.#reports.set(w, m);
        if (m.type === 'conn' || m.type === 'ws-conn') this.#progressAt = host.now();
        if (m.type === 'lingering') {
          this.#lingering.set(w, m.upgraded);
          this.#checkRelease();
        }
      };
      w.on('message', fn);
      void w.exited.then(() => this.#checkRelease());
      return () => w.off('message', fn);
    });
    const wait = this.#o.reloadWait;
    // Not when the drain's deadline is now: the workers are being killed, and the counts
    // that follow (forced, cut) belong in the reload's outcome, not after it.
    const waitTimer = wait === undefined ? undefined : host.setTimer(() => host.now() < this.deadline && this.#doRelease(wait), wait);
    // Each worker may have this many connections on their way: the rest wait in the worker,
    // which still serves their requests (a connection in transit is read by nobody).
    const window = this.#o.window ?? HANDOVER_WINDOW;
    const ws = this.#o.webSockets;
    // Known before the drain: when no receiver takes WebSockets (none said `ws-hello`, or an
    // upgrade, whose new master takes none), the workers do not stop reading theirs to send
    // them here only to get them back; they close them at their turn as without hitless/ws.
    const takesWebSockets = this.#wsBroker.hasReceiver();
    for (const w of workers) {
      if (this.handover && w.hello !== undefined) routes.open(w, broker);
      if (this.handover) ws?.routes.open(w, this.#wsBroker);
      w.stop(this.handover, window, takesWebSockets);
    }
    const killed = await drain(workers, this.#o.drainTimeout, host, () => this.#progressAt);
    const forced = killed.length + this.#forcedEarly;
    // A worker killed at the deadline never reported its drain: what it last said it had
    // open died with it (a canary whose event loop blocked, a worker stuck in a request).
    for (const w of killed) if (!this.#reports.has(w)) this.#cutByKill += this.#o.open?.(w) ?? 0;
    for (const off of offs) off();
    for (const w of workers) routes.close(w, broker);
    for (const w of workers) ws?.routes.close(w);
    // A worker exits once the master has its descriptors; wait until they all landed.
    await Promise.all([broker.settled(), this.#wsBroker.settled()]);
    waitTimer?.cancel();
    const counts = { ...this.#counts(), forced };
    this.ended = true;
    this.#release({ counts, still: [] });
    const transitMs = transitFigures(broker.transits);
    return { ...counts, ms: host.now() - this.startedAt, ...(transitMs ? { transitMs } : {}) };
  }

  /** The workers still alive, with what they said they hold. */
  still(): StillDraining[] {
    return this.#o.workers
      .filter((w) => w.exitInfo === undefined)
      .map((w) => {
        const upgraded = this.#lingering.get(w);
        if (upgraded !== undefined) return { slot: w.slot, pid: w.pid, upgraded };
        // Not said `lingering` yet: what its traffic reports say, when it sends them.
        const requests = this.#o.busy?.(w);
        return { slot: w.slot, pid: w.pid, upgraded, ...(requests === undefined ? {} : { requests, connections: this.#o.open?.(w) ?? 0 }) };
      });
  }

  /** Stops what is left at once (SIGKILL), before its deadline; counted as forced. */
  force(): void {
    this.#forcedEarly += this.#o.workers.filter((w) => w.kill()).length;
  }

  /** Handed over, returned and lost so far (master's count), drained and cut as exited workers reported. */
  #counts(): RetireCounts {
    const sum = (key: 'drained' | 'forced' | 'upgraded'): number => [...this.#reports.values()].reduce((a, m) => a + (m[key] ?? 0), 0);
    const { handedOver, returned, lost } = this.#broker.counts;
    const ws = this.#wsBroker.counts;
    return {
      handedOver, returned: returned + ws.returned, lost: lost + ws.lost, webSockets: ws.handedOver,
      forced: this.#forcedEarly, drained: sum('drained'), webSocketsClosed: sum('upgraded'), cut: sum('forced') + this.#cutByKill,
    };
  }

  #checkRelease(): void {
    if (this.#o.workers.every((w) => w.exitInfo !== undefined || this.#lingering.has(w))) this.#doRelease();
  }

  /** Releases the reload; `reloadWait`: because that bound passed (ms), not because every worker said `lingering`. */
  #doRelease(reloadWait?: number): void {
    // The first reason stands (the release resolves once): a bound passing later changes nothing.
    if (this.#releasing) return;
    this.#releasing = true;
    this.reloadWaitReached = reloadWait;
    // Connections sent before the workers went quiet are on their way: count them where they land.
    void Promise.all([this.#broker.settled(), this.#wsBroker.settled()]).then(() =>
      this.#release({ counts: this.#counts(), still: this.still(), ...(reloadWait === undefined ? {} : { reloadWait }) }));
  }
}

/**
 * Waits up to `timeout` for `workers` to exit (they were asked to stop), then SIGKILLs the
 * rest; resolves with those it killed. With `progressAt` (when the workers last handed
 * a connection over), the deadline counts from that progress instead: a hand-over that
 * keeps moving connections on a slow machine takes longer, it is not cut; a stuck one still
 * is, `timeout` after it stopped moving (issue 20: a slow machine costs time, never a
 * connection).
 *
 * @example
 * for (const w of workers) w.stop();
 * const killed = await drain(workers, spec.drainTimeout, host); // the workers SIGKILLed at the deadline
 */
export async function drain(
  workers: Worker[], timeout: number, host: Pick<Host, 'setTimer' | 'now'>, progressAt: () => number = () => -Infinity,
): Promise<Worker[]> {
  if (workers.length === 0) return [];
  const all = Promise.all(workers.map((w) => w.exited));
  let timer: { cancel(): void } | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    const arm = (ms: number): void => {
      timer = host.setTimer(() => {
        const more = progressAt() + timeout - host.now();
        if (more > 0) arm(more);
        else resolve('deadline');
      }, ms);
    };
    arm(timeout);
  });
  const first = await Promise.race([all, deadline]);
  timer?.cancel();
  if (first !== 'deadline') return [];
  const killed = workers.filter((w) => w.kill());
  await all;
  return killed;
}
