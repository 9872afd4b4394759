/**
 * Socket adoption (systemd convention): a parent holds a listening socket WITHOUT accepting
 * (like the master), children adopt it as fd 3 via LISTEN_FDS/LISTEN_PID, announce READY on
 * HITLESS_READY_FD, and hand over: what arrives after the first child's drain began is
 * accepted by the second child from the same kernel queue.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { RawConnection } from '../helpers/http.js';
import { spawnFixture, type Fixture } from './helpers/child.js';

interface Handle {
  fd: number;
  getsockname(out: { port?: number }): number;
  close(): void;
}

/** Binds 127.0.0.1:0 and makes it listen(2) without this process ever polling it. */
function holdListeningSocket(t: TestContext): { fd: number; port: number } {
  // How Node's cluster holds shared handles: bind without listen, never accept.
  const handle = (net as unknown as { _createServerHandle(a: string, p: number, t: number): Handle | number })._createServerHandle('127.0.0.1', 0, 4);
  if (typeof handle === 'number') throw new Error(`bind failed: ${handle}`);
  t.after(() => handle.close());
  const out: { port?: number } = {};
  handle.getsockname(out);
  // listen(2) happens synchronously in listen({ fd }); the child exits before it could accept.
  const once = spawnSync(process.execPath, ['-e', "require('net').createServer().listen({fd:3}); process.exit(0)"], {
    stdio: ['ignore', 'inherit', 'inherit', handle.fd],
  });
  assert.equal(once.status, 0);
  return { fd: handle.fd, port: out.port! };
}

/** The first line on the readiness channel that is not a STATUS= line (listen() says one before ready()). */
function readLine(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      let nl = text.indexOf('\n');
      while (nl !== -1 && text.startsWith('STATUS=')) {
        text = text.slice(nl + 1);
        nl = text.indexOf('\n');
      }
      if (nl !== -1) {
        stream.removeListener('data', onData);
        resolve(text.slice(0, nl));
      }
    };
    stream.on('data', onData);
    stream.once('end', () => reject(new Error(`channel ended before a line; got ${JSON.stringify(text)}`)));
  });
}

function worker(t: TestContext, fd: number, env: Record<string, string> = {}): Fixture {
  return spawnFixture(t, 'server', {
    shim: true,
    extra: [fd, 'pipe'],
    env: { LISTEN_FDS: '1', LISTEN_FDNAMES: 'http', HITLESS_READY_FD: '4', SHUTDOWN_TIMEOUT: '60000', ...env },
  });
}

test('adopted socket hand-over: a request sent after the first worker began draining is accepted by the second', async (t) => {
  const { fd, port } = holdListeningSocket(t);

  const a = worker(t, fd);
  const aListening = await a.next<{ inherited: boolean; fd: number; name: string; env: string | null }>('listening');
  assert.deepEqual([aListening.inherited, aListening.fd, aListening.name], [true, 3, 'http']);
  assert.equal(aListening.env, null, 'LISTEN_* are unset after reading so spawned programs do not take the fds');
  assert.equal(await readLine(a.child.stdio[4] as Readable), 'READY=1');

  const held = await RawConnection.connect(port);
  t.after(() => held.destroy());
  const pidA = await held.request('GET', '/pid');
  assert.equal(pidA.body, String(a.child.pid));
  held.send('GET', '/slow');
  await a.next('slow-started');

  const b = worker(t, fd);
  await b.next('listening');
  assert.equal(await readLine(b.child.stdio[4] as Readable), 'READY=1');

  a.child.kill('SIGTERM');
  await a.next('signal');
  const fresh = await RawConnection.connect(port);
  t.after(() => fresh.destroy());
  const answer = await fresh.request('GET', '/pid');
  assert.equal(answer.status, 200);
  assert.equal(answer.body, String(b.child.pid), 'the draining worker no longer accepts; the new one does');

  a.tell('release');
  const slow = await held.response();
  assert.equal(slow.body, 'slow done');
  assert.equal(slow.headers.connection, 'close');
  assert.equal((await a.exited).code, 0);

  const again = await fresh.request('GET', '/pid');
  assert.equal(again.body, String(b.child.pid), 'the socket stays open after the old worker closed its copy');
});

test('listen(server, name) with a name the master did not pass: ERR_LISTEN_NAME_UNKNOWN listing the names', async (t) => {
  const { fd } = holdListeningSocket(t);
  const f = worker(t, fd, { LISTEN_NAME: 'admin' });
  const err = await f.next<{ code: string; message: string }>('listen-error');
  assert.equal(err.code, 'ERR_LISTEN_NAME_UNKNOWN');
  assert.match(err.message, /"admin".*http/);
  assert.equal((await f.exited).code, 1);
});

test('an inherited fd that is not a socket: ERR_LISTEN_FD_NOT_SOCKET', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-fd-'));
  const file = openSync(join(dir, 'not-a-socket'), 'w');
  t.after(() => {
    closeSync(file);
    rmSync(dir, { recursive: true, force: true });
  });
  const f = worker(t, file);
  const err = await f.next<{ code: string; message: string }>('listen-error');
  assert.equal(err.code, 'ERR_LISTEN_FD_NOT_SOCKET');
  assert.match(err.message, /fd 3/);
});

test('LISTEN_PID of another process: the variables are ignored and the fallback address is bound', async (t) => {
  const { fd, port } = holdListeningSocket(t);
  const f = spawnFixture(t, 'server', { extra: [fd], env: { LISTEN_FDS: '1', LISTEN_PID: '1' } });
  const listening = await f.next<{ inherited: boolean; port: number }>('listening');
  assert.equal(listening.inherited, false);
  assert.notEqual(listening.port, port);
});
