import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkUniqueNames, ListenError, parseListen } from '../../src/config/listen.js';
import { loadConfig } from '../../src/config/load.js';
import { isHitlessError } from '../../src/errors.js';

const app = '/srv/app';

test('listen: IPv4, bare port, localhost and wildcard', () => {
  assert.deepEqual(parseListen('127.0.0.1:8080', 0, app), { name: 'http', kind: 'tcp', host: '127.0.0.1', port: 8080, source: '127.0.0.1:8080' });
  assert.deepEqual(parseListen('8080', 0, app), { name: 'http', kind: 'tcp', host: '0.0.0.0', port: 8080, source: '8080' });
  assert.equal((parseListen('localhost:0', 0, app) as { host: string }).host, '127.0.0.1');
  assert.equal((parseListen('*:80', 0, app) as { host: string }).host, '0.0.0.0');
  assert.equal((parseListen('0', 0, app) as { port: number }).port, 0);
});

test('listen: IPv6 in brackets; unbracketed IPv6 is refused with the fix', () => {
  assert.deepEqual(parseListen('[::1]:9000', 0, app), { name: 'http', kind: 'tcp', host: '::1', port: 9000, source: '[::1]:9000' });
  assert.equal((parseListen('[::]:80', 0, app) as { host: string }).host, '::');
  assert.throws(() => parseListen('::1:80', 0, app), (e: Error) => e instanceof ListenError && e.message.includes('"[::1]:80"'));
  assert.throws(() => parseListen('[1.2.3.4]:80', 0, app), /not an IPv6 address/);
});

test('listen: unix sockets, relative to the app folder, with an optional mode', () => {
  assert.deepEqual(parseListen('unix:/run/app.sock', 0, app), { name: 'http', kind: 'unix', path: '/run/app.sock', mode: undefined, source: 'unix:/run/app.sock' });
  assert.deepEqual(parseListen('admin=unix:run/a.sock?mode=0660', 1, app),
    { name: 'admin', kind: 'unix', path: '/srv/app/run/a.sock', mode: 0o660, source: 'admin=unix:run/a.sock?mode=0660' });
  const obj = parseListen({ name: 'api', address: 'unix:/x.sock', mode: '0600' }, 0, app);
  assert.equal(obj.kind === 'unix' && obj.mode, 0o600);
  assert.throws(() => parseListen('unix:/x.sock?mode=rw', 0, app), /octal file mode/);
  assert.throws(() => parseListen('unix:/x.sock?owner=me', 0, app), /unknown option "owner"/);
  assert.throws(() => parseListen({ address: '8080', mode: '0660' }, 0, app), /only applies to unix sockets/);
  assert.throws(() => parseListen('unix:', 0, app), /no socket path/);
  assert.throws(() => parseListen(`unix:/${'x'.repeat(120)}.sock`, 0, app), /longer than 107 bytes/);
});

test('listen: names default to http, listen1, listen2… and must be safe for LISTEN_FDNAMES', () => {
  const specs = ['127.0.0.1:1', 'metrics=127.0.0.1:2', '127.0.0.1:3'].map((e, i) => parseListen(e, i, app));
  assert.deepEqual(specs.map((s) => s.name), ['http', 'metrics', 'listen2']);
  assert.throws(() => parseListen('a b=80', 0, app), /may only contain letters/);
  assert.throws(() => parseListen({ name: 'a:b', address: '80' }, 0, app), /may only contain letters/);
});

test('listen: hostnames and garbage are refused with the accepted forms', () => {
  assert.throws(() => parseListen('example.com:80', 0, app), /not an IP address/);
  assert.throws(() => parseListen('http://127.0.0.1:80', 0, app), /not a listening address|not an IP/);
  assert.throws(() => parseListen('127.0.0.1:12x', 0, app), /"127\.0\.0\.1:8080"/);
  // A port above 65535 says so (it was "is not a listening address", like garbage).
  assert.throws(() => parseListen('127.0.0.1:65536', 0, app), /port 65536 is out of range; a port is 0 to 65535/);
});

test('listen: duplicate names are an error naming the name', () => {
  const specs = ['80', 'http=81'].map((e, i) => parseListen(e, i, app));
  assert.throws(() => checkUniqueNames(specs), /"http" is used twice/);
});

test('listen: through loadConfig a bad entry is reported as listen[i] with its value', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-listen-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ command: ['x'], listen: ['127.0.0.1:0', 'unix:a.sock?mode=9'] }));
  assert.throws(() => loadConfig({ cwd: dir, env: {} }), (e: unknown) =>
    isHitlessError(e, 'ERR_CONFIG_INVALID') && e.message.includes('"listen[1]"') && e.message.includes('"unix:a.sock?mode=9"') && e.message.includes('"0660"'));
  assert.throws(() => loadConfig({ cwd: dir, env: {}, flags: { listen: ['x=1', 'x=2'] } }), (e: unknown) =>
    isHitlessError(e, 'ERR_CONFIG_INVALID') && e.message.includes('--listen') && e.message.includes('used twice'));
  const c = loadConfig({ cwd: dir, env: {}, flags: { listen: ['unix:a.sock'] } });
  assert.equal(c.listen[0]?.kind === 'unix' && c.listen[0].path, join(dir, 'a.sock'));
});
