/**
 * A reload is not done before every new worker has been ready for its stayReady (phase
 * `settling`), however fast the old generation drained: a new worker that exits within it
 * fails the reload and is rolled back to the old version (report h21 F1: the old generation
 * drained in 9 ms, the reload said done, and the new workers, which exited 300 ms after
 * their READY, crash-looped until nothing served). On the fake host, in milliseconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor } from '../../src/core/supervisor.js';
import { DEFAULT_STAY_READY_MS } from '../../src/config/defaults.js';
import type { GenerationSpec } from '../../src/core/spec.js';
import type { MasterEvent, ReloadOutcome } from '../../src/core/types.js';
import { FakeHost, fakeSpec, settle, until, wellBehaved, type Behaviour } from './fake-host.js';
import { reports } from './fake-traffic.js';

/** A supervisor with the default stay-ready time (the other unit tests give 0). */
function setup(spec: Partial<GenerationSpec> = {}) {
  const host = new FakeHost();
  let current = fakeSpec(spec);
  const sup = new Supervisor({ host, spec: () => current, version: 'test', listeners: () => [] });
  const events: MasterEvent[] = [];
  sup.on('event', (e: MasterEvent) => events.push(e));
  const phases = (gen: number): string[] => events.flatMap((e) => (e.type === 'reload-phase' && e.generation === gen ? [e.phase] : []));
  return { host, sup, events, phases, setSpec: (s: Partial<GenerationSpec>) => (current = fakeSpec({ ...spec, ...s })) };
}

/** What `pending` resolved to so far (undefined: not yet). */
function peek<T>(pending: Promise<T>): () => T | undefined {
  let done: T | undefined;
  void pending.then((o) => (done = o));
  return () => done;
}

/** Ready after `ms` of the fake clock; drains and exits 0 on its stop signal. */
const readyAfter = (host: FakeHost, ms: number): Behaviour => (p) => {
  host.setTimer(() => p.ready(), ms);
  p.on('signal', (s: NodeJS.Signals) => {
    if (s === 'SIGTERM') queueMicrotask(() => p.exit(0));
  });
};

test('h21 F1: a new version whose workers exit 300 ms after READY fails the reload and is rolled back, although the old generation drained at once', async () => {
  const { sup, host, events, phases, setSpec } = setup({ env: { VERSION: 'good' } });
  await sup.start();
  setSpec({ env: { VERSION: 'bad' } });
  const pending = sup.reload('bad build');
  const outcome = peek(pending);
  await settle();
  // Live, the old generation gone: the reload waits for its new workers to stay ready.
  assert.equal(host.alive(1).length, 0);
  assert.deepEqual(phases(2), ['spawning', 'ready', 'switched', 'draining', 'settling']);
  assert.equal(sup.status().state, 'reloading');
  assert.equal(sup.status().reload?.phase, 'settling');
  assert.equal(outcome(), undefined);
  await host.advance(300);
  for (const p of host.alive(2)) p.exit(0);
  const o = await until(host, pending);
  assert.equal(o.ok, false);
  assert.equal(o.error?.code, 'ERR_WORKER_EXITED');
  assert.match(o.error?.message ?? '', /worker 2\.0 \(pid \d+\) exited with code 0 300 ms after the new generation went live/);
  assert.deepEqual(o.rollback, { generation: 3, version: 1, ok: true });
  assert.equal(o.generation, 3);
  assert.deepEqual(phases(2), ['spawning', 'ready', 'switched', 'draining', 'settling', 'failed']);
  assert.ok(events.some((e) => e.type === 'reload-rollback' && e.generation === 2 && e.to === 3));
  assert.ok(host.alive(3).length === 2 && host.alive(3).every((p) => p.launch.env.VERSION === 'good'));
  assert.equal(host.alive(2).length, 0);
  assert.equal(sup.status().lastReload?.ok, false, 'status says the reload failed, not ok');
  assert.equal(sup.state, 'running');
});

test('stay ready: a good version\'s reload is done exactly the default stayReady (1 s) after its last READY when the old generation drained sooner', async () => {
  const { sup, host, phases } = setup();
  await sup.start();
  const pending = sup.reload('good build');
  const outcome = peek(pending);
  await settle();
  await host.advance(DEFAULT_STAY_READY_MS - 1);
  assert.equal(outcome(), undefined, 'not done a millisecond early');
  await host.advance(1);
  const o = outcome();
  assert.equal(o?.ok, true);
  assert.equal(o?.durationMs, DEFAULT_STAY_READY_MS);
  assert.deepEqual(phases(2), ['spawning', 'ready', 'switched', 'draining', 'settling', 'done']);
  assert.equal(host.alive(2).length, 2);
});

test('stay ready: an old generation that drains longer than stayReady adds no wait and no settling phase', async () => {
  const { sup, host, phases } = setup();
  await sup.start();
  // The old workers take 1.5 s to drain.
  for (const p of host.alive(1)) {
    p.removeAllListeners('signal');
    p.on('signal', () => host.setTimer(() => p.exit(0), 1_500));
  }
  const pending = sup.reload('good build');
  const outcome = peek(pending);
  await settle();
  await host.advance(1_500);
  assert.equal(outcome()?.ok, true);
  assert.equal(outcome()?.durationMs, 1_500);
  assert.deepEqual(phases(2), ['spawning', 'ready', 'switched', 'draining', 'done']);
});

test('stay ready: a new worker that dies once every new worker was ready for stayReady is a crash like any other (restarted, no rollback)', async () => {
  const { sup, host, events } = setup();
  await sup.start();
  const o = await until(host, sup.reload('good build'));
  assert.equal(o.ok, true);
  host.alive(2)[0]?.exit(5);
  await host.advance(1_000);
  assert.equal(host.alive(2).length, 2);
  assert.equal(events.some((e) => e.type === 'reload-rollback'), false);
});

test('stay ready: the reload waits for the worker that got ready last; one ready long before still fails it by dying before the reload is done (rolling)', async () => {
  const { sup, host, phases } = setup({ strategy: 'rolling', workers: 2 });
  await sup.start();
  host.behave = (gen) => (gen === 2 ? readyAfter(host, 400) : wellBehaved);
  const pending = sup.reload('roll');
  const outcome = peek(pending);
  await host.advance(800); // slot 0 ready at 400, slot 1 at 800
  assert.equal(host.alive(1).length, 0);
  assert.equal(sup.status().reload?.phase, 'settling');
  // Slot 0 has been ready 1.1 s, but slot 1 only 0.3 s: the reload is not done yet.
  await host.advance(700);
  assert.equal(outcome(), undefined);
  host.alive(2)[0]?.exit(1);
  const o = await until(host, pending);
  assert.equal(o.ok, false);
  assert.deepEqual(o.rollback, { generation: 3, version: 1, ok: true });
  assert.deepEqual(phases(2).slice(-2), ['settling', 'failed']);
  assert.equal(host.alive(2).length, 0);
});

test('stay ready: a reload asked for while one settles is queued behind it and runs once it is done; a scale meanwhile is refused as busy', async () => {
  const { sup, host, events } = setup();
  await sup.start();
  const first = sup.reload('first');
  await settle();
  assert.equal(sup.status().reload?.phase, 'settling');
  const second = sup.reload('SIGHUP');
  const queued = events.find((e) => e.type === 'reload-queued');
  assert.deepEqual(queued && { behind: queued.behind, generation: queued.generation, merged: queued.merged }, { behind: 'reload', generation: 2, merged: false });
  const scaled = await sup.scale(3);
  assert.equal(scaled.ok, false);
  assert.equal(scaled.error?.code, 'ERR_SCALE_BUSY');
  const [a, b] = await until(host, Promise.all([first, second]) as Promise<[ReloadOutcome, ReloadOutcome]>);
  assert.equal(a.ok, true);
  assert.equal(a.generation, 2);
  assert.equal(b.ok, true);
  assert.equal(b.generation, 3);
  // The second began only once the first was done (its new workers stayed ready the second).
  const done2 = events.findIndex((e) => e.type === 'reload-done' && e.outcome.generation === 2);
  const start3 = events.findIndex((e) => e.type === 'reload-start' && e.generation === 3);
  assert.ok(done2 >= 0 && done2 < start3);
});

test('stay ready: a stop while the reload settles ends the wait; the reload went live (no rollback) and every worker drains once', async () => {
  const { sup, host, events } = setup();
  await sup.start();
  const pending = sup.reload('good build');
  await settle();
  assert.equal(sup.status().reload?.phase, 'settling');
  await sup.stop();
  const o = await pending;
  assert.equal(o.ok, true);
  assert.equal(events.some((e) => e.type === 'reload-rollback'), false);
  for (const p of host.procs) assert.ok(p.signals.length <= 1, `worker ${p.generation}.${p.slot} signalled ${p.signals.join(',')}`);
  assert.equal(host.alive().length, 0);
  assert.equal(sup.state, 'stopped');
});

test('stay ready: after a canary passes, the rest it brought live must stay ready too; one exiting 500 ms after READY rolls the reload back', async () => {
  const host = new FakeHost();
  const canary = { workers: 1, duration: 3000, warmup: 1000, minRequests: 100, maxErrorRate: 0.01, maxLatencyRatio: 2, then: 'all' as const, connections: 'auto' as const };
  const spec = fakeSpec({ strategy: 'canary', canary });
  const sup = new Supervisor({ host, spec: () => spec, version: 'test', listeners: () => [] });
  const events: MasterEvent[] = [];
  sup.on('event', (e: MasterEvent) => events.push(e));
  host.behave = (gen) => (p) => {
    wellBehaved(p);
    reports(host, p, { perSecond: gen === 1 ? 200 : 100 });
  };
  await sup.start();
  const pending = sup.reload('canary');
  const outcome = peek(pending);
  await host.advance(3000);
  // The canary passed, the rest went live, the old generation drained: settling.
  assert.ok(events.some((e) => e.type === 'canary-verdict' && e.verdict === 'pass'));
  assert.equal(host.alive(1).length, 0);
  assert.equal(sup.status().reload?.phase, 'settling');
  await host.advance(500);
  assert.equal(outcome(), undefined);
  host.alive(2).find((p) => p.slot === 1)?.exit(0);
  const o = await until(host, pending);
  assert.equal(o.ok, false);
  assert.match(o.error?.message ?? '', /worker 2\.1 .*exited with code 0 500 ms after the new generation went live/);
  assert.deepEqual(o.rollback, { generation: 3, version: 1, ok: true });
});

test('rolling: a new worker that dies while the last old worker drains, before the switch, fails the reload and is rolled back (regression: the reload said done and its slot stayed empty for good)', async () => {
  const { sup, host, events } = setup({ strategy: 'rolling', workers: 2 });
  await sup.start();
  // The last old worker takes 500 ms to drain; the new worker 2.0 dies meanwhile.
  const last = host.alive(1)[1]!;
  last.removeAllListeners('signal');
  last.on('signal', () => host.setTimer(() => last.exit(0), 500));
  const pending = sup.reload('roll');
  await host.advance(100);
  assert.equal(sup.status().generation, 1, 'not switched yet');
  host.alive(2)[0]?.exit(3);
  const o = await until(host, pending);
  assert.equal(o.ok, false);
  assert.match(o.error?.message ?? '', /^worker 2\.0 \(pid \d+\) exited with code 3 after it was ready, before the new generation went live/);
  assert.deepEqual(o.rollback, { generation: 3, version: 1, ok: true });
  assert.ok(events.some((e) => e.type === 'reload-rollback' && /before generation 2 went live/.test(e.text)));
  assert.deepEqual(sup.status().workers.map((w) => `${w.generation}.${w.slot}:${w.state}`), ['3.0:ready', '3.1:ready']);
});

test('stay ready: the reload uses the stayReady of the configuration it read (10 s): its settling event says so, and a worker exiting 3 s after READY is still rolled back', async () => {
  const { sup, host, events, phases, setSpec } = setup({ env: { VERSION: 'good' } });
  await sup.start();
  setSpec({ env: { VERSION: 'bad' }, stayReady: 10_000 });
  const pending = sup.reload('bad build');
  const outcome = peek(pending);
  await settle();
  const settling = events.find((e) => e.type === 'reload-phase' && e.generation === 2 && e.phase === 'settling');
  assert.deepEqual(settling, { type: 'reload-phase', generation: 2, phase: 'settling', settleMs: 10_000 });
  await host.advance(3_000);
  assert.equal(outcome(), undefined, 'still settling 3 s after READY');
  host.alive(2)[0]?.exit(1);
  const o = await until(host, pending);
  assert.equal(o.ok, false);
  assert.deepEqual(o.rollback, { generation: 3, version: 1, ok: true });
  assert.deepEqual(phases(2).slice(-2), ['settling', 'failed']);
});

test('stay ready: stayReady 0 turns the wait off: the reload is done once the old generation drained, and a death right after is a crash (restarted, no rollback)', async () => {
  const { sup, host, events, phases, setSpec } = setup();
  await sup.start();
  setSpec({ stayReady: 0 });
  const o = await until(host, sup.reload('no wait'));
  assert.equal(o.ok, true);
  assert.equal(o.durationMs, 0);
  assert.deepEqual(phases(2), ['spawning', 'ready', 'switched', 'draining', 'done']);
  host.alive(2)[0]?.exit(1);
  await host.advance(1_000);
  assert.equal(host.alive(2).length, 2);
  assert.equal(events.some((e) => e.type === 'reload-rollback'), false);
});
