/**
 * The reload queue on its own (src/core/queue.ts): one waiting reload at most, every further
 * request merged into it (the last spec and strategy win), counts of what became of each
 * request, and nothing left once it was taken. The supervisor's use of it (when a reload may
 * begin) is tested in test/core/supervisor.test.ts and test/master/sighup.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReloadQueue } from '../../src/core/queue.js';
import type { ReloadOutcome } from '../../src/core/types.js';

const outcome: ReloadOutcome = { ok: true, generation: 3, attempted: 3, reason: 'SIGHUP', startedAt: 0, durationMs: 1, forced: 0 };

test('queue: the first request waits, the rest merge into it; one outcome reaches all, the merged ones marked coalesced', async () => {
  let now = 100;
  const q = new ReloadQueue(() => now);
  assert.equal(q.pending, false);
  const first = q.add('SIGHUP', undefined, undefined);
  now = 150;
  const spec = () => ({}) as never;
  const second = q.add('hitless reload', spec, 'canary');
  const third = q.add('SIGHUP', undefined, undefined);
  assert.deepEqual([first.merged, second.merged, third.merged], [false, true, true]);
  assert.deepEqual(q.snapshot(), { reasons: ['SIGHUP', 'hitless reload', 'SIGHUP'], since: 100 });
  assert.deepEqual(q.requests, { started: 0, queued: 1, merged: 2, refused: 0 });
  const taken = q.take();
  assert.equal(q.pending, false);
  assert.equal(q.snapshot(), undefined);
  assert.equal(taken?.spec, spec, 'the last spec given wins');
  assert.equal(taken?.strategy, 'canary');
  taken?.resolve(outcome);
  assert.deepEqual(await first.promise, outcome);
  assert.deepEqual(await second.promise, { ...outcome, coalesced: true });
  assert.deepEqual(await third.promise, { ...outcome, coalesced: true });
  assert.equal(q.take(), undefined);
});

test('queue: counts go on from a master it took over from (upgrade), one from before the refused count included', () => {
  const q = new ReloadQueue(() => 0, { started: 7, queued: 2, merged: 5 });
  q.started();
  q.add('watch', undefined, undefined);
  q.refused();
  assert.deepEqual(q.requests, { started: 8, queued: 3, merged: 5, refused: 1 });
  const next = new ReloadQueue(() => 0, { ...q.requests });
  next.refused();
  assert.deepEqual(next.requests, { started: 8, queued: 3, merged: 5, refused: 2 });
});
