/**
 * Traffic for the supervisor's unit tests: cumulative counts as a worker's stats message
 * carries them, and a fake worker that reports them every second on the fake clock.
 */
import { bucketOf, STATS_INTERVAL_MS } from '../../src/lib/stats.js';
import { zeroCounts, type Counts } from '../../src/core/traffic.js';
import type { FakeHost, FakeProcess } from './fake-host.js';

/** Cumulative counts: `ok` 2xx and `bad` 5xx responses, all of latency `ms`. */
export function counts(ok: number, bad = 0, ms = 1, over?: Partial<Counts['requests']>): Counts {
  const c = zeroCounts();
  c.requests['2xx'] = ok;
  c.requests['5xx'] = bad;
  Object.assign(c.requests, over);
  const n = ok + bad + Object.values(over ?? {}).reduce((a, b) => a + b, 0);
  c.latency[bucketOf(ms)] = n;
  c.latencySum = n * ms;
  return c;
}

/** What a worker serves per report interval: responses, the share of them that are 5xx, their latency. */
export interface Load {
  perSecond: number;
  errorRate?: number;
  ms?: number;
  /** Requests begun and not answered at each report (`stats` `busy`); left out when undefined. */
  busy?: number;
  /** No report while true (an event loop that is blocked). */
  silent?: boolean;
}

/**
 * Makes `p` report stats every second on `host`'s clock as if it served `load`
 * (cumulative, like the in-app library), until it exits; with `open`, the connections it
 * has open too.
 */
export function reports(host: FakeHost, p: FakeProcess, load: Load, open?: () => number): void {
  let ok = 0;
  let bad = 0;
  const tick = (): void => {
    if (p.exited) return;
    const errors = Math.round(load.perSecond * (load.errorRate ?? 0));
    ok += load.perSecond - errors;
    bad += errors;
    const c = counts(ok, bad, load.ms ?? 1);
    if (load.silent !== true) p.say({ hitless: 1, type: 'stats', requests: c.requests, latency: c.latency, latencySum: c.latencySum, ...(open ? { connections: open() } : {}), ...(load.busy === undefined ? {} : { busy: load.busy }) });
    host.setTimer(tick, STATS_INTERVAL_MS);
  };
  host.setTimer(tick, STATS_INTERVAL_MS);
}
