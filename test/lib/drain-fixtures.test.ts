/**
 * The three requests every graceful drain must get right, each against a real child
 * process stopped with a real SIGTERM: the slow one, the one racing the drain on a
 * kept-alive connection, and the one that outlives the deadline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawConnection } from '../helpers/http.js';
import { spawnFixture, stoppedWithRequestInFlight } from './helpers/child.js';
import type { ShutdownResult } from '../../src/index.js';

test('slow request: completes during the drain, answered with Connection: close, then the worker exits 0', async (t) => {
  const { f, conn } = await stoppedWithRequestInFlight(t, 'slow', { HOOKS: 'ok', SHUTDOWN_TIMEOUT: '60000' });
  f.tell('release');
  const res = await conn.response();
  assert.equal(res.status, 200);
  assert.equal(res.body, 'slow done');
  assert.equal(res.headers.connection, 'close');
  const closed = await conn.closed;
  assert.equal(closed.error, undefined, 'the connection ends cleanly, never reset');
  const { result } = await f.next<{ result: ShutdownResult }>('hook');
  assert.equal(result.drained.requests, 1);
  assert.equal(result.timedOut, false);
  assert.deepEqual(result.forced, { requests: 0, connections: 0, sessions: 0, upgraded: 0 });
  assert.equal((await f.exited).code, 0);
});

test('request racing the drain on a kept-alive connection (stoppable #15): answered with Connection: close, then closed, never reset', async (t) => {
  // A long idle grace makes "the request arrives during the grace" certain on a busy machine.
  const f = spawnFixture(t, 'server', { env: { HOOKS: 'ok', IDLE_GRACE: '60000', SHUTDOWN_TIMEOUT: '120000' } });
  const { port } = await f.next<{ port: number }>('listening');
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  const first = await conn.request('GET', '/fast');
  assert.equal(first.headers.connection, 'keep-alive');
  f.child.kill('SIGTERM');
  await f.next('signal');
  const raced = await conn.request('GET', '/fast');
  assert.equal(raced.status, 200);
  assert.equal(raced.body, 'ok');
  assert.equal(raced.headers.connection, 'close');
  const closed = await conn.closed;
  assert.equal(closed.error, undefined);
  assert.equal(closed.ended, true, 'the server ended the connection after answering');
  const { result } = await f.next<{ result: ShutdownResult }>('hook');
  assert.equal(result.drained.requests, 1);
  assert.equal(result.timedOut, false, 'resolved when the connection closed, not at the deadline');
  assert.equal((await f.exited).code, 0);
});

test('request outliving the deadline: destroyed at timeout and counted as forced; the worker still exits 0', async (t) => {
  const f = spawnFixture(t, 'server', { env: { HOOKS: 'ok', SHUTDOWN_TIMEOUT: '300' } });
  const { port } = await f.next<{ port: number }>('listening');
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  conn.send('GET', '/hang');
  await f.next('hang-started');
  f.child.kill('SIGTERM');
  await f.next('signal');
  await conn.closed;
  await assert.rejects(conn.response(), 'no response ever came');
  const { result } = await f.next<{ result: ShutdownResult }>('hook');
  assert.equal(result.timedOut, true);
  assert.equal(result.forced.requests, 1);
  assert.equal(result.forced.connections, 1);
  assert.equal((await f.exited).code, 0);
});
