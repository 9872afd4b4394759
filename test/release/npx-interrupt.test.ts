// `npx hitless release` stopped by a SIGTERM sent to npx (a CI cancel, `kill <pid>`): npm
// passes it to the `sh -c` it runs hitless in, not to hitless; the shell dies, npm exits 143
// and hitless, orphaned, went on and switched the release live (h17 F2). hitless now sees
// its npm parent go and acts as on SIGTERM: prepare stopped, release removed, current kept.
// The test runs the real npx on a local node_modules/.bin/hitless, as an app installs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { processAlive } from '../../src/process-alive.js';
import { readState } from '../../src/release/state.js';
import { cli, runCli } from '../helpers/master.js';
import { tempDir, writeTree } from './helpers.js';

const hasNpx = spawnSync('npx', ['--version'], { stdio: 'ignore' }).status === 0;

test('SIGTERM to npx during prepare: npx hitless release, orphaned, stops prepare and removes the release instead of going live', { skip: hasNpx ? false : 'npx is not installed' }, async (t) => {
  const app = await tempDir(t, 'hitless-npx-app-');
  const builds = await tempDir(t, 'hitless-npx-builds-');
  assert.equal((await runCli(['release', await writeTree(join(builds, 'v1'), { 'a.txt': 'v1' }), '--id', 'v1'], {}, app)).code, 0);
  // What `npm install hitless` makes: an executable node_modules/.bin/hitless (exec keeps the
  // process tree npm -> sh -> hitless of the installed package).
  await mkdir(join(app, 'node_modules', '.bin'), { recursive: true });
  const bin = join(app, 'node_modules', '.bin', 'hitless');
  await writeFile(bin, `#!/bin/sh\nexec '${process.execPath}' '${cli}' "$@"\n`);
  await chmod(bin, 0o755);
  const gate = join(builds, 'gate');
  assert.equal(spawnSync('mkfifo', [gate]).status, 0);
  await writeFile(join(app, 'hitless.json'), JSON.stringify({
    release: { prepare: ['sh', '-c', `echo "preparing $$ $PPID"; exec cat ${gate} > /dev/null`] },
  }));

  const npx = spawn('npx', ['--no-install', 'hitless', 'release', await writeTree(join(builds, 'v2'), { 'a.txt': 'v2' }), '--id', 'v2'], {
    cwd: app, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, npm_config_update_notifier: 'false', npm_config_cache: join(builds, 'npm-cache') },
  });
  let preparePid = 0;
  let hitlessPid = 0;
  t.after(() => {
    if (npx.exitCode === null && npx.signalCode === null) npx.kill('SIGKILL');
    for (const pid of [preparePid, hitlessPid]) if (pid > 0 && processAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  npx.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // Both pipes end once every holder is gone: npx, its shell, hitless and prepare.
  const endLimit = AbortSignal.timeout(30_000);
  const ended = Promise.all([once(npx.stdout, 'end', { signal: endLimit }), once(npx.stderr, 'end', { signal: endLimit })]);
  ended.catch(() => {});
  const exited = once(npx, 'exit', { signal: AbortSignal.timeout(30_000) });
  await new Promise<void>((resolve, reject) => {
    npx.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const m = /preparing (\d+) (\d+)/.exec(stdout);
      if (m && preparePid === 0) {
        preparePid = Number(m[1]);
        hitlessPid = Number(m[2]);
        resolve();
      }
    });
    exited.then(() => reject(new Error(`npx hitless release ended before prepare ran: ${stderr}`)), reject);
  });
  // Where sh is dash, npm's shell stays between npx and hitless; a bash sh execs hitless, and
  // npm's SIGTERM then reaches it directly.
  const viaShell = Number(readFileSync(`/proc/${String(hitlessPid)}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]) !== npx.pid;
  npx.kill('SIGTERM');
  const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
  assert.ok(signal === 'SIGTERM' || code === 143, `npx ended by its SIGTERM (code ${String(code)}, signal ${String(signal)})`);
  await ended;

  if (viaShell) assert.match(stderr, /hitless: the npm exec that ran `hitless release` has gone \(its shell, pid \d+, ended: npm passes SIGTERM to that shell, not to hitless\); acting on SIGTERM\. In scripts run \.\/node_modules\/\.bin\/hitless, so that signals reach it\n/);
  assert.match(stderr, /hitless: release v2 interrupted during prepare \(SIGTERM\); removed it, current is still v1 \(ERR_RELEASE_INTERRUPTED\)\n/);
  assert.equal(processAlive(preparePid), false, 'the prepare command was stopped');
  assert.equal(existsSync(join(app, 'releases', 'v2')), false);
  assert.equal((await readState(app)).releases.v2, undefined);
  assert.equal(existsSync(join(app, 'releases', '.hitless-lock')), false);
  assert.equal(await readlink(join(app, 'current')), 'releases/v1');
});
