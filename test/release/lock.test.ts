// One release operation at a time per app folder: a second `hitless release` while one
// runs is refused without touching `current`; a lock left by a killed deploy is taken
// over, and the half-made staging folder it left is removed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/master.js';
import { tempDir, writeTree } from './helpers.js';

test('a release while another release operation holds the lock: ERR_RELEASE_BUSY naming its pid, current untouched', async (t) => {
  const app = await tempDir(t, 'hitless-lock-app-');
  const builds = await tempDir(t, 'hitless-lock-builds-');
  assert.equal((await runCli(['release', await writeTree(join(builds, 'v1'), { 'a.txt': 'v1' }), '--id', 'v1'], {}, app)).code, 0);
  // This test process stands for a deploy in progress.
  await writeFile(join(app, 'releases', '.hitless-lock'), `${process.pid}\n`);
  const r = await runCli(['release', await writeTree(join(builds, 'v2'), { 'a.txt': 'v2' }), '--id', 'v2'], {}, app);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`hitless: another release operation \\(pid ${process.pid}\\) is in progress`));
  assert.equal(await readlink(join(app, 'current')), 'releases/v1');
  assert.equal(existsSync(join(app, 'releases', 'v2')), false);
  assert.ok(existsSync(join(app, 'releases', '.hitless-lock')), "the other operation's lock is left alone");
});

test('a lock left by a killed deploy is taken over, its staging folder removed, and the lock released after', async (t) => {
  const app = await tempDir(t, 'hitless-lock-app-');
  const builds = await tempDir(t, 'hitless-lock-builds-');
  const dead = spawn(process.execPath, ['-e', '']);
  const deadPid = dead.pid ?? 0;
  await new Promise((resolve) => dead.once('exit', resolve));
  await mkdir(join(app, 'releases', `.staging-${deadPid}-abcd`), { recursive: true });
  await writeFile(join(app, 'releases', '.hitless-lock'), `${deadPid}\n`);
  const r = await runCli(['release', await writeTree(join(builds, 'v1'), { 'a.txt': 'v1' }), '--id', 'v1'], {}, app);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await readlink(join(app, 'current')), 'releases/v1');
  assert.equal(existsSync(join(app, 'releases', `.staging-${deadPid}-abcd`)), false);
  assert.equal(existsSync(join(app, 'releases', '.hitless-lock')), false);
});
