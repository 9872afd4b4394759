/**
 * The canary's decision rule (docs/canary.md): one-sided tests that need evidence to fail,
 * so a handful of unlucky requests never fails a good version and a small count never
 * passes one by luck.
 *
 * - errors: fail when an exact binomial test (Clopper-Pearson) says the canary's 5xx share
 *   is above `maxErrorRate`, AND a one-sided two-proportion z-test says it is above the
 *   serving generation's share over the same window (an outage of a shared backend that
 *   fails both equally is not the canary's fault). When the serving generation answered too
 *   few for that comparison to show anything (see {@link servingTooFew}), the binomial test
 *   decides alone, as it does without serving figures;
 * - latency, over the window after `canary.warmup` (a fresh process is slower while V8
 *   compiles and its heap grows) and once it holds `minRequests` canary responses: fail
 *   when an exact binomial test says more than 1% of them were slower than
 *   `maxLatencyRatio` × the serving generation's p99 over that window (at least
 *   LATENCY_FLOOR_MS): the canary's p99 is above it. A serving generation that answered
 *   nothing after the warm-up but did before is taken over the whole window;
 * - at the end of `duration`: fewer than `minRequests` canary responses is inconclusive,
 *   and so is a latency that could not be judged (fewer than `minRequests` of them after
 *   the warm-up: a slow canary behind closed-loop keep-alive clients gets few requests, and
 *   must not pass because of it); anything else that did not fail passes.
 *
 * Before `duration` is over the same tests run at every report (1 s) at a stricter level,
 * so a plainly bad canary goes early; the final look uses the stated level.
 */
import { formatDuration } from '../../config/duration.js';
import type { CanaryConfig } from '../../config/types.js';
import { quantile, slowerThan, totalOf, type Counts } from '../traffic.js';
import type { SideFigures } from '../types.js';

/** One-sided level of the final look (99% confidence), and the normal z of that level. */
export const FINAL = { alpha: 0.01, z: 2.326 } as const;
/** Level of each early look (99.9%): with 30 looks, at most 3% more false fails by the union bound. */
export const EARLY = { alpha: 0.001, z: 3.09 } as const;
/** Latency limits below this (ms) are raised to it: GC pauses and scheduling on a busy machine reach ~20 ms. */
export const LATENCY_FLOOR_MS = 25;
/** The latency rule's tail: more than 1% of responses above the limit means p99 above it. */
const TAIL = 0.01;

export type Verdict = 'pass' | 'fail' | 'inconclusive' | 'pending';

export interface Judgement {
  verdict: Verdict;
  /** One line: why (figures included). */
  reason: string;
  canary: SideFigures;
  baseline: SideFigures;
  /** The latency limit applied (ms); undefined without baseline figures. */
  latencyLimitMs: number | undefined;
}

/**
 * Requests, 5xx and quantiles of one side's counts.
 *
 * @example
 * sideFigures(book.total(3)); // { requests: 1200, errors: 3, errorRate: 0.0025, p50Ms: 0.4, p99Ms: 6.1 }
 */
export function sideFigures(c: Counts): SideFigures {
  const requests = totalOf(c);
  const errors = c.requests['5xx'];
  return {
    requests,
    errors,
    errorRate: requests > 0 ? errors / requests : undefined,
    p50Ms: quantile(c.latency, 0.5),
    p99Ms: quantile(c.latency, 0.99),
  };
}

const LOG_FACT_SMALL: number[] = [0];
for (let i = 1; i < 256; i++) LOG_FACT_SMALL[i] = (LOG_FACT_SMALL[i - 1] as number) + Math.log(i);

/** ln(n!) (a table below 256, Stirling's series above: error < 1e-12). */
function logFactorial(n: number): number {
  if (n < 256) return LOG_FACT_SMALL[n] as number;
  return n * Math.log(n) - n + 0.5 * Math.log(2 * Math.PI * n) + 1 / (12 * n) - 1 / (360 * n ** 3);
}

/**
 * P(X ≥ k) for X ~ Binomial(n, p): the p-value of "the rate is above p" after k in n.
 * Returns 1 when k ≤ n·p (never significant at the levels used here, and cheap).
 *
 * @example
 * binomialTail(2, 20, 0.01); // 0.0169: 2 errors in 20 is not evidence of a rate above 1% at 99%
 */
export function binomialTail(k: number, n: number, p: number): number {
  k = Math.floor(k);
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1 || k <= n * p) return 1;
  let term = Math.exp(logFactorial(n) - logFactorial(k) - logFactorial(n - k) + k * Math.log(p) + (n - k) * Math.log1p(-p));
  let sum = 0;
  // Past the mode the terms only shrink: stop once they no longer change the sum.
  for (let i = k; i <= n && term > sum * 1e-15; i++) {
    sum += term;
    term *= ((n - i) / (i + 1)) * (p / (1 - p));
  }
  return Math.min(1, sum);
}

/**
 * The one-sided Clopper-Pearson lower bound of a rate at level `alpha` (bisection on binomialTail).
 *
 * @example
 * lowerBound(10, 100, 0.01); // 0.042
 */
export function lowerBound(k: number, n: number, alpha: number): number {
  if (Math.floor(k) <= 0 || n <= 0) return 0;
  let lo = 0;
  let hi = Math.min(1, Math.floor(k) / n);
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (binomialTail(k, n, mid) < alpha) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * One-sided two-proportion z statistic (pooled) of rate 1 above rate 2; 0 when undefined.
 *
 * @example
 * twoProportionZ(32, 327, 0, 830); // 9.1
 */
export function twoProportionZ(k1: number, n1: number, k2: number, n2: number): number {
  if (n1 === 0 || n2 === 0) return 0;
  const pooled = (k1 + k2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  return se === 0 ? 0 : (k1 / n1 - k2 / n2) / se;
}

/**
 * True when the serving generation's count is too small for the z-test to show this canary
 * worse at level `z`: even with no 5xx at all among the serving responses (the outcome that
 * gives the largest z, for the canary's `errors` of `requests`) the pooled z would not be
 * above `z`. The comparison can then only hold a failing canary back, whatever the serving
 * generation served: its "not worse" reflects its count, not its share. That happens when a
 * connection moved or lent to the canary carries all of a pool's or a browser's requests:
 * with m serving responses, none a 5xx, the pooled z never exceeds about √(m·r/(1−r)) for a
 * canary share r, however many canary responses (report h25 F3: a 10%-500 canary, 27 of
 * 279, against 0 of 29 serving: z ≤ 1.8, so it passed at the end). Also true with no serving
 * figures at all (m = 0), the case the rule always judged on `maxErrorRate` alone.
 *
 * @example
 * servingTooFew({ requests: 279, errors: 27 }, 29, 2.326); // true: z at most 1.75
 * servingTooFew({ requests: 279, errors: 27 }, 830, 2.326); // false
 */
export function servingTooFew(canary: { requests: number; errors: number }, serving: number, z: number): boolean {
  return twoProportionZ(canary.errors, canary.requests, 0, serving) <= z;
}

const pct = (x: number | undefined): string => (x === undefined ? '-' : `${(x * 100).toFixed(x < 0.1 ? 2 : 1)}%`);
const ms = (x: number | undefined): string => (x === undefined ? '-' : `${x.toFixed(x < 10 ? 1 : 0)} ms`);

/** What a look compares: both sides since the canary was ready, and since its warm-up ended. */
export interface Window {
  canary: Counts;
  baseline: Counts;
  /** The same after `canary.warmup` (undefined while it lasts): what latency is judged on. */
  warm: { canary: Counts; baseline: Counts } | undefined;
}

/**
 * Judges the canary's counts against the serving generation's over the same window:
 * errors since the canary was ready, latency since its warm-up ended. `final`: the look at
 * the end of `duration` (level FINAL, may pass or be inconclusive); earlier looks (level
 * EARLY) only fail or stay pending.
 *
 * @example
 * const j = judge({ canary, baseline, warm }, spec.canary, elapsed >= spec.canary.duration);
 * if (j.verdict === 'fail') throw new HitlessError('ERR_CANARY_FAILED', j.reason);
 */
export function judge(w: Window, s: CanaryConfig, final: boolean): Judgement {
  const { alpha, z } = final ? FINAL : EARLY;
  const level = `${+((1 - alpha) * 100).toFixed(1)}%`;
  const c = sideFigures(w.canary);
  const b = sideFigures(w.baseline);
  // Latency figures come from the warm window once it holds canary responses.
  const wc = w.warm && sideFigures(w.warm.canary);
  const wb = w.warm && sideFigures(w.warm.baseline);
  // A serving generation that answered nothing after the warm-up, but did before (a
  // connection lent to the canary carries all of a pool's requests): its p99 over the whole
  // window is the basis, else a canary no one could compare would pass unjudged.
  const whole = wb !== undefined && wb.requests === 0 && b.requests > 0;
  if (wc && wb && wc.requests > 0) {
    Object.assign(c, { p50Ms: wc.p50Ms, p99Ms: wc.p99Ms });
    if (!whole) Object.assign(b, { p50Ms: wb.p50Ms, p99Ms: wb.p99Ms });
  }
  const basis = whole ? b.p99Ms : wb?.p99Ms;
  const over = whole ? ' (over the whole window: it answered nothing after the warm-up)' : '';
  const out = (verdict: Verdict, reason: string, latencyLimitMs: number | undefined): Judgement => ({ verdict, reason, canary: c, baseline: b, latencyLimitMs });

  // Too few serving responses to compare with: maxErrorRate decides alone, at every look,
  // so a canary that carries nearly all the traffic cannot pass for want of a comparison. An
  // outage both generations share is then not told apart from the canary's own errors: it
  // fails, and the serving generation keeps serving (a retry judges it again).
  const alone = servingTooFew(c, b.requests, z);
  if (binomialTail(c.errors, c.requests, s.maxErrorRate) < alpha
    && (alone || twoProportionZ(c.errors, c.requests, b.errors, b.requests) > z)) {
    const bound = lowerBound(c.errors, c.requests, alpha);
    const versus = b.requests === 0 ? ' and no serving-generation figures'
      : alone ? `, judged on it alone: the serving generation answered too few to compare with (${pct(b.errorRate)} of ${b.requests}: even with no 5xx among them the canary could not be shown worse at ${level} confidence)`
        : ` and the serving generation's ${pct(b.errorRate)} of ${b.requests}`;
    return out('fail', `5xx ${pct(c.errorRate)} of ${c.requests} canary responses (above ${pct(bound)} at ${level} confidence): over maxErrorRate ${pct(s.maxErrorRate)}${versus}`, undefined);
  }
  const limit = basis === undefined ? undefined : Math.max(s.maxLatencyRatio * basis, LATENCY_FLOOR_MS);
  // Not on a handful of responses: a few slow ones in a row are usually one pause.
  if (w.warm && wc && limit !== undefined && wc.requests >= Math.max(1, s.minRequests)) {
    const slow = slowerThan(w.warm.canary.latency, limit);
    if (binomialTail(slow, wc.requests, TAIL) < alpha) {
      return out('fail', `p99 ${ms(wc.p99Ms)} vs ${ms(basis)} on the serving generation${over}: ${pct(slow / wc.requests)} of ${wc.requests} canary responses after the warm-up slower than ${ms(limit)} (maxLatencyRatio ${s.maxLatencyRatio} × the serving p99, at least ${LATENCY_FLOOR_MS} ms), more than 1% at ${level} confidence`, limit);
    }
  }
  const latency = wc && wc.requests > 0 ? `p99 ${ms(c.p99Ms)} vs ${ms(b.p99Ms)} (limit ${ms(limit)})${over}` : `p99 ${ms(c.p99Ms)} vs ${ms(b.p99Ms)}, latency not judged (no canary response after the warm-up)`;
  const figures = `5xx ${pct(c.errorRate)} of ${c.requests} vs ${pct(b.errorRate)} of ${b.requests} serving; ${latency}`;
  if (!final) return out('pending', figures, limit);
  if (c.requests < s.minRequests) {
    return out('inconclusive', `only ${c.requests} canary responses in ${formatDuration(s.duration)}, fewer than minRequests ${s.minRequests}: not enough to judge (${figures})`, limit);
  }
  const judged = wc?.requests ?? 0;
  if (judged < s.minRequests) {
    return out('inconclusive', `only ${judged} canary responses after the warm-up, fewer than minRequests ${s.minRequests}: latency not judged (${figures})`, limit);
  }
  return out('pass', figures, limit);
}
