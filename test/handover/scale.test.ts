// `hitless scale` with clients that keep their connections (the traffic browsers and proxy
// pools make). Down: the removed workers hand their keep-alive connections to the workers
// that stay, as a reload hands them to the new generation: no close, no reset, no
// reconnect, and the removed workers do not wait out the app's shutdownDelay (the socket
// stays served). Up: the serving workers hand the new ones their share, so the new workers
// serve these clients too, not only clients that connect anew.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, startMaster, waitUntil, type MasterProcess } from '../helpers/master.js';
import { establishedTo, startLoad } from '../helpers/load.js';

async function scale(master: MasterProcess, workers: number): Promise<string> {
  const r = await master.cli(['scale', String(workers)]);
  assert.equal(r.code, 0, `hitless scale ${workers} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('scale under 300 paced keep-alive users (3 → 1 → 3 → 2): zero failed requests, no reconnect, the new workers get their share of the connections, and the app\'s 2 min shutdownDelay is not waited out', { timeout: 300_000 }, async (t) => {
  // Idle connections kept for a minute (KEEP_ALIVE_MS): only a scale may close them here.
  const master = await startMaster(t, {
    command: ['node', fixture('master/app.js')], workers: 3,
    env: { KEEP_ALIVE_MS: '60000', SHUTDOWN_DELAY_MS: '120000' }, args: ['--handover-spread', '1s'],
  });
  const users = 300;
  const load = startLoad(t, { url: master.url('/'), connections: users, thinkMs: [0, 600] });
  const port = Number(master.address().split(':')[1]);
  await waitUntil(() => establishedTo(port) >= users, `all ${users} users connected`, 60_000, 50);
  const before = new Set((await master.status()).workers.map((w) => w.pid));

  const down = await scale(master, 1);
  assert.match(down, /^scale: generation 1: draining 2 workers \(3 → 1\)$/m);
  assert.match(down, /^scale: the workers that stay take their connections \(hand-over\)$/m);
  assert.match(down, /^scale: \d+ connections handed over to the workers that stay\nscale: done in .+, generation 1 has 1 worker$/m);
  const after = (await master.status()).workers;
  assert.equal(after.length, 1);
  assert.ok(before.has(after[0]?.pid ?? 0), 'the worker of slot 0 stays');
  const up = await scale(master, 3);
  assert.match(up, /^scale: the serving workers hand 67% of their kept-alive connections to the new ones$/m);
  assert.match(up, /^scale: \d+ connections handed over to the new workers\nscale: done in .+, generation 1 has 3 workers$/m);
  const moved = Number(/(\d+) connections handed over to the new workers/.exec(up)?.[1]);
  await scale(master, 2);

  const result = await load.stop();
  t.diagnostic(`load: ${result.raw}`);
  const drained = master.events('reload-drained');
  t.diagnostic(JSON.stringify(drained.map((e) => [e.handedOver, e.returned, e.lost, e.drained, e.forced, e.cut])));
  assert.equal(result.failed, 0, `failed requests: ${result.raw}`);
  assert.equal(result.opened, users, `the users re-opened connections: ${result.raw}`);
  assert.equal(result.idleClosed, 0, result.raw);
  assert.equal(drained.length, 2, 'two scale-downs');
  assert.deepEqual(drained.map((e) => Number(e.lost) + Number(e.returned) + Number(e.cut) + Number(e.forced) + Number(e.drained)), [0, 0]);
  assert.ok(drained.every((e) => Number(e.handedOver) > 0), 'the removed workers had connections to hand over');
  // Scaling up, the worker that served alone handed two thirds of its connections (of those
  // idle or done within 5 s) to the two new ones: they serve the users who kept theirs.
  assert.ok(moved > users / 3, `only ${moved} connections moved to the new workers`);
  const exits = master.events('worker-exit');
  assert.equal(exits.length, 3, 'three removed workers exited');
  assert.deepEqual(exits.map((e) => e.code), [0, 0, 0], 'each drained and exited 0, long before the 2 min delay');
});
