/**
 * Unmodified Express, Fastify, Koa and Hono apps — each keeps its own listen(port) and
 * its own SIGTERM handler, and imports nothing from hitless — run under the master through
 * the preload, reloaded 5 times under keep-alive load: zero failed requests, every
 * generation served, no old worker killed at the drain deadline, and the load's
 * connections handed over rather than re-opened; plus paced users who sit idle between
 * requests, the traffic hand-over exists for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, startMaster, waitUntil } from '../helpers/master.js';
import { freePort } from '../helpers/free-port.js';
import { reloadUnderLoad } from '../frameworks/reload-under-load.js';
import { establishedTo, startLoad } from '../helpers/load.js';

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

test('unmodified express app, 300 paced keep-alive users (0–1.2 s between requests), 4 reloads: zero failed requests and no reconnect', { timeout: 450_000 }, async (t) => {
  const port = await freePort();
  const master = await startMaster(t, {
    command: [process.execPath, fixture('preload/express.js')],
    listen: [`127.0.0.1:${port}`],
    workers: 2,
  });
  const users = 300;
  const load = startLoad(t, { url: `http://127.0.0.1:${port}/`, connections: users, thinkMs: [0, 1200] });
  // Every user has its connection before the first reload, so each reload moves exactly these.
  await waitUntil(() => establishedTo(port) >= users, `all ${users} users connected`, 60_000, 50);
  for (let i = 0; i < 4; i++) {
    const r = await master.reload();
    assert.equal(r.code, 0, `reload ${i + 1} failed:\n${r.stdout}\n${r.stderr}`);
  }
  const last = await fetch(`http://127.0.0.1:${port}/`);
  await last.text();
  const result = await load.stop();
  const perReload = master.events('reload-drained').map((e) => Number(e.handedOver ?? 0));
  t.diagnostic(`${result.raw}; handed over per reload: ${perReload.join(', ')}`);
  assert.equal(result.failed, 0, result.raw);
  assert.equal(result.opened, users, `the users re-opened connections: ${result.raw}`);
  assert.equal(last.headers.get('x-generation'), '5', 'generation 5 serves after 4 reloads');
  assert.deepEqual(perReload, [users, users, users, users], 'every connection handed over at every reload');
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
