/**
 * Each reload request sees its own reload's events only (ReloadOptions.follow,
 * src/core/follow.ts): not the queued reload that starts the moment it ends, not the reload
 * it was queued behind, not an earlier reload's background drain (h10 F1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Supervisor } from '../../src/core/supervisor.js';
import { ReloadFollowers } from '../../src/core/follow.js';
import type { MasterEvent } from '../../src/core/types.js';
import { diesLiveWhileOldDrains, FakeHost, fakeSpec, settle, wellBehaved, type Behaviour } from './fake-host.js';

/** Never announces readiness until the test says; drains on SIGTERM. */
const neverReady: Behaviour = (p) => p.on('signal', () => queueMicrotask(() => p.exit(0)));

/** The generations an event names (its own, a retired one's, a queued reload's "behind"). */
function generations(e: MasterEvent): number[] {
  if (e.type === 'reload-done') return [e.outcome.attempted];
  return 'generation' in e && typeof e.generation === 'number' ? [e.generation] : [];
}

test('regression (h10 F1): back-to-back reloads: each request follows its own reload only, a queued one says once what it waits behind', async () => {
  const host = new FakeHost();
  const sup = new Supervisor({ stayReady: 0, host, spec: () => fakeSpec(), version: 'test', listeners: () => [] });
  await sup.start();
  host.behave = (gen) => (gen === 2 ? neverReady : wellBehaved);
  const seen = { first: [] as MasterEvent[], second: [] as MasterEvent[], third: [] as MasterEvent[] };
  const first = sup.reload('a', { follow: (e) => seen.first.push(e) });
  await settle();
  const second = sup.reload('b', { follow: (e) => seen.second.push(e) });
  const third = sup.reload('c', { follow: (e) => seen.third.push(e) });
  for (const p of host.alive(2)) p.ready();
  const outcomes = await Promise.all([first, second, third]);
  assert.deepEqual(outcomes.map((o) => o.generation), [2, 3, 3]);

  // The first: generation 2 and the generation 1 it retires; nothing of 3, no queue lines.
  assert.deepEqual(seen.first.filter((e) => e.type === 'reload-start').map((e) => generations(e)), [[2]]);
  assert.deepEqual([...new Set(seen.first.flatMap(generations))].sort(), [1, 2]);
  assert.equal(seen.first.some((e) => e.type === 'reload-queued'), false);
  assert.equal(seen.first.at(-1)?.type, 'reload-done');

  // The queued and the merged one: their queue line once, then generation 3 and the generation 2 it retires.
  for (const [events, merged] of [[seen.second, false], [seen.third, true]] as const) {
    assert.deepEqual(events[0], { type: 'reload-queued', reason: merged ? 'c' : 'b', merged, behind: 'reload', generation: 2 });
    assert.equal(events.filter((e) => e.type === 'reload-queued').length, 1);
    const rest = events.slice(1);
    assert.deepEqual(rest[0], { type: 'reload-start', generation: 3, reason: 'b', workers: 2 });
    assert.deepEqual([...new Set(rest.flatMap(generations))].sort(), [2, 3]);
    // Generation 2 appears only as the one retired, never with the first reload's phases.
    assert.deepEqual(rest.filter((e) => generations(e).includes(2)).map((e) => e.type).filter((t) => !t.startsWith('worker-')), ['reload-draining', 'reload-drained']);
    assert.equal(rest.at(-1)?.type, 'reload-done');
  }
  assert.deepEqual(seen.second.map((e) => e.type).slice(1), seen.third.map((e) => e.type).slice(1), 'the merged request follows the same reload');
});

test('regression (h10 F1): an earlier reload\'s generation ending its background drain is not shown to a later reload\'s request', () => {
  const follow = new ReloadFollowers();
  const seen: MasterEvent[] = [];
  follow.add((e) => seen.push(e));
  const offer = (e: MasterEvent): void => follow.offer(e);
  offer({ type: 'reload-start', generation: 5, reason: 'hitless reload', workers: 2 });
  offer({ type: 'worker-spawn', generation: 5, slot: 0, pid: 50 });
  // Generation 3 (retired two reloads ago) ends its background drain now.
  offer({ type: 'worker-exit', generation: 3, slot: 0, pid: 30, code: 0, signal: null, planned: true });
  offer({ type: 'reload-drained', generation: 3, to: 4, forced: 0, ms: 5000, handedOver: 20, drained: 20 });
  offer({ type: 'reload-queued', reason: 'SIGHUP', merged: false, behind: 'reload', generation: 5 });
  follow.retires(4);
  offer({ type: 'reload-draining', generation: 4, workers: 2, to: 5 });
  offer({ type: 'worker-status', generation: 4, slot: 0, text: 'draining 2 connections' });
  offer({ type: 'reload-drained', generation: 4, to: 5, forced: 0, ms: 20 });
  assert.deepEqual(seen.map((e) => `${e.type} ${generations(e).join()}`), [
    'reload-start 5', 'worker-spawn 5', 'reload-draining 4', 'worker-status 4', 'reload-drained 4',
  ]);
});

test('a reload that rolls back: its request follows the rollback\'s generation too, to its one reload-done', async () => {
  const host = new FakeHost();
  const sup = new Supervisor({ stayReady: 0, host, spec: () => fakeSpec(), version: 'test', listeners: () => [] });
  await sup.start();
  for (const p of host.alive(1)) p.removeAllListeners('signal'); // the old workers drain slowly
  const seen: MasterEvent[] = [];
  const outcome = await diesLiveWhileOldDrains(host, sup.reload('bad', { follow: (e) => seen.push(e) }), 0);
  assert.deepEqual(outcome.rollback, { generation: 3, version: 1, ok: true });
  assert.deepEqual(seen.filter((e) => e.type === 'reload-start').map((e) => generations(e)), [[2], [3]]);
  assert.ok(seen.some((e) => e.type === 'reload-rollback'));
  assert.ok(seen.some((e) => e.type === 'worker-ready' && e.generation === 3));
  assert.equal(seen.filter((e) => e.type === 'reload-done').length, 1);
  assert.equal(seen.at(-1)?.type, 'reload-done');
});
