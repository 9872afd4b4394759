// Hand-over seen by a real browser (Chromium, headless, driven over the DevTools protocol):
// its own connection pool, its own fetch() and WebSocket, none of it written here. The page
// (test/fixtures/master/browser-app.ts) acts like a user while the master reloads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fixture, startMaster, type MasterProcess } from '../helpers/master.js';
import { openPage } from '../helpers/chromium.js';
import { needs } from '../helpers/tools.js';

interface Answer {
  user: number;
  generation: number;
  pid: number;
  port: number;
}
interface Results {
  answers: Answer[];
  failures: unknown[];
  last: Answer[];
  ws: { sent: number; answers: { seq: number; count: number; generation: number; port: number }[]; events: string[] };
}

async function reloadOk(master: MasterProcess): Promise<void> {
  const r = await master.reload();
  assert.equal(r.code, 0, `hitless reload failed:\n${r.stdout}\n${r.stderr}`);
}

/**
 * The client ports of the established TCP connections to 127.0.0.1:`port`, from the kernel's
 * table: the browser's connections to the app at this instant, whichever process holds the
 * server side (loopback lists both ends; the client's is the one whose remote end is `port`).
 */
function clientPorts(port: number): Set<number> {
  const ports = new Set<number>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, remote, state] = line.trim().split(/\s+/);
    if (state !== '01' || remote !== `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`) continue;
    ports.add(parseInt(local?.split(':')[1] ?? '', 16));
  }
  return ports;
}

function count<T>(items: T[], key: (x: T) => string): string {
  const by = new Map<string, number>();
  for (const x of items) by.set(key(x), (by.get(key(x)) ?? 0) + 1);
  return [...by].map(([k, n]) => `${k}: ${n}`).join(', ');
}

test('a real Chromium (fetch() by 4 paced users, a WebSocket) across 4 reloads: no request fails, no new connection, the WebSocket moves', { skip: needs('chromium'), timeout: 300_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/browser-app.js')], workers: 2 });
  const port = Number(master.address().split(':')[1]);
  const page = await openPage(t, master.url('/'));
  // The page's 4 users' first requests are held until all 4 are in: the browser then has all
  // the connections this traffic needs (one per user, and the WebSocket's) before the reloads.
  const users = 4;
  await master.waitStdout('held ', users);
  const held = new Set([...master.stdout.matchAll(/^held (\d+)$/gm)].map((m) => Number(m[1])));
  for (const pid of master.workerPids) process.kill(pid, 'SIGUSR2');
  await page.evaluate('hitless.warm(40)');
  const before = clientPorts(port);
  const reloads = 4;
  for (let i = 0; i < reloads; i++) await reloadOk(master);
  const last = 1 + reloads;
  const r = await page.evaluate<Results>('hitless.finish()');
  const after = clientPorts(port);

  // Every TCP connection any worker saw (accepted or handed over), the connections used by
  // answers, and those open now: none may be one the browser opened after the warm-up.
  const seen = new Set([...master.stdout.matchAll(/^conn \d+ (\d+)$/gm)].map((m) => Number(m[1])));
  const usedBefore = new Set(r.answers.filter((a) => a.generation === 1 && before.has(a.port)).map((a) => a.port));
  const usedAfter = new Set(r.answers.filter((a) => a.generation > 1).map((a) => a.port));
  const opened = [...new Set([...seen, ...r.answers.map((a) => a.port), ...after])].filter((p) => !before.has(p));
  // Those that carried traffic before the reloads must all be open still. (Not every one in
  // `before`: Chromium closes a connection it opened and never used after 10 s itself.)
  const carried = new Set([...held, ...usedBefore, ...r.ws.answers.map((a) => a.port)]);
  const closed = [...carried].filter((p) => !after.has(p));
  const moved = master.events('reload-drained').map((e) => `${String(e.handedOver)}/${String(e.drained)}/${String(e.cut)}`);
  const took = master.events('reload-done').map((e) => `${(Number(e.ms) / 1000).toFixed(1)} s`);
  t.diagnostic(
    `${r.answers.length} fetches, ${r.failures.length} failed; per generation ${count(r.answers, (a) => String(a.generation))}; ` +
      `browser connections to the app: ${before.size} open before the reloads (${carried.size} had carried traffic: ${closed.length} of these closed since), ${opened.length} opened since; fetches went on ${usedBefore.size} in generation 1, on ${usedAfter.size} after; ` +
      `reloads took ${took.join(', ')}, handed over/drained/cut ${moved.join(', ')}; ` +
      `WebSocket: ${r.ws.sent} sent, ${r.ws.answers.length} answered, per generation ${count(r.ws.answers, (a) => String(a.generation))}, events [${r.ws.events.join(', ')}]`,
  );

  assert.equal(held.size, users, 'one connection per user before the reloads');
  assert.ok([...held].every((p) => before.has(p)), 'the held requests’ connections were open before the reloads');
  assert.deepEqual(r.failures, [], 'fetches failed');
  assert.deepEqual(closed, [], 'connections that carried traffic before the reloads were closed');
  assert.deepEqual(opened, [], 'the browser opened connections after the first reload began');
  assert.deepEqual(
    r.last.map((a) => a.generation),
    r.last.map(() => last),
    'each user’s request begun after the last reload was answered by the last generation',
  );
  assert.deepEqual(r.ws.events, [], 'the WebSocket was closed or failed');
  assert.deepEqual(
    r.ws.answers.map((a) => [a.seq, a.count]),
    Array.from({ length: r.ws.sent }, (_, i) => [i + 1, i + 1]),
    'every WebSocket message answered once, in order, its count carried across the moves',
  );
  assert.equal(r.ws.answers.at(-1)?.generation, last, 'the WebSocket ends served by the last generation');
});
