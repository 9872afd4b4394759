// What `hitless upgrade` prints while it works and when it is done (src/cli/commands/upgrade.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UpgradeProgress, upgradeDoneLine } from '../../src/cli/commands/upgrade.js';
import { describeDraining } from '../../src/cli/format.js';
import type { MasterEvent, UpgradeOutcome } from '../../src/core/types.js';

const phase = (p: Extract<MasterEvent, { type: 'upgrade-phase' }>['phase'], extra: Partial<Extract<MasterEvent, { type: 'upgrade-phase' }>> = {}): MasterEvent =>
  ({ type: 'upgrade-phase', phase: p, reason: 'hitless upgrade', pid: 9267, ...extra });
const drained = (generation: number, extra: Partial<Extract<MasterEvent, { type: 'reload-drained' }>> = {}): MasterEvent =>
  ({ type: 'reload-drained', generation, forced: 0, ms: 1000, handedOver: 0, returned: 0, lost: 0, drained: 0, cut: 0, ...extra });
const background = (generation: number, deadline: number) => ({
  generation, background: true, since: 0, deadline, upgraded: 0, requests: 0, connections: 0, unknown: 1, workers: [{ slot: 0, pid: 10 + generation, upgraded: undefined }],
});

test('regression (h15 F5): upgrade progress names the background generations it waits for, says "old workers gone" once, and never before the hand-over', () => {
  const now = 1_000_000;
  const p = new UpgradeProgress();
  const out = (e: MasterEvent): string[] => p.update(e, now);
  const draining = [background(34, now + 20_000), background(35, now + 44_000)];
  const lines = [
    ...out(phase('starting')),
    // A background generation ending while the new master starts: no part of the upgrade.
    ...out(drained(33, { handedOver: 2, drained: 5 })),
    ...out(phase('ready', { version: '0.3.0', generation: 37 })),
    ...out(phase('committed')),
    ...out(phase('handover', { draining })),
    ...out(drained(36, { handedOver: 2, drained: 1 })),
    ...out(drained(34, { ms: 60_000, drained: 1, cut: 2, forced: 1 })),
    ...out(drained(35, { ms: 60_000, drained: 5 })),
  ];
  assert.match(lines[4] ?? '', /^also draining generation 34 \(background\): .*SIGKILL in 20 s$/);
  assert.deepEqual(lines, [
    'new master pid 9267 starting its first generation',
    'new master pid 9267 (hitless 0.3.0) ready: generation 37',
    'new master pid 9267 took the control socket and the pid file',
    'handing keep-alive connections over to the new master, draining the rest',
    // As `hitless stop` names them (its deadline: "…, SIGKILL in 20 s").
    ...draining.map((d) => `also draining ${describeDraining(d, now)}`),
    'old workers gone (2 connections handed over, 1 drained); still waiting for generations 34, 35 (background), SIGKILL in 44 s at the latest',
    'generation 34 (background) gone after 1 min: 1 drained, 2 cut at the drain deadline, 1 worker killed at drainTimeout; still waiting for generation 35 (background), SIGKILL in 44 s at the latest',
    'generation 35 (background) gone after 1 min: 5 drained',
  ]);
});

test('upgrade progress without background generations: one "old workers gone" line, with what was cut', () => {
  const p = new UpgradeProgress();
  assert.deepEqual([...p.update(phase('handover')), ...p.update(drained(4, { handedOver: 3, drained: 1, cut: 1, forced: 1 }))], [
    'handing keep-alive connections over to the new master, draining the rest',
    'old workers gone (3 connections handed over, 1 drained, 1 cut at the drain deadline, 1 worker killed at drainTimeout)',
  ]);
});

test('regression (h25 F2): an upgrade says the WebSockets it closed (1001), apart from the connections drained, and "1 connection" in the singular', () => {
  const p = new UpgradeProgress();
  assert.deepEqual([...p.update(phase('handover')), ...p.update(drained(4, { handedOver: 1, drained: 1, webSocketsClosed: 1 }))], [
    'handing keep-alive connections over to the new master, draining the rest',
    'old workers gone (1 connection handed over, 0 drained); 1 WebSocket closed (1001): WebSockets do not move across a master upgrade, their clients reconnect',
  ]);
  const outcome: UpgradeOutcome = {
    ok: true, pid: 29455, version: '0.1.0', generation: 4, from: { pid: 27226, version: '0.1.0' }, reason: 'hitless upgrade', startedAt: 0, durationMs: 3100,
    forced: 0, connections: { handedOver: 1, returned: 0, lost: 0, drained: 3, cut: 0, webSocketsClosed: 2 },
  };
  assert.equal(upgradeDoneLine(outcome),
    'upgrade: done in 3.1 s: master pid 29455 (hitless 0.1.0) serves generation 4; 1 connection handed over, 1 drained; ' +
    '2 WebSockets closed (1001): WebSockets do not move across a master upgrade, their clients reconnect; old master pid 27226 exited');
});

test('regression (h15 F5): the done line counts what the background generations cut and forced, and names them', () => {
  const base: UpgradeOutcome = {
    ok: true, pid: 11327, version: '0.3.0', generation: 40, from: { pid: 9267, version: '0.2.0' }, reason: 'hitless upgrade', startedAt: 0, durationMs: 40_100,
    forced: 1, connections: { handedOver: 2, returned: 0, lost: 0, drained: 1, cut: 2 },
  };
  assert.equal(upgradeDoneLine({ ...base, background: { generations: [38], forced: 1, drained: 0, cut: 2 } }),
    'upgrade: done in 40.1 s: master pid 11327 (hitless 0.3.0) serves generation 40; 2 connections handed over, 1 drained, 2 cut at the drain deadline, ' +
    '1 old worker killed at drainTimeout; waited for generation 38 draining in the background: 0 drained, 2 cut at the drain deadline, 1 worker killed at drainTimeout; old master pid 9267 exited');
  assert.equal(upgradeDoneLine({ ...base, forced: 0, connections: { handedOver: 2, returned: 0, lost: 0, drained: 1, cut: 0 } }),
    'upgrade: done in 40.1 s: master pid 11327 (hitless 0.3.0) serves generation 40; 2 connections handed over, 1 drained; old master pid 9267 exited');
});

test('regression (h18 N4): after a SIGHUP passed on to the new master, the done line does not say its first generation still serves', () => {
  const outcome: UpgradeOutcome = {
    ok: true, pid: 27477, version: '0.1.0', generation: 11, from: { pid: 27029, version: '0.1.0' }, reason: 'hitless upgrade', startedAt: 0, durationMs: 3800,
    forced: 0, connections: { handedOver: 20, returned: 0, lost: 0, drained: 0, cut: 0 }, reloadsPassedOn: 1,
  };
  assert.equal(upgradeDoneLine(outcome),
    'upgrade: done in 3.8 s: master pid 27477 (hitless 0.1.0) took over with generation 11, then reloaded for a SIGHUP the old master passed on ' +
    '(`hitless status` shows the generation serving now); 20 connections handed over, 0 drained; old master pid 27029 exited');
});

test('regression (h23 F4): the done line names the new Node when the upgrade changed it, and says nothing of Node otherwise', () => {
  const base: UpgradeOutcome = {
    ok: true, pid: 8394, version: '0.1.0', node: 'v26.12.1', generation: 2, from: { pid: 8101, version: '0.1.0', node: 'v22.23.5' },
    reason: 'hitless upgrade', startedAt: 0, durationMs: 2500, forced: 0, connections: { handedOver: 10, returned: 0, lost: 0, drained: 0, cut: 0 },
  };
  assert.equal(upgradeDoneLine(base),
    'upgrade: done in 2.5 s: master pid 8394 (hitless 0.1.0, node v26.12.1, was v22.23.5) serves generation 2; 10 connections handed over, 0 drained; old master pid 8101 exited');
  assert.equal(upgradeDoneLine({ ...base, from: { ...base.from, node: 'v26.12.1' } }),
    'upgrade: done in 2.5 s: master pid 8394 (hitless 0.1.0) serves generation 2; 10 connections handed over, 0 drained; old master pid 8101 exited');
});

test('regression (h23 F3): an upgrade that ran the same copy again while the app has another hitless installed does not say "done": it says so, with the --exec that runs the installed one', () => {
  const outcome: UpgradeOutcome = {
    ok: true, pid: 593, version: '0.1.0', generation: 2, from: { pid: 443, version: '0.1.0' }, reason: 'hitless upgrade', startedAt: 0, durationMs: 2500,
    forced: 0, connections: { handedOver: 10, returned: 0, lost: 0, drained: 0, cut: 0 },
    notRun: { version: '0.2.0', exec: '/srv/app/node_modules/hitless/build/src/cli/main.js' },
  };
  assert.equal(upgradeDoneLine(outcome),
    'upgrade: restarted the same hitless 0.1.0 in 2.5 s: master pid 593 (hitless 0.1.0) serves generation 2; 10 connections handed over, 0 drained; old master pid 443 exited\n' +
    'upgrade: not upgraded to the hitless 0.2.0 this app has installed: the master was started from another copy, which it ran again; to run 0.2.0: hitless upgrade --exec /srv/app/node_modules/hitless/build/src/cli/main.js');
});
