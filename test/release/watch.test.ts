import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLogger } from '../../src/core/logger.js';
import type { MasterConfig } from '../../src/config/types.js';
import type { ReloadOutcome } from '../../src/core/types.js';
import { ReloadTrigger } from '../../src/release/debounce.js';
import { switchCurrent } from '../../src/release/switch.js';
import { awaitPath } from '../../src/release/await-path.js';
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

test('watch: a path whose folders are missing at start (regression: a reload at start for nothing, and no reload ever once it appeared)', { timeout: 10_000 }, async (t) => {
  const app = await tempDir(t);
  await writeTree(join(app, 'releases'), { 'a/app.js': 'a', 'b/app.js': 'b', 'c/app.js': 'c' });
  await symlink('releases/a', join(app, 'current'));
  const file = join(app, 'config', 'prod', 'app.json');
  const master = new FakeMaster();
  const from = lines.length;
  const w = startWatch(config(app, [join(app, 'current'), file]), master, logger);
  t.after(() => w.close());
  await w.ready;
  assert.equal(lines.slice(from).filter((l) => l.includes(`WARN watch: path does not exist yet`) && l.includes(file)).length, 1, lines.slice(from).join(''));
  // A master writes beside `current` (its log, its state file): chokidar's own fallback
  // for the missing path then reported `current` as added, a reload for nothing.
  await writeFile(join(app, 'hitless.log'), 'a log line\n');
  await mkdir(join(app, 'config'));
  await mkdir(join(app, 'config', 'prod')); // each folder appears on its own
  await switchCurrent(app, 'b'); // sentinel: the only reason for the first reload
  await master.reloads(1);
  await writeFile(file, '{"a":1}');
  await master.reloads(2);
  await writeFile(file, '{"a":2}');
  await master.reloads(3);
  await writeFile(file, '{"a":3}');
  await master.reloads(4);
  await switchCurrent(app, 'c'); // sentinel: no extra reload slipped in before it
  await master.reloads(5);
  assert.equal(master.reasons.length, 5);
  const changes = lines.slice(from).filter((l) => l.includes('watch: change'));
  assert.ok(!changes.some((l) => /event=add path=\S*\/current\n/.test(l)), changes.join(''));
  assert.ok(!changes.some((l) => /path=\S*\/config(\/prod)?\n/.test(l)), `a folder on the way is no reason to reload:\n${changes.join('')}`);
});

test('watch: a missing path whose folders are made at once (mkdir -p, then the file) is one reload, then one per change', { timeout: 10_000 }, async (t) => {
  const app = await tempDir(t);
  const file = join(app, 'a', 'b', 'c', 'app.json');
  const master = new FakeMaster();
  const w = startWatch(config(app, [file, join(app, 'VERSION')]), master, logger);
  t.after(() => w.close());
  await w.ready;
  await writeTree(join(app, 'a', 'b', 'c'), { 'app.json': '1' });
  await master.reloads(1);
  await writeFile(join(app, 'upload.tmp'), '2');
  await rename(join(app, 'upload.tmp'), file); // rename-over upload
  await master.reloads(2);
  await writeFile(join(app, 'VERSION'), 'v2'); // the second missing path, at the top level
  await master.reloads(3);
  await writeFile(file, '3'); // sentinel
  await master.reloads(4);
  assert.equal(master.reasons.length, 4);
});

test('awaitPath: follows a missing path down its folders as they are made, removed and made again', { timeout: 10_000 }, async (t) => {
  const app = await tempDir(t);
  const file = join(app, 'a', 'b', 'app.json');
  const appeared = deferred<void>();
  let calls = 0;
  const waiter = awaitPath(file, { onAppear: () => (calls++, appeared.resolve()), onError: (err) => assert.fail(err) });
  t.after(() => waiter.close());
  await mkdir(join(app, 'a', 'b'), { recursive: true });
  await rm(join(app, 'a'), { recursive: true }); // the folder it may be watching goes away…
  await mkdir(join(app, 'a')); // …and another is made in its place
  await writeFile(join(app, 'a', 'b'), 'a file where a folder is expected');
  await rm(join(app, 'a', 'b'));
  await mkdir(join(app, 'a', 'b'));
  await writeFile(file, '{}');
  await appeared.promise;
  assert.equal(calls, 1);
});

/** A logger whose lines can be awaited: `seen(re)` resolves once a line matches (one already written counts). */
function awaitableLogger(): { logger: ReturnType<typeof createLogger>; seen: (re: RegExp) => Promise<string> } {
  const written: string[] = [];
  const waiting: { re: RegExp; resolve: (line: string) => void }[] = [];
  const logger = createLogger({
    format: 'text',
    write: (line) => {
      written.push(line);
      for (const w of waiting.filter((w) => w.re.test(line))) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(line);
      }
    },
  });
  const seen = (re: RegExp): Promise<string> => {
    const line = written.find((l) => re.test(l));
    return line !== undefined ? Promise.resolve(line) : new Promise((resolve) => waiting.push({ re, resolve }));
  };
  return { logger, seen };
}

test('watch: a watched folder removed and made again (a clean build), and a watched file whose folder is replaced, are watched again (regression: never seen again)', { timeout: 10_000 }, async (t) => {
  const app = await tempDir(t);
  await writeTree(join(app, 'dist'), { 'a.js': '1' });
  await writeTree(join(app, 'config'), { 'app.json': '{}' });
  const dist = join(app, 'dist');
  const file = join(app, 'config', 'app.json');
  const { logger: log, seen } = awaitableLogger();
  const master = new FakeMaster();
  const w = startWatch(config(app, [dist, file]), master, log);
  t.after(() => w.close());
  await w.ready;
  const esc = (p: string): string => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

  await rm(dist, { recursive: true }); // `rm -rf dist && tsc`
  await seen(new RegExp(`watch: path removed; it will be watched again once it appears path=${esc(dist)}\\n`));
  await mkdir(dist);
  await seen(new RegExp(`watch: change event=appear path=${esc(dist)}\\n`));
  await writeFile(join(dist, 'b.js'), 'built again');
  await seen(new RegExp(`watch: change event=add path=${esc(join(dist, 'b.js'))}\\n`));

  await rm(join(app, 'config'), { recursive: true }); // the folder holding a watched file replaced
  await seen(new RegExp(`watch: path removed; it will be watched again once it appears path=${esc(file)}\\n`));
  await writeTree(join(app, 'config'), { 'app.json': '{"v":2}' });
  await seen(new RegExp(`watch: change event=appear path=${esc(file)}\\n`));
  await writeFile(file, '{"v":3}');
  await seen(new RegExp(`watch: change event=change path=${esc(file)}\\n`));
  await master.reloads(1);
  assert.ok(master.reasons.every((r) => r === 'watch'));
});
