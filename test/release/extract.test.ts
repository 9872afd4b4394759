import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { HitlessError } from '../../src/errors.js';
import { deployRelease } from '../../src/release/deploy.js';
import { readCurrent } from '../../src/release/layout.js';
import { tempDir, writeTree, craftTgz, type CraftEntry } from './helpers.js';

const noMaster = async (): Promise<never> => { throw new HitlessError('ERR_NO_MASTER', 'no master'); };

const cases: Array<[string, CraftEntry[], RegExp]> = [
  ['path traversal (../)', [{ path: 'ok.txt', type: 'File', body: 'ok' }, { path: '../evil.txt', type: 'File', body: 'pwned' }], /'\.\.'/],
  ['nested path traversal', [{ path: 'a/../../evil.txt', type: 'File', body: 'pwned' }], /'\.\.'/],
  ['absolute path', [{ path: '/tmp/hitless-evil-abs.txt', type: 'File', body: 'pwned' }], /absolute/],
  ['symlink escaping the tree', [{ path: 'out', type: 'SymbolicLink', linkpath: '../../..' }], /outside/],
  ['symlink to an absolute path', [{ path: 'etc', type: 'SymbolicLink', linkpath: '/etc' }], /absolute/],
  ['symlink chain that only escapes through another link', [
    { path: 'd', type: 'Directory', mode: 0o755 },
    { path: 'd/s', type: 'SymbolicLink', linkpath: '..' },
    { path: 'd/t', type: 'SymbolicLink', linkpath: 's/..' },
  ], /outside/],
  ['file written through a symlink', [
    { path: 'l', type: 'SymbolicLink', linkpath: '.' },
    { path: 'l/x', type: 'File', body: 'x' },
  ], /through the symlink/],
  ['hard link to a file outside', [{ path: 'h', type: 'Link', linkpath: '../../etc/passwd' }], /'\.\.'/],
  ['character device', [{ path: 'null', type: 'CharacterDevice', devmaj: 1, devmin: 3 }], /CharacterDevice/],
  ['fifo', [{ path: 'pipe', type: 'FIFO' }], /FIFO/],
];

for (const [name, entries, why] of cases) {
  test(`malicious archive is refused before anything is written: ${name}`, async (t) => {
    const app = await tempDir(t);
    const work = await tempDir(t);
    await deployRelease(await writeTree(join(work, 'v1'), { 'app.js': 'v1' }), { appDir: app, id: 'v1', reload: noMaster });
    const tgz = join(work, 'evil.tgz');
    await writeFile(tgz, craftTgz(entries));
    await assert.rejects(deployRelease(tgz, { appDir: app, reload: noMaster }), (err: HitlessError) => {
      assert.equal(err.code, 'ERR_RELEASE_UNSAFE_ARCHIVE');
      assert.match(err.message, why);
      return true;
    });
    assert.equal(await readCurrent(app), 'v1');
    assert.deepEqual(await readdir(join(app, 'releases')), ['.hitless-state.json', 'v1']);
    assert.equal(await readFile(join(app, 'current', 'app.js'), 'utf8'), 'v1');
    await assert.rejects(access(join(app, 'evil.txt')));
    await assert.rejects(access(join(app, 'releases', 'evil.txt')));
  });
}

test('an archive with nothing to run (no entries, or folders only) is refused as such, not as a truncated upload; a non-archive still is unreadable', async (t) => {
  const app = await tempDir(t);
  const work = await tempDir(t);
  await deployRelease(await writeTree(join(work, 'v1'), { 'app.js': 'v1' }), { appDir: app, id: 'v1', reload: noMaster });
  const nothing = join(work, 'nothing.tgz');
  await writeFile(nothing, gzipSync(Buffer.alloc(10240))); // what `tar czf x.tgz -T /dev/null` writes
  const folders = join(work, 'folders.tgz');
  await writeFile(folders, craftTgz([{ path: './', type: 'Directory', mode: 0o755 }, { path: 'dist', type: 'Directory', mode: 0o755 }]));
  for (const file of [nothing, folders]) {
    await assert.rejects(deployRelease(file, { appDir: app, reload: noMaster }),
      (err: HitlessError) => err.code === 'ERR_RELEASE_SOURCE' && /holds no files \(no entries, or folders only\): nothing to release/.test(err.message));
  }
  const page = join(work, 'page.tgz');
  await writeFile(page, '<html>404 not found</html>\n');
  await assert.rejects(deployRelease(page, { appDir: app, reload: noMaster }),
    (err: HitlessError) => err.code === 'ERR_RELEASE_SOURCE' && /is not a readable \.tgz\/\.tar archive/.test(err.message));
  assert.equal(await readCurrent(app), 'v1');
});

test('honest archive with in-tree symlinks and hard links extracts', async (t) => {
  const app = await tempDir(t);
  const work = await tempDir(t);
  const tgz = join(work, 'good.tgz');
  await writeFile(tgz, craftTgz([
    { path: 'lib', type: 'Directory', mode: 0o755 },
    { path: 'lib/a.js', type: 'File', body: 'a' },
    { path: 'lib/alias.js', type: 'SymbolicLink', linkpath: 'a.js' },
    { path: 'node_modules/.bin/tool', type: 'SymbolicLink', linkpath: '../../lib/a.js' },
    { path: 'copy.js', type: 'Link', linkpath: 'lib/a.js' },
  ]));
  const r = await deployRelease(tgz, { appDir: app, id: 'good', reload: noMaster });
  assert.equal(r.status, 'no-master');
  assert.equal(await readFile(join(app, 'current', 'node_modules/.bin/tool'), 'utf8'), 'a');
  assert.equal(await readFile(join(app, 'current', 'copy.js'), 'utf8'), 'a');
});
