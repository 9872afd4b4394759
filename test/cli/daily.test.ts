// Daily use as easy as PM2's (issue 19): a master in the background without a second
// terminal (start --detach), every master on the machine (list), worker output without
// set-up (logs), and what `hitless logs` says when output does not go to a file.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { alive, cli as cliPath, fixture, runCli, startMasterIn, waitUntil } from '../helpers/master.js';
import { explainInherit } from '../../src/cli/commands/logs.js';
import { serviceOf } from '../../src/ops/stdout.js';
import { lastReloadCell } from '../../src/cli/commands/list.js';
import { describeDetached, DETACHED_RECORD } from '../../src/cli/detach.js';
import { resolveRunDir } from '../../src/config/rundir.js';
import type { StatusSnapshot } from '../../src/core/types.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-daily-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The CLI in `dir` with the folder's default run dir kept private (XDG_RUNTIME_DIR=dir). */
const cli = (dir: string, args: string[], env: Record<string, string> = {}) => runCli(args, { XDG_RUNTIME_DIR: dir, HITLESS_DEBUG: '', ...env }, dir);

/** Kills what a detached master left if the test failed half-way: the master, then its workers' groups. */
function cleanupDetached(t: TestContext, dir: string, pid: number): void {
  t.after(async () => {
    if (!alive(pid)) return;
    // The folder may be gone already (its own after hook ran first): then the status is unknown, and the master is killed anyway.
    const st = await cli(dir, ['status', '--json']).catch(() => undefined);
    const workers = st?.code === 0 ? (JSON.parse(st.stdout) as { workers: { pid?: number }[] }).workers : [];
    process.kill(pid, 'SIGKILL');
    for (const w of workers) {
      try {
        if (w.pid) process.kill(-w.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
}

test('hitless start --detach returns once the first generation serves; logs, list, status and stop then work from the folder', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  const r = await cli(dir, ['start', '--detach', '--listen', '127.0.0.1:0', '--workers', '2', '--', process.execPath, fixture('ops/app.js')], { LINES: '2' });
  assert.equal(r.code, 0, r.stderr);
  const m = /^hitless master pid (\d+) runs in the background: generation 1, 2 workers ready, http 127\.0\.0\.1:(\d+)\n {2}output {3}(\S+) /.exec(r.stdout);
  assert.ok(m, r.stdout);
  const pid = Number(m[1]);
  cleanupDetached(t, dir, pid);
  assert.equal(m[3], join(dir, 'hitless.log'));
  assert.match(r.stderr, /master ready/, 'the start lines are shown until the first generation serves');
  assert.equal((await fetch(`http://127.0.0.1:${m[2]}/`)).status, 200);

  // The worker output (logs.mode "inherit") is in the master's output file, which logs finds.
  const logs = await cli(dir, ['logs', '-n', '100']);
  assert.equal(logs.code, 0, logs.stderr);
  for (const line of ['g=1 w=0 n=0', 'g=1 w=0 n=1', 'done g=1 w=1']) assert.ok(logs.stdout.includes(line), `${line} missing in:\n${logs.stdout}`);

  const list = await cli(dir, ['list']);
  assert.equal(list.code, 0, list.stderr);
  const row = list.stdout.split('\n').find((l) => l.startsWith(`${dir} `));
  assert.ok(row, list.stdout);
  assert.match(row, new RegExp(`^${dir} +${pid} +running +1 +2/2 +127\\.0\\.0\\.1:${m[2]} +\\S+( \\S+)? +none$`));

  const stop = await cli(dir, ['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  await waitUntil(() => !alive(pid), 'the detached master exited');
  // Afterwards the file is still there to read why it stopped.
  const after = await cli(dir, ['logs', '-n', '3']);
  assert.equal(after.code, 0);
  assert.match(after.stderr, /no master runs here; the output file of the last detached master/);
  assert.match(after.stdout, /master stopped/);
});

test('hitless logs after a detached master with --log-file stopped: that file, not an older ./hitless.log (regression: h16 F9)', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'hitless.log'), '--- hitless start --detach, an older run ---\nOLD RUN line\n');
  const out = join(dir, 'new', 'sub', 'out.log');
  const r = await cli(dir, ['start', '-d', '--log-file', out, '--listen', '127.0.0.1:0', '--', process.execPath, fixture('ops/app.js')], { LINES: '1' });
  assert.equal(r.code, 0, r.stderr);
  const pid = Number(/^hitless master pid (\d+)/.exec(r.stdout)?.[1]);
  cleanupDetached(t, dir, pid);
  assert.equal((await cli(dir, ['stop'])).code, 0);
  await waitUntil(() => !alive(pid), 'the detached master exited');
  const after = await cli(dir, ['logs', '-n', '3']);
  assert.equal(after.code, 0, after.stderr);
  assert.equal(after.stderr, `hitless: no master runs here; the output file of the last detached master (${out}):\n`);
  assert.match(after.stdout, /master stopped/);
  assert.doesNotMatch(after.stdout, /OLD RUN/);
  // Its file removed: said, rather than another file shown.
  rmSync(out);
  const gone = await cli(dir, ['logs']);
  assert.equal(gone.code, 2);
  assert.equal(gone.stderr, `hitless: logs: no master runs here; the last master started here with --detach wrote its output to ${out}, which is not there any more\n`);
  // No record (a run dir cleaned since): ./hitless.log is shown for what it is.
  rmSync(join(resolveRunDir(dir, undefined, { XDG_RUNTIME_DIR: dir }), DETACHED_RECORD));
  const unknown = await cli(dir, ['logs', '-n', '1']);
  assert.equal(unknown.code, 0, unknown.stderr);
  assert.equal(unknown.stderr, `hitless: no master runs here; ${join(dir, 'hitless.log')}, where a master started here with --detach writes without --log-file (this may not be the last one's):\n`);
  assert.equal(unknown.stdout, 'OLD RUN line\n');
});

test('a detached start whose app fails gives back the exit code, with the reason shown', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const r = await cli(dir, ['start', '-d', '--listen', '127.0.0.1:0', '--', process.execPath, fixture('master/throws-at-boot.js')]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /hitless: the master exited \(code 1\) before its first generation was ready; its output is above and in .*hitless\.log/);
  assert.match(r.stderr, /ERR_WORKER_EXITED|exited with code/);
  assert.equal((await cli(dir, ['status'])).code, 1, 'no master left behind');
  const usage = await cli(dir, ['start', '--log-file', 'x.log', '--listen', '127.0.0.1:0', '--', 'node', 'x.js']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--log-file goes with --detach/);
  // A --log-file that cannot be created: its flag and the fix, before any master starts.
  writeFileSync(join(dir, 'afile'), '');
  const blocked = await cli(dir, ['start', '-d', '--log-file', 'afile/x.log', '--listen', '127.0.0.1:0', '--', 'node', 'x.js']);
  assert.equal(blocked.code, 1);
  assert.equal(blocked.stderr, `hitless: --log-file: cannot write ${join(dir, 'afile', 'x.log')}: ${join(dir, 'afile')} is not a folder (a file is in the way); choose another path\n`);
  assert.equal((await cli(dir, ['status'])).code, 1, 'no master started');
});

test('a detached start whose only worker exits right after READY fails (exit 1, ERR_START_FAILED) and stops the master, as with several workers', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const r = await cli(dir, ['start', '-d', '--listen', '127.0.0.1:0', '--workers', '1', '--', process.execPath, fixture('master/exits-after-ready.js')]);
  // Before the fix the master stayed in the background, crash-looping: never left behind by a failed run.
  const left = /^hitless master pid (\d+) runs in the background/.exec(r.stdout);
  if (left) cleanupDetached(t, dir, Number(left[1]));
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.stdout, '', 'no "runs in the background"');
  assert.match(r.stderr, /exits-after-ready fixture: exiting 5 after READY/);
  assert.match(r.stderr, /hitless: generation 1 went live, but worker 1\.0 exited right after it was ready: the start failed and the master was stopped; its output is above and in .*hitless\.log \(ERR_START_FAILED\)\n$/);
  // The output file says why as well, after the master's own "master stopped".
  assert.match(readFileSync(join(dir, 'hitless.log'), 'utf8'), /--- hitless start --detach: generation 1 went live, but worker 1\.0 exited right after it was ready: the start failed and the master was stopped \(ERR_START_FAILED\) ---\n$/);
  assert.equal((await cli(dir, ['status'])).code, 1, 'no master left behind');
});

test('Ctrl-C on a detached start that waits for readiness says the master goes on in the background (before: exit 130, nothing said)', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const child = spawn(process.execPath, [cliPath, 'start', '-d', '--listen', '127.0.0.1:0', '--ready-timeout', '60s', '--', process.execPath, fixture('master/never-ready.js')],
    { cwd: dir, env: { ...process.env, XDG_RUNTIME_DIR: dir, HITLESS_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => void child.kill('SIGKILL'));
  let stderr = '';
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // The worker's own line, copied from the master's output: the master is waiting for READY.
  await new Promise<void>((resolve) => child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.includes('never-ready fixture listening')) resolve();
  }));
  child.kill('SIGINT');
  const code = await closed;
  // Whatever was said, the master runs on: stop it before any assertion can fail.
  const m = /hitless: stopped waiting \(SIGINT\); the master \(pid (\d+)\) goes on starting in the background: `hitless status` shows how far it got, `hitless stop` stops it; its output is in (\S+)\n$/.exec(stderr);
  const status = await cli(dir, ['status', '--json']);
  const pid = status.code === 0 ? (JSON.parse(status.stdout) as { pid: number }).pid : undefined;
  if (pid !== undefined) cleanupDetached(t, dir, pid);
  assert.ok(pid !== undefined && alive(pid), `the master goes on: ${status.stderr}`);
  assert.equal((await cli(dir, ['stop', '--force'])).code, 0);
  await waitUntil(() => !alive(pid), 'the detached master exited');
  assert.equal(code, 130);
  assert.ok(m, stderr);
  assert.equal(Number(m[1]), pid);
  assert.equal(m[2], join(dir, 'hitless.log'));
});

/** Runs the CLI with its stdout read until the first newline, then closed (`| head -1`); resolves with the exit code and stderr. */
function firstLineOnly(dir: string, args: string[], afterFirst = (): void => {}): Promise<{ code: number | null; first: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { cwd: dir, env: { ...process.env, XDG_RUNTIME_DIR: dir, HITLESS_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!out.includes('\n') || child.stdout.destroyed) return;
      child.stdout.destroy();
      afterFirst();
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, first: out.split('\n')[0] ?? '', stderr }));
  });
}

test('output piped into a reader that stops early (`| head -1`): no stack trace; --watch and logs -f end with 0, a reload still reports its own outcome', { timeout: 90_000 }, async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ command: [process.execPath, fixture('master/every-socket.js')], listen: ['127.0.0.1:0'], logs: { mode: 'file' } }));
  const master = await startMasterIn(t, dir, []);
  // A line in the workers' log, for `logs -f` to print first.
  await (await fetch(master.url('/say?text=first-line'))).text();
  await waitUntil(() => existsSync(join(dir, 'logs', 'workers.log')) && readFileSync(join(dir, 'logs', 'workers.log'), 'utf8').includes('first-line'), 'the line reaches the log file');
  for (const args of [['status', '--watch', '--json', '--interval', '200ms'], ['status', '--watch', '--interval', '200ms'], ['logs', '-f'], ['reload']]) {
    // Like `tail -f | head -1`, logs -f learns that its reader left at its next line.
    const r = await firstLineOnly(dir, args, () => void fetch(master.url('/say?text=next-line')).then((res) => res.text()));
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /EPIPE|Unhandled 'error' event|at /, args.join(' '));
  }
  assert.equal((await master.stop()).code, 0);
});

test('hitless list shows every master on the machine: app folder, pid, state, generation, workers, listeners, last reload', { timeout: 90_000 }, async (t) => {
  const a = tempDir(t);
  const b = tempDir(t);
  const ma = await startMasterIn(t, a, ['--listen', '127.0.0.1:0', '--', process.execPath, fixture('master/app.js')]);
  const mb = await startMasterIn(t, b, ['--listen', '127.0.0.1:0', '--workers', '2', '--', process.execPath, fixture('master/app.js')]);
  assert.equal((await cli(b, ['reload'])).code, 0);
  // From a third folder, with another XDG_RUNTIME_DIR: masters are found by their sockets, not by a folder.
  const elsewhere = tempDir(t);
  const r = await cli(elsewhere, ['list', '--wide']);
  assert.equal(r.code, 0, r.stderr);
  const header = r.stdout.split('\n')[0] ?? '';
  assert.match(header, /^APP +PID +STATE +GEN +WORKERS +LISTEN +UPTIME +LAST RELOAD +RUN DIR$/);
  const rowA = r.stdout.split('\n').find((l) => l.startsWith(`${a} `));
  const rowB = r.stdout.split('\n').find((l) => l.startsWith(`${b} `));
  assert.match(rowA ?? '', new RegExp(`^${a} +${ma.pid} +running +1 +1/1 +${ma.address().replace(/\./g, '\\.')} +.* none +${ma.runDir}$`), r.stdout);
  assert.match(rowB ?? '', new RegExp(`^${b} +${mb.pid} +running +2 +2/2 +${mb.address().replace(/\./g, '\\.')} +.* ok .+ ago +${mb.runDir}$`), r.stdout);
  const json = JSON.parse((await cli(elsewhere, ['list', '--json'])).stdout) as { runDir: string; status?: { pid: number; app?: { dir: string } } }[];
  assert.equal(json.find((m) => m.status?.pid === mb.pid)?.status?.app?.dir, b);
  assert.equal((await ma.stop()).code, 0);
  assert.equal((await mb.stop()).code, 0);
});

test('lastReloadCell: ok, failed and refused with the code, and none', () => {
  const base = { generation: 2, attempted: 3, reason: 'x', startedAt: 1000, durationMs: 500, forced: 0 };
  assert.equal(lastReloadCell(undefined), 'none');
  assert.equal(lastReloadCell({ ...base, ok: true, attempted: 2 }, 61_500), 'ok 1 min ago');
  assert.equal(lastReloadCell({ ...base, ok: false, error: { code: 'ERR_READY_TIMEOUT', message: '', output: [] } }, 3500), 'failed (ERR_READY_TIMEOUT) 2 s ago');
  assert.equal(lastReloadCell({ ...base, ok: false, attempted: 2, error: { code: 'ERR_CONFIG_INVALID', message: '', output: [] } }, 3500), 'refused (ERR_CONFIG_INVALID) 2 s ago');
});

test('hitless logs with logs.mode "inherit": says where the output goes and what to do, never an unrelated config error (regression, issue 19)', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const none = await cli(dir, ['logs']);
  assert.equal(none.code, 2);
  assert.doesNotMatch(none.stderr, /no worker command/);
  assert.equal(none.stderr, `hitless: logs: worker output is not written to files ("logs.mode" is "inherit", the default) and no master runs for ${dir}: ` +
    'when one runs, its output goes to its own stdout (its terminal, journal or log); to read it with `hitless logs`, start the master with ' +
    '`hitless start --detach` (output to a file), or add "logs": { "mode": "file" } to hitless.json (rotated files)\n');
  // A master in the foreground of another program (here the test, through a pipe).
  const master = await startMasterIn(t, dir, ['--listen', '127.0.0.1:0', '--', process.execPath, fixture('master/app.js')]);
  const piped = await cli(dir, ['logs']);
  assert.equal(piped.code, 2);
  assert.match(piped.stderr, new RegExp(`it goes to the master's stdout \\(pid ${master.pid}\\), a pipe to \\S+ \\(pid ${process.pid}\\)`));
  // Started with flags only, the master never reads a hitless.json: "add it and reload" would
  // not work, and one that appears (asking for files) is not read as if it did (h13 F2).
  assert.match(piped.stderr, /started with flags only and never reads a hitless\.json, so a reload cannot change that: .*restart the master with it/);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ logs: { mode: 'file' } }));
  const appeared = await cli(dir, ['logs']);
  assert.equal(appeared.code, 2, appeared.stdout);
  assert.match(appeared.stderr, new RegExp(`it goes to the master's stdout \\(pid ${master.pid}\\).*started with flags only`));
  rmSync(join(dir, 'hitless.json'));
  // From any folder, --run-dir names the master to ask, as for the other client commands.
  const elsewhere = await cli(tempDir(t), ['logs', '--run-dir', master.runDir]);
  assert.equal(elsewhere.code, 2, elsewhere.stderr);
  assert.match(elsewhere.stderr, new RegExp(`it goes to the master's stdout \\(pid ${master.pid}\\)`));
  assert.equal((await master.stop()).code, 0);
});

test('explainInherit and serviceOf: a terminal, a systemd unit\'s journal', () => {
  assert.match(explainInherit({ kind: 'terminal', path: '/dev/pts/3' }, 42, '/srv/app'), /it goes to the terminal the master \(pid 42\) runs in, \/dev\/pts\/3; look there, or to read it/);
  assert.match(explainInherit({ kind: 'journal', unit: 'myapp.service' }, 42, '/srv/app'), /journal of myapp\.service \(master pid 42\): journalctl -u myapp\.service -f$/);
  // Under supervisord or Docker the master must stay in the foreground: no --detach advice.
  const pipe = explainInherit({ kind: 'pipe', parent: 'supervisord (pid 7)' }, 42, '/srv/app');
  assert.match(pipe, /a pipe to supervisord \(pid 7\) .*which stores it; to read it with `hitless logs` too, add "logs": \{ "mode": "file" \}/);
  assert.doesNotMatch(pipe, /--detach/);
  assert.equal(serviceOf('0::/system.slice/myapp.service\n'), 'myapp.service');
  assert.equal(serviceOf('0::/user.slice/user-1000.slice/user@1000.service/app.slice/web.service\n'), 'web.service');
  assert.equal(serviceOf('0::/user.slice/user-1000.slice/session-3.scope\n'), undefined);
  assert.equal(serviceOf('12:pids:/system.slice/supervisor.service\n0::/\n'), 'supervisor.service');
});

test('client commands in the app folder find its master even when it runs with another run dir (systemd\'s --run-dir /run/<name>)', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const master = await startMasterIn(t, dir, ['--run-dir', join(dir, 'elsewhere'), '--listen', '127.0.0.1:0', '--', process.execPath, fixture('master/app.js')]);
  const status = await cli(dir, ['status']);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`^master +pid ${master.pid},`));
  assert.match(status.stdout, new RegExp(`^app +${dir} \\(flags only, no config file\\)$`, 'm'));
  const reload = await cli(dir, ['reload']);
  assert.equal(reload.code, 0, reload.stderr);
  // Another folder has no master of its own and does not borrow this one.
  const other = tempDir(t);
  assert.equal((await cli(other, ['status'])).code, 1);
  const stop = await cli(dir, ['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal((await master.exited).code, 0);
});

test('start -d\'s summary: with logs.mode "file", the output file holds the master\'s lines and hitless logs reads the workers\' file; both are named', () => {
  const status = { pid: 42, generation: 1, workers: [{ generation: 1, state: 'ready' }], listeners: [{ name: 'http', address: '127.0.0.1:3000' }] } as unknown as StatusSnapshot;
  assert.match(describeDetached(status, '/srv/app/hitless.log'), /^ {2}output {3}\/srv\/app\/hitless\.log {3}\(hitless logs -f\)$/m);
  const file = describeDetached(status, '/srv/app/hitless.log', '/srv/app/logs/workers.log');
  assert.match(file, /^ {2}output {3}\/srv\/app\/hitless\.log {3}\(the master's own lines\)\n {2}workers {2}\/srv\/app\/logs\/workers\.log {3}\(hitless logs -f\)$/m);
});

test('a client command run from a subfolder of the app: the no-master message names the master running for the folder above and its run dir', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const master = await startMasterIn(t, dir, ['--listen', '127.0.0.1:0', '--', process.execPath, fixture('master/app.js')]);
  const sub = join(dir, 'public');
  mkdirSync(sub);
  const r = await cli(sub, ['status'], { XDG_RUNTIME_DIR: dir });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^hitless: no master is running at .*; a master runs for ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(pid ${master.pid}\\), a folder above this one: run the command there, or pass --run-dir ${master.runDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`));
  // Following the hint works.
  assert.equal((await cli(sub, ['status', '--run-dir', master.runDir], { XDG_RUNTIME_DIR: dir })).code, 0);
  // Run in the app's current release (current -> releases/r1), release and rollback would
  // set up a second app inside it and say no master runs: refused, naming the master, and
  // nothing is written. A plain subfolder is another app's business (a first release there).
  mkdirSync(join(dir, 'releases', 'r1'), { recursive: true });
  writeFileSync(join(dir, 'releases', 'r1', 'index.html'), 'x');
  symlinkSync('releases/r1', join(dir, 'current'));
  const inRelease = join(dir, 'current');
  for (const args of [['release', sub], ['rollback']]) {
    const refused = await cli(inRelease, args, { XDG_RUNTIME_DIR: dir });
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, new RegExp(`^hitless: ${args[0]}: .*r1 is a release of another app, with no releases and no master of its own; a master runs for ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(pid ${master.pid}\\), a folder above this one`));
  }
  assert.deepEqual(readdirSync(join(dir, 'releases', 'r1')), ['index.html']);
  const elsewhere = await cli(sub, ['release', join(dir, 'releases', 'r1')], { XDG_RUNTIME_DIR: dir });
  assert.equal(elsewhere.code, 0, elsewhere.stderr);
  assert.match(elsewhere.stdout, /no master is running, the next `hitless start` will run it/);
  assert.equal((await master.stop()).code, 0);
});
