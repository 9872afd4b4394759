/**
 * WebSockets across reloads, closed well (issue 24), with the real master and real `ws`
 * clients: a library app's and an unmodified app's (preload) WebSocket clients all get close
 * 1001 "going away" (not 1006 at the deadline), spread over drain.spread; and a second
 * reload started while the old generation still drains its WebSockets runs at once, beside
 * two generations draining in the background, which `hitless status` lists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { fixture, startMaster } from '../helpers/master.js';
import { freePort } from '../helpers/free-port.js';
import { drainConfig, openClients, reloadJson } from './clients.js';

test('a library app: every WebSocket client gets close 1001 on a reload, spread over drain.spread, and the reload is done without waiting for them', async (t) => {
  const spread = 2000;
  const master = await startMaster(t, {
    command: [process.execPath, fixture('websocket/chat.js')],
    workers: 2,
    args: ['--config', drainConfig(t, { spread: `${spread}ms` })],
  });
  const clients = await openClients(t, `ws://${master.address()}/`, 40);
  await Promise.all(clients.map((c, i) => c.ask(1, { nick: `u${i}` })));
  const began = performance.now();
  const outcome = await reloadJson(master);
  assert.equal(outcome.ok, true);
  // How the kernel spread the clients over the 2 workers is its own business: at least one holds some.
  assert.ok(((outcome.stillDraining as { workers: number } | undefined)?.workers ?? 0) >= 1, 'done while the old workers still close their WebSockets');
  const closes = await Promise.all(clients.map((c) => c.closed));
  assert.deepEqual(closes.map((c) => c.code), Array(40).fill(1001), 'going away, not 1006 at the deadline');
  const at = closes.map((c) => c.at - began);
  t.diagnostic(`closes from ${Math.min(...at).toFixed(0)} to ${Math.max(...at).toFixed(0)} ms after the reload began (spread ${spread} ms)`);
  const drained = await master.waitEvent((r) => r.event === 'reload-drained' && r.generation === 1);
  assert.equal(drained.forced, 0);
  assert.equal(drained.cut, 0);
});

test('an unmodified app (preload): every WebSocket client gets close 1001 on a reload', async (t) => {
  const port = await freePort();
  const master = await startMaster(t, {
    command: [process.execPath, fixture('websocket/unmodified.js')],
    workers: 2,
    listen: [`127.0.0.1:${port}`],
    args: ['--config', drainConfig(t, { spread: '500ms' })],
  });
  const clients = await openClients(t, `ws://127.0.0.1:${port}/`, 20);
  const outcome = await reloadJson(master);
  assert.equal(outcome.ok, true);
  const closes = await Promise.all(clients.map((c) => c.closed));
  assert.deepEqual(closes.map((c) => c.code), Array(20).fill(1001));
  const drained = await master.waitEvent((r) => r.event === 'reload-drained' && r.generation === 1);
  assert.equal(drained.forced, 0);
});

test('a second reload started during a long WebSocket drain runs at once; both old generations drain in the background and status lists them', async (t) => {
  const master = await startMaster(t, {
    command: [process.execPath, fixture('websocket/chat.js')],
    workers: 2,
    env: { WS_TIMEOUT: '20000' },
    // --stay-ready 0: the two reloads and the status must come within generation 1's 10 s of
    // closes, which a second of waiting per reload ate up on a busy machine (not what this tests).
    args: ['--drain-timeout', '30s', '--stay-ready', '0', '--config', drainConfig(t, { spread: '10s' })],
  });
  const clients = await openClients(t, `ws://${master.address()}/`, 20);
  const first = await reloadJson(master);
  assert.equal(first.ok, true);
  const still = first.stillDraining as { workers: number; upgraded: number };
  assert.ok(still.workers >= 1, 'the old workers that hold WebSockets still hold them when the reload is done');
  assert.ok(still.upgraded > 0 && still.upgraded <= 20, `upgraded ${still.upgraded}`);

  const second = await reloadJson(master);
  assert.equal(second.ok, true);
  assert.equal(second.generation, 3);
  assert.equal(master.events('reload-queued').length, 0, 'the second reload never waited');
  const startedThird = master.records.findIndex((r) => r.event === 'reload-start' && r.generation === 3);
  const firstGone = master.records.findIndex((r) => r.event === 'reload-drained' && r.generation === 1);
  assert.ok(firstGone === -1 || startedThird < firstGone, 'generation 3 started while generation 1 was still draining');

  const status = await master.status();
  const draining = status.draining as { generation: number; background: boolean; upgraded: number }[];
  const one = draining.find((d) => d.generation === 1);
  assert.ok(one?.background, JSON.stringify(draining));
  assert.ok((one?.upgraded ?? 0) > 0);
  const text = await master.cli(['status']);
  assert.match(text.stdout, /draining +generation 1 \(background\): \d workers?, \d+ upgraded connections?, SIGKILL in/);

  // A stop now waits for them too, and says so.
  const stopping = master.cli(['stop']);
  const closes = await Promise.all(clients.map((c) => c.closed));
  assert.deepEqual(closes.map((c) => c.code), Array(20).fill(1001));
  const drained = await master.waitEvent((r) => r.event === 'reload-drained' && r.generation === 1);
  assert.equal(drained.forced, 0);
  const stopped = await stopping;
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.match(stopped.stdout, /^stopping master \(pid \d+\), draining workers\n {2}also draining generation 1 \(background\): \d workers?, \d+ upgraded connections?, SIGKILL in .+\n(.*\n)*master stopped\n$/);
});
