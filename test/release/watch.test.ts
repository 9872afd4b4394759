import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger } from '../../src/core/logger.js';
import type { MasterConfig } from '../../src/config/types.js';
import type { ReloadOutcome } from '../../src/core/types.js';
import { ReloadTrigger } from '../../src/release/debounce.js';
import { switchCurrent } from '../../src/release/switch.js';
import { startWatch } from '../../src/release/watch.js';
import { FakeMaster } from './fake-master.js';
import { outcome, tempDir, writeTree } from './helpers.js';

const lines: string[] = [];
const logger = createLogger({ format: 'text', write: (l) => lines.push(l) });

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

test('trigger: a burst of changes gives one reload; changes during a reload coalesce into exactly one more', async () => {
  const master = new FakeMaster();
  const held = [deferred<ReloadOutcome>(), deferred<ReloadOutcome>(), deferred<ReloadOutcome>()];
  master.answer = (n) => held[n - 1]!.promise;
  const trigger = new ReloadTrigger({ debounce: 20, reload: () => master.reload('watch') });
  for (let i = 0; i < 5; i++) trigger.poke();
  await master.reloads(1);
  for (let i = 0; i < 3; i++) trigger.poke(); // during the reload
  held[0]!.resolve(outcome(true));
  await master.reloads(2);
  held[1]!.resolve(outcome(true));
  trigger.poke(); // a sentinel change: its reload must be the third, not the fourth
  await master.reloads(3);
  held[2]!.resolve(outcome(true));
  await trigger.close();
  assert.equal(master.reasons.length, 3);
});

function config(appDir: string, paths: string[]): MasterConfig {
  return { appDir, watch: { paths, debounce: 50 } } as unknown as MasterConfig;
}

test('watch: one reload per file change, per rename-over upload, and per new file in a watched folder', async (t) => {
  const app = await tempDir(t);
  await writeTree(join(app, 'dist'), { 'a.js': '1' });
  await writeFile(join(app, 'config.json'), '{}');
  const master = new FakeMaster();
  const w = startWatch(config(app, [join(app, 'dist'), join(app, 'config.json')]), master, logger);
  t.after(() => w.close());
  await w.ready;
  await writeFile(join(app, 'dist', 'a.js'), '2');
  await master.reloads(1);
  await writeFile(join(app, 'upload.tmp'), '{"v":2}');
  await rename(join(app, 'upload.tmp'), join(app, 'config.json')); // rename-over upload
  await master.reloads(2);
  await mkdir(join(app, 'dist', 'sub'));
  await writeFile(join(app, 'dist', 'sub', 'b.js'), 'b');
  await master.reloads(3);
  await writeFile(join(app, 'dist', 'a.js'), 'sentinel');
  await master.reloads(4);
  assert.deepEqual(master.reasons, ['watch', 'watch', 'watch', 'watch']);
});

test('watch: a swap of the current symlink by rename triggers one reload (the link is watched, not its target)', async (t) => {
  const app = await tempDir(t);
  await writeTree(join(app, 'releases'), { 'a/app.js': 'a', 'b/app.js': 'b', 'c/app.js': 'c' });
  await symlink('releases/a', join(app, 'current'));
  const master = new FakeMaster();
  const w = startWatch(config(app, [join(app, 'current')]), master, logger);
  t.after(() => w.close());
  await w.ready;
  await switchCurrent(app, 'b');
  await master.reloads(1);
  await writeFile(join(app, 'releases', 'a', 'app.js'), 'changed old target'); // not watched
  await writeFile(join(app, 'unrelated.txt'), 'x'); // not watched
  await switchCurrent(app, 'c'); // sentinel
  await master.reloads(2);
  assert.equal(master.reasons.length, 2);
});
