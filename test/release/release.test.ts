import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, readdir, readFile, readlink, writeFile, chmod, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import * as tar from 'tar';
import { HitlessError } from '../../src/errors.js';
import { deployRelease, goLive } from '../../src/release/deploy.js';
import { readCurrent, releaseDir } from '../../src/release/layout.js';
import { readState, unfinished } from '../../src/release/state.js';
import { hashTree } from '../../src/release/hash.js';
import { defaultRollbackTarget } from '../../src/cli/commands/rollback.js';
import { tempDir, writeTree, outcome } from './helpers.js';

const noMaster = async (): Promise<never> => { throw new HitlessError('ERR_NO_MASTER', 'no master'); };

test('release of a folder creates releases/<id> and a relative current link', async (t) => {
  const app = await tempDir(t);
  const build = await writeTree(join(await tempDir(t), 'build'), { 'app.js': 'v1', 'lib/x.js': 'x' });
  const r = await deployRelease(build, { appDir: app, reload: noMaster, now: () => Date.UTC(2026, 10, 21, 10, 15) });
  assert.equal(r.status, 'no-master');
  assert.match(r.id, /^20261121T101500Z-[0-9a-f]{7}$/);
  assert.equal(await readlink(join(app, 'current')), `releases/${r.id}`);
  assert.equal(await readFile(join(app, 'current', 'lib/x.js'), 'utf8'), 'x');
  assert.equal((await readState(app)).releases[r.id]?.outcome?.result, 'switched');
});

test('release identical in content to current is skipped, different content is not', async (t) => {
  const app = await tempDir(t);
  const build = await writeTree(join(await tempDir(t), 'build'), { 'app.js': 'v1' });
  const first = await deployRelease(build, { appDir: app, reload: noMaster, id: 'a' });
  const again = await deployRelease(build, { appDir: app, reload: noMaster });
  assert.deepEqual([again.status, again.id], ['skipped', first.id]);
  assert.deepEqual(await readdir(join(app, 'releases')).then((n) => n.filter((x) => !x.startsWith('.'))), ['a']);
  await chmod(join(build, 'app.js'), 0o755); // a mode change is a change
  const moded = await deployRelease(build, { appDir: app, reload: noMaster, id: 'b' });
  assert.equal(moded.status, 'no-master');
  assert.equal(await readCurrent(app), 'b');
});

test('hash covers paths, bytes and symlink targets', async (t) => {
  const a = await writeTree(join(await tempDir(t), 'a'), { 'x': '1' });
  const base = (await hashTree(a)).hash;
  await symlink('x', join(a, 'l'));
  const withLink = (await hashTree(a)).hash;
  assert.notEqual(base, withLink);
  const b = await writeTree(join(await tempDir(t), 'b'), { 'x': '1' });
  await symlink('y', join(b, 'l'));
  assert.notEqual((await hashTree(b)).hash, withLink);
});

test('release of a .tgz archive and reload outcome live', async (t) => {
  const app = await tempDir(t);
  const work = await tempDir(t);
  await writeTree(join(work, 'pkg'), { 'app.js': 'v2', 'bin/run': '#!/bin/sh' });
  const tgz = join(work, 'app.tgz');
  await tar.c({ gzip: true, file: tgz, cwd: join(work, 'pkg') }, ['.']);
  const reasons: string[] = [];
  const r = await deployRelease(tgz, { appDir: app, id: 'v2', reload: async (why) => { reasons.push(why); return outcome(true); } });
  assert.equal(r.status, 'live');
  assert.deepEqual(reasons, ['release v2']);
  assert.equal(await readFile(join(app, 'current', 'app.js'), 'utf8'), 'v2');
  assert.equal((await readState(app)).releases.v2?.outcome?.result, 'live');
});

test('release that does not go live switches current back (ERR_RELEASE_ROLLED_BACK with reason and output)', async (t) => {
  const app = await tempDir(t);
  const src = await tempDir(t);
  await deployRelease(await writeTree(join(src, 'v1'), { 'app.js': 'v1' }), { appDir: app, id: 'v1', reload: noMaster });
  await assert.rejects(
    deployRelease(await writeTree(join(src, 'v2'), { 'app.js': 'crash' }), { appDir: app, id: 'v2', reload: async () => outcome(false) }),
    (err: HitlessError) => {
      assert.equal(err.code, 'ERR_RELEASE_ROLLED_BACK');
      assert.match(err.message, /exited with code 1/);
      assert.deepEqual(err.details.output, ['Error: boom']);
      return true;
    },
  );
  assert.equal(await readCurrent(app), 'v1');
  const state = await readState(app);
  assert.equal(state.releases.v2?.outcome?.result, 'rolled-back');
  assert.equal(state.previous, undefined);
});

test('a rollback that does not go live says it was a rollback (subject), not a release', async (t) => {
  const app = await tempDir(t);
  const src = await tempDir(t);
  const ok = async () => outcome(true);
  await deployRelease(await writeTree(join(src, 'v1'), { 'app.js': 'v1' }), { appDir: app, id: 'v1', reload: ok });
  await deployRelease(await writeTree(join(src, 'v2'), { 'app.js': 'v2' }), { appDir: app, id: 'v2', reload: ok });
  await assert.rejects(goLive('v1', { appDir: app, reason: 'rollback to v1', subject: 'rollback to v1', reload: async () => outcome(false) }), {
    code: 'ERR_RELEASE_ROLLED_BACK', message: /^rollback to v1 did not go live: .*; current is back on v2 /,
  });
});

test('first release that does not go live removes current again', async (t) => {
  const app = await tempDir(t);
  const build = await writeTree(join(await tempDir(t), 'b'), { 'app.js': 'x' });
  await assert.rejects(deployRelease(build, { appDir: app, reload: async () => outcome(false) }), { code: 'ERR_RELEASE_ROLLED_BACK' });
  await assert.rejects(lstat(join(app, 'current')), { code: 'ENOENT' });
});

test('prepare runs in the release folder with its output shown; a failing prepare removes the half-made folder', async (t) => {
  const app = await tempDir(t);
  const src = await tempDir(t);
  const out: string[] = [];
  const prepare = [process.execPath, '-e', 'require("fs").writeFileSync("prepared", process.env.HITLESS_RELEASE); console.log("preparing")'];
  await deployRelease(await writeTree(join(src, 'v1'), { 'a': '1' }), { appDir: app, id: 'v1', prepare, reload: noMaster, onOutput: (_s, c) => out.push(c) });
  assert.equal(await readFile(join(app, 'current', 'prepared'), 'utf8'), 'v1');
  assert.match(out.join(''), /preparing/);
  const failing = [process.execPath, '-e', 'console.error("npm ERR! nope"); process.exit(3)'];
  await assert.rejects(
    deployRelease(await writeTree(join(src, 'v2'), { 'a': '2' }), { appDir: app, id: 'v2', prepare: failing, reload: noMaster }),
    (err: HitlessError) => err.code === 'ERR_RELEASE_PREPARE' && (err.details.output as string[]).includes('npm ERR! nope') &&
      err.message === `release v2: prepare command ${JSON.stringify(failing)} exited with code 3; removed it, current is still v1`,
  );
  assert.equal(await readCurrent(app), 'v1');
  assert.deepEqual((await readdir(join(app, 'releases'))).filter((n) => !n.startsWith('.')), ['v1']);
  assert.equal((await readState(app)).releases.v2, undefined);
});

test('a release is marked as being prepared (by its pid) while prepare runs, and the mark cleared once it succeeds', async (t) => {
  const app = await tempDir(t);
  const build = await writeTree(join(await tempDir(t), 'v1'), { 'a': '1' });
  // prepare reads the state file as a killed run would leave it, while it runs.
  const prepare = [process.execPath, '-e', `const s = JSON.parse(require('fs').readFileSync('../.hitless-state.json', 'utf8'));
    require('fs').writeFileSync('mark', String(s.releases[process.env.HITLESS_RELEASE].preparing))`];
  await deployRelease(build, { appDir: app, id: 'v1', prepare, reload: noMaster });
  assert.equal(await readFile(join(app, 'current', 'mark'), 'utf8'), String(process.pid));
  assert.equal((await readState(app)).releases.v1?.preparing, undefined);
  assert.equal(unfinished((await readState(app)).releases.v1), undefined);
});

test('bad sources are refused with ERR_RELEASE_SOURCE', async (t) => {
  const app = await tempDir(t);
  await assert.rejects(deployRelease(join(app, 'missing'), { appDir: app, reload: noMaster }), { code: 'ERR_RELEASE_SOURCE' });
  await assert.rejects(deployRelease('https://example.com/app.tgz', { appDir: app, reload: noMaster }),
    (e: Error & { code?: string }) => e.code === 'ERR_RELEASE_SOURCE' && /is a URL: .*download it first \(curl -fLo app\.tgz <url>\), or let the master fetch it/.test(e.message));
  await writeFile(join(app, 'notes.txt'), 'x');
  await assert.rejects(deployRelease(join(app, 'notes.txt'), { appDir: app, reload: noMaster }), { code: 'ERR_RELEASE_SOURCE' });
  await assert.rejects(deployRelease(app, { appDir: app, reload: noMaster }), { code: 'ERR_RELEASE_SOURCE' });
  await assert.rejects(deployRelease(join(app, 'notes.txt'), { appDir: app, id: '../x', reload: noMaster }), { code: 'ERR_USAGE' });
  // An archive tar cannot read: named, as a bad source (not an unexpected error), nothing installed.
  await writeFile(join(app, 'garbage.tgz'), 'not an archive\n');
  await assert.rejects(deployRelease(join(app, 'garbage.tgz'), { appDir: app, reload: noMaster }),
    (err: HitlessError) => err.code === 'ERR_RELEASE_SOURCE' && err.message.startsWith(`${join(app, 'garbage.tgz')} is not a readable .tgz/.tar archive (`));
  const src = await tempDir(t);
  await writeTree(join(src, 'b'), { 'big.txt': Array.from({ length: 4000 }, (_, i) => (i * 7919) % 997).join(',') });
  await tar.c({ gzip: true, file: join(src, 'b.tgz'), cwd: join(src, 'b') }, ['.']);
  const whole = await readFile(join(src, 'b.tgz'));
  await writeFile(join(app, 'cut.tgz'), whole.subarray(0, whole.length - 100));
  await assert.rejects(deployRelease(join(app, 'cut.tgz'), { appDir: app, reload: noMaster }),
    (err: HitlessError) => err.code === 'ERR_RELEASE_SOURCE' && /cut\.tgz is not a readable .*truncated or partial upload/.test(err.message));
  assert.deepEqual((await readdir(join(app, 'releases'))).filter((n) => !n.startsWith('.')), []);
});

test('prune keeps `keep` newest releases and never the current or previous one', async (t) => {
  const app = await tempDir(t);
  const src = await tempDir(t);
  let clock = 1000;
  const now = () => (clock += 1000);
  const ok = async () => outcome(true);
  for (const id of ['r1', 'r2', 'r3']) {
    await deployRelease(await writeTree(join(src, id), { v: id }), { appDir: app, id, reload: ok, keep: 2, now });
  }
  assert.deepEqual((await readdir(join(app, 'releases'))).filter((n) => !n.startsWith('.')).sort(), ['r2', 'r3']);
  // Roll back to r2, then go back to r3: previous is now r2... make the old ones current and previous:
  await goLive('r2', { appDir: app, reason: 'rollback', reload: ok, keep: 2, now });
  // current r2, previous r3. Two more releases with keep 1: r2 (current) and r4/r5 order must not matter.
  await deployRelease(await writeTree(join(src, 'r4'), { v: 'r4' }), { appDir: app, id: 'r4', reload: ok, keep: 1, now });
  // current r4, previous r2 (both kept), r3 is neither and older than keep=1
  assert.deepEqual((await readdir(join(app, 'releases'))).filter((n) => !n.startsWith('.')).sort(), ['r2', 'r4']);
  await goLive('r2', { appDir: app, reason: 'rollback', reload: ok, keep: 0, now });
  assert.deepEqual((await readdir(join(app, 'releases'))).filter((n) => !n.startsWith('.')).sort(), ['r2', 'r4']);
  assert.equal(await readCurrent(app), 'r2');
  assert.equal((await readState(app)).previous, 'r4');
  assert.ok(await lstat(releaseDir(app, 'r4')));
});

test('prune: `keep` counts releases that went live; failed ones are pruned first, the newest failed one kept, from the failure on', async (t) => {
  const app = await tempDir(t);
  const src = await tempDir(t);
  let clock = 1000;
  const now = () => (clock += 1000);
  const release = (id: string, ok: boolean) =>
    deployRelease(join(src, id), { appDir: app, id, keep: 3, now, reload: async () => outcome(ok) });
  for (const id of ['g1', 'g2']) {
    await writeTree(join(src, id), { v: id });
    await release(id, true);
  }
  // The same failing build released twice: two rolled-back copies (current stayed g2).
  for (const id of ['f1', 'f2']) {
    await writeTree(join(src, id), { v: 'crash' });
    await assert.rejects(release(id, false), { code: 'ERR_RELEASE_ROLLED_BACK' });
  }
  // At the second failure already, not at the next good release: failed builds do not pile up.
  assert.deepEqual((await readdir(join(app, 'releases'))).filter((n) => !n.startsWith('.')).sort(), ['f2', 'g1', 'g2']);
  // Nor do their records in the state file (h17 F5).
  assert.deepEqual(Object.keys((await readState(app)).releases).sort(), ['f2', 'g1', 'g2']);
  await writeTree(join(src, 'g3'), { v: 'g3' });
  const r = await release('g3', true);
  assert.equal(r.status, 'live');
  assert.deepEqual(r.pruned, []);
  assert.deepEqual((await readdir(join(app, 'releases'))).filter((n) => !n.startsWith('.')).sort(), ['f2', 'g1', 'g2', 'g3']);
});

test('rollback default skips a copy of current: the same build released again after a rollback is no way back', async (t) => {
  const app = await tempDir(t);
  const src = await tempDir(t);
  let clock = 1000;
  const now = () => (clock += 1000);
  const ok = async () => outcome(true);
  const a = await writeTree(join(src, 'a'), { 'app.js': 'A' });
  const b = await writeTree(join(src, 'b'), { 'app.js': 'B' });
  await deployRelease(a, { appDir: app, id: 'v1', reload: ok, now });
  await deployRelease(b, { appDir: app, id: 'v2', reload: ok, now });
  await goLive('v1', { appDir: app, reason: 'rollback', reload: ok, now });
  // Current is v1 (A), so B is installed again under a new id: v3, a copy of v2.
  assert.equal((await deployRelease(b, { appDir: app, id: 'v3', reload: ok, now })).status, 'live');
  assert.equal(await defaultRollbackTarget(app, 'v3'), 'v1');
});

test('a retry under the id of a release that is not current (it did not go live, or was rolled back) installs it afresh; other content under that id is refused', async (t) => {
  const app = await tempDir(t);
  const src = await tempDir(t);
  let clock = 1000;
  const now = () => (clock += 1000);
  const ok = async () => outcome(true);
  await deployRelease(await writeTree(join(src, 'v1'), { 'app.js': 'v1' }), { appDir: app, id: 'v1', reload: ok, now });
  const v2 = await writeTree(join(src, 'v2'), { 'app.js': 'v2' });
  await assert.rejects(deployRelease(v2, { appDir: app, id: 'v2', reload: async () => outcome(false), now }), { code: 'ERR_RELEASE_ROLLED_BACK' });
  // A deploy script naming releases after commits runs again once the host is fixed (h17 F3).
  const retried = await deployRelease(v2, { appDir: app, id: 'v2', reload: ok, now });
  assert.deepEqual([retried.status, await readCurrent(app), (await readState(app)).releases.v2?.outcome?.result], ['live', 'v2', 'live']);
  // Live, then rolled back (what `hitless deploy` does to the hosts done when a later one fails).
  await goLive('v1', { appDir: app, reason: 'rollback', reload: ok, now });
  assert.equal((await deployRelease(v2, { appDir: app, id: 'v2', reload: ok, now })).status, 'live');
  await goLive('v1', { appDir: app, reason: 'rollback', reload: ok, now });
  const other = await writeTree(join(src, 'v2-other'), { 'app.js': 'not v2' });
  await assert.rejects(deployRelease(other, { appDir: app, id: 'v2', reload: ok, now }), {
    code: 'ERR_USAGE', message: 'release v2 already exists with other content; give another --id',
  });
  assert.equal(await readFile(join(app, 'releases', 'v2', 'app.js'), 'utf8'), 'v2');
  assert.equal(await readCurrent(app), 'v1');
});
