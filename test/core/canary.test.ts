/**
 * The canary strategy on the fake host and its clock: workers report traffic every second
 * as the in-app library does, and the test decides what each generation serves. Pass
 * (then all, then rolling), fail on errors, fail on latency, inconclusive, a canary crash,
 * a stop during the canary, a failure of the rest after a pass; no sleeps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor } from '../../src/core/supervisor.js';
import type { GenerationSpec } from '../../src/core/spec.js';
import type { CanaryConfig } from '../../src/config/types.js';
import type { MasterEvent, ReloadOutcome } from '../../src/core/types.js';
import { FakeHost, fakeSpec, settle, until, wellBehaved, type Behaviour } from './fake-host.js';
import { reports, type Load } from './fake-traffic.js';

const CANARY: CanaryConfig = { workers: 1, duration: 5000, warmup: 1000, minRequests: 100, maxErrorRate: 0.01, maxLatencyRatio: 2, then: 'all', connections: 'auto' };

function setup(over: Partial<GenerationSpec> = {}, canary: Partial<CanaryConfig> = {}) {
  const host = new FakeHost();
  const spec = fakeSpec({ strategy: 'canary', canary: { ...CANARY, ...canary }, ...over });
  const sup = new Supervisor({ stayReady: 0, host, spec: () => spec, version: 'test', listeners: () => [] });
  const events: MasterEvent[] = [];
  sup.on('event', (e: MasterEvent) => events.push(e));
  /** What each generation serves (per worker, per second); generation 1 serves 200/s clean at 1 ms. */
  const loads = new Map<number, Load>([[1, { perSecond: 200 }]]);
  let extra: (gen: number, slot: number) => Behaviour | undefined = () => undefined;
  host.behave = (gen, slot) => extra(gen, slot) ?? ((p) => {
    wellBehaved(p);
    reports(host, p, loads.get(gen) ?? { perSecond: 100 });
  });
  const phases = (gen: number): string[] => events.flatMap((e) => (e.type === 'reload-phase' && e.generation === gen ? [e.phase] : []));
  const spawned = (gen: number): number[] => events.flatMap((e) => (e.type === 'worker-spawn' && e.generation === gen ? [e.slot] : []));
  return { host, sup, events, loads, phases, spawned, setExtra: (fn: typeof extra) => (extra = fn) };
}

test('canary passes: one new worker beside the serving generation for `duration`, then the rest goes live the `all` way', async () => {
  const { sup, host, events, phases, spawned } = setup();
  await sup.start();
  const pending = sup.reload('canary');
  await host.advance(4900);
  // Still judging: one canary worker beside both old ones, nothing else started.
  assert.deepEqual(spawned(2), [0]);
  assert.equal(host.alive(1).length, 2);
  assert.equal(sup.status().reload?.phase, 'canary');
  const outcome = await until(host, pending);
  assert.equal(outcome.ok, true, JSON.stringify(outcome.error));
  assert.equal(outcome.generation, 2);
  assert.deepEqual(phases(2), ['spawning', 'canary', 'spawning', 'ready', 'switched', 'draining', 'done']);
  assert.deepEqual(spawned(2), [0, 1]);
  assert.equal(outcome.canary?.verdict, 'pass');
  assert.equal(outcome.canary?.elapsedMs, 5000);
  assert.equal(outcome.canary?.canary.requests, 500);
  assert.equal(outcome.canary?.baseline.requests, 2000);
  const progress = events.filter((e) => e.type === 'canary-progress');
  assert.equal(progress.length, 4); // one look per report until duration
  assert.equal(host.alive(1).length, 0);
});

test('canary fails on errors: 10% 5xx is rejected at an early look; the canary drains out gracefully; the old generation is never touched', async () => {
  const { sup, host, loads, phases } = setup();
  await sup.start();
  loads.set(2, { perSecond: 100, errorRate: 0.1 });
  const old = host.alive(1);
  const outcome = await until(host, sup.reload('bad build'));
  assert.equal(outcome.ok, false);
  assert.equal(outcome.error?.code, 'ERR_CANARY_FAILED');
  assert.match(outcome.error?.message ?? '', /^canary of generation 2 failed: 5xx 10\.0% of 100 canary responses/);
  assert.equal(outcome.generation, 1);
  // Decided at the first look, long before duration.
  assert.equal(outcome.canary?.verdict, 'fail');
  assert.equal(outcome.canary?.elapsedMs, 1000);
  assert.equal(outcome.canary?.canary.errors, 10);
  assert.equal(outcome.canary?.baseline.requests, 400);
  assert.deepEqual(phases(2), ['spawning', 'canary', 'draining', 'failed']);
  const canary = host.procs.find((p) => p.generation === 2);
  assert.deepEqual(canary?.signals, ['SIGTERM']);
  assert.equal(canary?.killed, false);
  for (const p of old) assert.deepEqual(p.signals, []);
  assert.equal(host.alive(1).length, 2);
  assert.equal(sup.status().generation, 1);
  assert.equal(sup.status().lastReload?.canary?.verdict, 'fail');
});

test('a serving generation left with almost no traffic (the canary took a browser\'s or pool\'s kept connection): a 10%-500 canary fails at the first look on maxErrorRate alone, a clean one passes (regression h25 F3: it passed)', async () => {
  const bad = setup();
  bad.loads.set(1, { perSecond: 2 });
  await bad.sup.start();
  bad.loads.set(2, { perSecond: 50, errorRate: 0.1 });
  const outcome = await until(bad.host, bad.sup.reload('bad build'));
  assert.equal(outcome.error?.code, 'ERR_CANARY_FAILED');
  assert.equal(outcome.canary?.elapsedMs, 1000);
  assert.equal(outcome.canary?.baseline.requests, 4);
  assert.match(outcome.error?.message ?? '', /^canary of generation 2 failed: 5xx 10\.0% of 50 canary responses \(above [\d.]+% at 99\.9% confidence\): over maxErrorRate 1\.00%, judged on it alone: the serving generation answered too few to compare with \(0\.00% of 4: /);
  assert.equal(bad.host.alive(1).length, 2);

  const good = setup();
  good.loads.set(1, { perSecond: 2 });
  await good.sup.start();
  good.loads.set(2, { perSecond: 200, errorRate: 0.005 });
  const passed = await until(good.host, good.sup.reload('good build'));
  assert.equal(passed.ok, true, JSON.stringify(passed.error));
  assert.equal(passed.canary?.verdict, 'pass');
  assert.equal(passed.canary?.baseline.requests, 20);
});

test('canary fails on latency: 200 ms slower than the serving generation is rejected by the p99 rule', async () => {
  const { sup, host, loads } = setup();
  await sup.start();
  loads.set(2, { perSecond: 100, ms: 201 });
  const outcome = await until(host, sup.reload('slow build'));
  assert.equal(outcome.error?.code, 'ERR_CANARY_FAILED');
  assert.match(outcome.error?.message ?? '', /p99 \d+ ms vs 1\.0 ms on the serving generation/);
  assert.equal(outcome.canary?.latencyLimitMs, 25);
  assert.equal(outcome.canary?.elapsedMs, 2000); // the first look after the 1 s warm-up with 100 responses
  assert.equal(host.alive(2).length, 0);
  assert.equal(host.alive(1).length, 2);
});

test('a trickle below minRequests is inconclusive at the end of duration: ERR_CANARY_INCONCLUSIVE, the canary retired', async () => {
  const { sup, host, loads } = setup();
  await sup.start();
  loads.set(2, { perSecond: 10 });
  const outcome = await until(host, sup.reload('quiet'));
  assert.equal(outcome.error?.code, 'ERR_CANARY_INCONCLUSIVE');
  assert.match(outcome.error?.message ?? '', /only 50 canary responses in 5 s, fewer than minRequests 100/);
  // Workers that say no hello (other languages): why nothing moved, and what helps.
  assert.match(outcome.error?.message ?? '', /no kept-alive connection could move to it: the serving workers cannot hand connections over \(none said `moves` in a hello/);
  assert.equal(outcome.canary?.verdict, 'inconclusive');
  assert.equal(outcome.canary?.elapsedMs, 5000);
  assert.equal(host.alive(2).length, 0);
  assert.equal(sup.status().generation, 1);
});

test('a canary whose workers send no `stats` (no in-app library, no stats lines) is inconclusive for that reason, without the advice on connections and new clients (regression: report h12 N4)', async () => {
  for (const servingSilent of [false, true]) {
    const { sup, host, loads } = setup();
    if (servingSilent) loads.set(1, { perSecond: 200, silent: true });
    await sup.start();
    // It answers 100 requests a second, and says nothing of them.
    loads.set(2, { perSecond: 100, silent: true });
    const outcome = await until(host, sup.reload('raw workers'));
    const message = outcome.error?.message ?? '';
    assert.equal(outcome.error?.code, 'ERR_CANARY_INCONCLUSIVE', message);
    assert.equal(message, 'canary of generation 2 was inconclusive: the canary workers reported no traffic in 5 s (they sent no `stats` message' +
      `${servingSilent ? ', nor did the serving workers' : ''}), so the canary cannot be judged, whatever it served; more traffic or a longer \`canary.duration\` does not change that. ` +
      'What helps: the in-app library in Node workers (it reports every second), the `stats` lines of the worker contract in other programs ' +
      '(one JSON line a second on the IPC channel: README, "The worker contract", and docs/ARCHITECTURE.md, "Traffic figures"), ' +
      'or `canary.minRequests: 0` (a canary that did not fail then goes live unjudged)');
    assert.doesNotMatch(message, /kept-alive|open new connections|only 0 canary responses/);
    assert.equal(outcome.canary?.verdict, 'inconclusive');
    assert.equal(host.alive(2).length, 0);
    assert.equal(sup.status().generation, 1);
  }
});

test('a canary worker that crashes fails the canary with its last output; the old generation keeps serving', async () => {
  const { sup, host, setExtra } = setup();
  await sup.start();
  let canary: import('./fake-host.js').FakeProcess | undefined;
  setExtra((gen) => (gen === 2 ? (p) => { canary = p; wellBehaved(p); reports(host, p, { perSecond: 100 }); } : undefined));
  const pending = sup.reload('crashy');
  await host.advance(2500);
  canary?.print('TypeError: boom');
  canary?.exit(1);
  const outcome = await until(host, pending);
  assert.equal(outcome.error?.code, 'ERR_CANARY_FAILED');
  assert.match(outcome.error?.message ?? '', /worker 2\.0 \(pid \d+\) exited with code 1 after it was ready/);
  assert.deepEqual(outcome.error?.output, ['TypeError: boom']);
  assert.equal(outcome.canary?.verdict, 'fail');
  assert.equal(outcome.canary?.canary.requests, 200);
  assert.equal(host.alive(1).length, 2);
  assert.equal(sup.status().state, 'running');
});

test('stop during the canary: the canary drains (not killed), the reload ends with ERR_STOPPING, the master stops', async () => {
  const { sup, host } = setup();
  await sup.start();
  const pending = sup.reload('canary');
  await host.advance(1500);
  const stopped = sup.stop();
  const outcome = await until(host, pending);
  await stopped;
  assert.equal(outcome.error?.code, 'ERR_STOPPING');
  assert.equal(sup.state, 'stopped');
  assert.equal(host.alive().length, 0);
  for (const p of host.procs) {
    assert.deepEqual(p.signals, ['SIGTERM'], `worker ${p.generation}.${p.slot}`);
    assert.equal(p.killed, false);
  }
});

test('canary then rolling: after a pass, the old worker of the canary slot goes, then one slot at a time', async () => {
  const { sup, host, events } = setup({ workers: 3 }, { then: 'rolling' });
  await sup.start();
  const outcome = await until(host, sup.reload('roll'));
  assert.equal(outcome.ok, true, JSON.stringify(outcome.error));
  const order = events.flatMap((e) => (e.type === 'worker-spawn' && e.generation === 2 ? [`spawn ${e.slot}`] : e.type === 'worker-exit' && e.generation === 1 ? [`exit ${e.slot}`] : []));
  assert.deepEqual(order, ['spawn 0', 'exit 0', 'spawn 1', 'exit 1', 'spawn 2', 'exit 2']);
  assert.equal(host.alive(2).length, 3);
});

test('a one-off canary reload (reload --canary) on a master configured for "all"', async () => {
  const { sup, host, phases } = setup({ strategy: 'all' });
  await sup.start();
  const plain = await sup.reload('plain');
  assert.deepEqual(phases(2), ['spawning', 'ready', 'switched', 'draining', 'done']);
  assert.equal(plain.canary, undefined);
  const outcome = await until(host, sup.reload('canary', { strategy: 'canary' }));
  assert.equal(outcome.ok, true);
  assert.deepEqual(phases(3), ['spawning', 'canary', 'spawning', 'ready', 'switched', 'draining', 'done']);
  assert.equal(outcome.canary?.verdict, 'pass');
});

test('after a pass, a rest worker that fails at boot: the canary drains back out and the old generation keeps serving', async () => {
  const { sup, host, setExtra } = setup();
  await sup.start();
  setExtra((gen, slot) => (gen === 2 && slot === 1 ? (p) => queueMicrotask(() => p.exit(1)) : undefined));
  const outcome = await until(host, sup.reload('half bad'));
  assert.equal(outcome.error?.code, 'ERR_WORKER_EXITED');
  assert.equal(outcome.canary?.verdict, 'pass');
  const canary = host.procs.find((p) => p.generation === 2 && p.slot === 0);
  assert.deepEqual(canary?.signals, ['SIGTERM']);
  assert.equal(host.alive(1).length, 2);
  await settle();
  assert.equal(sup.status().generation, 1);
});

test('status shows traffic per worker and per generation, the canary beside the serving one', async () => {
  const { sup, host } = setup();
  await sup.start();
  const pending = sup.reload('canary');
  await host.advance(3000);
  const st = sup.status();
  const gens = st.traffic?.generations ?? [];
  assert.deepEqual(gens.map((g) => [g.generation, g.serving, g.workers]), [[1, true, 2], [2, false, 1]]);
  assert.equal(gens[0]?.figures.rps, 400);
  assert.equal(gens[1]?.figures.rps, 100);
  assert.equal(gens[1]?.figures.total['2xx'], 300);
  const w = st.workers.find((x) => x.generation === 2);
  assert.equal(w?.traffic?.requests, 300);
  assert.deepEqual(st.traffic?.releases.map((r) => r.release).sort(), ['gen-1', 'gen-2']);
  await until(host, pending);
});

test('one worker, one canary: the canary is the whole new generation; a pass switches to it without spawning more', async () => {
  const { sup, host, phases, spawned } = setup({ workers: 1 });
  await sup.start();
  const outcome = await until(host, sup.reload('small'));
  assert.equal(outcome.ok, true, JSON.stringify(outcome.error));
  assert.deepEqual(phases(2), ['spawning', 'canary', 'ready', 'switched', 'draining', 'done']);
  assert.deepEqual(spawned(2), [0]);
  // 1 canary beside 1 serving worker: both served, over the same window.
  assert.equal(outcome.canary?.canary.requests, 500);
  assert.equal(outcome.canary?.baseline.requests, 1000);
});
