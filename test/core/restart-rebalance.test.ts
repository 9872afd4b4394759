/**
 * A crashed worker's replacement and kept-alive connections (report h11 F2), on the fake
 * host: the crashed worker's clients reconnect while the replacement boots, so they all
 * land on the workers that survived, and keep-alive pools open no new connections after
 * that. Once READY, the replacement gets its share of the serving workers' connections as
 * a scale-up's worker does, never beside a reload or scale moving connections; only once
 * it stayed up RESTART_SETTLE_MS and its slot is not crash-looping (report h12 N2).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, logEvent } from '../../src/core/logger.js';
import { RESTART_SETTLE_MS } from '../../src/core/supervisor.js';
import type { MasterEvent } from '../../src/core/types.js';
import { FakeHandle, until, type FakeProcess } from './fake-host.js';
import { assertNeverTwice, sentOf, world, type World } from './fake-keepalive.js';

/**
 * Two serving workers of 9 connections each; worker 1.0 crashes and its 9 clients
 * reconnect to 1.1 (18 there). New workers start with none of their own.
 */
async function crashOne(w: World): Promise<{ survivor: FakeProcess; crashed: FakeProcess }> {
  await w.sup.start();
  const [crashed, survivor] = w.host.alive(1);
  w.loads.set(1, { perSecond: 200, connections: 0 });
  crashed!.exit(1);
  w.held.set(survivor!, Array.from({ length: 18 }, () => new FakeHandle()));
  return { survivor: survivor!, crashed: crashed! };
}

const ofType = <T extends MasterEvent['type']>(w: World, type: T) =>
  w.events.filter((e): e is Extract<MasterEvent, { type: T }> => e.type === type);

/** Runs the fake clock until slot `slot` of generation 1 has a live worker (a crash's replacement), bounded. */
async function liveIn(w: World, slot: number): Promise<FakeProcess> {
  for (let t = 0; t < 10_000; t += 50) {
    const p = w.host.alive(1).find((q) => q.slot === slot);
    if (p) return p;
    await w.host.advance(50);
  }
  assert.fail(`slot ${slot} was not restarted within 10 s of fake time`);
}

/** Runs the fake clock until an event of `type` was emitted (bounded). */
async function untilEvent<T extends MasterEvent['type']>(w: World, type: T): Promise<Extract<MasterEvent, { type: T }>> {
  for (let t = 0; t < 60_000 && ofType(w, type).length === 0; t += 100) await w.host.advance(100);
  const [e] = ofType(w, type);
  assert.ok(e, `no ${type} event within 60 s of fake time`);
  return e;
}

test('crash restart: the replacement of 1.0, once READY, gets half of the surviving worker\'s 18 kept-alive connections (its share of 2), as a scale-up\'s worker would', async () => {
  const w = world({ workers: 2 });
  const at = new Map<MasterEvent, number>();
  w.sup.on('event', (e: MasterEvent) => at.set(e, w.host.now()));
  const { survivor } = await crashOne(w);
  const done = await untilEvent(w, 'restart-rebalanced');
  const [replacement] = w.host.alive(1).filter((p) => p !== survivor);
  assert.ok(replacement, 'slot 0 was restarted');
  assert.deepEqual(sentOf(survivor, 'move'), [{ hitless: 1, type: 'move', share: 1 / 2, window: 1, within: 5000 }]);
  assert.deepEqual(survivor.signals, [], 'the survivor keeps serving');
  assert.equal(w.held.get(replacement)?.length, 9);
  assert.equal(w.held.get(survivor)?.length, 9);
  assert.deepEqual(ofType(w, 'scale-rebalance'), [{ type: 'scale-rebalance', generation: 1, senders: 1, receivers: 1, share: 1 / 2, restarted: [0] }]);
  assert.deepEqual({ ...done, ms: 0 }, { type: 'restart-rebalanced', generation: 1, slots: [0], ms: 0, handedOver: 9, returned: 0, lost: 0, drained: 0, cut: 0 });
  // After the worker-ready of the replacement, not before.
  const ready = w.events.findIndex((e) => e.type === 'worker-ready' && e.pid === replacement.pid);
  assert.ok(ready !== -1 && ready < w.events.findIndex((e) => e.type === 'scale-rebalance'));
  // Once it stayed up RESTART_SETTLE_MS: a replacement about to crash again is handed nothing.
  assert.equal(at.get(ofType(w, 'scale-rebalance')[0]!)! - at.get(w.events[ready]!)!, RESTART_SETTLE_MS);
  assertNeverTwice(w);
  // The master's log says what happened.
  const lines: string[] = [];
  const logger = createLogger({ format: 'text', write: (l) => lines.push(l), now: () => 0 });
  for (const e of w.events) if (e.type === 'scale-rebalance' || e.type === 'restart-rebalanced') logEvent(logger, { ...e, ...(e.type === 'restart-rebalanced' ? { ms: 400 } : {}) });
  assert.deepEqual(lines.map((l) => l.replace(/^\S+ hitless /, '').replace(/ event=[^]*$/, '')), [
    'worker 1.0 restarted after a crash: the serving workers hand it 50% of their kept-alive connections (their clients had reconnected to the others)',
    'worker 1.0 took 9 kept-alive connections from the serving workers in 0.4 s',
  ]);
});

test('crash restart with workers that do not move connections (no `moves` in their hello, or handover off): nothing is asked, no rebalance event', async () => {
  for (const over of [{ moves: false }, { handover: false }]) {
    const w = world({ workers: 2, ...over });
    const { survivor } = await crashOne(w);
    await untilEvent(w, 'worker-ready');
    await w.host.advance(10_000);
    assert.equal(w.host.alive(1).length, 2, JSON.stringify(over));
    assert.deepEqual(sentOf(survivor, 'move'), [], JSON.stringify(over));
    assert.equal(ofType(w, 'scale-rebalance').length + ofType(w, 'restart-rebalanced').length, 0, JSON.stringify(over));
  }
});

test('crash restart rebalance in progress: a reload asked meanwhile queues behind it (`behind: rebalance`) and starts once it ended; a scale is refused (ERR_SCALE_BUSY)', async () => {
  // One connection at a time, 200 ms apart: the rebalance of 9 lasts about 2 s.
  const w = world({ workers: 2, oneByOne: 200 });
  await crashOne(w);
  await untilEvent(w, 'scale-rebalance');
  const reload = w.sup.reload('deploy');
  assert.deepEqual(ofType(w, 'reload-queued'), [{ type: 'reload-queued', reason: 'deploy', merged: false, behind: 'rebalance' }]);
  const scale = await w.sup.scale(3);
  assert.equal(scale.error?.code, 'ERR_SCALE_BUSY');
  const outcome = await until(w.host, reload);
  assert.equal(outcome.ok, true, JSON.stringify(outcome.error));
  const at = (type: MasterEvent['type']): number => w.events.findIndex((e) => e.type === type);
  assert.ok(at('restart-rebalanced') !== -1 && at('restart-rebalanced') < at('reload-start'), 'the reload started after the rebalance ended');
  assert.equal(ofType(w, 'restart-rebalanced')[0]?.handedOver, 9);
  assertNeverTwice(w);
});

test('crash loop (report h12 N2): a replacement that crashes within RESTART_SETTLE_MS of READY is handed no kept-alive connections, and the restarts of a slot that crashed twice within restart.window get none until the earlier crash left it', async () => {
  // restart: backoff 100 ms doubling, at most 3 crashes within 60 s (fakeSpec).
  const w = world({ workers: 2 });
  const { survivor } = await crashOne(w);
  const crashes = [w.host.now()];
  // Two replacements crash 1 s after READY, as a worker reading a bad value lazily does.
  for (let i = 0; i < 2; i++) {
    const next = await liveIn(w, 0);
    await w.host.advance(1000);
    next.exit(5);
    crashes.push(w.host.now());
  }
  const third = await liveIn(w, 0);
  assert.deepEqual(sentOf(survivor, 'move'), [], 'the replacements that crashed were handed no connections');
  // The third stays up, but slot 0 crashed 3 times: it waits until the 2nd crash is 60 s old.
  await w.host.advance(crashes[1]! + 60_000 - w.host.now() - 1);
  assert.deepEqual(sentOf(survivor, 'move'), [], 'nothing moved to a crash-looping slot within restart.window');
  assert.equal(ofType(w, 'scale-rebalance').length, 0);
  const done = await untilEvent(w, 'restart-rebalanced');
  assert.deepEqual(done.slots, [0]);
  assert.equal(w.held.get(third)?.length, 9);
  assert.equal(w.held.get(survivor)?.length, 9);
  assertNeverTwice(w);
});

test('crash replacement that exits while it settles: no rebalance is asked for it, and its own replacement settles anew', async () => {
  const w = world({ workers: 2 });
  const { survivor } = await crashOne(w);
  const first = await liveIn(w, 0);
  await w.host.advance(RESTART_SETTLE_MS - 100);
  first.exit(5);
  await w.host.advance(200);
  assert.deepEqual(sentOf(survivor, 'move'), []);
  // 2 crashes within the window: none within it; then the live replacement takes its share.
  await w.host.advance(50_000);
  assert.equal(ofType(w, 'scale-rebalance').length, 0);
  const done = await untilEvent(w, 'restart-rebalanced');
  assert.equal(done.handedOver, 9);
  assert.equal(w.held.get(await liveIn(w, 0))?.length, 9);
});

test('crash replacement READY while a scale runs: it waits, and takes its share once the scale is done', async () => {
  // One connection at a time, 200 ms apart: the scale's own rebalance lasts over a second.
  const w = world({ workers: 2, oneByOne: 200 });
  const { survivor } = await crashOne(w);
  await liveIn(w, 0);
  // The scale starts just before the replacement has stayed up RESTART_SETTLE_MS: it settles during the scale.
  await w.host.advance(RESTART_SETTLE_MS - 300);
  const scaled = await until(w.host, w.sup.scale(3));
  assert.equal(scaled.ok, true, JSON.stringify(scaled.error));
  const done = await untilEvent(w, 'restart-rebalanced');
  assert.deepEqual(done.slots, [0]);
  const rebalances = ofType(w, 'scale-rebalance');
  assert.deepEqual(rebalances.map((e) => e.restarted), [undefined, [0]], 'the scale\'s own, then the replacement\'s');
  assert.ok(w.events.findIndex((e) => e.type === 'scale-done') < w.events.findIndex((e) => e.type === 'restart-rebalanced'));
  // 18 on the survivor; the scale moved a third (6) to 1.2; then each of the two moved a third to the replacement.
  const [replacement] = w.host.alive(1).filter((p) => p.slot === 0);
  assert.deepEqual([survivor, w.host.alive(1).find((p) => p.slot === 2), replacement].map((p) => w.held.get(p!)?.length), [8, 4, 6]);
  // Moved twice (to 1.2, then on to 1.0) is fine; held by two live workers at once is not.
  const held = w.host.alive(1).flatMap((p) => w.held.get(p) ?? []);
  assert.equal(new Set(held).size, 18);
  assert.equal(held.length, 18);
});
