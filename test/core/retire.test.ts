/**
 * The pieces a reload is made of, on a fake host and without a supervisor: the one start
 * step (slots.ts), a retirement run on its own (retire.ts; several at once, each with its
 * own deadline), and the hand-over broker with receivers that are not workers of a new
 * generation and a sender that is not stopping (handover.ts), and the WebSockets hitless/ws
 * moves (ws-handover.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HandoverBroker, HandoverRoutes, type Receiver } from '../../src/core/handover.js';
import { drain, Retirement } from '../../src/core/retire.js';
import { REJECTED_GRACE_MS, slotRange, startSlots } from '../../src/core/slots.js';
import { webSocketReceiver, WebSocketRoutes } from '../../src/core/ws-handover.js';
import { Worker } from '../../src/core/worker.js';
import type { ConnMessage } from '../../src/lib/protocol.js';
import { FakeHandle, FakeHost, fakeSpec, settle, wellBehaved, type Behaviour, type FakeProcess } from './fake-host.js';

/** A Node worker with the in-app library: ready, hello with hand-over, exits when told to stop. */
const libraryWorker: Behaviour = (p) => {
  wellBehaved(p);
  queueMicrotask(() => p.say({ hitless: 1, type: 'hello', handover: true, listeners: ['http'] }));
};
/** Ignores its stop signal and stop message: only SIGKILL ends it. */
const stubborn: Behaviour = (p) => queueMicrotask(() => p.ready());

function workers(host: FakeHost, generation: number, n: number): { ws: Worker[]; procs: FakeProcess[] } {
  const ws = slotRange(0, n).map((slot) => new Worker(host, fakeSpec(), generation, slot, 0));
  return { ws, procs: host.procs.filter((p) => p.generation === generation) };
}

/** `n` library workers of `generation`, ready, with what they said at start settled. */
async function readyGeneration(host: FakeHost, generation: number, n: number): Promise<{ ws: Worker[]; procs: FakeProcess[] }> {
  host.behave = () => libraryWorker;
  const g = workers(host, generation, n);
  await Promise.all(g.ws.map((w) => w.waitReady(1000)));
  await settle();
  return g;
}

test('slots: startSlots resolves once every worker is ready', async () => {
  const host = new FakeHost();
  const spec = fakeSpec();
  const ws = await startSlots(slotRange(0, 3), { spawn: (slot) => new Worker(host, spec, 1, slot, 0), ready: (w) => w.waitReady(1000), host });
  assert.deepEqual(ws.map((w) => [w.slot, w.state]), [[0, 'ready'], [1, 'ready'], [2, 'ready']]);
  assert.deepEqual(slotRange(2, 4), [2, 3]);
  assert.deepEqual(slotRange(3, 1), []);
});

test('slots: one worker failing at boot rethrows its failure at once and sends every one started with it its stop signal, SIGKILL only after the grace', async () => {
  const host = new FakeHost();
  host.behave = (_g, slot) => (slot === 1 ? (p) => queueMicrotask(() => p.exit(3)) : stubborn);
  const spec = fakeSpec({ drainTimeout: 30_000 });
  await assert.rejects(
    startSlots(slotRange(0, 3), { spawn: (slot) => new Worker(host, spec, 1, slot, 0), ready: (w) => w.waitReady(1000), host }),
    (e: Error & { code?: string }) => e.code === 'ERR_WORKER_EXITED' && /exited with code 3 before it was ready/.test(e.message),
  );
  // Stubborn ones ignore their stop signal: alive through the grace (REJECTED_GRACE_MS, below drainTimeout), gone after it.
  assert.deepEqual(host.procs.map((p) => p.signals), [['SIGTERM'], [], ['SIGTERM']]);
  assert.equal(host.alive().length, 2);
  await host.advance(REJECTED_GRACE_MS - 1);
  assert.equal(host.alive().length, 2);
  await host.advance(1);
  assert.equal(host.alive().length, 0);
  assert.deepEqual(host.procs.map((p) => p.killed), [true, false, true]);
});

test('slots: rejected workers that drain on their stop signal are not killed, and the grace is never longer than drainTimeout', async () => {
  const host = new FakeHost();
  // Slot 0 answers what it holds and exits on SIGTERM; slot 1 never gets ready and ignores it.
  host.behave = (_g, slot) => (slot === 0 ? (p) => p.on('signal', () => queueMicrotask(() => p.exit(0))) : () => {});
  const spec = fakeSpec({ readyTimeout: 1000, drainTimeout: 2000 });
  const started = startSlots(slotRange(0, 2), { spawn: (slot) => new Worker(host, spec, 1, slot, 0), ready: (w) => w.waitReady(1000), host });
  started.catch(() => {});
  await host.advance(1000);
  await assert.rejects(started, (e: Error & { code?: string }) => e.code === 'ERR_READY_TIMEOUT');
  const [drains, hung] = host.procs;
  assert.equal(drains!.exited, true);
  assert.equal(drains!.killed, false);
  await host.advance(1999);
  assert.equal(hung!.exited, false);
  await host.advance(1);
  assert.equal(hung!.killed, true);
});

test('slots: a worker that was ready but exited before the others were fails the set (ERR_WORKER_EXITED after it was ready)', async () => {
  const host = new FakeHost();
  host.behave = () => () => {};
  const spec = fakeSpec();
  const started = startSlots(slotRange(0, 2), { spawn: (slot) => new Worker(host, spec, 1, slot, 0), ready: (w) => w.waitReady(1000), host });
  const [first, second] = host.procs;
  first!.ready();
  await settle();
  first!.exit(0);
  second!.ready();
  await assert.rejects(started, (e: Error & { code?: string }) => e.code === 'ERR_WORKER_EXITED' && /worker 1\.0 .*exited with code 0 after it was ready/.test(e.message));
  // The other ignores its stop signal: SIGKILLed once the grace has passed.
  await host.advance(REJECTED_GRACE_MS);
  assert.equal(host.alive().length, 0);
});

test('retire: a retirement runs on its own (no reload) and resolves with the counts of both sides (the WebSockets among those drained apart: h25 F2)', async () => {
  const host = new FakeHost();
  const next = await readyGeneration(host, 2, 2);
  host.behave = () => (p) => {
    libraryWorker(p);
    p.removeAllListeners('sent');
    // Sends 3 connections on `stop`; once all have landed, reports its drain and exits.
    let landed = 0;
    p.on('sent', (m: Record<string, unknown>) => {
      if (m.type === 'stop') for (let i = 0; i < 3; i++) p.say({ hitless: 1, type: 'conn', listener: 'http' }, new FakeHandle());
      if (m.type === 'landed' && ++landed === 3) {
        p.say({ hitless: 1, type: 'drained', drained: 2, forced: 1, upgraded: 1 });
        queueMicrotask(() => p.exit(0));
      }
    });
  };
  const old = workers(host, 1, 2);
  await Promise.all(old.ws.map((w) => w.waitReady(1000)));
  await settle();
  const routes = new HandoverRoutes();
  for (const w of old.ws) w.on('message', (m, h) => m.type === 'conn' && routes.receive(w, m.listener, h));
  const r = new Retirement({ workers: old.ws, receivers: () => next.ws, drainTimeout: 5000, host, routes });
  assert.equal(r.handover, true);
  const { ms, transitMs, ...counts } = await r.run();
  assert.ok(transitMs !== undefined && transitMs.max >= transitMs.median, 'how long the 6 connections spent in the master');
  assert.deepEqual(counts, { handedOver: 6, returned: 0, lost: 0, webSockets: 0, forced: 0, drained: 4, webSocketsClosed: 2, cut: 2 });
  assert.equal(ms, 0, 'the fake clock did not move');
  assert.deepEqual(next.procs.map((p) => p.sent.filter((s) => s.message.type === 'conn').length), [3, 3]);
  for (const p of old.procs) assert.deepEqual(p.sent.map((s) => s.message.type), ['stop', 'landed', 'landed', 'landed']);
  // No receiver of WebSockets: the stop says so, so hitless/ws does not pause them for a move bound to come back.
  for (const p of old.procs) assert.equal(p.sent[0]!.message.webSockets, false);
});

test('retire: the new workers take the connections in turn by default: the first until it holds its share of what the old workers said they have left, then the next', async () => {
  const host = new FakeHost();
  const next = await readyGeneration(host, 2, 2);
  const order: number[] = [];
  for (const w of next.ws) {
    const deliver = w.deliver.bind(w);
    w.deliver = (m, h) => {
      order.push(w.slot);
      return deliver(m, h);
    };
  }
  host.behave = () => (p) => {
    libraryWorker(p);
    p.removeAllListeners('sent');
    // Like the in-app library with window 1: 3 connections, one per `landed`, each saying how many are left.
    let left = 3;
    const send = (): void => p.say({ hitless: 1, type: 'conn', listener: 'http', left: --left }, new FakeHandle());
    p.on('sent', (m: Record<string, unknown>) => {
      if (m.type === 'stop') send();
      if (m.type === 'landed') {
        if (left > 0) send();
        else queueMicrotask(() => p.exit(0));
      }
    });
  };
  const old = workers(host, 1, 2);
  await Promise.all(old.ws.map((w) => w.waitReady(1000)));
  await settle();
  const routes = new HandoverRoutes();
  for (const w of old.ws) w.on('message', (m, h) => m.type === 'conn' && routes.receive(w, m.listener, h, m.left));
  const { ms: _ms, transitMs: _t, ...counts } = await new Retirement({ workers: old.ws, receivers: () => next.ws, drainTimeout: 5000, host, routes, spreadMs: 0 }).run();
  assert.equal(counts.handedOver, 6);
  assert.deepEqual(order, [0, 0, 0, 1, 1, 1], 'slot 0 took its 3 of the 6, then slot 1');
});

/** One old worker that sends a connection `after` ms of fake time past its stop; what it was told back, once `at` ms later. */
async function pacedOnce(spreadMs: number | undefined, after: number, at: number): Promise<string[]> {
  const host = new FakeHost();
  host.behave = () => libraryWorker;
  const next = workers(host, 2, 1);
  await Promise.all(next.ws.map((w) => w.waitReady(1000)));
  host.behave = () => (p) => {
    libraryWorker(p);
    p.removeAllListeners('sent'); // it stays up: the test says when it sends
  };
  const old = workers(host, 1, 1);
  await Promise.all(old.ws.map((w) => w.waitReady(1000)));
  await settle();
  const routes = new HandoverRoutes();
  const w = old.ws[0]!;
  w.on('message', (m, h) => m.type === 'conn' && routes.receive(w, m.listener, h));
  void new Retirement({ workers: old.ws, receivers: () => next.ws, drainTimeout: 60_000, host, routes, ...(spreadMs === undefined ? {} : { spreadMs }) }).run();
  await host.advance(after);
  old.procs[0]!.say({ hitless: 1, type: 'conn', listener: 'http' }, new FakeHandle());
  await host.advance(at);
  return old.procs[0]!.sent.map((x) => String(x.message.type));
}

test('retire: the hand-over is paced for `spreadMs` (handoverSpread): `landed` waits HANDOVER_SPREAD times the cycle; with 0, at once', async () => {
  // The connection's cycle took 10 ms: by default `landed` waits 48 × 10 ms.
  assert.deepEqual(await pacedOnce(undefined, 10, 479), ['stop'], 'still waiting after 479 ms');
  assert.deepEqual(await pacedOnce(undefined, 10, 480), ['stop', 'landed']);
  assert.deepEqual(await pacedOnce(0, 10, 0), ['stop', 'landed'], 'handoverSpread 0: full speed');
  // Past the spread time: at once.
  assert.deepEqual(await pacedOnce(2000, 2500, 0), ['stop', 'landed']);
});

test('retire: two retirements under way at once, each with its own deadline (the first one\'s SIGKILL spares the second one\'s workers)', async () => {
  const host = new FakeHost();
  host.behave = () => stubborn;
  const a = workers(host, 1, 1);
  const b = workers(host, 2, 2);
  await settle();
  const routes = new HandoverRoutes();
  const first = new Retirement({ workers: a.ws, receivers: undefined, drainTimeout: 1000, host, routes });
  const second = new Retirement({ workers: b.ws, receivers: undefined, drainTimeout: 5000, host, routes });
  assert.equal(first.handover, false);
  let secondDone = false;
  const firstRun = first.run();
  const secondRun = second.run().then((c) => ((secondDone = true), c));
  for (const p of [...a.procs, ...b.procs]) assert.deepEqual(p.signals, ['SIGTERM']);
  await host.advance(1000);
  assert.equal((await firstRun).forced, 1);
  assert.equal(secondDone, false);
  assert.equal(host.alive(2).length, 2, 'the second generation is still draining');
  await host.advance(4000);
  const c = await secondRun;
  assert.equal(c.forced, 2);
  assert.equal(c.ms, 5000);
});

test('retire: drain() resolves with none killed when every worker exits in time, and kills only what outlives the deadline', async () => {
  const host = new FakeHost();
  host.behave = (_g, slot) => (slot === 0 ? wellBehaved : stubborn);
  const { ws } = workers(host, 1, 2);
  await settle();
  for (const w of ws) w.stop();
  const killed = drain(ws, 3000, host);
  await host.advance(3000);
  assert.deepEqual(await killed, [ws[1]]);
  assert.deepEqual(await drain([], 1, host), []);
});

/** A receiver that is not a local worker (another master, say): takes everything, keeps what it got. */
class FakeSink implements Receiver {
  readonly got: ConnMessage[] = [];
  diedUnasked = false;
  open = true;
  takes(): boolean {
    return this.open;
  }
  deliver(message: ConnMessage): Promise<boolean> {
    if (!this.open) return Promise.resolve(false);
    this.got.push(message);
    return Promise.resolve(true);
  }
}

test('handover: a serving worker (not stopping) hands connections to a receiver that is not a worker; without a route they go back to it', async () => {
  const host = new FakeHost();
  host.behave = () => libraryWorker;
  const { ws: [w], procs: [p] } = workers(host, 1, 1);
  await w!.waitReady(1000);
  await settle();
  const sink = new FakeSink();
  const broker = new HandoverBroker(() => [sink]);
  const routes = new HandoverRoutes();
  w!.on('message', (m, h) => m.type === 'conn' && routes.receive(w!, m.listener, h));
  routes.open(w!, broker);
  const handed = new FakeHandle();
  p!.say({ hitless: 1, type: 'conn', listener: 'http' }, handed);
  await settle();
  routes.close(w!);
  const back = new FakeHandle();
  p!.say({ hitless: 1, type: 'conn', listener: 'http' }, back);
  await settle();
  await broker.settled();
  assert.deepEqual(sink.got, [{ hitless: 1, type: 'conn', listener: 'http' }]);
  assert.deepEqual(broker.counts, { handedOver: 1, returned: 0, lost: 0 });
  assert.deepEqual(p!.sent.map((s) => s.message), [
    { hitless: 1, type: 'landed' },
    { hitless: 1, type: 'conn', listener: 'http', returned: true },
    { hitless: 1, type: 'landed' },
  ]);
  assert.deepEqual([handed.closed, back.closed], [1, 1], "the master's copies are closed once they went on");
  assert.equal(w!.state, 'ready', 'the sender keeps serving');
});

test('handover: connections a receiver took count as lost once it died unasked; one that cannot take goes to the next', async () => {
  const host = new FakeHost();
  host.behave = () => libraryWorker;
  const { ws: [w] } = workers(host, 1, 1);
  await settle();
  const closed = new FakeSink();
  closed.open = false;
  const dies = new FakeSink();
  const broker = new HandoverBroker(() => [closed, dies]);
  await broker.forward(w!, 'http', new FakeHandle());
  await broker.forward(w!, 'http', new FakeHandle());
  dies.diedUnasked = true;
  await broker.settled();
  assert.equal(dies.got.length, 2);
  assert.deepEqual(broker.counts, { handedOver: 0, returned: 0, lost: 2 });
});

test('retire: WebSockets (ws-conn) go, message intact, to the next workers that said ws-hello, each acknowledged with ws-landed; with none, back to the sender', async () => {
  const host = new FakeHost();
  // Generation 2: slot 0 adopts WebSockets, slot 1 does not.
  host.behave = (_g, slot) => (p) => {
    libraryWorker(p);
    if (slot === 0) queueMicrotask(() => p.say({ hitless: 1, type: 'ws-hello', listeners: [] }));
  };
  const next = workers(host, 2, 2);
  await Promise.all(next.ws.map((w) => w.waitReady(1000)));
  await settle();
  const sent = { hitless: 1, type: 'ws-conn', listener: 'http', state: { nick: 'ann', count: 7 }, protocol: 'chat', head: 'gQ==' };
  host.behave = () => (p) => {
    libraryWorker(p);
    p.removeAllListeners('sent');
    let landed = 0;
    p.on('sent', (m: Record<string, unknown>) => {
      if (m.type === 'stop') for (let i = 0; i < 2; i++) p.say(sent, new FakeHandle());
      if (m.type === 'ws-landed' && ++landed === 2) queueMicrotask(() => p.exit(0));
    });
  };
  const old = workers(host, 1, 1);
  await old.ws[0]!.waitReady(1000);
  await settle();
  const routes = new HandoverRoutes();
  const wsRoutes = new WebSocketRoutes();
  const w = old.ws[0]!;
  w.on('message', (m, h) => m.type === 'ws-conn' && wsRoutes.receive(w, m, h));
  const r = new Retirement({
    workers: old.ws, receivers: () => next.ws, drainTimeout: 5000, host, routes,
    webSockets: { receivers: () => next.ws.filter((x) => x.webSockets !== undefined).map(webSocketReceiver), routes: wsRoutes },
  });
  const { ms: _ms, ...counts } = await r.run();
  assert.deepEqual(counts, { handedOver: 0, returned: 0, lost: 0, webSockets: 2, forced: 0, drained: 0, webSocketsClosed: 0, cut: 0 });
  assert.deepEqual(next.procs[0]!.sent.filter((s) => s.message.type === 'ws-conn').map((s) => s.message), [sent, sent]);
  assert.equal(next.procs[1]!.sent.filter((s) => s.message.type === 'ws-conn').length, 0, 'slot 1 never said ws-hello');
  assert.deepEqual(old.procs[0]!.sent.map((s) => s.message.type), ['stop', 'ws-landed', 'ws-landed']);
  assert.equal(old.procs[0]!.sent[0]!.message.webSockets, undefined, 'a receiver takes WebSockets: the stop lets them move');

  // No receiver: the WebSocket goes back to its sender, marked returned.
  const back = new HandoverBroker(() => []);
  const lonely = workers(host, 3, 1);
  await lonely.ws[0]!.waitReady(1000);
  await settle();
  wsRoutes.open(lonely.ws[0]!, back);
  wsRoutes.receive(lonely.ws[0]!, sent as never, new FakeHandle());
  await settle();
  await back.settled();
  assert.deepEqual(back.counts, { handedOver: 0, returned: 1, lost: 0 });
  assert.deepEqual(lonely.procs[0]!.sent.map((s) => s.message), [{ ...sent, returned: true }, { hitless: 1, type: 'ws-landed' }]);
});

test('hand-over spread: a sender that says how many it has left is paced to finish within spreadMs, never slower than the spread', async () => {
  let t = 0;
  const waits: number[] = [];
  const receiver: Receiver = { takes: () => true, deliver: async () => true, diedUnasked: false };
  const sender: Receiver = { takes: () => false, deliver: async () => false, diedUnasked: false };
  const broker = new HandoverBroker(() => [receiver], () => t, { now: () => t, wait: async (ms: number) => { waits.push(ms); t += ms; }, spread: 48, spreadMs: 5000 });
  const move = async (cycle: number, left: number): Promise<void> => {
    t += cycle;
    await broker.forward(sender, 'http', new FakeHandle());
    await broker.paced(sender, left);
  };
  await move(2, 3); // few left: the spread's own pace, 48 × 2 ms
  await move(2, 999); // (5000 - 98 - 999 × 2) / 1000: quicker, so that 999 more fit in the time left
  await move(2, 0); // the last one: the spread's pace again
  assert.deepEqual(waits.map((w) => Math.round(w * 1000) / 1000), [96, 2.902, 96]);
  for (let left = 500; left > 0; left--) await move(2, left - 1);
  assert.ok(t <= 5000 + 2, `500 more moved by the end of the spread, not after it (${t} ms)`);
  assert.equal(waits.length, 503, 'each of them paced');
  await move(2, 10);
  assert.equal(waits.length, 503, 'past spreadMs: at once');
});

test('hand-over in turn: the first receiver takes its share of what the senders said they have left, then the next; without their counts, or with fill off, round robin', async () => {
  const log: string[] = [];
  const receiver = (name: string): Receiver & { open: boolean } => ({
    open: true,
    takes() { return this.open; },
    async deliver() { log.push(name); return true; },
    diedUnasked: false,
  });
  const sender = (): Receiver => ({ takes: () => false, deliver: async () => false, diedUnasked: false });
  const pacing = { now: () => 0, wait: async () => {}, spread: 0, spreadMs: 5000, fill: true };
  const [a, b] = [receiver('a'), receiver('b')];
  const [s1, s2] = [sender(), sender()];
  const inTurn = new HandoverBroker(() => [a, b], () => 0, pacing);
  // Two old workers, 4 connections each, taking turns: 8 in all, 4 for each new worker.
  for (let left = 3; left >= 0; left--) {
    await inTurn.forward(s1, 'http', new FakeHandle(), undefined, left);
    await inTurn.forward(s2, 'http', new FakeHandle(), undefined, left);
  }
  assert.deepEqual(log.splice(0), ['a', 'a', 'a', 'a', 'b', 'b', 'b', 'b']);
  assert.deepEqual(inTurn.counts, { handedOver: 8, returned: 0, lost: 0 });

  // A receiver that stops taking: the others share what is left.
  const [c, d, e] = [receiver('c'), receiver('d'), receiver('e')];
  const gone = new HandoverBroker(() => [c, d, e], () => 0, pacing);
  for (let left = 5; left >= 0; left--) {
    if (left === 3) c.open = false;
    await gone.forward(s1, 'http', new FakeHandle(), undefined, left);
  }
  assert.deepEqual(log.splice(0), ['c', 'c', 'd', 'd', 'd', 'e'], 'c took 2 of its 2, then d filled to its half of 6, then e');

  const unsaid = new HandoverBroker(() => [a, b], () => 0, pacing);
  for (let i = 0; i < 4; i++) await unsaid.forward(s1, 'http', new FakeHandle());
  assert.deepEqual(log.splice(0), ['a', 'b', 'a', 'b'], 'no counts: round robin');
  const off = new HandoverBroker(() => [a, b], () => 0, { ...pacing, fill: false });
  for (let left = 3; left >= 0; left--) await off.forward(s1, 'http', new FakeHandle(), undefined, left);
  assert.deepEqual(log.splice(0), ['a', 'b', 'a', 'b'], 'fill off: round robin');
});

test('hand-over spread: while spreading, `landed` waits as long as the connection\'s cycle took; after spreadMs, or with spread 0, at once', async () => {
  let t = 0;
  const waits: number[] = [];
  const receiver: Receiver = { takes: () => true, deliver: async () => true, diedUnasked: false };
  const sender: Receiver = { takes: () => false, deliver: async () => false, diedUnasked: false };
  const pacing = { now: () => t, wait: async (ms: number) => { waits.push(ms); t += ms; }, spread: 1, spreadMs: 3000 };
  const broker = new HandoverBroker(() => [receiver], () => t, pacing);
  const move = async (after: number): Promise<void> => {
    t += after; // the old worker's part and the master's, since its previous `landed`
    await broker.forward(sender, 'http', new FakeHandle());
    await broker.paced(sender);
  };
  await move(10);
  await move(4);
  t = 5000;
  await move(2);
  assert.deepEqual(waits, [10, 4], 'as long again as each cycle, then none after spreadMs');
  const full = new HandoverBroker(() => [receiver], () => t, { ...pacing, spread: 0 });
  await full.forward(sender, 'http', new FakeHandle());
  await full.paced(sender);
  assert.deepEqual(waits, [10, 4], 'spread 0: full speed');
});
