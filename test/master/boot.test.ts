/**
 * How a reload's new workers boot, end to end on real processes (issue 23): the kernel's
 * nice value of every thread of a booting worker (from /proc/<pid>/task/<tid>/stat) while the
 * old generation serves, and again once it is ready; the warm-up requests a new worker gets
 * after READY and before the switch, and a warm-up answered 500 failing the reload while the
 * old generation keeps serving; and the real host forking a booting worker at its nice value.
 * The state logic is unit-tested in test/core/boot.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getPriority } from 'node:os';
import { planBootPriority, readPriorityFacts, setSessionNice } from '../../src/core/priority.js';
import { realHost } from '../../src/core/process.js';
import { sessionOf } from '../../src/core/procfs.js';
import { groupNice, threadNices } from '../helpers/proc-nice.js';
import type { ProcessExit } from '../../src/core/host.js';
import { fixture, startMaster, type LogRecord } from '../helpers/master.js';

const pidsOf = (records: LogRecord[], event: string, generation: number): number[] =>
  records.filter((r) => r.event === event && r.generation === generation).map((r) => Number(r.pid));

test('boot priority: a booting worker runs at nice +10 on every thread while the old generation serves, and at the master\'s nice once ready', { timeout: 60_000 }, async (t) => {
  const base = getPriority(0);
  const plan = planBootPriority(10, readPriorityFacts()).plan;
  if (plan === undefined) return t.skip('this process may not raise a priority back (no CAP_SYS_NICE, no RLIMIT_NICE): the master does not lower');
  // Both new workers boot at once (on 2 CPUs bootConcurrency "auto" would start the second
  // only after the first is READY, which this app says only when told).
  const master = await startMaster(t, { command: ['node', fixture('master/boot-app.js')], workers: 2, args: ['--boot-concurrency', '2'] });
  const reload = master.reload();
  await master.waitStdout('generation=2', 2); // both new workers booted, listening, not READY
  const booting = pidsOf(master.records, 'worker-spawn', 2);
  assert.equal(booting.length, 2);
  for (const pid of booting) {
    const nices = threadNices(pid);
    assert.ok(nices.length > 1, 'a Node worker has several threads');
    assert.deepEqual(new Set(nices), new Set([base + 10]), `worker ${pid}: every thread at nice ${base + 10} while booting`);
  }
  for (const pid of pidsOf(master.records, 'worker-spawn', 1)) assert.deepEqual(new Set(threadNices(pid)), new Set([base]), 'the serving generation untouched');
  // Under autogroup each worker is a session of its own: its group is lowered too, or the
  // thread nice values would rank nothing against the serving workers.
  const sessions = readPriorityFacts().sessions === 'settable';
  if (sessions) {
    for (const pid of booting) assert.equal(groupNice(pid), 10, `worker ${pid}: its session group at +10 while booting`);
    for (const pid of pidsOf(master.records, 'worker-spawn', 1)) assert.equal(groupNice(pid), 0, 'the serving sessions untouched');
  }
  for (const pid of booting) process.kill(pid, 'SIGUSR2');
  const done = await reload;
  assert.equal(done.code, 0, done.stderr);
  for (const pid of booting) assert.deepEqual(new Set(threadNices(pid)), new Set([base]), `worker ${pid}: every thread back at nice ${base} once ready`);
  if (sessions) for (const pid of booting) assert.equal(groupNice(pid), 0, `worker ${pid}: its session group back at 0 once ready`);
  const ready = master.events('worker-ready').filter((r) => r.generation === 2);
  assert.ok(ready.every((r) => r.nice === base));
});

test('warm-up: each new worker gets the configured GETs (3 rounds, over parallel handed-over connections) after READY and before the switch', { timeout: 60_000 }, async (t) => {
  const master = await startMaster(t, {
    command: ['node', fixture('master/boot-app.js')], workers: 2, args: ['--warmup', '/a', '--warmup', '/b?x=1', '--warmup-rounds', '3'], env: { BOOT_WAIT: '0' },
  });
  assert.equal(master.stdout.includes('warmup'), false, 'the first generation is not warmed');
  const done = await master.reload();
  assert.equal(done.code, 0, done.stderr);
  const gen2 = pidsOf(master.records, 'worker-spawn', 2);
  const count = (line: string): number => master.stdout.split('\n').filter((l) => l === line).length;
  for (const pid of gen2) {
    assert.equal(count(`warmup /a pid=${pid} generation=2`), 3, master.stdout);
    assert.equal(count(`warmup /b?x=1 pid=${pid} generation=2`), 3, master.stdout);
    // 6 requests, in parallel on up to WARMUP_CONNECTIONS (8) connections handed over: 6.
    assert.ok(master.stdout.includes(`connection ${pid} 6`), 'six warm-up connections handed to it');
    assert.ok(!master.stdout.includes(`connection ${pid} 7`), 'and no more');
  }
  const warmups = master.events('worker-warmup');
  assert.equal(warmups.length, 2);
  for (const w of warmups) assert.deepEqual((w.responses as { path: string; status: number; count: number }[]).map((r) => [r.path, r.status, r.count]), [['/a', 200, 3], ['/b?x=1', 200, 3]]);
  const lastWarm = master.records.findLastIndex((r) => r.event === 'worker-warmup');
  assert.ok(lastWarm < master.records.findIndex((r) => r.event === 'reload-ready'), 'warmed before the switch');
  const res = await fetch(master.url('/'));
  assert.equal(res.headers.get('x-generation'), '2');
  await res.text();
});

test('warm-up: the client is a process of its own, in a session of its own, lowered like the booting worker, and gone once the warm-up ends', { timeout: 60_000 }, async (t) => {
  const base = getPriority(0);
  const facts = readPriorityFacts();
  const lowered = planBootPriority(10, facts).plan !== undefined;
  const master = await startMaster(t, { command: ['node', fixture('master/boot-app.js')], workers: 1, args: ['--warmup', '/client'], env: { BOOT_WAIT: '0' } });
  const done = await master.reload();
  assert.equal(done.code, 0, done.stderr);
  const line = /client pid=(\d+) session=(\d+) nices=([-\d,]+) group=(\S+)/.exec(master.stdout);
  assert.ok(line, master.stdout);
  const [, pid, session, nices, group] = line;
  assert.equal(session, pid, 'the client leads a session of its own (not the master\'s)');
  // Every thread at the booting worker's nice value (the master lowers only where it may raise back).
  assert.deepEqual(new Set((nices ?? '').split(',').map(Number)), new Set([lowered ? base + 10 : base]), line[0]);
  // Under autogroup its session is lowered too (a nice value ranks threads only within their session).
  if (lowered && facts.sessions === 'settable') assert.equal(group, '10', line[0]);
  assert.throws(() => process.kill(Number(pid), 0), { code: 'ESRCH' }, 'the client has exited by the end of the reload');
});

test('warm-up: a 500 fails the reload with ERR_WARMUP_FAILED; the new workers go and the old generation keeps serving', { timeout: 60_000 }, async (t) => {
  const master = await startMaster(t, {
    command: ['node', fixture('master/boot-app.js')], workers: 2, args: ['--warmup', '/boom'], env: { BOOT_WAIT: '0' },
  });
  const done = await master.reload();
  assert.notEqual(done.code, 0);
  assert.match(done.stdout + done.stderr, /ERR_WARMUP_FAILED|GET \/boom with 500/);
  const failed = await master.waitEvent('reload-done');
  assert.equal(failed.code, 'ERR_WARMUP_FAILED');
  await master.waitEvent((r) => r.event === 'worker-exit' && r.generation === 2);
  const status = await master.status();
  assert.equal(status.generation, 1);
  assert.deepEqual(status.workers.map((w) => w.generation), [1, 1]);
  const res = await fetch(master.url('/'));
  assert.equal(res.headers.get('x-generation'), '1');
  await res.text();
});

test('boot priority: the real host forks a booting worker at its nice value (LaunchSpec.nice), and the master\'s thread keeps its own', { timeout: 30_000 }, async (t) => {
  const base = getPriority(0);
  if (planBootPriority(10, readPriorityFacts()).plan === undefined) return t.skip('this process may not raise a priority back: the master never forks at a lower one');
  // `nice` with no argument prints the nice value it runs at: the shim's, from the fork on.
  const proc = realHost.spawn({ command: ['nice'], cwd: process.cwd(), env: { PATH: process.env.PATH }, fds: [], pdeathsig: undefined, nice: base + 7 });
  const lines: string[] = [];
  proc.on('output', (_stream: string, line: string) => lines.push(line));
  assert.equal(getPriority(0), base, 'the spawning thread is back at its own nice value');
  const exit = await new Promise<ProcessExit>((resolve) => proc.once('exit', resolve));
  await proc.outputSettled();
  assert.equal(exit.code, 0);
  assert.deepEqual(lines, [String(base + 7)]);
});

test('boot priority: under autogroup the real host lowers a worker\'s session and gives it back, and never touches a session it does not lead', { timeout: 30_000 }, async (t) => {
  if (readPriorityFacts().sessions !== 'settable') return t.skip('autogroup is off here, or this process lacks CAP_SYS_ADMIN: sessions are not set');
  const base = getPriority(0);
  const own = groupNice('self');
  // Not a session leader (the test runner started this file's process): left alone.
  if (sessionOf(process.pid) !== process.pid) {
    setSessionNice(process.pid, own === 19 ? 18 : own + 1);
    assert.equal(groupNice('self'), own, 'the session of a process that leads none is not changed');
  }
  const proc = realHost.spawn({ command: ['sleep', '30'], cwd: process.cwd(), env: { PATH: process.env.PATH }, fds: [], pdeathsig: undefined });
  const exited = new Promise<ProcessExit>((resolve) => proc.once('exit', resolve));
  t.after(async () => {
    proc.signal('SIGKILL');
    await exited;
  });
  const pid = proc.pid!;
  assert.equal(groupNice(pid), 0, 'a new session starts at 0');
  realHost.setPriority!(pid, base + 7);
  assert.equal(groupNice(pid), 7, 'lowered with its threads');
  assert.equal(groupNice('self'), own, "the master's own session untouched");
  realHost.setPriority!(pid, base);
  assert.equal(groupNice(pid), 0, 'given back');
});
