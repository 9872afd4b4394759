// Starting where something already runs (issue 19): a second `hitless start` in the same
// folder names the running master instead of "EADDRINUSE", and a port another hitless
// master holds is named with that master.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, fixture, runCli, startMasterIn, waitUntil } from '../helpers/master.js';
import { holds } from '../../src/master/occupied.js';
import { parseListen } from '../../src/config/listen.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-occupied-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a second hitless start in the same folder: "a hitless master (pid N) already runs here", exit 1, the first one untouched', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const args = ['--listen', '127.0.0.1:0', '--', process.execPath, fixture('master/app.js')];
  const first = await startMasterIn(t, dir, args);
  const second = await runCli(['start', ...args], { XDG_RUNTIME_DIR: dir }, dir);
  assert.equal(second.code, 1);
  assert.equal(second.stderr, `hitless: a hitless master (pid ${first.pid}) already runs here (${dir}, generation 1); ` +
    'apply changes with `hitless reload`, or stop it first with `hitless stop`\n');
  // Same with the first one's own fixed address: the master is named before any bind.
  const same = await runCli(['start', '--listen', first.address(), '--', process.execPath, fixture('master/app.js')], { XDG_RUNTIME_DIR: dir }, dir);
  assert.match(same.stderr, new RegExp(`^hitless: a hitless master \\(pid ${first.pid}\\) already runs here`));
  assert.doesNotMatch(same.stderr, /EADDRINUSE/);
  // Detached: the same one line, nothing spawned, nothing written to the output file.
  const detached = await runCli(['start', '-d', ...args], { XDG_RUNTIME_DIR: dir }, dir);
  assert.equal(detached.code, 1);
  assert.equal(detached.stderr, second.stderr);
  assert.equal(existsSync(join(dir, 'hitless.log')), false);
  assert.equal((await first.status()).generation, 1);
  assert.equal((await first.stop()).code, 0);
});

test('a second hitless start while the first master is stopping says so and to start again once it exited (regression: it advised `hitless reload` or `hitless stop`)', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const release = join(dir, 'release');
  const args = ['--listen', '127.0.0.1:0', '--', process.execPath, fixture('master/app.js')];
  const first = await startMasterIn(t, dir, args);
  const held = fetch(`http://${first.address()}/slow?until=${encodeURIComponent(release)}&id=held`).then((r) => r.text());
  await first.waitStdout('slow-start held ');
  const from = first.records.length;
  process.kill(first.pid, 'SIGTERM');
  await first.waitEvent((r) => /draining all workers/.test(String(r.msg)), from);
  const second = await runCli(['start', ...args], { XDG_RUNTIME_DIR: dir }, dir);
  assert.equal(second.code, 1);
  assert.equal(second.stderr, `hitless: a hitless master (pid ${first.pid}) already runs here (${dir}, generation 1); ` +
    'it is stopping (draining its workers): start again once it has exited (`hitless stop` waits for that)\n');
  writeFileSync(release, '');
  assert.equal(await held, 'slow 1\n');
  assert.deepEqual(await first.exited, { code: 0, signal: null });
});

test('a master of this folder that does not answer (frozen, or its run dir removed) still refuses a second start: its beacon shows it runs (regression: a second master started for the folder)', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const args = ['--listen', '127.0.0.1:0', '--', process.execPath, fixture('master/app.js')];
  const first = await startMasterIn(t, dir, args);
  process.kill(first.pid, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(first.pid, 'SIGCONT'); // a failed assertion below must not leave it stopped
    } catch {
      // gone already
    }
  });
  const second = await runCli(['start', ...args], { XDG_RUNTIME_DIR: dir }, dir);
  process.kill(first.pid, 'SIGCONT');
  assert.equal(second.code, 1, second.stderr);
  assert.equal(second.stderr, `hitless: a hitless master (pid ${first.pid}) already runs for ${dir} but did not answer on its control socket ` +
    '(stopped or too busy to answer, or its run dir was removed, which it makes again within 2 s); ' +
    `try again in a moment, or stop it with \`kill -TERM ${first.pid}\`\n`);
  assert.equal((await first.status()).generation, 1);
  assert.equal((await first.stop()).code, 0);
});

test('a master of the same folder started with another --run-dir: a second hitless start is refused (ERR_MASTER_RUNNING, exit 1) whatever its run dir, naming the pid and run dir', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const args = ['--listen', '127.0.0.1:0', '--', process.execPath, fixture('master/app.js')];
  const first = await startMasterIn(t, dir, ['--run-dir', join(dir, 'run-a'), ...args]);
  const refused = `hitless: a hitless master (pid ${first.pid}) already runs for ${dir} with the run dir ${join(dir, 'run-a')} (generation 1); ` +
    'apply changes with `hitless reload`, or stop it first with `hitless stop` (both find it from the app folder); ' +
    'one app folder has one master: for a second one, give it an app folder of its own\n';
  for (const runDir of [[], ['--run-dir', join(dir, 'run-b')]]) {
    for (const detach of [[], ['-d']]) {
      const second = await runCli(['start', ...detach, ...runDir, ...args], { XDG_RUNTIME_DIR: dir }, dir);
      assert.equal(second.code, 1, second.stderr);
      assert.equal(second.stderr, refused);
    }
  }
  assert.equal(existsSync(join(dir, 'run-b')), false, 'nothing made for a second master');
  assert.equal((await first.stop()).code, 0);
});

test('a port held by another folder\'s hitless master: the error names that master and how to stop it', { timeout: 60_000 }, async (t) => {
  const a = tempDir(t);
  const b = tempDir(t);
  const first = await startMasterIn(t, a, ['--listen', '127.0.0.1:0', '--', process.execPath, fixture('master/app.js')]);
  const r = await runCli(['start', '--listen', first.address(), '--', process.execPath, fixture('master/app.js')], { XDG_RUNTIME_DIR: b }, b);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `hitless: cannot listen on ${first.address()}: the hitless master pid ${first.pid} of ${a} holds it ` +
    `(\`hitless list\` shows every master); stop it (\`hitless stop --run-dir ${first.runDir}\`) or choose another address\n`);
  assert.equal((await first.stop()).code, 0);
});

test('regression (h16 F10): a metrics.listen held by another hitless master (its metrics endpoint) names that master, at start and at a reload, like a listen address', { timeout: 90_000 }, async (t) => {
  const a = tempDir(t);
  const b = tempDir(t);
  const app = [process.execPath, fixture('master/app.js')];
  writeFileSync(join(a, 'hitless.json'), JSON.stringify({ command: app, listen: ['127.0.0.1:0'], metrics: { listen: '127.0.0.1:0' } }));
  const first = await startMasterIn(t, a, []);
  const held = (await first.status()).metrics as string | undefined;
  assert.match(held ?? '', /^127\.0\.0\.1:\d+$/, 'status says where the metrics endpoint serves');
  const named = `config "metrics.listen": cannot listen on ${held}: the hitless master pid ${first.pid} of ${a} holds it ` +
    `(\`hitless list\` shows every master); stop it (\`hitless stop --run-dir ${first.runDir}\`) or choose another address`;
  writeFileSync(join(b, 'hitless.json'), JSON.stringify({ command: app, listen: ['127.0.0.1:0'], metrics: { listen: held } }));
  const r = await runCli(['start'], { XDG_RUNTIME_DIR: b }, b);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.endsWith(`hitless: ${named} (ERR_BIND)\n`), r.stderr);
  // A reload that moves b's metrics there: refused with the same naming, b's endpoint stays.
  writeFileSync(join(b, 'hitless.json'), JSON.stringify({ command: app, listen: ['127.0.0.1:0'], metrics: { listen: '127.0.0.1:0' } }));
  const second = await startMasterIn(t, b, []);
  writeFileSync(join(b, 'hitless.json'), JSON.stringify({ command: app, listen: ['127.0.0.1:0'], metrics: { listen: held } }));
  const reload = await second.cli(['reload']);
  assert.equal(reload.code, 1, reload.stdout + reload.stderr);
  assert.equal(reload.stderr, `hitless: reload refused: ${named} (metrics stay on 127.0.0.1:0) (ERR_BIND); generation 1 keeps serving\n`);
  assert.equal((await second.stop()).code, 0);
  assert.equal((await first.stop()).code, 0);
});

test('holds: the same port on the same host or a wildcard on either side; unix paths by path', () => {
  const spec = (s: string) => parseListen(s, 0, '/srv/app');
  assert.equal(holds('127.0.0.1:8080', spec('127.0.0.1:8080')), true);
  assert.equal(holds('0.0.0.0:8080', spec('127.0.0.1:8080')), true);
  assert.equal(holds('127.0.0.1:8080', spec('8080')), true);
  assert.equal(holds('[::]:8080', spec('[::1]:8080')), true);
  assert.equal(holds('127.0.0.1:8081', spec('127.0.0.1:8080')), false);
  assert.equal(holds('127.0.0.2:8080', spec('127.0.0.1:8080')), false);
  assert.equal(holds('unix:/srv/app/a.sock', spec('unix:a.sock')), true);
  assert.equal(holds('unix:/srv/app/b.sock', spec('unix:a.sock')), false);
});

test('a worker that ignored SIGTERM outlived its SIGKILLed master: the next hitless start names it as a worker left by that master, with its pids and the kill to run (h21 F8)', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const command = [process.execPath, fixture('master/ignore-sigterm.js')];
  // Detached, as in the report: the workers' output goes to hitless.log, which outlives the master
  // (a pipe to a foreground master would end them with EPIPE at their first line after it died).
  // Without the preload, whose lifeline would end them when the master dies: a raw worker.
  const started = await runCli(['start', '--detach', '--no-preload', '--listen', '127.0.0.1:0', '--workers', '2', '--', ...command], { XDG_RUNTIME_DIR: dir }, dir);
  assert.equal(started.code, 0, started.stderr);
  const masterPid = Number(/^hitless master pid (\d+) /.exec(started.stdout)?.[1]);
  const address = /http (\S+)/.exec(started.stdout)?.[1] ?? '';
  const status = await runCli(['status', '--json'], { XDG_RUNTIME_DIR: dir }, dir);
  const workers = (JSON.parse(status.stdout) as { workers: { pid: number }[] }).workers.map((w) => w.pid).sort((a, b) => a - b);
  assert.equal(workers.length, 2, status.stdout);
  // The master and the orphans are killed whatever happens below.
  t.after(() => {
    for (const pid of [masterPid, ...workers]) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  process.kill(masterPid, 'SIGKILL');
  // Their parent-death signal is the stop signal they ignore: re-parented, and still serving.
  const parentOf = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
  await waitUntil(() => workers.every((pid) => parentOf(pid) !== masterPid), 'the workers were re-parented');
  assert.equal(await (await fetch(`http://${address}/`)).text(), 'stubborn\n');

  const again = await runCli(['start', '--listen', address, '--', ...command], { XDG_RUNTIME_DIR: dir }, dir);
  assert.equal(again.code, 1, again.stderr);
  // The command as the message shows it: cut at 80 characters (a long node path on Node 22+ runs).
  const shown = command.join(' ').length <= 80 ? command.join(' ') : `${command.join(' ').slice(0, 79)}…`;
  // The holders the scan found: both orphans, or one (on Node 22 a run once named only one,
  // the other gone by then); always workers of this master, and the kill names the same.
  const named = (/\(held by pids? ([\d, ]+), /.exec(again.stderr)?.[1] ?? '').split(', ').map(Number);
  assert.ok(named.length > 0 && named.every((pid) => workers.includes(pid)), again.stderr);
  const many = named.length > 1;
  assert.equal(again.stderr, `hitless: cannot listen on ${address}: EADDRINUSE (held by ${many ? 'pids' : 'pid'} ${named.join(', ')}, \`${shown}\`, ` +
    `${many ? 'workers' : 'a worker'} of generation 1 left in ${dir} by hitless master pid ${masterPid}, which is gone: a worker that ignores its stop signal outlives a killed master, ` +
    `as that signal is also what it gets when the master dies; ${many ? 'they still serve' : 'it still serves'} the old version: ` +
    `kill ${many ? 'them' : 'it'} with \`kill -KILL ${named.join(' ')}\` and start again)\n`);
});
