/**
 * The worker channel protocol (src/lib/protocol.ts): the one parser for both directions,
 * the builders, and the rule for a field of the wrong shape (a worker's message is refused,
 * a master's is obeyed without the field).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  closeHandle, connMessage, LATENCY_BOUNDS_MS, message, moveMessage, parseMessage, PROTOCOL, stopMessage, type StatsMessage,
} from '../../src/lib/protocol.js';

const stats: StatsMessage = {
  hitless: 1, type: 'stats', requests: { '2xx': 3, '3xx': 0, '4xx': 1, '5xx': 0 },
  latency: new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0), latencySum: 1.5,
};

test('protocol: every message a worker sends parses on the master side as sent', () => {
  for (const m of [
    { hitless: 1, type: 'hello', pid: 42, handover: true, listeners: ['http', 'admin'] },
    { hitless: 1, type: 'conn', listener: 'http' },
    { hitless: 1, type: 'conn', listener: 'http', left: 499 },
    { hitless: 1, type: 'handover-done', handedOver: 3, kept: 1 },
    { hitless: 1, type: 'drained', drained: 2, forced: 0 },
    { hitless: 1, type: 'lingering', upgraded: 812 },
    { hitless: 1, type: 'ws-hello', listeners: [] },
    { hitless: 1, type: 'ws-conn', listener: 'http', state: { user: 'ann', rooms: ['a'] }, protocol: 'chat.v2', deflate: { server_no_context_takeover: true, client_no_context_takeover: true, server_max_window_bits: 10 }, head: 'iQ==' },
    stats,
    // Issue 18: a worker that moves connections while serving, its count of a move, its open connections.
    { hitless: 1, type: 'hello', handover: true, listeners: ['http'], moves: true },
    { hitless: 1, type: 'move-done', moved: 3, kept: 1 },
    // h25 F2: of those drained, the WebSockets it closed.
    { hitless: 1, type: 'drained', drained: 4, forced: 0, upgraded: 3 },
    { ...stats, connections: 12 },
    // A canary's unanswered requests (a starved canary with none is lent more).
    { ...stats, connections: 12, busy: 0 },
  ]) assert.deepEqual(parseMessage(m, 'worker'), m);
});

test('protocol: every message the master sends parses on the worker side as built', () => {
  for (const m of [
    stopMessage(4), stopMessage(undefined), stopMessage(4, false), message({ type: 'landed' }), connMessage('http'), connMessage('http', true), connMessage(undefined),
    message({ type: 'ws-landed' }), message({ type: 'ws-conn', listener: 'http', state: [1, 'two'], returned: true }),
    moveMessage({ share: 1 / 3 }, 2, 5000), moveMessage({ count: 10 }, 4, 0), moveMessage({ count: 1 }, 1, 5000, true), message({ type: 'move-end' }),
  ]) {
    assert.deepEqual(parseMessage(m, 'master'), m);
  }
  assert.deepEqual(stopMessage(4), { hitless: PROTOCOL, type: 'stop', handover: true, window: 4 });
  assert.deepEqual(stopMessage(4, false), { hitless: PROTOCOL, type: 'stop', handover: true, window: 4, webSockets: false });
  assert.deepEqual(connMessage('api', true), { hitless: 1, type: 'conn', listener: 'api', returned: true });
  assert.deepEqual(moveMessage({ share: 0.5 }, 2, 5000), { hitless: 1, type: 'move', share: 0.5, window: 2, within: 5000 });
  assert.deepEqual(moveMessage({ count: 1 }, 1, 5000, true), { hitless: 1, type: 'move', count: 1, window: 1, within: 5000, recent: true });
});

test('protocol: each side knows only the types its peer may send', () => {
  assert.equal(parseMessage({ hitless: 1, type: 'stop', handover: true }, 'worker'), undefined, 'a worker cannot stop the master');
  assert.equal(parseMessage({ hitless: 1, type: 'landed' }, 'worker'), undefined);
  assert.equal(parseMessage({ hitless: 1, type: 'move', share: 1 }, 'worker'), undefined, 'a worker cannot ask the master to move');
  assert.equal(parseMessage({ hitless: 1, type: 'move-done', moved: 1 }, 'master'), undefined);
  assert.equal(parseMessage({ hitless: 1, type: 'hello' }, 'master'), undefined);
  assert.equal(parseMessage(stats, 'master'), undefined);
  assert.equal(parseMessage({ hitless: 1, type: 'lingering', upgraded: 1 }, 'master'), undefined);
  assert.equal(parseMessage({ hitless: 1, type: 'ws-landed' }, 'worker'), undefined);
  assert.equal(parseMessage({ hitless: 1, type: 'ws-hello' }, 'master'), undefined);
});

test('protocol: garbage, other versions and foreign messages are not messages', () => {
  for (const raw of ['READY=1', null, undefined, 42, [], [1], { type: 'conn' }, { hitless: 2, type: 'conn' }, { hitless: '1', type: 'conn' }, { hitless: 1 }, { hitless: 1, type: 'nope' }, { hitless: 1, type: 'toString' }]) {
    assert.equal(parseMessage(raw, 'worker'), undefined, JSON.stringify(raw));
    assert.equal(parseMessage(raw, 'master'), undefined, JSON.stringify(raw));
  }
});

test('protocol: a worker message with a field of the wrong shape is refused whole', () => {
  for (const m of [
    { hitless: 1, type: 'hello', listeners: ['a', 3] },
    { hitless: 1, type: 'hello', handover: 'yes' },
    { hitless: 1, type: 'conn', listener: 7 },
    { hitless: 1, type: 'conn', left: -1 },
    { hitless: 1, type: 'conn', left: 'many' },
    { hitless: 1, type: 'drained', drained: -1 },
    { hitless: 1, type: 'drained', drained: 1, upgraded: 'some' },
    { hitless: 1, type: 'handover-done', kept: 1.5 },
    { ...stats, latency: stats.latency.slice(1) },
    { ...stats, requests: { '2xx': 1 } },
    { ...stats, latencySum: Infinity },
    { hitless: 1, type: 'lingering' },
    { hitless: 1, type: 'lingering', upgraded: -2 },
    { hitless: 1, type: 'ws-hello', listeners: 'http' },
    { hitless: 1, type: 'ws-conn', deflate: { server_max_window_bits: 'x' } },
    { hitless: 1, type: 'ws-conn', head: 5 },
    { ...stats, connections: -1 },
    { ...stats, busy: 'some' },
    { hitless: 1, type: 'hello', moves: 1 },
    { hitless: 1, type: 'move-done', moved: 'all' },
  ]) assert.equal(parseMessage(m, 'worker'), undefined, JSON.stringify(m));
});

test('protocol: a master message with a field of the wrong shape is obeyed without that field (a stop still stops)', () => {
  assert.deepEqual(parseMessage({ hitless: 1, type: 'stop', handover: true, window: 0 }, 'master'), { hitless: 1, type: 'stop', handover: true });
  assert.deepEqual(parseMessage({ hitless: 1, type: 'stop', handover: 'yes', window: 2 }, 'master'), { hitless: 1, type: 'stop', window: 2 });
  assert.deepEqual(parseMessage({ hitless: 1, type: 'conn', listener: 7 }, 'master'), { hitless: 1, type: 'conn' });
  assert.deepEqual(parseMessage({ hitless: 1, type: 'move', share: 2, window: 2, within: -5 }, 'master'), { hitless: 1, type: 'move', window: 2 });
  assert.deepEqual(parseMessage({ hitless: 1, type: 'move', count: 1, recent: 'yes' }, 'master'), { hitless: 1, type: 'move', count: 1 });
});

test('protocol: closeHandle closes a raw handle or destroys a net object, once, and never throws', () => {
  let closed = 0;
  let destroyed = 0;
  closeHandle({ close: () => closed++ });
  closeHandle({ close: () => closed++, destroy: () => destroyed++ });
  closeHandle({ close: () => { throw new Error('already closed'); } });
  closeHandle(null);
  closeHandle(undefined);
  assert.deepEqual({ closed, destroyed }, { closed: 1, destroyed: 1 });
});
