/**
 * Load for end-to-end tests, driven by the project's own client (bench/loadgen.ts, shared
 * with the benchmarks): it counts a request lost on a reset, refused or closed connection
 * as a failure and never re-sends it, as wrk does, and needs nothing but Node.
 *
 * The result keeps wrk's report shape (socket errors by kind, non-2xx apart) plus which
 * generations answered (the X-Generation response header) and how many connections were
 * opened. Runs are bounded (`durationMs`; optional `requests`), target loopback or a unix
 * socket only, and are stopped when the test ends.
 */
import { readFileSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { startLoad as startClient, tally, Kind, type LoadOptions, type LoadResult, type Tally } from '../../bench/loadgen.js';

/** The clock of `records.start` (epoch ms, sub-millisecond): take reload times with it. */
export { now } from '../../bench/loadgen.js';

export interface LoadTestOptions {
  /** http://127.0.0.1:<port>/path or http://[::1]:<port>/path. */
  url?: string;
  /** A unix socket path instead of `url` (path '/'). */
  socketPath?: string;
  /** Default 50. */
  connections?: number;
  /**
   * Upper bound of the run in ms. Default: an hour, a guard against a hung test and not a
   * run length: a test that reloads under load stops its load once the reloads are done,
   * and on a busy machine they may take many times longer than on an idle one (a bound
   * shorter than that ended loads mid-test, and the test failed for lack of traffic).
   */
  durationMs?: number;
  /** Stop after this many requests in total. */
  requests?: number;
  /** Send `Connection: close` on every request (a new connection per request). */
  close?: boolean;
  /** Think time before each request on a connection: max, or [min, max] ms, uniform random. */
  thinkMs?: number | [number, number];
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  /**
   * ms before a request without its response counts as timed out (default 60 000). Tests
   * assert that no request is lost, not how fast answers come: on a busy machine an answer
   * may take seconds, and the benchmarks' 5 s would count it as a failure.
   */
  timeoutMs?: number;
  /** Response header recorded per request (default `x-generation`; `summary.generations` holds its values). */
  track?: string;
}

export interface LoadSummary extends Tally {
  /** Distinct X-Generation values that answered, in numeric order. */
  generations: string[];
  /** Connections established during the run. */
  opened: number;
  /** Connections the server closed while idle (no request lost; the next one re-opens). */
  idleClosed: number;
  /** Socket error codes seen, with counts. */
  codes: Record<string, number>;
  /** A one-line report for assertion messages. */
  raw: string;
  /** Every request's record, for a closer look (start, latency, status, kind, …). */
  records: LoadResult;
}

export interface LoadRun {
  /** End early (requests in flight complete) and resolve with the counts. */
  stop(): Promise<LoadSummary>;
  /** Resolves when the run ended by itself (duration or request count reached). */
  done: Promise<LoadSummary>;
}

export function summarize(records: LoadResult): LoadSummary {
  const t = tally(records);
  const generations = Object.keys(t.byAnswer).sort((a, b) => Number(a) - Number(b));
  const e = t.errors;
  const raw = `${t.requests} requests, ${t.ok} 2xx, ${t.non2xx} non-2xx; socket errors: connect ${e.connect}, read ${e.read}, ` +
    `write ${e.write}, timeout ${e.timeout}; codes ${JSON.stringify(records.codes)}; generations ${JSON.stringify(t.byAnswer)}; ` +
    `connections opened ${records.opened}, closed idle by the server ${records.idleClosed}`;
  return { ...t, generations, opened: records.opened, idleClosed: records.idleClosed, codes: records.codes, raw, records };
}

/**
 * Connections opened by requests that started within [from, to] (times from `now()`): with
 * the times a reload began and ended, the connections re-opened because of it.
 */
export function openedBetween(r: LoadSummary, from: number, to: number): number {
  const { start, fresh, kind } = r.records;
  let n = 0;
  for (let i = 0; i < r.records.count; i++) {
    const t = start[i] ?? 0;
    if (fresh[i] === 1 && kind[i] !== Kind.refused && t >= from && t <= to) n++;
  }
  return n;
}

/** A test's request timeout: long enough that only a request nobody answers counts, on any machine. */
export const TEST_REQUEST_TIMEOUT_MS = 60_000;

/**
 * Established TCP connections whose local port is `port` (the server's side, accepted or
 * still in the accept queue), read from /proc/net/tcp and tcp6: how many load users are
 * connected.
 */
export function establishedTo(port: number): number {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      // state 01 = ESTABLISHED; local is <hex address>:<hex port>
      if (state === '01' && local !== undefined && Number.parseInt(local.split(':')[1] ?? '', 16) === port) n++;
    }
  }
  return n;
}

function target(o: LoadTestOptions): Pick<LoadOptions, 'host' | 'port' | 'socketPath' | 'path'> {
  if (o.socketPath !== undefined) return { socketPath: o.socketPath, path: '/' };
  if (o.url === undefined) throw new Error('load: give url or socketPath');
  const u = new URL(o.url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port), path: u.pathname + u.search };
}

/** The default bound of a run (see `durationMs`). */
const UNTIL_STOPPED_MS = 3_600_000;

/**
 * Start load against a master under test; stopped automatically when the test ends.
 *
 * @example
 * const load = startLoad(t, { url: master.url('/'), connections: 50 });
 * await master.reload();
 * const result = await load.stop();
 * assert.equal(result.failed, 0, result.raw);
 */
export function startLoad(t: Pick<TestContext, 'after'> | undefined, o: LoadTestOptions): LoadRun {
  const run = startClient({
    ...target(o),
    connections: o.connections ?? 50,
    durationMs: o.durationMs ?? UNTIL_STOPPED_MS,
    requests: o.requests,
    keepAlive: !o.close,
    thinkMs: o.thinkMs,
    method: o.method,
    body: o.body,
    headers: o.headers,
    timeoutMs: o.timeoutMs ?? TEST_REQUEST_TIMEOUT_MS,
    track: o.track,
  });
  const done = run.done.then(summarize);
  done.catch(() => undefined); // a test that only calls stop() still sees the error there
  // Without a test context (a suite-level helper), the caller stops it; the duration bounds it anyway.
  t?.after(async () => {
    await run.stop().catch(() => undefined);
  });
  return { done, stop: () => run.stop().then(summarize) };
}
