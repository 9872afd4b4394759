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
 */
import type { DrainedMessage } from '../lib/protocol.js';
import { HANDOVER_SPREAD, HANDOVER_SPREAD_MS, HANDOVER_WINDOW, HandoverBroker, type HandoverCounts, type HandoverRoutes, type Receiver } from './handover.js';
import type { Host } from './host.js';
import type { Worker, WorkerReport } from './worker.js';

/** What became of a retired set of workers and their connections. */
export interface RetireCounts extends HandoverCounts {
  /** Workers SIGKILLed at the drain deadline. */
  forced: number;
  /** Connections the workers closed gracefully (as they reported). */
  drained: number;
  /** Connections the workers destroyed at their own shutdown deadline (as they reported). */
  cut: number;
}

export const zeroRetireCounts = (): RetireCounts => ({ handedOver: 0, returned: 0, lost: 0, forced: 0, drained: 0, cut: 0 });

export interface RetireOptions {
  workers: Worker[];
  /**
   * Where their keep-alive connections go, read at each hand-over (the ready workers of the
   * next generation that take them); undefined: no hand-over, drain only.
   */
  receivers: (() => Receiver[]) | undefined;
  /** How long the workers have before SIGKILL, ms. */
  drainTimeout: number;
  host: Pick<Host, 'now' | 'setTimer'>;
  /** Where the workers' `conn` messages are routed while they retire. */
  routes: HandoverRoutes;
  /** Connections each worker may have on their way at once (default {@link HANDOVER_WINDOW}). */
  window?: number | undefined;
  /** How much the hand-over is spread (default {@link HANDOVER_SPREAD}; 0: full speed). */
  spread?: number | undefined;
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
  readonly #o: RetireOptions;
  readonly #receivers: () => Receiver[];

  constructor(options: RetireOptions) {
    this.#o = options;
    this.#receivers = options.receivers ?? (() => []);
    this.handover = this.#receivers().length > 0;
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
    const startedAt = host.now();
    const wait = (ms: number): Promise<void> => new Promise((resolve) => host.setTimer(resolve, ms));
    const broker = new HandoverBroker(this.#receivers, undefined, {
      now: () => host.now(), wait, spread: this.#o.spread ?? HANDOVER_SPREAD, spreadMs: HANDOVER_SPREAD_MS,
    });
    // What each worker says its own drain did: closed gracefully, or cut at its deadline.
    const reports = new Map<Worker, DrainedMessage>();
    const offs = workers.map((w) => {
      const fn = (m: WorkerReport): void => {
        if (m.type === 'drained') reports.set(w, m);
      };
      w.on('message', fn);
      return () => w.off('message', fn);
    });
    // Each worker may have this many connections on their way: the rest wait in the worker,
    // which still serves their requests (a connection in transit is read by nobody).
    const window = this.#o.window ?? HANDOVER_WINDOW;
    for (const w of workers) {
      if (this.handover && w.hello !== undefined) routes.open(w, broker);
      w.stop(this.handover, window);
    }
    const forced = await drain(workers, this.#o.drainTimeout, host);
    for (const off of offs) off();
    for (const w of workers) routes.close(w);
    // A worker exits once the master has its descriptors; wait until they all landed.
    await broker.settled();
    const sum = (key: 'drained' | 'forced'): number => [...reports.values()].reduce((a, m) => a + (m[key] ?? 0), 0);
    const transitMs = transitFigures(broker.transits);
    return { ...broker.counts, forced, drained: sum('drained'), cut: sum('forced'), ms: host.now() - startedAt, ...(transitMs ? { transitMs } : {}) };
  }
}

/**
 * Waits up to `timeout` for `workers` to exit (they were asked to stop), then SIGKILLs the
 * rest; resolves with how many were killed.
 *
 * @example
 * for (const w of workers) w.stop();
 * const forced = await drain(workers, spec.drainTimeout, host);
 */
export async function drain(workers: Worker[], timeout: number, host: Pick<Host, 'setTimer'>): Promise<number> {
  if (workers.length === 0) return 0;
  const all = Promise.all(workers.map((w) => w.exited));
  let timer: { cancel(): void } | undefined;
  const deadline = new Promise<'deadline'>((resolve) => (timer = host.setTimer(() => resolve('deadline'), timeout)));
  const first = await Promise.race([all, deadline]);
  timer?.cancel();
  if (first !== 'deadline') return 0;
  const forced = workers.filter((w) => w.kill()).length;
  await all;
  return forced;
}
