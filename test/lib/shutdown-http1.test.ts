/**
 * shutdown() on node:http with real sockets and raw HTTP bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { shutdown, track, isHitlessError } from '../../src/index.js';
import { RawConnection } from '../helpers/http.js';
import { deferred, listenLocal } from './helpers/servers.js';

const none = { requests: 0, connections: 0, sessions: 0, upgraded: 0 };

test('shutdown() on a server that never listened resolves at once with zero counts', async () => {
  const server = http.createServer();
  track(server, { signals: false });
  const result = await shutdown(server);
  assert.deepEqual(result.drained, none);
  assert.deepEqual(result.forced, none);
  assert.equal(result.timedOut, false);
  const untracked = await shutdown(http.createServer());
  assert.deepEqual(untracked.forced, none);
});

test('shutdown() twice returns the same promise', async (t) => {
  const server = http.createServer((_req, res) => res.end('ok'));
  track(server, { signals: false });
  await listenLocal(t, server);
  const first = shutdown(server);
  assert.equal(shutdown(server, { timeout: 1 }), first);
  await first;
});

test('stops accepting but keeps in-flight work: an in-flight response whose headers are not sent gets Connection: close', async (t) => {
  const release = deferred();
  const started = deferred();
  const server = http.createServer(async (_req, res) => {
    started.resolve();
    await release.promise;
    res.end('late');
  });
  track(server, { signals: false });
  const port = await listenLocal(t, server);
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  conn.send('GET', '/');
  await started.promise;
  const done = shutdown(server, { timeout: 60_000 });
  assert.equal(server.listening, false, 'the listening handle is closed at once');
  release.resolve();
  const res = await conn.response();
  assert.equal(res.body, 'late');
  assert.equal(res.headers.connection, 'close');
  assert.equal((await conn.closed).error, undefined);
  const result = await done;
  assert.equal(result.drained.requests, 1);
  assert.equal(result.drained.connections, 1);
  assert.equal(result.timedOut, false);
});

test('idle keep-alive connection is closed after the idle grace, and shutdown resolves without waiting the full timeout (http-terminator #16)', async (t) => {
  const server = http.createServer((_req, res) => res.end('ok'));
  track(server, { signals: false });
  const port = await listenLocal(t, server);
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  assert.equal((await conn.request('GET', '/')).headers.connection, 'keep-alive');
  const result = await shutdown(server, { idleGrace: 20, timeout: 120_000 });
  assert.equal(result.timedOut, false);
  assert.equal(result.drained.connections, 1);
  assert.deepEqual(result.forced, none);
  assert.equal((await conn.closed).error, undefined);
});

test('a request arriving during the idle grace cancels the idle close and is answered with Connection: close (stoppable #15)', async (t) => {
  const server = http.createServer((_req, res) => res.end('ok'));
  track(server, { signals: false });
  const port = await listenLocal(t, server);
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  await conn.request('GET', '/');
  const done = shutdown(server, { idleGrace: 60_000, timeout: 120_000 });
  const res = await conn.request('GET', '/again');
  assert.equal(res.status, 200);
  assert.equal(res.headers.connection, 'close');
  const closed = await conn.closed;
  assert.equal(closed.error, undefined);
  assert.equal(closed.ended, true);
  const result = await done;
  assert.equal(result.timedOut, false);
  assert.equal(result.drained.requests, 1);
});

test('a response that never ends is destroyed at the deadline and counted as forced', async (t) => {
  const started = deferred();
  const server = http.createServer((req, res) => (req.url === '/hang' ? started.resolve() : res.end('ok')));
  track(server, { signals: false });
  const port = await listenLocal(t, server);
  const idle = await RawConnection.connect(port);
  const busy = await RawConnection.connect(port);
  t.after(() => (idle.destroy(), busy.destroy()));
  await idle.request('GET', '/'); // the server has surely accepted it
  busy.send('GET', '/hang');
  await started.promise;
  const result = await shutdown(server, { timeout: 50, idleGrace: 60_000 });
  assert.equal(result.timedOut, true);
  assert.deepEqual(result.forced, { requests: 1, connections: 2, sessions: 0, upgraded: 0 });
  await busy.closed;
  await idle.closed;
});

test('untracked server: falls back to closeIdleConnections() after the grace and resolves when the server closes', async (t) => {
  const server = http.createServer((_req, res) => res.end('ok'));
  const port = await listenLocal(t, server);
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  await conn.request('GET', '/');
  const [result] = await Promise.all([shutdown(server, { idleGrace: 20, timeout: 120_000 }), once(server, 'close')]);
  assert.equal(result.timedOut, false);
  await conn.closed;
});

test('shutdown() validates options once, naming the option, the value and the fix; a bad argument rejects (never throws), so .catch() sees it', async () => {
  const server = http.createServer();
  await assert.rejects(
    shutdown(server, { timeout: -1 }),
    (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION') && /"timeout".*-1.*Fix/.test(err.message),
  );
  await assert.rejects(
    shutdown(server, { idelGrace: 5 } as never),
    (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION') && /unknown option "idelGrace"/.test(err.message),
  );
  await assert.rejects(shutdown({} as never), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION'));
  const caught = await shutdown(server, { idleGrace: 'x' } as never).catch((err: unknown) => err);
  assert.ok(isHitlessError(caught, 'ERR_INVALID_OPTION'));
});

test('a client that goes away with pipelined requests unanswered leaves nothing in flight: shutdown() resolves at once, nothing forced (regression: on Node 20 and 22 the queued response fired neither finish nor close, and every later drain waited its whole timeout)', async (t) => {
  const release = deferred();
  const started = deferred();
  let count = 0;
  const server = http.createServer(async (_req, res) => {
    if (++count === 1) {
      started.resolve();
      await release.promise;
    }
    res.end('ok');
  });
  track(server, { signals: false });
  const port = await listenLocal(t, server);
  const closed = new Promise<void>((resolve) => server.once('connection', (socket) => socket.once('close', () => resolve())));
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  // Three pipelined requests in one write; the first is held, the others queue behind it.
  conn.socket.write('GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await started.promise;
  conn.destroy();
  await closed;
  release.resolve();
  const result = await shutdown(server, { timeout: 60_000 });
  assert.equal(result.timedOut, false);
  assert.deepEqual(result.forced, none);
});

test('20 pipelined requests add no listener per request to their socket (regression: one \'close\' listener each, and Node printed MaxListenersExceededWarning on the app\'s stderr)', async (t) => {
  const release = deferred();
  const all = deferred();
  let count = 0;
  const server = http.createServer(async (_req, res) => {
    if (++count === 20) all.resolve();
    await release.promise;
    res.end('ok');
  });
  track(server, { signals: false });
  const port = await listenLocal(t, server);
  let serverSide: import('node:net').Socket | undefined;
  server.once('connection', (socket) => (serverSide = socket));
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  conn.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(20));
  await all.promise;
  const listeners = serverSide?.listenerCount('close') ?? 0;
  release.resolve();
  assert.ok(listeners > 0 && listeners <= 6, `${listeners} 'close' listeners on the socket with 20 requests open`);
});
