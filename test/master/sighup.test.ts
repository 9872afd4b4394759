/**
 * SIGHUP is never dropped (issue 25), on a fake host and clock: a SIGHUP in every phase of
 * a reload queues one more reload, one after a reload finished starts one at once however
 * soon it comes, and only SIGHUPs that arrive while a reload is already queued merge into
 * it. The number of reloads run is the number of SIGHUPs that arrived while none was queued.
 * (End to end, with a real master and load: test/master/supervision.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor } from '../../src/core/supervisor.js';
import { createLogger, logEvent } from '../../src/core/logger.js';
import type { GenerationSpec } from '../../src/core/spec.js';
import type { MasterEvent } from '../../src/core/types.js';
import { sighupHandler } from '../../src/master/sighup.js';
import { HitlessError } from '../../src/errors.js';
import { ReloadProgress } from '../../src/cli/format.js';
import { FakeHost, fakeSpec, settle, wellBehaved, type Behaviour, type FakeProcess } from '../core/fake-host.js';

function setup(spec: Partial<GenerationSpec> = {}) {
  const host = new FakeHost();
  const sup = new Supervisor({ stayReady: 0, host, spec: () => fakeSpec(spec), version: 'test', listeners: () => [] });
  const events: MasterEvent[] = [];
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ format: 'json', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  sup.on('event', (e: MasterEvent) => {
    events.push(e);
    logEvent(logger, e);
  });
  const hup = sighupHandler(sup, logger);
  /** SIGHUPs sent while no reload was queued: each of them must run exactly one reload. */
  let distinct = 0;
  const outcomes: Promise<unknown>[] = [];
  const sighup = (): void => {
    if (!sup.status().reloadQueued) distinct++;
    outcomes.push(hup());
  };
  const reloadsRun = (): number => events.filter((e) => e.type === 'reload-start').length;
  const msgs = (): string[] => lines.map((l) => String(l.msg));
  return { host, sup, events, sighup, reloadsRun, msgs, expected: () => distinct, settled: () => Promise.all(outcomes) };
}

/** Old workers that drain for `ms` on the fake clock before exiting (signal or stop message). */
const slowDrain = (ms: number, host: FakeHost): Behaviour => (p) => {
  queueMicrotask(() => p.ready());
  const leave = (): void => void host.setTimer(() => p.exit(0), ms);
  p.on('signal', leave);
  p.on('sent', (m: Record<string, unknown>) => m.type === 'stop' && leave());
};

/** Speaks the channel (hello with hand-over): its retirement goes through the `handover` phase. */
const slowLibraryDrain = (ms: number, host: FakeHost): Behaviour => (p) => {
  slowDrain(ms, host)(p);
  queueMicrotask(() => p.say({ hitless: 1, type: 'hello', handover: true, listeners: ['http'] }));
};

/** Runs the clock until no reload runs or waits. */
async function finish(host: FakeHost, sup: Supervisor): Promise<void> {
  for (let i = 0; i < 1000 && (sup.status().state !== 'running' || sup.status().reloadQueued); i++) await host.advance(100);
  assert.equal(sup.status().state, 'running');
}

const phaseOf = (sup: Supervisor): string | undefined => sup.status().reload?.phase;

for (const phase of ['spawning', 'handover', 'draining', 'canary'] as const) {
  test(`a SIGHUP during the ${phase} phase queues one more reload, run after the first (none dropped)`, async () => {
    const spec: Partial<GenerationSpec> = phase === 'canary'
      ? { strategy: 'canary', canary: { ...fakeSpec().canary, workers: 1, duration: 2000, minRequests: 0 } }
      : { handover: phase === 'handover' };
    const { host, sup, sighup, reloadsRun, expected, msgs, settled } = setup(spec);
    const gated: FakeProcess[] = [];
    host.behave = (gen) => {
      if (phase === 'spawning' && gen >= 2) return (p) => void gated.push(p); // ready when the test says
      return phase === 'handover' ? slowLibraryDrain(1000, host) : slowDrain(1000, host);
    };
    await sup.start();
    await settle();
    sighup();
    await settle();
    assert.equal(phaseOf(sup), phase);
    sighup();
    await settle();
    assert.equal(sup.status().reloadQueued, true);
    assert.deepEqual(sup.status().queuedReload?.reasons, ['SIGHUP']);
    assert.ok(msgs().includes('SIGHUP: reload queued behind generation 2'), msgs().join('\n'));
    for (;;) {
      for (const p of gated.splice(0)) p.ready();
      if (sup.status().state === 'running' && !sup.status().reloadQueued) break;
      await host.advance(100);
    }
    await settled();
    assert.equal(reloadsRun(), 2);
    assert.equal(reloadsRun(), expected());
    assert.deepEqual(sup.status().reloadRequests, { started: 1, queued: 1, merged: 0, refused: 0 });
  });
}

test('a SIGHUP while the first generation starts runs once it serves', async () => {
  const { host, sup, sighup, reloadsRun, msgs } = setup();
  const gated: FakeProcess[] = [];
  host.behave = (gen) => (gen === 1 ? (p) => void gated.push(p) : wellBehaved);
  const started = sup.start();
  await settle();
  sighup();
  await settle();
  assert.ok(msgs().includes("SIGHUP: reload queued behind the first generation's start"), msgs().join('\n'));
  for (const p of gated) p.ready();
  await started;
  await finish(host, sup);
  assert.equal(reloadsRun(), 1);
  assert.equal(sup.status().generation, 2);
});

test('a SIGHUP during a scale runs once the scale is done', async () => {
  const { host, sup, sighup, reloadsRun, msgs } = setup();
  await sup.start();
  const gated: FakeProcess[] = [];
  host.behave = () => (p) => void gated.push(p);
  const scaled = sup.scale(3);
  await settle();
  sighup();
  await settle();
  assert.ok(msgs().includes('SIGHUP: reload queued behind the scale in progress'), msgs().join('\n'));
  host.behave = () => wellBehaved;
  for (const p of gated) p.ready();
  assert.equal((await scaled).ok, true);
  await finish(host, sup);
  assert.equal(reloadsRun(), 1);
});

for (const gap of [1, 50, 199, 201]) {
  test(`a SIGHUP ${gap} ms after the previous reload finished starts a reload at once`, async () => {
    const { host, sup, sighup, reloadsRun, expected, settled } = setup();
    host.behave = () => slowDrain(150, host);
    await sup.start();
    for (let i = 0; i < 5; i++) {
      sighup();
      await finish(host, sup);
      await host.advance(gap);
    }
    await settled();
    assert.equal(reloadsRun(), 5);
    assert.equal(expected(), 5);
    assert.deepEqual(sup.status().reloadRequests, { started: 5, queued: 0, merged: 0, refused: 0 });
  });
}

test('a storm of 50 SIGHUPs in 100 ms runs 2 reloads: the first, and one for everything after it', async () => {
  const { host, sup, events, sighup, reloadsRun, expected, msgs, settled } = setup();
  host.behave = () => slowDrain(1000, host);
  await sup.start();
  for (let i = 0; i < 50; i++) {
    sighup();
    await host.advance(2);
  }
  assert.deepEqual(sup.status().queuedReload?.reasons.length, 49);
  await finish(host, sup);
  await settled();
  assert.equal(reloadsRun(), 2);
  assert.equal(reloadsRun(), expected());
  assert.deepEqual(sup.status().reloadRequests, { started: 1, queued: 1, merged: 48, refused: 0 });
  assert.equal(msgs().filter((m) => m === 'SIGHUP received: reload requested').length, 50, 'every SIGHUP is logged');
  assert.equal(msgs().filter((m) => m === 'SIGHUP: merged into the queued reload').length, 48);
  // What `hitless reload` prints for its own request when it has to wait.
  const progress = new ReloadProgress();
  const said = events.flatMap((e) => (e.type === 'reload-queued' ? [progress.update(e)] : []));
  assert.equal(said[0], 'reload queued behind generation 2 (SIGHUP)');
  assert.equal(said[1], 'merged into the queued reload (SIGHUP)');
});

test('SIGHUPs at random moments: reloads run = SIGHUPs that arrived while none was queued (fake clock, 20 seeds)', async () => {
  for (let seed = 1; seed <= 20; seed++) {
    let x = seed;
    const rand = (n: number): number => ((x = (x * 1103515245 + 12345) % 2 ** 31), x % n);
    const { host, sup, sighup, reloadsRun, expected, settled } = setup();
    host.behave = () => slowDrain(50 + rand(400), host);
    await sup.start();
    for (let i = 0; i < 30; i++) {
      sighup();
      await host.advance(rand(300));
    }
    await finish(host, sup);
    await settled();
    assert.equal(reloadsRun(), expected(), `seed ${seed}`);
    const r = sup.status().reloadRequests;
    assert.equal((r?.started ?? 0) + (r?.queued ?? 0), expected(), `seed ${seed}`);
    assert.equal((r?.started ?? 0) + (r?.queued ?? 0) + (r?.merged ?? 0), 30, `seed ${seed}`);
  }
});

test('a SIGHUP while the master stops is refused and says so', async () => {
  const { host, sup, sighup, msgs, settled } = setup();
  host.behave = () => slowDrain(100, host);
  await sup.start();
  const stopped = sup.stop();
  sighup();
  await host.advance(200);
  await stopped;
  await settled();
  assert.ok(msgs().includes('SIGHUP: no reload, the master is stopping'), msgs().join('\n'));
  assert.equal(sup.status().reloadRequests?.refused, 1, 'the refused request is counted');
});

test('a reload a stop cuts is logged once, as abandoned at info: no "reload failed" ERROR, no second SIGHUP line', async () => {
  const { host, sup, sighup, events, settled } = setup();
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ format: 'json', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  sup.on('event', (e: MasterEvent) => logEvent(logger, e));
  await sup.start();
  // Generation 2 never becomes ready: the stop comes while the reload waits for it.
  host.behave = (gen) => (gen === 1 ? wellBehaved : (p) => p.on('signal', () => p.exit(0)));
  const hup = sighupHandler(sup, logger);
  const outcome = hup();
  await host.advance(10);
  assert.equal(events.filter((e) => e.type === 'reload-start').length, 1);
  const stopped = sup.stop();
  await host.advance(200);
  await stopped;
  await settled();
  assert.equal((await outcome).error?.code, 'ERR_STOPPING');
  const msgs = lines.map((l) => `${String(l.level)} ${String(l.msg)}`);
  assert.ok(msgs.includes('info reload of generation 2 abandoned: the master began stopping'), msgs.join('\n'));
  assert.deepEqual(msgs.filter((m) => /^(error|warn) /.test(m)), [], 'before: "reload failed, previous generation keeps serving" and "SIGHUP: no reload"');
  assert.equal(msgs.filter((m) => m.includes('SIGHUP')).length, 1, 'the one SIGHUP received');
});

test('a stop while the first generation starts says so (before: "the master began stopping during the reload")', async () => {
  const host = new FakeHost();
  const sup = new Supervisor({ stayReady: 0, host, spec: () => fakeSpec(), version: 'test', listeners: () => [] });
  host.behave = () => (p) => p.on('signal', () => p.exit(0));
  const started = assert.rejects(sup.start(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_START_FAILED');
    assert.equal(err.message, 'the first generation did not start: the master was asked to stop before its workers were ready');
    return true;
  });
  await host.advance(10);
  const stopped = sup.stop();
  await host.advance(200);
  await started;
  await stopped;
});

test('a reload refused before it ran (a configuration that does not validate) counts as a refused request and a failed reload, and is logged as refused (regression: h16 F6, "reload failed")', async () => {
  const { host, sup, msgs } = setup();
  await sup.start();
  const outcome = sup.refuseReload('SIGHUP', 0, new HitlessError('ERR_CONFIG_INVALID', '"workers" in hitless.json: got 0'));
  assert.equal(outcome.ok, false);
  assert.deepEqual(msgs().filter((m) => m.startsWith('reload')), ['reload refused, nothing started: generation 1 keeps serving']);
  assert.deepEqual(sup.status().reloadRequests, { started: 0, queued: 0, merged: 0, refused: 1 });
  assert.equal(sup.status().lastReload?.ok, false);
  // A new generation that started and was rejected is a failure, still said so.
  host.behave = (gen) => (gen === 1 ? wellBehaved : (p) => queueMicrotask(() => p.exit(1)));
  assert.equal((await sup.reload('hitless reload')).ok, false);
  assert.ok(msgs().includes('reload failed, previous generation keeps serving'), msgs().join('\n'));
  await sup.stop();
});
