// The load client the tests and benchmarks count failures with (bench/loadgen.ts through
// test/helpers/load.ts), against small real servers that lose requests on purpose. What it
// guards: every lost request is counted exactly once, in wrk's category, and never re-sent
// (the server's count of requests read = the client's answered + lost-after-read), and
// the shapes of load the reload tests need (keep-alive, Connection: close, paced, POST).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { now, openedBetween, startLoad } from '../helpers/load.js';
import { startLoad as startClient, Kind } from '../../bench/loadgen.js';
import { closedPort, startServer, type Conn } from './servers.js';

const kinds = (r: { records: { kind: Uint8Array } }, kind: number): number => r.records.kind.filter((k) => k === kind).length;

test('healthy keep-alive server: exactly N requests, all answered, one connection per slot, generations counted per response', { timeout: 30_000 }, async (t) => {
  const ids = new Map<Conn, string>();
  const s = await startServer(t, { answerWith: (_n, conn) => ids.get(conn) ?? (ids.set(conn, String(1 + (ids.size % 2))), ids.get(conn)) });
  const r = await startLoad(t, { url: s.url, connections: 8, requests: 2000 }).done;
  assert.equal(r.requests, 2000, r.raw);
  assert.equal(r.ok, 2000, r.raw);
  assert.equal(r.failed, 0, r.raw);
  assert.equal(s.counts.received, 2000);
  assert.equal(s.counts.accepted, 8);
  assert.equal(r.opened, 8);
  assert.equal(r.records.fresh.filter((f) => f === 1).length, 8);
  assert.equal(r.idleClosed, 0);
  assert.deepEqual(r.byAnswer, s.counts.byAnswer);
  assert.deepEqual(r.generations, ['1', '2']);
});

test('Connection: close load opens one connection per request and sends the header', { timeout: 30_000 }, async (t) => {
  let withHeader = 0;
  const s = await startServer(t, { action: (_n, req) => ((withHeader += Number(req.headers.connection === 'close')), 'answer'), endAfterAnswer: true });
  const r = await startLoad(t, { url: s.url, connections: 5, requests: 300, close: true }).done;
  assert.deepEqual([r.requests, r.ok, r.failed], [300, 300, 0], r.raw);
  assert.equal(withHeader, 300);
  assert.equal(s.counts.accepted, 300);
  assert.equal(r.opened, 300);
  assert.equal(r.records.fresh.every((f) => f === 1), true);
});

test('server resets and early closes mid-request: each lost request counted once as a read error, none re-sent', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t, { action: (n) => (n % 5 === 0 ? 'reset' : n % 7 === 0 ? 'close' : 'answer') });
  const r = await startLoad(t, { url: s.url, connections: 10, requests: 500 }).done;
  assert.equal(r.requests, 500, r.raw);
  assert.equal(s.counts.received, 500, 'the server read every request once: nothing was re-sent');
  assert.equal(r.ok, s.counts.answered, r.raw);
  assert.equal(kinds(r, Kind.reset), s.counts.reset, r.raw);
  assert.equal(kinds(r, Kind.closed), s.counts.closed, r.raw);
  assert.equal(r.errors.read, s.counts.reset + s.counts.closed, r.raw);
  assert.deepEqual([r.errors.connect, r.errors.write, r.errors.timeout, r.non2xx], [0, 0, 0, 0], r.raw);
  assert.equal(r.failed, 500 - s.counts.answered);
  assert.equal(r.codes.ECONNRESET, s.counts.reset);
  // A loss costs the connection: the slot's next request (if any) opens a new one.
  assert.equal(r.opened, s.counts.accepted);
  assert.equal(r.records.fresh.filter((f) => f === 1).length, s.counts.accepted);
  assert.ok(s.counts.accepted > 10 && s.counts.accepted <= 10 + s.counts.reset + s.counts.closed, r.raw);
});

test('a server that closes idle keep-alive connections between requests: no failure, a connection re-opened per request', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t, { endAfterAnswer: true });
  // The server ends each connection right after answering; 30 ms of think time leaves the
  // client ample time to see that before its next request.
  const before = now();
  const r = await startLoad(t, { url: s.url, connections: 5, requests: 60, thinkMs: [30, 40] }).done;
  assert.deepEqual([r.requests, r.ok, r.failed], [60, 60, 0], r.raw);
  assert.equal(openedBetween(r, before, now()), 60);
  assert.equal(openedBetween(r, 0, before), 0);
  assert.equal(s.counts.received, 60);
  assert.equal(s.counts.accepted, 60);
  assert.equal(r.opened, 60);
  assert.ok(r.idleClosed >= 60 - 5 && r.idleClosed <= 60, r.raw);
  assert.ok(s.conns.every((c) => c.arrivals.length === 1));
});

test('racing idle closes (server closes or resets after 0–3 ms idle, client thinks 0–3 ms): answered + lost = sent, each counted once', { timeout: 30_000 }, async (t) => {
  const idle = new Map<Conn, NodeJS.Timeout>();
  const s = await startServer(t, {
    action: (_n, _req, conn) => {
      clearTimeout(idle.get(conn));
      // Arm the idle close once the answer is out (this runs before the write).
      setImmediate(() => idle.set(conn, setTimeout(() => (Math.random() < 0.5 ? conn.socket.destroy() : conn.socket.resetAndDestroy()), Math.random() * 3)));
      return 'answer';
    },
  });
  t.after(() => idle.forEach((timer) => clearTimeout(timer)));
  const r = await startLoad(t, { url: s.url, connections: 20, requests: 1500, thinkMs: 3 }).done;
  assert.equal(r.requests, 1500, r.raw);
  assert.equal(r.ok, s.counts.answered, `answered by the server = 2xx at the client: ${r.raw}`);
  assert.equal(s.counts.received, s.counts.answered);
  assert.equal(r.failed, 1500 - r.ok, r.raw);
  assert.ok(r.failed > 0, `the race lost no request, so this test proved nothing: ${r.raw}`);
  assert.equal(r.errors.connect + r.errors.timeout + r.non2xx, 0, r.raw);
  assert.equal(r.opened, s.counts.accepted);
});

test('refused connections (a port whose server was closed): every attempt is one connect error, 10 ms apart per slot', { timeout: 30_000 }, async (t) => {
  const port = await closedPort();
  const started = performance.now();
  const r = await startLoad(t, { url: `http://127.0.0.1:${port}/`, connections: 3, requests: 30 }).done;
  assert.deepEqual([r.requests, r.errors.connect, r.ok, r.opened], [30, 30, 0, 0], r.raw);
  assert.equal(r.failed, 30);
  assert.equal(r.codes.ECONNREFUSED, 30);
  assert.ok(performance.now() - started >= 9 * 10, 'a refused slot backs off before trying again');
});

test('a request without an answer times out once, and its connection is dropped', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t, { action: (n) => (n % 2 === 0 ? 'ignore' : 'answer') });
  const r = await startLoad(t, { url: s.url, connections: 2, requests: 8, timeoutMs: 1000 }).done;
  assert.equal(r.requests, 8, r.raw);
  assert.equal(s.counts.received, 8);
  assert.equal(r.errors.timeout, s.counts.ignored, r.raw);
  assert.equal(r.ok, s.counts.answered);
  assert.equal(r.opened, s.counts.accepted);
  assert.ok(s.counts.accepted > 2 && s.counts.accepted <= 2 + s.counts.ignored, r.raw);
});

test('paced load: think time between requests on each connection is honoured, connection count is exact', { timeout: 30_000 }, async (t) => {
  const s = await startServer(t);
  const r = await startLoad(t, { url: s.url, connections: 200, durationMs: 1500, thinkMs: [50, 100] }).done;
  assert.equal(r.failed, 0, r.raw);
  assert.equal(r.ok, s.counts.received);
  assert.deepEqual([s.counts.accepted, s.counts.peakOpen, r.opened], [200, 200, 200]);
  let gaps = 0;
  for (const c of s.conns) {
    for (let i = 1; i < c.arrivals.length; i++, gaps++) {
      const gap = (c.arrivals[i] ?? 0) - (c.arrivals[i - 1] ?? 0);
      assert.ok(gap >= 49, `a request came ${gap.toFixed(1)} ms after the previous one on its connection`);
    }
  }
  assert.ok(gaps > 0);
  // 1.5 s at 50–100 ms between requests: at most 1500/50 + 1 per connection.
  assert.ok(r.requests <= 200 * 31, r.raw);
});

test('2000 paced keep-alive connections (the hand-over tests\' shape): all open, none failed', { timeout: 60_000 }, async (t) => {
  // Stopped once the server saw every connection and each slot's first request, whatever the
  // machine's load; 30 s is only the upper bound.
  let all!: () => void;
  const allIn = new Promise<void>((resolve) => (all = resolve));
  const firsts = new Set<Conn>();
  const s = await startServer(t, { action: (_n, _req, conn) => ((firsts.add(conn).size === 2000 && all()), 'answer') });
  const run = startLoad(t, { url: s.url, connections: 2000, durationMs: 30_000, thinkMs: 1000 });
  await allIn;
  const r = await run.stop();
  assert.equal(r.failed, 0, r.raw);
  assert.equal(r.opened, 2000);
  assert.equal(s.counts.accepted, 2000);
  assert.ok(r.requests >= 2000, r.raw);
});

test('POST with a body: the server receives each body with its Content-Length', { timeout: 30_000 }, async (t) => {
  const body = JSON.stringify({ user: 'ü', n: 42 });
  let good = 0;
  const s = await startServer(t, {
    action: (_n, req) => {
      if (req.method === 'POST' && Buffer.from(req.body, 'latin1').toString('utf8') === body && req.path === '/submit?x=1') good++;
      return 'answer';
    },
  });
  const r = await startLoad(t, { url: `${s.url}submit?x=1`, connections: 4, requests: 100, method: 'POST', body, headers: { 'Content-Type': 'application/json' } }).done;
  assert.deepEqual([r.requests, r.ok, good], [100, 100, 100], r.raw);
});

test('chunked, interim 1xx, close-delimited and non-2xx responses are parsed and counted like wrk', { timeout: 30_000 }, async (t) => {
  const chunked = await startServer(t, {
    answerWith: () => '7',
    write: (socket, g) => {
      socket.write(`HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Generation: ${g}\r\n\r\n3\r\nab`);
      setImmediate(() => socket.write('c\r\n0\r\n\r\n'));
    },
  });
  const a = await startLoad(t, { url: chunked.url, connections: 3, requests: 60 }).done;
  assert.deepEqual([a.ok, a.failed, chunked.counts.accepted], [60, 0, 3], a.raw);
  assert.deepEqual(a.generations, ['7']);

  const eof = await startServer(t, { write: (socket) => socket.end('HTTP/1.0 200 OK\r\n\r\nuntil the end') });
  const b = await startLoad(t, { url: eof.url, connections: 3, requests: 30 }).done;
  assert.deepEqual([b.ok, b.failed, eof.counts.accepted], [30, 0, 30], b.raw);

  const errors = await startServer(t, { write: (socket) => socket.write('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n') });
  const c = await startLoad(t, { url: errors.url, connections: 2, requests: 20 }).done;
  assert.deepEqual([c.ok, c.non2xx, c.failed, c.errors.read], [0, 20, 20, 0], c.raw);
});

test('unix socket target, and stop() ends a long run early with every request in flight completed', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-loadgen-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let hundred!: () => void;
  const reached = new Promise<void>((resolve) => (hundred = resolve));
  const s = await startServer(t, { path: join(dir, 's.sock'), action: (n) => ((n === 100 && hundred()), 'answer') });
  const run = startLoad(t, { socketPath: join(dir, 's.sock'), connections: 4, durationMs: 60_000 });
  await reached;
  const r = await run.stop();
  assert.ok(r.requests > 0, r.raw);
  assert.equal(r.failed, 0, r.raw);
  assert.equal(r.ok, s.counts.received, 'stop() waits for in-flight requests: none left unanswered');
});

test('non-loopback targets and unbounded connection counts are refused', () => {
  assert.throws(() => startClient({ host: '10.0.0.1', port: 80, connections: 1 }), /loopback only/);
  assert.throws(() => startClient({ host: '127.0.0.1', port: 80, connections: 0 }), /positive integer/);
});
