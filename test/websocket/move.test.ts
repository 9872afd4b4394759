/**
 * WebSockets moved across reloads (hitless/ws, issue 24), with the real master and real `ws`
 * clients talking all the time: a chat-like app keeps every connection over several reloads
 * — no client sees a close, every message is answered, each connection's state (its nick,
 * its message count) carries on in the next generation, and the server opened as many
 * WebSockets as there are clients. Connections that cannot move (permessage-deflate with
 * context takeover) get close 1001 as without hitless/ws; without context takeover they move.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, startMaster } from '../helpers/master.js';
import { drainConfig, openClients, reloadJson, type Client } from './clients.js';

/** Each client talks until told to stop: one message every few ms, each answer checked. */
function talk(clients: Client[]): { stop: () => Promise<void>; problems: string[]; answered: () => number } {
  let stopped = false;
  let answered = 0;
  const problems: string[] = [];
  const loops = clients.map(async (c, i) => {
    for (let seq = 2; !stopped; seq++) {
      const a = await c.ask(seq);
      answered++;
      if (a.count !== seq || a.nick !== `u${i}`) problems.push(`client ${i}: sent ${seq}, got ${JSON.stringify(a)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  });
  return { stop: async () => void ((stopped = true), await Promise.all(loops)), problems, answered: () => answered };
}

test('with hitless/ws, a chat-like app keeps every WebSocket across three reloads: no close, every message answered, per-connection state intact, opened = clients', async (t) => {
  const n = 30;
  const master = await startMaster(t, { command: [process.execPath, fixture('websocket/chat.js')], workers: 2, env: { WS_MOVE: '1' } });
  const clients = await openClients(t, `ws://${master.address()}/`, n);
  const hello = await Promise.all(clients.map((c, i) => c.ask(1, { nick: `u${i}` })));
  assert.deepEqual(hello.map((h) => h.count), Array(n).fill(1));
  let closed = 0;
  for (const c of clients) void c.closed.then(() => closed++);
  const talking = talk(clients);
  for (const generation of [2, 3, 4]) {
    const before = talking.answered();
    const outcome = await reloadJson(master);
    assert.equal(outcome.ok, true);
    assert.equal(outcome.generation, generation);
    assert.equal((outcome.connections as { webSockets?: number }).webSockets, n, 'every WebSocket moved');
    assert.equal(outcome.stillDraining, undefined, 'nothing left to drain: the old workers held only WebSockets, all moved');
    const drained = await master.waitEvent((r) => r.event === 'reload-drained' && r.generation === generation - 1);
    t.diagnostic(`reload to ${generation}: ${String(outcome.durationMs)} ms, drained ${String(drained.ms)} ms`);
    assert.deepEqual([drained.webSockets, drained.forced, drained.lost, drained.returned], [n, 0, 0, 0]);
    // The conversation goes on with the new generation.
    await Promise.all(clients.map((c) => c.until((m) => m.generation === String(generation))));
    assert.ok(talking.answered() > before);
  }
  await talking.stop();
  assert.deepEqual(talking.problems, []);
  assert.equal(closed, 0, 'no client saw a close');
  // Opened = clients: generation 1 accepted all of them; later ones accepted none, they were given them.
  for (const g of [1, 2, 3]) await master.waitStdout(`chat generation=${g} opened=`, 2);
  const opened = (g: number): number => [...master.stdout.matchAll(new RegExp(`chat generation=${g} opened=(\\d+)`, 'g'))].reduce((a, m) => a + Number(m[1]), 0);
  assert.deepEqual([opened(1), opened(2), opened(3)], [n, 0, 0]);
});

test('with hitless/ws, a moved WebSocket leaves the old worker\'s wss.clients (already when `moved` is called)', async (t) => {
  const master = await startMaster(t, {
    command: [process.execPath, fixture('websocket/chat.js')], workers: 1, env: { WS_MOVE: '1' },
    args: ['--config', drainConfig(t, { spread: 0 })],
  });
  const clients = await openClients(t, `ws://${master.address()}/`, 3);
  await Promise.all(clients.map((c, i) => c.ask(1, { nick: `u${i}` })));
  const outcome = await reloadJson(master);
  assert.equal((outcome.connections as { webSockets?: number }).webSockets, 3, 'every WebSocket moved');
  await master.waitStdout('chat generation=1 opened=');
  const line = /chat generation=1 opened=(\d+) clients=(\d+) listedWhenMoved=(\d+)/.exec(master.stdout);
  assert.ok(line, master.stdout);
  assert.deepEqual(line.slice(1).map(Number), [3, 0, 0], 'opened 3; at exit, and when moved() ran, none of them in wss.clients');
  const answers = await Promise.all(clients.map((c) => c.ask(2)));
  assert.deepEqual(answers.map((a) => [a.count, a.generation]), Array(3).fill([2, '2']), 'the moved WebSockets live on in the new worker');
  await master.stop();
});

test('with hitless/ws, what cannot move closes with 1001: permessage-deflate with context takeover; without it, the WebSockets move', async (t) => {
  for (const [deflate, moves] of [['takeover', false], ['none', true]] as const) {
    const master = await startMaster(t, {
      command: [process.execPath, fixture('websocket/chat.js')], workers: 1, env: { WS_MOVE: '1', WS_DEFLATE: deflate },
      args: ['--config', drainConfig(t, { spread: 0 })],
    });
    const clients = await openClients(t, `ws://${master.address()}/`, 5);
    await Promise.all(clients.map((c, i) => c.ask(1, { nick: `u${i}` })));
    assert.ok(clients.every((c) => c.ws.extensions.includes('permessage-deflate')));
    const outcome = await reloadJson(master);
    assert.equal(outcome.ok, true);
    if (moves) {
      const answers = await Promise.all(clients.map((c) => c.ask(2)));
      assert.deepEqual(answers.map((a) => [a.count, a.generation]), Array(5).fill([2, '2']), `deflate ${deflate}: moved, state intact, compressed both ways`);
      assert.equal((outcome.connections as { webSockets?: number }).webSockets, 5);
    } else {
      const closes = await Promise.all(clients.map((c) => c.closed));
      assert.deepEqual(closes.map((c) => c.code), Array(5).fill(1001), `deflate ${deflate}: closed well instead`);
      assert.equal((outcome.connections as { webSockets?: number }).webSockets ?? 0, 0);
    }
    await master.stop();
  }
});

test('with hitless/ws, WebSockets a new generation cannot adopt (no hitless/ws there) are not sent to the master (its stop says no worker takes them) and are closed with 1001', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-ws-back-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'hitless.json');
  writeFileSync(config, JSON.stringify({ env: { WS_MOVE: '1' }, drain: { spread: 0 } }));
  const master = await startMaster(t, { command: [process.execPath, fixture('websocket/chat.js')], workers: 1, args: ['--config', config] });
  const clients = await openClients(t, `ws://${master.address()}/`, 5);
  await Promise.all(clients.map((c, i) => c.ask(1, { nick: `u${i}` })));
  writeFileSync(config, JSON.stringify({ drain: { spread: 0 } }));
  const outcome = await reloadJson(master);
  assert.equal(outcome.ok, true);
  const closes = await Promise.all(clients.map((c) => c.closed));
  assert.deepEqual(closes.map((c) => c.code), Array(5).fill(1001));
  const drained = await master.waitEvent((r) => r.event === 'reload-drained' && r.generation === 1);
  assert.deepEqual([drained.webSockets ?? 0, drained.returned, drained.lost, drained.forced], [0, 0, 0, 0]);
});

test('WebSockets that come back to the old worker (the new workers take another listener\'s only) are closed at their turns in drain.spread, not all at once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-ws-back-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'hitless.json');
  writeFileSync(config, JSON.stringify({ env: { WS_MOVE: '1' }, drain: { spread: '3s' } }));
  const master = await startMaster(t, { command: [process.execPath, fixture('websocket/chat.js')], workers: 1, args: ['--config', config] });
  const clients = await openClients(t, `ws://${master.address()}/`, 6);
  await Promise.all(clients.map((c, i) => c.ask(1, { nick: `u${i}` })));
  writeFileSync(config, JSON.stringify({ env: { WS_MOVE: '1', WS_HELLO: 'elsewhere' }, drain: { spread: '3s' } }));
  assert.equal((await reloadJson(master)).ok, true);
  const closes = await Promise.all(clients.map((c) => c.closed));
  assert.deepEqual(closes.map((c) => c.code), Array(6).fill(1001));
  const at = closes.map((c) => c.at);
  // Six random turns in a 3 s window: only an old worker stalled for seconds would close them
  // together (before, they were all closed within a few ms of coming back).
  t.diagnostic(`closes spread over ${(Math.max(...at) - Math.min(...at)).toFixed(0)} ms`);
  assert.ok(Math.max(...at) - Math.min(...at) > 300, `the six closes came within ${(Math.max(...at) - Math.min(...at)).toFixed(0)} ms`);
  const drained = await master.waitEvent((r) => r.event === 'reload-drained' && r.generation === 1);
  assert.deepEqual([drained.webSockets ?? 0, drained.returned, drained.lost, drained.forced], [0, 6, 0, 0]);
});

test('with hitless/ws, a WebSocket whose client is in the middle of a fragmented message does not move: it gets 1001, the others move', async (t) => {
  const master = await startMaster(t, {
    command: [process.execPath, fixture('websocket/chat.js')], workers: 1, env: { WS_MOVE: '1' },
    args: ['--config', drainConfig(t, { spread: 0 })],
  });
  const clients = await openClients(t, `ws://${master.address()}/`, 3);
  await Promise.all(clients.map((c, i) => c.ask(1, { nick: `u${i}` })));
  const [halfway, ...others] = clients as [Client, ...Client[]];
  // The first fragment of a message whose end never comes (RFC 6455 §5.4).
  halfway.ws.send('{"seq": 2, "ni', { fin: false });
  const outcome = await reloadJson(master);
  assert.equal(outcome.ok, true);
  assert.equal((await halfway.closed).code, 1001);
  const answers = await Promise.all(others.map((c) => c.ask(2)));
  assert.deepEqual(answers.map((a) => [a.count, a.generation]), [[2, '2'], [2, '2']]);
  const drained = await master.waitEvent((r) => r.event === 'reload-drained' && r.generation === 1);
  assert.equal(drained.webSockets, 2);
});

test('with hitless/ws, `hitless scale` down moves the removed worker\'s WebSockets to the worker that stays: no close, every message answered, state intact', async (t) => {
  const n = 30;
  const master = await startMaster(t, { command: [process.execPath, fixture('websocket/chat.js')], workers: 2, env: { WS_MOVE: '1' } });
  const clients = await openClients(t, `ws://${master.address()}/`, n);
  await Promise.all(clients.map((c, i) => c.ask(1, { nick: `u${i}` })));
  let closed = 0;
  for (const c of clients) void c.closed.then(() => closed++);
  const talking = talk(clients);
  const [, removed] = (await master.status()).workers;
  const r = await master.cli(['scale', '1', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const outcome = JSON.parse(r.stdout) as { ok: boolean; connections?: { webSockets?: number; lost: number } };
  assert.equal(outcome.ok, true);
  const drained = await master.waitEvent((e) => e.event === 'reload-drained' && e.generation === 1);
  t.diagnostic(`scale 2 → 1: ${JSON.stringify(outcome.connections)}`);
  assert.ok(Number(drained.webSockets) > 0, 'the removed worker held WebSockets, and they moved');
  assert.equal(outcome.connections?.webSockets, drained.webSockets);
  assert.deepEqual([drained.forced, drained.lost, drained.returned], [0, 0, 0]);
  assert.equal(master.events('worker-exit').find((e) => e.pid === removed?.pid)?.code, 0);
  // Every client goes on talking, to the worker that stays: each gets another answer (its
  // nick and count carried on: talk() checks every answer).
  const seen = clients.map((c) => c.messages.length);
  await Promise.all(clients.map((c, i) => c.until(() => c.messages.length > (seen[i] ?? 0))));
  await talking.stop();
  assert.deepEqual(talking.problems, []);
  assert.equal(closed, 0, 'no client saw a close');
});
