/**
 * Connection hand-over (worker channel v1), against real worker processes on a real socket:
 * a test broker (test/lib/helpers/broker.ts) plays the master, holding the listening socket
 * without accepting and forwarding the `conn` handles worker A hands over to worker B. Every
 * client is a raw keep-alive connection opened once: "answered on the same connection" means
 * the very socket that A answered before gets B's answer after, without a close in between.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { RawConnection, type RawResponse } from '../helpers/http.js';
import { Broker, Channel, holdListeningSocket } from './helpers/broker.js';
import { spawnFixture, type Fixture } from './helpers/child.js';
import { deferred } from './helpers/servers.js';
import type { ShutdownResult } from '../../src/index.js';

interface Worker {
  fixture: Fixture;
  channel: Channel;
  pid: number;
}

async function startWorker(t: TestContext, fd: number, env: Record<string, string> = {}): Promise<Worker> {
  const fixture = spawnFixture(t, 'handover-worker', {
    shim: true,
    extra: [fd, 'pipe', 'ipc'],
    env: { LISTEN_FDS: '1', LISTEN_FDNAMES: 'http', HITLESS_READY_FD: '4', HITLESS_CHANNEL: '1', SHUTDOWN_TIMEOUT: '10000', ...env },
  });
  const channel = new Channel(fixture.child);
  const [hello] = await Promise.all([channel.next('hello'), fixture.next('ready')]);
  assert.deepEqual([hello.handover, hello.listeners, hello.pid], [true, ['http'], fixture.child.pid]);
  return { fixture, channel, pid: fixture.child.pid! };
}

/** Opens `count` keep-alive connections, counting every TCP connect. */
async function openConnections(t: TestContext, port: number, count: number): Promise<{ conns: RawConnection[]; connects: () => number }> {
  let connects = 0;
  const conns: RawConnection[] = [];
  for (let i = 0; i < count; i++) {
    const conn = await RawConnection.connect(port);
    connects++;
    conns.push(conn);
  }
  t.after(() => {
    for (const conn of conns) conn.destroy();
  });
  return { conns, connects: () => connects };
}

const pidOf = (res: RawResponse): number => Number(res.headers['x-pid']);

/** Worker A on a held socket, with `count` keep-alive connections that each had one answer from A. */
async function connectedToA(t: TestContext, count: number) {
  const { fd, port } = holdListeningSocket(t);
  const a = await startWorker(t, fd);
  const { conns, connects } = await openConnections(t, port, count);
  const first = await Promise.all(conns.map((c) => c.request('GET', '/first')));
  assert.deepEqual(new Set(first.map(pidOf)), new Set([a.pid]), 'every connection belongs to worker A');
  return { fd, a, conns, connects };
}

function assertStillOpen(conns: RawConnection[]): void {
  const closed = conns.filter((c) => c.socket.destroyed || c.socket.readableEnded).length;
  assert.equal(closed, 0, `${closed} client connections were closed`);
}

test('hand-over: 200 idle keep-alive connections move to the new worker; each next request is answered there on the same connection, no reconnect', async (t) => {
  const { fd, a, conns, connects } = await connectedToA(t, 200);

  const b = await startWorker(t, fd);
  const broker = new Broker(a.fixture.child, b.fixture.child);
  a.channel.stop(true);
  const done = await a.channel.next('handover-done');
  assert.deepEqual([done.handedOver, done.kept], [200, 0]);
  const { result } = await a.fixture.next<{ result: ShutdownResult }>('stopped');
  assert.equal(result.handedOver, 200);
  assert.deepEqual([result.drained.connections, result.forced.connections, result.timedOut], [0, 0, false]);
  assert.equal((await a.fixture.exited).code, 0);
  await broker.handled(200);
  assert.equal(broker.forwarded, 200);

  const after = await Promise.all(conns.map((c) => c.request('GET', '/after')));
  assert.deepEqual(new Set(after.map((r) => r.status)), new Set([200]));
  assert.deepEqual(new Set(after.map(pidOf)), new Set([b.pid]), 'worker B answers on the connections A had');
  assert.equal(after[0]!.body, `${b.pid} GET /after 0`);
  assertStillOpen(conns);
  assert.equal(connects(), 200, 'no client opened a new connection');
});

test('hand-over races with requests: 200 connections send (half of them two pipelined requests) as A stops reading them or while their fd is on the way; all 300 are answered on their connection, by A before it let go or by B', async (t) => {
  const { fd, a, conns, connects } = await connectedToA(t, 200);
  const b = await startWorker(t, fd);
  const broker = new Broker(a.fixture.child, b.fixture.child);

  // The first 20 send with the stop (racing with A stopping to read them). Connection i >= 20
  // sends once the broker forwarded i connections: A, which hands them over in order and runs
  // ahead of the broker, has usually let go of it by then, so its bytes land in the kernel
  // while its fd is on the way (in the broker or at B's door). Half of them send two
  // pipelined requests in one write; each answer must be its own.
  const turns = conns.map(() => deferred());
  broker.onForward = (n) => turns[n]?.resolve();
  a.channel.stop(true);
  for (const turn of turns.slice(0, 20)) turn.resolve();
  const racing = conns.map(async (c, i): Promise<Array<[string, RawResponse]>> => {
    await turns[i]!.promise;
    if (i % 2 === 0) {
      c.send('POST', `/race-${i}`, {}, 'x'.repeat(i));
      return [[`POST /race-${i} ${i}`, await c.response()]];
    }
    c.socket.write(`GET /pipe-${i}-1 HTTP/1.1\r\nHost: x\r\n\r\nGET /pipe-${i}-2 HTTP/1.1\r\nHost: x\r\n\r\n`);
    const first = await c.response();
    return [[`GET /pipe-${i}-1 0`, first], [`GET /pipe-${i}-2 0`, await c.response()]];
  });
  const answers = (await Promise.all(racing)).flat();
  assert.equal(answers.length, 300);
  for (const [asked, res] of answers) {
    assert.equal(res.status, 200);
    assert.ok([a.pid, b.pid].includes(pidOf(res)), `answered by ${pidOf(res)}`);
    assert.equal(res.body, `${pidOf(res)} ${asked}`);
  }
  const byA = answers.filter(([, r]) => pidOf(r) === a.pid).length;
  t.diagnostic(`answered by A during the hand-over: ${byA}, by B: ${answers.length - byA}`);

  const done = await a.channel.next('handover-done');
  assert.equal(done.handedOver, 200);
  assert.equal((await a.fixture.exited).code, 0);
  const after = await Promise.all(conns.map((c) => c.request('GET', '/after')));
  assert.deepEqual(new Set(after.map(pidOf)), new Set([b.pid]));
  assertStillOpen(conns);
  assert.equal(connects(), 200);
});

test('hand-over waits for a request in flight: A answers it (keep-alive, not Connection: close), then the connection moves and B answers the next', async (t) => {
  const { fd, port } = holdListeningSocket(t);
  const a = await startWorker(t, fd);
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  assert.equal(pidOf(await conn.request('GET', '/first')), a.pid);
  conn.send('GET', '/slow');
  await a.fixture.next('slow-started');

  const b = await startWorker(t, fd);
  new Broker(a.fixture.child, b.fixture.child);
  a.channel.stop(true);
  await a.fixture.next('stop-received');
  a.fixture.tell('release');
  const slow = await conn.response();
  assert.equal(pidOf(slow), a.pid);
  assert.equal(slow.body, `${a.pid} GET /slow 0`);
  assert.equal(slow.headers.connection, 'keep-alive', 'a connection that will move is not told to close');

  const done = await a.channel.next('handover-done');
  assert.deepEqual([done.handedOver, done.kept], [1, 0]);
  const next = await conn.request('GET', '/next');
  assert.equal(pidOf(next), b.pid);
  const { result } = await a.fixture.next<{ result: ShutdownResult }>('stopped');
  assert.deepEqual([result.handedOver, result.drained.requests, result.drained.connections], [1, 1, 0]);
  assertStillOpen([conn]);
});

test('hand-over of pipelined and half-sent requests: A answers everything it already read (two pipelined requests, a request whose headers were half-read), then each connection moves', async (t) => {
  const { fd, port } = holdListeningSocket(t);
  const a = await startWorker(t, fd);
  const pipelined = await RawConnection.connect(port);
  const half = await RawConnection.connect(port);
  const probe = await RawConnection.connect(port);
  t.after(() => [pipelined, half, probe].forEach((c) => c.destroy()));
  for (const c of [pipelined, half, probe]) assert.equal(pidOf(await c.request('GET', '/first')), a.pid);

  // Two requests in one write; the first is held, the second waits behind it.
  pipelined.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n');
  await a.fixture.next('slow-started');
  // Half of the headers; A reads them before the stop (checked, not assumed).
  half.socket.write('POST /half HTTP/1.1\r\nHost: x\r\nContent-Len');
  const bytes = JSON.parse((await probe.request('GET', '/bytes')).body) as Record<string, number>;
  const firstRequest = 'GET /first HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.length;
  const halfHeaders = 'POST /half HTTP/1.1\r\nHost: x\r\nContent-Len'.length;
  assert.equal(bytes[String(half.socket.localPort)], firstRequest + halfHeaders, 'A has read the half-sent headers before the stop');

  const b = await startWorker(t, fd);
  new Broker(a.fixture.child, b.fixture.child);
  a.channel.stop(true);
  await a.fixture.next('stop-received');

  half.socket.write('gth: 5\r\n\r\nhello');
  const halfAnswer = await half.response();
  assert.equal(halfAnswer.body, `${a.pid} POST /half 5`, 'the half-read request is finished by A, not lost in the move');
  a.fixture.tell('release');
  const [slow, second] = [await pipelined.response(), await pipelined.response()];
  assert.deepEqual([slow.body, second.body], [`${a.pid} GET /slow 0`, `${a.pid} GET /second 0`]);

  const done = await a.channel.next('handover-done');
  assert.deepEqual([done.handedOver, done.kept], [3, 0]);
  for (const c of [pipelined, half, probe]) {
    const next = await c.request('GET', '/next');
    assert.equal(pidOf(next), b.pid);
  }
  assertStillOpen([pipelined, half, probe]);
});

test('paced hand-over (the master\'s window): at most `window` connections wait at the master; the others stay with A, which answers their requests meanwhile, and all move once it says `landed`', async (t) => {
  const { fd, a, conns, connects } = await connectedToA(t, 100);
  const b = await startWorker(t, fd);
  // A slow receiving side: nothing moves on until release().
  const broker = new Broker(a.fixture.child, b.fixture.child, { pace: true, hold: true });
  const sentTwo = new Promise<void>((resolve) => {
    a.fixture.child.on('message', () => {
      if (broker.receivedCount === 2) resolve();
    });
  });
  a.channel.stop(true, 2);
  await sentTwo;
  // Two connections are at the broker, unread by anyone; every other one is still A's and
  // answered by A at once (on the same connection, keep-alive).
  const meanwhile = await Promise.all(conns.slice(50).map((c) => c.request('GET', '/meanwhile')));
  assert.deepEqual(new Set(meanwhile.map(pidOf)), new Set([a.pid]), 'connections waiting for their turn are served by A');
  assert.equal(broker.receivedCount, 2, 'nothing beyond the window was sent while nothing landed');

  broker.release();
  const done = await a.channel.next('handover-done');
  assert.equal(done.handedOver, 100);
  assert.equal((await a.fixture.exited).code, 0);
  assert.equal(broker.maxInTransit, 2, 'the window bounds what waits at the master');
  const after = await Promise.all(conns.map((c) => c.request('GET', '/after')));
  assert.deepEqual(new Set(after.map(pidOf)), new Set([b.pid]));
  assertStillOpen(conns);
  assert.equal(connects(), 100);
});

test('a stopping worker reports its traffic totals as its drain ends, before `drained`: what it answered in its last second reaches the master (regression: it exited with up to a second of requests unreported)', async (t) => {
  const { fd, port } = holdListeningSocket(t);
  const a = await startWorker(t, fd);
  const order: Array<{ type: string; requests?: Record<string, number> }> = [];
  a.fixture.child.on('message', (m: { hitless?: number; type: string; requests?: Record<string, number> }) => {
    if (m?.hitless === 1) order.push(m);
  });
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  for (let i = 0; i < 50; i++) assert.equal((await conn.request('GET', `/r${i}`)).status, 200);
  // At once: the 1 s report has almost surely not come since the last answer.
  a.channel.stop(false);
  await a.channel.next('drained');
  const drainedAt = order.findIndex((m) => m.type === 'drained');
  const last = order.slice(0, drainedAt).reverse().find((m) => m.type === 'stats');
  assert.equal(last?.requests?.['2xx'], 50, `the last stats before drained: ${JSON.stringify(last)}`);
});

test('a client that goes away with pipelined requests unanswered leaves no request in flight in the worker\'s report (regression: on Node 20 and 22 `busy` stayed 1 for good, and `hitless status` showed a request in flight)', async (t) => {
  const { fd, port } = holdListeningSocket(t);
  const a = await startWorker(t, fd);
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  conn.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /r2 HTTP/1.1\r\nHost: x\r\n\r\nGET /r3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await a.fixture.next('slow-started');
  conn.destroy();
  a.fixture.tell('release');
  // The report comes every second: the busy count must come back to 0 within a few.
  let busy: unknown;
  for (let i = 0; i < 10 && busy !== 0; i++) busy = (await a.channel.next('stats')).busy;
  assert.equal(busy, 0);
});
