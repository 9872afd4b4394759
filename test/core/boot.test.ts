/**
 * How a reload's new workers boot (issue 23), on the fake host: the boot priority (lowered
 * at spawn beside a serving generation, given back at READY before anyone hears of it, and
 * what happens when the host refuses to give it back), the plan from the master's privilege,
 * and the warm-up (requests after READY, before the switch; a 5xx or an error fails the
 * reload like a failed readiness; workers without the channel are skipped with a note), and
 * the boot concurrency (how many boot at once beside a serving generation).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { niceFloor, planBootPriority, sessionGroups, workerNiceSetter } from '../../src/core/priority.js';
import { Supervisor } from '../../src/core/supervisor.js';
import { bootConcurrency, type GenerationSpec } from '../../src/core/spec.js';
import type { MasterEvent, WarmupResponse } from '../../src/core/types.js';
import type { Warmer, WarmupTarget } from '../../src/core/warmup.js';
import { FakeHost, fakeSpec, settle, until, wellBehaved, type Behaviour } from './fake-host.js';

const BOOT = { booting: 10, serving: 0 };

function setup(spec: Partial<GenerationSpec> = {}, warmer?: Warmer) {
  const host = new FakeHost();
  const sup = new Supervisor({ stayReady: 0, host, spec: () => fakeSpec(spec), version: 'test', listeners: () => [], ...(warmer ? { warmer } : {}) });
  const events: MasterEvent[] = [];
  sup.on('event', (e: MasterEvent) => events.push(e));
  return { host, sup, events };
}

/** A Node worker with the in-app library: hello (hand-over, listener "http") before READY. */
const libraryWorker: Behaviour = (p) => {
  wellBehaved(p);
  queueMicrotask(() => p.say({ hitless: 1, type: 'hello', handover: true, listeners: ['http'] }));
};

test('boot priority: a reload\'s workers boot lowered and get the serving priority back at READY, before worker-ready', async () => {
  const { host, sup, events } = setup({ bootPriority: BOOT });
  await sup.start();
  assert.deepEqual(host.priorities, [], 'the first generation boots beside nobody: not lowered');
  const order: string[] = [];
  const niceOf = (pid: number): string => host.priorities.filter((x) => x[0] === pid).map((x) => x[1]).join(',');
  sup.on('event', (e: MasterEvent) => {
    if (e.type === 'worker-ready' && e.generation === 2) order.push(`ready ${e.pid} after ${niceOf(e.pid)}`);
  });
  assert.equal((await sup.reload('test')).ok, true);
  const gen2 = host.procs.filter((p) => p.generation === 2).map((p) => p.pid);
  const set = (nice: number): number[] => host.priorities.filter((x) => x[1] === nice).map((x) => x[0]).sort();
  assert.deepEqual(set(10), gen2.sort(), 'each new worker lowered once');
  assert.deepEqual(set(0), gen2.sort(), 'each restored once');
  assert.deepEqual(order.sort(), gen2.map((p) => `ready ${p} after 10,0`).sort(), 'restored before worker-ready was said');
  const spawns = events.filter((e) => e.type === 'worker-spawn' && e.generation === 2);
  assert.ok(spawns.every((e) => e.type === 'worker-spawn' && e.nice === 10));
  assert.deepEqual(host.procs.map((p) => p.launch.nice), [undefined, undefined, 10, 10], 'forked at the boot priority, not lowered only after');
  const readies = events.filter((e) => e.type === 'worker-ready' && e.generation === 2);
  assert.ok(readies.every((e) => e.type === 'worker-ready' && e.nice === 0));
});

test('boot priority: a crashed worker of the serving generation restarts lowered too (others serve meanwhile)', async () => {
  const { host, sup } = setup({ bootPriority: BOOT });
  await sup.start();
  host.alive(1)[0]!.exit(1);
  await host.advance(100); // the first backoff
  const restarted = host.procs.at(-1)!;
  assert.equal(restarted.generation, 1);
  assert.deepEqual(host.priorities, [[restarted.pid, 10], [restarted.pid, 0]]);
});

test('boot priority: a worker still booting at half its readyTimeout gets the serving priority back, once, and the reload goes live', async () => {
  const { host, sup, events } = setup({ bootPriority: BOOT, readyTimeout: 1000 });
  await sup.start();
  // Generation 2 says READY only 700 ms after it starts: a boot the busy machine starved.
  host.behave = (gen) => (gen === 2 ? (p) => {
    const stop = (): void => queueMicrotask(() => p.exit(0));
    p.on('signal', (sig: string) => sig === 'SIGTERM' && stop());
    host.setTimer(() => p.ready(), 700);
  } : wellBehaved);
  const outcome = until(host, sup.reload('test'));
  await host.advance(499);
  const gen2 = host.procs.filter((p) => p.generation === 2).map((p) => p.pid).sort();
  assert.equal(gen2.length, 2);
  const at = (nice: number): number[] => host.priorities.filter((x) => x[1] === nice).map((x) => x[0]).sort();
  assert.deepEqual(at(10), gen2, 'low until half the readyTimeout');
  assert.deepEqual(at(0), [], 'not yet given back');
  await host.advance(1);
  assert.deepEqual(at(0), gen2, 'given back at 500 ms');
  const lifted = events.filter((e) => e.type === 'worker-boot-priority');
  assert.deepEqual(lifted.map((e) => e.type === 'worker-boot-priority' && [e.pid, e.nice, e.afterMs]).sort(), gen2.map((pid) => [pid, 0, 500]));
  assert.equal((await outcome).ok, true);
  assert.deepEqual(at(0), gen2, 'not given back a second time at READY');
  const ready = events.filter((e) => e.type === 'worker-ready' && e.generation === 2);
  assert.ok(ready.length === 2 && ready.every((e) => e.type === 'worker-ready' && e.nice === undefined), 'worker-ready says no nice: it was given back before');
  assert.equal(host.pendingTimers(), 0, 'no guard left behind');
});

test('boot priority: without a plan nothing is touched', async () => {
  const { host, sup, events } = setup();
  await sup.start();
  await sup.reload('test');
  assert.deepEqual(host.priorities, []);
  assert.ok(host.procs.every((p) => p.launch.nice === undefined), 'forked at the master\'s priority');
  assert.ok(events.every((e) => !(e.type === 'worker-spawn' && 'nice' in e)));
});

test('boot priority: a refused restore is reported, the reload still goes live, and later workers are not lowered', async () => {
  const { host, sup, events } = setup({ bootPriority: BOOT });
  await sup.start();
  host.refusePriority = (_pid, nice) => (nice === 0 ? 'uv_os_setpriority returned EACCES (permission denied)' : undefined);
  assert.equal((await sup.reload('test')).ok, true);
  const failures = events.filter((e) => e.type === 'worker-priority');
  assert.ok(failures.length >= 1);
  const first = failures[0];
  assert.match(first?.type === 'worker-priority' ? first.error : '', /EACCES/);
  const lowered = host.priorities.length;
  assert.equal((await sup.reload('again')).ok, true);
  assert.equal(host.priorities.length, lowered, 'no worker lowered after a refused restore');
});

test('boot priority: the plan follows what the master may do', () => {
  assert.deepEqual(planBootPriority(10, { nice: 0, floor: -20 }), { plan: { booting: 10, serving: 0 } });
  assert.deepEqual(planBootPriority(10, { nice: 5, floor: 0 }), { plan: { booting: 15, serving: 5 } });
  assert.deepEqual(planBootPriority(30, { nice: 0, floor: -20 }), { plan: { booting: 19, serving: 0 } }, 'capped at 19');
  assert.deepEqual(planBootPriority(0, { nice: 0, floor: -20 }), {}, '0 = off');
  const refused = planBootPriority(10, { nice: 0, floor: 20 });
  assert.equal(refused.plan, undefined, 'never lowered when it cannot be restored');
  assert.match(refused.note ?? '', /not applied.*CAP_SYS_NICE.*LimitNICE=\+0.*ulimit -e 20/);
  assert.match(planBootPriority(10, { nice: 19, floor: -20 }).note ?? '', /already runs at nice 19/);
});

test('boot priority: under autogroup the plan holds, and a master that may not set a session\'s share says what would let it', () => {
  assert.deepEqual(planBootPriority(10, { nice: 0, floor: -20, sessions: 'settable' }), { plan: { booting: 10, serving: 0 } });
  assert.deepEqual(planBootPriority(10, { nice: 0, floor: -20, sessions: 'off' }), { plan: { booting: 10, serving: 0 } });
  const fixed = planBootPriority(10, { nice: 0, floor: 0, sessions: 'fixed' });
  assert.deepEqual(fixed.plan, { booting: 10, serving: 0 }, 'threads are still lowered');
  assert.match(fixed.note ?? '', /autogroup.*CAP_SYS_ADMIN.*kernel\.sched_autogroup_enabled=0/);
  assert.match(planBootPriority(10, { nice: 0, floor: 20, sessions: 'fixed' }).note ?? '', /not applied.*CAP_SYS_NICE/, 'not lowered at all: that is the note');
});

test('boot priority: sessions are ranked first where autogroup is on; setting theirs takes CAP_SYS_ADMIN', () => {
  assert.equal(sessionGroups('1\n', 'CapEff:\t000001ffffffffff\n'), 'settable', 'root');
  assert.equal(sessionGroups('1\n', 'CapEff:\t0000000000800000\n'), 'fixed', 'CAP_SYS_NICE alone');
  assert.equal(sessionGroups('1\n', 'CapEff:\t0000000000200000\n'), 'settable', 'CAP_SYS_ADMIN alone');
  assert.equal(sessionGroups('0\n', 'CapEff:\t000001ffffffffff\n'), 'off', 'autogroup off (sysctl or noautogroup)');
  assert.equal(sessionGroups('', ''), 'off', 'no such file: a kernel without autogroup, or not Linux');
  // Where sessions do not matter, or cannot be set, the real host sets threads only (setTreeNice,
  // again shortly after for forks under way); where it may, the session too.
  assert.equal(workerNiceSetter({ nice: 0, floor: -20, sessions: 'off' }).name, 'setTreeNiceSettled');
  assert.equal(workerNiceSetter({ nice: 0, floor: -20, sessions: 'fixed' }).name, 'setTreeNiceSettled');
  assert.equal(workerNiceSetter({ nice: 0, floor: -20 }).name, 'setTreeNiceSettled');
  assert.equal(workerNiceSetter({ nice: 0, floor: -20, sessions: 'settable' }).name, 'setTreeAndSessionNice');
});

test('boot priority: the floor comes from CAP_SYS_NICE, else RLIMIT_NICE', () => {
  const limits = (soft: string): string => `Limit                     Soft Limit           Hard Limit           Units\nMax nice priority         ${soft}                    ${soft}\n`;
  assert.equal(niceFloor('CapEff:\t000001fffeffffff\n', limits('0')), -20, 'root: CAP_SYS_NICE');
  assert.equal(niceFloor('CapEff:\t0000000000000000\n', limits('0')), 20, 'unprivileged, no RLIMIT_NICE: only lowering');
  assert.equal(niceFloor('CapEff:\t0000000000000000\n', limits('20')), 0, 'LimitNICE=+0');
  assert.equal(niceFloor('CapEff:\t0000000000000000\n', limits('unlimited')), -20);
  assert.equal(niceFloor('', ''), 20, 'unknown: taken as may not raise');
});

/** A warmer that records its calls and answers each path with `status(path)`. */
function fakeWarmer(status: (path: string) => number = () => 200) {
  const calls: { pid: number | undefined; listener: string | undefined; paths: string[]; rounds: number; timeoutMs: number; state: string }[] = [];
  const warmer: Warmer = async (target: WarmupTarget, listener, paths, rounds, timeoutMs) => {
    calls.push({ pid: target.pid, listener, paths, rounds, timeoutMs, state: (target as unknown as { state: string }).state });
    return paths.map((path): WarmupResponse => ({ path, status: status(path), ms: 1, count: rounds }));
  };
  return { warmer, calls };
}

test('warm-up: each new worker gets the paths after READY, on its first listener, before the switch', async () => {
  const { warmer, calls } = fakeWarmer();
  const { host, sup, events } = setup({ warmup: ['/', '/api/health'], readyTimeout: 3000 }, warmer);
  host.behave = () => libraryWorker;
  await sup.start();
  assert.equal(calls.length, 0, 'the first generation is not warmed (nothing serves before it)');
  assert.equal((await sup.reload('test')).ok, true);
  const gen2 = host.procs.filter((p) => p.generation === 2).map((p) => p.pid);
  assert.deepEqual(calls.map((c) => c.pid).sort(), gen2.sort());
  for (const c of calls) assert.deepEqual([c.listener, c.paths, c.rounds, c.timeoutMs, c.state], ['http', ['/', '/api/health'], 1, 3000, 'ready']);
  const warm = events.findLastIndex((e) => e.type === 'worker-warmup');
  const switched = events.findIndex((e) => e.type === 'reload-phase' && e.phase === 'switched');
  assert.ok(warm >= 0 && warm < switched, 'warmed before the switch');
});

test('warm-up: a 5xx fails the reload (ERR_WARMUP_FAILED); the new workers are killed and the old generation keeps serving', async () => {
  const { warmer } = fakeWarmer((path) => (path === '/boom' ? 503 : 200));
  const { host, sup } = setup({ warmup: ['/', '/boom'] }, warmer);
  host.behave = () => libraryWorker;
  await sup.start();
  const outcome = await sup.reload('test');
  assert.equal(outcome.ok, false);
  assert.equal(outcome.error?.code, 'ERR_WARMUP_FAILED');
  assert.match(outcome.error?.message ?? '', /GET \/boom with 503/);
  assert.equal(host.alive(2).length, 0);
  assert.equal(host.alive(1).length, 2);
  assert.equal(sup.status().generation, 1);
  assert.ok(host.alive(1).every((p) => p.signals.length === 0), 'the old generation was never asked to stop');
});

test('warm-up: an error or no answer in time fails the reload with the reason', async () => {
  const warmer: Warmer = async () => {
    throw new Error('GET / was not answered within 3000 ms of READY (readyTimeout)');
  };
  const { host, sup } = setup({ warmup: ['/'] }, warmer);
  host.behave = () => libraryWorker;
  await sup.start();
  const outcome = await sup.reload('test');
  assert.equal(outcome.error?.code, 'ERR_WARMUP_FAILED');
  assert.match(outcome.error?.message ?? '', /failed its warm-up: GET \/ was not answered/);
  assert.equal(sup.status().generation, 1);
});

test('warm-up: a worker without the channel is skipped with a note and the reload goes live', async () => {
  const { warmer, calls } = fakeWarmer();
  const { sup, events } = setup({ warmup: ['/'] }, warmer);
  await sup.start();
  assert.equal((await sup.reload('test')).ok, true);
  assert.equal(calls.length, 0);
  const skipped = events.filter((e) => e.type === 'worker-warmup' && e.skipped !== undefined);
  assert.equal(skipped.length, 2);
});

test('warm-up at the boot priority: a lowered worker that is warmed up gets its priority back after the warm-up, not at READY', async () => {
  const order: string[] = [];
  const host = new FakeHost();
  const warmer: Warmer = async (target, _l, paths, rounds) => {
    order.push(`warm ${target.pid} at ${host.priorities.filter((x) => x[0] === target.pid).map((x) => x[1]).join(',')}`);
    return paths.map((path) => ({ path, status: 200, ms: 1, count: rounds }));
  };
  const sup = new Supervisor({ stayReady: 0, host, spec: () => fakeSpec({ bootPriority: BOOT, warmup: ['/'], warmupRounds: 3 }), version: 'test', listeners: () => [], warmer });
  const events: MasterEvent[] = [];
  sup.on('event', (e: MasterEvent) => events.push(e));
  host.behave = () => libraryWorker;
  await sup.start();
  assert.equal((await sup.reload('test')).ok, true);
  const gen2 = host.procs.filter((p) => p.generation === 2).map((p) => p.pid);
  assert.deepEqual(order.sort(), gen2.map((p) => `warm ${p} at 10`).sort(), 'warmed while still lowered');
  for (const pid of gen2) assert.deepEqual(host.priorities.filter((x) => x[0] === pid).map((x) => x[1]), [10, 0], 'restored once, after');
  assert.ok(events.every((e) => !(e.type === 'worker-ready' && e.generation === 2 && e.nice !== undefined)), 'not at READY');
  const warmups = events.filter((e) => e.type === 'worker-warmup');
  assert.deepEqual(warmups.map((e) => (e.type === 'worker-warmup' ? [e.nice, e.responses[0]?.count] : [])), [[0, 3], [0, 3]]);
});

test('warm-up at the boot priority: a skipped warm-up (no channel) still gives the priority back', async () => {
  const { warmer } = fakeWarmer();
  const { host, sup } = setup({ bootPriority: BOOT, warmup: ['/'] }, warmer);
  await sup.start();
  assert.equal((await sup.reload('test')).ok, true);
  for (const p of host.procs.filter((x) => x.generation === 2)) assert.deepEqual(host.priorities.filter((x) => x[0] === p.pid).map((x) => x[1]), [10, 0]);
});

test('boot concurrency: a reload boots at most bootConcurrency new workers at once, the next when one is READY; the first generation is not limited', async () => {
  const { host, sup } = setup({ workers: 4, bootConcurrency: 1 });
  await sup.start();
  assert.equal(host.procs.length, 4, 'the first generation starts whole at once: nobody serves yet');
  // The new generation says READY only when the test says so.
  host.behave = (gen) => (gen === 1 ? wellBehaved : (p) => {
    p.on('signal', (s: NodeJS.Signals) => s === 'SIGTERM' && queueMicrotask(() => p.exit(0)));
    p.on('sent', (m: Record<string, unknown>) => m.type === 'stop' && queueMicrotask(() => p.exit(0)));
  });
  const pending = sup.reload('test');
  const booting = (): number[] => host.procs.filter((p) => p.generation === 2).map((p) => p.slot);
  for (let slot = 0; slot < 4; slot++) {
    await settle();
    assert.deepEqual(booting(), Array.from({ length: slot + 1 }, (_, i) => i), `slot ${slot} spawns only after slot ${slot - 1} is ready`);
    host.procs.at(-1)!.ready();
  }
  assert.equal((await until(host, pending)).ok, true);
  assert.equal(host.alive(2).length, 4);
});

test('boot concurrency: when a booting worker fails, no later one is spawned, the started ones are killed and the old generation serves on', async () => {
  const { host, sup } = setup({ workers: 3, bootConcurrency: 2, readyTimeout: 1000 });
  await sup.start();
  host.behave = (gen, slot) => (gen === 1 || slot === 1 ? wellBehaved : (p) => queueMicrotask(() => p.exit(1)));
  const outcome = await until(host, sup.reload('broken build'));
  assert.equal(outcome.ok, false);
  // Slot 0 fails at once, slot 1 boots beside it; slot 2 never starts.
  assert.deepEqual(host.procs.filter((p) => p.generation === 2).map((p) => p.slot).sort(), [0, 1]);
  assert.equal(host.alive(2).length, 0);
  assert.equal(host.alive(1).length, 3);
});

test('boot concurrency: "auto" is half the CPUs, at least one; a number is taken as it is', () => {
  assert.equal(bootConcurrency('auto', 1), 1);
  assert.equal(bootConcurrency('auto', 2), 1);
  assert.equal(bootConcurrency('auto', 8), 4);
  assert.equal(bootConcurrency(3, 2), 3);
  assert.equal(bootConcurrency(undefined, 8), Number.POSITIVE_INFINITY);
});
