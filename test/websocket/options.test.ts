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
  // Not a WebSocketServer, or a `server` that is not one (regression: a bare TypeError).
  const valid = { serialize: () => ({}), adopt: () => {} };
  for (const [value, shown] of [[42, '42'], [null, 'null'], [{}, '\\{\\}'], [server, 'Server']] as const) {
    assert.throws(() => moveWebSockets(value as never, valid), (e: Error & { code?: string }) => e.code === 'ERR_INVALID_OPTION' &&
      new RegExp(`option "wss" must be a WebSocketServer of the ws package; got ${shown}.*Fix: moveWebSockets\\(new WebSocketServer`).test(e.message));
  }
  assert.throws(() => moveWebSockets(detached, { ...valid, server: 42 as never }), (e: Error & { code?: string }) => e.code === 'ERR_INVALID_OPTION' &&
    /option "server" must be a net\.Server \(http, https or http2 server\); got 42\. Fix: \{ server \}/.test(e.message));
  unregister();
  wss.close();
  detached.close();
});
