// A crashed worker's replacement and clients that keep their connections (report h11 F2).
// The killed worker's clients reconnect at once, while the replacement still boots, so they
// all land on the worker that survived; a keep-alive pool opens no new connection after
// that, and without a hand-over the replacement would serve almost none of their requests
// until the next reload. Once READY and up 5 s (RESTART_SETTLE_MS), it gets its share of
// the survivor's connections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, startMaster, waitUntil, type LogRecord, type MasterProcess } from '../helpers/master.js';
import { establishedTo, now, startLoad } from '../helpers/load.js';
import { Kind } from '../../bench/loadgen.js';

interface WorkerRow { pid?: number; slot: number; state: string; traffic?: { connections?: number; total: Record<string, number> } }

const workers = async (master: MasterProcess): Promise<WorkerRow[]> => (await master.status()).workers as unknown as WorkerRow[];

/** `pending`, or a failure naming `what` after `ms`. */
async function within<T>(pending: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms / 1000} s`)), ms)));
  try {
    return await Promise.race([pending, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('worker 1.0 killed (SIGKILL) under 20 paced keep-alive users: once its replacement is READY it gets its share of the survivor\'s connections, and no request fails but those on the killed worker', { timeout: 180_000 }, async (t) => {
  // Idle connections kept for a minute (KEEP_ALIVE_MS): only the kill may close them here.
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')], workers: 2, env: { KEEP_ALIVE_MS: '60000' } });
  const users = 20;
  const load = startLoad(t, { url: master.url('/'), connections: users, thinkMs: [0, 50], track: 'x-pid' });
  const port = Number(master.address().split(':')[1]);
  await waitUntil(() => establishedTo(port) >= users, `all ${users} users connected`, 60_000, 50);
  const victim = (await workers(master)).find((w) => w.slot === 0);
  assert.ok(victim?.pid, 'worker 1.0 runs');

  const from = master.records.length;
  const killedAt = now();
  process.kill(victim.pid, 'SIGKILL');
  const ready = await master.waitEvent((r: LogRecord) => r.event === 'worker-ready' && r.slot === 0 && r.pid !== victim.pid, from);
  const readyAt = now();
  const replacement = Number(ready.pid);
  const moved = await within(master.waitEvent('restart-rebalanced', from), 30_000, 'the replacement of worker 1.0 was handed no kept-alive connections (no restart-rebalanced event)');
  assert.ok(Number(moved.handedOver) > 0, JSON.stringify(moved));
  const rebalance = master.records.slice(from).find((r) => r.event === 'scale-rebalance');
  assert.deepEqual(rebalance?.restarted, [0]);
  assert.match(rebalance?.msg ?? '', /^worker 1\.0 restarted after a crash: the serving workers hand it 50% of their kept-alive connections/);
  // Both workers hold connections and the replacement answers on them (its stats, every second).
  await waitUntil(async () => {
    const rows = await workers(master);
    const mine = rows.find((w) => w.pid === replacement);
    return rows.length === 2 && rows.every((w) => (w.traffic?.connections ?? 0) > 0) && (mine?.traffic?.total['2xx'] ?? 0) > 0;
  }, 'both workers hold connections and the replacement served on them', 30_000, 200);

  const result = await load.stop();
  t.diagnostic(`load: ${result.raw}; moved ${String(moved.handedOver)} in ${String(moved.ms)} ms`);
  const r = result.records;
  const pidOf = (i: number): string | undefined => ((r.answer[i] ?? 0) > 0 ? r.answers[(r.answer[i] ?? 0) - 1] : undefined);
  // Per client connection slot: who answered its last request before the kill.
  const lastBefore = new Map<number, string | undefined>();
  for (let i = 0; i < r.count; i++) if ((r.start[i] ?? 0) < killedAt && r.kind[i] === Kind.ok) lastBefore.set(r.slot[i] ?? 0, pidOf(i));
  const onVictim = [...lastBefore.values()].filter((p) => p === String(victim.pid)).length;
  const failedSlots: number[] = [];
  for (let i = 0; i < r.count; i++) {
    if (r.kind[i] === Kind.ok && (r.status[i] ?? 0) < 300) continue;
    const slot = r.slot[i] ?? 0;
    assert.equal(lastBefore.get(slot), String(victim.pid), `a request failed on a connection not to the killed worker: ${result.raw}`);
    // In flight at the kill, or written to its connection before the reset arrived: before the replacement was READY.
    assert.ok((r.start[i] ?? 0) <= readyAt, `a request failed after the replacement was ready: ${result.raw}`);
    failedSlots.push(slot);
  }
  assert.equal(new Set(failedSlots).size, failedSlots.length, `two requests failed on one connection: ${result.raw}`);
  // The killed worker's users reconnected once; the connections moved to the replacement were not re-opened.
  assert.ok(result.opened <= users + onVictim, `${result.opened} connections opened for ${users} users (${onVictim} on the killed worker): ${result.raw}`);
  let byReplacement = 0;
  for (let i = 0; i < r.count; i++) if (pidOf(i) === String(replacement) && r.fresh[i] === 0) byReplacement++;
  assert.ok(byReplacement > 0, `the replacement answered nothing on kept-alive connections: ${result.raw}`);
});
