/**
 * hitless/ws refuses bad input with ERR_INVALID_OPTION naming the option and the fix (the old
 * version keeps serving: nothing is registered).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { moveWebSockets } from '../../src/ws/index.js';

test('moveWebSockets(): a missing serialize or adopt, an unknown option, or a noServer server without `server` is refused with the fix', () => {
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  const refused = (options: unknown, pattern: RegExp): void => {
    assert.throws(() => moveWebSockets(wss, options as never), (e: Error & { code?: string }) => e.code === 'ERR_INVALID_OPTION' && pattern.test(e.message));
  };
  refused({ adopt: () => {} }, /option "serialize" must be a function/);
  refused({ serialize: () => ({}) }, /option "adopt" must be a function.*Fix: \{ adopt: \(ws, state\) =>/);
  refused({ serialize: () => ({}), adopt: () => {}, adpot: 1 }, /unknown option "adpot"/);
  const detached = new WebSocketServer({ noServer: true });
  assert.throws(() => moveWebSockets(detached, { serialize: () => ({}), adopt: () => {} }), /option "server" must be the http server of a noServer WebSocketServer/);
  const unregister = moveWebSockets(detached, { serialize: () => ({}), adopt: () => {}, server });
  assert.equal(typeof unregister, 'function');
  unregister();
  wss.close();
  detached.close();
});
