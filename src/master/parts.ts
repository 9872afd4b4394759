/**
 * The master's optional parts, each started from its slice of the configuration and
 * restarted with new settings when a reload that changes that slice goes live: where
 * worker output goes (`logs`), the Prometheus endpoint (`metrics`), and the two upgrade
 * triggers (`watch`, `fetch`). Each part is imported lazily, so a plain `hitless start`
 * loads none of their dependencies.
 *
 * Re-applying runs on its own queue, never inside the reload that caused it: the watch and
 * fetch triggers wait for their own reload when they close, so closing one from within
 * that reload would wait forever.
 */
import type { Logger } from '../core/logger.js';
import type { MasterConfig } from '../config/types.js';
import type { MasterEvent, MasterHandle } from '../core/types.js';
import { formatLine } from '../ops/logfiles.js';
import { MasterCounters, type MetricTotals } from '../ops/counters.js';

interface Closable {
  close(): Promise<void> | void;
}

type PartName = 'logs' | 'metrics' | 'watch' | 'fetch';

/** The configuration each part depends on: a change in it restarts the part. */
const SLICES: Record<PartName, (c: MasterConfig) => unknown> = {
  logs: (c) => c.logs,
  metrics: (c) => c.metrics,
  watch: (c) => c.watch,
  fetch: (c) => (c.fetch ? [c.fetch, c.release, c.appDir] : undefined),
};

export class Parts {
  readonly #handle: MasterHandle;
  readonly #logger: Logger;
  /** Reports restarted parts (Supervisor.reconfigured: the supervisor writes every event). */
  readonly #reconfigured: (parts: string[], errors: string[]) => void;
  readonly #running = new Map<PartName, Closable>();
  /** Where the metrics endpoint serves while it runs (status.metrics). */
  #metricsAddress: string | undefined;
  #config: MasterConfig | undefined;
  #triggersStarted = false;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  /**
   * The master's totals (reloads, restarts, hand-over outcomes), counted from its start,
   * not from the metrics endpoint's: metrics turned on or moved by a reload keep them, and
   * count that reload (its outcome comes before the parts are re-applied).
   */
  readonly counters: MasterCounters;

  constructor(handle: MasterHandle, logger: Logger, reconfigured: (parts: string[], errors: string[]) => void) {
    this.#handle = handle;
    this.#logger = logger;
    this.#reconfigured = reconfigured;
    this.counters = new MasterCounters(handle);
  }

  /** The address the metrics endpoint serves, while it runs. */
  get metricsAddress(): string | undefined {
    return this.#metricsAddress;
  }

  /** Worker output (log files or the master's stdout/stderr): before the first worker starts. */
  async startOutput(config: MasterConfig): Promise<void> {
    this.#config = config;
    await this.#start('logs', config);
  }

  /**
   * The metrics endpoint, bound before the first worker starts (a master started by an
   * upgrade does not: the old master holds the port until the takeover): a port in use
   * fails the start before any worker ran, not after the first generation served.
   */
  async startMetrics(config: MasterConfig): Promise<void> {
    await this.#start('metrics', config);
  }

  /**
   * Watch, fetch and metrics (unless {@link startMetrics} bound it): once the first
   * generation serves. `seed`: the counters of the master this one took over from by an
   * upgrade (they go on here).
   */
  async startTriggers(config: MasterConfig, seed?: MetricTotals): Promise<void> {
    this.#config = config;
    this.#triggersStarted = true;
    if (seed) this.counters.add(seed);
    // A part already running (metrics bound by startMetrics) is not started twice.
    for (const part of ['watch', 'fetch', 'metrics'] as const) if (!this.#running.has(part)) await this.#start(part, config);
  }

  /**
   * Stops watch, fetch and metrics for good (an upgrade: the new master runs them from now
   * on; its metrics endpoint needs the port) and resolves with the master's counters, which
   * the new master goes on from.
   */
  async yieldTriggers(): Promise<{ metrics?: MetricTotals }> {
    await this.#queue;
    this.#triggersStarted = false;
    for (const part of ['watch', 'fetch', 'metrics'] as const) {
      await this.#running.get(part)?.close();
      this.#running.delete(part);
    }
    return { metrics: this.counters.totals() };
  }

  /**
   * Restarts the parts whose settings differ in `next` (queued; returns at once). Emits a
   * `reconfigured` event naming them, with the errors of those that could not restart
   * (a metrics port in use: metrics stay off until a later reload fixes it).
   */
  apply(next: MasterConfig): void {
    this.#queue = this.#queue.then(async () => {
      const prev = this.#config;
      if (this.#closed || !prev) return;
      this.#config = next;
      const names = (Object.keys(SLICES) as PartName[]).filter((p) => JSON.stringify(SLICES[p](prev)) !== JSON.stringify(SLICES[p](next)));
      const parts = this.#triggersStarted ? names : names.filter((p) => p === 'logs');
      if (parts.length === 0) return;
      const errors: string[] = [];
      for (const part of parts) {
        await this.#running.get(part)?.close();
        this.#running.delete(part);
        try {
          await this.#start(part, next);
        } catch (err) {
          const message = `${part}: ${err instanceof Error ? err.message : String(err)}`;
          this.#logger.error(`${message}; ${part} stays off until a reload applies working settings`);
          errors.push(message);
        }
      }
      this.#reconfigured(parts, errors);
    });
  }

  /** Stops every part (after pending re-applies). */
  async close(): Promise<void> {
    await this.#queue;
    this.#closed = true;
    await Promise.allSettled([...this.#running.values()].map((p) => p.close()));
    this.#running.clear();
    this.counters.close();
  }

  async #start(part: PartName, config: MasterConfig): Promise<void> {
    const handle = this.#handle;
    const logger = this.#logger;
    let running: Closable | undefined;
    if (part === 'logs') {
      running = config.logs.mode === 'file'
        ? await (await import('../ops/logfiles.js')).startLogFiles(config, handle, logger)
        : forwardOutput(handle, config.logs.tag, config.logs.timestamps === true);
    } else if (part === 'watch' && config.watch) {
      running = (await import('../release/watch.js')).startWatch(config, handle, logger);
    } else if (part === 'fetch' && config.fetch) {
      running = (await import('../release/fetcher.js')).startFetcher(config, handle, logger);
    } else if (part === 'metrics' && config.metrics) {
      const endpoint = await (await import('../ops/metrics.js')).startMetrics(config, handle, logger, this.counters);
      this.#metricsAddress = endpoint.address;
      running = { close: async () => {
        this.#metricsAddress = undefined;
        await endpoint.close();
      } };
    }
    if (running) this.#running.set(part, running);
  }
}

let stdioGuarded = false;

/** Worker lines go to the master's stdout/stderr unchanged (or tagged with generation.slot, or timestamped). */
function forwardOutput(handle: MasterHandle, tag: boolean, timestamps: boolean): Closable {
  if (!stdioGuarded) {
    // A closed terminal or pipe must not take the master down.
    process.stdout.on('error', () => {});
    process.stderr.on('error', () => {});
    stdioGuarded = true;
  }
  const onEvent = (e: MasterEvent): void => {
    if (e.type !== 'worker-output') return;
    const out = e.stream === 'stdout' ? process.stdout : process.stderr;
    out.write(formatLine(e, tag, timestamps ? Date.now() : undefined, false));
  };
  handle.on('event', onEvent);
  return { close: () => void handle.off('event', onEvent) };
}
