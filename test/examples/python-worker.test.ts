// The Python worker users are pointed to (examples/python/worker.py, shipped in the package):
// the worker contract with the standard library only. Reloaded under load with zero failed
// requests, and its traffic figures reach `hitless status`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { root, startMaster, waitUntil } from '../helpers/master.js';
import { startLoad } from '../helpers/load.js';
import { needs } from '../helpers/tools.js';
import { controlRequest } from '../../src/control/client.js';
import type { StatusSnapshot } from '../../src/core/types.js';

const RELOADS = 3;

test('examples/python/worker.py reloaded under load: zero failed requests, every generation served, its figures in status', { skip: needs('python3'), timeout: 120_000 }, async (t) => {
  const master = await startMaster(t, { command: ['python3', join(root, 'examples', 'python', 'worker.py')], workers: 2 });
  // One request per connection: the example answers HTTP/1.0 and closes (see its docstring).
  const load = startLoad(t, { url: master.url('/'), connections: 10, close: true });
  for (let i = 0; i < RELOADS; i++) {
    const r = await master.reload();
    assert.equal(r.code, 0, r.stderr);
  }
  const status = async (): Promise<StatusSnapshot> => (await controlRequest(master.runDir, 'status')) as StatusSnapshot;
  await waitUntil(async () => ((await status()).traffic?.generations[0]?.figures.total['2xx'] ?? 0) > 0, 'the new generation reported its traffic', 10_000, 50);
  const result = await load.stop();
  assert.ok(result.requests > 100, result.raw);
  assert.equal(result.failed, 0, result.raw);
  assert.deepEqual(result.generations, ['1', '2', '3', '4'], result.raw);
  assert.equal((await status()).warnings, undefined, 'no listener shut down, none unserved');
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
