/**
 * The master's book of traffic figures: what each worker reported in its `stats` messages
 * (cumulative counters, channel.ts), turned into rates over a sliding window, 5xx shares,
 * merged latency histograms and their p50/p99, per worker, per generation and per release.
 * Pure: times come in as arguments, so the unit tests need no clock.
 *
 * Counters only grow per worker, so every message adds its difference from the previous
 * one to its generation's and release's totals: those survive the worker's exit, which
 * is what Prometheus counters and the canary's comparison need.
 */
import { LATENCY_BOUNDS_MS, STATUS_CLASSES, type StatsMessage } from '../lib/protocol.js';
import type { ClassCounts, GenerationTraffic, StatusSnapshot, TrafficFigures } from './types.js';

/** Cumulative figures: responses by class, latency histogram (LATENCY_BOUNDS_MS + overflow), latency sum in ms. */
export interface Counts {
  requests: ClassCounts;
  latency: number[];
  latencySum: number;
}

/** Window of the rates in status: long enough to smooth 1 s reports, short enough to be "now". */
export const TRAFFIC_WINDOW_MS = 10_000;

export interface WorkerMeta {
  generation: number;
  /** Release id, or `gen-<n>` when the app has no releases/ layout (series key in Prometheus). */
  release: string;
  startedAt: number;
}

interface Sample {
  at: number;
  counts: Counts;
}

interface Entry {
  meta: WorkerMeta;
  /** The latest sample at or before the window's start, then every later one. */
  samples: Sample[];
  exitedAt: number | undefined;
  /** Connections open at its last report (`stats` `connections`), when it says. */
  connections: number | undefined;
  /** Requests begun and not answered at its last report (`stats` `busy`), when it says. */
  busy: number | undefined;
}

/**
 * The key of a generation's traffic series: its release, or `gen-<n>` without a releases/ layout.
 *
 * @example
 * releaseKey(7, undefined); // 'gen-7'
 */
export const releaseKey = (generation: number, release: string | undefined): string => release ?? `gen-${generation}`;

export const zeroCounts = (): Counts => ({
  requests: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
  latency: new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0),
  latencySum: 0,
});

/**
 * a + b (or a − b with `sign` −1, never below 0).
 *
 * @example
 * const sinceMark = combine(book.total(gen), atMark, -1);
 */
export function combine(a: Counts, b: Counts, sign: 1 | -1 = 1): Counts {
  const out = zeroCounts();
  for (const c of STATUS_CLASSES) out.requests[c] = Math.max(0, a.requests[c] + sign * b.requests[c]);
  out.latency = a.latency.map((n, i) => Math.max(0, n + sign * (b.latency[i] ?? 0)));
  out.latencySum = Math.max(0, a.latencySum + sign * b.latencySum);
  return out;
}

export const totalOf = (c: Counts): number => STATUS_CLASSES.reduce((s, k) => s + c.requests[k], 0);

/**
 * The `q` quantile (0..1) of a histogram in ms, interpolated linearly within its bucket
 * (Prometheus' histogram_quantile); the highest finite bound when it falls in the overflow
 * bucket; undefined for an empty histogram.
 *
 * @example
 * quantile(counts.latency, 0.99); // 4.2
 */
export function quantile(latency: number[], q: number): number | undefined {
  const n = latency.reduce((a, b) => a + b, 0);
  if (n === 0) return undefined;
  const rank = q * n;
  let seen = 0;
  for (let i = 0; i < latency.length; i++) {
    const inBucket = latency[i] ?? 0;
    if (seen + inBucket >= rank && inBucket > 0) {
      const hi = LATENCY_BOUNDS_MS[i];
      if (hi === undefined) return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1];
      const lo = i === 0 ? 0 : (LATENCY_BOUNDS_MS[i - 1] as number);
      return lo + (hi - lo) * ((rank - seen) / inBucket);
    }
    seen += inBucket;
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1];
}

/**
 * How many observations of a histogram were slower than `ms` (linear within the bucket that holds `ms`).
 *
 * @example
 * slowerThan(counts.latency, 25) / totalOf(counts); // share slower than 25 ms
 */
export function slowerThan(latency: number[], ms: number): number {
  let slower = 0;
  for (let i = 0; i < latency.length; i++) {
    const lo = i === 0 ? 0 : (LATENCY_BOUNDS_MS[i - 1] as number);
    const hi = LATENCY_BOUNDS_MS[i] ?? Number.POSITIVE_INFINITY;
    const n = latency[i] ?? 0;
    if (lo >= ms) slower += n;
    else if (hi > ms && Number.isFinite(hi)) slower += n * ((hi - ms) / (hi - lo));
  }
  return slower;
}

/**
 * The counts a stats message carries.
 *
 * @example
 * book.record(id, meta, now, countsOf(message));
 */
export function countsOf(m: Omit<StatsMessage, 'connections'>): Counts {
  return { requests: { ...m.requests }, latency: [...m.latency], latencySum: m.latencySum };
}

/**
 * Per-worker reports and per-generation/-release totals.
 *
 * @example
 * const book = new TrafficBook();
 * book.record('w1', { generation: 3, release: 'v7', startedAt: 0 }, Date.now(), countsOf(message));
 * book.generation(3, Date.now()); // { rps, errorRate, p50Ms, p99Ms, total, … }
 */
export class TrafficBook {
  readonly #window: number;
  readonly #entries = new Map<string, Entry>();
  readonly #generations = new Map<number, Counts>();
  readonly #releases = new Map<string, { counts: Counts; seenAt: number }>();

  constructor(windowMs = TRAFFIC_WINDOW_MS) {
    this.#window = windowMs;
  }

  /** Records worker `id`'s cumulative `counts` received at `at`, the `connections` it has open now and the requests it is `busy` with. */
  record(id: string, meta: WorkerMeta, at: number, counts: Counts, connections?: number, busy?: number): void {
    let entry = this.#entries.get(id);
    if (!entry) {
      entry = { meta, samples: [], exitedAt: undefined, connections: undefined, busy: undefined };
      this.#entries.set(id, entry);
    }
    const last = entry.samples[entry.samples.length - 1]?.counts ?? zeroCounts();
    // A report that went backwards is not this process's (counters only grow): ignore it.
    if (totalOf(counts) < totalOf(last)) return;
    entry.connections = connections;
    entry.busy = busy;
    const delta = combine(counts, last, -1);
    this.#generations.set(meta.generation, combine(this.#generations.get(meta.generation) ?? zeroCounts(), delta));
    const rel = this.#releases.get(meta.release);
    this.#releases.set(meta.release, { counts: combine(rel?.counts ?? zeroCounts(), delta), seenAt: at });
    entry.samples.push({ at, counts });
    while ((entry.samples[1]?.at ?? Number.POSITIVE_INFINITY) <= at - this.#window) entry.samples.shift();
    this.#prune(at);
  }

  /**
   * Adds `counts` to `release`'s totals as of `at`: what another master's workers served
   * (an upgrade hands its totals on, so Prometheus counters go on instead of restarting).
   *
   * @example
   * book.addRelease('v7', totalsFromTheOldMaster, Date.now());
   */
  addRelease(release: string, counts: Counts, at: number): void {
    const rel = this.#releases.get(release);
    this.#releases.set(release, { counts: combine(rel?.counts ?? zeroCounts(), counts), seenAt: Math.max(rel?.seenAt ?? 0, at) });
  }

  /** Worker `id` exited at `at`: its figures leave the window after it; entries older than that are dropped. */
  exited(id: string, at: number): void {
    const entry = this.#entries.get(id);
    if (entry) entry.exitedAt = at;
    this.#prune(at);
  }

  /**
   * Connections generation `gen`'s live workers had open at their last reports; undefined
   * when none of them reports it.
   *
   * @example
   * book.connections(canary.id); // 9
   */
  connections(gen: number): number | undefined {
    return this.#live(gen, (e) => e.connections);
  }

  /**
   * Requests generation `gen`'s live workers had begun and not answered at their last
   * reports; undefined when none of them reports it.
   *
   * @example
   * book.busy(canary.id); // 0: whatever it holds is idle
   */
  busy(gen: number): number | undefined {
    return this.#live(gen, (e) => e.busy);
  }

  /**
   * When every live worker of generation `gen` had reported last: the oldest of their
   * latest reports (undefined while one of them has not reported, or none is live). A
   * worker whose event loop is blocked sends none, so its figures are as old as that.
   *
   * @example
   * book.reportedAt(canary.id); // 41_000: its workers all reported at or after then
   */
  reportedAt(gen: number): number | undefined {
    let oldest: number | undefined;
    for (const e of this.#entries.values()) {
      if (e.meta.generation !== gen || e.exitedAt !== undefined) continue;
      const at = e.samples.at(-1)?.at;
      if (at === undefined) return undefined;
      oldest = Math.min(oldest ?? at, at);
    }
    return oldest;
  }

  /**
   * True once a worker of generation `gen` sent traffic figures (a `stats` message), even
   * with nothing served: the in-app library reports every second. Workers without it that
   * do not send the `stats` lines never do, and their generation cannot be judged.
   *
   * @example
   * book.reported(canary.id); // false: no canary worker sent `stats`
   */
  reported(gen: number): boolean {
    for (const e of this.#entries.values()) if (e.meta.generation === gen) return true;
    return false;
  }

  /**
   * The connections worker `id` had open at its last report, live or exited (a split
   * shares a count out by it; for a worker killed at its drain deadline, what died with
   * it); undefined when it never said.
   *
   * @example
   * book.lastOpen('3.1'); // 2
   */
  lastOpen(id: string): number | undefined {
    return this.#entries.get(id)?.connections;
  }

  /**
   * The requests worker `id` had begun and not answered at its last report (`stats` `busy`);
   * undefined when it never said (no in-app library or preload).
   *
   * @example
   * book.lastBusy('3.1'); // 2
   */
  lastBusy(id: string): number | undefined {
    return this.#entries.get(id)?.busy;
  }

  /**
   * Responses worker `id` reported in all (every class), 0 before its first report.
   *
   * @example
   * book.served('2.1'); // 5120
   */
  served(id: string): number {
    const last = this.#entries.get(id)?.samples.at(-1);
    return last === undefined ? 0 : totalOf(last.counts);
  }

  /** The sum of `field` over `gen`'s live workers that report it. */
  #live(gen: number, field: (e: Entry) => number | undefined): number | undefined {
    let sum: number | undefined;
    for (const e of this.#entries.values()) {
      const v = field(e);
      if (e.meta.generation !== gen || e.exitedAt !== undefined || v === undefined) continue;
      sum = (sum ?? 0) + v;
    }
    return sum;
  }

  /** Everything generation `gen` served since its first worker started. */
  total(gen: number): Counts {
    return this.#generations.get(gen) ?? zeroCounts();
  }

  /** Figures of one worker over the window ending `now`; undefined until it reported. */
  worker(id: string, now: number): TrafficFigures | undefined {
    const entry = this.#entries.get(id);
    return entry && entry.samples.length > 0 ? this.#figures([entry], now, undefined) : undefined;
  }

  /** Figures of a generation over the window ending `now`; undefined until one of its workers reported. */
  generation(gen: number, now: number): TrafficFigures | undefined {
    const entries = [...this.#entries.values()].filter((e) => e.meta.generation === gen && e.samples.length > 0);
    return entries.length > 0 ? this.#figures(entries, now, this.#generations.get(gen)) : undefined;
  }

  /**
   * Totals per release for Prometheus, bounded: the serving release and the most recently
   * seen other one (the one before it, or a canary that failed); the rest are dropped.
   */
  releases(serving: string | undefined): { release: string; counts: Counts }[] {
    const others = [...this.#releases.entries()].filter(([r]) => r !== serving).sort((a, b) => b[1].seenAt - a[1].seenAt);
    for (const [r] of others.slice(1)) this.#releases.delete(r);
    return [...this.#releases.entries()].map(([release, v]) => ({ release, counts: v.counts }));
  }

  /**
   * The traffic part of the status: each generation with live `workers` (that reported),
   * and the release series kept (see releases()).
   */
  snapshot(workers: { generation: number; spec: { release: string | undefined } }[], serving: { id: number; release: string | undefined } | undefined, now: number): NonNullable<StatusSnapshot['traffic']> {
    const gens = new Map<number, { release: string | undefined; workers: number }>();
    for (const w of workers) {
      const g = gens.get(w.generation) ?? { release: w.spec.release, workers: 0 };
      g.workers++;
      gens.set(w.generation, g);
    }
    const generations: GenerationTraffic[] = [];
    for (const [generation, g] of [...gens].sort((a, b) => a[0] - b[0])) {
      const figures = this.generation(generation, now);
      if (figures) generations.push({ generation, release: g.release, serving: generation === serving?.id, workers: g.workers, figures });
    }
    const releases = this.releases(serving && releaseKey(serving.id, serving.release)).map(({ release, counts }) => ({
      release, requests: counts.requests, latency: counts.latency, latencySumMs: counts.latencySum,
    }));
    return { windowMs: this.#window, generations, releases };
  }

  #figures(entries: Entry[], now: number, totals: Counts | undefined): TrafficFigures {
    const from = now - this.#window;
    let windowed = zeroCounts();
    let total = zeroCounts();
    let rps = 0;
    let span = 0;
    let connections: number | undefined;
    for (const e of entries) {
      if (e.exitedAt === undefined && e.connections !== undefined) connections = (connections ?? 0) + e.connections;
      const end = e.samples[e.samples.length - 1] as Sample;
      total = combine(total, end.counts);
      if (e.exitedAt !== undefined && e.exitedAt <= from) continue;
      const base = e.samples.findLast((x) => x.at <= from) ?? { at: e.meta.startedAt, counts: zeroCounts() };
      const delta = combine(end.counts, base.counts, -1);
      windowed = combine(windowed, delta);
      const ms = end.at - base.at;
      span = Math.max(span, ms);
      if (e.exitedAt === undefined && ms > 0) rps += (totalOf(delta) * 1000) / ms;
    }
    const requests = totalOf(windowed);
    const errors = windowed.requests['5xx'];
    return {
      windowMs: span,
      requests,
      rps,
      errors,
      errorRate: requests > 0 ? errors / requests : undefined,
      p50Ms: quantile(windowed.latency, 0.5),
      p99Ms: quantile(windowed.latency, 0.99),
      total: { ...(totals ?? total).requests },
      ...(connections === undefined ? {} : { connections }),
    };
  }

  #prune(now: number): void {
    for (const [id, e] of this.#entries) {
      if (e.exitedAt !== undefined && e.exitedAt <= now - this.#window) this.#entries.delete(id);
    }
    const live = new Set([...this.#entries.values()].map((e) => e.meta.generation));
    for (const gen of this.#generations.keys()) if (!live.has(gen)) this.#generations.delete(gen);
  }
}
