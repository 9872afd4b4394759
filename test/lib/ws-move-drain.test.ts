/**
 * A drain that moves WebSockets (hitless/ws) is not over while any of them is on its way:
 * the master may give one back (no new worker takes it), and it must find this process
 * still draining, to be closed with 1001 rather than cut by the process's exit (seen on a
 * busy machine: a returned WebSocket's client got 1006).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { instrument } from '../../src/lib/track.js';

test('a WebSocket-moving drain is not empty until the mover settles (every moved one landed), then it may end', async (t) => {
  const server = http.createServer();
  const tracker = instrument(server);
  const wss = new WebSocketServer({ server });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const { port } = server.address() as { port: number };
  const client = new WebSocket(`ws://127.0.0.1:${port}/`);
  t.after(() => client.terminate());
  await once(client, 'open');
  assert.equal(tracker.upgraded.size, 1);

  let settle: (rest: Duplex[]) => void = () => {};
  let checks = 0;
  tracker.beginDrain({
    idleGrace: 1000,
    onUpgrade: undefined,
    spread: 0,
    closed: () => {},
    movedClosed: () => checks++,
    moveUpgraded: (sockets, moved) => {
      // What the sender does: the master took each one; this process's copy is destroyed.
      for (const s of sockets) {
        moved(s);
        s.destroy();
      }
      return new Promise<Duplex[]>((resolve) => (settle = resolve));
    },
  });
  await once(client, 'close');
  assert.equal(tracker.upgraded.size, 0, 'the moved WebSocket\'s copy here is closed');
  assert.equal(tracker.isEmpty(), false, 'still on its way: the drain is not over');
  const before = checks;
  settle([]);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(tracker.isEmpty(), true, 'every moved WebSocket landed: nothing left');
  assert.ok(checks > before, 'the drain is told to look again once the move settled');
  tracker.endDrain();
  wss.close();
});
