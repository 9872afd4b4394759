/**
 * Traffic figures of this worker for the master: responses by status class and a latency
 * histogram with fixed bucket bounds, reported over the two-way channel every
 * {@link STATS_INTERVAL_MS} as cumulative counters (a lost message loses nothing: the next
 * one carries the totals). The master merges histograms across workers (same bounds
 * everywhere) for `hitless status`, Prometheus and the canary strategy.
 *
 * The message, documented for workers in any language (docs/ARCHITECTURE.md, "The worker
 * channel"):
 *
 *   {"hitless":1,"type":"stats","requests":{"2xx":n,"3xx":n,"4xx":n,"5xx":n},
 *    "latency":[n × 17],"latencySum":ms,"connections":n,"busy":n}
 *
 * `connections` and `busy` are not cumulative: the connections the observed servers have
 * open now (handed-over ones included), which the master shows per generation (a canary's
 * share), and the requests begun and not answered yet.
 *
 * Only servers registered through listen(), serve() or track() are counted, and only under
 * the master (HITLESS_CHANNEL=1 and a Node IPC channel); standalone this module does nothing.
 */
import type { EventEmitter } from 'node:events';
import { whenResponseCloses } from './response-end.js';
import type { AnyServer } from './types.js';
import { channelEnabled, send } from './channel.js';
import { LATENCY_BOUNDS_MS, message, STATS_INTERVAL_MS, type StatsMessage, type StatusClass } from './protocol.js';

// The histogram's bounds and the interval are the protocol's (protocol.ts); re-exported for
// the master's consumers of these figures (metrics).
export { LATENCY_BOUNDS_MS, STATS_INTERVAL_MS, type StatusClass };

const requests: Record<StatusClass, number> = { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
const latency: number[] = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
let latencySum = 0;
/** Requests begun and not yet answered (or closed): not cumulative. */
let busy = 0;
const observed = new WeakSet<AnyServer>();
/** Each observed server's count of open connections. */
const openCounts = new Set<() => number>();
let timer: NodeJS.Timeout | undefined;

/** True under a master that listens on the two-way channel. */
function underMaster(): boolean {
  return channelEnabled();
}

/**
 * The one place this module writes to the channel. A closed channel (the master is gone)
 * is not an error here: the lifeline handles that.
 */
function sendToMaster(stats: StatsMessage): void {
  const { hitless: _v, ...body } = stats;
  send(body);
}

/**
 * The class of a final status code.
 *
 * @example
 * statusClass(404); // '4xx'
 */
export function statusClass(status: number): StatusClass {
  if (status >= 500) return '5xx';
  if (status >= 400) return '4xx';
  if (status >= 300) return '3xx';
  return '2xx';
}

/**
 * Index of the bucket that counts `ms` (bounds are inclusive; the last index is the overflow).
 *
 * @example
 * bucketOf(3); // 4: the (2.5, 5] ms bucket
 */
export function bucketOf(ms: number): number {
  let i = 0;
  while (i < LATENCY_BOUNDS_MS.length && ms > (LATENCY_BOUNDS_MS[i] as number)) i++;
  return i;
}

function record(status: number, ms: number): void {
  requests[statusClass(status)]++;
  const b = bucketOf(ms);
  latency[b] = (latency[b] ?? 0) + 1;
  latencySum += ms;
}

/**
 * The stats message with the totals so far.
 *
 * @example
 * statsMessage(); // { hitless: 1, type: 'stats', requests: { '2xx': 12, … }, latency: [ … 17 counts ], latencySum: 8.4 }
 */
export function statsMessage(): StatsMessage {
  let connections = 0;
  for (const open of openCounts) connections += open();
  return message<StatsMessage>({ type: 'stats', requests: { ...requests }, latency: [...latency], latencySum, connections, busy });
}

/**
 * Sends the totals now, once the drain ended (internal): a worker that exits sooner than its
 * next report would take up to a second of traffic with it. A no-op when nothing is observed.
 */
export function reportStatsNow(): void {
  if (timer !== undefined) sendToMaster(statsMessage());
}

/**
 * Counts the responses of `server` (internal; instrument() calls it once per server).
 * From the 'request' event to the response's 'finish' (written to the kernel); responses
 * that never finish (the client went away) are not counted. `open` counts its open
 * connections for the report. A no-op standalone.
 *
 * @example
 * observe(server, () => tracker.sockets.size); // listen(), serve() and track() do this through instrument()
 */
export function observe(server: AnyServer, open?: () => number): void {
  if (observed.has(server) || !underMaster()) return;
  observed.add(server);
  if (open !== undefined) openCounts.add(open);
  // Prepended: the clock starts before the application's handler runs.
  (server as EventEmitter).prependListener('request', (req: { socket?: EventEmitter }, res: { statusCode: number; once(e: 'finish' | 'close', fn: () => void): unknown }) => {
    const start = performance.now();
    busy++;
    res.once('finish', () => record(res.statusCode, performance.now() - start));
    // 'close' follows 'finish', or comes alone when the connection went first.
    whenResponseCloses(req.socket, res, () => busy--);
  });
  if (timer === undefined) {
    timer = setInterval(() => sendToMaster(statsMessage()), STATS_INTERVAL_MS);
    // Reporting must never keep the process alive or delay its exit.
    timer.unref();
  }
}
