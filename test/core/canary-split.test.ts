/**
 * The canary on kept-alive connections (issue 18), on the fake host: the serving workers
 * hand the canary its share of their connections while they keep serving (the split), a
 * rejected canary hands everything it holds back to the generation that keeps serving, a
 * promoted one takes the rest as in any reload, and a receiver that dies during either
 * move costs only what it held (counted lost), never a connection served twice. Each fake
 * worker keeps a list of the connection handles it holds, as the in-app library would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canaryAsk, starved, STARVED_LOOKS, STARVED_MIN_SERVING } from '../../src/core/strategies/canary.js';
import { shareOut, SPLIT_END_LIMIT_MS } from '../../src/core/split.js';
import { ReloadProgress } from '../../src/cli/format.js';
import { canaryLines } from '../../src/cli/traffic.js';
import type { MasterEvent, ReloadOutcome } from '../../src/core/types.js';
import { FakeHandle, until, type FakeProcess } from './fake-host.js';
import type { Load } from './fake-traffic.js';
import { assertNeverTwice, CANARY, sentOf, sum, world, type World } from './fake-keepalive.js';

test('split: each serving worker gets `move` for the canary\'s share (1 of 3: a third), keeps serving, and the canary holds what they moved', async () => {
  const w = world();
  await w.sup.start();
  const pending = w.sup.reload('canary');
  await w.host.advance(2500);
  const old = w.host.alive(1);
  assert.equal(old.length, 3);
  for (const p of old) {
    assert.deepEqual(sentOf(p, 'move'), [{ hitless: 1, type: 'move', share: 1 / 3, window: 1, within: 5000 }]);
    assert.deepEqual(p.signals, [], 'the serving workers are not stopping');
    assert.equal(w.held.get(p)?.length, 6);
  }
  // 9 moved + the 2 it accepted itself.
  assert.equal(sum(w, 2), 11);
  const progress = w.events.filter((e) => e.type === 'canary-progress');
  assert.deepEqual(progress.at(-1)?.type === 'canary-progress' && progress.at(-1)?.connections, { share: 1 / 3, moved: 9, returned: 0, lost: 0, held: 11 });
  const outcome = await until(w.host, pending);
  assert.equal(outcome.ok, true, JSON.stringify(outcome.error));
  assert.deepEqual(outcome.canary?.connections, { share: 1 / 3, moved: 9, returned: 0, lost: 0, held: 11 });
  // Promoted the `all` way: the old generation's other 18 connections moved as in any reload.
  assert.equal(outcome.connections?.handedOver, 18);
  assert.equal(outcome.connections?.lost, 0);
  assert.equal(sum(w, 2), 9 + 2 + 18 + 2 * 2);
  assertNeverTwice(w);
});

test('split rejected: a 10%-500 canary fails, the split ends, and every connection it holds (moved and new) goes back to the generation that keeps serving', async () => {
  const w = world();
  w.loads.set(2, { perSecond: 100, errorRate: 0.1, connections: 2 });
  await w.sup.start();
  const outcome = await until(w.host, w.sup.reload('bad build'));
  assert.equal(outcome.error?.code, 'ERR_CANARY_FAILED');
  assert.equal(outcome.generation, 1);
  assert.deepEqual(outcome.canary?.connections, { share: 1 / 3, moved: 9, returned: 0, lost: 0, held: 11 });
  assert.deepEqual(outcome.connections, { handedOver: 11, returned: 0, lost: 0, drained: 0, cut: 0 });
  assert.equal(w.host.alive(2).length, 0);
  const old = w.host.alive(1);
  assert.equal(old.length, 3, 'the serving generation was never touched');
  for (const p of old) assert.deepEqual([p.signals, sentOf(p, 'stop')], [[], []]);
  assert.equal(sum(w, 1), 27 + 2, 'the old generation holds its 27 and the 2 the canary accepted');
  assertNeverTwice(w);
  // What `hitless reload` says: back to generation 1, not "over to generation 2".
  const progress = new ReloadProgress();
  const lines = w.events.map((e) => progress.update(e)).filter((l): l is string => l !== undefined);
  assert.ok(lines.includes('draining 1 worker of generation 2'), lines.join('\n'));
  assert.ok(lines.includes('handing connections back to generation 1'), lines.join('\n'));
  assert.ok(lines.some((l) => /^generation 2 drained in .*, 11 connections handed back to generation 1$/.test(l)), lines.join('\n'));
  assert.ok(!lines.some((l) => /over to generation 2/.test(l)), lines.join('\n'));
  const said = canaryLines(outcome.canary!, outcome);
  assert.match(said[1] ?? '', /holds 11 connections, 9 moved from the serving generation$/);
  assert.equal(said[3], '  back     11 connections handed back to generation 1, 0 lost');
});

test('split rejected: the canary\'s connections come back at full speed, not paced over handoverSpread (every request on them until then meets the bad version)', async () => {
  const w = world({ oneByOne: 10 });
  w.loads.set(2, { perSecond: 100, errorRate: 0.1, connections: 2 });
  const times = { stop: [] as number[], landed: [] as number[] };
  w.twist = (p) => p.on('sent', (m: Record<string, unknown>) => {
    if (p.generation === 2 && (m.type === 'stop' || m.type === 'landed')) times[m.type].push(w.host.now());
  });
  await w.sup.start();
  const outcome = await until(w.host, w.sup.reload('bad build'));
  assert.equal(outcome.error?.code, 'ERR_CANARY_FAILED');
  assert.deepEqual(outcome.connections, { handedOver: 11, returned: 0, lost: 0, drained: 0, cut: 0 });
  assert.equal(times.landed.length, 11);
  // One at a time, 10 ms apart: ~110 ms at full speed; paced (48 times each 10 ms cycle) it took ~5 s.
  const took = (times.landed.at(-1) ?? 0) - (times.stop[0] ?? 0);
  assert.ok(took <= 11 * 10 + 100, `the hand-back took ${took} ms of fake time`);
  assertNeverTwice(w);
});

test('split inconclusive: a canary that served too little also hands its connections back', async () => {
  const w = world({ canary: { minRequests: 10_000 } });
  await w.sup.start();
  const outcome = await until(w.host, w.sup.reload('quiet'));
  assert.equal(outcome.error?.code, 'ERR_CANARY_INCONCLUSIVE');
  assert.equal(outcome.connections?.handedOver, 11);
  assert.equal(outcome.connections?.lost, 0);
  assert.equal(sum(w, 1), 29);
  // Connections did move: too little traffic, not a pool that never reaches it.
  assert.doesNotMatch(outcome.error?.message ?? '', /no kept-alive connection could move/);
});

test('split inconclusive where nothing could move says why and what helps (regression: "send more traffic, lengthen duration" cannot reach a pool that never re-opens)', async () => {
  const cases = [
    { over: { moves: false }, why: /no kept-alive connection could move to it: the serving workers cannot hand connections over \(none said `moves` in a hello: they do not run the in-app library\)/, fix: /or the in-app library \(or the preload\) in Node workers/ },
    // The in-app library with HTTPS / HTTP/2 servers: not "they do not run the in-app library" (regression h25 F4).
    { over: { secure: [1, 2] }, why: /could move to it: the serving workers' servers are HTTPS or HTTP\/2 \(their hello lists the sockets they accept on, but none whose connections can be handed over\): TLS and HTTP\/2 connections keep their state in the process and never move \(docs\/canary\.md, "Not moved"\)/, fix: /or plain HTTP\/1\.1 between the workers and a proxy that ends TLS in front of them \(those connections move\)$/ },
    { over: { secure: [2] }, why: /could move to it: the canary workers' servers are HTTPS or HTTP\/2 \(their hello/, fix: /a proxy that ends TLS in front of them/ },
    { over: { handover: false }, why: /could move to it: `handover` is off/, fix: /or turn `handover` on$/ },
    { over: { canary: { connections: 0 as const } }, why: /could move to it: `canary.connections` is 0/, fix: /or set `canary.connections`/ },
  ];
  for (const { over, why, fix } of cases) {
    const w = world({ ...over, canary: { minRequests: 10_000, ...over.canary } });
    await w.sup.start();
    const outcome = await until(w.host, w.sup.reload('pool'));
    const message = outcome.error?.message ?? '';
    assert.equal(outcome.error?.code, 'ERR_CANARY_INCONCLUSIVE', message);
    assert.match(message, /^canary of generation 2 was inconclusive: only \d+ canary responses in 5 s, fewer than minRequests 10000: not enough to judge \(.*\); /);
    assert.match(message, why);
    assert.match(message, /never reach it, however long it runs\. What helps: clients that open new connections \(the canary gets its share of those\), `canary.minRequests: 0` \(a canary that did not fail then goes live unjudged\)/);
    assert.match(message, fix);
    if ('secure' in over) assert.doesNotMatch(message, /in-app library/, 'they run it: advising it misleads');
    assert.equal(outcome.canary?.reason, message.replace(/^canary of generation 2 was inconclusive: /, ''));
  }
});

test('split: a canary worker that dies while receiving: what it took is lost (not served twice), the rest go back to their senders, the master serves on', async () => {
  const w = world();
  await w.sup.start();
  w.twist = (p) => {
    if (p.generation !== 2) return;
    p.on('sent', (m: Record<string, unknown>) => {
      if (m.type === 'conn' && (w.held.get(p)?.length ?? 0) === 2 + 2) p.exit(null, 'SIGKILL');
    });
  };
  const outcome = await until(w.host, w.sup.reload('crashy'));
  assert.equal(outcome.error?.code, 'ERR_CANARY_FAILED');
  assert.match(outcome.error?.message ?? '', /worker 2\.0 .*was killed by SIGKILL after it was ready/);
  assert.deepEqual(outcome.canary?.connections && { ...outcome.canary.connections, held: undefined },
    { share: 1 / 3, moved: 0, returned: 7, lost: 2, held: undefined });
  assert.equal(w.sup.status().state, 'running');
  assert.equal(w.host.alive(1).length, 3);
  assert.equal(sum(w, 1), 27 - 2, 'every connection but the two that died with the canary is back where it was');
  assertNeverTwice(w);
  const returned = w.deliveries.filter((d) => d.returned);
  assert.equal(returned.length, 7);
  assert.ok(returned.every((d) => d.to.generation === 1));
});

test('split rejected, and a serving worker dies while connections come back: those it took are lost, the rest land on the others, the slot restarts', async () => {
  const w = world();
  w.loads.set(2, { perSecond: 100, errorRate: 0.1, connections: 2 });
  await w.sup.start();
  const victim = w.host.alive(1)[0]!;
  let back = 0;
  victim.on('sent', (m: Record<string, unknown>) => {
    // The second connection coming back to it kills it.
    if (m.type === 'conn' && ++back === 2) victim.exit(null, 'SIGKILL');
  });
  const outcome = await until(w.host, w.sup.reload('bad build'));
  assert.equal(outcome.error?.code, 'ERR_CANARY_FAILED');
  const c = outcome.connections!;
  assert.equal(c.lost, 2, JSON.stringify(c));
  assert.equal(c.handedOver + c.returned + c.lost, 11);
  assert.equal(w.sup.status().state, 'running');
  assert.ok(w.events.some((e) => e.type === 'worker-restart' && e.generation === 1 && e.slot === 0));
  assertNeverTwice(w);
  assert.match(canaryLines(outcome.canary!, outcome)[3] ?? '', /^ {2}back {5}9 connections handed back to generation 1, 2 lost$/);
});

test('split by count: canary.connections 10 is shared out by the connections each serving worker reported; a worker with none is not asked', async () => {
  const w = world({ canary: { connections: 10 } });
  await w.sup.start();
  const [a, b, c] = w.host.alive(1);
  // What the three report (stats `connections`) decides their parts.
  const counts = new Map([[a, 20], [b, 10], [c, 0]]);
  for (const [p, n] of counts) w.held.set(p!, Array.from({ length: n }, () => new FakeHandle()));
  await w.host.advance(1000);
  const pending = w.sup.reload('count');
  await w.host.advance(1500);
  assert.deepEqual([a, b, c].map((p) => sentOf(p!, 'move').map((m) => m.count)), [[7], [3], []]);
  assert.equal(sum(w, 2), 12);
  const outcome = await until(w.host, pending);
  assert.deepEqual(outcome.canary?.connections && { count: outcome.canary.connections.count, moved: outcome.canary.connections.moved }, { count: 10, moved: 10 });
});

test('split off: canary.connections 0, handover false, or serving workers that cannot move (an older library) get no `move`; the canary is judged on new connections as before', async () => {
  for (const over of [{ canary: { connections: 0 } }, { moves: false }, { handover: false }]) {
    const w = world(over);
    await w.sup.start();
    const outcome = await until(w.host, w.sup.reload('off'));
    for (const p of w.host.procs.filter((x) => x.generation === 1)) assert.deepEqual(sentOf(p, 'move'), [], JSON.stringify(over));
    assert.equal(outcome.ok, true, JSON.stringify(outcome.error));
    assert.equal(outcome.canary?.connections?.moved ?? 0, 0);
  }
});

test('split: a serving worker still moving when the canary is judged gets `move-end`; the decision waits for its `move-done` (bounded), then the canary goes back out', async () => {
  const w = world();
  w.loads.set(2, { perSecond: 100, errorRate: 0.1, connections: 2 });
  await w.sup.start();
  const slow = w.host.alive(1)[0]!;
  // It answers nothing to `move` (its picked connections stay busy) until `move-end`.
  slow.removeAllListeners('sent');
  slow.on('sent', (m: Record<string, unknown>) => {
    if (m.type === 'move-end') slow.say({ hitless: 1, type: 'move-done', moved: 0, kept: 3 });
  });
  const outcome = await until(w.host, w.sup.reload('bad build'));
  assert.equal(outcome.error?.code, 'ERR_CANARY_FAILED');
  assert.deepEqual(sentOf(slow, 'move-end'), [{ hitless: 1, type: 'move-end' }]);
  for (const p of w.host.alive(1).slice(1)) assert.deepEqual(sentOf(p, 'move-end'), [], 'the others had finished');
  assert.equal(outcome.canary?.connections?.moved, 6);
  assert.equal(outcome.connections?.handedOver, 8);
  // One that never answers at all: the decision goes on after SPLIT_END_LIMIT_MS.
  const w2 = world();
  w2.loads.set(2, { perSecond: 100, errorRate: 0.1, connections: 2 });
  await w2.sup.start();
  const mute = w2.host.alive(1)[0]!;
  mute.removeAllListeners('sent');
  const o2 = await until(w2.host, w2.sup.reload('bad build'));
  assert.equal(o2.error?.code, 'ERR_CANARY_FAILED');
  assert.equal(o2.canary?.elapsedMs, 1000);
  assert.ok(o2.durationMs >= 1000 + SPLIT_END_LIMIT_MS, `${o2.durationMs}`);
});

/**
 * A world whose serving worker `slow` answers nothing to `move` until `move-end` (the split
 * ends after the canary passed); then canary worker 2.`dies` exits 1, and `slow` answers
 * 500 ms later: the death falls inside split.end(), which nothing races with it.
 */
function diesWhileSplitEnds(w: World, slow: FakeProcess, dies: number): void {
  slow.removeAllListeners('sent');
  slow.on('sent', (m: Record<string, unknown>) => {
    if (m.type === 'stop') queueMicrotask(() => slow.exit(0));
    if (m.type !== 'move-end') return;
    w.host.alive(2).find((p) => p.slot === dies)?.exit(1);
    w.host.setTimer(() => slow.say({ hitless: 1, type: 'move-done', moved: 0, kept: 9 }), 500);
  });
}

const DIED_BEFORE_SWITCH = /^worker 2\.0 \(pid \d+\) exited with code 1 after it was ready, before the new generation went live$/;

test('a canary that is the whole new generation (workers: 1) whose worker dies while the split ends: the reload fails, the old generation keeps serving untouched, nothing rolls back (regression: it was retired into the dead generation, and a third generation of its version booted)', async () => {
  const w = world({ workers: 1 });
  await w.sup.start();
  const serving = w.host.alive(1)[0]!;
  diesWhileSplitEnds(w, serving, 0);
  const o = await until(w.host, w.sup.reload('whole canary'));
  assert.equal(o.ok, false);
  assert.equal(o.canary?.verdict, 'pass');
  assert.equal(o.error?.code, 'ERR_WORKER_EXITED');
  assert.match(o.error?.message ?? '', DIED_BEFORE_SWITCH);
  assert.equal(o.rollback, undefined);
  assert.deepEqual(w.events.filter((e) => e.type === 'reload-rollback' || e.type === 'reload-ready'), []);
  assert.deepEqual(serving.signals, [], 'the serving worker is not retired');
  assert.deepEqual(sentOf(serving, 'stop'), []);
  assert.equal(w.sup.status().generation, 1);
  assert.deepEqual(w.sup.status().workers.map((x) => `${x.generation}.${x.slot}:${x.state}`), ['1.0:ready']);
  assert.deepEqual(w.host.procs.filter((p) => p.generation > 2), [], 'no generation of the old version booted');
});

test('a whole-generation canary of two whose worker 2.0 dies while the split ends: the reload fails, and the surviving canary worker hands what it holds back to the old generation, which serves on', async () => {
  const w = world({ workers: 2, canary: { workers: 2 } });
  await w.sup.start();
  const [slow, other] = w.host.alive(1) as [FakeProcess, FakeProcess];
  diesWhileSplitEnds(w, slow, 0);
  const pending = w.sup.reload('whole canary');
  const survivor = await (async () => {
    await w.host.advance(100);
    return w.host.alive(2).find((p) => p.slot === 1)!;
  })();
  const o = await until(w.host, pending);
  assert.equal(o.error?.code, 'ERR_WORKER_EXITED');
  assert.match(o.error?.message ?? '', DIED_BEFORE_SWITCH);
  assert.equal(o.rollback, undefined);
  assert.deepEqual(sentOf(survivor, 'stop').length, 1, 'retired with hand-over, not discarded');
  assert.equal(w.held.get(survivor)?.length, 0);
  assert.deepEqual([slow.signals, other.signals], [[], []]);
  assert.equal(w.sup.status().generation, 1);
  assert.deepEqual(w.host.alive(2), []);
  assert.ok((o.connections?.handedOver ?? 0) > 0, JSON.stringify(o.connections));
  assertNeverTwice(w);
});

test('canaryAsk and shareOut: "auto" is the canary\'s share of workers, at most half; a number up to 1 is a share, above 1 a count', () => {
  assert.deepEqual(canaryAsk({ ...CANARY, connections: 'auto' }, 3), { share: 1 / 3 });
  assert.deepEqual(canaryAsk({ ...CANARY, workers: 2, connections: 'auto' }, 2), { share: 0.5 });
  assert.deepEqual(canaryAsk({ ...CANARY, connections: 0.25 }, 3), { share: 0.25 });
  assert.deepEqual(canaryAsk({ ...CANARY, connections: 1 }, 3), { share: 1 });
  assert.deepEqual(canaryAsk({ ...CANARY, connections: 40 }, 3), { count: 40 });
  assert.equal(canaryAsk({ ...CANARY, connections: 0 }, 3), undefined);
  assert.deepEqual(shareOut(10, [20, 10, 0]), [{ count: 7 }, { count: 3 }, { count: 0 }]);
  assert.deepEqual(shareOut(10, [20, undefined, 5]), [{ count: 4 }, { count: 3 }, { count: 3 }]);
  assert.deepEqual(shareOut(5, [0, 0]), [{ count: 3 }, { count: 2 }]);
});

// A scale-up splits the same way: the workers that were serving hand the new ones their share.

test('scale up 1 → 3: the serving worker hands two thirds of its connections to the two new workers, round robin, and keeps serving the rest', async () => {
  const w = world({ workers: 1 });
  await w.sup.start();
  const [serving] = w.host.alive(1);
  w.loads.set(1, { perSecond: 200, connections: 0 }); // the new workers start with none of their own
  const outcome = await until(w.host, w.sup.scale(3));
  assert.equal(outcome.ok, true, JSON.stringify(outcome.error));
  assert.deepEqual(sentOf(serving!, 'move'), [{ hitless: 1, type: 'move', share: 2 / 3, window: 1, within: 5000 }]);
  assert.deepEqual(serving!.signals, []);
  const joined = w.host.alive(1).filter((p) => p !== serving);
  assert.deepEqual(joined.map((p) => w.held.get(p)?.length), [3, 3]);
  assert.equal(w.held.get(serving!)?.length, 3);
  assert.deepEqual(outcome.connections, { handedOver: 6, returned: 0, lost: 0, drained: 0, cut: 0 });
  assert.deepEqual(w.events.find((e) => e.type === 'scale-rebalance'), { type: 'scale-rebalance', generation: 1, senders: 1, receivers: 2, share: 2 / 3 });
  assertNeverTwice(w);
});

test('scale up where the workers do not move connections (no `moves` in their hello, or handover off): nothing is asked, nothing moves', async () => {
  for (const over of [{ moves: false }, { handover: false }]) {
    const w = world({ workers: 1, ...over });
    await w.sup.start();
    const [serving] = w.host.alive(1);
    const outcome = await until(w.host, w.sup.scale(2));
    assert.equal(outcome.ok, true);
    assert.deepEqual(sentOf(serving!, 'move'), [], JSON.stringify(over));
    assert.equal(outcome.connections, undefined);
    assert.ok(!w.events.some((e) => e.type === 'scale-rebalance'));
  }
});

test('scale up whose serving worker never answers its `move` (a stuck event loop): the scale ends anyway, telling it `move-end`, and nothing moved', async () => {
  const w = world({ workers: 1 });
  w.twist = (p) => {
    if (w.host.alive(1).length === 1) p.removeAllListeners('sent');
  };
  await w.sup.start();
  const [serving] = w.host.alive(1);
  const started = w.host.now();
  const outcome = await until(w.host, w.sup.scale(2));
  assert.equal(outcome.ok, true);
  assert.deepEqual(sentOf(serving!, 'move').length, 1);
  assert.deepEqual(sentOf(serving!, 'move-end').length, 1);
  assert.equal(outcome.connections, undefined);
  assert.ok(w.host.now() - started >= 5000, 'it waited for the sender\'s own `within` first');
});

test('starved: less than a quarter of its share, with enough serving traffic to tell and nothing busy; a canary that holds unanswered requests, or does not say, is lent nothing', () => {
  assert.equal(starved({ canary: 0, serving: 1200, share: 1 / 3, busy: 0 }), true);
  assert.equal(starved({ canary: 90, serving: 1110, share: 1 / 3, busy: 0 }), true, '7.5% where a third is due');
  assert.equal(starved({ canary: 110, serving: 1090, share: 1 / 3, busy: 0 }), false, 'over a quarter of its share');
  assert.equal(starved({ canary: 0, serving: STARVED_MIN_SERVING - 1, share: 1 / 3, busy: 0 }), false, 'too little traffic to judge a share by');
  assert.equal(starved({ canary: 0, serving: 1200, share: 1 / 3, busy: 2 }), false, 'it holds requests it has not answered (a hang)');
  assert.equal(starved({ canary: 0, serving: 1200, share: 1 / 3, busy: undefined }), false, 'it does not say');
});

/**
 * Behind a pool that reuses the connection it released last and is rarely busy, the few
 * connections carrying the traffic may all stay with the serving workers: the canary holds
 * what it was lent and answers nothing. `recent` moves make it the canary's.
 */
function starvedWorld(canaryBusy: number | undefined, canaryLend?: boolean): { w: World; recentMoves: Array<{ to: FakeProcess; at: number }> } {
  const w = world(canaryLend === undefined ? {} : { canaryLend });
  const canaryLoad: Load & { connections: number } = { perSecond: 0, connections: 2, ...(canaryBusy === undefined ? {} : { busy: canaryBusy }) };
  w.loads.set(2, canaryLoad);
  const recentMoves: Array<{ to: FakeProcess; at: number }> = [];
  w.twist = (p) => p.on('sent', (m: Record<string, unknown>) => {
    if (m.type !== 'move' || m.recent !== true) return;
    recentMoves.push({ to: p, at: w.host.now() });
    // The connection the pool reuses first now reaches the canary.
    canaryLoad.perSecond = 200;
  });
  return { w, recentMoves };
}

test('a starved canary (0 responses on the connections it holds, nothing busy) is lent the connection a serving worker used last, once, and is then judged and promoted', async () => {
  const { w, recentMoves } = starvedWorld(0);
  await w.sup.start();
  const outcome = await until(w.host, w.sup.reload('pool'));
  assert.equal(outcome.ok, true, JSON.stringify(outcome.error));
  assert.equal(recentMoves.length, 1, 'lent once: it got its traffic after');
  const [lend] = recentMoves;
  assert.equal(lend?.to.generation, 1);
  assert.deepEqual(sentOf(lend!.to, 'move').at(-1), { hitless: 1, type: 'move', count: 1, window: 1, within: 5000, recent: true });
  const events = w.events.filter((e) => e.type === 'canary-lend');
  assert.equal(events.length, 1);
  const e = events[0]!;
  assert.equal(e.type === 'canary-lend' && [e.generation, e.from, e.canary].join(), '2,1,0');
  assert.ok(e.type === 'canary-lend' && e.serving >= STARVED_MIN_SERVING && e.ms === STARVED_LOOKS * 1000, JSON.stringify(e));
  // 9 moved at the start, 1 lent.
  assert.equal(outcome.canary?.connections?.moved, 10);
  assert.equal(outcome.canary?.connections?.lends, 1);
  const progress = new ReloadProgress();
  const lines = w.events.map((ev) => progress.update(ev)).filter((l): l is string => l !== undefined);
  assert.ok(lines.some((l) => /^canary generation 2 answered 0 responses to the serving generation's \d+ in 2 s, with nothing busy: worker 1\.\d lends it the connection it used last$/.test(l)), lines.join('\n'));
  assertNeverTwice(w);
});

test('a canary that holds requests it does not answer (busy), or does not say, is lent nothing more: inconclusive, as before', async () => {
  for (const busy of [3, undefined]) {
    const { w, recentMoves } = starvedWorld(busy);
    await w.sup.start();
    const outcome = await until(w.host, w.sup.reload('hung'));
    assert.equal(outcome.error?.code, 'ERR_CANARY_INCONCLUSIVE', `busy ${busy}`);
    assert.deepEqual(recentMoves, []);
    assert.ok(!w.events.some((e) => e.type === 'canary-lend'));
    assert.equal(outcome.connections?.lost, 0);
  }
});

test('HITLESS_CANARY_LEND=0 (canaryLend false, for measurements): a starved canary is lent nothing, inconclusive as before the lending', async () => {
  const { w, recentMoves } = starvedWorld(0, false);
  await w.sup.start();
  const outcome = await until(w.host, w.sup.reload('pool, no lending'));
  assert.equal(outcome.error?.code, 'ERR_CANARY_INCONCLUSIVE');
  assert.deepEqual(recentMoves, []);
});

test('a canary whose event loop blocks (it stops reporting) is lent nothing on its last figures, however starved they look', async () => {
  const { w, recentMoves } = starvedWorld(0);
  const canaryLoad: Load & { connections: number } = { perSecond: 300, connections: 2, busy: 0 };
  w.loads.set(2, canaryLoad);
  const twist = w.twist;
  w.twist = (p) => {
    twist(p);
    if (p.generation === 2) w.host.setTimer(() => (canaryLoad.silent = true), 2500);
  };
  await w.sup.start();
  await until(w.host, w.sup.reload('blocked'));
  assert.deepEqual(recentMoves, []);
  assert.ok(!w.events.some((e) => e.type === 'canary-lend'));
});

test('a canary that gets its share is never lent more; one that starves again after a lend is lent again, at most once per two looks', async () => {
  const fed = world();
  fed.loads.set(2, { perSecond: 100, connections: 2, busy: 0 });
  await fed.sup.start();
  const fedOutcome = await until(fed.host, fed.sup.reload('fed'));
  assert.equal(fedOutcome.ok, true);
  assert.equal(fedOutcome.canary?.connections?.lends, undefined, 'absent when never lent');
  assert.ok(!fed.events.some((e) => e.type === 'canary-lend'));

  // The lend does not help (the pool's load moved on): lent again every two looks while judged.
  const { w, recentMoves } = starvedWorld(0);
  w.twist = (p) => p.on('sent', (m: Record<string, unknown>) => {
    if (m.type === 'move' && m.recent === true) recentMoves.push({ to: p, at: w.host.now() });
  });
  await w.sup.start();
  const outcome = await until(w.host, w.sup.reload('pool moved on'));
  assert.equal(outcome.error?.code, 'ERR_CANARY_INCONCLUSIVE');
  assert.ok(recentMoves.length >= 1 && recentMoves.length <= 2, `lends in a 5 s canary: ${recentMoves.length}`);
  for (let i = 1; i < recentMoves.length; i++) assert.ok(recentMoves[i]!.at - recentMoves[i - 1]!.at >= STARVED_LOOKS * 1000);
  assert.equal(outcome.connections?.lost, 0);
  assertNeverTwice(w);
});

test('a canary that never stops (its event loop blocked) is SIGKILLed at drainTimeout: the failed reload says forced 1 and counts the connections it last reported open as cut; with reloadWait equal to drainTimeout the reload waits for the kill instead of saying it drains on in the background', async () => {
  for (const reloadWait of [undefined, 5000]) {
    const w = world({ ...(reloadWait === undefined ? {} : { reloadWait }) });
    w.loads.set(2, { perSecond: 0, connections: 2, busy: 0 });
    w.twist = (p) => {
      if (p.generation !== 2) return;
      // Deaf to the stop and to SIGTERM: only SIGKILL ends it.
      p.removeAllListeners('sent');
      p.removeAllListeners('signal');
    };
    await w.sup.start();
    const outcome = await until(w.host, w.sup.reload('blocked canary'));
    assert.equal(outcome.error?.code, 'ERR_CANARY_INCONCLUSIVE', `reloadWait ${reloadWait}`);
    assert.equal(outcome.forced, 1, `reloadWait ${reloadWait}`);
    assert.equal(outcome.connections?.cut, 2, JSON.stringify(outcome.connections));
    assert.equal(outcome.connections?.lost, 0);
    assert.ok(!w.events.some((e) => e.type === 'drain-background'), `reloadWait ${reloadWait}: no background drain announced at the moment of the kill`);
  }
});
