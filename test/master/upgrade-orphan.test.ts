// A master killed (kill -9, the OOM killer) under `hitless upgrade` or `hitless reload`
// (h21 F4, F5): a new master whose old master dies before the hand-over takes the service
// (it holds every socket) instead of stopping, and the client says what became of the
// master instead of "the master closed the control connection before answering".
import { test } from 'node:test';
import { getGeneration } from '../helpers/http.js';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, fixture, runCli, startMaster, waitUntil, type LogRecord } from '../helpers/master.js';
import type { StatusSnapshot } from '../../src/core/types.js';
import { startFromSymlink } from './upgrade-setup.js';

const get = getGeneration;

const newMasterPid = (records: LogRecord[]): number => {
  const r = records.find((x) => x.event === 'upgrade-phase' && x.phase === 'starting');
  assert.equal(typeof r?.pid, 'number', 'the old master named the new one');
  return r!.pid as number;
};

test('regression (h21 F4, F5): the old master killed (-9) while the new master\'s workers boot: the new master takes control.sock and the pid file at once, serves once its generation is ready, and `hitless upgrade` says so (exit 0); before, it stopped too and nothing served', { timeout: 300_000 }, async (t) => {
  const { master, dir, runDir, pidFile } = await startFromSymlink(t, { command: ['node', fixture('master/wait-by-marker.js')], workers: 1 });
  const oldPid = master.pid;
  // The new master's worker (generation 2) boots until the test removes the marker.
  writeFileSync(join(dir, 'wait-2'), '');
  const upgrading = runCli(['upgrade', '--run-dir', runDir]);
  await master.waitEvent((r) => r.event === 'worker-spawn' && r.generation === 2);
  const newPid = newMasterPid(master.records);
  process.kill(oldPid, 'SIGKILL');
  assert.deepEqual(await master.exited, { code: null, signal: 'SIGKILL' });
  // The new master logs on the old one's stderr, which the test still reads.
  await waitUntil(() => master.records.some((r) => r.event === 'upgrade-orphaned'), 'the new master took the service', 30_000);
  const orphaned = master.records.find((r) => r.event === 'upgrade-orphaned')!;
  assert.equal(orphaned.level, 'warn');
  assert.match(orphaned.msg, new RegExp(`^the old master \\(pid ${oldPid}\\) died during the upgrade, before it handed the service over \\(killed or crashed\\): this master \\(pid ${newPid}\\) took the control socket and the pid file and serves once its first generation is ready; the old master's workers, orphaned, drain on their own$`));

  // Booting still, and already the master of this app: status answers, the pid file names it, no staged socket is left.
  const st = await runCli(['status', '--json', '--run-dir', runDir]);
  assert.equal(st.code, 0, st.stderr);
  const booting = JSON.parse(st.stdout) as StatusSnapshot;
  assert.equal(booting.pid, newPid);
  assert.equal(booting.state, 'starting');
  assert.equal(booting.upgradedFrom?.pid, oldPid);
  assert.equal(readFileSync(pidFile, 'utf8'), `${newPid}\n`);
  assert.deepEqual(readdirSync(runDir).filter((f) => f.endsWith('.sock') || f.startsWith('new-')), ['control.sock']);

  rmSync(join(dir, 'wait-2'));
  const up = await upgrading;
  assert.equal(up.code, 0, up.stdout + up.stderr);
  assert.match(up.stdout, new RegExp(`\\nupgrade: the old master \\(pid ${oldPid}\\) died during the upgrade, before it handed the service over; the new master \\(pid ${newPid}\\) took the control socket and serves generation 2 \\(the old workers' keep-alive connections were not handed over: they drain on their own\\)\\n$`));
  assert.equal(up.stderr, '');
  assert.equal((await get(master.url('/'))).generation, '2');
  const serving = JSON.parse((await runCli(['status', '--json', '--run-dir', runDir])).stdout) as StatusSnapshot;
  assert.equal(serving.pid, newPid);
  assert.equal(serving.state, 'running');

  const stop = await runCli(['stop', '--run-dir', runDir]);
  assert.equal(stop.code, 0, stop.stderr);
  await waitUntil(() => !alive(newPid), 'the new master exited', 30_000);
  assert.equal(existsSync(join(runDir, 'control.sock')), false, 'no stale control socket');
  assert.equal(existsSync(pidFile), false, 'no stale pid file');
});

test('the old master killed (-9) during the upgrade, and the new master\'s first generation then fails (never ready): the new master says nothing serves, stops and leaves no control.sock or pid file; `hitless upgrade` exits 1', { timeout: 300_000 }, async (t) => {
  const { master, dir, runDir, pidFile } = await startFromSymlink(t, { command: ['node', fixture('master/hang-by-marker.js')], workers: 1, args: ['--ready-timeout', '3s'] });
  const oldPid = master.pid;
  writeFileSync(join(dir, 'hang-2'), '');
  const upgrading = runCli(['upgrade', '--run-dir', runDir]);
  await master.waitEvent((r) => r.event === 'worker-spawn' && r.generation === 2);
  const newPid = newMasterPid(master.records);
  process.kill(oldPid, 'SIGKILL');
  const up = await upgrading;
  assert.equal(up.code, 1, up.stdout + up.stderr);
  // Said while the new master stops, or once it is gone (which the client sees first is a race).
  assert.match(up.stderr, new RegExp(`^hitless: the old master \\(pid ${oldPid}\\) died during the upgrade, and the new master \\(pid ${newPid}\\) (ended too|is stopping) \\(its log says why\\): no master serves this app now`));
  await waitUntil(() => !alive(newPid), 'the new master exited', 30_000);
  const failed = master.records.find((r) => r.level === 'error' && r.code === 'ERR_START_FAILED');
  assert.match(failed?.msg ?? '', new RegExp(`did not announce readiness within 3 s.*; the old master \\(pid ${oldPid}\\) died during the upgrade, so nothing serves this app now: start it with \`hitless start\`$`));
  assert.equal(existsSync(join(runDir, 'control.sock')), false, 'no stale control socket');
  assert.equal(existsSync(pidFile), false, 'no stale pid file');
});

test('regression (h21 F5): the old master killed (-9) after the new master took the control socket, a request still in flight: `hitless upgrade` says the new master serves (exit 0), not "closed the control connection"', { timeout: 300_000 }, async (t) => {
  const { master, dir, runDir } = await startFromSymlink(t, { command: ['node', fixture('master/app.js')], workers: 1 });
  const oldPid = master.pid;
  // In flight on the old worker until the file exists: the old master waits for it in its hand-over.
  const until = join(dir, 'slow-done');
  const slow = get(master.url(`/slow?until=${encodeURIComponent(until)}`)).catch((err: Error) => err);
  await master.waitStdout('slow-start');
  const upgrading = runCli(['upgrade', '--run-dir', runDir]);
  await master.waitEvent((r) => r.event === 'upgrade-phase' && r.phase === 'handover');
  const newPid = newMasterPid(master.records);
  process.kill(oldPid, 'SIGKILL');
  const up = await upgrading;
  assert.equal(up.code, 0, up.stdout + up.stderr);
  assert.match(up.stdout, new RegExp(`\\nupgrade: the old master \\(pid ${oldPid}\\) died after the new master \\(pid ${newPid}\\) took over; the new master serves generation 2\\n$`));
  writeFileSync(until, '');
  await slow;
  assert.equal((await get(master.url('/'))).generation, '2');
  assert.equal((await runCli(['stop', '--run-dir', runDir])).code, 0);
  await waitUntil(() => !alive(newPid), 'the new master exited', 30_000);
});

test('regression (h21 F5): the master killed (-9) under `hitless reload`: the client says it died and nothing serves (exit 1), not "closed the control connection"', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-reload-killed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const master = await startMaster(t, { command: ['node', fixture('master/wait-by-marker.js')], workers: 1, cwd: dir });
  writeFileSync(join(dir, 'wait-2'), '');
  const reloading = master.cli(['reload']);
  await master.waitEvent((r) => r.event === 'worker-spawn' && r.generation === 2);
  process.kill(master.pid, 'SIGKILL');
  const r = await reloading;
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `hitless: the master (pid ${master.pid}) died during the reload; no master serves this app now (start it with \`hitless start\`)\n`);
});

test('regression (h28 NEW-3): a run dir removed while an upgrade\'s old master still drains is made again by the new master only: the old one, exiting, leaves no socket file of its own behind', { timeout: 300_000 }, async (t) => {
  const { master, dir, runDir } = await startFromSymlink(t, { command: ['node', fixture('master/app.js')], workers: 1 });
  const until = join(dir, 'slow-done');
  const slow = get(master.url(`/slow?until=${encodeURIComponent(until)}`)).catch((err: Error) => err);
  await master.waitStdout('slow-start');
  const upgrading = runCli(['upgrade', '--run-dir', runDir]);
  await master.waitEvent((r) => r.event === 'upgrade-phase' && r.phase === 'handover');
  const newPid = newMasterPid(master.records);
  rmSync(runDir, { recursive: true, force: true });
  const sock = join(runDir, 'control.sock');
  await waitUntil(() => existsSync(sock), 'control.sock made again', 15_000);
  const answering = async (): Promise<number> => ((await runCli(['status', '--json', '--run-dir', runDir])).stdout.match(/"pid":\s*(\d+)/)?.[1] ?? 0) as number;
  assert.equal(Number(await answering()), newPid, 'the new master answers there');
  writeFileSync(until, '');
  await slow;
  await master.exited;
  const up = await upgrading;
  assert.equal(up.code, 0, up.stdout + up.stderr);
  assert.equal(Number(await answering()), newPid, 'still the new master, after the old one exited');
  assert.equal((await runCli(['stop', '--run-dir', runDir])).code, 0);
  await waitUntil(() => !alive(newPid), 'the new master exited', 30_000);
});
