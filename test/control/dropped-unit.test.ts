/**
 * What the client says when the master closed the connection before answering `reload`
 * or `upgrade` (src/control/dropped.ts, h21 F5), on fake seams: the master still runs,
 * nothing answers, the upgrade's new master serves (at once, or after its first
 * generation started), it fails, another master answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HitlessError } from '../../src/errors.js';
import type { StatusSnapshot } from '../../src/core/types.js';
import { explainDrop, isDropped, type DropSeams, type DropVerdict } from '../../src/control/dropped.js';

/** Seams whose control socket answers `answers` in turn (the last one from then on); `ended` the pids gone. */
function seams(answers: (Partial<StatusSnapshot> | 'none')[], ended: number[]): DropSeams & { asked: number } {
  let clock = 0;
  const s = {
    asked: 0,
    status: async () => {
      const a = answers[Math.min(s.asked++, answers.length - 1)]!;
      if (a === 'none') throw new HitlessError('ERR_NO_MASTER', 'no master is running at /run/x/control.sock');
      return { state: 'running', generation: 1, ...a } as StatusSnapshot;
    },
    ended: (pid: number) => ended.includes(pid),
    wait: async (ms: number) => void (clock += ms),
    now: () => clock,
  };
  return s;
}

const message = (v: DropVerdict): string => ('error' in v ? `${v.error.code}: ${v.error.message}` : `served: ${v.line}`);

test('a reload whose master died and nothing answers: "the master (pid N) died during the reload; no master serves this app now"', async () => {
  const v = await explainDrop({ cmd: 'reload', pid: 40 }, seams(['none'], [40]));
  assert.equal(message(v), 'ERR_NO_MASTER: the master (pid 40) died during the reload; no master serves this app now (start it with `hitless start`)');
  const unknown = await explainDrop({ cmd: 'reload', pid: undefined }, seams(['none'], []));
  assert.equal(message(unknown), 'ERR_NO_MASTER: the master died during the reload; no master serves this app now (start it with `hitless start`)');
});

test('a master whose close came before its end (a process killed closes its sockets first) is waited for a moment', async () => {
  const s = seams(['none'], []);
  let looks = 0;
  s.ended = () => ++looks > 3;
  assert.match(message(await explainDrop({ cmd: 'reload', pid: 40 }, s)), /^ERR_NO_MASTER: the master \(pid 40\) died during the reload/);
});

test('a master that closed the connection but still runs is said to run; another master answering since is named', async () => {
  assert.match(message(await explainDrop({ cmd: 'reload', pid: 40 }, seams([{ pid: 40 }], []))), /^ERR_CONTROL_PROTOCOL: the master \(pid 40\) closed the control connection before answering "reload", and still runs/);
  assert.equal(message(await explainDrop({ cmd: 'reload', pid: 40 }, seams([{ pid: 77, generation: 3 }], [40]))),
    'ERR_RELOAD_FAILED: the master (pid 40) died during the reload; master pid 77 answers now (running, generation 3): run `hitless reload` again if it should reload');
});

test('an upgrade whose old master died after the commit: the new master serves, said as a success', async () => {
  const v = await explainDrop({ cmd: 'upgrade', pid: 40, newPid: 50, committed: true }, seams([{ pid: 50, generation: 2, upgradedFrom: { pid: 40, version: '1', at: 0 } }], [40]));
  assert.equal(message(v), 'served: the old master (pid 40) died after the new master (pid 50) took over; the new master serves generation 2');
});

test('an upgrade whose old master died before the hand-over: the client waits while the new master takes the socket and starts, then says it serves', async () => {
  const s = seams(['none', 'none', { pid: 50, state: 'starting', generation: 0 }, { pid: 50, generation: 2 }], [40]);
  const v = await explainDrop({ cmd: 'upgrade', pid: 40, newPid: 50 }, s);
  assert.equal(message(v), "served: the old master (pid 40) died during the upgrade, before it handed the service over; the new master (pid 50) took the control socket and serves generation 2 (the old workers' keep-alive connections were not handed over: they drain on their own)");
  assert.equal(s.asked, 4);
});

test('an upgrade whose old master died and whose new master failed or is gone: nothing serves; at --timeout: still starting', async () => {
  assert.match(message(await explainDrop({ cmd: 'upgrade', pid: 40, newPid: 50 }, seams([{ pid: 50, state: 'stopping', generation: 0 }], [40]))),
    /^ERR_UPGRADE_FAILED: the old master \(pid 40\) died during the upgrade, and the new master \(pid 50\) is stopping \(its log says why\): no master serves this app now/);
  assert.equal(message(await explainDrop({ cmd: 'upgrade', pid: 40, newPid: 50 }, seams(['none'], [40, 50]))),
    'ERR_UPGRADE_FAILED: the old master (pid 40) died during the upgrade, and the new master (pid 50) ended too (its log says why): no master serves this app now (start it with `hitless start`)');
  assert.equal(message(await explainDrop({ cmd: 'upgrade', pid: 40 }, seams(['none'], [40]))),
    'ERR_NO_MASTER: the master (pid 40) died during the upgrade; no master serves this app now (start it with `hitless start`)');
  assert.match(message(await explainDrop({ cmd: 'upgrade', pid: 40, newPid: 50, timeoutMs: 1000 }, seams([{ pid: 50, state: 'starting' }], [40]))),
    /^ERR_CONTROL_TIMEOUT: the old master \(pid 40\) died during the upgrade; the new master \(pid 50\) was still starting its first generation at the --timeout/);
});

test('isDropped: only the client\'s "closed before answering"', () => {
  assert.equal(isDropped(new HitlessError('ERR_CONTROL_PROTOCOL', 'x', { details: { closedBeforeAnswer: true } })), true);
  assert.equal(isDropped(new HitlessError('ERR_CONTROL_PROTOCOL', 'the master sent a line that is not JSON')), false);
  assert.equal(isDropped(new Error('x')), false);
});
