/**
 * The master's own totals of what happened since it started: reloads by result and their
 * durations, crash restarts, old workers forced at drainTimeout, and what became of the old
 * generations' connections. They belong to the master, not to the metrics endpoint: they
 * count from the master's start, so turning metrics on (or moving them) with a reload shows
 * the totals so far, that reload included (issue 20). Plain numbers, no dependency: the
 * Prometheus endpoint (metrics.ts) only reads them at scrape time.
 */
import type { MasterEvent } from '../core/types.js';

/** Reload duration buckets, seconds: a reload is readyTimeout-bound, typically 0.2 s – 1 min. */
export const RELOAD_DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** What became of the old generation's connections, as `hitless_reload_connections_total` labels them. */
export const CONNECTION_OUTCOMES = ['handed_over', 'returned', 'lost', 'drained', 'cut', 'websocket_handed_over'] as const;
export type ConnectionOutcome = (typeof CONNECTION_OUTCOMES)[number];

/** What became of the connections lent to canaries, as `hitless_canary_connections_total` labels them. */
export const CANARY_OUTCOMES = ['moved', 'returned', 'lost'] as const;
type MoveOutcome = (typeof CANARY_OUTCOMES)[number];

/**
 * The counters' values as plain data: what an upgrade passes from the old master to the new
 * one, which goes on from them.
 */
export interface MetricTotals {
  reloads: { ok: number; failed: number };
  /** The reload duration histogram (absent from a master before it was passed on). */
  durations?: { buckets: number[]; sumSeconds: number; count: number };
  restarts: number;
  forced: number;
  connections: Record<ConnectionOutcome, number>;
  canaryConnections?: Record<MoveOutcome, number>;
  /** What a `hitless scale` up moved to its new workers (`hitless_scale_connections_total`). */
  scaleConnections?: Record<MoveOutcome, number>;
}

/** Where the counters hear the master's events. */
export interface EventSource {
  on(event: 'event', listener: (e: MasterEvent) => void): unknown;
  off(event: 'event', listener: (e: MasterEvent) => void): unknown;
}

/**
 * Totals counted from the master's events for its whole life.
 *
 * @example
 * const counters = new MasterCounters(master); // at start, before the first reload
 * // later, when metrics are turned on:
 * await startMetrics(config, master, logger, counters);
 */
export class MasterCounters {
  readonly reloads = { ok: 0, failed: 0 };
  /** Reload durations: counts per bucket of RELOAD_DURATION_BUCKETS (not cumulative) plus one above, their sum in s. */
  readonly durations = { buckets: RELOAD_DURATION_BUCKETS.map(() => 0).concat(0), sumSeconds: 0, count: 0 };
  restarts = 0;
  forced = 0;
  readonly connections: Record<ConnectionOutcome, number> = { handed_over: 0, returned: 0, lost: 0, drained: 0, cut: 0, websocket_handed_over: 0 };
  readonly canaryConnections: Record<MoveOutcome, number> = { moved: 0, returned: 0, lost: 0 };
  /** Kept-alive connections the serving workers handed to the workers a `hitless scale` up added. */
  readonly scaleConnections: Record<MoveOutcome, number> = { moved: 0, returned: 0, lost: 0 };
  readonly #source: EventSource;
  readonly #onEvent = (e: MasterEvent): void => this.#count(e);

  constructor(source: EventSource) {
    this.#source = source;
    source.on('event', this.#onEvent);
  }

  /** The totals so far, as plain data (an upgrade hands them to the new master). */
  totals(): MetricTotals {
    const { reloads, durations, restarts, forced, connections, canaryConnections, scaleConnections } = this;
    return structuredClone({ reloads, durations, restarts, forced, connections, canaryConnections, scaleConnections });
  }

  /** Goes on from `t` (the totals of the master this one took over from by an upgrade). */
  add(t: MetricTotals): void {
    this.reloads.ok += t.reloads.ok;
    this.reloads.failed += t.reloads.failed;
    // Bucket by bucket, when both masters count the same buckets (a version with other bounds: not).
    if (t.durations && t.durations.buckets.length === this.durations.buckets.length) {
      t.durations.buckets.forEach((n, i) => (this.durations.buckets[i]! += n));
      this.durations.sumSeconds += t.durations.sumSeconds;
      this.durations.count += t.durations.count;
    }
    this.restarts += t.restarts;
    this.forced += t.forced;
    for (const o of CONNECTION_OUTCOMES) this.connections[o] += t.connections[o] ?? 0;
    for (const o of CANARY_OUTCOMES) this.canaryConnections[o] += t.canaryConnections?.[o] ?? 0;
    for (const o of CANARY_OUTCOMES) this.scaleConnections[o] += t.scaleConnections?.[o] ?? 0;
  }

  /** Stops counting (the master stops). */
  close(): void {
    this.#source.off('event', this.#onEvent);
  }

  #count(e: MasterEvent): void {
    if (e.type === 'reload-done') {
      if (e.outcome.coalesced) return; // the same reload, reported to a second caller
      this.reloads[e.outcome.ok ? 'ok' : 'failed']++;
      const seconds = e.outcome.durationMs / 1000;
      const at = RELOAD_DURATION_BUCKETS.findIndex((le) => seconds <= le);
      this.durations.buckets[at === -1 ? RELOAD_DURATION_BUCKETS.length : at]! += 1;
      this.durations.sumSeconds += seconds;
      this.durations.count++;
    } else if (e.type === 'reload-refused') {
      // Refused before it began (stopping, upgrading): failed, as one refused for its configuration is (no duration).
      this.reloads.failed++;
    } else if (e.type === 'canary-verdict' && e.connections) {
      for (const outcome of CANARY_OUTCOMES) this.canaryConnections[outcome] += e.connections[outcome];
    } else if (e.type === 'scale-done' && e.outcome.ok && e.outcome.to > e.outcome.from && e.outcome.connections) {
      // Scaling down retires workers: their connections are counted at reload-drained.
      const { handedOver, returned, lost } = e.outcome.connections;
      this.scaleConnections.moved += handedOver;
      this.scaleConnections.returned += returned;
      this.scaleConnections.lost += lost;
    } else if (e.type === 'worker-restart') {
      this.restarts++;
    } else if (e.type === 'reload-drained') {
      this.forced += e.forced;
      this.connections.handed_over += e.handedOver ?? 0;
      this.connections.returned += e.returned ?? 0;
      this.connections.lost += e.lost ?? 0;
      this.connections.drained += e.drained ?? 0;
      this.connections.cut += e.cut ?? 0;
      this.connections.websocket_handed_over += e.webSockets ?? 0;
    }
  }
}
