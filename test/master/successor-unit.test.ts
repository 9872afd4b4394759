/**
 * A master upgrade, the new master's side (src/master/successor.ts), on the fake host:
 * joining (the state, the environment cleaned), what it reports, the commit and the
 * takeover, connections passed on to the worker named (or answered "not placed"), and the
 * old master going away before or after the point of no return.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Worker } from '../../src/core/worker.js';
import type { MasterEvent } from '../../src/core/types.js';
import { joinUpgrade, Successor, type OldMasterChannel } from '../../src/master/successor.js';
import type { NewMasterMessage, OldMasterMessage } from '../../src/master/peer-protocol.js';
import { FakeHandle, FakeHost, fakeSpec, settle, wellBehaved, type Behaviour } from '../core/fake-host.js';

class FakeChannel extends EventEmitter implements OldMasterChannel {
  connected = true;
  readonly sent: NewMasterMessage[] = [];
  async send(message: NewMasterMessage): Promise<boolean> {
    if (!this.connected) return false;
    this.sent.push(message);
    return true;
  }
  from(message: OldMasterMessage, handle?: unknown): void {
    this.emit('message', message, handle);
  }
  gone(): void {
    this.connected = false;
    this.emit('disconnect');
  }
}

const libraryWorker: Behaviour = (p) => {
  wellBehaved(p);
  queueMicrotask(() => p.say({ hitless: 1, type: 'hello', handover: true, listeners: ['http'] }));
};

async function setup(adopt: () => Promise<void> = async () => {}) {
  const host = new FakeHost();
  host.behave = () => libraryWorker;
  const workers = [0, 1].map((slot) => new Worker(host, fakeSpec(), 2, slot, 0));
  await Promise.all(workers.map((w) => w.waitReady(1000)));
  await settle();
  const channel = new FakeChannel();
  const events = new EventEmitter();
  const added: unknown[] = [];
  const counts: unknown[] = [];
  const held: string[][] = [];
  let adoptions = 0;
  const successor = new Successor(channel, {
    workers: () => workers.filter((w) => w.exitInfo === undefined),
    on: (event, fn) => events.on(event, fn),
    addReleaseTotals: (r) => added.push(...r),
    addReloadRequests: (c) => counts.push(c),
    runHeldReloads: (reasons) => held.push(reasons),
    adopt: () => {
      adoptions++;
      return adopt();
    },
  });
  return { host, workers, channel, events, successor, added, counts, held, adoptions: () => adoptions };
}

const state: OldMasterMessage = {
  hitless: 1, type: 'upgrade-state', protocol: 1, from: { pid: 100, version: '1.0.0' }, sockets: [],
  supervisor: { nextGeneration: 2, reloadRequests: { started: 0, queued: 0, merged: 0 }, lastReload: undefined },
};

test('join: a plain `hitless start` is no upgrade; a new master reads the state and loses HITLESS_UPGRADE and LISTEN_*', async () => {
  assert.equal(await joinUpgrade({}, new FakeChannel()), undefined);
  const channel = new FakeChannel();
  const env: NodeJS.ProcessEnv = { HITLESS_UPGRADE: '1', LISTEN_FDS: '1', LISTEN_FDNAMES: 'http', KEEP: 'x' };
  const joined = joinUpgrade(env, channel);
  channel.from({ hitless: 1, type: 'upgrade-commit' }); // not the state: ignored
  channel.from(state);
  const j = await joined;
  assert.equal(j?.state.supervisor.nextGeneration, 2);
  assert.deepEqual(env, { KEEP: 'x' });
  assert.equal(channel.listenerCount('message'), 0, 'the joining listener is gone (it would close handles meant for the successor)');
});

test('join: HITLESS_UPGRADE without a channel, or an old master gone, or another protocol version: ERR_UPGRADE_FAILED', async () => {
  await assert.rejects(joinUpgrade({ HITLESS_UPGRADE: '1' }, undefined), /no channel to an old master/);
  const gone = new FakeChannel();
  const joining = joinUpgrade({ HITLESS_UPGRADE: '1' }, gone);
  gone.gone();
  await assert.rejects(joining, /went away before it handed anything over/);
  const other = new FakeChannel();
  const j = joinUpgrade({ HITLESS_UPGRADE: '1' }, other);
  other.from({ ...state, protocol: 2 } as OldMasterMessage);
  await assert.rejects(j, (e: Error & { code?: string }) => e.code === 'ERR_UPGRADE_FAILED' && /protocol 2/.test(e.message));
  assert.equal(other.sent[0]?.type, 'upgrade-failed');
});

test('ready reports the workers that take connections; commit runs the claim, then says committed; takeover adds the totals', async () => {
  const { workers, channel, successor, added } = await setup();
  await successor.ready(2, '9.9.9');
  assert.deepEqual(channel.sent[0], {
    hitless: 1, type: 'upgrade-ready', pid: process.pid, version: '9.9.9', node: process.version, generation: 2,
    workers: workers.map((w) => ({ id: `2.${w.slot}`, pid: w.pid, listeners: ['http'] })),
  });
  let claimed = 0;
  const committing = successor.commit(() => void claimed++);
  await settle();
  assert.equal(claimed, 0, 'nothing is claimed before the old master says commit');
  channel.from({ hitless: 1, type: 'upgrade-commit' });
  await committing;
  assert.equal(claimed, 1);
  assert.equal(channel.sent.at(-1)?.type, 'upgrade-committed');
  const release = { release: 'v1', requests: { '2xx': 5, '3xx': 0, '4xx': 0, '5xx': 1 }, latency: [6], latencySumMs: 3 };
  channel.from({ hitless: 1, type: 'upgrade-takeover', releases: [release] });
  const takeover = await successor.takeover();
  assert.deepEqual(takeover.releases, [release]);
  assert.deepEqual(added, [release]);
  channel.from({ hitless: 1, type: 'upgrade-done', releases: [] });
  await successor.finished;
});

test('the reloads the old master held during the upgrade run here at the takeover, and at upgrade-done for those held since; its counts are added (regression: a SIGHUP during an upgrade was dropped)', async () => {
  const { channel, successor, counts, held } = await setup();
  await successor.ready(2, '9.9.9');
  const committing = successor.commit(() => {});
  channel.from({ hitless: 1, type: 'upgrade-commit' });
  await committing;
  channel.from({ hitless: 1, type: 'upgrade-takeover', releases: [], reloads: ['SIGHUP', 'SIGHUP'], reloadRequests: { merged: 1, refused: 2 } });
  await successor.takeover();
  assert.deepEqual(held, [['SIGHUP', 'SIGHUP']]);
  assert.deepEqual(counts, [{ merged: 1, refused: 2 }]);
  channel.from({ hitless: 1, type: 'upgrade-done', releases: [] });
  await successor.finished;
  assert.equal(held.length, 1, 'nothing held since the takeover: no second reload');
  const late = await setup();
  late.channel.from({ hitless: 1, type: 'upgrade-done', releases: [], reloads: ['SIGHUP'], reloadRequests: { refused: 1 } });
  await late.successor.finished;
  assert.deepEqual(late.held, [['SIGHUP']]);
  assert.deepEqual(late.counts, [{ refused: 1 }]);
});

test('a connection goes to the worker named (same pid) and lands; to an unknown or replaced worker it does not; this copy is closed either way', async () => {
  const { host, workers, channel, successor } = await setup();
  await successor.ready(2, '9');
  const ok = new FakeHandle();
  channel.from({ hitless: 1, type: 'upgrade-conn', id: 1, worker: '2.1', pid: workers[1]!.pid!, listener: 'http' }, ok);
  const wrongPid = new FakeHandle();
  channel.from({ hitless: 1, type: 'upgrade-conn', id: 2, worker: '2.0', pid: 1, listener: 'http' }, wrongPid);
  const unknown = new FakeHandle();
  channel.from({ hitless: 1, type: 'upgrade-conn', id: 3, worker: '7.0', pid: 1 }, unknown);
  await settle();
  const landed = channel.sent.filter((m) => m.type === 'upgrade-landed');
  assert.deepEqual(landed.map((m) => [m.type === 'upgrade-landed' && m.id, m.type === 'upgrade-landed' && m.ok]).sort(), [[1, true], [2, false], [3, false]]);
  const target = host.procs.find((p) => p.slot === 1)!;
  assert.deepEqual(target.sent.find((s) => s.message.type === 'conn'), { message: { hitless: 1, type: 'conn', listener: 'http' }, handle: ok });
  for (const h of [ok, wrongPid, unknown]) assert.equal(h.closed, 1);
});

test('a reported worker that exits is passed on (crashed or not); others are not', async () => {
  const { workers, channel, events, successor } = await setup();
  await successor.ready(2, '9');
  const exit = (slot: number, pid: number | undefined, planned: boolean): boolean => events.emit('event', {
    type: 'worker-exit', generation: 2, slot, pid, code: 1, signal: null, planned,
  } satisfies MasterEvent);
  exit(0, workers[0]!.pid, false);
  exit(1, 12345, false); // not the worker reported in slot 1
  exit(1, workers[1]!.pid, true);
  const gone = channel.sent.filter((m) => m.type === 'upgrade-worker-exit');
  assert.deepEqual(gone, [
    { hitless: 1, type: 'upgrade-worker-exit', id: '2.0', pid: workers[0]!.pid, crashed: true },
    { hitless: 1, type: 'upgrade-worker-exit', id: '2.1', pid: workers[1]!.pid, crashed: false },
  ]);
});

test('regression (h21 F4): the old master gone before the commit (kill -9, OOM): this master adopts the service at once (it held every socket; it stopped, and nothing served), the commit waits for the adoption, the takeover comes as none; a failed adoption fails the commit', async () => {
  let adopted!: () => void;
  const first = await setup(() => new Promise<void>((resolve) => (adopted = resolve)));
  assert.equal(first.successor.orphaned, false);
  // Gone while the first generation still starts: adopted at once, not at ready.
  first.channel.gone();
  assert.equal(first.adoptions(), 1);
  assert.equal(first.successor.orphaned, true);
  await first.successor.finished;
  let claimed = 0;
  let started: unknown = 'not yet';
  const taking = first.successor.takeOver(2, '9.9.9', () => void claimed++, async (t) => void (started = t));
  await settle();
  assert.equal(started, 'not yet', 'it serves on only once the adoption is done');
  adopted();
  await taking;
  assert.equal(started, undefined, 'no takeover message: counters from zero');
  assert.equal(claimed, 0, 'the adoption claims, not the commit\'s claim');
  assert.deepEqual(first.channel.sent, [], 'nothing sent to a master that is gone');
  first.channel.gone(); // a second disconnect changes nothing
  assert.equal(first.adoptions(), 1);

  const still = await setup(() => Promise.reject(new Error('the old master (pid 100) still runs')));
  still.channel.gone();
  await assert.rejects(still.successor.commit(() => {}), /still runs/);

  // Gone after the commit: nothing to adopt (the claim was the commit's).
  const late = await setup();
  const committing = late.successor.commit(() => {});
  late.channel.from({ hitless: 1, type: 'upgrade-commit' });
  await committing;
  late.channel.gone();
  assert.equal(late.adoptions(), 0);
  await assert.rejects(late.successor.takeover(), /went away before it handed the service over/);
});

test('a claim that throws at the commit is reported to the old master', async () => {
  const second = await setup();
  const failing = second.successor.commit(() => {
    throw new Error('EACCES: rename control.sock');
  });
  second.channel.from({ hitless: 1, type: 'upgrade-commit' });
  await assert.rejects(failing, /EACCES/);
  const failed = second.channel.sent.at(-1);
  assert.equal(failed?.type, 'upgrade-failed');
  assert.match(failed?.type === 'upgrade-failed' ? failed.error.message : '', /could not take over: EACCES/);
});
