/**
 * The master's `ws-landed` for a moved WebSocket can arrive in the same read of the channel
 * as Node's NODE_HANDLE_ACK for it (the master acknowledges the fd, forwards it and answers
 * before the old worker's loop read anything): Node emits both, in order, before any promise
 * continuation runs. The sender must have counted the WebSocket in transit by then, or the
 * landing is lost and its drain waits for it until the deadline (seen on a busy machine: the
 * client of a WebSocket that could not move got 1006 instead of 1001).
 *
 * The channel is simulated in this process the way Node delivers it: process.send stubbed,
 * the acknowledgement and the landing emitted as two process.nextTick callbacks of one read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';
import { CHANNEL_ENV, PROTOCOL } from '../../src/lib/protocol.js';
import { WebSocketSender } from '../../src/ws/send.js';
import type { WsInternals } from '../../src/ws/internals.js';

test('a ws-landed read together with the handle\'s acknowledgement still counts: the move resolves', { timeout: 10_000 }, async (t) => {
  process.env[CHANNEL_ENV] = String(PROTOCOL);
  const sent: unknown[] = [];
  const proc = process as unknown as { send?: unknown; connected?: boolean };
  Object.defineProperty(process, 'connected', { value: true, configurable: true, writable: true });
  proc.send = (message: unknown, _handle: unknown, _options: unknown, callback: (err: Error | null) => void): boolean => {
    sent.push(message);
    process.nextTick(callback, null);
    // One read of the channel a moment later: Node's handleMessage emits each message in a nextTick.
    setImmediate(() => {
      process.nextTick(() => process.emit('internalMessage' as never, { cmd: 'NODE_HANDLE_ACK' } as never));
      process.nextTick(() => process.emit('message', { hitless: PROTOCOL, type: 'ws-landed' }, undefined));
    });
    return true;
  };
  t.after(() => {
    delete proc.send;
    delete proc.connected;
  });

  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    wss.close();
    server.close();
  });
  const { port } = server.address() as { port: number };
  const client = new WebSocket(`ws://127.0.0.1:${port}/`);
  t.after(() => client.terminate());
  const [ws] = (await once(wss, 'connection')) as [WsInternals];
  await once(client, 'open');

  const sender = new WebSocketSender();
  let moved = 0;
  const rest = await sender.move([{ ws, source: { serialize: () => ({}), forget: () => {} } }], 'http', () => moved++);
  assert.deepEqual(rest, [], 'nothing stays');
  assert.equal(moved, 1);
  assert.deepEqual(sent.map((m) => (m as { type?: string }).type), ['ws-conn']);
});
