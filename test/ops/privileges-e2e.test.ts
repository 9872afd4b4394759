import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, fixture, root, runCli, trackMaster } from '../helpers/master.js';
import { needs } from '../helpers/tools.js';

const notRoot = process.getuid?.() !== 0 && 'needs root: binds port 80 and runs workers as nobody in a private network namespace';
// The node binary itself must be executable by nobody (it is, unless it lives in a private folder).
const nodeForNobody = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', ''], { stdio: 'ignore' }).status === 0;
const skipDrop = notRoot || (!nodeForNobody && `user nobody cannot execute ${process.execPath}`);

/**
 * A copy of the worker program (the fixture and the compiled library it imports) in a folder
 * nobody can read: the checkout itself may sit where nobody cannot go (a clone in /root,
 * mode 0700), and that must not decide whether the suite passes.
 */
function workerCopy(dir: string): string {
  const app = join(dir, 'app');
  for (const sub of ['build/src', 'build/test/fixtures/ops']) {
    mkdirSync(join(app, sub), { recursive: true });
    cpSync(join(root, sub), join(app, sub), { recursive: true });
  }
  return join(app, 'build/test/fixtures/ops/app.js');
}

function uidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'));
  return Number(line?.split(/\s+/)[1]);
}

/** GET http://127.0.0.1:80/ from inside the master's network namespace. */
function getInside(masterPid: number): Promise<string> {
  const code = "fetch('http://127.0.0.1:80/').then((r) => r.text()).then((t) => process.stdout.write(t))";
  return new Promise((resolve, reject) => {
    execFile('nsenter', ['-t', String(masterPid), '-n', '--', process.execPath, '-e', code], (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout));
  });
}

test('privilege drop: the root master holds port 80, workers run as nobody, also after a reload', { skip: skipDrop || needs('unshare', 'nsenter', 'ip'), timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-priv-'));
  chmodSync(dir, 0o755); // the workers' working folder: nobody must be able to enter it
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ user: 'nobody' }));
  const runDir = join(dir, 'run');
  // A private network namespace: port 80 is ours whatever the host runs. unshare and sh exec,
  // so the child's pid is the master's.
  const child = spawn('unshare', ['-n', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh',
    process.execPath, cli, 'start', '--log-format', 'json', '--run-dir', runDir, '--config', join(dir, 'hitless.json'),
    '--workers', '2', '--listen', '127.0.0.1:80',
    // The worker uses the in-app library; the preload sits in the checkout, which may be where
    // nobody cannot read (a clone in /root): the next test checks that case's message.
    '--no-preload', '--', process.execPath, workerCopy(dir)],
  { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const master = trackMaster(t, child, runDir);
  await master.waitEvent('master-ready');

  assert.equal(uidOf(master.pid), 0, 'the master stays root');
  const body = await getInside(master.pid);
  assert.equal(body, 'uid=65534 gid=65534 home=/nonexistent user=nobody\n');
  const first = (await master.status()).workers;
  assert.equal(first.length, 2);
  for (const w of first) assert.equal(uidOf(w.pid!), 65534, `worker ${w.pid} runs as nobody`);

  const r = await master.reload();
  assert.equal(r.code, 0, r.stderr);
  const second = (await master.status()).workers;
  assert.ok(second.every((w) => w.generation === 2));
  for (const w of second) assert.equal(uidOf(w.pid!), 65534, `generation 2 worker ${w.pid} runs as nobody`);
  assert.equal(await getInside(master.pid), 'uid=65534 gid=65534 home=/nonexistent user=nobody\n');
  assert.equal((await master.stop()).code, 0);
});

test('privilege drop: an unknown user stops the master before any worker runs (ERR_PRIVILEGE)', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-priv-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ user: 'no-such-user-hitless' }));
  const r = await runCli(['start', '--run-dir', join(dir, 'run'), '--config', join(dir, 'hitless.json'),
    '--listen', '127.0.0.1:0', '--', process.execPath, fixture('ops/app.js')], {}, dir);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /no such user "no-such-user-hitless"/);
  assert.doesNotMatch(r.stderr, /worker spawn/);
});

test('privilege drop: a worker user that cannot reach the app gets one line naming the user, the path and the fix (ERR_WORKER_ACCESS)', { skip: notRoot, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-priv-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const app = workerCopy(dir);
  chmodSync(dir, 0o700); // like a clone in /root
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ user: 'nobody' }));
  const r = await runCli(['start', '--run-dir', join(dir, 'run'), '--config', join(dir, 'hitless.json'),
    '--listen', '127.0.0.1:0', '--', process.execPath, app], {}, dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /workers run as user "nobody" \(uid 65534\), which cannot enter .* \(mode 0700, owner uid 0\): let that user enter it/);
  assert.doesNotMatch(r.stderr, /Cannot find module/);
  assert.doesNotMatch(r.stderr, /worker spawn/);
});

test('privilege drop: a preload the worker user cannot read is named in one line with the fix (ERR_WORKER_ACCESS)', { skip: notRoot, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-priv-'));
  chmodSync(dir, 0o755);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const app = workerCopy(dir);
  // hitless itself installed where nobody cannot read: a private copy of the CLI and its build.
  const install = join(dir, 'private');
  mkdirSync(install, { mode: 0o700 });
  cpSync(join(root, 'build'), join(install, 'build'), { recursive: true });
  cpSync(join(root, 'package.json'), join(install, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(install, 'node_modules'));
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ user: 'nobody' }));
  const child = spawn(process.execPath, [join(install, 'build', 'src', 'cli', 'main.js'), 'start', '--run-dir', join(dir, 'run'), '--config', join(dir, 'hitless.json'),
    '--listen', '127.0.0.1:0', '--', process.execPath, app], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 1);
  assert.match(stderr, /which cannot enter .*private on the way to .*preload\/index\.js \(hitless's preload for unmodified Node apps; mode 0700, owner uid 0\): install hitless where that user can read it/);
  assert.doesNotMatch(stderr, /Cannot find module/);
});
