// What `hitless reload` prints while it works (src/cli/format.ts ReloadProgress).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeDraining, ReloadProgress } from '../../src/cli/format.js';
import type { MasterEvent } from '../../src/core/types.js';
import { progressPrinter } from '../../src/cli/commands/reload.js';

function lines(events: MasterEvent[]): string[] {
  const p = new ReloadProgress();
  return events.map((e) => p.update(e)).filter((l): l is string => l !== undefined);
}

const status = (slot: number, n: number): MasterEvent => ({ type: 'worker-status', generation: 7, slot, text: `draining ${n} connection${n === 1 ? '' : 's'}` });
const exit = (slot: number): MasterEvent => ({ type: 'worker-exit', generation: 7, slot, pid: 100 + slot, code: 0, signal: null, planned: true });

test('regression (issue 19): "connections left" never rises and never repeats; said once every draining worker reported', () => {
  const out = lines([
    { type: 'reload-start', generation: 8, reason: 'test', workers: 2 },
    { type: 'reload-draining', generation: 7, workers: 2 },
    status(0, 10), // worker 7.1 has not reported: a sum now would rise later (10, then 20)
    status(1, 10),
    status(0, 4),
    status(0, 4), // the same sum again: nothing new
    status(1, 12), // 4 + 12 = 16: above the last one said (a connection handed back)
    status(1, 0),
    status(0, 0),
    status(0, 0),
    exit(0),
    exit(1),
  ]).filter((l) => l.includes('left'));
  assert.deepEqual(out, [
    'draining generation 7: 20 connections left',
    'draining generation 7: 14 connections left',
    'draining generation 7: 4 connections left',
    'draining generation 7: 0 connections left',
  ]);
});

test('"connections left": a worker that exits without reporting counts 0; a new drain (rolling, next slot) starts afresh', () => {
  const out = lines([
    { type: 'reload-start', generation: 8, reason: 'test', workers: 2 },
    { type: 'reload-draining', generation: 7, workers: 2 },
    status(0, 3),
    exit(1), // never spoke (a worker without the library)
    status(0, 1),
    { type: 'reload-draining', generation: 7, workers: 1 },
    status(1, 5),
    status(1, 0),
  ]).filter((l) => l.includes('left'));
  assert.deepEqual(out, [
    'draining generation 7: 3 connections left',
    'draining generation 7: 1 connection left',
    'draining generation 7: 5 connections left',
    'draining generation 7: 0 connections left',
  ]);
});

test('"connections left" is not said for a drain where no worker reported its connections (regression: workers without the library, or sending only stats, read "0 connections left")', () => {
  const out = lines([
    { type: 'reload-start', generation: 8, reason: 'test', workers: 2 },
    { type: 'reload-draining', generation: 7, workers: 2 },
    { type: 'worker-status', generation: 7, slot: 0, text: 'serving' },
    exit(0),
    exit(1),
  ]);
  assert.deepEqual(out.filter((l) => l.includes('left')), [], out.join('\n'));
  assert.ok(out.includes('draining 2 workers of generation 7'), out.join('\n'));
});

test('a warm-up skipped for workers that take no hand-over (another language) is said once in the reload output, not only in the log', () => {
  const skipped = 'the worker takes no connection on the channel (no hello with hand-over: not the in-app library, or --no-preload)';
  const warm = (generation: number, slot: number, skip?: string): MasterEvent =>
    ({ type: 'worker-warmup', generation, slot, pid: 100 + slot, responses: [], ms: 0, ...(skip ? { skipped: skip } : {}) });
  const out = lines([
    { type: 'reload-start', generation: 8, reason: 'test', workers: 2 },
    warm(8, 0, skipped),
    warm(8, 1, skipped),
    warm(8, 0), // a warmed worker says nothing here
    { type: 'reload-start', generation: 9, reason: 'test', workers: 1 },
    warm(9, 0, skipped),
  ]).filter((l) => l.includes('warm'));
  assert.deepEqual(out, [`generation 8: warm-up skipped: ${skipped}`, `generation 9: warm-up skipped: ${skipped}`]);
});

test('readiness wait: the reload names the workers of its generation not ready yet, with their status', () => {
  const out = lines([
    { type: 'reload-start', generation: 8, reason: 'test', workers: 2 },
    { type: 'ready-wait', generation: 8, waitingMs: 5000, workers: [{ slot: 0, pid: 42, ms: 5000 }, { slot: 1, pid: 43, ms: 4900, status: 'warming cache' }] },
    { type: 'ready-wait', generation: 3, waitingMs: 5000, workers: [{ slot: 0, pid: 9, ms: 5000 }] }, // another generation (a crash restart)
  ]);
  assert.deepEqual(out, [
    'spawning generation 8',
    'generation 8: not ready after 5 s, waiting for 8.0 (pid 42), 8.1 (pid 43: warming cache)',
  ]);
});

test('a configuration change is said with its values, as `hitless reload` prints them (secrets hidden): what `hitless release` shows', () => {
  assert.deepEqual(lines([
    { type: 'reload-config', reason: 'release', changes: [], notes: [] },
    {
      type: 'reload-config', reason: 'release', changes: [
        { key: 'workers', from: '2', to: '3' },
        { key: 'env.API_KEY', from: null, to: '(hidden)' },
        { key: 'logs.mode', from: 'inherit', to: 'file' },
      ],
      notes: [],
    },
  ]), ['no configuration change', 'configuration changes: workers: 2 → 3; env.API_KEY: added (value hidden); logs.mode: inherit → file']);
});

test('a reload ended by a stop of the master does not say an old generation keeps serving (the master stops them all)', async () => {
  const { failureLine } = await import('../../src/cli/commands/reload.js');
  const base = { ok: false, generation: 21, attempted: 22, reason: 'hitless reload', startedAt: 0, durationMs: 5000, forced: 0 };
  assert.equal(
    failureLine({ ...base, error: { code: 'ERR_STOPPING', message: 'the master began stopping', output: [] } }),
    'hitless: reload failed: the master began stopping, and every generation stops with it (ERR_STOPPING)',
  );
  // h24 F6: a reload asked for during a stop said "the master is stopping" twice.
  const { stoppingReload } = await import('../../src/core/outcomes.js');
  assert.equal(failureLine(stoppingReload('hitless reload', 21, 0)),
    'hitless: reload refused: the master is stopping, and every generation stops with it (ERR_STOPPING)');
  assert.equal(
    failureLine({ ...base, error: { code: 'ERR_WORKER_EXITED', message: 'worker 22.0 (pid 7) exited with code 1 before it was ready', output: [] } }),
    'hitless: reload failed: worker 22.0 (pid 7) exited with code 1 before it was ready (ERR_WORKER_EXITED); generation 21 keeps serving',
  );
  // A stop during the rollback of a version that died after going live (h12 N1): nothing serves then either.
  const died = { ...base, generation: 22, error: { code: 'ERR_WORKER_EXITED', message: 'worker 22.0 (pid 7) exited with code 5 1.2 s after the new generation went live', output: [] } };
  assert.equal(
    failureLine({ ...died, rollback: { generation: 23, version: 21, ok: false, error: { code: 'ERR_STOPPING', message: 'the master began stopping', output: [] } } }),
    'hitless: reload failed: worker 22.0 (pid 7) exited with code 5 1.2 s after the new generation went live (ERR_WORKER_EXITED); the master is stopping, so no generation keeps serving',
  );
  assert.equal(
    failureLine({ ...died, rollback: { generation: 23, version: 21, ok: true } }),
    'hitless: reload failed: worker 22.0 (pid 7) exited with code 5 1.2 s after the new generation went live (ERR_WORKER_EXITED); rolled back: generation 23 serves generation 21\'s version',
  );
});

test('workers booting one after another (bootConcurrency 1) count out of the generation\'s size: "ready 1/2", not "ready 1/1"', () => {
  const spawn = (slot: number): MasterEvent => ({ type: 'worker-spawn', generation: 8, slot, pid: 200 + slot });
  const ready = (slot: number): MasterEvent => ({ type: 'worker-ready', generation: 8, slot, pid: 200 + slot, ms: 700 });
  assert.deepEqual(lines([
    { type: 'reload-start', generation: 8, reason: 'test', workers: 2 },
    spawn(0), ready(0), spawn(1), ready(1),
  ]), [
    'spawning generation 8',
    'spawning generation 8: 1 started, ready 0/2',
    'generation 8: ready 1/2 (worker 8.0, pid 200, 700 ms)',
    'spawning generation 8: 2 started, ready 1/2',
    'generation 8: ready 2/2 (worker 8.1, pid 201, 700 ms)',
  ]);
});

test('regression (h10 F1): a second reload followed by the same progress (a release switching back) counts its own workers only', () => {
  const spawn = (generation: number, slot: number): MasterEvent => ({ type: 'worker-spawn', generation, slot, pid: generation * 100 + slot });
  const ready = (generation: number, slot: number): MasterEvent => ({ type: 'worker-ready', generation, slot, pid: generation * 100 + slot, ms: 700 });
  const out = lines([
    { type: 'reload-start', generation: 9, reason: 'hitless release', workers: 2 },
    spawn(9, 0), spawn(9, 1), ready(9, 0),
    { type: 'reload-done', outcome: { ok: false, generation: 8, attempted: 9, reason: 'hitless release', startedAt: 0, durationMs: 1, forced: 0 } },
    { type: 'reload-start', generation: 10, reason: 'hitless release (switch back)', workers: 2 },
    spawn(10, 0), ready(10, 0),
    // Generation 8 retires at the end of reload 10; "connections left" is about it, not reload 9's drain.
    { type: 'reload-draining', generation: 8, workers: 1, to: 10 },
    { type: 'worker-status', generation: 8, slot: 0, text: 'draining 3 connections' },
  ]);
  assert.deepEqual(out.slice(4), [
    'spawning generation 10',
    'spawning generation 10: 1 started, ready 0/2',
    'generation 10: ready 1/2 (worker 10.0, pid 1000, 700 ms)',
    'draining 1 worker of generation 8',
    'draining generation 8: 3 connections left',
  ]);
});

test('regression (h11 F1 side note): a crashed worker\'s replacement takes its slot: "ready 1/2" after the crash, never "3 started, ready 2/3"', () => {
  const ready = (slot: number, pid: number): MasterEvent => ({ type: 'worker-ready', generation: 4, slot, pid, ms: 500 });
  assert.deepEqual(lines([
    { type: 'reload-start', generation: 4, reason: 'test', workers: 2 },
    { type: 'worker-spawn', generation: 4, slot: 0, pid: 40 },
    { type: 'worker-spawn', generation: 4, slot: 1, pid: 41 },
    ready(0, 40), ready(1, 41),
    { type: 'worker-exit', generation: 4, slot: 0, pid: 40, code: 5, signal: null, planned: false },
    { type: 'worker-spawn', generation: 4, slot: 0, pid: 42 },
    ready(0, 42),
  ]).slice(5), [
    'worker 4.0 exited (code 5)',
    'generation 4: worker 4.0 started again (pid 42), ready 1/2',
    'generation 4: ready 2/2 (worker 4.0, pid 42, 500 ms)',
  ]);
});

test('a scale that tried nothing (busy, an upgrade under way, stopping) is "refused", one that did is "failed"; an upgrade refusal says "refused" once', async () => {
  const { scaleFailureLine } = await import('../../src/cli/commands/scale.js');
  const { upgradeFailureLine } = await import('../../src/cli/commands/upgrade.js');
  const scale = { ok: false, generation: 1, from: 1, to: 1, startedAt: 0, durationMs: 0, forced: 0 };
  // Before: "scale failed: the master is stopping; no scale (ERR_STOPPING)".
  assert.equal(scaleFailureLine({ ...scale, error: { code: 'ERR_STOPPING', message: 'the master is stopping; no scale', output: [] } }),
    'hitless: scale refused: the master is stopping (ERR_STOPPING); generation 1 keeps 1 worker');
  assert.match(scaleFailureLine({ ...scale, error: { code: 'ERR_SCALE_BUSY', message: 'a reload or another scale is in progress', output: [] } }), /^hitless: scale refused: /);
  // Regression: "scale failed" during an upgrade, where reload and upgrade say "refused".
  assert.equal(scaleFailureLine({ ...scale, error: { code: 'ERR_UPGRADE_BUSY', message: 'a master upgrade is under way (new master pid 29110); ask again once `hitless upgrade` is done (the new master takes it then)', output: [] } }),
    'hitless: scale refused: a master upgrade is under way (new master pid 29110); ask again once `hitless upgrade` is done (the new master takes it then) (ERR_UPGRADE_BUSY); generation 1 keeps 1 worker');
  assert.match(scaleFailureLine({ ...scale, error: { code: 'ERR_WORKER_EXITED', message: 'worker 1.1 exited', output: [] } }), /^hitless: scale failed: /);
  const upgrade = { ok: false, pid: 7, version: '0.1.0', generation: 3, reason: 'hitless upgrade' } as unknown as Parameters<typeof upgradeFailureLine>[0];
  // Before: "upgrade refused: no upgrade: a reload is under way".
  assert.equal(upgradeFailureLine({ ...upgrade, error: { code: 'ERR_UPGRADE_BUSY', message: 'no upgrade: a reload is under way; run `hitless upgrade` again once it is done', output: [] } }),
    'hitless: upgrade refused: a reload is under way; run `hitless upgrade` again once it is done (ERR_UPGRADE_BUSY); master pid 7 (hitless 0.1.0) keeps serving generation 3');
});

test('hitless reload on a terminal: progress phrases replace each other, but the canary-lend line stays (what follows it means something else); plain lines elsewhere', () => {
  const run = (isTTY: boolean): string => {
    let out = '';
    const p = progressPrinter({ isTTY, write: (s: string) => ((out += s), true) } as Pick<NodeJS.WriteStream, 'isTTY' | 'write'>);
    p.show('canary generation 2, 1 s of 6 s: …');
    p.keep('canary generation 2 answered 0 responses … lends it the connection it used last');
    p.show('canary generation 2, 3 s of 6 s: …');
    p.end();
    return out;
  };
  assert.equal(run(true), '\r\x1b[Kreload: canary generation 2, 1 s of 6 s: …\r\x1b[Kreload: canary generation 2 answered 0 responses … lends it the connection it used last\n\r\x1b[Kreload: canary generation 2, 3 s of 6 s: …\n');
  assert.equal(run(false), 'reload: canary generation 2, 1 s of 6 s: …\nreload: canary generation 2 answered 0 responses … lends it the connection it used last\nreload: canary generation 2, 3 s of 6 s: …\n');
});

test('regression (h15 F2): a generation gone to the background at drain.reloadWait says what it holds (requests in flight) and why, with its deadline in UTC as the logs write it, not the locale clock', () => {
  const now = Date.UTC(2025, 0, 1, 21, 20, 19);
  const deadline = now + 112_000;
  const p = new ReloadProgress(() => now);
  const base = { type: 'drain-background', generation: 16, workers: 1, deadline } as const;
  assert.equal(p.update({ ...base, upgraded: 0, requests: 2, connections: 2, unknown: 0, reloadWait: 6000 }),
    'generation 16 drains on in the background (drain.reloadWait 6 s reached): 1 worker holding 2 requests in flight, until 21:22:11 UTC at most (in 1 min 52 s)');
  assert.equal(p.update({ ...base, workers: 2, upgraded: 812 }),
    'generation 16 drains on in the background: 2 workers holding 812 upgraded connections, until 21:22:11 UTC at most (in 1 min 52 s)');
  assert.equal(p.update({ ...base, upgraded: 0, requests: 0, connections: 0, unknown: 1, reloadWait: 6000 }),
    'generation 16 drains on in the background (drain.reloadWait 6 s reached): 1 worker holding 1 not saying what it holds, until 21:22:11 UTC at most (in 1 min 52 s)');

  const draining = { generation: 16, background: true, since: now - 8000, deadline, workers: [{ slot: 0, pid: 20256, upgraded: undefined, requests: 2, connections: 2 }], upgraded: 0, requests: 2, connections: 2, unknown: 0 };
  assert.equal(describeDraining({ ...draining, reloadWait: 6000 }, now), 'generation 16 (background, drain.reloadWait 6 s reached): 1 worker, 2 requests in flight, SIGKILL in 1 min 52 s');
  assert.equal(describeDraining({ ...draining, requests: 0, connections: 3 }, now), 'generation 16 (background): 1 worker, 3 connections open, SIGKILL in 1 min 52 s');
  assert.equal(describeDraining({ ...draining, workers: [], requests: 0, connections: 0, upgraded: 40, unknown: 1 }, now), 'generation 16 (background): 0 workers, 40 upgraded connections, 1 not saying what it holds, SIGKILL in 1 min 52 s');
});

test('settling: the line says the stay-ready time the master waits (settleMs: the reload\'s stayReady), and 1 s from an older master that does not send it', () => {
  const phase = (settleMs?: number): MasterEvent => ({ type: 'reload-phase', generation: 8, phase: 'settling', ...(settleMs === undefined ? {} : { settleMs }) });
  const start: MasterEvent = { type: 'reload-start', generation: 8, reason: 'test', workers: 2 };
  assert.deepEqual(lines([start, phase(10_000)]).slice(1), ['generation 8: waiting until every new worker has been ready for 10 s (one that exits meanwhile is rolled back)']);
  assert.deepEqual(lines([start, phase()]).slice(1), ['generation 8: waiting until every new worker has been ready for 1 s (one that exits meanwhile is rolled back)']);
});
