// Releases end to end: the real CLI and master, real workers, load on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdir, readlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cli, root, runCli, sourceFixture, startMaster } from '../helpers/master.js';
import { startLoad } from '../helpers/load.js';
import { tempDir } from './helpers.js';

const env = { HITLESS_LIB: pathToFileURL(join(root, 'build', 'src', 'index.js')).href };

async function build(dir: string, server: string, version: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await copyFile(sourceFixture(`release/${server}`), join(dir, 'server.mjs'));
  await writeFile(join(dir, 'VERSION'), version);
  return dir;
}

function get(url: string): Promise<{ status: number; release: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, release: String(res.headers['x-release']) }));
    }).on('error', reject);
  });
}

test('a release whose code crashes at boot is switched back with zero failed requests under load; a good one goes live', { timeout: 300_000 }, async (t) => {
  const app = await tempDir(t, 'hitless-app-');
  const builds = await tempDir(t, 'hitless-builds-');
  const first = await runCli(['release', await build(join(builds, 'v1'), 'server.mjs', 'v1'), '--id', 'v1'], env, app);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /no master is running, the next `hitless start` will run it/);

  const master = await startMaster(t, { command: [process.execPath, 'server.mjs'], workers: 2, cwd: app, env });
  assert.equal((await get(master.url('/'))).release, 'v1');
  const load = startLoad(t, { url: master.url('/'), connections: 20 });
  t.after(() => load.stop());

  const bad = await runCli(['release', await build(join(builds, 'bad'), 'crash-at-boot.mjs', 'bad'), '--id', 'bad', '--run-dir', master.runDir], env, app);
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stderr, /ERR_RELEASE_ROLLED_BACK/);
  assert.match(bad.stderr, /current is back on v1/);
  assert.match(bad.stderr, /release is broken/);
  assert.equal(await readlink(join(app, 'current')), 'releases/v1');
  assert.equal((await get(master.url('/'))).release, 'v1');

  const good = await runCli(['release', await build(join(builds, 'v2'), 'server.mjs', 'v2'), '--id', 'v2', '--run-dir', master.runDir], env, app);
  assert.equal(good.code, 0, good.stdout + good.stderr);
  assert.match(good.stdout, /v2 is live \(was v1\)/);
  assert.equal(await readlink(join(app, 'current')), 'releases/v2');
  assert.equal((await get(master.url('/'))).release, 'v2');

  const back = await runCli(['rollback', '--run-dir', master.runDir], env, app);
  assert.equal(back.code, 0, back.stdout + back.stderr);
  assert.equal((await get(master.url('/'))).release, 'v1');

  const result = await load.stop();
  assert.ok(result.requests > 100, `too little load to mean anything: ${result.raw}`);
  assert.equal(result.failed, 0, `failed requests:\n${result.raw}`);

  const list = await runCli(['releases', '--json'], env, app);
  const rows = (JSON.parse(list.stdout) as { releases: Array<{ id: string; current: boolean; outcome: string }> }).releases;
  assert.deepEqual(rows.map((r) => [r.id, r.current, r.outcome]), [
    ['v1', true, 'live'], ['bad', false, 'rolled-back (ERR_WORKER_EXITED)'], ['v2', false, 'live'],
  ]);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('Ctrl-C during the reload of a release: hitless release waits for the outcome and switches current back when the reload fails (regression: killed there, it left current on the refused release)', { timeout: 300_000 }, async (t) => {
  const app = await tempDir(t, 'hitless-app-');
  const builds = await tempDir(t, 'hitless-builds-');
  assert.equal((await runCli(['release', await build(join(builds, 'v1'), 'server.mjs', 'v1'), '--id', 'v1'], env, app)).code, 0);
  const master = await startMaster(t, { command: [process.execPath, 'server.mjs'], workers: 1, cwd: app, env });

  const child = spawn(process.execPath, [cli, 'release', await build(join(builds, 'v2'), 'ready-never.mjs', 'v2'), '--id', 'v2', '--run-dir', master.runDir], {
    cwd: app, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  const said = new Promise<void>((resolve) => {
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.includes('waiting for its outcome')) resolve();
    });
  });
  child.stdout.resume();
  const closed = once(child, 'close');
  // The new worker runs: the release has switched current and waits for the reload.
  await master.waitStdout('waiting to be ready ');
  const worker = Number(/waiting to be ready (\d+)/.exec(master.stdout)?.[1]);
  assert.equal(await readlink(join(app, 'current')), 'releases/v2');
  child.kill('SIGINT');
  await Promise.race([said, closed.then(() => assert.fail(`hitless release ended at the signal, before the reload's outcome:\n${stderr}`))]);
  process.kill(worker, 'SIGUSR2'); // the new worker exits before READY: the reload fails
  const [code] = (await closed) as [number | null];

  assert.equal(code, 1, stderr);
  assert.match(stderr, /^hitless: SIGINT during the reload of release v2: waiting for its outcome, to switch current back if it fails \(SIGINT again to leave now; current then stays as it is whatever the master decides\)\n/);
  assert.match(stderr, /current is back on v1/);
  assert.equal(await readlink(join(app, 'current')), 'releases/v1');
  assert.equal((await get(master.url('/'))).release, 'v1');
});
