// The master's own health endpoint (GET /healthz on the metrics listener): 200 while a
// generation serves, 503 while none does, for load balancers and monitors (issue 19).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMetrics } from '../../src/ops/metrics.js';
import { masterHealth } from '../../src/ops/health.js';
import type { StatusSnapshot, WorkerStatus } from '../../src/core/types.js';
import { fixture, startMaster } from '../helpers/master.js';
import { FakeMaster, fakeConfig, memoryLogger } from './fake-master.js';

function get(address: string, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    request(`http://${address}${path}`, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject).end();
  });
}

const worker = (generation: number, slot: number, state: WorkerStatus['state']): WorkerStatus => ({
  generation, slot, pid: 100 + slot, state, startedAt: 0, readyAt: undefined, restarts: 0, statusText: undefined, release: undefined,
});

class StateMaster extends FakeMaster {
  state: StatusSnapshot['state'] = 'running';
  override status(): StatusSnapshot {
    return { ...super.status(), state: this.state };
  }
}

test('masterHealth: 200 while a worker of the serving generation is ready; 503 while starting, with none ready, or stopping', () => {
  const m = new StateMaster();
  m.generation = 2;
  m.workers = [worker(1, 0, 'draining'), worker(2, 0, 'ready'), worker(2, 1, 'starting')];
  assert.deepEqual(masterHealth(m.status()), { status: 200, body: { ok: true, state: 'running', generation: 2, ready: 1, workers: 2 } });
  m.state = 'reloading';
  assert.equal(masterHealth(m.status()).status, 200, 'a reload keeps the serving generation serving');
  m.state = 'running';
  m.workers = [worker(1, 0, 'ready'), worker(2, 0, 'starting'), worker(2, 1, 'failed')];
  assert.deepEqual(masterHealth(m.status()).body, { ok: false, state: 'running', generation: 2, ready: 0, workers: 1, failed: 1, reason: 'no worker of generation 2 is ready' });
  // h16 F7.5: a slot given up after a crash loop is said (it runs no process, so `workers` leaves it out).
  m.workers = [worker(2, 0, 'ready'), worker(2, 1, 'failed')];
  assert.deepEqual(masterHealth(m.status()), { status: 200, body: { ok: true, state: 'running', generation: 2, ready: 1, workers: 1, failed: 1 } });
  m.workers = [worker(2, 0, 'ready')];
  m.state = 'stopping';
  assert.equal(masterHealth(m.status()).status, 503);
  assert.equal(masterHealth(m.status()).body.reason, 'the master is stopping');
  m.state = 'starting';
  m.generation = 0;
  m.workers = [];
  assert.equal(masterHealth(m.status()).status, 503);
});

test('/healthz on the metrics listener answers from status() at request time; HEAD has no body; /metrics unchanged', async (t) => {
  const m = new StateMaster();
  m.workers = [worker(1, 0, 'ready')];
  const metrics = await startMetrics(fakeConfig({ metrics: { listen: '0' } }), m, memoryLogger());
  t.after(() => metrics.close());
  let r = await get(metrics.address, '/healthz');
  assert.equal(r.status, 200);
  assert.equal(r.type, 'application/json');
  assert.deepEqual(JSON.parse(r.body), { ok: true, state: 'running', generation: 1, ready: 1, workers: 1 });
  m.workers = [worker(1, 0, 'exited')];
  r = await get(metrics.address, '/healthz');
  assert.equal(r.status, 503);
  assert.equal((JSON.parse(r.body) as { reason: string }).reason, 'no worker of generation 1 is ready');
  m.state = 'stopping';
  r = await get(metrics.address, '/healthz', 'HEAD');
  assert.equal(r.status, 503);
  assert.equal(r.body, '');
  r = await get(metrics.address, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.body, /hitless_generation 1/);
  r = await get(metrics.address, '/nope');
  assert.equal(r.status, 404);
  assert.match(r.body, /health at \/healthz/);
});

test('a real master with metrics: /healthz is 200 while its generation serves, and during and after a reload', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-healthz-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ metrics: { listen: '127.0.0.1:0' } }));
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')], cwd: dir, workers: 2 });
  const serving = await master.waitEvent((r) => r.msg === 'metrics serving');
  const address = String(serving.address);
  assert.equal((await get(address, '/healthz')).status, 200);
  const reload = master.reload();
  await master.waitEvent('reload-start');
  assert.equal((await get(address, '/healthz')).status, 200, 'the old generation serves while the new one starts');
  assert.equal((await reload).code, 0);
  const r = await get(address, '/healthz');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { ok: true, state: r.body.includes('reloading') ? 'reloading' : 'running', generation: 2, ready: 2, workers: 2 });
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
