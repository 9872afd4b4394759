// The heart of hitless, end to end: real master, real workers, real sockets, load from
// the project's own client (test/helpers/load.ts).
// Each reload is driven through `hitless reload`, which waits for the outcome.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { fixture, startMaster, type MasterProcess } from '../helpers/master.js';
import { startLoad } from '../helpers/load.js';

const RELOADS = 20;

function get(url: string): Promise<{ status: number; body: string; generation: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, generation: String(res.headers['x-generation']) }));
      })
      .on('error', reject);
  });
}

async function reloadOk(master: MasterProcess): Promise<void> {
  const r = await master.reload();
  assert.equal(r.code, 0, `hitless reload failed:\n${r.stdout}\n${r.stderr}`);
}

test(`${RELOADS} reloads under saturating keep-alive load: zero failed requests, a 1 s request in flight at each completes`, { timeout: 450_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')], workers: 2 });
  const load = startLoad(t, { url: master.url('/'), connections: 50 });
  const slow: Promise<{ status: number; body: string; generation: string }>[] = [];
  for (let i = 0; i < RELOADS; i++) {
    const before = master.events('reload-done').length;
    slow.push(get(master.url(`/slow?ms=1000&id=${i}`)));
    await master.waitStdout(`slow-start ${i} `);
    await reloadOk(master);
    assert.equal(master.events('reload-done').length, before + 1);
  }
  const result = await load.stop();
  const answers = await Promise.all(slow);
  assert.ok(result.requests > 1000, `too little load to mean anything: ${result.raw}`);
  assert.equal(result.failed, 0, `failed requests under keep-alive load:\n${result.raw}`);
  assert.ok(result.generations.length >= RELOADS / 2, `responses from too few generations: ${result.generations.join(',')}`);
  for (const [i, a] of answers.entries()) {
    assert.equal(a.status, 200, `slow request ${i}`);
    // It started on the generation that was serving before reload i, and finished there.
    assert.equal(a.generation, String(i + 1), `slow request ${i} answered by generation ${a.generation}`);
  }
  const st = await master.status();
  assert.equal(st.generation, RELOADS + 1);
  assert.equal(st.workers.length, 2);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test(`${RELOADS} reloads under saturating Connection: close load: zero failed requests`, { timeout: 450_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')], workers: 2 });
  const load = startLoad(t, { url: master.url('/'), connections: 50, close: true });
  for (let i = 0; i < RELOADS; i++) await reloadOk(master);
  const result = await load.stop();
  assert.ok(result.requests > 500, `too little load to mean anything: ${result.raw}`);
  assert.equal(result.failed, 0, `failed requests under Connection: close load:\n${result.raw}`);
  assert.ok(result.generations.length >= 2, `responses from one generation only: ${result.generations.join(',')}`);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('rolling strategy replaces one worker at a time under load with zero failed requests', { timeout: 300_000 }, async (t) => {
  const master = await startMaster(t, {
    command: ['node', fixture('master/app.js')],
    workers: 3,
    args: ['--strategy', 'rolling'],
  });
  const load = startLoad(t, { url: master.url('/'), connections: 30 });
  for (let i = 0; i < 5; i++) {
    const from = master.records.length;
    await reloadOk(master);
    // Never more than workers + 1 processes starting or ready at once.
    const spawns = master.records.slice(from).filter((r) => r.event === 'worker-spawn');
    assert.equal(spawns.length, 3);
  }
  const result = await load.stop();
  assert.equal(result.failed, 0, `failed requests with rolling reloads:\n${result.raw}`);
  const st = await master.status();
  assert.equal(st.workers.filter((w) => w.state === 'ready').length, 3);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
