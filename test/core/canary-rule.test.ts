/**
 * The canary's decision rule (docs/canary.md), on plain counts: it needs evidence to fail,
 * so small counts never flap; it compares with the serving generation; latency is judged
 * on the canary's p99 against a multiple of the serving p99.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CANARY } from '../../src/config/defaults.js';
import { binomialTail, judge, LATENCY_FLOOR_MS, lowerBound, servingTooFew, twoProportionZ, type Window } from '../../src/core/strategies/canary-rule.js';
import { combine, type Counts } from '../../src/core/traffic.js';
import { counts } from './fake-traffic.js';

const settings = { ...DEFAULT_CANARY, duration: 10_000, minRequests: 100, maxErrorRate: 0.01, maxLatencyRatio: 2 };

/** A window whose warm part is all of it (or none yet, while the warm-up lasts). */
const win = (canary: Counts, baseline: Counts, warmedUp = true): Window => ({ canary, baseline, warm: warmedUp ? { canary, baseline } : undefined });

test('binomial tail: exact values on small counts, no overflow on large ones', () => {
  // P(X >= 2 | n=20, p=0.01) = 1 - 0.99^20 - 20·0.01·0.99^19
  assert.ok(Math.abs(binomialTail(2, 20, 0.01) - (1 - 0.99 ** 20 - 20 * 0.01 * 0.99 ** 19)) < 1e-12);
  assert.equal(binomialTail(0, 20, 0.01), 1);
  assert.equal(binomialTail(3, 2, 0.5), 0);
  assert.equal(binomialTail(1, 100, 0), 0);
  const far = binomialTail(150, 10_000, 0.01); // mean 100, sd ~9.95: about 5 sd out
  assert.ok(far > 0 && far < 1e-5, String(far));
  assert.ok(binomialTail(120, 1_000_000, 0.0001) < 0.05);
});

test('Clopper-Pearson lower bound: below the observed rate, above zero with evidence', () => {
  const b = lowerBound(10, 100, 0.01);
  assert.ok(b > 0.04 && b < 0.05, String(b));
  assert.equal(lowerBound(0, 100, 0.01), 0);
  assert.ok(binomialTail(10, 100, b) <= 0.01 + 1e-9);
});

test('two-proportion z: positive when the first rate is higher, 0 when undefined', () => {
  assert.ok(twoProportionZ(100, 1000, 10, 1000) > 8);
  assert.ok(twoProportionZ(10, 1000, 100, 1000) < -8);
  assert.equal(twoProportionZ(0, 0, 1, 10), 0);
  assert.equal(twoProportionZ(0, 10, 0, 10), 0);
});

test('small counts never fail: 2 errors in 20 responses stays pending, then passes-or-inconclusive on counts alone', () => {
  const early = judge(win(counts(18, 2), counts(2000)), settings, false);
  assert.equal(early.verdict, 'pending');
  const final = judge(win(counts(18, 2), counts(2000)), settings, true);
  assert.equal(final.verdict, 'inconclusive');
  assert.match(final.reason, /only 20 canary responses in 10 s, fewer than minRequests 100/);
});

test('10% errors against a clean serving generation fail at an early look, with both figures in the reason', () => {
  const j = judge(win(counts(180, 20), counts(400)), settings, false);
  assert.equal(j.verdict, 'fail');
  assert.equal(j.canary.errors, 20);
  assert.equal(j.canary.errorRate, 0.1);
  assert.equal(j.baseline.requests, 400);
  assert.match(j.reason, /5xx 10\.0% of 200 canary responses \(above [\d.]+% at 99\.9% confidence\): over maxErrorRate 1\.00% and the serving generation's 0\.00% of 400/);
});

test('errors shared with the serving generation (a backend outage) do not fail the canary', () => {
  const j = judge(win(counts(950, 50), counts(1900, 100)), settings, true);
  assert.equal(j.verdict, 'pass');
});

test('a canary with no serving-generation figures is judged on maxErrorRate alone', () => {
  assert.equal(judge(win(counts(900, 100), counts(0)), settings, false).verdict, 'fail');
  assert.equal(judge(win(counts(1000, 0), counts(0)), settings, true).verdict, 'pass');
});

test('servingTooFew: true when even a serving generation with no 5xx could not make the z-test show the canary worse', () => {
  // h25 F3's figures: 27 of 279 canary 5xx against 29 serving responses; z ≤ 1.75 at best.
  assert.equal(servingTooFew({ requests: 279, errors: 27 }, 29, 2.326), true);
  assert.ok(twoProportionZ(27, 279, 0, 29) < 2.326);
  assert.equal(servingTooFew({ requests: 279, errors: 27 }, 830, 2.326), false);
  assert.equal(servingTooFew({ requests: 279, errors: 27 }, 0, 2.326), true, 'no serving figures at all');
  // Enough serving responses for the final level but not for an early look's.
  assert.equal(servingTooFew({ requests: 300, errors: 30 }, 50, 2.326), false);
  assert.equal(servingTooFew({ requests: 300, errors: 30 }, 50, 3.09), true);
});

test('a serving generation that answered too few to compare with (a moved or lent connection carries nearly all requests): the canary\'s 5xx share is judged on maxErrorRate alone, at every look (regression h25 F3: a 10%-500 canary passed against 0 of 29 serving)', () => {
  // What passed: 27 of 279 against 0 of 29, at the end.
  const final = judge(win(counts(252, 27), counts(29)), settings, true);
  assert.equal(final.verdict, 'fail');
  assert.match(final.reason, /^5xx 9\.68% of 279 canary responses \(above [\d.]+% at 99% confidence\): over maxErrorRate 1\.00%, judged on it alone: the serving generation answered too few to compare with \(0\.00% of 29: even with no 5xx among them the canary could not be shown worse at 99% confidence\)$/);
  // The first look with enough canary responses decides: 5 of 50 against 4 serving.
  const first = judge(win(counts(45, 5), counts(4)), settings, false);
  assert.equal(first.verdict, 'fail');
  assert.match(first.reason, /at 99\.9% confidence\): over maxErrorRate 1\.00%, judged on it alone: .*\(0\.00% of 4: /);
  // Half of them 500s: out at once, not at the end of duration.
  assert.equal(judge(win(counts(10, 10), counts(5)), settings, false).verdict, 'fail');
  // Too few canary responses is still no evidence: 2 of 20 stays pending.
  assert.equal(judge(win(counts(18, 2), counts(4)), settings, false).verdict, 'pending');
});

test('a healthy canary with a starved serving generation still passes', () => {
  for (const canary of [counts(279), counts(278, 1), counts(995, 5)]) {
    const j = judge(win(canary, counts(29)), settings, true);
    assert.equal(j.verdict, 'pass', j.reason);
    assert.equal(judge(win(canary, counts(29)), settings, false).verdict, 'pending');
  }
});

test('with enough serving responses the comparison still excuses a canary no worse than the serving generation', () => {
  // 10% on both sides, 50 serving responses: enough at the final level (z up to 2.34 > 2.326).
  assert.equal(judge(win(counts(270, 30), counts(45, 5)), settings, true).verdict, 'pass');
  // The same canary against a clean serving side of 50: the comparison shows it worse.
  const j = judge(win(counts(270, 30), counts(50)), settings, true);
  assert.equal(j.verdict, 'fail');
  assert.match(j.reason, /over maxErrorRate 1\.00% and the serving generation's 0\.00% of 50$/);
});

test('latency: a canary 200 ms slower than a 1 ms serving generation fails; one within the ratio passes', () => {
  const slow = judge(win(counts(100, 0, 201), counts(1000, 0, 1)), settings, false);
  assert.equal(slow.verdict, 'fail');
  assert.equal(slow.latencyLimitMs, LATENCY_FLOOR_MS); // 2 × ~1 ms is below the floor
  assert.match(slow.reason, /p99 \d+ ms vs 1\.0 ms on the serving generation/);
  // Serving p99 ~40 ms, canary ~60 ms: within 2×.
  const fine = judge(win(counts(1000, 0, 60), counts(2000, 0, 40)), settings, true);
  assert.equal(fine.verdict, 'pass');
  assert.equal(fine.latencyLimitMs !== undefined && fine.latencyLimitMs > 90, true);
  // Not during the warm-up, nor on fewer than minRequests responses after it.
  assert.equal(judge(win(counts(1000, 0, 201), counts(1000, 0, 1), false), settings, false).verdict, 'pending');
  assert.match(judge(win(counts(1000, 0, 201), counts(1000, 0, 1), false), settings, false).reason, /p99 249 ms vs 1\.0 ms, latency not judged \(no canary response after the warm-up\)$/);
  assert.equal(judge(win(counts(20, 0, 201), counts(1000, 0, 1)), settings, false).verdict, 'pending');
  // A few slow responses (0.5%) are within p99.
  const tail = judge(win(combine(counts(995, 0, 1), counts(5, 0, 500)), counts(2000, 0, 1)), settings, true);
  assert.equal(tail.verdict, 'pass');
});

test('a canary whose latency could not be judged (fewer than minRequests responses after the warm-up) is inconclusive, not passed (regression: a slow canary on keep-alive clients passed)', () => {
  // 179 responses in all, 90 of them after the warm-up, each 200 ms: too few to judge the latency.
  const w: Window = { canary: counts(179, 0, 201), baseline: counts(8000, 0, 1), warm: { canary: counts(90, 0, 201), baseline: counts(4000, 0, 1) } };
  const j = judge(w, settings, true);
  assert.equal(j.verdict, 'inconclusive');
  assert.match(j.reason, /^only 90 canary responses after the warm-up, fewer than minRequests 100: latency not judged/);
  // With minRequests 0, 90 are enough to judge (and fail) it; a canary that served nothing still passes, as documented.
  assert.equal(judge(w, { ...settings, minRequests: 0 }, true).verdict, 'fail');
  assert.equal(judge(win(counts(0), counts(1000)), { ...settings, minRequests: 0 }, true).verdict, 'pass');
});

test('a clean canary with enough responses passes at the end of duration, and not before', () => {
  assert.equal(judge(win(counts(500), counts(1000)), settings, false).verdict, 'pending');
  const j = judge(win(counts(500), counts(1000)), settings, true);
  assert.equal(j.verdict, 'pass');
  assert.match(j.reason, /^5xx 0\.00% of 500 vs 0\.00% of 1000 serving; p99 1\.0 ms vs 1\.0 ms \(limit 25 ms\)$/);
});

test('a serving generation that answered nothing after the warm-up (a lent connection carried all of a pool\'s requests): latency is judged against its p99 over the whole window, not passed unjudged (regression: a +200 ms canary was promoted)', () => {
  // The pool's only busy connection went to the canary before the warm-up ended.
  const slow: Window = { canary: counts(120, 0, 201), baseline: counts(19_000, 0, 0.2), warm: { canary: counts(100, 0, 201), baseline: counts(0) } };
  const early = judge(slow, settings, false);
  assert.equal(early.verdict, 'fail');
  assert.equal(early.latencyLimitMs, LATENCY_FLOOR_MS);
  assert.match(early.reason, /^p99 \d+ ms vs 0\.\d ms on the serving generation \(over the whole window: it answered nothing after the warm-up\): /);
  // A canary as fast as the serving generation passes, the basis said.
  const good = judge({ canary: counts(5000, 0, 0.2), baseline: counts(19_000, 0, 0.2), warm: { canary: counts(4000, 0, 0.2), baseline: counts(0) } }, settings, true);
  assert.equal(good.verdict, 'pass');
  assert.equal(good.latencyLimitMs, LATENCY_FLOOR_MS);
  assert.ok(good.baseline.p99Ms !== undefined, 'the serving p99 shown is the whole window\'s, not "-"');
  assert.match(good.reason, /\(limit 25 ms\) \(over the whole window: it answered nothing after the warm-up\)$/);
  // No serving figures at all (workers that do not report traffic): judged on errors alone, as before.
  assert.equal(judge({ canary: counts(1000), baseline: counts(0), warm: { canary: counts(800), baseline: counts(0) } }, settings, true).verdict, 'pass');
});
