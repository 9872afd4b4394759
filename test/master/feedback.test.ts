// What `hitless reload` tells a person while it works: the phases, and how many
// connections the old generation still drains (reported by the in-app library).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { fixture, startMaster } from '../helpers/master.js';

test('hitless reload shows the draining generation counting down its open connections', { timeout: 60_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')] });
  const [host, port] = master.address().split(':') as [string, string];
  // One kept-alive, idle connection: the old worker closes it after its idle grace.
  const socket = net.connect(Number(port), host);
  t.after(() => socket.destroy());
  await new Promise<void>((resolve) => {
    socket.once('data', () => resolve());
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const r = await master.reload();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /reload: spawning generation 2/);
  assert.match(r.stdout, /reload: generation 2: ready 1\/1/);
  assert.match(r.stdout, /reload: draining 1 worker of generation 1/);
  assert.match(r.stdout, /reload: draining generation 1: 1 connection left\n(.*\n)*reload: generation 1 drained in/);
  assert.match(r.stdout, /reload: done in .*, generation 2 is live/);
  await closed; // closed by the old worker, not reset by a kill
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
