/**
 * Long-lived connections never block the next reload (issue 24), on the fake host: a reload
 * is done once its old workers hold only upgraded connections (they say `lingering`) or
 * after `drain.reloadWait`; the old generation drains on in the background with its own
 * deadline, listed in status; several may drain at once, at most `drain.maxGenerations`;
 * the outcome says what was still draining; `stop` still drains everything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor } from '../../src/core/supervisor.js';
import type { GenerationSpec } from '../../src/core/spec.js';
import type { MasterEvent } from '../../src/core/types.js';
import { FakeHost, fakeSpec, settle, type Behaviour, type FakeProcess } from './fake-host.js';

function setup(spec: Partial<GenerationSpec> = {}) {
  const host = new FakeHost();
  const sup = new Supervisor({ stayReady: 0, host, spec: () => fakeSpec(spec), version: 'test', listeners: () => [] });
  const events: MasterEvent[] = [];
  sup.on('event', (e: MasterEvent) => events.push(e));
  const of = <T extends MasterEvent['type']>(type: T) => events.filter((e): e is Extract<MasterEvent, { type: T }> => e.type === type);
  return { host, sup, events, of };
}

/**
 * A Node worker with the library holding `upgraded` WebSockets: on stop, its HTTP side is
 * done at once, so it says `lingering`; it closes one WebSocket per `closeEvery` ms (saying
 * so), and exits when none is left. `closeEvery` undefined: it never closes them.
 */
function webSocketWorker(host: FakeHost, upgraded: number, closeEvery?: number): Behaviour {
  return (p: FakeProcess) => {
    queueMicrotask(() => {
      p.say({ hitless: 1, type: 'hello', handover: true, listeners: ['http'] });
      p.ready();
    });
    let left = upgraded;
    const onStop = (): void => {
      p.say({ hitless: 1, type: 'lingering', upgraded: left });
      if (closeEvery === undefined) return;
      const next = (): void => {
        left--;
        if (left > 0) {
          p.say({ hitless: 1, type: 'lingering', upgraded: left });
          host.setTimer(next, closeEvery);
        } else {
          p.say({ hitless: 1, type: 'drained', drained: upgraded, forced: 0 });
          p.exit(0);
        }
      };
      host.setTimer(next, closeEvery);
    };
    p.on('sent', (m: Record<string, unknown>) => m.type === 'stop' && onStop());
    p.on('signal', onStop);
  };
}

test('draining: a reload is done once its old workers hold only upgraded connections; the old generation drains on in the background and status lists it', async () => {
  const { host, sup, of } = setup({ drainTimeout: 60_000 });
  host.behave = () => webSocketWorker(host, 3, 1000);
  await sup.start();
  const outcome = await sup.reload('deploy');
  assert.equal(outcome.ok, true);
  assert.deepEqual(outcome.stillDraining, { workers: 2, upgraded: 6 });
  assert.equal(host.alive(1).length, 2, 'the old workers still hold their WebSockets');
  assert.equal(sup.state, 'running');
  assert.equal(sup.status().reload, undefined);
  assert.deepEqual(of('drain-background').map(({ generation, workers, upgraded }) => ({ generation, workers, upgraded })), [{ generation: 1, workers: 2, upgraded: 6 }]);
  assert.equal(of('reload-drained').length, 0, 'the final counts come when the generation is gone');

  await host.advance(1000);
  const [draining] = sup.status().draining ?? [];
  assert.equal(draining?.reloadWait, undefined, 'released because every worker said it holds only upgraded connections');
  assert.equal(draining?.generation, 1);
  assert.equal(draining?.background, true);
  assert.equal(draining?.deadline, 60_000);
  assert.equal(draining?.upgraded, 4);
  assert.deepEqual(draining?.workers.map((w) => w.upgraded), [2, 2]);

  await host.advance(2000);
  assert.equal(host.alive(1).length, 0);
  assert.deepEqual(sup.status().draining, []);
  const [drained] = of('reload-drained');
  assert.deepEqual({ generation: drained?.generation, drained: drained?.drained, forced: drained?.forced }, { generation: 1, drained: 6, forced: 0 });
});

test('draining: a second reload started during a long WebSocket drain runs at once (not queued); two generations drain, each with its own deadline', async () => {
  const { host, sup, of } = setup({ drainTimeout: 10_000 });
  host.behave = () => webSocketWorker(host, 5);
  await sup.start();
  assert.equal((await sup.reload('first')).ok, true);
  await host.advance(4000);
  const second = await sup.reload('second');
  assert.equal(second.ok, true);
  assert.equal(second.generation, 3);
  assert.equal(of('reload-queued').length, 0, 'the second reload never waited in the queue');
  assert.deepEqual(sup.status().draining?.map((d) => [d.generation, d.deadline, d.upgraded]), [[1, 10_000, 10], [2, 14_000, 10]]);
  await host.advance(6000);
  assert.equal(host.alive(1).length, 0, "generation 1's deadline SIGKILLed it");
  assert.equal(host.alive(2).length, 2, "generation 2's deadline is its own");
  assert.deepEqual(of('reload-drained').map((e) => [e.generation, e.forced]), [[1, 2]]);
  await host.advance(4000);
  assert.equal(host.alive(2).length, 0);
  assert.deepEqual(of('reload-drained').map((e) => [e.generation, e.forced]), [[1, 2], [2, 2]]);
});

test('draining: workers that cannot say what they hold (no library) hold a reload at most drain.reloadWait, then drain in the background until drainTimeout', async () => {
  const { host, sup, of } = setup({ drainTimeout: 20_000, drain: { spread: 0, reloadWait: 3000, maxGenerations: 3 } });
  // Ready after a delay, ignores its stop signal (a long-lived connection it keeps).
  host.behave = () => (p) => queueMicrotask(() => p.ready());
  await sup.start();
  let done = false;
  const pending = sup.reload('deploy').then((o) => ((done = true), o));
  await host.advance(2999);
  assert.equal(done, false);
  await host.advance(1);
  const outcome = await pending;
  assert.equal(outcome.ok, true);
  assert.deepEqual(outcome.stillDraining, { workers: 2, upgraded: 0 });
  assert.equal(sup.status().draining?.[0]?.unknown, 2, 'nobody knows what they hold');
  assert.equal(sup.status().draining?.[0]?.reloadWait, 3000, 'released by drain.reloadWait');
  await host.advance(17_000);
  assert.equal(host.alive(1).length, 0);
  assert.deepEqual(of('reload-drained').map((e) => [e.generation, e.forced]), [[1, 2]]);
});

test('draining: library workers still answering HTTP requests at drain.reloadWait are listed with their requests in flight and why they went to the background, never as "not reporting" (regression: h15 F2)', async () => {
  const { host, sup, of } = setup({ drainTimeout: 120_000, drain: { spread: 0, reloadWait: 6000, maxGenerations: 3 } });
  // The in-app library's worker: hello, READY, a traffic report each second; on stop it keeps
  // two requests it never answers (it never says `lingering`: not only upgraded connections).
  host.behave = () => (p) => {
    let busy = 0;
    const report = (): void => {
      p.say({ hitless: 1, type: 'stats', requests: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, latency: new Array(17).fill(0), latencySum: 0, connections: busy, busy });
      host.setTimer(report, 1000);
    };
    queueMicrotask(() => {
      p.say({ hitless: 1, type: 'hello', handover: true, listeners: ['http'] });
      p.ready();
      report();
    });
    p.on('sent', (m: Record<string, unknown>) => m.type === 'stop' && (busy = 2));
  };
  await sup.start();
  const pending = sup.reload('deploy');
  await host.advance(6000);
  const outcome = await pending;
  assert.equal(outcome.ok, true);
  const [event] = of('drain-background');
  assert.deepEqual(event && { requests: event.requests, connections: event.connections, unknown: event.unknown, reloadWait: event.reloadWait },
    { requests: 4, connections: 4, unknown: 0, reloadWait: 6000 });
  const [draining] = sup.status().draining ?? [];
  assert.deepEqual(draining && { requests: draining.requests, connections: draining.connections, unknown: draining.unknown, upgraded: draining.upgraded, reloadWait: draining.reloadWait },
    { requests: 4, connections: 4, unknown: 0, upgraded: 0, reloadWait: 6000 });
  assert.deepEqual(draining?.workers.map((w) => w.requests), [2, 2]);
});

test('draining: at most drain.maxGenerations generations drain in the background; one more stops the oldest at once (drain-limit, its workers forced)', async () => {
  const { host, sup, of } = setup({ drainTimeout: 60_000, drain: { spread: 0, reloadWait: 30_000, maxGenerations: 2 } });
  host.behave = () => webSocketWorker(host, 1);
  await sup.start();
  await sup.reload('r1');
  await sup.reload('r2');
  assert.deepEqual(sup.status().draining?.map((d) => d.generation), [1, 2]);
  assert.equal(of('drain-limit').length, 0);
  await sup.reload('r3');
  await settle();
  assert.deepEqual(of('drain-limit').map((e) => [e.generation, e.maxGenerations]), [[1, 2]]);
  assert.equal(host.alive(1).length, 0);
  assert.deepEqual(host.procs.filter((p) => p.generation === 1).map((p) => p.killed), [true, true]);
  assert.deepEqual(sup.status().draining?.map((d) => d.generation), [2, 3]);
  assert.deepEqual(of('reload-drained').map((e) => [e.generation, e.forced]), [[1, 2]]);
});

test('draining: hitless stop still drains everything, the generations in the background too, and reports their end before master-stop', async () => {
  const { host, sup, events } = setup({ drainTimeout: 5000 });
  host.behave = () => webSocketWorker(host, 2);
  await sup.start();
  await sup.reload('r1');
  assert.equal(host.alive(1).length, 2);
  const stopped = sup.stop();
  await host.advance(5000);
  await stopped;
  assert.equal(host.alive().length, 0);
  const order = events.map((e) => e.type).filter((t) => t === 'reload-drained' || t === 'master-stop');
  assert.deepEqual(order, ['reload-drained', 'master-stop']);
});

test('draining: old workers that exit before saying anything keep the old behaviour (the reload waits, full counts, no stillDraining)', async () => {
  const { host, sup, of } = setup();
  await sup.start();
  const outcome = await sup.reload('plain');
  assert.equal(outcome.stillDraining, undefined);
  assert.equal(of('drain-background').length, 0);
  assert.equal(of('reload-drained').length, 1);
  assert.deepEqual(sup.status().draining, []);
});

test('draining: rolling moves to the next slot as soon as the old worker of a slot holds only upgraded connections', async () => {
  const { host, sup, of } = setup({ strategy: 'rolling', drainTimeout: 60_000 });
  host.behave = () => webSocketWorker(host, 1);
  await sup.start();
  const outcome = await sup.reload('roll');
  assert.equal(outcome.ok, true);
  assert.deepEqual(outcome.stillDraining, { workers: 2, upgraded: 2 });
  assert.equal(of('drain-background').length, 2, 'one per slot');
  assert.deepEqual(sup.status().draining?.map((d) => [d.generation, d.workers.length]), [[1, 2]]);
});
