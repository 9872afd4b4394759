// The socket inventory across reloads (ListenerSet add/select/retain): real sockets on
// 127.0.0.1 and unix sockets in a temp folder. The master never accepts, so "serves" here
// means "the kernel completes the handshake" (the socket listens) and "refuses" means
// ECONNREFUSED / ENOENT.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isHitlessError } from '../../src/errors.js';
import { openListeners, type ListenerSet } from '../../src/master/listeners.js';
import type { ListenerSpec } from '../../src/config/types.js';

const tcp = (name: string, port = 0): ListenerSpec => ({ name, kind: 'tcp', host: '127.0.0.1', port, source: `${name}=127.0.0.1:${port}` });
const unix = (name: string, path: string, mode?: number): ListenerSpec => ({ name, kind: 'unix', path, mode, source: `${name}=unix:${path}` });

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-lset-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function open(t: TestContext, specs: ListenerSpec[]): ListenerSet {
  const set = openListeners(specs);
  t.after(() => set.close());
  return set;
}

function connects(target: number | string): Promise<true | string> {
  return new Promise((resolve) => {
    const s = typeof target === 'number' ? net.connect(target, '127.0.0.1') : net.connect(target);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

const portOf = (set: ListenerSet, name: string): number => Number(set.status().find((l) => l.name === name)!.address.split(':').pop());

test('add binds only new addresses, select hands them out in config order, retain closes what no spec uses', async (t) => {
  const dir = tempDir(t);
  const http = tcp('http');
  const set = open(t, [http]);
  const httpFd = set.fds[0];
  const admin = tcp('admin');
  const sock = unix('sock', join(dir, 'extra.sock'));
  const fresh = set.add([sock, http, admin]);
  assert.deepEqual(fresh.map((l) => l.name), ['sock', 'admin']);
  assert.equal(set.add([sock, http, admin]).length, 0, 'adding what is held binds nothing');
  const picked = set.select([sock, http, admin]);
  assert.deepEqual(picked.names, ['sock', 'http', 'admin']);
  assert.equal(picked.fds[1], httpFd, 'a kept address keeps its socket');
  assert.deepEqual(set.select([http]).fds, [httpFd], 'a generation of the old spec still gets only its sockets');
  const adminPort = portOf(set, 'admin');
  assert.equal(await connects(adminPort), true);
  assert.equal(await connects(join(dir, 'extra.sock')), true);

  const gone = set.retain([[http], [http, admin]]);
  assert.deepEqual(gone.map((l) => l.name), ['sock']);
  assert.equal(existsSync(join(dir, 'extra.sock')), false, 'the unix socket file is unlinked');
  assert.equal(await connects(join(dir, 'extra.sock')), 'ENOENT');
  set.retain([[http]]);
  assert.equal(await connects(adminPort), 'ECONNREFUSED');
  assert.equal(await connects(portOf(set, 'http')), true);
  assert.deepEqual(set.status().map((l) => l.name), ['http']);
});

test('a renamed entry keeps its socket (port 0 excepted: it means a new one); a new unix mode is applied', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'app.sock');
  const set = open(t, [tcp('http', 0), unix('sock', path, 0o600)]);
  const [, sockFd] = set.fds;
  assert.equal(set.add([tcp('http', 0), unix('renamed', path, 0o660)]).length, 0);
  assert.equal(statSync(path).mode & 0o777, 0o660);
  assert.deepEqual(set.select([unix('renamed', path)]), { fds: [sockFd!], names: ['renamed'] });
  assert.equal(set.add([tcp('web', 0)]).length, 1, 'port 0 under another name is another socket');
});

test('a bind error refuses the whole add: ERR_BIND with the address, and what this add bound is closed again', async (t) => {
  const dir = tempDir(t);
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.after(() => busy.close());
  const port = (busy.address() as net.AddressInfo).port;
  const set = open(t, [tcp('http')]);
  const path = join(dir, 'new.sock');
  assert.throws(() => set.add([tcp('http'), unix('sock', path), tcp('taken', port)]), (err) => {
    assert.ok(isHitlessError(err, 'ERR_BIND'));
    assert.match(err.message, new RegExp(`^cannot listen on taken=127\\.0\\.0\\.1:${port}: EADDRINUSE`));
    return true;
  });
  assert.equal(existsSync(path), false, 'the unix socket bound before the failure is removed');
  assert.deepEqual(set.status().map((l) => l.name), ['http']);
});
