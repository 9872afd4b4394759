/**
 * How traffic and canaries read in the CLI (pure functions): the traffic columns and the
 * per-generation table with each generation's role, and the canary lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatStatus } from '../../src/cli/format.js';
import { canaryLines, canaryProgress } from '../../src/cli/traffic.js';
import type { CanaryReport, StatusSnapshot, TrafficFigures, WorkerStatus } from '../../src/core/types.js';

const figures = (rps: number, errorRate: number | undefined, total: number): TrafficFigures => ({
  windowMs: 10_000, requests: rps * 10, rps, errors: 0, errorRate, p50Ms: 0.2, p99Ms: 21, total: { '2xx': total, '3xx': 0, '4xx': 3, '5xx': 1 },
});
const worker = (generation: number, slot: number, state: WorkerStatus['state'], traffic?: TrafficFigures): WorkerStatus => ({
  generation, slot, pid: 100 * generation + slot, state, startedAt: 0, readyAt: 0, restarts: 0, statusText: undefined, release: undefined,
  ...(traffic ? { traffic } : {}),
});

function snapshot(phase: 'canary' | 'draining', canaryState: WorkerStatus['state']): StatusSnapshot {
  return {
    version: 't', pid: 1, startedAt: 0, uptimeMs: 5000, state: 'reloading', generation: 7, release: undefined, listeners: [],
    workers: [worker(7, 0, 'ready', figures(812.4, 0, 9000)), worker(7, 1, 'ready'), worker(8, 0, canaryState, figures(3.2, 0.0123, 40))],
    lastReload: undefined, reloadQueued: false, reload: { generation: 8, phase, reason: 'r', startedAt: 0 },
    traffic: {
      windowMs: 10_000, releases: [],
      generations: [
        { generation: 7, release: 'v1', serving: true, workers: 2, figures: figures(812.4, 0, 9000) },
        { generation: 8, release: 'v2', serving: false, workers: 1, figures: { ...figures(3.2, 0.0123, 40), connections: 9 } },
      ],
    },
  };
}

test('regression (issue 19): "warming up" only during the warm-up; a canary with no serving traffic after it says so', () => {
  const r: CanaryReport = {
    generation: 3, verdict: 'pending', reason: 'x', elapsedMs: 9000, durationMs: 10_000, warmupMs: 2000, latencyLimitMs: undefined,
    canary: { requests: 0, errors: 0, errorRate: undefined, p50Ms: undefined, p99Ms: undefined },
    baseline: { requests: 0, errors: 0, errorRate: undefined, p50Ms: undefined, p99Ms: undefined },
  };
  assert.equal(canaryProgress({ ...r, elapsedMs: 1000 }).endsWith('(warming up: latency judged from 2 s)'), true);
  for (const elapsedMs of [2000, 5000, 9000]) {
    const line = canaryProgress({ ...r, elapsedMs });
    assert.ok(!line.includes('warming up'), line);
    assert.ok(line.endsWith('(latency not judged yet: no serving-generation responses counted since the warm-up)'), line);
  }
});

test('status: traffic columns per worker ("-" before a report) and a table per generation with its role', () => {
  const text = formatStatus(snapshot('canary', 'ready'), 5000);
  assert.match(text, /7\.0 +700 +ready .* 812 +0\.00% +0\.2ms +21ms/);
  assert.match(text, /7\.1 +701 +ready .* - +- +- +-/);
  assert.match(text, /GENERATION +ROLE +RELEASE +WORKERS +CONNS +REQ\/S +5XX +P50 +P99 +TOTAL 2xx\/3xx\/4xx\/5xx/);
  // CONNS: what the workers last reported open (the canary's moved and new connections); "-" when they do not say.
  assert.match(text, /\n7 +serving +v1 +2 +- +812 +0\.00% +0\.2ms +21ms +9000\/0\/3\/1/);
  assert.match(text, /\n8 +canary +v2 +1 +9 +3\.2 +1\.23% +0\.2ms +21ms +40\/0\/3\/1/);
  // A rejected canary on its way out drains.
  assert.match(formatStatus(snapshot('draining', 'draining'), 5000), /\n8 +draining +v2 /);
});

test('canary lines: the running comparison, and the decision with both sides', () => {
  const r: CanaryReport = {
    generation: 8, verdict: 'fail', reason: 'x', elapsedMs: 1000, durationMs: 30_000, latencyLimitMs: undefined,
    canary: { requests: 327, errors: 32, errorRate: 32 / 327, p50Ms: 0.2, p99Ms: 24 },
    baseline: { requests: 830, errors: 0, errorRate: 0, p50Ms: 0.2, p99Ms: 23 },
  };
  assert.equal(canaryProgress({ ...r, verdict: 'pending', warmupMs: 2000 }), 'canary generation 8, 1 s of 30 s: 327 responses, 5xx 9.79% vs 0.00% serving, p99 24ms vs 23ms (warming up: latency judged from 2 s)');
  assert.equal(canaryProgress({ ...r, verdict: 'pending', latencyLimitMs: 46 }).endsWith('(limit 46ms)'), true);
  assert.deepEqual(canaryLines(r), [
    'canary failed after 1 s (of 30 s)',
    '  canary   generation 8: 327 responses, 5xx 9.79%, p50 0.2ms, p99 24ms',
    '  serving  830 responses, 5xx 0.00%, p50 0.2ms, p99 23ms',
  ]);
  // Issue 18: the connections the canary holds, and, after a rejection, where they went.
  const held = { ...r, connections: { share: 1 / 3, moved: 9, returned: 0, lost: 1, held: 11 } };
  assert.match(canaryProgress({ ...held, verdict: 'pending', warmupMs: 2000 }), /\(warming up: latency judged from 2 s\); holds 11 connections, 10 moved from the serving generation, 1 of them lost with a canary worker that died$/);
  const outcome = { ok: false, generation: 7, attempted: 8, reason: 'r', startedAt: 0, durationMs: 1, forced: 0, connections: { handedOver: 11, returned: 0, lost: 0, drained: 0, cut: 0 } };
  assert.deepEqual(canaryLines(held, outcome).slice(1), [
    '  canary   generation 8: 327 responses, 5xx 9.79%, p50 0.2ms, p99 24ms; holds 11 connections, 10 moved from the serving generation, 1 of them lost with a canary worker that died',
    '  serving  830 responses, 5xx 0.00%, p50 0.2ms, p99 23ms',
    '  back     11 connections handed back to generation 7, 0 more lost in the hand-back (1 lost before, with the canary worker that died)',
  ]);
  // Nothing lost before: the plain count.
  assert.equal(canaryLines({ ...held, connections: { ...held.connections, lost: 0 } }, outcome)[3], '  back     11 connections handed back to generation 7, 0 lost');
});
