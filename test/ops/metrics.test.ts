import { test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { parseMetricsListen } from '../../src/config/metrics.js';
import { startMetrics } from '../../src/ops/metrics.js';
import { Parts } from '../../src/master/parts.js';
import { isHitlessError } from '../../src/errors.js';
import { FakeMaster, fakeConfig, memoryLogger } from './fake-master.js';
import { familyTypes, parseProm } from './prom.js';
import type { ReloadOutcome, WorkerStatus } from '../../src/core/types.js';

function scrape(address: string, path = '/metrics'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    get(`http://${address}${path}`, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });
}

const worker = (slot: number, state: WorkerStatus['state']): WorkerStatus => ({
  generation: 2, slot, pid: 100 + slot, state, startedAt: 0, readyAt: undefined, restarts: 0, statusText: undefined, release: undefined,
});
const outcome = (ok: boolean, durationMs: number, coalesced = false): ReloadOutcome => ({
  ok, generation: 2, attempted: ok ? 2 : 3, reason: 'test', startedAt: 0, durationMs, forced: 0, coalesced,
});

test('parseMetricsListen: bare port binds 127.0.0.1; host and IPv6 forms; bad values name the key', () => {
  assert.deepEqual(parseMetricsListen('9100'), { host: '127.0.0.1', port: 9100 });
  assert.deepEqual(parseMetricsListen(':9100'), { host: '127.0.0.1', port: 9100 });
  assert.deepEqual(parseMetricsListen('0.0.0.0:9100'), { host: '0.0.0.0', port: 9100 });
  assert.deepEqual(parseMetricsListen('*:9100'), { host: '0.0.0.0', port: 9100 });
  assert.deepEqual(parseMetricsListen('[::1]:0'), { host: '::1', port: 0 });
  assert.throws(() => parseMetricsListen('localhost'), (e) => isHitlessError(e, 'ERR_CONFIG_INVALID') && /metrics\.listen/.test(e.message));
  assert.throws(() => parseMetricsListen('1.2.3.4:99999'), (e) => isHitlessError(e, 'ERR_CONFIG_INVALID'));
});

test('metrics: counters and only counters end in _total, as promtool check metrics wants (h24 F3: prom-client\'s nodejs_active_*_total gauges)', async (t) => {
  const m = await startMetrics(fakeConfig({ metrics: { listen: '0' } }), new FakeMaster(), memoryLogger());
  t.after(() => m.close());
  const types = familyTypes((await scrape(m.address)).body);
  assert.ok(types.size > 20, `families found: ${[...types.keys()].join(' ')}`);
  for (const [name, type] of types) {
    assert.equal(name.endsWith('_total'), type === 'counter', `${name} is a ${type}: promtool wants _total on counters alone`);
  }
  for (const kind of ['handles', 'requests', 'resources']) {
    assert.equal(types.get(`nodejs_active_${kind}`), 'gauge', `the same figure by type stays in nodejs_active_${kind}`);
  }
  assert.equal(types.get('process_cpu_seconds_total'), 'counter', 'the rest of the default metrics stay');
});

test('metrics: counters follow master events, gauges read status() at scrape time', async (t) => {
  const master = new FakeMaster();
  master.generation = 2;
  master.workers = [worker(1, 'ready'), worker(2, 'ready'), worker(3, 'draining')];
  const m = await startMetrics(fakeConfig({ metrics: { listen: '0' } }), master, memoryLogger());
  t.after(() => m.close());
  assert.match(m.address, /^127\.0\.0\.1:\d+$/);

  master.emitEvent({ type: 'reload-done', outcome: outcome(true, 1500) });
  master.emitEvent({ type: 'reload-done', outcome: outcome(true, 1500, true) }); // same reload, second caller
  master.emitEvent({ type: 'reload-done', outcome: outcome(false, 300) });
  master.emitEvent({ type: 'worker-restart', generation: 2, slot: 1, attempt: 1, delayMs: 100 });
  master.emitEvent({ type: 'reload-drained', generation: 1, forced: 2, ms: 10 });
  master.emitEvent({ type: 'reload-drained', generation: 1, forced: 0, ms: 10 });
  // Issue 18: what the serving workers lent a canary, from its verdict.
  const side = { requests: 0, errors: 0, errorRate: undefined, p50Ms: undefined, p99Ms: undefined };
  master.emitEvent({
    type: 'canary-verdict', generation: 3, verdict: 'fail', reason: 'x', elapsedMs: 1000, durationMs: 5000, canary: side, baseline: side,
    latencyLimitMs: undefined, connections: { share: 1 / 3, moved: 8, returned: 1, lost: 2, held: 8 },
  });

  // A scale up's move to its new workers; a scale down's connections are counted at reload-drained.
  const scaled = (from: number, to: number) => ({ ok: true, generation: 2, from, to, startedAt: 0, durationMs: 900, forced: 0, connections: { handedOver: 5, returned: 1, lost: 0, drained: 0, cut: 0 } });
  master.emitEvent({ type: 'scale-done', outcome: scaled(1, 3) });
  master.emitEvent({ type: 'scale-done', outcome: scaled(3, 1) });

  const res = await scrape(m.address);
  assert.equal(res.status, 200);
  assert.match(res.type, /^text\/plain/);
  const v = parseProm(res.body);
  assert.equal(v.get('hitless_reloads_total{result="ok"}'), 1);
  assert.equal(v.get('hitless_reloads_total{result="failed"}'), 1);
  assert.equal(v.get('hitless_reload_duration_seconds_count'), 2);
  assert.equal(v.get('hitless_reload_duration_seconds_sum'), 1.8);
  assert.equal(v.get('hitless_reload_duration_seconds_bucket{le="0.5"}'), 1);
  assert.equal(v.get('hitless_worker_restarts_total'), 1);
  assert.equal(v.get('hitless_workers_forced_total'), 2);
  assert.deepEqual(['moved', 'returned', 'lost'].map((o) => v.get(`hitless_canary_connections_total{outcome="${o}"}`)), [8, 1, 2]);
  assert.deepEqual(['moved', 'returned', 'lost'].map((o) => v.get(`hitless_scale_connections_total{outcome="${o}"}`)), [5, 1, 0]);
  assert.equal(v.get('hitless_workers{state="ready"}'), 2);
  assert.equal(v.get('hitless_workers{state="draining"}'), 1);
  assert.equal(v.get('hitless_workers{state="failed"}'), 0);
  assert.equal(v.get('hitless_generation'), 2);
  assert.ok((v.get('hitless_master_uptime_seconds') ?? -1) >= 0);
  assert.ok(v.has('process_resident_memory_bytes'), 'default process metrics of the master');

  assert.equal(v.get('hitless_reload_requests_total{outcome="started"}'), 0);
  assert.equal(v.get('hitless_reload_requests_total{outcome="refused"}'), 0);
  master.reloadRequests = { started: 4, queued: 2, merged: 7, refused: 3 };
  const requests = parseProm((await scrape(m.address)).body);
  assert.deepEqual(['started', 'queued', 'merged', 'refused'].map((o) => requests.get(`hitless_reload_requests_total{outcome="${o}"}`)), [4, 2, 7, 3],
    'reload requests (SIGHUPs included) by what became of them, read from the master at scrape time');

  master.generation = 3;
  master.workers = [worker(1, 'ready')];
  const again = parseProm((await scrape(m.address)).body);
  assert.equal(again.get('hitless_generation'), 3);
  assert.equal(again.get('hitless_workers{state="draining"}'), 0);

  assert.equal((await scrape(m.address, '/other')).status, 404);
});

test('metrics: close() stops serving and detaches from the master', async () => {
  const master = new FakeMaster();
  const m = await startMetrics(fakeConfig({ metrics: { listen: '127.0.0.1:0' } }), master, memoryLogger());
  assert.equal(master.listenerCount('event'), 1);
  await m.close();
  assert.equal(master.listenerCount('event'), 0);
  await assert.rejects(scrape(m.address), /ECONNREFUSED/);
});

test('metrics: an address in use → ERR_BIND naming metrics.listen', async (t) => {
  const master = new FakeMaster();
  const first = await startMetrics(fakeConfig({ metrics: { listen: '127.0.0.1:0' } }), master, memoryLogger());
  t.after(() => first.close());
  await assert.rejects(startMetrics(fakeConfig({ metrics: { listen: first.address } }), master, memoryLogger()),
    (e) => isHitlessError(e, 'ERR_BIND') && /metrics\.listen/.test(e.message) && /EADDRINUSE/.test(e.message));
});

test('metrics counters belong to the master: metrics turned on by a reload show the totals since the start, that reload included; moved by another reload, they keep them (regression: they restarted at 0)', async (t) => {
  const master = new FakeMaster();
  const logger = memoryLogger();
  let reconfigured: () => void = () => {};
  const parts = new Parts(master, logger, () => reconfigured());
  t.after(() => parts.close());
  const apply = (metrics: { listen: string }): Promise<string> => {
    const done = new Promise<void>((resolve) => (reconfigured = resolve));
    parts.apply(fakeConfig({ metrics }));
    return done.then(() => {
      const line = logger.lines.filter((l) => l.includes('metrics serving')).at(-1) ?? '';
      return /address=(\S+)/.exec(line)?.[1] ?? 'none';
    });
  };
  await parts.startTriggers(fakeConfig());
  master.emitEvent({ type: 'reload-done', outcome: outcome(true, 1500) });
  master.emitEvent({ type: 'reload-drained', generation: 1, forced: 1, ms: 10, handedOver: 7, cut: 2 });
  master.emitEvent({ type: 'worker-restart', generation: 2, slot: 1, attempt: 1, delayMs: 100 });
  master.emitEvent({ type: 'reload-done', outcome: outcome(false, 300) });
  // The reload that turns metrics on: its outcome is reported before the parts are re-applied.
  master.emitEvent({ type: 'reload-done', outcome: outcome(true, 200) });
  let v = parseProm((await scrape(await apply({ listen: '127.0.0.1:0' }))).body);
  assert.equal(v.get('hitless_reloads_total{result="ok"}'), 2);
  assert.equal(v.get('hitless_reloads_total{result="failed"}'), 1);
  assert.equal(v.get('hitless_reload_duration_seconds_count'), 3);
  assert.equal(v.get('hitless_reload_duration_seconds_bucket{le="0.25"}'), 1);
  assert.equal(v.get('hitless_worker_restarts_total'), 1);
  assert.equal(v.get('hitless_workers_forced_total'), 1);
  assert.equal(v.get('hitless_reload_connections_total{outcome="handed_over"}'), 7);
  assert.equal(v.get('hitless_reload_connections_total{outcome="cut"}'), 2);

  // Moved to another address by a reload: the same totals, plus that reload.
  master.emitEvent({ type: 'reload-done', outcome: outcome(true, 100) });
  v = parseProm((await scrape(await apply({ listen: '0' }))).body);
  assert.equal(v.get('hitless_reloads_total{result="ok"}'), 3);
  assert.equal(v.get('hitless_reload_duration_seconds_count'), 4);
  assert.equal(v.get('hitless_reload_connections_total{outcome="handed_over"}'), 7);
});

test('metrics across an upgrade: the reload duration histogram goes on from the old master\'s, like the counters (regression: it restarted at 0 while hitless_reloads_total carried on); a reload refused while stopping or upgrading counts as failed, as one refused for its configuration does (regression: only as refused)', async (t) => {
  const oldMaster = new FakeMaster();
  const oldParts = new Parts(oldMaster, memoryLogger(), () => {});
  await oldParts.startTriggers(fakeConfig());
  oldMaster.emitEvent({ type: 'reload-done', outcome: outcome(true, 1500) });
  oldMaster.emitEvent({ type: 'reload-done', outcome: outcome(true, 200) });
  oldMaster.emitEvent({ type: 'reload-refused', reason: 'SIGHUP', code: 'ERR_UPGRADE_BUSY' });
  const { metrics } = await oldParts.yieldTriggers();
  oldParts.close();
  const master = new FakeMaster();
  const logger = memoryLogger();
  const parts = new Parts(master, logger, () => {});
  t.after(() => parts.close());
  await parts.startTriggers(fakeConfig({ metrics: { listen: '127.0.0.1:0' } }), metrics);
  master.emitEvent({ type: 'reload-done', outcome: outcome(true, 100) });
  master.emitEvent({ type: 'reload-refused', reason: 'hitless reload', code: 'ERR_STOPPING' });
  const address = /address=(\S+)/.exec(logger.lines.find((l) => l.includes('metrics serving')) ?? '')?.[1] ?? '';
  const v = parseProm((await scrape(address)).body);
  assert.equal(v.get('hitless_reloads_total{result="ok"}'), 3);
  assert.equal(v.get('hitless_reloads_total{result="failed"}'), 2);
  assert.equal(v.get('hitless_reload_duration_seconds_count'), 3);
  assert.equal(v.get('hitless_reload_duration_seconds_bucket{le="0.1"}'), 1);
  assert.equal(v.get('hitless_reload_duration_seconds_bucket{le="0.25"}'), 2);
  assert.equal(v.get('hitless_reload_duration_seconds_bucket{le="2.5"}'), 3);
  assert.equal(v.get('hitless_reload_duration_seconds_sum'), 1.8);
});
