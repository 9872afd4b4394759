// `hitless release` stopped by Ctrl-C or SIGTERM while release.prepare runs: it stops the
// prepare command, removes the half-made release, says so in one line and exits 128 + the
// signal's number. Killed outright instead, it left an unprepared release that `hitless
// rollback` later picked. The prepare waits on a fifo the test never opens, so the test
// knows prepare is running (it says so) and never sleeps. Last, a prepare that fails on its
// own is said the same way (release, removal, current, code).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { processAlive } from '../../src/process-alive.js';
import { readState } from '../../src/release/state.js';
import { cli, runCli } from '../helpers/master.js';
import { tempDir, writeTree } from './helpers.js';

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${signal} during prepare: hitless release stops prepare, removes the half-made release, says so and exits ${code}`, async (t) => {
    const app = await tempDir(t, 'hitless-interrupt-app-');
    const builds = await tempDir(t, 'hitless-interrupt-builds-');
    assert.equal((await runCli(['release', await writeTree(join(builds, 'v1'), { 'a.txt': 'v1' }), '--id', 'v1'], {}, app)).code, 0);
    const gate = join(builds, 'gate');
    assert.equal(spawnSync('mkfifo', [gate]).status, 0);
    await writeFile(join(app, 'hitless.json'), JSON.stringify({
      release: { prepare: ['sh', '-c', `echo "preparing $$"; exec cat ${gate} > /dev/null`] },
    }));

    const child = spawn(process.execPath, [cli, 'release', await writeTree(join(builds, 'v2'), { 'a.txt': 'v2' }), '--id', 'v2'], {
      cwd: app, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let preparePid = 0;
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (preparePid > 0 && processAlive(preparePid)) process.kill(preparePid, 'SIGKILL');
    });
    let stdout = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const closed = once(child, 'close', { signal: AbortSignal.timeout(20_000) });
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        const m = /preparing (\d+)/.exec(stdout);
        if (m && preparePid === 0) {
          preparePid = Number(m[1]);
          resolve();
        }
      });
      closed.then(() => reject(new Error(`hitless release ended before prepare ran: ${stderr}`)), reject);
    });
    child.kill(signal);
    const [exitCode] = (await closed) as [number | null];

    assert.equal(stderr, `hitless: release v2 interrupted during prepare (${signal}); removed it, current is still v1 (ERR_RELEASE_INTERRUPTED)\n`);
    assert.equal(exitCode, code);
    assert.equal(processAlive(preparePid), false, 'the prepare command was stopped');
    assert.equal(existsSync(join(app, 'releases', 'v2')), false);
    assert.equal((await readState(app)).releases.v2, undefined);
    assert.equal(existsSync(join(app, 'releases', '.hitless-lock')), false);
    assert.equal(await readlink(join(app, 'current')), 'releases/v1');
  });
}

test('a failed prepare: hitless release names the release, says it was removed and current unchanged, with ERR_RELEASE_PREPARE, exit 1', async (t) => {
  const app = await tempDir(t, 'hitless-prepare-app-');
  const builds = await tempDir(t, 'hitless-prepare-builds-');
  assert.equal((await runCli(['release', await writeTree(join(builds, 'v1'), { 'a.txt': 'v1' }), '--id', 'v1'], {}, app)).code, 0);
  const prepare = ['sh', '-c', 'test -f VERSION'];
  await writeFile(join(app, 'hitless.json'), JSON.stringify({ release: { prepare } }));
  const r = await runCli(['release', await writeTree(join(builds, 'v2'), { 'a.txt': 'v2' }), '--id', 'v2'], {}, app);
  assert.equal(r.stderr, `hitless: release v2: prepare command ${JSON.stringify(prepare)} exited with code 1; removed it, current is still v1 (ERR_RELEASE_PREPARE)\n`);
  assert.equal(r.code, 1);
  assert.equal(existsSync(join(app, 'releases', 'v2')), false);
  assert.equal(await readlink(join(app, 'current')), 'releases/v1');
  // --json: the CLI's error object, which \`hitless deploy\` reads, carries the code.
  const j = await runCli(['release', join(builds, 'v2'), '--id', 'v2', '--json'], {}, app);
  assert.equal(JSON.parse(j.stdout).error.code, 'ERR_RELEASE_PREPARE');
  assert.equal(j.code, 1);
});
