/**
 * What the master tells systemd (src/master/notify.ts), with the sender replaced: the
 * messages and their order, RELOADING/READY around overlapping reloads, STATUS coalesced,
 * silence when muted or without NOTIFY_SOCKET, the watchdog; and where an upgrade must
 * not change the PID (src/master/pid-guard.ts). The real NOTIFY_SOCKET conversation is in
 * test/ops/systemd-notify.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceNotifier, statusLine } from '../../src/master/notify.js';
import { NOTIFY_TIMEOUT_MS, runSystemdNotify, type NotifySendOptions } from '../../src/master/notify-send.js';
import { pidMustStay, type PidFacts } from '../../src/master/pid-guard.js';
import type { StatusSnapshot, WorkerStatus } from '../../src/core/types.js';
import { memoryLogger } from '../ops/fake-master.js';

function notifier(env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/run/systemd/notify' }, fail?: string) {
  const sent: string[][] = [];
  const logger = memoryLogger();
  let waiter: (() => void) | undefined;
  const n = new ServiceNotifier({
    env, logger,
    monotonicUsec: () => 123456789n,
    send: async (fields) => {
      sent.push(fields);
      waiter?.();
      if (fail) throw new Error(fail);
    },
  });
  const next = (): Promise<void> => new Promise((resolve) => (waiter = resolve));
  return { n, sent, logger, next };
}

test('notify: READY=1 with STATUS; RELOADING=1 with MONOTONIC_USEC; MAINPID= with READY=1, in the order asked', async () => {
  const { n, sent } = notifier();
  void n.ready('generation 1 serving, 2/2 workers ready');
  void n.reloading('reloading');
  await n.mainPid(4242, 'upgraded');
  // An old master that handed over is silent from then on.
  n.status('after');
  await n.ready('after');
  await n.settled();
  assert.deepEqual(sent, [
    ['READY=1', 'STATUS=generation 1 serving, 2/2 workers ready'],
    ['RELOADING=1', 'MONOTONIC_USEC=123456789', 'STATUS=reloading'],
    ['MAINPID=4242', 'READY=1', 'STATUS=upgraded'],
  ]);
});

test('notify: overlapping reload requests are one RELOADING=1 … READY=1', async () => {
  const { n, sent } = notifier();
  n.reloadRequested(() => 'a');
  n.reloadRequested(() => 'b');
  n.reloadAnswered(() => 'c');
  n.reloadAnswered(() => 'd');
  await n.settled();
  assert.deepEqual(sent.map((f) => f[0]), ['RELOADING=1', 'READY=1']);
  assert.deepEqual(sent[1], ['READY=1', 'STATUS=d']);
});

test('notify: a burst of STATUS sends its last text once; an unchanged one is not sent again', async () => {
  const { n, sent } = notifier();
  n.status('one');
  n.status('two');
  n.status('three');
  await n.settled();
  n.status('three');
  await n.settled();
  assert.deepEqual(sent, [['STATUS=three']]);
});

test('notify: nothing without NOTIFY_SOCKET, nothing while muted (a new master before the takeover)', async () => {
  const off = notifier({});
  assert.equal(off.n.enabled, false);
  await off.n.ready('x');
  off.n.status('y');
  off.n.startWatchdog();
  await off.n.settled();
  assert.deepEqual(off.sent, []);
  const muted = notifier();
  muted.n.mute();
  await muted.n.ready('x');
  muted.n.status('y');
  await muted.n.settled();
  assert.deepEqual(muted.sent, []);
  muted.n.unmute();
  await muted.n.ready('z');
  assert.deepEqual(muted.sent, [['READY=1', 'STATUS=z']]);
});

test('notify: a failing sender is logged once per reason, and the master goes on', async () => {
  const { n, logger } = notifier(undefined, 'No such file or directory');
  await n.ready('a');
  await n.ready('b');
  assert.equal(logger.lines.filter((l) => l.includes('systemd notify failed: No such file or directory')).length, 1);
});

/** A sender the test answers by hand: each call waits until `finish(i)` or its abort. */
function heldNotifier() {
  const calls: { fields: string[]; options: NotifySendOptions; finish(error?: string): void }[] = [];
  const logger = memoryLogger();
  let called: (() => void) | undefined;
  const n = new ServiceNotifier({
    env: { NOTIFY_SOCKET: '/x' }, logger, timeoutMs: 250,
    send: (fields, _env, options) => new Promise((resolve, reject) => {
      options.signal.addEventListener('abort', () => reject(new Error('stopped')));
      calls.push({ fields, options, finish: (error) => (error ? reject(new Error(error)) : resolve()) });
      called?.();
    }),
  });
  const call = async (i: number): Promise<(typeof calls)[number]> => {
    while (!calls[i]) await new Promise<void>((resolve) => (called = resolve));
    return calls[i]!;
  };
  return { n, calls, logger, call };
}

test('notify: a receiver that does not read: each send gets the kill timeout, STATUS lines waiting behind it collapse into the next message\'s, one warning for the whole outage', async () => {
  const { n, calls, logger, call } = heldNotifier();
  void n.ready('one');
  const first = await call(0);
  assert.equal(first.options.timeoutMs, 250);
  n.status('two');
  n.status('three');
  void n.reloading('four');
  n.status('five');
  first.finish('systemd-notify did not finish within 250 ms, killed');
  (await call(1)).finish('Failed to invoke barrier: Connection timed out');
  (await call(2)).finish('systemd-notify did not finish within 250 ms, killed');
  await n.settled();
  // STATUS=two and three were superseded by RELOADING's own STATUS=.
  assert.deepEqual(calls.map((c) => c.fields.at(-1)), ['STATUS=one', 'STATUS=four', 'STATUS=five']);
  const warned = logger.lines.filter((l) => l.includes('systemd notify failed'));
  assert.equal(warned.length, 1, warned.join('\n'));
  assert.match(warned[0]!, /did not finish within 250 ms.*serves on without telling systemd/);
  // Heard again: said once; the next outage is warned about again.
  n.status('six');
  (await call(3)).finish();
  await n.settled();
  assert.equal(logger.lines.filter((l) => l.includes('systemd notify works again')).length, 1);
  n.status('seven');
  (await call(4)).finish('gone');
  await n.settled();
  assert.equal(logger.lines.filter((l) => l.includes('systemd notify failed')).length, 2);
});

test('notify: close() kills the send under way and drops what waits, so the master\'s exit never waits on systemd', async () => {
  const { n, calls, logger, call } = heldNotifier();
  void n.ready('one');
  void n.reloading('two');
  n.status('three');
  const first = await call(0);
  n.close();
  assert.equal(first.options.signal.aborted, true);
  await n.settled();
  assert.equal(calls.length, 1);
  assert.ok(!logger.lines.some((l) => l.includes('systemd notify failed')), 'a stop is no failure to report');
  await n.ready('after');
  n.status('after');
  await n.settled();
  assert.equal(calls.length, 1);
});

/** A `systemd-notify` stand-in on PATH that never ends (sendmsg blocked on a full queue). */
function hangingProgram(t: { after(fn: () => void): void }): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-notify-hang-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'systemd-notify'), '#!/bin/sh\nexec sleep 60\n');
  chmodSync(join(dir, 'systemd-notify'), 0o755);
  return { PATH: `${dir}:${process.env.PATH ?? ''}`, NOTIFY_SOCKET: '/run/deaf.sock' };
}

test('runSystemdNotify: a run that does not end is killed after its timeout, or at once when the master ends', async (t) => {
  assert.ok(NOTIFY_TIMEOUT_MS > 5_000, 'above systemd-notify\'s own 5 s barrier timeout');
  const env = hangingProgram(t);
  const started = Date.now();
  await assert.rejects(runSystemdNotify(['READY=1'], env, { timeoutMs: 200, signal: new AbortController().signal }),
    /systemd-notify did not finish within 200 ms, killed: the notify socket \/run\/deaf.sock takes no messages/);
  assert.ok(Date.now() - started < 5_000);
  const stop = new AbortController();
  const run = runSystemdNotify(['STATUS=x'], env, { timeoutMs: 60_000, signal: stop.signal });
  stop.abort();
  await assert.rejects(run, /systemd-notify was stopped: the master ends/);
});

test('notify: WATCHDOG=1 every half WATCHDOG_USEC; none when WATCHDOG_PID names another process', async () => {
  const { n, sent, next } = notifier({ NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '20000' });
  const first = next();
  n.startWatchdog();
  // The watchdog's timer is unref'd (it never keeps a master alive): keep this test's loop up meanwhile.
  const alive = setInterval(() => {}, 1000);
  await first;
  clearInterval(alive);
  n.stopWatchdog();
  assert.deepEqual(sent[0], ['WATCHDOG=1']);
  const other = notifier({ NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '20000', WATCHDOG_PID: String(process.pid + 1) });
  other.n.startWatchdog();
  await other.n.settled();
  other.n.stopWatchdog();
  assert.deepEqual(other.sent, []);
});

test('STATUS line: what serves, and what runs (reload, upgrade, stop)', () => {
  const w = (generation: number, state: WorkerStatus['state']): WorkerStatus => ({
    generation, slot: 0, pid: 1, state, startedAt: 0, readyAt: 0, restarts: 0, statusText: undefined, release: undefined,
  });
  const base: StatusSnapshot = {
    version: '1', pid: 1, startedAt: 0, uptimeMs: 0, state: 'running', generation: 3, release: undefined, listeners: [],
    workers: [w(3, 'ready'), w(3, 'starting')], lastReload: undefined, reloadQueued: false,
  };
  assert.equal(statusLine(base), 'generation 3 serving, 1/2 workers ready');
  assert.equal(statusLine({ ...base, state: 'reloading', reload: { generation: 4, phase: 'spawning', reason: 'x', startedAt: 0 } }),
    'reloading: generation 4 spawning; generation 3 serving, 1/2 workers ready');
  assert.equal(statusLine({ ...base, upgrade: { phase: 'starting', reason: 'x', pid: 77, startedAt: 0 } }),
    'upgrading: new master pid 77 starting; generation 3 serving, 1/2 workers ready');
  assert.equal(statusLine({ ...base, state: 'starting', generation: 0 }), 'starting: 1/2 workers ready');
  assert.equal(statusLine({ ...base, state: 'stopping', workers: [w(3, 'draining')] }), 'stopping: 1 worker draining');
});

const facts = (over: Partial<PidFacts> = {}): PidFacts => ({
  pid: 4000, ppid: 3999, parentName: 'bash', env: {}, ttys: [], notifyProgram: true, ...over,
});

test('PID guard: an upgrade may replace a master run detached, or under systemd with NOTIFY_SOCKET', () => {
  assert.equal(pidMustStay(facts()), undefined);
  assert.equal(pidMustStay(facts({ ppid: 1, parentName: 'systemd', env: { INVOCATION_ID: 'x', NOTIFY_SOCKET: '/run/systemd/notify' } })), undefined);
});

test('PID guard: refused, with why and what instead, for PID 1, a container init, supervisord, a terminal, systemd without notify', () => {
  const cases: [Partial<PidFacts>, RegExp][] = [
    [{ pid: 1 }, /PID 1 .*container ends when PID 1 exits; roll out a new image/],
    [{ ppid: 1, parentName: 'tini' }, /parent is tini \(pid 1\), a container init/],
    [{ parentName: 'docker-init' }, /docker-init/],
    [{ env: { SUPERVISOR_ENABLED: '1', SUPERVISOR_PROCESS_NAME: 'myapp' } }, /supervisord runs this master \(program myapp\).*supervisorctl restart myapp/],
    [{ ttys: [0, 1, 2] }, /runs in a terminal \(fd 0, 1, 2 is a TTY\).*service manager/],
    [{ env: { INVOCATION_ID: 'abc' } }, /systemd runs this master without NOTIFY_SOCKET.*Type=notify with NotifyAccess=all/],
    [{ env: { NOTIFY_SOCKET: '/run/systemd/notify' }, notifyProgram: false }, /systemd-notify is not installed/],
  ];
  for (const [over, says] of cases) assert.match(pidMustStay(facts(over)) ?? '(allowed)', says, JSON.stringify(over));
});
