/**
 * A master upgrade, the old master's side (src/master/upgrade.ts), on the fake host with
 * the real supervisor: every phase in order, what goes to the new master and to systemd,
 * connections moving old worker → old master → new master, and every failure before the
 * point of no return leaving the old master exactly as it was. In milliseconds, the same
 * way every run; what lives in the kernel is tested end to end in upgrade.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HitlessError } from '../../src/errors.js';
import { Supervisor } from '../../src/core/supervisor.js';
import type { MasterEvent, UpgradeOutcome } from '../../src/core/types.js';
import { UPGRADE_START_GRACE_MS, Upgrader } from '../../src/master/upgrade.js';
import type { OldMasterMessage, PeerWorker } from '../../src/master/peer-protocol.js';
import { FakeHandle, FakeHost, fakeSpec, settle, wellBehaved, type Behaviour, type FakeProcess } from '../core/fake-host.js';
import { FakePeer, goodSuccessor, NEW_WORKERS, type PeerBehaviour } from './fake-peer.js';

/** A Node worker with the in-app library: hello with hand-over, ready, exits when told to stop. */
const libraryWorker: Behaviour = (p) => {
  wellBehaved(p);
  queueMicrotask(() => p.say({ hitless: 1, type: 'hello', handover: true, listeners: ['http'] }));
};

/** A library worker holding `n` keep-alive connections: on `stop` it sends them, and exits once all landed. */
const holding = (n: number): Behaviour => (p) => {
  libraryWorker(p);
  p.removeAllListeners('sent');
  let landed = 0;
  p.on('sent', (m: Record<string, unknown>) => {
    if (m.type === 'stop') for (let i = 0; i < n; i++) p.say({ hitless: 1, type: 'conn', listener: 'http' }, new FakeHandle());
    if (m.type === 'landed' && ++landed === n) queueMicrotask(() => p.exit(0));
  });
};

function setup(o: { guard?: string; behave?: PeerBehaviour; prepare?: () => Promise<never>; handover?: boolean; stuckNotify?: boolean; notRun?: { version: string; exec: string }; stayReady?: number } = {}) {
  const host = new FakeHost();
  host.behave = () => libraryWorker;
  const sup = new Supervisor({ stayReady: 0, host, spec: () => fakeSpec({ handover: o.handover ?? true }), version: '1.0.0', listeners: () => [] });
  const events: MasterEvent[] = [];
  sup.on('event', (e: MasterEvent) => events.push(e));
  const peers: FakePeer[] = [];
  const notices: string[] = [];
  const cleaned: (number | undefined)[] = [];
  const upgrader = new Upgrader({
    host, supervisor: sup, pid: 100, version: '1.0.0', node: 'v20.0.0',
    limits: () => ({ readyTimeout: 1000, drainTimeout: 5000, ...(o.stayReady === undefined ? {} : { stayReady: o.stayReady }) }),
    guard: () => o.guard,
    prepare: o.prepare ?? (async () => ({
      launch: { command: ['node', '/new/hitless', 'start'], cwd: '/app', env: {}, fds: [10] },
      exec: '/usr/bin/hitless → /new/hitless',
      sockets: [{ name: 'http', address: '127.0.0.1:8080', inherited: false, key: 'tcp:127.0.0.1:8080' }],
      ...(o.notRun ? { notRun: o.notRun } : {}),
    })),
    spawn: (launch) => {
      const p = new FakePeer(5000 + peers.length, launch);
      peers.push(p);
      (o.behave ?? goodSuccessor)(p);
      return p;
    },
    notices: {
      // stuckNotify: a notify socket that never takes a message (the delivery never ends).
      upgrading: (): Promise<void> => (notices.push('RELOADING'), o.stuckNotify ? new Promise(() => {}) : Promise.resolve()),
      resumed: (): Promise<void> => (notices.push('READY'), o.stuckNotify ? new Promise(() => {}) : Promise.resolve()),
      handedOver: async (pid) => void notices.push(`MAINPID=${pid}`),
    },
    yieldParts: async () => {
      notices.push('parts yielded');
      return {};
    },
    scale: () => ({ workers: 3, readWorkers: 2 }),
    cleanup: (pid) => cleaned.push(pid),
    reload: (reason) => sup.reload(reason),
  });
  const phases = (): string[] => events.flatMap((e) => (e.type === 'upgrade-phase' ? [e.phase] : []));
  return { host, sup, events, peers, notices, cleaned, upgrader, phases };
}

const oldUntouched = (procs: FakeProcess[]): void => {
  for (const p of procs) {
    assert.equal(p.exited, false, `old worker ${p.pid} must still run`);
    assert.deepEqual(p.signals, []);
    assert.ok(!p.sent.some((s) => s.message.type === 'stop'), 'no old worker was asked to stop');
  }
};

test('upgrade: spawning → starting → ready → committed → handover, connections land in the new master, the old supervisor ends', async () => {
  const { sup, host, peers, notices, upgrader, phases, events } = setup();
  host.behave = () => holding(2);
  await sup.start();
  const old = host.alive(1);
  const outcome = await upgrader.run({ reason: 'test' });
  assert.equal(outcome.ok, true, JSON.stringify(outcome.error));
  assert.deepEqual(phases(), ['spawning', 'starting', 'ready', 'committed', 'handover']);
  const peer = peers[0]!;
  assert.deepEqual(peer.types(), ['upgrade-state', 'upgrade-commit', 'upgrade-takeover', 'upgrade-conn', 'upgrade-conn', 'upgrade-conn', 'upgrade-conn', 'upgrade-done']);
  // Round robin over the new master's workers, each connection named by worker and pid.
  const conns = peer.sent.filter((s) => s.message.type === 'upgrade-conn');
  assert.deepEqual(conns.map((s) => (s.message as Extract<OldMasterMessage, { type: 'upgrade-conn' }>).worker).sort(), ['2.0', '2.0', '2.1', '2.1']);
  // The master's own copy of each descriptor is closed once the new master holds it.
  for (const c of conns) assert.equal((c.handle as FakeHandle).closed, 1);
  assert.deepEqual(outcome.connections, { handedOver: 4, returned: 0, lost: 0, drained: 0, cut: 0 });
  assert.equal(outcome.pid, peer.pid);
  assert.equal(outcome.version, '9.9.9');
  assert.equal(outcome.generation, 2);
  // The Node versions of both masters (h23 F4: an upgrade onto another Node could not be confirmed).
  assert.deepEqual(outcome.from, { pid: 100, version: '1.0.0', node: 'v20.0.0' });
  assert.equal(outcome.node, 'v99.0.0');
  assert.equal(outcome.to?.node, 'v99.0.0');
  // systemd hears the new PID only after the parts moved, and before any old worker is stopped.
  assert.deepEqual(notices, ['RELOADING', 'parts yielded', `MAINPID=${peer.pid}`]);
  for (const p of old) {
    assert.equal(p.exited, true);
    assert.deepEqual(p.sent.find((s) => s.message.type === 'stop')?.message, { hitless: 1, type: 'stop', handover: true, window: 1, webSockets: false }, 'the new master takes no WebSockets: the old workers do not try to move them');
  }
  assert.equal(sup.state, 'stopped');
  assert.equal(events.at(-1)?.type, 'upgrade-done');
  assert.deepEqual(events.filter((e) => e.type === 'master-stop'), [{ type: 'master-stop', reason: 'upgraded' }]);
});

test('upgrade: the new master gets the sockets, the generation counter, the reload counters, the last reload and the scale override', async () => {
  const { sup, peers, upgrader } = setup();
  await sup.start();
  assert.equal((await sup.reload('first')).ok, true);
  const outcome = await upgrader.run();
  assert.equal(outcome.ok, true);
  const state = peers[0]!.sent[0]!.message as Extract<OldMasterMessage, { type: 'upgrade-state' }>;
  assert.equal(state.protocol, 1);
  assert.equal(state.supervisor.nextGeneration, 3);
  assert.deepEqual(state.supervisor.reloadRequests, { started: 1, queued: 0, merged: 0, refused: 0 });
  assert.equal(state.supervisor.lastReload?.generation, 2);
  assert.deepEqual(state.sockets.map((s) => s.name), ['http']);
  assert.deepEqual(state.scale, { workers: 3, readWorkers: 2 });
  assert.deepEqual(state.from, { pid: 100, version: '1.0.0', node: 'v20.0.0' });
  assert.equal(outcome.generation, 3);
  assert.deepEqual(peers[0]!.launch.fds, [10]);
});

test('upgrade refused where the PID must stay: nothing starts, reloads go on (ERR_UPGRADE_REFUSED)', async () => {
  const { sup, host, peers, upgrader, events } = setup({ guard: 'supervisord runs this master (program app)' });
  await sup.start();
  const outcome = await upgrader.run();
  assert.equal(outcome.ok, false);
  assert.equal(outcome.error?.code, 'ERR_UPGRADE_REFUSED');
  assert.match(outcome.error?.message ?? '', /supervisord runs this master/);
  assert.equal(peers.length, 0);
  oldUntouched(host.alive(1));
  assert.equal(sup.status().lastUpgrade?.error?.code, 'ERR_UPGRADE_REFUSED');
  assert.ok(events.some((e) => e.type === 'upgrade-done'));
  assert.equal((await sup.reload('after')).ok, true);
});

test('upgrade refused while a reload runs (ERR_UPGRADE_BUSY), and a reload or scale during an upgrade is refused the same way', async () => {
  const { sup, host, peers, upgrader } = setup({ behave: () => {} });
  await sup.start();
  for (const p of host.alive(1)) p.removeAllListeners('sent'); // old workers drain slowly
  const reload = sup.reload('slow');
  await settle();
  const busy = await upgrader.run();
  assert.equal(busy.error?.code, 'ERR_UPGRADE_BUSY');
  assert.match(busy.error?.message ?? '', /a reload is under way \(generation 2\)/);
  assert.equal(peers.length, 0);
  for (const p of host.alive(1)) p.exit(0);
  assert.equal((await reload).ok, true);

  const upgrade = upgrader.run();
  await settle();
  assert.equal(sup.status().upgrade?.phase, 'starting');
  const refusedReload = await sup.reload('during');
  assert.equal(refusedReload.error?.code, 'ERR_UPGRADE_BUSY');
  assert.equal((await sup.scale(3)).error?.code, 'ERR_UPGRADE_BUSY');
  assert.equal((await upgrader.run()).error?.code, 'ERR_UPGRADE_BUSY');
  // The one under way is not disturbed by the refusals.
  assert.equal(sup.status().upgrade?.phase, 'starting');
  peers[0]!.exit(1);
  assert.equal((await upgrade).error?.code, 'ERR_UPGRADE_FAILED');
  assert.equal(sup.status().upgrade, undefined);
  assert.equal((await sup.reload('after')).ok, true);
});

test('a SIGHUP during an upgrade is held and passed on to the new master as one SIGHUP once the old workers handed over, with one during the hand-over; a refused reload is counted for it (regression: both were dropped)', async () => {
  // The new master answers the commit and takes every connection; it says ready when the test does.
  const { sup, peers, upgrader, events } = setup({
    behave: (p) => p.on('sent', (m: OldMasterMessage) => {
      if (m.type === 'upgrade-commit') p.say({ hitless: 1, type: 'upgrade-committed' });
      else if (m.type === 'upgrade-conn') p.say({ hitless: 1, type: 'upgrade-landed', id: m.id, ok: true });
    }),
  });
  await sup.start();
  const upgrade = upgrader.run();
  await settle();
  assert.equal(sup.status().upgrade?.phase, 'starting');
  const first = sup.reload('SIGHUP', { holdDuringUpgrade: true });
  const second = sup.reload('SIGHUP', { holdDuringUpgrade: true });
  assert.equal((await sup.reload('hitless reload')).error?.code, 'ERR_UPGRADE_BUSY');
  assert.equal(sup.status().reloadQueued, true);
  assert.deepEqual(sup.status().queuedReload?.reasons, ['SIGHUP', 'SIGHUP']);
  assert.deepEqual(events.filter((e) => e.type === 'reload-queued'), [
    { type: 'reload-queued', reason: 'SIGHUP', merged: false, behind: 'upgrade', pid: 5000 },
    { type: 'reload-queued', reason: 'SIGHUP', merged: true, behind: 'upgrade', pid: 5000 },
  ]);
  assert.ok(!events.some((e) => e.type === 'reload-start' || e.type === 'reload-done'), 'nothing ran here');
  let late: Promise<unknown> | undefined;
  sup.on('event', (e: MasterEvent) => {
    if (e.type === 'upgrade-phase' && e.phase === 'handover') late = sup.reload('SIGHUP', { holdDuringUpgrade: true });
  });
  peers[0]!.say({ hitless: 1, type: 'upgrade-ready', pid: 5000, version: '9.9.9', generation: 2, workers: NEW_WORKERS });
  const outcome = await upgrade;
  assert.equal(outcome.ok, true);
  assert.equal(outcome.reloadsPassedOn, 1);
  const sent = (type: string): Record<string, unknown> => peers[0]!.sent.find((x) => x.message.type === type)?.message as unknown as Record<string, unknown>;
  assert.equal(sent('upgrade-takeover').reloads, undefined, 'held past the takeover (h18 N4)');
  assert.deepEqual(sent('upgrade-takeover').reloadRequests, { merged: 1, refused: 1 });
  assert.equal(sent('upgrade-done').reloads, undefined);
  assert.deepEqual(sent('upgrade-done').reloadRequests, { merged: 1 }, 'the one during the hand-over joined the held ones');
  assert.deepEqual(peers[0]!.signals, ['SIGHUP'], 'one SIGHUP for the three');
  const handed = await first;
  assert.equal(handed.error?.code, 'ERR_UPGRADE_BUSY');
  assert.match(handed.error?.message ?? '', /passed on to the new master \(pid 5000\) as a SIGHUP once the old workers' connections were handed over/);
  assert.equal((await second).coalesced, true);
  assert.ok(late);
  assert.equal(((await late) as { coalesced?: boolean }).coalesced, true);
});

test('regression (h18 N4): a SIGHUP after the takeover waits until the old workers handed their connections over, then goes on to the new master (a reload there meanwhile lost connections)', async () => {
  // The new master lands each connection only when the test says.
  const pending: number[] = [];
  const { sup, host, peers, upgrader } = setup({
    behave: (p) => {
      goodSuccessor(p);
      p.removeAllListeners('sent');
      p.on('sent', (m: OldMasterMessage) => {
        if (m.type === 'upgrade-state') p.say({ hitless: 1, type: 'upgrade-ready', pid: p.pid, version: '9.9.9', generation: m.supervisor.nextGeneration, workers: NEW_WORKERS });
        else if (m.type === 'upgrade-commit') p.say({ hitless: 1, type: 'upgrade-committed' });
        else if (m.type === 'upgrade-conn') pending.push(m.id);
      });
    },
  });
  host.behave = () => holding(2);
  await sup.start();
  let sighup: Promise<{ coalesced?: boolean; error?: { message: string } }> | undefined;
  sup.on('event', (e: MasterEvent) => {
    if (e.type === 'upgrade-phase' && e.phase === 'handover') sighup = sup.reload('SIGHUP', { holdDuringUpgrade: true });
  });
  const done: { outcome?: UpgradeOutcome } = {};
  void upgrader.run().then((o) => (done.outcome = o));
  await host.advance(0);
  const peer = peers[0]!;
  assert.equal(pending.length, 4, 'the old workers\' connections are on their way');
  assert.deepEqual(peer.signals, [], 'no reload in the new master while connections move into its generation');
  assert.equal(sup.status().reloadQueued, true, 'held');
  for (const id of pending.splice(0, 3)) peer.say({ hitless: 1, type: 'upgrade-landed', id, ok: true });
  await host.advance(0);
  assert.deepEqual(peer.signals, [], 'still one connection moving');
  for (const id of pending.splice(0)) peer.say({ hitless: 1, type: 'upgrade-landed', id, ok: true });
  await host.advance(0);
  assert.deepEqual(peer.signals, ['SIGHUP'], 'passed on once the old workers are gone');
  assert.match((await sighup)?.error?.message ?? '', /passed on to the new master \(pid 5000\) as a SIGHUP once the old workers' connections were handed over/);
  assert.ok(done.outcome);
  assert.equal(done.outcome.reloadsPassedOn, 1);
  assert.deepEqual(done.outcome.connections, { handedOver: 4, returned: 0, lost: 0, drained: 0, cut: 0 });
});

test('a SIGHUP held during an upgrade that fails runs here once it failed, counted once (regression: it was dropped)', async () => {
  const { sup, peers, upgrader } = setup({ behave: () => {} });
  await sup.start();
  const upgrade = upgrader.run();
  await settle();
  const held = sup.reload('SIGHUP', { holdDuringUpgrade: true });
  peers[0]!.exit(1);
  assert.equal((await upgrade).error?.code, 'ERR_UPGRADE_FAILED');
  const outcome = await held;
  assert.equal(outcome.ok, true, JSON.stringify(outcome.error));
  assert.equal(outcome.reason, 'SIGHUP');
  assert.equal(outcome.generation, 2);
  assert.deepEqual(sup.status().reloadRequests, { started: 1, queued: 0, merged: 0, refused: 0 });
  assert.equal(sup.status().reloadQueued, false);
});

test('a SIGHUP held during an upgrade when the master is asked to stop: refused as stopping, said so', async () => {
  const { sup, peers, upgrader } = setup({ behave: (p) => p.on('signal', () => queueMicrotask(() => p.exit(0))) });
  await sup.start();
  const upgrade = upgrader.run();
  await settle();
  const held = sup.reload('SIGHUP', { holdDuringUpgrade: true });
  upgrader.abort();
  const stopped = sup.stop();
  assert.equal((await held).error?.code, 'ERR_STOPPING');
  assert.equal((await upgrade).ok, false);
  await stopped;
  assert.equal(peers[0]!.exited, true);
});

test('upgrade: a RELOADING=1 or READY=1 that systemd never takes holds neither the upgrade\'s start nor its answer (regression: it waited for the notify queue)', async () => {
  const good = setup({ stuckNotify: true });
  await good.sup.start();
  const done = await good.upgrader.run({ reason: 'test' });
  assert.equal(done.ok, true, JSON.stringify(done.error));
  assert.deepEqual(good.phases(), ['spawning', 'starting', 'ready', 'committed', 'handover']);
  const bad = setup({ stuckNotify: true, behave: (p) => p.on('sent', (m: OldMasterMessage) => m.type === 'upgrade-state' && queueMicrotask(() => p.exit(1))) });
  await bad.sup.start();
  const failed = await bad.upgrader.run();
  assert.equal(failed.error?.code, 'ERR_UPGRADE_FAILED');
  assert.deepEqual(bad.notices, ['RELOADING', 'READY']);
});

test('upgrade fails when the new master exits at start: the old one serves on untouched, systemd hears READY again', async () => {
  const { sup, host, peers, notices, cleaned, upgrader, phases } = setup({
    behave: (p) => p.on('sent', (m: OldMasterMessage) => m.type === 'upgrade-state' && queueMicrotask(() => p.exit(1))),
  });
  await sup.start();
  const outcome = await upgrader.run();
  assert.equal(outcome.ok, false);
  assert.equal(outcome.error?.code, 'ERR_UPGRADE_FAILED');
  assert.match(outcome.error?.message ?? '', /the new master \(pid 5000\) exited with code 1 before its first generation was ready/);
  assert.deepEqual(phases(), ['spawning', 'starting', 'failed']);
  assert.deepEqual(notices, ['RELOADING', 'READY']);
  assert.deepEqual(cleaned, [5000]);
  assert.deepEqual(peers[0]!.signals, []);
  oldUntouched(host.alive(1));
  assert.equal(outcome.pid, 100);
  assert.equal(outcome.generation, 1);
  assert.equal(sup.state, 'running');
  assert.equal(sup.status().lastUpgrade?.error?.code, 'ERR_UPGRADE_FAILED');
  assert.equal((await sup.reload('after')).ok, true);
});

test('upgrade fails when the new master says its workers never got ready: its reason and output come back, it is stopped', async () => {
  const { sup, host, peers, upgrader } = setup({
    behave: (p) => {
      goodSuccessor(p);
      p.removeAllListeners('sent');
      p.on('sent', (m: OldMasterMessage) => m.type === 'upgrade-state' && p.say({
        hitless: 1, type: 'upgrade-failed',
        error: { code: 'ERR_START_FAILED', message: 'the first generation did not start: worker 2.0 did not announce readiness within 1000 ms', output: ['booting…'] },
      }));
    },
  });
  await sup.start();
  const outcome = await upgrader.run();
  assert.equal(outcome.error?.code, 'ERR_UPGRADE_FAILED');
  assert.match(outcome.error?.message ?? '', /the new master \(pid 5000\) failed: the first generation did not start: worker 2\.0 did not announce readiness/);
  assert.deepEqual(outcome.error?.output, ['booting…']);
  assert.deepEqual(peers[0]!.signals, ['SIGTERM']);
  oldUntouched(host.alive(1));
});

test('upgrade fails when the new master is silent past readyTimeout + grace: SIGTERM, then SIGKILL at drainTimeout', async () => {
  const { sup, host, peers, upgrader } = setup({
    behave: (p) => p.on('signal', (s: NodeJS.Signals) => s === 'SIGKILL' && queueMicrotask(() => p.exit(null, 'SIGKILL'))),
  });
  await sup.start();
  const running = upgrader.run();
  await host.advance(1000 + UPGRADE_START_GRACE_MS - 1);
  assert.deepEqual(peers[0]!.signals, []);
  await host.advance(1);
  assert.deepEqual(peers[0]!.signals, ['SIGTERM']);
  await host.advance(4999);
  assert.deepEqual(peers[0]!.signals, ['SIGTERM']);
  await host.advance(1);
  const outcome = await running;
  assert.deepEqual(peers[0]!.signals, ['SIGTERM', 'SIGKILL']);
  assert.match(outcome.error?.message ?? '', /did not say within 31 s that its first generation was ready$/);
  oldUntouched(host.alive(1));
});

test('a stop during the upgrade stops the new master too; the old master then stops as asked', async () => {
  const { sup, host, peers, upgrader } = setup({ behave: (p) => p.on('signal', () => queueMicrotask(() => p.exit(0))) });
  await sup.start();
  const running = upgrader.run();
  await settle();
  upgrader.abort();
  const stopped = sup.stop();
  const outcome = await running;
  assert.match(outcome.error?.message ?? '', /began stopping during the upgrade/);
  assert.deepEqual(peers[0]!.signals, ['SIGTERM']);
  await stopped;
  assert.equal(sup.state, 'stopped');
  assert.equal(host.alive().length, 0);
});

test('the new master gone between ready and its commit: the upgrade fails, the old one serves on', async () => {
  const { sup, host, upgrader } = setup({
    behave: (p) => p.on('sent', (m: OldMasterMessage) => {
      if (m.type === 'upgrade-state') p.say({ hitless: 1, type: 'upgrade-ready', pid: p.pid, version: '9', generation: 2, workers: NEW_WORKERS });
      else if (m.type === 'upgrade-commit') p.exit(null, 'SIGSEGV');
    }),
  });
  await sup.start();
  const outcome = await upgrader.run();
  assert.match(outcome.error?.message ?? '', /was killed by SIGSEGV before it took over the control socket/);
  oldUntouched(host.alive(1));
  assert.equal(sup.state, 'running');
});

test('a connection the new master cannot place goes back to the old worker that sent it (returned)', async () => {
  const { sup, host, peers, upgrader } = setup({
    behave: (p) => {
      goodSuccessor(p);
      p.removeAllListeners('sent');
      p.on('sent', (m: OldMasterMessage) => {
        if (m.type === 'upgrade-state') p.say({ hitless: 1, type: 'upgrade-ready', pid: p.pid, version: '9', generation: 2, workers: NEW_WORKERS });
        else if (m.type === 'upgrade-commit') p.say({ hitless: 1, type: 'upgrade-committed' });
        else if (m.type === 'upgrade-conn') p.say({ hitless: 1, type: 'upgrade-landed', id: m.id, ok: false });
      });
    },
  });
  host.behave = () => holding(1);
  await sup.start();
  const old = host.alive(1);
  const outcome = await upgrader.run();
  assert.equal(outcome.ok, true);
  // Each was offered to both new workers, then returned.
  assert.equal(peers[0]!.types().filter((t) => t === 'upgrade-conn').length, 4);
  assert.deepEqual(outcome.connections, { handedOver: 0, returned: 2, lost: 0, drained: 0, cut: 0 });
  for (const p of old) assert.ok(p.sent.some((s) => s.message.type === 'conn' && s.message.returned === true));
});

test('a connection delivered to a new worker that then crashed counts as lost; those it could no longer take go back', async () => {
  const only: PeerWorker[] = [NEW_WORKERS[0]!];
  let conns = 0;
  const { sup, host, upgrader } = setup({
    behave: (p) => {
      goodSuccessor(p);
      p.removeAllListeners('sent');
      p.on('sent', (m: OldMasterMessage) => {
        if (m.type === 'upgrade-state') p.say({ hitless: 1, type: 'upgrade-ready', pid: p.pid, version: '9', generation: 2, workers: only });
        else if (m.type === 'upgrade-commit') p.say({ hitless: 1, type: 'upgrade-committed' });
        else if (m.type === 'upgrade-conn') {
          // The first lands, then its worker crashes; the new master cannot place the others.
          p.say({ hitless: 1, type: 'upgrade-landed', id: m.id, ok: ++conns === 1 });
          if (conns === 1) p.say({ hitless: 1, type: 'upgrade-worker-exit', id: '2.0', pid: 7001, crashed: true });
        }
      });
    },
  });
  host.behave = (_g, slot) => holding(slot === 0 ? 2 : 1);
  await sup.start();
  const outcome = await upgrader.run();
  assert.equal(outcome.ok, true);
  assert.equal(conns, 3);
  assert.deepEqual(outcome.connections, { handedOver: 0, returned: 2, lost: 1, drained: 0, cut: 0 });
});

test('an --exec that cannot run fails before anything starts (ERR_UPGRADE_EXEC), and the next upgrade may run', async () => {
  const { sup, peers, upgrader } = setup({ prepare: () => Promise.reject(new HitlessError('ERR_UPGRADE_EXEC', 'cannot run /nope: ENOENT; check --exec')) });
  await sup.start();
  const outcome = await upgrader.run({ exec: '/nope' });
  assert.equal(outcome.error?.code, 'ERR_UPGRADE_EXEC');
  assert.equal(peers.length, 0);
  assert.equal(sup.status().upgrade, undefined);
  assert.equal((await upgrader.run()).error?.code, 'ERR_UPGRADE_EXEC');
});

test('a stop of this master while the upgrade still prepares (a slow Yarn resolution) gives the upgrade up: nothing starts, the next upgrade may run', async () => {
  const { sup, peers, upgrader } = setup({ prepare: () => new Promise<never>(() => {}) });
  await sup.start();
  const pending = upgrader.run();
  await new Promise((r) => setImmediate(r));
  upgrader.abort();
  const outcome = await pending;
  assert.equal(outcome.error?.code, 'ERR_UPGRADE_FAILED');
  assert.match(outcome.error?.message ?? '', /began stopping during the upgrade/);
  assert.equal(peers.length, 0);
  assert.equal(sup.status().upgrade, undefined);
  await upgrader.idle;
});

test('with "handover": false the old workers drain on their stop signal, as in a reload; nothing goes to the new master', async () => {
  const { sup, host, peers, upgrader } = setup({ handover: false });
  await sup.start();
  const old = host.alive(1);
  const outcome = await upgrader.run();
  assert.equal(outcome.ok, true);
  for (const p of old) assert.deepEqual(p.signals, ['SIGTERM']);
  assert.ok(!peers[0]!.types().includes('upgrade-conn'));
  assert.deepEqual(outcome.connections, { handedOver: 0, returned: 0, lost: 0, drained: 0, cut: 0 });
});

test('a stop that lands right after the commit: the old workers drain (no hand-over), and the upgrade still ends with the new master serving', async () => {
  const { sup, host, events, upgrader } = setup();
  await sup.start();
  const old = host.alive(1);
  sup.on('event', (e: MasterEvent) => {
    if (e.type === 'upgrade-phase' && e.phase === 'committed') void sup.stop();
  });
  const outcome = await upgrader.run();
  assert.equal(outcome.ok, true);
  assert.deepEqual(outcome.connections, { handedOver: 0, returned: 0, lost: 0, drained: 0, cut: 0 });
  for (const p of old) assert.deepEqual(p.signals, ['SIGTERM']);
  assert.equal(sup.state, 'stopped');
  assert.equal(events.at(-1)?.type, 'upgrade-done');
});

/**
 * A library worker holding one WebSocket it never closes and one connection open (its
 * `stats`): on stop it says it holds only upgraded connections (`lingering`), so its reload
 * is done at once and it drains on in the background until the master SIGKILLs it.
 */
const lingering: Behaviour = (p) => {
  libraryWorker(p);
  p.removeAllListeners('sent');
  queueMicrotask(() => p.say({ hitless: 1, type: 'stats', requests: { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }, latency: new Array(17).fill(0), latencySum: 0, connections: 1 }));
  p.on('sent', (m: Record<string, unknown>) => m.type === 'stop' && p.say({ hitless: 1, type: 'lingering', upgraded: 1 }));
};

test('regression (h15 F5): an upgrade names the generation draining in the background that it waits for, counts what that one cut and forced, and passes a SIGHUP on to the new master at once instead of holding it until then', async () => {
  const { sup, host, peers, upgrader, events } = setup();
  host.behave = (gen) => (gen === 1 ? lingering : libraryWorker);
  await sup.start();
  assert.equal((await sup.reload('deploy')).stillDraining?.workers, 2, 'generation 1 drains on in the background');
  await host.advance(1000);
  let sighup: Promise<{ error?: { code: string; message: string } }> | undefined;
  sup.on('event', (e: MasterEvent) => {
    if (e.type === 'upgrade-phase' && e.phase === 'handover') sighup = sup.reload('SIGHUP', { holdDuringUpgrade: true });
  });
  const done: { outcome?: UpgradeOutcome } = {};
  void upgrader.run().then((o) => (done.outcome = o));
  await host.advance(0);
  const handover = events.find((e) => e.type === 'upgrade-phase' && e.phase === 'handover') as Extract<MasterEvent, { type: 'upgrade-phase' }>;
  assert.deepEqual(handover.draining?.map((d) => [d.generation, d.background, d.deadline, d.workers.length, d.upgraded]), [[1, true, 5000, 2, 2]]);
  // Generation 2 handed over and is gone; the old master still waits for generation 1.
  assert.deepEqual(events.filter((e) => e.type === 'reload-drained').map((e) => (e as { generation: number }).generation), [2]);
  assert.equal(done.outcome, undefined);
  // The SIGHUP did not wait for that: the new master has it already.
  const passed = await sighup;
  assert.equal(passed?.error?.code, 'ERR_UPGRADE_BUSY');
  assert.match(passed?.error?.message ?? '', /passed on to the new master \(pid 5000\) as a SIGHUP/);
  assert.deepEqual(peers[0]!.signals, ['SIGHUP']);
  await host.advance(3999);
  assert.equal(done.outcome, undefined, 'generation 1 is SIGKILLed at its own deadline, not before');
  await host.advance(1);
  const outcome = done.outcome as UpgradeOutcome | undefined;
  assert.ok(outcome);
  assert.equal(outcome.ok, true, JSON.stringify(outcome.error));
  assert.deepEqual(outcome.background, { generations: [1], forced: 2, drained: 0, cut: 2 });
  assert.equal(outcome.forced, 2);
  assert.deepEqual(outcome.connections, { handedOver: 0, returned: 0, lost: 0, drained: 0, cut: 2 });
  assert.equal(peers[0]!.sent.find((s) => s.message.type === 'upgrade-done')?.message.type, 'upgrade-done');
  assert.equal((peers[0]!.sent.find((s) => s.message.type === 'upgrade-done')?.message as { reloads?: string[] }).reloads, undefined, 'nothing left to hand on at the end');
  assert.equal(sup.state, 'stopped');
  assert.equal(host.alive().length, 0);
});

test('regression (h23 F3): the app\'s other installed hitless that the launch did not run reaches the outcome (notRun)', async () => {
  const notRun = { version: '2.0.0', exec: '/app/node_modules/hitless/build/src/cli/main.js' };
  const { sup, upgrader } = setup({ notRun });
  await sup.start();
  const outcome = await upgrader.run({ reason: 'test' });
  assert.equal(outcome.ok, true, JSON.stringify(outcome.error));
  assert.deepEqual(outcome.notRun, notRun);
});

test('upgrade: a new master\'s worker that exits within stayReady of going ready fails the upgrade before the point of no return; the old master serves on (regression h28 NEW-4: it passed and the service crash-looped)', async () => {
  const exitsAfterReady: PeerBehaviour = (p) => {
    goodSuccessor(p);
    p.on('sent', (m: OldMasterMessage) => {
      // After this turn's promise jobs: the old master listens by then, within its wait.
      if (m.type === 'upgrade-state') setImmediate(() => p.say({ hitless: 1, type: 'upgrade-worker-exit', id: NEW_WORKERS[0]!.id, pid: NEW_WORKERS[0]!.pid, crashed: true }));
    });
  };
  const { sup, host, peers, upgrader, phases } = setup({ behave: exitsAfterReady, stayReady: 1000 });
  await sup.start();
  const outcome = await upgrader.run({ reason: 'test' });
  assert.equal(outcome.ok, false);
  assert.equal(outcome.error?.code, 'ERR_UPGRADE_FAILED');
  assert.match(outcome.error?.message ?? '', new RegExp(`^the new master \\(pid ${peers[0]!.pid}\\): its worker ${NEW_WORKERS[0]!.id.replace('.', '\\.')} \\(pid ${NEW_WORKERS[0]!.pid}\\) exited within 1 s of its generation going ready \\(stayReady\\)$`));
  assert.ok(!phases().includes('committed'));
  assert.deepEqual(peers[0]!.signals.slice(0, 1), ['SIGTERM']);
  oldUntouched(host.alive(1));
});

test('upgrade: with stayReady the commit waits that long after the new master is ready, then goes on', async () => {
  const { sup, host, upgrader, phases } = setup({ stayReady: 1000 });
  await sup.start();
  const running = upgrader.run({ reason: 'test' });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(phases(), ['spawning', 'starting'], 'still waiting for the new workers to stay ready');
  await host.advance(1000);
  const outcome = await running;
  assert.equal(outcome.ok, true, JSON.stringify(outcome.error));
  assert.deepEqual(phases(), ['spawning', 'starting', 'ready', 'committed', 'handover']);
});
