/**
 * The project's HTTP/1.1 load client, shared by the benchmarks (bench/scenarios) and the
 * tests (test/helpers/load.ts): raw node:net, one record per request (start time,
 * latency, status, error kind, whether it opened its connection, which worker or
 * generation answered), so failures can be counted exactly and latency cut into reload
 * windows.
 *
 * Like wrk, it counts a request lost on a reset, refused or closed connection as a failure
 * and never re-sends it; unlike wrk it needs nothing but Node, so `npm test` runs on a
 * machine without it. The benchmarks still run wrk beside it as an independent count.
 *
 * The loop runs in a worker thread so the caller's own work (polling a master, parsing
 * its log) never delays a request. Targets are loopback only, and every run is bounded
 * in time (`durationMs`, default 120 s) and optionally in count (`requests`).
 *
 * Implementation: loadgen/client.ts (the loop), loadgen/parser.ts (responses),
 * loadgen/records.ts (records, error kinds, wrk-shaped tally).
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { isIP } from 'node:net';
import { runClient, type ClientOptions } from './loadgen/client.js';
import type { LoadResult } from './loadgen/records.js';

export { Kind, kindNames, now, tally, type KindName, type LoadResult, type Tally } from './loadgen/records.js';
export type LoadOptions = ClientOptions;

export interface LoadRun {
  /** Resolves when the run is over (duration or request count reached, or stopped). */
  done: Promise<LoadResult>;
  /** End early (requests in flight still complete); resolves like `done`. */
  stop(): Promise<LoadResult>;
}

const MARK = 'hitless-loadgen';

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/** Reject options that would target another host or never end. */
function check(o: LoadOptions): void {
  if (o.socketPath === undefined) {
    if (!isLoopback(o.host ?? '127.0.0.1')) throw new Error(`loadgen targets loopback only (127.0.0.0/8, ::1), not ${o.host}`);
    if (!Number.isInteger(o.port) || (o.port ?? 0) <= 0) throw new Error(`loadgen needs a port or a socketPath, got port ${o.port}`);
  }
  if (!Number.isInteger(o.connections) || o.connections < 1) throw new Error(`loadgen connections must be a positive integer, got ${o.connections}`);
  if (o.durationMs !== undefined && !(o.durationMs >= 0)) throw new Error(`loadgen durationMs must be >= 0, got ${o.durationMs}`);
}

/**
 * Start a load run in a worker thread.
 *
 * @example
 * const run = startLoad({ port, connections: 10, durationMs: 5000, keepAlive: true });
 * const result = await run.done;
 * @example
 * // 1000 idle-ish users POSTing every 0–1.2 s for at most 30 s
 * const run = startLoad({ port, connections: 1000, thinkMs: 1200, method: 'POST', body: '{"a":1}', durationMs: 30_000 });
 * const { opened, idleClosed } = await run.stop();
 */
export function startLoad(opts: LoadOptions): LoadRun {
  check(opts);
  const worker = new Worker(new URL(import.meta.url), { workerData: { [MARK]: opts } });
  let exited = false;
  const done = new Promise<LoadResult>((resolve, reject) => {
    worker.once('message', (r: LoadResult) => resolve(r));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      exited = true;
      if (code !== 0) reject(new Error(`load worker exited with code ${code}`));
    });
  });
  return {
    done,
    stop() {
      if (!exited) worker.postMessage('stop');
      return done;
    },
  };
}

const data = workerData as Record<string, unknown> | null;
if (!isMainThread && parentPort && data && MARK in data) {
  const port = parentPort;
  const control = runClient(data[MARK] as LoadOptions);
  port.on('message', (m) => {
    if (m === 'stop') control.stop();
  });
  const r = await control.done;
  port.postMessage(r, [r.start.buffer, r.latency.buffer, r.status.buffer, r.kind.buffer, r.fresh.buffer, r.answer.buffer, r.slot.buffer] as ArrayBuffer[]);
  port.close();
}
