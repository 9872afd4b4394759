// The WebSocket example users are pointed to (examples/websockets/server.cjs, shipped in the
// package; h25 F1: docs/websockets.md had only a fragment): run as it is under a real master,
// a client's WebSocket stays open across `hitless reload` and keeps its state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { root, runCli, startMaster } from '../helpers/master.js';

const dir = join(root, 'examples', 'websockets');

test('examples/websockets: its hitless.json validates, and a WebSocket held across a reload stays open with its state (count, generation it opened on)', { timeout: 120_000 }, async (t) => {
  const check = await runCli(['check', '--config', join(dir, 'hitless.json')]);
  assert.equal(check.code, 0, check.stdout + check.stderr);

  const master = await startMaster(t, { command: [process.execPath, join(dir, 'server.cjs')], workers: 2, cwd: dir });
  const page = await fetch(master.url('/'));
  assert.equal(await page.text(), 'generation 1: open a WebSocket here\n');

  const ws = new WebSocket(`ws://${master.address()}/`);
  t.after(() => ws.terminate());
  let closed: number | undefined;
  ws.on('close', (code: number) => (closed = code));
  await once(ws, 'open');
  const say = async (text: string): Promise<Record<string, unknown>> => {
    const reply = once(ws, 'message');
    ws.send(text);
    const [data] = await reply;
    return JSON.parse(String(data)) as Record<string, unknown>;
  };
  assert.deepEqual(await say('a'), { echo: 'a', count: 1, opened: 1, generation: 1 });
  assert.deepEqual(await say('b'), { echo: 'b', count: 2, opened: 1, generation: 1 });

  const reload = await master.reload();
  assert.equal(reload.code, 0, reload.stdout + reload.stderr);
  assert.match(reload.stdout, /1 WebSocket moved/);

  // Same connection, its state carried: the count goes on, answered by generation 2.
  assert.deepEqual(await say('c'), { echo: 'c', count: 3, opened: 1, generation: 2 });
  assert.equal(closed, undefined, 'the client saw no close');
  assert.equal(ws.readyState, WebSocket.OPEN);

  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
