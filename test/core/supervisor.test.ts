/**
 * The supervisor's state machine on a fake host: every phase and failure of a reload,
 * stops in each phase, the reload queue, crash restarts, in milliseconds and the same way
 * every run. What lives in the kernel (sockets, signals, fds) is tested end to end elsewhere.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HitlessError, isHitlessError } from '../../src/errors.js';
import { REJECTED_GRACE_MS } from '../../src/core/slots.js';
import { Supervisor } from '../../src/core/supervisor.js';
import { masterHealth } from '../../src/ops/health.js';
import { describeOutcome, formatStatus } from '../../src/cli/format.js';
import { wasRefused } from '../../src/core/outcomes.js';
import { createLogger, logEvent } from '../../src/core/logger.js';
import type { GenerationSpec } from '../../src/core/spec.js';
import type { MasterEvent } from '../../src/core/types.js';
import { diesLiveWhileOldDrains, FakeHost, fakeSpec, settle, until, wellBehaved, type Behaviour, type FakeProcess } from './fake-host.js';

const pick = (o: { ok: boolean; from: number; to: number }) => ({ ok: o.ok, from: o.from, to: o.to });

function setup(spec: Partial<GenerationSpec> = {}) {
  const host = new FakeHost();
  let current = fakeSpec(spec);
  const sup = new Supervisor({ stayReady: 0, host, spec: () => current, version: 'test', listeners: () => [] });
  const events: MasterEvent[] = [];
  sup.on('event', (e: MasterEvent) => events.push(e));
  const phases = (gen: number): string[] =>
    events.flatMap((e) => (e.type === 'reload-phase' && e.generation === gen ? [e.phase] : []));
  return { host, sup, events, phases, setSpec: (s: Partial<GenerationSpec>) => (current = fakeSpec({ ...spec, ...s })) };
}

/** Never ready; exits 1 at once. */
const crashesAtBoot: Behaviour = (p) => queueMicrotask(() => p.exit(1));
/** Never announces readiness; drains on SIGTERM. */
const neverReady: Behaviour = (p) => p.on('signal', () => queueMicrotask(() => p.exit(0)));

test('start: the first generation serves once every worker is ready', async () => {
  const { sup, host } = setup();
  await sup.start();
  assert.equal(sup.state, 'running');
  assert.equal(sup.status().generation, 1);
  assert.equal(host.alive(1).length, 2);
});

test('start: a worker that fails at boot fails the start with its reason and leaves no process', async () => {
  const { sup, host } = setup();
  host.behave = (_g, slot) => (slot === 1 ? crashesAtBoot : wellBehaved);
  await assert.rejects(sup.start(), (e: Error & { code?: string }) => e.code === 'ERR_START_FAILED' && /exited with code 1/.test(e.message));
  assert.equal(host.alive().length, 0);
});

test('start: when a worker fails, a sibling that already serves gets its stop signal and answers what it accepted; the start fails once it has exited, never SIGKILLed at once (regression, h19 F1)', async () => {
  const { sup, host } = setup();
  // Slot 0 serves and has a request in flight: on SIGTERM it answers it (1 s), then exits.
  const serving: Behaviour = (p) => {
    queueMicrotask(() => p.ready());
    p.on('signal', (s: NodeJS.Signals) => {
      if (s === 'SIGTERM') host.setTimer(() => p.exit(0), 1000);
    });
  };
  host.behave = (_g, slot) => (slot === 1 ? crashesAtBoot : serving);
  let settled = false;
  const started = sup.start().then(() => undefined, (e: Error & { code?: string }) => e).finally(() => (settled = true));
  await settle();
  assert.equal(settled, false, 'the start waits for the serving sibling to finish');
  const [sibling] = host.alive();
  assert.deepEqual(sibling?.signals, ['SIGTERM']);
  await host.advance(1000);
  const failure = await started;
  assert.equal(failure?.code, 'ERR_START_FAILED');
  assert.deepEqual(sibling?.signals, ['SIGTERM'], 'no SIGKILL');
  assert.equal(host.alive().length, 0);
});

test('all: phases spawning → ready → switched → draining → done, old generation stopped only after the switch', async () => {
  const { sup, host, phases, events } = setup();
  await sup.start();
  const old = host.alive(1);
  const outcome = await sup.reload('test');
  assert.equal(outcome.ok, true);
  assert.equal(outcome.generation, 2);
  assert.deepEqual(phases(2), ['spawning', 'ready', 'switched', 'draining', 'done']);
  for (const p of old) assert.deepEqual(p.signals, ['SIGTERM']);
  assert.equal(host.alive(1).length, 0);
  assert.equal(host.alive(2).length, 2);
  // The old generation was signalled after the new one was ready.
  const firstStop = events.findIndex((e) => e.type === 'reload-draining');
  const lastReady = events.findLastIndex((e) => e.type === 'worker-ready' && e.generation === 2);
  assert.ok(lastReady < firstStop);
  assert.equal(sup.state, 'running');
});

test('status says reloading until the old generation has drained, not only until the switch', async () => {
  const { sup, host } = setup();
  await sup.start();
  for (const p of host.alive(1)) p.removeAllListeners('signal'); // old workers drain slowly
  const pending = sup.reload('test');
  await settle();
  assert.equal(sup.status().state, 'reloading');
  assert.equal(sup.status().reload?.phase, 'draining');
  assert.equal(sup.status().generation, 2);
  for (const p of host.alive(1)) p.exit(0);
  assert.equal((await pending).ok, true);
  assert.equal(sup.status().state, 'running');
  assert.equal(sup.status().reload, undefined);
});

test('all: a new worker that exits before READY fails the reload; the old generation is never signalled', async () => {
  const { sup, host, phases } = setup();
  await sup.start();
  host.behave = (gen, slot) => (gen === 2 && slot === 1 ? crashesAtBoot : wellBehaved);
  const outcome = await sup.reload('bad build');
  assert.equal(outcome.ok, false);
  assert.equal(outcome.error?.code, 'ERR_WORKER_EXITED');
  assert.equal(outcome.generation, 1);
  assert.equal(outcome.attempted, 2);
  assert.deepEqual(phases(2), ['spawning', 'failed']);
  for (const p of host.alive(1)) assert.deepEqual(p.signals, []);
  assert.equal(host.alive(2).length, 0);
  assert.equal(sup.status().generation, 1);
});

test('all: the ready deadline fails the reload (fake clock) and stops the new workers with their stop signal, not SIGKILL (regression: what they had accepted was cut)', async () => {
  const { sup, host } = setup({ readyTimeout: 500 });
  await sup.start();
  host.behave = (gen) => (gen === 2 ? neverReady : wellBehaved);
  const pending = sup.reload('slow');
  await host.advance(499);
  assert.equal(host.alive(2).length, 2);
  await host.advance(1);
  const outcome = await pending;
  assert.equal(outcome.error?.code, 'ERR_READY_TIMEOUT');
  assert.equal(host.alive(2).length, 0);
  for (const p of host.procs.filter((x) => x.generation === 2)) {
    assert.deepEqual(p.signals, ['SIGTERM']);
    assert.equal(p.killed, false);
  }
});

test('all: a rejected new worker that ignores its stop signal is SIGKILLed after the grace; the failure is reported at the deadline, and status and stop account for it meanwhile', async () => {
  const { sup, host, events } = setup({ readyTimeout: 500, drainTimeout: 30_000, workers: 1 });
  await sup.start();
  // Accepts on the shared socket (as every adopted worker does), never says READY, and its
  // loop is stuck: only SIGKILL ends it.
  host.behave = (gen) => (gen === 2 ? () => {} : wellBehaved);
  const pending = sup.reload('hung');
  let done = false;
  void pending.then(() => (done = true));
  await host.advance(500);
  assert.equal(done, true, 'the failure is not held back by the grace');
  assert.equal((await pending).error?.code, 'ERR_READY_TIMEOUT');
  const [hung] = host.alive(2);
  assert.deepEqual(hung?.signals, ['SIGTERM']);
  assert.deepEqual(sup.status().workers.map((w) => [w.generation, w.state]), [[1, 'ready'], [2, 'draining']]);
  await host.advance(REJECTED_GRACE_MS - 1);
  assert.equal(hung?.exited, false);
  await host.advance(1);
  assert.equal(hung?.killed, true);
  assert.deepEqual(sup.status().workers.map((w) => w.generation), [1]);
  const exit = events.find((e) => e.type === 'worker-exit' && e.generation === 2);
  assert.deepEqual(exit && exit.type === 'worker-exit' && [exit.signal, exit.planned], ['SIGKILL', true]);

  // A stop during the grace waits for it, and leaves nothing behind.
  host.behave = (gen) => (gen === 3 ? () => {} : wellBehaved);
  const again = sup.reload('hung again');
  await host.advance(500);
  assert.equal((await again).ok, false);
  const stopping = sup.stop();
  let stopped = false;
  void stopping.then(() => (stopped = true));
  await host.advance(REJECTED_GRACE_MS - 1);
  assert.equal(stopped, false);
  await host.advance(1);
  await stopping;
  assert.equal(host.alive().length, 0);
});

test('all: a new worker that dies after READY but before the switch fails the reload', async () => {
  const { sup, host } = setup();
  await sup.start();
  let first: FakeProcess | undefined;
  host.behave = (gen, slot) => {
    if (gen !== 2) return wellBehaved;
    if (slot === 0) return (p) => { first = p; queueMicrotask(() => p.ready()); };
    return neverReady; // slot 1 is still starting while slot 0 dies
  };
  const pending = sup.reload('flaky');
  await settle();
  first?.exit(1);
  const outcome = await pending;
  assert.equal(outcome.ok, false);
  assert.equal(outcome.error?.code, 'ERR_WORKER_EXITED');
  assert.match(outcome.error?.message ?? '', /after it was ready/);
  assert.equal(host.alive(2).length, 0);
  assert.equal(host.alive(1).length, 2);
});

test('all: a new worker that dies after the switch, while the old generation still drains, fails the reload and rolls back to the old version', async () => {
  const { sup, host, phases, events, setSpec } = setup({ env: { VERSION: 'good' } });
  await sup.start();
  for (const p of host.alive(1)) p.removeAllListeners('signal'); // the old workers drain slowly
  setSpec({ env: { VERSION: 'bad' } });
  const pending = sup.reload('bad build');
  await settle();
  assert.equal(sup.status().generation, 2);
  assert.deepEqual(phases(2), ['spawning', 'ready', 'switched', 'draining']);
  // Gone live, a worker of the new version crashes while the old generation drains.
  host.alive(2)[0]?.exit(5);
  await settle();
  for (const p of host.alive(1)) p.exit(0);
  const outcome = await pending;
  assert.equal(outcome.ok, false);
  assert.equal(outcome.error?.code, 'ERR_WORKER_EXITED');
  assert.match(outcome.error?.message ?? '', /worker 2\.0 \(pid \d+\) exited with code 5 0 ms after the new generation went live/);
  assert.deepEqual(outcome.rollback, { generation: 3, version: 1, ok: true });
  assert.equal(outcome.generation, 3);
  assert.equal(outcome.attempted, 2);
  assert.deepEqual(phases(2), ['spawning', 'ready', 'switched', 'draining', 'failed']);
  assert.deepEqual(phases(3), ['spawning', 'ready', 'switched', 'draining', 'done']);
  // Generation 3 runs generation 1's version; nothing of generation 2 is left.
  assert.ok(host.procs.filter((p) => p.generation === 3).every((p) => p.launch.env.VERSION === 'good'));
  assert.equal(host.alive(2).length, 0);
  assert.equal(host.alive(3).length, 2);
  assert.equal(sup.status().generation, 3);
  assert.equal(sup.state, 'running');
  const said = events.find((e) => e.type === 'reload-rollback');
  assert.deepEqual(said && { ...said, text: undefined }, { type: 'reload-rollback', generation: 2, to: 3, version: 1, text: undefined });
  // One outcome for the request: the rollback is part of it, not a reload of its own.
  assert.equal(events.filter((e) => e.type === 'reload-done').length, 1);
});

test('all: a rollback runs the old version at the worker count it had, after a hitless scale', async () => {
  const { sup, host, setSpec } = setup({ env: { VERSION: 'good' } });
  await sup.start();
  assert.equal((await sup.scale(3)).ok, true);
  for (const p of host.alive(1)) p.removeAllListeners('signal');
  setSpec({ env: { VERSION: 'bad' } });
  const outcome = await diesLiveWhileOldDrains(host, sup.reload('bad build'), 0);
  assert.deepEqual(outcome.rollback, { generation: 3, version: 1, ok: true });
  assert.equal(host.alive(3).length, 3);
});

test('all: a rollback that fails too leaves the new generation serving, its crashed slot restarted; the outcome says both', async () => {
  const { sup, host, setSpec } = setup({ env: { VERSION: 'good' } });
  await sup.start();
  for (const p of host.alive(1)) p.removeAllListeners('signal');
  setSpec({ env: { VERSION: 'bad' } });
  host.behave = (gen) => (gen === 3 ? crashesAtBoot : wellBehaved); // the old version no longer starts
  const outcome = await diesLiveWhileOldDrains(host, sup.reload('bad build'), 1);
  assert.equal(outcome.ok, false);
  const { error: why, ...rollback } = outcome.rollback ?? { error: undefined };
  assert.deepEqual(rollback, { generation: 3, version: 1, ok: false });
  assert.equal(why?.code, 'ERR_WORKER_EXITED', 'why the old version did not start');
  assert.match(why?.message ?? '', /worker 3\.\d .*exited with code 1 before it was ready/);
  assert.equal(outcome.generation, 2);
  // A reload that ran two generations is failed, never "refused" (regression, h12 N1).
  assert.equal(wasRefused(outcome), false);
  assert.match(describeOutcome(outcome), /^failed: generation 2 did not go live \(ERR_WORKER_EXITED: .*\); the rollback to generation 1's version failed too \(ERR_WORKER_EXITED: worker 3\.\d .*\): generation 2 serves/);
  assert.equal(host.alive(3).length, 0);
  await host.advance(1_000); // the crashed slot's backoff
  assert.equal(host.alive(2).length, 2);
  assert.equal(sup.status().generation, 2);
});

test('all: while a rollback replaces the failed generation, its crashed slot is not restarted as long as another of its workers serves (regression, h12 N5)', async () => {
  const { sup, host, setSpec, events } = setup({ env: { VERSION: 'good' } });
  await sup.start();
  for (const p of host.alive(1)) p.removeAllListeners('signal');
  setSpec({ env: { VERSION: 'bad' } });
  let release: () => void = () => {};
  const held = new Promise<void>((r) => (release = r));
  // The rollback's workers get ready only when the test says.
  host.behave = (gen) => (gen === 3 ? (p) => {
    p.on('signal', () => queueMicrotask(() => p.exit(0)));
    void held.then(() => p.ready());
  } : wellBehaved);
  const pending = sup.reload('bad build');
  await settle();
  host.alive(2)[1]?.exit(5);
  await settle();
  await host.advance(500); // the crashed slot's backoff (100 ms) passes while the rollback boots (readyTimeout 1 s)
  assert.equal(sup.status().reload?.generation, 3, 'the rollback is still booting');
  const spawned = (gen: number, slot: number) => events.filter((e) => e.type === 'worker-spawn' && e.generation === gen && e.slot === slot).length;
  assert.equal(spawned(2, 1), 1, 'not restarted: worker 2.0 still serves');
  release();
  await settle();
  for (const p of host.alive(1)) p.exit(0);
  const outcome = await pending;
  assert.deepEqual(outcome.rollback, { generation: 3, version: 1, ok: true });
  assert.equal(spawned(2, 1), 1);
  assert.equal(host.alive(2).length, 0);
});

test('all: a new worker that dies after the reload is done is a crash like any other: restarted, no rollback', async () => {
  const { sup, host, events } = setup();
  await sup.start();
  const outcome = await sup.reload('good build');
  assert.equal(outcome.ok, true);
  host.alive(2)[0]?.exit(5);
  await host.advance(1_000);
  assert.equal(host.alive(2).length, 2);
  assert.equal(events.some((e) => e.type === 'reload-rollback'), false);
});

test('a crashed worker\'s leftover children get its stop signal; a worker stopped by the master does not need it', async () => {
  const { sup, host } = setup();
  await sup.start();
  const old = host.alive(1);
  assert.equal((await sup.reload('test')).ok, true);
  for (const p of old) assert.deepEqual([p.signals, p.leftoverSignals], [['SIGTERM'], []]);
  const victim = host.alive(2)[0];
  victim?.exit(null, 'SIGKILL');
  assert.deepEqual(victim?.leftoverSignals, ['SIGTERM']);
});

test('rolling: one slot at a time, at most N+1 workers alive, each old worker retired once its replacement is ready', async () => {
  const { sup, host, events } = setup({ strategy: 'rolling', workers: 3 });
  await sup.start();
  let most = 0;
  sup.on('event', () => (most = Math.max(most, host.alive().length)));
  const outcome = await sup.reload('roll');
  assert.equal(outcome.ok, true);
  assert.ok(most <= 4, `at most N+1 alive, saw ${most}`);
  assert.equal(host.alive(1).length, 0);
  assert.equal(host.alive(2).length, 3);
  const order = events.flatMap((e) => (e.type === 'worker-spawn' && e.generation === 2 ? [`spawn ${e.slot}`] : e.type === 'worker-exit' && e.generation === 1 ? [`exit ${e.slot}`] : []));
  assert.deepEqual(order, ['spawn 0', 'exit 0', 'spawn 1', 'exit 1', 'spawn 2', 'exit 2']);
});

test('rolling failure: slots already replaced get the old version back, then every new worker stops', async () => {
  const { sup, host } = setup({ strategy: 'rolling', workers: 3 });
  await sup.start();
  host.behave = (gen, slot) => (gen === 2 && slot === 1 ? crashesAtBoot : wellBehaved);
  const outcome = await sup.reload('half bad');
  assert.equal(outcome.ok, false);
  assert.equal(host.alive(2).length, 0);
  const st = sup.status();
  assert.deepEqual(st.workers.map((w) => `${w.generation}.${w.slot}:${w.state}`), ['1.0:ready', '1.1:ready', '1.2:ready']);
});

test('rolling failure while putting the old version back fails too: no worker of the rejected version survives (regression)', async () => {
  const { sup, host, events } = setup({ strategy: 'rolling', workers: 3 });
  await sup.start();
  // The new version's slot 1 fails; the old version cannot come back into slot 0 either.
  host.behave = (gen, slot) => {
    if (gen === 2 && slot === 1) return crashesAtBoot;
    if (gen === 1 && slot === 0) return crashesAtBoot;
    return wellBehaved;
  };
  const outcome = await sup.reload('half bad, unroll fails');
  assert.equal(outcome.ok, false);
  assert.equal(host.alive(2).length, 0, 'the rejected generation must not keep serving');
  assert.ok(sup.status().workers.every((w) => w.generation === 1));
  // The empty slot is refilled like a crashed one, with backoff.
  assert.ok(events.some((e) => e.type === 'worker-restart' && e.generation === 1 && e.slot === 0));
  host.behave = () => wellBehaved;
  await host.advance(100);
  assert.deepEqual(sup.status().workers.map((w) => `${w.generation}.${w.slot}:${w.state}`), ['1.0:ready', '1.1:ready', '1.2:ready']);
});

test('rolling failure: a put-back worker that never gets ready is stopped at its deadline (regression)', async () => {
  const { sup, host } = setup({ strategy: 'rolling', workers: 2, readyTimeout: 300 });
  await sup.start();
  host.behave = (gen, slot) => {
    if (gen === 2 && slot === 1) return crashesAtBoot;
    if (gen === 1 && slot === 0) return neverReady;
    return wellBehaved;
  };
  const pending = sup.reload('put-back hangs');
  await host.advance(300);
  const outcome = await pending;
  assert.equal(outcome.ok, false);
  const putBack = host.procs.filter((p) => p.generation === 1 && p.slot === 0).at(-1);
  assert.deepEqual(putBack?.signals, ['SIGTERM']);
  assert.equal(putBack?.exited, true);
  assert.equal(host.alive(2).length, 0);
});

test('rolling: a new worker that dies after READY while later slots start fails the reload and unrolls', async () => {
  const { sup, host } = setup({ strategy: 'rolling', workers: 2 });
  await sup.start();
  let slot0: FakeProcess | undefined;
  host.behave = (gen, slot) => {
    if (gen === 2 && slot === 0) return (p) => { slot0 = p; wellBehaved(p); };
    if (gen === 2 && slot === 1) return neverReady;
    return wellBehaved;
  };
  const pending = sup.reload('dies mid-roll');
  await settle();
  slot0?.exit(1);
  const outcome = await pending;
  assert.equal(outcome.ok, false);
  assert.equal(host.alive(2).length, 0);
  assert.equal(host.alive(1).length, 2);
});

for (const phase of ['spawning', 'draining'] as const) {
  test(`stop during the reload's ${phase} phase: the reload ends, every worker drains once, the master stops`, async () => {
    const { sup, host } = setup();
    await sup.start();
    if (phase === 'spawning') host.behave = (gen) => (gen === 2 ? neverReady : wellBehaved);
    else for (const p of host.alive(1)) p.removeAllListeners('signal');
    const pending = sup.reload('test');
    await settle();
    assert.equal(sup.status().reload?.phase, phase);
    const stopped = sup.stop();
    await settle();
    for (const p of host.alive()) if (p.signals.length === 0) p.exit(0);
    for (const p of host.alive()) p.exit(0);
    await stopped;
    const outcome = await pending;
    if (phase === 'spawning') assert.equal(outcome.error?.code, 'ERR_STOPPING');
    for (const p of host.procs) assert.ok(p.signals.length <= 1, `worker ${p.generation}.${p.slot} signalled ${p.signals.join(',')}`);
    assert.equal(host.alive().length, 0);
    assert.equal(sup.state, 'stopped');
  });
}

test('a graceful stop forced by a second call (a second SIGTERM) kills the workers and reports master-stop forced', async () => {
  const { sup, host, events } = setup();
  await sup.start();
  for (const p of host.alive(1)) p.removeAllListeners('signal'); // they ignore their stop signal
  const stopping = sup.stop();
  await settle();
  assert.equal(host.alive(1).length, 2, 'still draining');
  await sup.stop(true);
  await stopping;
  assert.equal(host.alive().length, 0);
  assert.deepEqual(events.filter((e) => e.type === 'master-stop'), [{ type: 'master-stop', reason: 'forced' }]);
});

test('a graceful stop that kills workers at drainTimeout says how many (master-stop forced), and the log warns (regression: it read as a clean stop)', async () => {
  const { sup, host, events } = setup();
  await sup.start();
  const [stubborn] = host.alive(1);
  stubborn?.removeAllListeners('signal'); // one ignores its stop signal
  const stopping = sup.stop();
  await settle();
  await host.advance(5_000);
  await stopping;
  assert.equal(stubborn?.killed, true);
  const said = events.filter((e) => e.type === 'master-stop');
  assert.deepEqual(said, [{ type: 'master-stop', reason: 'graceful', forced: 1 }]);
  const lines: string[] = [];
  logEvent(createLogger({ format: 'text', write: (l: string) => lines.push(l) }), said[0] as MasterEvent);
  assert.match(lines.join(''), /WARN.*1 worker still running at drainTimeout was killed \(SIGKILL\); requests in flight there were cut/);
  // The worker's own line says it too, as for any worker killed after it was asked to stop (a rejected worker's grace: h12 N7).
  const exit = events.find((e) => e.type === 'worker-exit' && e.pid === stubborn?.pid);
  logEvent(createLogger({ format: 'text', write: (l: string) => lines.push(l) }), exit as MasterEvent);
  assert.match(lines.at(-1) ?? '', /WARN worker killed \(SIGKILL\) after it was asked to stop: requests in flight there were cut .*signal=SIGKILL planned=true/);
});

test('a reload asked for while stopping is refused with ERR_STOPPING', async () => {
  const { sup } = setup();
  await sup.start();
  const stopping = sup.stop();
  const outcome = await sup.reload('late');
  assert.equal(outcome.error?.code, 'ERR_STOPPING');
  await stopping;
});

test('one reload at a time: a second request is queued, later ones join it (coalesced)', async () => {
  const { sup, host, events } = setup();
  await sup.start();
  host.behave = (gen) => (gen === 2 ? neverReady : wellBehaved);
  const first = sup.reload('a');
  await settle();
  const second = sup.reload('b');
  const third = sup.reload('c');
  assert.equal(sup.status().reloadQueued, true);
  host.behave = () => wellBehaved;
  for (const p of host.alive(2)) p.ready();
  const [o1, o2, o3] = await Promise.all([first, second, third]);
  assert.equal(o1.generation, 2);
  assert.equal(o2.generation, 3);
  assert.equal(o3.generation, 3);
  assert.equal(o3.coalesced, true);
  assert.equal(events.filter((e) => e.type === 'reload-start').length, 2);
});

test('crash restart: a slot waiting out its backoff shows in status as restarting, with when; health and the traffic counts leave it out (regression: it vanished from status)', async () => {
  const { sup, host } = setup({ workers: 2 });
  await sup.start();
  const [crashed] = host.alive(1);
  crashed?.exit(1);
  await settle();
  const rows = sup.status().workers;
  assert.deepEqual(rows.map((w) => `${w.slot} ${w.state}`), ['0 restarting', '1 ready']);
  assert.equal(rows[0]?.pid, undefined);
  assert.equal(rows[0]?.restartAt, host.now() + 100);
  assert.match(formatStatus(sup.status(), host.now()), /^1\.0 +- +restarting +- +0 .* restarts in 100 ms \(crashed\)$/m);
  assert.deepEqual(masterHealth(sup.status()).body, { ok: true, state: 'running', generation: 1, ready: 1, workers: 1 });
  await host.advance(100);
  assert.deepEqual(sup.status().workers.map((w) => `${w.slot} ${w.state}`), ['0 ready', '1 ready']);
});

test('h16 F7.4: the crash-loop warning says "more than 1 crash" for maxRestarts 1 (was "1 crashes")', async () => {
  const { sup, host, events } = setup({ workers: 2, restart: { backoffInitial: 100, backoffMax: 1000, maxRestarts: 1, window: 60_000 } });
  await sup.start();
  host.behave = () => crashesAtBoot;
  host.alive(1)[0]?.exit(1);
  await settle();
  const r = events.filter((e) => e.type === 'worker-restart').at(-1);
  assert.ok(r && r.type === 'worker-restart');
  await host.advance(r.delayMs);
  assert.equal(sup.status().workers.find((w) => w.slot === 0)?.state, 'failed');
  assert.match(sup.status().warnings?.[0] ?? '', /^worker 1\.0 failed in a crash loop \(more than 1 crash of a slot within 1 min; not restarted\); 1 of 2 serve/);
});

test('h16 F7.2: a first generation whose spec cannot be made (the workers\' folder missing) fails the start as ERR_START_FAILED with that reason', async () => {
  const sup = new Supervisor({ stayReady: 0, host: new FakeHost(), spec: () => { throw new HitlessError('ERR_COMMAND_NOT_FOUND', 'the workers\' folder /nope does not exist'); }, version: 'test', listeners: () => [] });
  await assert.rejects(sup.start(), (err: unknown) => isHitlessError(err, 'ERR_START_FAILED') && err.message === 'the first generation did not start: the workers\' folder /nope does not exist');
});

test('crash restart: backoff doubles per crash, and more than maxRestarts within the window marks the slot failed', async () => {
  const { sup, host, events } = setup({ workers: 1 });
  await sup.start();
  host.behave = () => crashesAtBoot;
  host.alive(1)[0]?.exit(1);
  await settle();
  const delays: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = events.filter((e) => e.type === 'worker-restart').at(-1);
    assert.ok(r && r.type === 'worker-restart');
    delays.push(r.delayMs);
    await host.advance(r.delayMs);
  }
  assert.deepEqual(delays, [100, 200, 400]);
  assert.ok(events.some((e) => e.type === 'slot-failed' && e.slot === 0));
  assert.equal(sup.status().workers[0]?.state, 'failed');
  // Nothing serves now: said once as a warning event, and in status until healed.
  const said = events.filter((e) => e.type === 'warning').map((e) => (e as { text: string }).text);
  assert.equal(said.length, 1);
  assert.match(said[0] ?? '', /^nothing serves: all 1 worker of generation 1 failed in a crash loop \(more than 3 crashes of a slot within 1 min; not restarted\), so connections wait unanswered .*; fix the app and run `hitless reload`/);
  assert.deepEqual(sup.status().warnings, said);
  // A reload heals the failed slot.
  host.behave = () => wellBehaved;
  assert.equal((await sup.reload('heal')).ok, true);
  assert.equal(sup.status().workers[0]?.state, 'ready');
  assert.equal(sup.status().warnings, undefined, 'healed: no warning left');
});

test('drain deadline: an old worker that ignores its stop signal is SIGKILLed at drainTimeout and counted as forced', async () => {
  const { sup, host } = setup({ drainTimeout: 2000 });
  await sup.start();
  for (const p of host.alive(1)) p.removeAllListeners('signal');
  const pending = sup.reload('stuck drain');
  await host.advance(1999);
  assert.equal(host.alive(1).length, 2);
  await host.advance(1);
  const outcome = await pending;
  assert.equal(outcome.forced, 2);
});

test('a reload can run a different spec than the generation it replaces (workers 2 → 3, new env)', async () => {
  const { sup, host, setSpec } = setup();
  await sup.start();
  setSpec({ workers: 3, env: { FEATURE: 'on' } });
  const outcome = await sup.reload('edited config');
  assert.equal(outcome.ok, true);
  assert.equal(host.alive(2).length, 3);
  assert.equal(host.alive(2)[0]?.launch.env.FEATURE, 'on');
  assert.equal(host.procs[0]?.launch.env.FEATURE, undefined);
});

test('scale: starts the missing slots, or drains the extra ones, without a reload', async () => {
  const { sup, host } = setup({ workers: 2 });
  await sup.start();
  assert.deepEqual(pick(await sup.scale(3)), { ok: true, from: 2, to: 3 });
  assert.equal(host.alive(1).length, 3);
  assert.deepEqual(pick(await sup.scale(1)), { ok: true, from: 3, to: 1 });
  assert.equal(host.alive(1).length, 1);
  assert.equal(sup.status().generation, 1);
  assert.equal(sup.current?.spec.workers, 1);
  assert.equal((await sup.scale(0)).error?.code, 'ERR_USAGE');
});

test('scale: a new worker that fails before READY fails the scale and is not restarted; the count stays', async () => {
  const { sup, host, events } = setup({ workers: 1 });
  await sup.start();
  host.behave = () => crashesAtBoot;
  const outcome = await sup.scale(2);
  assert.equal(outcome.ok, false);
  assert.equal(outcome.error?.code, 'ERR_WORKER_EXITED');
  assert.equal(sup.current?.size, 1);
  assert.equal(host.alive(1).length, 1);
  assert.ok(!events.some((e) => e.type === 'worker-restart'));
});

test('scale during a reload is refused (ERR_SCALE_BUSY); a reload asked for during a scale waits for it', async () => {
  const { sup, host } = setup({ workers: 1 });
  await sup.start();
  host.behave = (gen) => (gen === 2 ? neverReady : wellBehaved);
  const reloading = sup.reload('slow');
  await settle();
  assert.equal((await sup.scale(2)).error?.code, 'ERR_SCALE_BUSY');
  for (const p of host.alive(2)) p.ready();
  await reloading;
  host.behave = () => neverReady;
  const scaling = sup.scale(2);
  await settle();
  const queued = sup.reload('after the scale');
  assert.equal(sup.status().reloadQueued, true);
  host.behave = () => wellBehaved;
  for (const p of host.alive(2)) if (p.signals.length === 0) p.ready();
  assert.equal((await scaling).ok, true);
  assert.equal((await queued).ok, true);
});

test('a reload asked for while the first generation starts runs once it is up (regression: it stayed queued and every later reload hung behind it)', async () => {
  const { sup, host } = setup({ workers: 1 });
  host.behave = () => neverReady;
  const starting = sup.start();
  await settle();
  const early = sup.reload('SIGHUP during start');
  assert.equal(sup.status().reloadQueued, true);
  host.behave = () => wellBehaved;
  for (const p of host.alive(1)) p.ready();
  await starting;
  const outcome = await early;
  assert.equal(outcome.ok, true);
  assert.equal(outcome.generation, 2);
  assert.equal((await sup.reload('later')).generation, 3);
});

test('events have one writer: start reports master-start and master-ready; the reconfigure layer\'s facts go through the supervisor', async () => {
  const host = new FakeHost();
  const sup = new Supervisor({ stayReady: 0, host, spec: () => fakeSpec(), version: 'test', listeners: () => [], uptime: () => 1234 });
  const events: MasterEvent[] = [];
  sup.on('event', (e: MasterEvent) => events.push(e));
  await sup.start();
  assert.deepEqual(events[0], { type: 'master-start', pid: process.pid, listeners: [] });
  assert.deepEqual(events.find((e) => e.type === 'master-ready'), { type: 'master-ready', generation: 1, ms: 1234 });
  sup.announceConfig('SIGHUP', [{ key: 'workers', from: '2', to: '3' }], ['a note']);
  sup.reconfigured(['metrics'], []);
  assert.deepEqual(events.slice(-2), [
    { type: 'reload-config', reason: 'SIGHUP', changes: [{ key: 'workers', from: '2', to: '3' }], notes: ['a note'] },
    { type: 'reconfigured', parts: ['metrics'], errors: [] },
  ]);
});

test('a queued reload\'s configuration diff is taken as it begins, against what serves then, and reaches every request merged into it (regression: report h12 N3: it showed what the reload before it had applied)', async () => {
  const { sup, host, events } = setup();
  await sup.start();
  // Each generation's workers get ready 500 ms after they start: the first reload is in flight for a while.
  host.behave = () => (p) => {
    wellBehaved(p);
    p.removeAllListeners('notify');
    host.setTimer(() => p.emit('notify', 'READY=1'), 500);
  };
  const asked: string[] = [];
  /** The diff as the reconfigure layer computes it: against the generation serving when it is called. */
  const config = (to: string) => () => {
    const serving = String(sup.status().generation);
    asked.push(`${to} against generation ${serving}`);
    return { changes: [{ key: 'workers', from: serving, to }], notes: [] };
  };
  const seen: Record<string, MasterEvent[]> = { a: [], b: [], c: [] };
  const follow = (who: string) => (e: MasterEvent) => void (e.type === 'reload-config' && seen[who]!.push(e));
  const a = sup.reload('a', { config: config('3'), follow: follow('a') });
  const b = sup.reload('b', { config: config('4'), follow: follow('b') });
  const c = sup.reload('c', { config: config('5'), follow: follow('c') });
  assert.deepEqual(asked, ['3 against generation 1'], 'the queued reload is not diffed when it is asked for');
  const [oa, ob, oc] = await until(host, Promise.all([a, b, c]));
  assert.deepEqual([oa.generation, ob.generation, oc.generation, oc.coalesced], [2, 3, 3, true]);
  // The merged request's (the last one's) diff, against generation 2, for both requests of the queued reload.
  assert.deepEqual(asked, ['3 against generation 1', '5 against generation 2']);
  assert.deepEqual(oa.changes, [{ key: 'workers', from: '1', to: '3' }]);
  assert.deepEqual(ob.changes, [{ key: 'workers', from: '2', to: '5' }]);
  assert.deepEqual(oc.changes, ob.changes);
  assert.equal(oa.notes, undefined, 'no notes: none said');
  const said = (from: string, to: string) => [{ type: 'reload-config', reason: from === '1' ? 'a' : 'b', changes: [{ key: 'workers', from, to }], notes: [] }];
  assert.deepEqual(seen, { a: said('1', '3'), b: said('2', '5'), c: said('2', '5') });
  // In the log, each just before its reload's start.
  const order = events.flatMap((e) => (e.type === 'reload-config' ? ['config'] : e.type === 'reload-start' ? [`start ${e.generation}`] : []));
  assert.deepEqual(order, ['config', 'start 2', 'config', 'start 3']);
});

test('a reload the reconfigure layer refused is the last reload (status, reload-done) until one that started later ends', async () => {
  const { sup, host, events } = setup();
  await sup.start();
  await settle();
  host.behave = () => neverReady;
  const early = sup.reload('started before the refusal');
  await host.advance(10);
  const refused = sup.refuseReload('SIGHUP', host.now(), new HitlessError('ERR_CONFIG_INVALID', 'bad file'), { changes: [] });
  assert.deepEqual(refused, {
    ok: false, generation: 1, attempted: 1, reason: 'SIGHUP', startedAt: 10, durationMs: 0, forced: 0,
    error: { code: 'ERR_CONFIG_INVALID', message: 'bad file', output: [], problems: ['bad file'] }, changes: [],
  });
  assert.deepEqual(events.at(-1), { type: 'reload-done', outcome: refused });
  assert.deepEqual(sup.status().lastReload, refused);
  for (const p of host.alive(2)) p.ready();
  assert.equal((await early).ok, true);
  assert.deepEqual(sup.status().lastReload, refused, 'the reload that started before it does not hide it');
  host.behave = () => wellBehaved;
  const later = await sup.reload('later');
  assert.deepEqual(sup.status().lastReload, later);
});

test('a worker count that is not one is refused with the one rule (config/workers.ts)', async () => {
  const { sup } = setup();
  await sup.start();
  for (const n of [0, -1, 1.5, Number.NaN]) {
    assert.deepEqual((await sup.scale(n)).error, { code: 'ERR_USAGE', message: `scale: ${JSON.stringify(n)} is not a worker count; give a positive integer such as 4`, output: [] });
  }
  // The control socket's {"workers": 1e12}: the master ran out of memory starting workers (regression).
  assert.deepEqual((await sup.scale(1e12)).error, { code: 'ERR_USAGE', message: 'scale: 1000000000000 workers is more than hitless runs (at most 1024); give a count this machine can run, such as one per CPU', output: [] });
  assert.equal((await sup.scale(1024)).error, undefined, 'the bound itself is a count');
});

test('status: the library\'s "listening, not ready yet: call ready()" hint goes once the worker is ready; any other status text stays (regression, h15 F3)', async () => {
  const { sup, host } = setup({ workers: 2 });
  const hint = 'listening on the socket hitless holds, not ready yet (listener "http", fd 3): call ready() once it serves';
  host.behave = (_gen, slot) => (p) => {
    queueMicrotask(() => p.emit('notify', `STATUS=${slot === 0 ? hint : 'warming cache 40%'}`));
    wellBehaved(p);
  };
  await sup.start();
  const said = sup.status().workers.map((w) => w.statusText);
  assert.deepEqual(said, [undefined, 'warming cache 40%']);
});
