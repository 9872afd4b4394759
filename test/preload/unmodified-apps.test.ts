/**
 * Unmodified Express, Fastify, Koa and Hono apps — each keeps its own listen(port) and
 * its own SIGTERM handler, and imports nothing from hitless — run under the master through
 * the preload, reloaded 5 times under keep-alive load: zero failed requests, every
 * generation served, and no old worker killed at the drain deadline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, startMaster } from '../helpers/master.js';
import { freePort } from '../frameworks/free-port.js';
import { reloadUnderLoad } from '../frameworks/reload-under-load.js';

const RELOADS = 5;

for (const name of ['express', 'fastify', 'koa', 'hono']) {
  test(`unmodified ${name} app with its own listen(port) and SIGTERM handler: ${RELOADS} reloads under load drop no request`, { timeout: 180_000 }, async (t) => {
    const port = await freePort();
    const master = await startMaster(t, {
      command: [process.execPath, fixture(`preload/${name}.js`)],
      listen: [`127.0.0.1:${port}`],
      workers: 2,
    });
    const first = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-generation'), '1');
    await first.text();

    await reloadUnderLoad(t, master, '/', RELOADS);
    const last = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(last.headers.get('x-generation'), String(1 + RELOADS), 'the last generation answers');
    await last.text();
    assert.deepEqual(await master.stop(), { code: 0, signal: null });
  });
}
