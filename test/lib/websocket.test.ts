/**
 * Upgraded (WebSocket) connections leave Node's HTTP machinery, so closeAllConnections()
 * never sees them (node #53536). shutdown() tracks them, announces them through onUpgrade,
 * counts them, and destroys them at the deadline.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { shutdown, track } from '../../src/index.js';
import { RawConnection } from '../helpers/http.js';
import { listenLocal } from './helpers/servers.js';

async function wsServer(t: import('node:test').TestContext) {
  const server = http.createServer((_req, res) => res.end('plain'));
  track(server, { signals: false });
  const wss = new WebSocketServer({ server });
  const bySocket = new Map<Duplex, WebSocket>();
  wss.on('connection', (ws, req) => {
    bySocket.set(req.socket, ws);
    ws.on('message', (data) => ws.send(data));
  });
  t.after(() => wss.close());
  const port = await listenLocal(t, server);
  return { server, port, bySocket };
}

test('upgraded sockets are not ignored (node #53536): onUpgrade sends close 1001, the client sees 1001, counted as drained', async (t) => {
  const { server, port, bySocket } = await wsServer(t);
  const client = new WebSocket(`ws://127.0.0.1:${port}/`);
  t.after(() => client.terminate());
  await once(client, 'open');
  client.send('ping');
  await once(client, 'message');
  const closed = once(client, 'close');
  const result = await shutdown(server, {
    timeout: 60_000,
    onUpgrade: (socket) => bySocket.get(socket)?.close(1001, 'going away'),
  });
  const [code] = (await closed) as [number];
  assert.equal(code, 1001);
  assert.equal(result.timedOut, false);
  assert.equal(result.drained.upgraded, 1);
  assert.equal(result.forced.upgraded, 0);
});

test('an upgraded socket the application does not close is destroyed at the deadline and counted as forced', async (t) => {
  const { server, port } = await wsServer(t);
  const client = new WebSocket(`ws://127.0.0.1:${port}/`);
  t.after(() => client.terminate());
  await once(client, 'open');
  const closed = once(client, 'close');
  const result = await shutdown(server, { timeout: 50 });
  assert.equal(result.timedOut, true);
  assert.equal(result.forced.upgraded, 1);
  const [code] = (await closed) as [number];
  assert.equal(code, 1006, 'abnormal closure: the socket was destroyed');
});

test('a server without upgrade listeners still answers Upgrade requests as plain requests once tracked', async (t) => {
  const server = http.createServer((_req, res) => res.end('plain'));
  track(server, { signals: false });
  const port = await listenLocal(t, server);
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  const res = await conn.request('GET', '/', { Connection: 'Upgrade', Upgrade: 'websocket' });
  assert.equal(res.status, 200);
  assert.equal(res.body, 'plain');
});
