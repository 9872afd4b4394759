/**
 * Upgraded (WebSocket) connections leave Node's HTTP machinery, so closeAllConnections()
 * never sees them (node #53536). shutdown() tracks them, sends each WebSocket a close 1001 at
 * a frame boundary (ws's own close, or a frame of its own where another library wrote whole
 * frames), spread over a window, or calls the application's onUpgrade instead; counts them,
 * and destroys what is left at the deadline (issue 24).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { shutdown, track } from '../../src/index.js';
import { RawConnection } from '../helpers/http.js';
import { deferred, listenLocal } from './helpers/servers.js';
import { selfSignedCert } from './helpers/tls.js';

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

test('without onUpgrade, hitless closes a ws WebSocket itself with 1001 through ws\'s own close (issue 24), counted as drained', async (t) => {
  const { server, port } = await wsServer(t);
  const client = new WebSocket(`ws://127.0.0.1:${port}/`);
  t.after(() => client.terminate());
  await once(client, 'open');
  const closed = once(client, 'close');
  const result = await shutdown(server, { timeout: 60_000 });
  const [code, reason] = (await closed) as [number, Buffer];
  assert.equal(code, 1001);
  assert.equal(reason.toString(), 'going away');
  assert.equal(result.timedOut, false);
  assert.deepEqual([result.drained.upgraded, result.forced.upgraded], [1, 0]);
});

test('an application whose onUpgrade does nothing keeps its upgraded sockets until the deadline: destroyed, counted as forced', async (t) => {
  const { server, port } = await wsServer(t);
  const client = new WebSocket(`ws://127.0.0.1:${port}/`);
  t.after(() => client.terminate());
  await once(client, 'open');
  const closed = once(client, 'close');
  const result = await shutdown(server, { timeout: 50, onUpgrade: () => {} });
  assert.equal(result.timedOut, true);
  assert.equal(result.forced.upgraded, 1);
  const [code] = (await closed) as [number];
  assert.equal(code, 1006, 'abnormal closure: the socket was destroyed');
});

test('closes are spread over the window: each client gets 1001, one after another, the last no sooner than (n-1)/n of the window', async (t) => {
  const { server, port } = await wsServer(t);
  const n = 8;
  const spread = 800;
  const clients = await Promise.all(Array.from({ length: n }, async () => {
    const c = new WebSocket(`ws://127.0.0.1:${port}/`);
    t.after(() => c.terminate());
    await once(c, 'open');
    return c;
  }));
  const began = performance.now();
  const closes = clients.map((c) => once(c, 'close').then(([code]) => ({ code: code as number, at: performance.now() - began })));
  const result = await shutdown(server, { timeout: 60_000, spread });
  const got = await Promise.all(closes);
  assert.deepEqual(got.map((g) => g.code), Array(n).fill(1001));
  assert.equal(result.drained.upgraded, n);
  // Timers never fire early: the last turn is at spread * (n - 1 + phase) / n, phase in [0, 1).
  const last = Math.max(...got.map((g) => g.at));
  assert.ok(last >= (spread * (n - 1)) / n - 1, `last close after ${last.toFixed(0)} ms`);
});

/** A WebSocket server written by hand (not ws): it answers the handshake and writes frames as the test says. */
async function rawServer(t: import('node:test').TestContext) {
  const server = http.createServer();
  track(server, { signals: false });
  const sockets: Duplex[] = [];
  const opened = deferred<Duplex>();
  server.on('upgrade', (req, socket) => {
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('error', () => {});
    sockets.push(socket);
    opened.resolve(socket);
  });
  const port = await listenLocal(t, server);
  return { server, port, opened: opened.promise };
}

/** An unmasked text frame from the server. */
const textFrame = (text: string): Buffer => Buffer.concat([Buffer.from([0x81, Buffer.byteLength(text)]), Buffer.from(text)]);

test('another WebSocket library (no ws object): the close frame waits for the frame being written to end, then the client sees 1001 and every message whole', async (t) => {
  const { server, port, opened } = await rawServer(t);
  const client = new WebSocket(`ws://127.0.0.1:${port}/`);
  t.after(() => client.terminate());
  const messages: string[] = [];
  client.on('message', (m) => messages.push(m.toString()));
  await once(client, 'open');
  const socket = await opened;
  const frame = textFrame('a frame written in two parts');
  socket.write(frame.subarray(0, 9)); // the frame is half written when the drain begins
  const closed = once(client, 'close');
  // shutdown() asks for the close at once (no spread): it must wait for the rest of the frame.
  const result = shutdown(server, { timeout: 60_000, spread: 0 });
  socket.write(frame.subarray(9));
  socket.write(textFrame('after the close: dropped'));
  const [code] = (await closed) as [number];
  assert.equal(code, 1001);
  assert.deepEqual(messages, ['a frame written in two parts']);
  assert.deepEqual((await result).drained.upgraded, 1);
});

test('an upgraded connection that is not a WebSocket is left alone until the deadline (no bytes written into another protocol)', async (t) => {
  const server = http.createServer();
  track(server, { signals: false });
  server.on('upgrade', (_req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: custom\r\nConnection: Upgrade\r\n\r\n');
    socket.on('error', () => {});
  });
  const port = await listenLocal(t, server);
  const conn = net.connect(port, '127.0.0.1');
  t.after(() => conn.destroy());
  conn.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: custom\r\n\r\n');
  let received = '';
  conn.on('data', (d: Buffer) => (received += d.toString('latin1')));
  await new Promise<void>((resolve) => conn.on('data', () => received.includes('\r\n\r\n') && resolve()));
  const result = await shutdown(server, { timeout: 100 });
  assert.equal(result.forced.upgraded, 1);
  assert.ok(received.endsWith('\r\n\r\n'), 'nothing but the 101 was written');
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

test('wss:// (TLS terminated by the Node server): the WebSocket gets 1001 too, through the TLS socket', async (t) => {
  const server = https.createServer(selfSignedCert());
  track(server, { signals: false });
  const wss = new WebSocketServer({ server });
  t.after(() => wss.close());
  const port = await listenLocal(t, server);
  const client = new WebSocket(`wss://127.0.0.1:${port}/`, { rejectUnauthorized: false });
  t.after(() => client.terminate());
  await once(client, 'open');
  const closed = once(client, 'close');
  const result = await shutdown(server, { timeout: 60_000 });
  assert.equal(((await closed) as [number])[0], 1001);
  assert.deepEqual([result.drained.upgraded, result.forced.upgraded], [1, 0]);
});
