/**
 * WebSockets hitless/ws cannot move are served until their close 1001, like those of an app
 * without it: real master, real workers (the chat fixture), real `ws` clients sending every
 * 50 ms through the reload. Three ways a WebSocket finds no new worker: the new generation
 * does not call moveWebSockets() (the master knows before the drain, and says so in `stop`);
 * its workers take WebSockets of another listener only (the master learns it per WebSocket,
 * and gives each back to its old worker: `returned`); `hitless upgrade` (the new master's
 * workers never take WebSockets). Before, such a WebSocket stopped being read when the move
 * began, and came back (or stayed) unserved until its turn in the drain's spread: no reply
 * for 1–5 s, and every message sent meanwhile lost.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fixture, runCli, startMaster, type LogRecord } from '../helpers/master.js';
import { copyHitless, startFromSymlink } from '../master/upgrade-setup.js';
import { openClients, reloadJson, type Client } from './clients.js';

const CLIENTS = 8;
const EVERY_MS = 50;
/** The drain's spread: each WebSocket is closed at its turn in it (the bug kept them silent for up to that long). */
const SPREAD = '6s';
/**
 * Messages sent this shortly before the close may go unanswered: the server may have sent its
 * close before it read them (nothing may follow a close frame; an app without hitless/ws loses
 * them too), and on a busy machine a worker may be starved that long. Anything sent earlier
 * must have its reply. With the bug a socket was silent from the start of the drain to its
 * turn, a random point of the spread: 8 clients all drawing a turn within this margin of the
 * start is a chance of (2/6)^8, about 1 in 6,500.
 */
const IN_FLIGHT_MS = 2000;

interface Paced {
  /** When each `seq` was sent (performance.now()). */
  sentAt: Map<number, number>;
  done: Promise<{ code: number; at: number }>;
}

/** Sends `{seq}` every {@link EVERY_MS} ms from seq 2 (1 named the user) until the close. */
function pace(c: Client): Paced {
  const sentAt = new Map<number, number>();
  let seq = 2;
  const timer = setInterval(() => {
    sentAt.set(seq, performance.now());
    c.ws.send(JSON.stringify({ seq: seq++ }));
  }, EVERY_MS);
  const done = c.closed.then((closed) => {
    clearInterval(timer);
    return closed;
  });
  return { sentAt, done };
}

/**
 * Every message sent up to {@link IN_FLIGHT_MS} before the close has its reply, with the count
 * of a connection that lost nothing (state carried, order kept), and the close is 1001.
 */
async function checkServedUntilClosed(t: TestContext, clients: Client[], paced: Paced[]): Promise<void> {
  const closes = await Promise.all(paced.map((p) => p.done));
  assert.deepEqual(closes.map((c) => c.code), Array(clients.length).fill(1001));
  clients.forEach((c, i) => {
    const p = paced[i]!;
    const closeAt = closes[i]!.at;
    const answers = new Map(c.messages.filter((m) => typeof m.seq === 'number').map((m) => [m.seq as number, m]));
    const lost = [...p.sentAt].filter(([seq, at]) => at < closeAt - IN_FLIGHT_MS && !answers.has(seq)).map(([seq]) => seq);
    const unanswered = [...p.sentAt.keys()].filter((seq) => !answers.has(seq)).length;
    t.diagnostic(`client ${i}: sent ${p.sentAt.size}, unanswered ${unanswered} (sent within ${IN_FLIGHT_MS} ms of the close: allowed)`);
    assert.deepEqual(lost, [], `client ${i}: no reply to messages sent well before the close`);
    for (const [seq, a] of answers) assert.equal(a.count, seq, `client ${i}: seq ${seq} answered with count ${String(a.count)}`);
    assert.ok(p.sentAt.size > 0);
  });
}

async function chatApp(t: TestContext, env: Record<string, string>): Promise<{ config: string; write: (env: Record<string, string>) => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-ws-stay-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'hitless.json');
  const write = (e: Record<string, string>): void => writeFileSync(config, JSON.stringify({ env: e, drain: { spread: SPREAD } }));
  write(env);
  return { config, write };
}

async function reloadServed(t: TestContext, to: Record<string, string>): Promise<LogRecord> {
  const { config, write } = await chatApp(t, { WS_MOVE: '1' });
  const master = await startMaster(t, { command: [process.execPath, fixture('websocket/chat.js')], workers: 1, args: ['--config', config] });
  const clients = await openClients(t, `ws://${master.address()}/`, CLIENTS);
  await Promise.all(clients.map((c, i) => c.ask(1, { nick: `u${i}` })));
  const paced = clients.map(pace);
  write(to);
  assert.equal((await reloadJson(master)).ok, true);
  await checkServedUntilClosed(t, clients, paced);
  return master.waitEvent((r) => r.event === 'reload-drained' && r.generation === 1);
}

test('with hitless/ws, WebSockets a new generation without moveWebSockets() cannot take are served until their close 1001 at their turn: every message sent before it answered, none paused', async (t) => {
  const drained = await reloadServed(t, {});
  // The master said so in `stop`: none was sent to it and given back.
  assert.deepEqual([drained.webSockets ?? 0, drained.returned, drained.lost, drained.forced], [0, 0, 0, 0]);
});

test('with hitless/ws, WebSockets given back to their old worker (`returned`: the new workers take another listener\'s only) are served there until their close 1001: every message sent before it answered', async (t) => {
  const drained = await reloadServed(t, { WS_MOVE: '1', WS_HELLO: 'elsewhere' });
  assert.deepEqual([drained.webSockets ?? 0, drained.returned, drained.lost, drained.forced], [0, CLIENTS, 0, 0]);
});

test('with hitless/ws, `hitless upgrade` (the new master takes no WebSockets) leaves each WebSocket served by its old worker until its close 1001: every message sent before it answered, and its outcome counts them as WebSockets closed (h25 F2)', { timeout: 120_000 }, async (t) => {
  const { master, dir, runDir } = await startFromSymlink(t, {
    command: [process.execPath, fixture('websocket/chat.js')], workers: 1, args: ['--config', 'hitless.json'],
    files: { 'hitless.json': JSON.stringify({ env: { WS_MOVE: '1' }, drain: { spread: SPREAD } }) },
  });
  const clients = await openClients(t, `ws://${master.address()}/`, CLIENTS);
  await Promise.all(clients.map((c, i) => c.ask(1, { nick: `u${i}` })));
  const paced = clients.map(pace);
  const up = await runCli(['upgrade', '--json', '--run-dir', runDir, '--exec', copyHitless(join(dir, 'copy'), '0.1.0-ws-upgrade-test')]);
  assert.equal(up.code, 0, up.stdout + up.stderr);
  await checkServedUntilClosed(t, clients, paced);
  const drained = await master.waitEvent((r) => r.event === 'reload-drained' && r.generation === 1);
  assert.deepEqual([drained.returned, drained.lost, drained.forced], [0, 0, 0]);
  // h25 F2: the outcome says the WebSockets were closed, not only "drained" (with the HTTP connections).
  assert.equal(drained.webSocketsClosed, CLIENTS, JSON.stringify(drained));
  const outcome = JSON.parse(up.stdout) as { connections: { drained: number; webSocketsClosed?: number } };
  assert.equal(outcome.connections.webSocketsClosed, CLIENTS, up.stdout);
  assert.ok(outcome.connections.drained >= CLIENTS, up.stdout);
  assert.equal((await runCli(['stop', '--run-dir', runDir])).code, 0);
});
