/**
 * The two-way worker channel on the master's side, on a fake host: hello, the stop message
 * that asks for hand-over, connection handles brokered to the new generation (or back, or
 * closed; never kept, never sent twice), garbage ignored. (SIGHUPs: test/master/sighup.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage } from '../../src/lib/protocol.js';
import { Supervisor } from '../../src/core/supervisor.js';
import type { GenerationSpec } from '../../src/core/spec.js';
import type { MasterEvent } from '../../src/core/types.js';
import { FakeHandle, FakeHost, fakeSpec, settle, wellBehaved, type Behaviour, type FakeProcess } from './fake-host.js';

/** A Node worker with the in-app library: ready, hello with hand-over, exits when told to stop. */
const libraryWorker: Behaviour = (p) => {
  wellBehaved(p);
  queueMicrotask(() => p.say({ hitless: 1, type: 'hello', handover: true, listeners: ['http'] }));
};

function setup(spec: Partial<GenerationSpec> = {}) {
  const host = new FakeHost();
  host.behave = () => libraryWorker;
  const sup = new Supervisor({ stayReady: 0, host, spec: () => fakeSpec(spec), version: 'test', listeners: () => [] });
  const events: MasterEvent[] = [];
  sup.on('event', (e: MasterEvent) => events.push(e));
  return { host, sup, events };
}

/** Old workers that hand `n` connections over each when asked, then report and exit. */
function handsOver(host: FakeHost, gen: number, n: number): FakeHandle[] {
  const handles: FakeHandle[] = [];
  for (const p of host.alive(gen)) {
    p.removeAllListeners('sent');
    p.on('sent', (m: Record<string, unknown>) => {
      if (m.type !== 'stop') return;
      for (let i = 0; i < n; i++) {
        const h = new FakeHandle();
        handles.push(h);
        p.say({ hitless: 1, type: 'conn', listener: 'http' }, h);
      }
      queueMicrotask(() => queueMicrotask(() => p.exit(0)));
    });
  }
  return handles;
}

const conns = (p: FakeProcess | undefined) => (p?.sent ?? []).filter((s) => s.message.type === 'conn');

test('hand-over: old workers get a stop message asking for it, not their stop signal', async () => {
  const { sup, host } = setup();
  await sup.start();
  await settle();
  const old = host.alive(1);
  await sup.reload('test');
  for (const p of old) {
    assert.deepEqual(p.signals, []);
    // The window: one connection in transit per old worker (HANDOVER_WINDOW); no new worker
    // said ws-hello, so no WebSocket is to move.
    assert.deepEqual(p.sent.map((s) => s.message), [{ hitless: 1, type: 'stop', handover: true, window: 1, webSockets: false }]);
  }
});

test('hand-over pacing: the master says `landed` to the old worker once per connection it sent, after that connection reached its place', async () => {
  const { sup, host } = setup();
  await sup.start();
  await settle();
  const [a, b] = host.alive(1);
  // Worker a sends 6 connections one after another as `landed` comes back, never more than
  // its window in transit, and exits once all have landed; worker b has none.
  let inTransit = 0;
  let maxInTransit = 0;
  let left = 6;
  let window = 0;
  const next = (): void => {
    while (left > 0 && inTransit < window) {
      left--;
      inTransit++;
      maxInTransit = Math.max(maxInTransit, inTransit);
      a!.say({ hitless: 1, type: 'conn', listener: 'http' }, new FakeHandle());
    }
  };
  a!.removeAllListeners('sent');
  a!.on('sent', (m: Record<string, unknown>) => {
    if (m.type === 'stop') window = Number(m.window);
    if (m.type === 'landed') inTransit--;
    next();
    if (left === 0 && inTransit === 0) queueMicrotask(() => a!.exit(0));
  });
  const outcome = await sup.reload('test');
  assert.equal(outcome.ok, true);
  assert.equal(outcome.connections?.handedOver, 6);
  assert.equal(window, 1);
  assert.equal(maxInTransit, 1, 'the window was used, not exceeded');
  assert.equal(a!.sent.filter((s) => s.message.type === 'landed').length, 6);
  assert.equal(b!.sent.filter((s) => s.message.type === 'landed').length, 0);
});

test('hand-over: each connection lands on exactly one new worker, spread evenly; the master closes its copy', async () => {
  const { sup, host } = setup();
  await sup.start();
  await settle();
  const handles = handsOver(host, 1, 5);
  const outcome = await sup.reload('test');
  assert.equal(outcome.ok, true);
  assert.deepEqual(outcome.connections, { handedOver: 10, returned: 0, lost: 0, drained: 0, cut: 0 });
  const [a, b] = host.alive(2);
  assert.equal(conns(a).length + conns(b).length, 10);
  assert.equal(conns(a).length, 5);
  const delivered = [...conns(a), ...conns(b)].map((s) => s.handle);
  assert.equal(new Set(delivered).size, 10, 'no handle delivered twice');
  assert.ok(handles.every((h) => h.closed === 1), "the master's copy of every descriptor is closed once");
  assert.deepEqual(conns(a)[0]?.message, { hitless: 1, type: 'conn', listener: 'http' });
});

test('hand-over: a receiving worker that dies mid-way: what it had received is reported lost, the rest go back to the old worker', async () => {
  const { sup, host } = setup({ workers: 1 });
  await sup.start();
  await settle();
  const handles = handsOver(host, 1, 4);
  let receiver: FakeProcess | undefined;
  host.behave = (gen) => gen !== 2 ? libraryWorker : (p) => {
    libraryWorker(p);
    receiver = p;
    // Takes two connections, then is SIGKILLed before the third.
    p.on('sent', () => {
      if (conns(p).length === 2) p.exit(null, 'SIGKILL');
    });
  };
  const outcome = await sup.reload('test');
  // It died after the switch, while the reload ran: the reload fails and rolls back.
  assert.equal(outcome.ok, false);
  assert.deepEqual(outcome.rollback, { generation: 3, version: 1, ok: true });
  assert.equal(conns(receiver).length, 2);
  assert.equal(outcome.connections?.handedOver, 0);
  assert.equal(outcome.connections?.returned, 2);
  assert.equal(outcome.connections?.lost, 2, 'the two it had taken died with it');
  assert.ok(handles.every((h) => h.closed === 1));
});

test('scale down: the workers that stay take the removed workers\' connections (a stop message, no signal), round robin', async () => {
  const { sup, host, events } = setup({ workers: 3 });
  await sup.start();
  await settle();
  const [stays, ...removed] = host.alive(1);
  const handles = handsOver(host, 1, 4);
  const outcome = await sup.scale(1);
  assert.equal(outcome.ok, true);
  for (const p of removed) {
    assert.deepEqual(p.signals, [], 'removed workers are not signalled: they skip shutdownDelay');
    assert.deepEqual(p.sent.map((s) => s.message.type), ['stop']);
  }
  assert.equal(conns(stays).length, 8);
  assert.equal(new Set(conns(stays).map((s) => s.handle)).size, 8);
  assert.ok(handles.every((h) => h.closed === 1));
  assert.deepEqual(outcome.connections, { handedOver: 8, returned: 0, lost: 0, drained: 0, cut: 0 });
  assert.deepEqual(host.alive(1), [stays]);
  const draining = events.find((e) => e.type === 'reload-draining');
  assert.deepEqual(draining, { type: 'reload-draining', generation: 1, workers: 2, to: 1 });
});

test('scale down to two of four: the moved connections are split between the workers that stay (round robin, not in turn)', async () => {
  const { sup, host } = setup({ workers: 4 });
  await sup.start();
  await settle();
  const [a, b, ...removed] = host.alive(1);
  // Each removed worker says how many it has left, as the library does (what filling in turn reads).
  for (const p of removed) {
    p.removeAllListeners('sent');
    p.on('sent', (m: Record<string, unknown>) => {
      if (m.type !== 'stop') return;
      for (let left = 2; left >= 0; left--) p.say({ hitless: 1, type: 'conn', listener: 'http', left }, new FakeHandle());
      queueMicrotask(() => queueMicrotask(() => p.exit(0)));
    });
  }
  const order: string[] = [];
  a?.on('sent', (m: Record<string, unknown>) => m.type === 'conn' && order.push('a'));
  b?.on('sent', (m: Record<string, unknown>) => m.type === 'conn' && order.push('b'));
  const outcome = await sup.scale(2);
  assert.equal(outcome.connections?.handedOver, 6);
  assert.deepEqual(order, ['a', 'b', 'a', 'b', 'a', 'b']);
});

test('scale down with hand-over off: the removed workers get their stop signal and drain', async () => {
  const { sup, host } = setup({ workers: 2, handover: false });
  await sup.start();
  await settle();
  const removed = host.alive(1)[1];
  const outcome = await sup.scale(1);
  assert.equal(outcome.ok, true);
  assert.deepEqual(removed?.signals, ['SIGTERM']);
  assert.equal(outcome.connections, undefined);
});

test('hand-over: a new generation that never said hello gets no connection; the old one drains by its stop signal', async () => {
  const { sup, host } = setup();
  await sup.start();
  await settle();
  host.behave = () => wellBehaved; // e.g. a Python worker: READY=1 only
  const old = host.alive(1);
  const outcome = await sup.reload('test');
  assert.equal(outcome.ok, true);
  for (const p of old) assert.deepEqual(p.signals, ['SIGTERM']);
  assert.deepEqual(outcome.connections, { handedOver: 0, returned: 0, lost: 0, drained: 0, cut: 0 });
});

test('hand-over off by config: old workers drain by signal even when both sides could hand over', async () => {
  const { sup, host } = setup({ handover: false });
  await sup.start();
  await settle();
  const old = host.alive(1);
  await sup.reload('test');
  for (const p of old) assert.deepEqual(p.signals, ['SIGTERM']);
});

test('hand-over: a stop message that cannot be sent falls back to the stop signal', async () => {
  const { sup, host } = setup();
  await sup.start();
  await settle();
  const old = host.alive(1);
  for (const p of old) p.channelOpen = false;
  await sup.reload('test');
  for (const p of old) assert.deepEqual(p.signals, ['SIGTERM']);
});

test('channel: garbage and foreign messages are ignored, and a handle that came with them is closed', async () => {
  const { sup, host } = setup();
  await sup.start();
  await settle();
  const p = host.alive(1)[0] as FakeProcess;
  const h = new FakeHandle();
  for (const raw of ['READY=1', null, 42, [], { type: 'conn' }, { hitless: 2, type: 'conn' }, { hitless: 1, type: 'nope' }]) p.say(raw);
  p.say({ hitless: 1, type: 'conn', listener: 7 }, h);
  await settle();
  assert.equal(h.closed, 1);
  assert.equal(sup.state, 'running');
  assert.equal(parseMessage({ hitless: 1, type: 'hello', listeners: ['a', 3] }, 'worker'), undefined);
  assert.deepEqual(parseMessage({ hitless: 1, type: 'drained', drained: 3 }, 'worker'), { hitless: 1, type: 'drained', drained: 3 });
});

test('channel: a connection sent out of turn (no hand-over running) goes back to its sender', async () => {
  const { sup, host } = setup();
  await sup.start();
  await settle();
  const p = host.alive(1)[0] as FakeProcess;
  const h = new FakeHandle();
  p.say({ hitless: 1, type: 'conn', listener: 'http' }, h);
  await settle();
  assert.deepEqual(conns(p).map((s) => s.message), [{ hitless: 1, type: 'conn', listener: 'http', returned: true }]);
  assert.equal(h.closed, 1);
});

test('hand-over: connections an old worker cut at its own shutdown deadline are counted (cut), not missing', async () => {
  const { sup, host } = setup();
  await sup.start();
  await settle();
  for (const p of host.alive(1)) {
    p.removeAllListeners('sent');
    p.on('sent', (m: Record<string, unknown>) => {
      if (m.type !== 'stop') return;
      p.say({ hitless: 1, type: 'drained', drained: 3, forced: 7 });
      queueMicrotask(() => queueMicrotask(() => p.exit(0)));
    });
  }
  const outcome = await sup.reload('test');
  assert.deepEqual(outcome.connections, { handedOver: 0, returned: 0, lost: 0, drained: 6, cut: 14 });
});

test('drain deadline during a hand-over: an old worker still handing connections over is not killed at drainTimeout; the deadline counts from its last progress (a slow machine costs time, never a connection)', async () => {
  const { sup, host } = setup({ workers: 1 }); // drainTimeout 5000
  await sup.start();
  await settle();
  const [old] = host.alive(1);
  old!.removeAllListeners('sent');
  let stopped = false;
  old!.on('sent', (m: Record<string, unknown>) => {
    if (m.type === 'stop') stopped = true;
  });
  const reload = sup.reload('test');
  await settle();
  assert.ok(stopped, 'the old worker was asked to hand over');
  // One connection every 4 s: slower than anyone would like, but moving.
  for (let i = 0; i < 3; i++) {
    await host.advance(4000);
    old!.say({ hitless: 1, type: 'conn', listener: 'http' }, new FakeHandle());
  }
  await host.advance(4999);
  assert.equal(old!.killed, false, '16.9 s after the stop, 4.9 s after its last connection: still handing over');
  await host.advance(1);
  assert.equal(old!.killed, true, 'drainTimeout without progress: stuck, killed');
  const outcome = await reload;
  assert.equal(outcome.forced, 1);
  assert.equal(outcome.connections?.handedOver, 3);
});

test('hand-over: reload-drained says how long the connections spent in the master (median, p99, max)', async () => {
  const { sup, host, events } = setup();
  await sup.start();
  await settle();
  handsOver(host, 1, 5);
  assert.equal((await sup.reload('test')).ok, true);
  const drained = events.find((e) => e.type === 'reload-drained');
  const t = drained?.type === 'reload-drained' ? drained.transitMs : undefined;
  assert.ok(t !== undefined, 'transit figures reported');
  assert.ok(t.median >= 0 && t.p99 >= t.median && t.max >= t.p99);
});

test('hand-over: another window (HITLESS_HANDOVER_WINDOW, for measurements) reaches the old workers\' stop', async () => {
  const host = new FakeHost();
  host.behave = () => libraryWorker;
  const sup = new Supervisor({ stayReady: 0, host, spec: () => fakeSpec(), version: 'test', listeners: () => [], handoverWindow: 4 });
  await sup.start();
  await settle();
  const old = host.alive(1);
  await sup.reload('test');
  for (const p of old) assert.deepEqual(p.sent.map((s) => s.message), [{ hitless: 1, type: 'stop', handover: true, window: 4, webSockets: false }]);
});
