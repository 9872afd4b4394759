// The fetcher inside a real master: a broken download leaves the old release serving;
// a good artifact is installed and goes live with one reload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tar from 'tar';
import { root, runCli, sourceFixture, startMaster } from '../helpers/master.js';
import { ArtifactServer } from './artifact-server.js';
import { tempDir } from './helpers.js';

const env = { HITLESS_LIB: pathToFileURL(join(root, 'build', 'src', 'index.js')).href };

async function build(dir: string, version: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await copyFile(sourceFixture('release/server.mjs'), join(dir, 'server.mjs'));
  await writeFile(join(dir, 'VERSION'), version);
  return dir;
}

function release(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(String(res.headers['x-release'])));
    }).on('error', reject);
  });
}

test('fetcher in the master: truncated and 500 downloads leave the old release serving; a good artifact goes live once', { timeout: 120_000 }, async (t) => {
  const app = await tempDir(t, 'hitless-app-');
  const builds = await tempDir(t, 'hitless-builds-');
  assert.equal((await runCli(['release', await build(join(builds, 'v1'), 'v1'), '--id', 'v1'], env, app)).code, 0);
  await tar.c({ gzip: true, file: join(builds, 'v2.tgz'), cwd: await build(join(builds, 'v2'), 'v2') }, ['.']);
  const server = await new ArtifactServer().start();
  t.after(() => server.close());
  server.artifact = await readFile(join(builds, 'v2.tgz'));
  server.mode = 'truncate';
  await writeFile(join(app, 'hitless.json'), JSON.stringify({ fetch: { url: `${server.base}/app.tgz`, interval: '100ms', sha256: server.sha256 } }));

  const master = await startMaster(t, { command: [process.execPath, 'server.mjs'], workers: 1, cwd: app, env, args: ['--config', join(app, 'hitless.json')] });
  await master.waitEvent((r) => /ERR_FETCH_TRUNCATED/.test(JSON.stringify(r)));
  server.mode = '500';
  const at = master.records.length;
  await master.waitEvent((r) => /ERR_FETCH_HTTP/.test(JSON.stringify(r)) && /HTTP 500/.test(JSON.stringify(r)), at);
  assert.equal(await readlink(join(app, 'current')), 'releases/v1');
  assert.equal(await release(master.url('/')), 'v1');
  assert.equal(master.events('reload-start').length, 0);

  server.mode = 'ok';
  const done = await master.waitEvent('reload-done');
  assert.equal(done.level, 'info', JSON.stringify(done));
  assert.equal(await release(master.url('/')), 'v2');
  assert.match(await readlink(join(app, 'current')), /^releases\/\d{8}T\d{6}Z-[0-9a-f]{7}$/);
  const served = server.requests.length;
  await server.served(served + 3); // three more polls: 304, no second reload
  assert.ok(server.requests.slice(-3).every((r) => r.status === 304));
  assert.equal(master.events('reload-start').length, 1);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
