// A logs.dir that cannot hold the worker log files is said before anything runs, by start,
// check and a reload, in the setting's name (regression: a file in its place left a master
// half started that held the port and never stopped; a reload to such a folder went live and
// dropped every worker line; a folder under /proc made Node's recursive mkdir spin).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, fixture, runCli, startMasterIn } from '../helpers/master.js';
import { freePort } from '../helpers/free-port.js';

function app(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-logsdir-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `hitless start` in `dir` to its end: its exit code and output. */
function startToEnd(dir: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, 'start'], { cwd: dir, env: { ...process.env, XDG_RUNTIME_DIR: dir }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

test('logs.dir with a file in its place: check exits 2 and start exits 1 naming the setting, before anything listens; nothing is left running', { timeout: 60_000 }, async (t) => {
  const dir = app(t);
  const port = await freePort();
  writeFileSync(join(dir, 'logs'), 'x');
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ command: ['node', fixture('master/app.js')], listen: [`127.0.0.1:${port}`], logs: { mode: 'file', dir: 'logs' } }));
  const checked = await runCli(['check'], { XDG_RUNTIME_DIR: dir }, dir);
  assert.equal(checked.code, 2, checked.stdout + checked.stderr);
  assert.match(checked.stderr, /^hitless: logs\.dir: cannot write .*logs\/workers\.log: .*logs is not a folder \(a file is in the way\); choose another folder\n/);
  const started = await startToEnd(dir);
  assert.equal(started.code, 1, started.stderr);
  assert.match(started.stderr, /^hitless: logs\.dir: cannot write .*logs\/workers\.log: .*logs is not a folder \(a file is in the way\); choose another folder\n$/);
  assert.equal(await refused(port), true, 'nothing listens on the port');
});

test('logs.dir that cannot be created (under /proc): start says so at once instead of spinning', { skip: !existsSync('/proc/self'), timeout: 60_000 }, async (t) => {
  const dir = app(t);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ command: ['node', fixture('master/app.js')], listen: ['127.0.0.1:0'], logs: { mode: 'file', dir: '/proc/hitless-logs-test' } }));
  const checked = await runCli(['check'], { XDG_RUNTIME_DIR: dir }, dir);
  assert.equal(checked.code, 2, checked.stdout + checked.stderr);
  assert.match(checked.stderr, /^hitless: logs\.dir: cannot write \/proc\/hitless-logs-test\/workers\.log: \/proc is on proc, a kernel file system where no file or folder can be made; choose another folder\n/);
  const started = await startToEnd(dir);
  assert.equal(started.code, 1, started.stderr);
  assert.match(started.stderr, /logs\.dir: cannot write \/proc\/hitless-logs-test\/workers\.log: the folder \/proc\/hitless-logs-test cannot be created \(ENOENT\)/);
});

test('a pid file that cannot be written: check exits 2 naming pidFile, as start refuses it (a file in the way, a folder, under /proc)', { timeout: 60_000 }, async (t) => {
  const dir = app(t);
  writeFileSync(join(dir, 'blocker'), 'x');
  const cases: Array<[string, RegExp]> = [
    ['blocker/m.pid', /^hitless: pidFile \(--pid-file\): cannot write .*blocker\/m\.pid: .*blocker is not a folder \(a file is in the way\); choose another path\n/],
    ['.', /^hitless: pidFile \(--pid-file\): cannot write .*: that is a folder; give the path of a file\n/],
  ];
  if (existsSync('/proc/self')) cases.push(['/proc/hitless-pid-test/m.pid', /^hitless: pidFile \(--pid-file\): cannot write \/proc\/hitless-pid-test\/m\.pid: \/proc is on proc, a kernel file system/]);
  for (const [pidFile, message] of cases) {
    writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ command: ['node', fixture('master/app.js')], listen: ['127.0.0.1:0'], pidFile }));
    const checked = await runCli(['check'], { XDG_RUNTIME_DIR: dir }, dir);
    assert.equal(checked.code, 2, `${pidFile}: ${checked.stdout}${checked.stderr}`);
    assert.match(checked.stderr, message);
  }
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ command: ['node', fixture('master/app.js')], listen: ['127.0.0.1:0'], pidFile: 'run/sub/m.pid' }));
  const fine = await runCli(['check'], { XDG_RUNTIME_DIR: dir }, dir);
  assert.equal(fine.code, 0, fine.stdout + fine.stderr);
  assert.equal(existsSync(join(dir, 'run')), false, 'check creates nothing');
});

test('a reload to a logs.dir with a file in its place is refused naming it; the old generation keeps serving and logging', { timeout: 60_000 }, async (t) => {
  const dir = app(t);
  const config = (logsDir: string): string => JSON.stringify({ command: ['node', fixture('master/app.js')], listen: ['127.0.0.1:0'], logs: { mode: 'file', dir: logsDir } });
  writeFileSync(join(dir, 'hitless.json'), config('logs'));
  const master = await startMasterIn(t, dir, []);
  writeFileSync(join(dir, 'afile'), 'x');
  writeFileSync(join(dir, 'hitless.json'), config('afile'));
  const r = await master.cli(['reload']);
  // The re-read (hitless check) finds it: a configuration problem, exit 2.
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /^hitless: reload refused: logs\.dir: cannot write .*afile\/workers\.log: .*afile is not a folder \(a file is in the way\); choose another folder \(ERR_CONFIG_INVALID\); generation 1 keeps serving\n$/);
  assert.equal((await master.status()).generation, 1);
  assert.equal(existsSync(join(dir, 'logs', 'workers.log')), true);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
