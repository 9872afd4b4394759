/**
 * What a container gives the master, without Docker (no engine runs on this machine): a
 * private PID namespace whose PID 1 is tini (`docker run --init`, or the Dockerfile's
 * ENTRYPOINT) with the master as its child. tini forwards `docker stop`'s SIGTERM and a
 * `docker kill -s HUP` to the master; the master drains or reloads as it would anywhere.
 *
 * Worker PIDs in the event log are namespace PIDs, meaningless outside it, so cleanup
 * does not signal them: `unshare --kill-child` takes the namespace's PID 1 down with
 * unshare, and the kernel kills everything else in the namespace with it.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, fixture, MasterProcess, waitUntil } from '../helpers/master.js';
import { needs } from '../helpers/tools.js';

const notRoot = process.getuid?.() !== 0 && 'needs root: creates a PID namespace';

async function generation(url: string): Promise<string> {
  const res = await fetch(url);
  await res.text();
  return res.headers.get('x-generation') ?? '';
}

/** The host PID of the unshare child (the namespace's PID 1). */
function childOf(pid: number): number {
  const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  return Number(kids[0] ?? 0);
}

/**
 * Runs `argv` as PID 1 of a new PID namespace (`unshare --kill-child`), which starts a
 * master, and registers the cleanup: SIGKILL unshare, and with it the whole namespace.
 */
function inPidNamespace(t: TestContext, argv: (runDir: string) => string[]): { master: MasterProcess; child: ChildProcess } {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-container-'));
  const runDir = join(dir, 'run');
  const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', '--', ...argv(runDir)], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const master = new MasterProcess(child, runDir);
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await master.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return { master, child };
}

const masterArgv = (runDir: string, ...extra: string[]): string[] => [
  process.execPath, cli, 'start', '--log-format', 'json', '--run-dir', runDir, ...extra,
  '--listen', '127.0.0.1:0', '--', process.execPath, fixture('master/app.js'),
];

test('container: tini as PID 1 forwards SIGHUP (reload) and SIGTERM (drain, exit 0) to the master', { skip: notRoot || needs('unshare', 'tini'), timeout: 60_000 }, async (t) => {
  const { master, child } = inPidNamespace(t, (runDir) => ['tini', '--', ...masterArgv(runDir, '--workers', '2')]);
  await master.waitEvent('master-ready');
  assert.equal(master.events('master-start')[0]?.pid, 2, 'the master is the child of PID 1 (tini)');
  let pid1 = 0;
  await waitUntil(() => (pid1 = childOf(child.pid ?? 0)) > 0, 'unshare has forked PID 1');
  assert.match(readFileSync(`/proc/${pid1}/cmdline`, 'utf8'), /^tini\0/);
  assert.equal(await generation(master.url('/')), '1');

  process.kill(pid1, 'SIGHUP'); // docker kill -s HUP
  await master.waitEvent((r) => r.event === 'reload-done' && r.generation === 2);
  assert.equal(await generation(master.url('/')), '2');

  process.kill(pid1, 'SIGTERM'); // docker stop
  assert.deepEqual(await master.exited, { code: 0, signal: null });
  assert.ok(master.records.some((r) => r.event === 'master-stop' && r.reason === 'graceful'));
  assert.ok(master.events('worker-exit').every((e) => e.code === 0 && e.planned === true));
});

test('container without --init: the master as PID 1 still drains on SIGTERM and exits 0', { skip: notRoot || needs('unshare'), timeout: 60_000 }, async (t) => {
  const { master, child } = inPidNamespace(t, (runDir) => masterArgv(runDir));
  await master.waitEvent('master-ready');
  assert.equal(master.events('master-start')[0]?.pid, 1, 'the master is PID 1');
  let pid1 = 0;
  await waitUntil(() => (pid1 = childOf(child.pid ?? 0)) > 0, 'unshare has forked PID 1');
  // PID 1 gets no default signal dispositions: the master's own handlers are what make
  // SIGTERM work here.
  process.kill(pid1, 'SIGTERM');
  assert.deepEqual(await master.exited, { code: 0, signal: null });
  assert.ok(master.records.some((r) => r.event === 'master-stop' && r.reason === 'graceful'));
});
