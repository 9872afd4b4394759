// shutdownDelay is for balancers that must learn a process goes away (a pod deleted, the
// master stopped). A reload keeps the listening socket served by the new generation: the
// master's `stop` (hand-over) says so, and the retired workers drain at once instead of
// answering readiness probes with 503 for the whole delay (docs/kubernetes.md, "Probes").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { fixture, startMaster } from '../helpers/master.js';

/** One readiness probe on a fresh connection, as kubelet and HAProxy send them. */
function probe(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
}

test('a reload does not wait out the app\'s shutdownDelay (2 min): the old workers drain at once and no readiness probe meanwhile answers 503', { timeout: 90_000 }, async (t) => {
  const master = await startMaster(t, {
    command: ['node', fixture('master/app.js')], workers: 2, env: { SHUTDOWN_DELAY_MS: '120000' },
  });
  const url = master.url('/readyz');
  assert.equal(await probe(url), 200);
  const oldPids = (await master.status()).workers.map((w) => w.pid);
  const statuses = new Map<number, number>();
  let reloading = true;
  const probing = (async () => {
    // Bounded: at most 20,000 probes, one at a time, for as long as the reload runs.
    for (let i = 0; i < 20_000 && reloading; i++) {
      const s = await probe(url);
      statuses.set(s, (statuses.get(s) ?? 0) + 1);
    }
  })();
  const r = await master.reload();
  reloading = false;
  await probing;
  assert.equal(r.code, 0, r.stderr);
  t.diagnostic(`probes during the reload: ${JSON.stringify(Object.fromEntries(statuses))}`);
  assert.deepEqual([...statuses.keys()], [200], 'every probe during the reload answered 200');
  const exits = master.events('worker-exit').filter((e) => oldPids.includes(e.pid as number));
  assert.deepEqual(exits.map((e) => e.code), [0, 0], 'both old workers drained and exited 0, long before the 2 min delay');
  assert.equal((await master.status()).generation, 2);
});
