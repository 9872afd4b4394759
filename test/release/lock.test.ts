// One release operation at a time per app folder: a second `hitless release` while one
// runs is refused without touching `current`; a lock left by a killed deploy is taken
// over, and what it left half-made (a staging folder, a release whose prepare did not
// finish) is removed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readState, updateState } from '../../src/release/state.js';
import { runCli } from '../helpers/master.js';
import { deadPid, tempDir, writeTree } from './helpers.js';

test('a release while another release operation holds the lock: ERR_RELEASE_BUSY naming its pid, current untouched', async (t) => {
  const app = await tempDir(t, 'hitless-lock-app-');
  const builds = await tempDir(t, 'hitless-lock-builds-');
  assert.equal((await runCli(['release', await writeTree(join(builds, 'v1'), { 'a.txt': 'v1' }), '--id', 'v1'], {}, app)).code, 0);
  // This test process stands for a deploy in progress.
  await writeFile(join(app, 'releases', '.hitless-lock'), `${process.pid}\n`);
  const r = await runCli(['release', await writeTree(join(builds, 'v2'), { 'a.txt': 'v2' }), '--id', 'v2'], {}, app);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`hitless: another release operation \\(pid ${process.pid}\\) is in progress .* \\(ERR_RELEASE_BUSY\\)\n$`));
  assert.equal(await readlink(join(app, 'current')), 'releases/v1');
  assert.equal(existsSync(join(app, 'releases', 'v2')), false);
  assert.ok(existsSync(join(app, 'releases', '.hitless-lock')), "the other operation's lock is left alone");
});

test('hitless rollback to a release that does not exist names its code, as every release error does (ERR_RELEASE_NOT_FOUND)', async (t) => {
  const app = await tempDir(t, 'hitless-lock-app-');
  const builds = await tempDir(t, 'hitless-lock-builds-');
  assert.equal((await runCli(['release', await writeTree(join(builds, 'v1'), { 'a.txt': 'v1' }), '--id', 'v1'], {}, app)).code, 0);
  const r = await runCli(['rollback', 'nosuch'], {}, app);
  assert.equal(r.stderr, `hitless: release nosuch does not exist in ${app}/releases; \`hitless releases\` lists them (ERR_RELEASE_NOT_FOUND)\n`);
  assert.equal(r.code, 1);
});

test('a lock left by a killed deploy is taken over, its staging folder removed, and the lock released after', async (t) => {
  const app = await tempDir(t, 'hitless-lock-app-');
  const builds = await tempDir(t, 'hitless-lock-builds-');
  const pid = await deadPid();
  await mkdir(join(app, 'releases', `.staging-${pid}-abcd`), { recursive: true });
  await writeFile(join(app, 'releases', '.hitless-lock'), `${pid}\n`);
  const r = await runCli(['release', await writeTree(join(builds, 'v1'), { 'a.txt': 'v1' }), '--id', 'v1'], {}, app);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await readlink(join(app, 'current')), 'releases/v1');
  assert.equal(existsSync(join(app, 'releases', `.staging-${pid}-abcd`)), false);
  assert.equal(existsSync(join(app, 'releases', '.hitless-lock')), false);
});

test('a release left unprepared by a killed `hitless release` is removed by the next one, so `hitless rollback` never picks it', async (t) => {
  const app = await tempDir(t, 'hitless-lock-app-');
  const builds = await tempDir(t, 'hitless-lock-builds-');
  assert.equal((await runCli(['release', await writeTree(join(builds, 'v1'), { 'a.txt': 'v1' }), '--id', 'v1'], {}, app)).code, 0);
  // What a release killed during prepare leaves: its folder without what prepare makes,
  // its record marked by its pid, its lock.
  const pid = await deadPid();
  await writeTree(join(app, 'releases', 'killed'), { 'a.txt': 'killed' });
  await updateState(app, (s) => { s.releases.killed = { id: 'killed', createdAt: Date.now(), hash: 'h-killed', preparing: pid }; });
  await writeFile(join(app, 'releases', '.hitless-lock'), `${pid}\n`);
  // One being prepared by a live process (an install outside the lock) is not touched.
  await writeTree(join(app, 'releases', 'busy'), { 'a.txt': 'busy' });
  await updateState(app, (s) => { s.releases.busy = { id: 'busy', createdAt: Date.now(), hash: 'h-busy', preparing: process.pid }; });
  const listed = await runCli(['releases', '--json'], {}, app);
  const rows = (JSON.parse(listed.stdout) as { releases: Array<{ id: string; outcome?: string }> }).releases;
  assert.equal(rows.find((r) => r.id === 'killed')?.outcome, 'interrupted (prepare did not finish)');
  assert.equal(rows.find((r) => r.id === 'busy')?.outcome, 'preparing');

  const r = await runCli(['release', await writeTree(join(builds, 'v2'), { 'a.txt': 'v2' }), '--id', 'v2'], {}, app);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(existsSync(join(app, 'releases', 'killed')), false);
  const state = await readState(app);
  assert.equal(state.releases.killed, undefined);
  assert.equal(state.releases.busy?.preparing, process.pid);
  assert.ok(existsSync(join(app, 'releases', 'busy')));
  assert.equal(existsSync(join(app, 'releases', '.hitless-lock')), false);

  const back = await runCli(['rollback'], {}, app);
  assert.equal(back.code, 0, back.stderr);
  assert.equal(await readlink(join(app, 'current')), 'releases/v1');
});
