/**
 * A move (issue 18), against real worker processes on a real socket: the master asks a
 * worker that keeps serving to hand a part of its keep-alive connections over (a canary
 * starts beside it). The test broker (helpers/broker.ts) plays the master and forwards what
 * worker A sends to worker B. Every client is a raw keep-alive connection opened once, so
 * "answered by B" means the very connection A answered before, moved without a close.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { RawConnection, type RawResponse } from '../helpers/http.js';
import { Broker, Channel, holdListeningSocket } from './helpers/broker.js';
import { spawnFixture, type Fixture } from './helpers/child.js';
import type { ShutdownResult } from '../../src/index.js';

interface Worker {
  fixture: Fixture;
  channel: Channel;
  pid: number;
}

async function startWorker(t: TestContext, fd: number): Promise<Worker> {
  const fixture = spawnFixture(t, 'handover-worker', {
    shim: true,
    extra: [fd, 'pipe', 'ipc'],
    env: { LISTEN_FDS: '1', LISTEN_FDNAMES: 'http', HITLESS_READY_FD: '4', HITLESS_CHANNEL: '1', SHUTDOWN_TIMEOUT: '10000' },
  });
  const channel = new Channel(fixture.child);
  const [hello] = await Promise.all([channel.next('hello'), fixture.next('ready')]);
  assert.equal(hello.moves, true, 'the library says it can move connections while it serves');
  return { fixture, channel, pid: fixture.child.pid! };
}

const pidOf = (res: RawResponse): number => Number(res.headers['x-pid']);

/** Worker A with `count` keep-alive connections it answered once each, and worker B on the same socket. */
async function setup(t: TestContext, count: number) {
  const { fd, port } = holdListeningSocket(t);
  const a = await startWorker(t, fd);
  const conns: RawConnection[] = [];
  for (let i = 0; i < count; i++) conns.push(await RawConnection.connect(port));
  t.after(() => conns.forEach((c) => c.destroy()));
  const first = await Promise.all(conns.map((c) => c.request('GET', '/first')));
  assert.deepEqual(new Set(first.map(pidOf)), new Set([a.pid]));
  const b = await startWorker(t, fd);
  return { a, b, conns };
}

function move(w: Worker, ask: Record<string, number>): void {
  w.fixture.child.send({ hitless: 1, type: 'move', ...ask });
}

function assertStillOpen(conns: RawConnection[]): void {
  assert.equal(conns.filter((c) => c.socket.destroyed || c.socket.readableEnded).length, 0, 'a client connection was closed');
}

test('move: a third of A\'s 30 idle keep-alive connections go to B while A keeps serving the others; each is answered on its own connection, none re-opened', async (t) => {
  const { a, b, conns } = await setup(t, 30);
  const broker = new Broker(a.fixture.child, b.fixture.child, { pace: true });
  move(a, { share: 1 / 3, window: 2, within: 5000 });
  const done = await a.channel.next('move-done');
  assert.deepEqual([done.moved, done.kept], [10, 0]);
  await broker.handled(10);
  assert.ok(broker.maxInTransit >= 1 && broker.maxInTransit <= 2, `paced by the window like a stop: at most 2 on their way, saw ${broker.maxInTransit}`);
  const after = await Promise.all(conns.map((c) => c.request('GET', '/after')));
  const byB = after.filter((r) => pidOf(r) === b.pid).length;
  assert.equal(byB, 10);
  assert.equal(after.filter((r) => pidOf(r) === a.pid).length, 20, 'A serves the rest');
  for (const r of after) assert.equal(r.headers.connection, 'keep-alive', 'nobody is told to close');
  assertStillOpen(conns);
  // A was never stopping: its drain is still to come, and a later stop hands the rest over too.
  a.channel.stop(true);
  const handover = await a.channel.next('handover-done');
  assert.equal(handover.handedOver, 20);
  const { result } = await a.fixture.next<{ result: ShutdownResult }>('stopped');
  assert.deepEqual([result.handedOver, result.forced.connections], [20, 0]);
  const last = await Promise.all(conns.map((c) => c.request('GET', '/last')));
  assert.deepEqual(new Set(last.map(pidOf)), new Set([b.pid]));
});

test('move: a connection busy when asked moves at its next request boundary: its response is keep-alive (no Connection: close), the next request is B\'s', async (t) => {
  const { a, b, conns: [conn] } = await setup(t, 1);
  const broker = new Broker(a.fixture.child, b.fixture.child, { pace: true });
  conn!.send('GET', '/slow');
  await a.fixture.next('slow-started');
  move(a, { count: 1, window: 2, within: 10_000 });
  // Ordering probe: A has handled `move` once it answers a later ping.
  a.fixture.child.send({ ping: 1 });
  await new Promise<void>((resolve) => a.fixture.child.once('message', () => resolve()));
  assert.equal(broker.receivedCount, 0, 'a busy connection is never moved mid-request');
  a.fixture.tell('release');
  const slow = await conn!.response();
  assert.deepEqual([pidOf(slow), slow.headers.connection], [a.pid, 'keep-alive']);
  const done = await a.channel.next('move-done');
  assert.deepEqual([done.moved, done.kept], [1, 0]);
  assert.equal(pidOf(await conn!.request('GET', '/next')), b.pid);
  assertStillOpen([conn!]);
});

test('move: a connection still busy after `within` stays with A (kept), which answers it and the next request on it', async (t) => {
  const { a, b, conns: [conn] } = await setup(t, 1);
  const broker = new Broker(a.fixture.child, b.fixture.child, { pace: true });
  conn!.send('GET', '/slow');
  await a.fixture.next('slow-started');
  move(a, { count: 1, window: 2, within: 100 });
  const done = await a.channel.next('move-done');
  assert.deepEqual([done.moved, done.kept], [0, 1]);
  a.fixture.tell('release');
  assert.equal(pidOf(await conn!.response()), a.pid);
  assert.equal(pidOf(await conn!.request('GET', '/next')), a.pid);
  assert.equal(broker.receivedCount, 0);
  assertStillOpen([conn!]);
});

test('move-end: the picks not sent yet stay with A and serve on; the one in transit lands at B', async (t) => {
  const { a, b, conns } = await setup(t, 10);
  // Nothing is forwarded (nor `landed`) until release(): a window of 1 holds the move after one send.
  const broker = new Broker(a.fixture.child, b.fixture.child, { pace: true, hold: true });
  const first = new Promise<void>((resolve) => a.fixture.child.on('message', () => broker.receivedCount === 1 && resolve()));
  move(a, { share: 1, window: 1, within: 10_000 });
  await first;
  a.fixture.child.send({ hitless: 1, type: 'move-end' });
  const done = await a.channel.next('move-done');
  assert.deepEqual([done.moved, done.kept], [1, 9]);
  broker.release();
  await broker.handled(1);
  const after = await Promise.all(conns.map((c) => c.request('GET', '/after')));
  assert.equal(after.filter((r) => pidOf(r) === b.pid).length, 1);
  assert.equal(after.filter((r) => pidOf(r) === a.pid).length, 9);
  assertStillOpen(conns);
});

test('a stop during a move takes it over: the move reports what it moved, the stop hands over everything else, nothing is sent twice', async (t) => {
  const { a, b, conns } = await setup(t, 20);
  const broker = new Broker(a.fixture.child, b.fixture.child, { pace: true, hold: true });
  const first = new Promise<void>((resolve) => a.fixture.child.on('message', () => broker.receivedCount === 1 && resolve()));
  move(a, { share: 0.5, window: 1, within: 10_000 });
  await first;
  a.channel.stop(true, 1);
  const done = await a.channel.next('move-done');
  assert.equal(done.moved, 1);
  broker.release();
  const handover = await a.channel.next('handover-done');
  assert.equal(handover.handedOver, 19, 'the stop counts what it sent; the move counted its own');
  await broker.handled(20);
  assert.equal(broker.forwarded, 20);
  assert.equal((await a.fixture.exited).code, 0);
  const after = await Promise.all(conns.map((c) => c.request('GET', '/after')));
  assert.deepEqual(new Set(after.map(pidOf)), new Set([b.pid]));
  assertStillOpen(conns);
});
