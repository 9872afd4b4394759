/**
 * Every framework example under the real master, reloaded 5 times under keep-alive load
 * (test/helpers/load.ts): zero socket errors and zero non-2xx, and the last generation answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { root, startMaster } from '../helpers/master.js';
import { startLoad } from '../helpers/load.js';

const RELOADS = 5;
const frameworks = ['node-http', 'express', 'fastify', 'koa', 'hono'];

for (const name of frameworks) {
  test(`example ${name}: ${RELOADS} reloads under load drop no request`, { timeout: 180_000 }, async (t) => {
    const master = await startMaster(t, {
      command: [process.execPath, join(root, 'build', 'examples', name, 'server.js')],
      workers: 2,
      cwd: root,
    });
    // Standalone-safe health endpoint answers through the adopted socket.
    const health = await fetch(master.url('/readyz'));
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'ready\n');

    // Stopped once the reloads are done (the helper bounds it against a hang).
    const load = startLoad(t, { url: master.url('/'), connections: 20 });
    for (let i = 0; i < RELOADS; i++) {
      const r = await master.reload();
      assert.equal(r.code, 0, `reload ${i + 1} failed:\n${r.stdout}\n${r.stderr}`);
    }
    const result = await load.stop();
    assert.ok(result.requests > 0, result.raw);
    assert.deepEqual(result.errors, { connect: 0, read: 0, write: 0, timeout: 0 }, result.raw);
    assert.equal(result.non2xx, 0, result.raw);
    const last = await fetch(master.url('/'));
    assert.equal(last.headers.get('x-generation'), String(1 + RELOADS), 'the last generation answers');
    await last.text();
    const stopped = await master.stop();
    assert.equal(stopped.code, 0);
  });
}
