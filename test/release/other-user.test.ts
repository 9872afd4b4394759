// A master of another user (root, under systemd without User=) and a client that may not open
// its control socket (the deploy user): the commands say "permission denied" and whom to run
// as; `release` and `rollback` change nothing. They took EACCES for "no master": release
// switched `current` and exited 0 while the old build kept serving (outside test F7).
// The client runs under another uid, so these tests need root (root passes every file mode).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, chown, copyFile, mkdir, readdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { alive, root, runCli, sourceFixture, startMaster } from '../helpers/master.js';
import { beaconPids } from '../../src/control/beacon.js';
import { tempDir } from './helpers.js';

const env = { HITLESS_LIB: pathToFileURL(join(root, 'build', 'src', 'index.js')).href };
const NOBODY = 65534;
const asRoot = process.geteuid?.() === 0;

/** `hitless <args>` in `cwd` as user nobody. */
function runAsNobody(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { XDG_RUNTIME_DIR: _mine, ...rest } = process.env;
  return runCli(args, { ...env, HOME: cwd }, cwd, { uid: NOBODY, gid: NOBODY, env: rest });
}

async function build(dir: string, version: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await copyFile(sourceFixture('release/server.mjs'), join(dir, 'server.mjs'));
  await writeFile(join(dir, 'VERSION'), version);
  await chmod(dir, 0o755);
  return dir;
}

test('another user\'s master (run dir 0700): release and rollback refuse with ERR_CONTROL_ACCESS and leave current alone; status, reload, stop say permission denied and whom to run as; start refuses a second master', { skip: !asRoot && 'needs root, to run the client as another user', timeout: 120_000 }, async (t) => {
  const app = await tempDir(t, 'hitless-app-');
  const builds = await tempDir(t, 'hitless-builds-');
  await chmod(builds, 0o755);
  assert.equal((await runCli(['release', await build(join(builds, 'v1'), 'v1'), '--id', 'v1'], env, app)).code, 0);
  assert.equal((await runCli(['release', await build(join(builds, 'v2'), 'v2'), '--id', 'v2'], env, app)).code, 0);
  // The deploy user owns the app folder; the master (root) keeps its run dir private.
  for (const path of [app, join(app, 'releases'), join(app, 'current'), join(app, 'releases', '.hitless-state.json')]) await chown(path, NOBODY, NOBODY);
  const master = await startMaster(t, { command: [process.execPath, 'server.mjs'], cwd: app, env });
  const socket = join(master.runDir, 'control.sock');
  assert.deepEqual(beaconPids(app), [master.pid], 'the master\'s beacon names its app folder');

  const release = await runAsNobody(['release', await build(join(builds, 'v3'), 'v3'), '--id', 'v3'], app);
  assert.equal(release.code, 1, release.stdout + release.stderr);
  assert.equal(release.stderr, `hitless: a hitless master (pid ${master.pid}, user root) serves ${app}, but user nobody may not open its control socket ${socket}: ` +
    'permission denied; run the command as root, the master\'s user (`sudo hitless …`)\n');
  assert.equal(await readlink(join(app, 'current')), 'releases/v2', 'current untouched');
  assert.deepEqual((await readdir(join(app, 'releases'))).filter((n) => !n.startsWith('.')).sort(), ['v1', 'v2'], 'nothing installed');
  const json = await runAsNobody(['release', join(builds, 'v3'), '--id', 'v3', '--json'], app);
  assert.equal(json.code, 1);
  assert.equal((JSON.parse(json.stdout) as { error: { code: string } }).error.code, 'ERR_CONTROL_ACCESS');

  const rollback = await runAsNobody(['rollback'], app);
  assert.equal(rollback.code, 1);
  assert.match(rollback.stderr, /permission denied; run the command as root, the master's user \(`sudo hitless …`\)\n$/);
  assert.equal(await readlink(join(app, 'current')), 'releases/v2');

  for (const cmd of ['status', 'reload', 'stop']) {
    const r = await runAsNobody([cmd], app);
    assert.equal(r.code, 1, `${cmd}: ${r.stderr}`);
    assert.equal(r.stderr, release.stderr, cmd);
    // With the run dir given: the socket named, not a raw "connect EACCES" nor "no master".
    const given = await runAsNobody([cmd, '--run-dir', master.runDir], app);
    assert.equal(given.code, 1);
    assert.equal(given.stderr, `hitless: permission denied on the control socket ${socket}: the master runs as another user and user nobody may not open it; ` +
      'run the command as the master\'s user (`sudo -u <user> hitless …`) or as root\n', cmd);
  }
  const start = await runAsNobody(['start', '--listen', '127.0.0.1:0', '--', process.execPath, 'server.mjs'], app);
  assert.equal(start.code, 1);
  assert.equal(start.stderr, `hitless: another user's hitless master (pid ${master.pid}, user root) already runs for ${app}; ` +
    'one app folder has one master: reload or stop that one instead, as root, the master\'s user (`sudo hitless …`)\n');

  assert.equal(alive(master.pid), true);
  assert.equal((await master.status()).generation, 1, 'no reload happened');
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('a --config in a folder this user may not enter: status says permission denied and whom to run as (the master found by its folder), check says permission denied, never "does not exist"', { skip: !asRoot && 'needs root, to run the client as another user', timeout: 120_000 }, async (t) => {
  const closed = await tempDir(t, 'hitless-closed-'); // 0700, root's
  const app = join(closed, 'app');
  await mkdir(app);
  await build(app, 'v1');
  const master = await startMaster(t, { command: [process.execPath, 'server.mjs'], cwd: app, env });
  await writeFile(join(app, 'hitless.json'), JSON.stringify({ command: [process.execPath, 'server.mjs'], listen: ['127.0.0.1:0'] }));
  const config = join(app, 'hitless.json');

  const status = await runAsNobody(['status', '--config', config], '/');
  assert.equal(status.code, 1, status.stdout + status.stderr);
  assert.match(status.stderr, new RegExp(`^hitless: warning: config file ${config}: permission denied \\(this user may not read it, or may not enter a folder above it\\); run the command as the user the app and its master run as`));
  assert.doesNotMatch(status.stderr, /does not exist|fix the file/);
  assert.match(status.stderr, new RegExp(`hitless: a hitless master \\(pid ${master.pid}, user root\\) serves ${app}, but user nobody may not open its control socket`));

  const check = await runAsNobody(['check', '--config', config], '/');
  assert.equal(check.code, 2);
  assert.match(check.stderr, /permission denied \(this user may not read it, or may not enter a folder above it\)/);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('regression (h16 F5): `hitless list` as another user shows a root master\'s app folder and pid (from its beacon), its run dir only with --wide', { skip: !asRoot && 'needs root, to run the client as another user', timeout: 120_000 }, async (t) => {
  const app = await tempDir(t, 'hitless-app-');
  await build(app, 'v1');
  const config = join(app, 'hitless.json');
  await writeFile(config, JSON.stringify({ command: [process.execPath, 'server.mjs'], listen: ['127.0.0.1:0'] }));
  // The master's command line names its --config and its --run-dir: every user can read both.
  const master = await startMaster(t, { command: [process.execPath, 'server.mjs'], cwd: app, env, args: ['--config', config] });
  const json = await runAsNobody(['list', '--json'], '/');
  assert.equal(json.code, 0, json.stderr);
  const row = (JSON.parse(json.stdout) as Array<{ runDir: string; error?: string; pid?: number; appDir?: string }>).find((m) => m.runDir === master.runDir);
  assert.deepEqual(row, { runDir: master.runDir, error: 'permission denied (another user\'s master: run as that user or root)', pid: master.pid, appDir: app });
  const table = await runAsNobody(['list'], '/');
  assert.ok(table.stdout.split('\n').some((line) => line.startsWith(`${app} `) && line.includes(` ${master.pid} `) && line.includes('permission denied')), table.stdout);
  assert.ok(!table.stdout.includes(master.runDir), 'the run dir is --wide\'s column');
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
