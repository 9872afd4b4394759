// A unix socket file removed while the master runs (h21 F10): the socket still listens, but
// nobody can reach it, and a reload keeps it; status, the reload outcome and the log say so
// with the fix (src/master/socket-files.ts says why it is not bound again).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, startMaster } from '../helpers/master.js';
import { SocketFileWatch, type StatFile } from '../../src/master/socket-files.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-sockfile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a removed unix socket file of a listener: a warning in status, in the reload outcome (the reload does not bring it back) and in the log (h21 F10)', { timeout: 60_000 }, async (t) => {
  const path = join(tempDir(t), 'app.sock');
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')], listen: ['127.0.0.1:0', `admin=unix:${path}`] });
  const before = await master.status();
  assert.equal(before.warnings, undefined);
  unlinkSync(path);
  const expected = `listener "admin" (unix:${path}): its socket file was removed while the master runs; the socket still listens, but clients cannot reach it by that path, ` +
    'and a reload does not bind it again (an address that stays in the list keeps its socket): restart the master (`hitless stop`, then `hitless start`), ' +
    'or take the entry out of the configuration, reload, put it back and reload again';
  assert.deepEqual((await master.status()).warnings, [expected]);
  const logged = await master.waitEvent('socket-file-removed');
  assert.equal(logged.msg, expected);
  assert.equal(logged.level, 'warn');
  const reload = await master.reload();
  assert.equal(reload.code, 0, reload.stderr);
  assert.ok(reload.stdout.includes(`warning: ${expected}`), reload.stdout);
  assert.deepEqual((await master.status()).warnings, [expected]);
  // Said once in the log, not every 2 s.
  assert.equal(master.records.filter((r) => r.event === 'socket-file-removed').length, 1);
});

test('SocketFileWatch: a file known at first sight; removed or replaced (another inode) is a problem; the same file back is none; news says each once', () => {
  let file: { dev: number; ino: number } | undefined = { dev: 1, ino: 10 };
  const stat: StatFile = (path) => (path === '/run/a.sock' && file ? { ...file, isSocket: () => true } : undefined);
  const watch = new SocketFileWatch(() => [{ name: 'a', address: 'unix:/run/a.sock' }, { name: 'http', address: '127.0.0.1:80' }], stat);
  assert.deepEqual(watch.news(), []);
  file = undefined;
  assert.match(watch.news()[0] ?? '', /^listener "a" \(unix:\/run\/a\.sock\): its socket file was removed while the master runs; /);
  assert.deepEqual(watch.news(), [], 'said once');
  assert.equal(watch.problems().length, 1, 'but still a problem');
  file = { dev: 1, ino: 11 };
  assert.match(watch.news()[0] ?? '', /^listener "a" \(unix:\/run\/a\.sock\): \/run\/a\.sock is another file now/);
  file = { dev: 1, ino: 10 };
  assert.deepEqual(watch.problems(), []);
  file = undefined;
  assert.equal(watch.news().length, 1, 'gone again: said again');
});

test('SocketFileWatch: a listener taken out and put back (the fix the warning gives) is bound anew, and its new file is no problem (regression: the first file was remembered, and the warning stayed for good)', () => {
  let file: { dev: number; ino: number } | undefined = { dev: 1, ino: 10 };
  let held = [{ name: 'a', address: 'unix:/run/a.sock' }];
  const stat: StatFile = (path) => (path === '/run/a.sock' && file ? { ...file, isSocket: () => true } : undefined);
  const watch = new SocketFileWatch(() => held, stat);
  file = undefined;
  assert.equal(watch.problems().length, 1);
  held = []; // reload: the entry taken out
  assert.deepEqual(watch.problems(), []);
  held = [{ name: 'a', address: 'unix:/run/a.sock' }]; // reload: put back, bound again
  file = { dev: 1, ino: 12 };
  assert.deepEqual(watch.problems(), []);
  assert.deepEqual(watch.news(), []);
});
