/**
 * Connection hand-over at scale: 2000 idle keep-alive connections move from worker A to
 * worker B through the test broker, one handle at a time. Asserts that every one of them is
 * then answered by B on the same connection; the time it took is reported as a figure (a
 * diagnostic line), never asserted: it depends on the machine and its load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { RawConnection } from '../helpers/http.js';
import { Broker, Channel, holdListeningSocket } from './helpers/broker.js';
import { spawnFixture } from './helpers/child.js';
import type { ShutdownResult } from '../../src/index.js';

const COUNT = 2000;

test(`hand-over of ${COUNT} idle keep-alive connections: all answered by the new worker on their connection afterwards (time reported, not asserted)`, async (t) => {
  const { fd, port } = holdListeningSocket(t);
  const start = (): Promise<{ fixture: ReturnType<typeof spawnFixture>; channel: Channel }> => {
    const fixture = spawnFixture(t, 'handover-worker', {
      shim: true,
      extra: [fd, 'pipe', 'ipc'],
      env: { LISTEN_FDS: '1', LISTEN_FDNAMES: 'http', HITLESS_READY_FD: '4', HITLESS_CHANNEL: '1', SHUTDOWN_TIMEOUT: '30000' },
    });
    const channel = new Channel(fixture.child);
    return fixture.next('ready').then(() => ({ fixture, channel }));
  };
  const a = await start();
  const conns: RawConnection[] = [];
  t.after(() => conns.forEach((c) => c.destroy()));
  for (let i = 0; i < COUNT; i++) conns.push(await RawConnection.connect(port));
  const pidA = String(a.fixture.child.pid);
  for (const c of conns) assert.equal((await c.request('GET', '/first')).headers['x-pid'], pidA);
  const b = await start();
  const broker = new Broker(a.fixture.child, b.fixture.child);

  const started = performance.now();
  a.channel.stop(true);
  const done = await a.channel.next('handover-done');
  const handedOverMs = performance.now() - started;
  await broker.handled(COUNT);
  const receivedMs = performance.now() - started;
  const { result } = await a.fixture.next<{ result: ShutdownResult }>('stopped');
  assert.equal((await a.fixture.exited).code, 0);
  assert.deepEqual([done.handedOver, done.kept, result.handedOver, broker.forwarded], [COUNT, 0, COUNT, COUNT]);

  const pidB = String(b.fixture.child.pid);
  const answers = await Promise.all(conns.map((c) => c.request('GET', '/after')));
  assert.equal(answers.filter((r) => r.headers['x-pid'] === pidB && r.status === 200).length, COUNT);
  assert.equal(conns.filter((c) => c.socket.destroyed || c.socket.readableEnded).length, 0);
  t.diagnostic(
    `Node ${process.version}: ${COUNT} connections handed over by A in ${Math.round(handedOverMs)} ms ` +
      `(${Math.round((handedOverMs * 1000) / COUNT)} µs each; A's drain ${result.durationMs} ms), ` +
      `all in B after ${Math.round(receivedMs)} ms (through the test broker)`,
  );
});
