// Regression (issue: a half-failed rolling reload left the rejected version serving):
// --workers 3 --strategy rolling, the new version's slot-1 worker fails, and putting the
// old version back into slot 0 fails too. The reload must fail, no worker of the rejected
// generation may stay alive or appear in status, and `hitless stop` must leave no process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { alive, fixture, startMaster } from '../helpers/master.js';
import { startLoad } from '../helpers/load.js';

test('rolling reload whose unroll fails too: the rejected generation is gone, status never lists it, stop leaves no process', { timeout: 230_000 }, async (t) => {
  const master = await startMaster(t, {
    command: ['node', fixture('master/fail-by-marker.js')],
    workers: 3,
    args: ['--strategy', 'rolling', '--drain-timeout', '5s'],
  });
  const appDir = dirname(master.runDir);
  const load = startLoad(t, { url: master.url('/'), connections: 10 });
  writeFileSync(join(appDir, 'fail-2.1'), '');
  writeFileSync(join(appDir, 'fail-1.0'), '');
  const r = await master.reload();
  assert.equal(r.code, 1, `the reload must fail:\n${r.stdout}\n${r.stderr}`);
  const st = await master.status();
  assert.deepEqual(st.workers.filter((w) => w.generation === 2), [], `status lists the rejected generation: ${JSON.stringify(st.workers)}`);
  const rejected = master.events('worker-spawn').filter((e) => e.generation === 2).map((e) => Number(e.pid));
  assert.ok(rejected.length >= 1);
  for (const pid of rejected) assert.equal(alive(pid), false, `worker ${pid} of the rejected generation is alive`);
  const result = await load.stop();
  assert.equal(result.failed, 0, result.raw);
  const pids = st.workers.flatMap((w) => (w.pid ? [w.pid] : []));
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
  for (const pid of [...pids, ...rejected]) assert.equal(alive(pid), false, `pid ${pid} outlived hitless stop`);
});
