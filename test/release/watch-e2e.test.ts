// The watch trigger inside a real master: each change to a watched file, uploaded the
// safe way (written beside it, renamed over it), is exactly one reload, and the new
// generation serves the new content.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { root, sourceFixture, startMaster } from '../helpers/master.js';
import { tempDir } from './helpers.js';

const env = { HITLESS_LIB: pathToFileURL(join(root, 'build', 'src', 'index.js')).href };

async function version(url: string): Promise<string> {
  const res = await fetch(url);
  await res.text();
  return res.headers.get('x-release') ?? '';
}

test('watch in the master: each rename-over upload of a watched file is exactly one reload', { timeout: 60_000 }, async (t) => {
  const app = await tempDir(t, 'hitless-watch-app-');
  await copyFile(sourceFixture('release/server.mjs'), join(app, 'server.mjs'));
  await writeFile(join(app, 'VERSION'), 'v1');
  await writeFile(join(app, 'hitless.json'), JSON.stringify({ watch: { paths: ['VERSION'], debounce: '200ms' } }));
  const master = await startMaster(t, { command: [process.execPath, 'server.mjs'], cwd: app, env, args: ['--config', join(app, 'hitless.json')] });
  // The watch starts after the first generation is ready; on a busy machine its first scan
  // can end after a change made at once, which it would not see (a 60 s timeout here).
  await master.waitEvent((r) => r.msg === 'watch: watching');
  assert.equal(await version(master.url('/')), 'v1');

  for (const [i, v] of ['v2', 'v3'].entries()) {
    const from = master.records.length;
    await writeFile(join(app, 'VERSION.upload'), v);
    await rename(join(app, 'VERSION.upload'), join(app, 'VERSION'));
    const done = await master.waitEvent('reload-done', from);
    assert.equal(done.generation, i + 2, JSON.stringify(done));
    assert.equal(await version(master.url('/')), v);
  }
  // An explicit reload now is the third: no extra watch reload slipped in between.
  const r = await master.reload();
  assert.equal(r.code, 0, r.stderr);
  const reasons = master.events('reload-start').map((e) => e.reason);
  assert.equal(reasons.length, 3, JSON.stringify(reasons));
  assert.equal(reasons[2], 'hitless reload');
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('watch in the master: a path whose folder is missing at start (regression: a reload at start for nothing, and none once it appeared)', { timeout: 60_000 }, async (t) => {
  // The layout and watch of docs/RELEASES.md, before `config/` exists.
  const app = await tempDir(t, 'hitless-watch-app-');
  await mkdir(join(app, 'releases', 'r1'), { recursive: true });
  await copyFile(sourceFixture('release/server.mjs'), join(app, 'releases', 'r1', 'server.mjs'));
  await writeFile(join(app, 'releases', 'r1', 'VERSION'), 'v1');
  await symlink('releases/r1', join(app, 'current'));
  await writeFile(join(app, 'hitless.json'), JSON.stringify({ watch: { paths: ['current', 'config/app.json'], debounce: '200ms' } }));
  const master = await startMaster(t, { command: [process.execPath, 'server.mjs'], cwd: app, env, args: ['--config', join(app, 'hitless.json')] });
  await master.waitEvent((r) => r.msg === 'watch: watching');
  const file = join(app, 'config', 'app.json');
  const warned = master.records.filter((r) => r.level === 'warn' && r.msg.startsWith('watch: path does not exist yet'));
  assert.deepEqual(warned.map((r) => r.path), [file]);
  // A detached master's log is written beside `current`: that made chokidar report
  // `current` as added, a reload at every start.
  await writeFile(join(app, 'hitless.log'), 'a log line\n');

  await mkdir(join(app, 'config'));
  await writeFile(file, '{"a":1}');
  const first = await master.waitEvent('reload-done');
  assert.equal(first.generation, 2, JSON.stringify(first));
  for (const [i, content] of ['{"a":2}', '{"a":3}'].entries()) {
    const from = master.records.length;
    await writeFile(file, content);
    const done = await master.waitEvent('reload-done', from);
    assert.equal(done.generation, i + 3, JSON.stringify(done));
  }
  // An explicit reload now is the fourth: no extra watch reload slipped in between.
  const r = await master.reload();
  assert.equal(r.code, 0, r.stderr);
  const reasons = master.events('reload-start').map((e) => e.reason);
  assert.deepEqual(reasons, ['watch', 'watch', 'watch', 'hitless reload']);
  const changes = master.records.filter((r) => r.msg === 'watch: change');
  assert.ok(!changes.some((c) => c.path === join(app, 'current')), JSON.stringify(changes));
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
