/**
 * In-process checks of the small pieces: env parsing, option validation, ready()
 * standalone and with a bad fd, workerInfo, health handlers, listen() fallbacks, serve().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { codes, healthHandlers, isHitlessError, listen, onShutdown, ready, serve, shutdown, status, track, workerInfo } from '../../src/index.js';
import { parseListenEnv } from '../../src/lib/fds.js';
import { RawConnection } from '../helpers/http.js';

test('parseListenEnv: fds start at 3 in order, names from LISTEN_FDNAMES, ignored for another LISTEN_PID', () => {
  const env = { LISTEN_FDS: '2', LISTEN_FDNAMES: 'http:admin', LISTEN_PID: '42' };
  assert.deepEqual(parseListenEnv(env, 42), [
    { fd: 3, name: 'http' },
    { fd: 4, name: 'admin' },
  ]);
  assert.deepEqual(parseListenEnv(env, 43), []);
  assert.deepEqual(parseListenEnv({ LISTEN_FDS: '1', LISTEN_PID: '7' }, 7), [{ fd: 3, name: 'unknown' }]);
  assert.deepEqual(parseListenEnv({ LISTEN_FDS: 'x', LISTEN_PID: '7' }, 7), []);
  assert.deepEqual(parseListenEnv({}, 7), []);
});

test('every in-app error code is in the shared codes table', () => {
  for (const code of ['ERR_INVALID_OPTION', 'ERR_LISTEN_NAME_UNKNOWN', 'ERR_LISTEN_FD_NOT_SOCKET', 'ERR_LISTEN_FAILED', 'ERR_READY_FD', 'ERR_SHUTDOWN_HOOK_TIMEOUT']) {
    assert.ok(code in codes, code);
  }
});

test('ready() and status() are no-ops standalone; a bad HITLESS_READY_FD throws ERR_READY_FD', (t) => {
  const saved = process.env.HITLESS_READY_FD;
  t.after(() => (saved === undefined ? delete process.env.HITLESS_READY_FD : (process.env.HITLESS_READY_FD = saved)));
  delete process.env.HITLESS_READY_FD;
  ready();
  status('standalone');
  process.env.HITLESS_READY_FD = '987';
  assert.throws(() => ready(), (err: unknown) => isHitlessError(err, 'ERR_READY_FD') && /987/.test(err.message));
  process.env.HITLESS_READY_FD = 'three';
  assert.throws(() => status('x'), (err: unknown) => isHitlessError(err, 'ERR_READY_FD'));
  assert.throws(() => status(3 as never), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION'));
});

test('serve() with a bad HITLESS_READY_FD rejects before it listens: no listener is left behind the rejected promise', async (t) => {
  const saved = process.env.HITLESS_READY_FD;
  t.after(() => (saved === undefined ? delete process.env.HITLESS_READY_FD : (process.env.HITLESS_READY_FD = saved)));
  process.env.HITLESS_READY_FD = '987';
  const server = http.createServer();
  t.after(() => server.close());
  await assert.rejects(serve(server, { port: 0, host: '127.0.0.1', signals: false }), (err: unknown) => isHitlessError(err, 'ERR_READY_FD'));
  assert.equal(server.listening, false);
});

test('workerInfo() reads generation, worker and release from the master-set environment', (t) => {
  const saved = { ...process.env };
  t.after(() => {
    for (const k of ['HITLESS_GENERATION', 'HITLESS_WORKER', 'HITLESS_RELEASE']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  delete process.env.HITLESS_GENERATION;
  assert.equal(workerInfo().managed, Boolean(process.env.HITLESS_READY_FD));
  Object.assign(process.env, { HITLESS_GENERATION: '7', HITLESS_WORKER: '2', HITLESS_RELEASE: 'r42' });
  assert.deepEqual(workerInfo(), { managed: true, generation: 7, worker: 2, release: 'r42' });
});

test('listen() validates options with the option name, the value and the fix', async () => {
  const server = http.createServer();
  await assert.rejects(listen(server, { port: 70000, signals: false }), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION') && /"port".*70000/.test(err.message));
  await assert.rejects(listen(server, { prot: 1 } as never), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION') && /"prot"/.test(err.message));
  await assert.rejects(listen(server, { signals: 'no' } as never), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION'));
  await assert.rejects(listen(server, { path: '/tmp/x.sock', port: 1 }), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION'));
  await assert.rejects(listen({} as never), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION'));
});

test('every entry point that takes a server refuses a non-server with ERR_INVALID_OPTION: what was given, what is expected, the fix (regression: track() threw a bare TypeError)', async () => {
  const given: [unknown, string][] = [[42, '42'], [{}, '{}'], [null, 'null'], [undefined, 'undefined'], ['http', '"http"']];
  for (const [value, shown] of given) {
    const refused = (where: string, name: string) => (err: unknown): boolean => {
      assert.ok(isHitlessError(err, 'ERR_INVALID_OPTION'), `${where}(${shown}): ${String(err)}`);
      const expected = name === 'server' ? 'a net\\.Server \\(http, https or http2 server\\)' : 'a request handler or a server';
      assert.match(err.message, new RegExp(`^hitless ${where}\\(\\): option "${name}" must be ${expected}; got ${shown.replace(/[{}]/g, '\\$&')}\\. Fix: `));
      return true;
    };
    assert.throws(() => track(value as never), refused('track', 'server'));
    assert.throws(() => track(value as never, { signals: false }), refused('track', 'server'));
    await assert.rejects(listen(value as never), refused('listen', 'server'));
    await assert.rejects(shutdown(value as never), refused('shutdown', 'server'));
    await assert.rejects(serve(value as never), refused('serve', 'handlerOrServer'));
  }
  // A framework's app object: the fix names the form that works for it.
  const koa = { callback: () => () => {} };
  assert.throws(() => track(koa as never), /Fix: for a Koa app: track\(http\.createServer\(app\.callback\(\)\)\)\.$/);
  assert.throws(() => track(42 as never), /Fix: track\(http\.createServer\(handler\)\), then server\.listen\(\)\.$/);
});

test('serve() names its own options for an unknown one (the shutdown ones directly, not `shutdown`)', async () => {
  await assert.rejects(serve((_req, res) => res.end(), { bogus: 1 } as never), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION') &&
    err.message.includes('unknown option "bogus". Known options: name, port, host, path, backlog, signals, shutdownDelay, timeout, idleGrace, onUpgrade, spread.'));
  await assert.rejects(serve((_req, res) => res.end(), { shutdown: { timeout: 1 } } as never), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION') &&
    err.message.endsWith('Fix: pass timeout, idleGrace, onUpgrade, spread directly.'));
});

test('NaN and Infinity option values are shown as NaN and Infinity (regression: JSON showed them as null)', async () => {
  const handler: http.RequestListener = (_req, res) => res.end();
  for (const [options, name, shown] of [[{ idleGrace: NaN }, 'idleGrace', 'NaN'], [{ spread: Infinity }, 'spread', 'Infinity'], [{ port: -Infinity }, 'port', '-Infinity']] as const) {
    await assert.rejects(serve(handler, options), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION') &&
      err.message.includes(`option "${name}" must be`) && err.message.includes(`; got ${shown}. Fix: `), `serve(${name}: ${shown})`);
  }
  assert.throws(() => onShutdown(() => {}, { timeout: NaN }), /; got NaN\. Fix: \{ timeout: 5000 \}\.$/);
});

test('serve() given a string or a number for its options says what was passed and the fix (regression: `serve(app, \'http\')` was refused as unknown option "0")', async () => {
  const handler: http.RequestListener = (_req, res) => res.end();
  await assert.rejects(serve(handler, 'http' as never), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION') &&
    err.message === 'hitless serve(): option "options" must be an object (serve() takes no name string, unlike listen()); got "http". Fix: serve(app, { name: "http" }).');
  await assert.rejects(serve(handler, 5 as never), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION') &&
    err.message === 'hitless serve(): option "options" must be an object; got 5. Fix: pass { ... } or leave it out.');
});

test('listen() standalone binds the fallback: port/host, env PORT, a Unix socket path; errors are ERR_LISTEN_FAILED', async (t) => {
  const a = http.createServer((_req, res) => res.end('a'));
  const ra = await listen(a, { port: 0, host: '127.0.0.1', signals: false });
  t.after(() => shutdown(a, { timeout: 0 }));
  assert.equal(ra.inherited, false);
  const port = (ra.address as { port: number }).port;

  const saved = process.env.PORT;
  process.env.PORT = '0';
  const b = http.createServer();
  const rb = await listen(b, { host: '127.0.0.1', signals: false });
  if (saved === undefined) delete process.env.PORT;
  else process.env.PORT = saved;
  t.after(() => shutdown(b, { timeout: 0 }));
  assert.notEqual((rb.address as { port: number }).port, 3000);

  const dir = mkdtempSync(join(tmpdir(), 'hitless-listen-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const c = http.createServer((_req, res) => res.end('unix'));
  const rc = await listen(c, { path: join(dir, 'app.sock'), signals: false });
  assert.equal(rc.address, join(dir, 'app.sock'));
  const conn = await RawConnection.connect(join(dir, 'app.sock'));
  assert.equal((await conn.request('GET', '/')).body, 'unix');
  conn.destroy();
  await shutdown(c, { idleGrace: 0 });

  await assert.rejects(listen(http.createServer(), { port, host: '127.0.0.1', signals: false }), (err: unknown) => isHitlessError(err, 'ERR_LISTEN_FAILED') && /EADDRINUSE/.test(err.message));
});

test('serve() listens, answers, and close() drains', async (t) => {
  const handle = await serve((_req, res) => res.end('served'), { port: 0, host: '127.0.0.1', signals: false, idleGrace: 10 });
  t.after(() => handle.close());
  const conn = await RawConnection.connect((handle.address as { port: number }).port);
  t.after(() => conn.destroy());
  assert.equal((await conn.request('GET', '/')).body, 'served');
  const result = await handle.close();
  assert.equal(result.timedOut, false);
  assert.equal(result.drained.connections, 1);
  await assert.rejects(serve(() => {}, { timeout: 'soon' } as never), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION') && /"timeout"/.test(err.message));
});

test('health handlers: liveness 200; readiness 200 until shutdown begins, 503 after', async (t) => {
  const health = healthHandlers();
  const server = http.createServer((req, res) => (req.url === '/livez' ? health.liveness(req, res) : health.readiness(req, res)));
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  t.after(() => server.close());
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  // Readiness reflects the process-wide state; begin a shutdown (of an idle server) here.
  await shutdown(http.createServer());
  assert.equal((await conn.request('GET', '/readyz')).status, 503);
  assert.equal((await conn.request('GET', '/livez')).status, 200);
});

test('onShutdown() validates its arguments and returns an unregister function', () => {
  assert.throws(() => onShutdown('close db' as never), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION') && /"fn"/.test(err.message));
  assert.throws(() => onShutdown(() => {}, { timeout: -5 }), (err: unknown) => isHitlessError(err, 'ERR_INVALID_OPTION') && /"timeout".*-5/.test(err.message));
  const unregister = onShutdown(() => {});
  assert.equal(typeof unregister, 'function');
  unregister();
  unregister(); // idempotent
});

test('serve() accepts an existing server (https, http2, a framework\'s own)', async (t) => {
  const server = http.createServer((_req, res) => res.end('mine'));
  const handle = await serve(server, { port: 0, host: '127.0.0.1', signals: false });
  t.after(() => handle.close());
  assert.equal(handle.server, server);
  assert.equal(handle.inherited, false);
  const conn = await RawConnection.connect((handle.address as { port: number }).port);
  t.after(() => conn.destroy());
  assert.equal((await conn.request('GET', '/')).body, 'mine');
});
