// The effective-configuration diff a reload reports (src/master/changes.ts), and how
// `hitless reload` prints it: pure functions, checked directly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeChange, diffConfig, HIDDEN } from '../../src/config/changes.js';
import { formatConfigChanges } from '../../src/cli/commands/reload.js';
import type { ListenerSpec } from '../../src/config/types.js';
import { fakeConfig } from '../ops/fake-master.js';

const http: ListenerSpec = { name: 'http', kind: 'tcp', host: '127.0.0.1', port: 3000, source: '127.0.0.1:3000' };
const admin: ListenerSpec = { name: 'admin', kind: 'unix', path: '/srv/app/admin.sock', mode: 0o660, source: 'admin=unix:admin.sock?mode=0660' };

test('identical configurations: no change', () => {
  const c = fakeConfig({ listen: [http], env: { A: '1' } });
  assert.deepEqual(diffConfig(c, structuredClone(c)), []);
});

test('scalar keys show old and new value in config units (durations, signals, nested restart keys)', () => {
  const a = fakeConfig({ workers: 2, readyTimeout: 30_000, stopSignal: 'SIGTERM' });
  const b = fakeConfig({ workers: 3, readyTimeout: 1500, stopSignal: 'SIGQUIT', restart: { ...a.restart, window: 120_000 } });
  assert.deepEqual(diffConfig(a, b), [
    { key: 'workers', from: '2', to: '3' },
    { key: 'readyTimeout', from: '30 s', to: '1.5 s' },
    { key: 'stopSignal', from: 'SIGTERM', to: 'SIGQUIT' },
    { key: 'restart.window', from: '1 min', to: '2 min' },
  ]);
});

test('stayReady: a reload shows its change in config units, and an older master\'s configuration without the key as not set', () => {
  const a = fakeConfig({ stayReady: 1_000 });
  assert.deepEqual(diffConfig(a, fakeConfig({ stayReady: 10_000 })), [{ key: 'stayReady', from: '1 s', to: '10 s' }]);
  assert.deepEqual(diffConfig(a, fakeConfig({ stayReady: 0 })), [{ key: 'stayReady', from: '1 s', to: '0 ms' }]);
  const { stayReady: _, ...older } = a;
  assert.deepEqual(diffConfig(older, a), [{ key: 'stayReady', from: null, to: '1 s' }]);
});

test('env values are never shown: added, changed and removed keys with the value hidden', () => {
  const a = fakeConfig({ env: { KEEP: 'x', SECRET: 'old-token', GONE: 'y' } });
  const b = fakeConfig({ env: { KEEP: 'x', SECRET: 'new-token', NEW: 'z' } });
  const changes = diffConfig(a, b);
  assert.deepEqual(changes, [
    { key: 'env.SECRET', from: HIDDEN, to: HIDDEN },
    { key: 'env.GONE', from: HIDDEN, to: null },
    { key: 'env.NEW', from: null, to: HIDDEN },
  ]);
  const text = changes.map(describeChange).join('\n');
  assert.ok(!/token|\bz\b|\by\b/.test(text), text);
  assert.match(text, /env\.SECRET: changed \(value hidden\)/);
  assert.match(text, /env\.NEW: added \(value hidden\)/);
  assert.match(text, /env\.GONE: removed$/m);
});

test('fetch headers are hidden and the fetch url loses its query string (presigned credentials)', () => {
  const fetch = { url: 'https://s3.example/app.tgz?X-Amz-Signature=abc', interval: 60_000, sha256: undefined, sha256Url: undefined, headers: { Authorization: 'Bearer a' }, maxBytes: 1024, timeout: 1000 };
  const a = fakeConfig({ fetch });
  const b = fakeConfig({ fetch: { ...fetch, url: 'https://s3.example/app.tgz?X-Amz-Signature=def', headers: { Authorization: 'Bearer b' } } });
  const text = diffConfig(a, b).map(describeChange).join('\n');
  assert.ok(!/abc|def|Bearer/.test(text), text);
  assert.match(text, /fetch\.url: changed|fetch\.url: https:\/\/s3\.example\/app\.tgz\?…/);
  assert.match(text, /fetch\.headers\.Authorization: changed \(value hidden\)/);
});

test('listen entries are compared by name: added, removed, moved; a pure reordering is reported once', () => {
  const moved: ListenerSpec = { ...http, port: 3001, source: '127.0.0.1:3001' };
  assert.deepEqual(diffConfig(fakeConfig({ listen: [http] }), fakeConfig({ listen: [http, admin] })), [
    { key: 'listen.admin', from: null, to: 'unix:/srv/app/admin.sock?mode=0660' },
  ]);
  assert.deepEqual(diffConfig(fakeConfig({ listen: [http, admin] }), fakeConfig({ listen: [moved] })), [
    { key: 'listen.http', from: '127.0.0.1:3000', to: '127.0.0.1:3001' },
    { key: 'listen.admin', from: 'unix:/srv/app/admin.sock?mode=0660', to: null },
  ]);
  assert.deepEqual(diffConfig(fakeConfig({ listen: [http, admin] }), fakeConfig({ listen: [admin, http] })), [
    { key: 'listen (order)', from: 'http, admin', to: 'admin, http' },
  ]);
});

test('a listener whose address stays under a new name is a rename that keeps its socket, not an added and a removed address', () => {
  const api: ListenerSpec = { ...http, name: 'api', source: 'api=127.0.0.1:3000' };
  const renamed = diffConfig(fakeConfig({ listen: [http, admin] }), fakeConfig({ listen: [api, admin] }));
  assert.deepEqual(renamed, [{ key: 'listen.api', from: null, to: '127.0.0.1:3000', renamedFrom: 'http' }]);
  assert.equal(describeChange(renamed[0]!), 'listen.api: 127.0.0.1:3000, renamed from http (its socket is kept)');
  // The old name now means another address: its own line stays (a new socket for it).
  const other: ListenerSpec = { ...http, port: 3001, source: '127.0.0.1:3001' };
  assert.deepEqual(diffConfig(fakeConfig({ listen: [http] }), fakeConfig({ listen: [api, other] })), [
    { key: 'listen.api', from: null, to: '127.0.0.1:3000', renamedFrom: 'http' },
    { key: 'listen.http', from: '127.0.0.1:3000', to: '127.0.0.1:3001' },
  ]);
  // Port 0 is a new port per name: renaming it binds a new one, so it is added and removed.
  const any: ListenerSpec = { ...http, port: 0, source: '127.0.0.1:0' };
  assert.deepEqual(diffConfig(fakeConfig({ listen: [any] }), fakeConfig({ listen: [{ ...any, name: 'api' }] })).map((c) => c.key).sort(), ['listen.api', 'listen.http']);
});

test('keys a reload cannot apply say so: runDir, pidFile, logFormat, the config file, systemd sockets', () => {
  const a = fakeConfig({ runDir: '/run/a', pidFile: undefined, logFormat: 'text', listen: [http] });
  const b = fakeConfig({ runDir: '/run/b', pidFile: '/run/app.pid', logFormat: 'json', listen: [{ ...http, port: 9 }] });
  const changes = diffConfig(a, b, { inheritedNames: ['http'] });
  assert.deepEqual(changes.map((c) => c.key), ['listen.http', 'runDir', 'pidFile', 'logFormat']);
  for (const c of changes) assert.ok(c.notApplied && c.notApplied.length > 20, `${c.key} lacks its reason`);
  assert.match(changes.find((c) => c.key === 'listen.http')!.notApplied!, /systemd/);
  assert.match(describeChange(changes[1]!), /^runDir: \/run\/a → \/run\/b — NOT APPLIED: .*restart/);
  const moved = diffConfig(fakeConfig({ configPath: undefined }), fakeConfig({ configPath: '/srv/app/hitless.json' }));
  assert.equal(moved[0]?.key, 'configPath');
  assert.ok(moved[0]?.notApplied);
});

test('hitless reload prints "no configuration change", or one line per key, then the notes', () => {
  assert.equal(formatConfigChanges([], []), 'reload: no configuration change\n');
  assert.equal(
    formatConfigChanges([{ key: 'workers', from: '2', to: '3' }, { key: 'env.A', from: null, to: HIDDEN }], ['workers: keeping 1']),
    'reload: configuration changes:\n  workers: 2 → 3\n  env.A: added (value hidden)\nreload: note: workers: keeping 1\n',
  );
});
