/**
 * Node's compile cache for workers (issue 23): where the folder goes and when there is none
 * (compileCacheFolder), that a NODE_COMPILE_CACHE the user set wins (specFromConfig), and end
 * to end that workers get the run dir's folder, which a Node with the cache (>= 22.1) fills.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { specFromConfig } from '../../src/core/spec.js';
import { compileCacheFolder } from '../../src/master/compile-cache.js';
import { fakeConfig } from '../ops/fake-master.js';
import { fixture, startMaster } from '../helpers/master.js';

/** Files in the cache folder (Node creates its per-version subfolder at start, files only when it writes). */
function cacheFiles(folder: string): number {
  return readdirSync(folder, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
}

function tmp(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-cc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('compile cache: by default a private folder in the run dir, created once', (t) => {
  const runDir = tmp(t);
  const choice = compileCacheFolder(fakeConfig({ runDir }), {});
  assert.deepEqual(choice, { dir: join(runDir, 'compile-cache') });
  assert.equal(statSync(join(runDir, 'compile-cache')).mode & 0o777, 0o700);
  assert.deepEqual(compileCacheFolder(fakeConfig({ runDir }), {}), choice, 'the same folder for every generation');
});

test('compile cache: off, a named folder, and none for another worker user with the default', (t) => {
  const dir = tmp(t);
  assert.deepEqual(compileCacheFolder(fakeConfig({ runDir: dir, compileCache: false }), {}), {});
  const named = join(dir, 'cache', 'node');
  assert.deepEqual(compileCacheFolder(fakeConfig({ runDir: dir, compileCache: named }), {}), { dir: named });
  assert.ok(existsSync(named));
  const other = compileCacheFolder(fakeConfig({ runDir: dir }), { uid: (process.geteuid?.() ?? 0) + 12345 }, true);
  assert.equal(other.dir, undefined);
  assert.match(other.note ?? '', /another user.*set "compileCache" to a folder/);
  // Node 20 has no compile cache: naming a folder would change nothing, so no advice.
  assert.deepEqual(compileCacheFolder(fakeConfig({ runDir: dir }), { uid: (process.geteuid?.() ?? 0) + 12345 }, false), {});
});

test('compile cache: workers get NODE_COMPILE_CACHE unless the environment names one already', () => {
  const ctx = { fds: [], fdNames: [], pdeathsig: false, baseEnv: {}, compileCache: '/run/x/compile-cache' };
  assert.equal(specFromConfig(fakeConfig(), ctx).env.NODE_COMPILE_CACHE, '/run/x/compile-cache');
  assert.equal(specFromConfig(fakeConfig({ env: { NODE_COMPILE_CACHE: '/mine' } }), ctx).env.NODE_COMPILE_CACHE, '/mine');
  assert.equal(specFromConfig(fakeConfig(), { ...ctx, baseEnv: { NODE_COMPILE_CACHE: '/outer' } }).env.NODE_COMPILE_CACHE, '/outer');
  assert.equal(specFromConfig(fakeConfig(), { ...ctx, compileCache: undefined }).env.NODE_COMPILE_CACHE, undefined);
});

test('compile cache: workers get the run dir\'s folder, shared across a reload, written at READY (Node >= 22.10)', { timeout: 60_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/boot-app.js')], env: { BOOT_WAIT: '0' } });
  const folder = join(master.runDir, 'compile-cache');
  const first = await fetch(master.url('/compile-cache'));
  assert.equal(await first.text(), folder);
  // The serving generation wrote its cache at READY (ready() flushes it), not only at its exit,
  // so the next generation, which starts while this one serves, boots from it.
  if (typeof (module as { flushCompileCache?: unknown }).flushCompileCache === 'function') assert.ok(cacheFiles(folder) > 0, 'written at READY');
  const done = await master.reload();
  assert.equal(done.code, 0, done.stderr);
  const second = await fetch(master.url('/compile-cache'));
  assert.equal(await second.text(), folder, 'the next generation reads the same folder');
  // Node 20 ignores the variable; from 22.1 the worker writes its modules' code cache there.
  if (typeof (module as { enableCompileCache?: unknown }).enableCompileCache === 'function') assert.ok(cacheFiles(folder) > 0);
});
