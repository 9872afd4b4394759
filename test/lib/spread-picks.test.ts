/** Which connections a move picks (src/lib/move.ts, issue 18): spread over how much each is used. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recentPicks, spreadPicks } from '../../src/lib/move.js';

type Conn = Parameters<typeof spreadPicks>[0][number]['conn'];
const conn = (requests: number, inFlight = 0): { conn: Conn; id: string } =>
  ({ conn: { requests, inFlight, partial: false } as Conn, id: `${requests}/${inFlight}` });

test('spreadPicks: a third of a pool where 5 of 60 connections carry the requests (nginx reuses the last released): the picks carry about a third of them, not none and not all', () => {
  const pool = [...Array.from({ length: 55 }, () => conn(1)), ...[900, 800, 700, 600, 500].map((n) => conn(n))];
  const picks = spreadPicks(pool, 20);
  assert.equal(picks.length, 20);
  assert.equal(new Set(picks).size, 20, 'each connection once');
  const share = picks.reduce((a, p) => a + p.conn.requests, 0) / pool.reduce((a, p) => a + p.conn.requests, 0);
  assert.ok(share > 0.15 && share < 0.5, `share of the requests the picks carried: ${share.toFixed(2)}`);
});

test('spreadPicks: from the middle of each equal part of the ranking; asking for more than there are gives them all, once each', () => {
  const pool = [6, 1, 5, 2, 4, 3].map((n) => conn(n));
  assert.deepEqual(spreadPicks(pool, 2).map((p) => p.conn.requests), [5, 2]);
  assert.deepEqual(spreadPicks(pool, 3).map((p) => p.conn.requests), [5, 3, 1]);
  assert.deepEqual(spreadPicks(pool, 9).map((p) => p.conn.requests), [6, 5, 4, 3, 2, 1]);
  assert.deepEqual(spreadPicks(pool, 0), []);
});

test('recentPicks: the connections that began a request last (a `move` with `recent`: a starved canary gets what a pool reuses first), however little they carried before', () => {
  const pool = [[900, 3], [5, 42], [700, 7], [1, 41], [300, 12]].map(([requests, lastUse]) => ({ conn: { requests, lastUse, inFlight: 0, partial: false } as Conn }));
  assert.deepEqual(recentPicks(pool, 1).map((p) => p.conn.lastUse), [42]);
  assert.deepEqual(recentPicks(pool, 2).map((p) => p.conn.lastUse), [42, 41]);
  assert.equal(recentPicks(pool, 9).length, 5);
  assert.deepEqual(recentPicks(pool, 0), []);
});
