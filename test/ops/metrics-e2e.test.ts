import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, startMaster } from '../helpers/master.js';
import { parseProm } from './prom.js';

test('metrics end to end: a real reload and a failed one show up in the scrape', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-metrics-e2e-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'hitless.json');
  writeFileSync(config, JSON.stringify({ metrics: { listen: '127.0.0.1:0' } }));
  const failFile = join(dir, 'fail');
  const master = await startMaster(t, {
    command: [process.execPath, fixture('ops/app.js')],
    workers: 2,
    args: ['--config', config],
    env: { FAIL_FILE: failFile },
  });
  const serving = await master.waitEvent((r) => r.msg === 'metrics serving');
  const url = `http://${String(serving.address)}/metrics`;

  assert.equal((await master.reload()).code, 0);
  writeFileSync(failFile, '');
  assert.notEqual((await master.reload()).code, 0, 'the failing generation does not go live');

  const res = await fetch(url);
  assert.equal(res.status, 200);
  const v = parseProm(await res.text());
  assert.equal(v.get('hitless_reloads_total{result="ok"}'), 1);
  assert.equal(v.get('hitless_reloads_total{result="failed"}'), 1);
  assert.equal(v.get('hitless_reload_duration_seconds_count'), 2);
  assert.equal(v.get('hitless_generation'), 2);
  assert.equal(v.get('hitless_workers{state="ready"}'), 2);
  assert.equal(v.get('hitless_workers_forced_total'), 0);
  assert.ok((v.get('hitless_master_uptime_seconds') ?? 0) > 0);
  assert.ok((v.get('process_resident_memory_bytes') ?? 0) > 0);
  assert.equal((await master.stop()).code, 0);
});

test('metrics turned on by a reload count every reload since the master started, that one included (regression: the counters restarted at 0)', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-metrics-e2e-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'hitless.json');
  writeFileSync(config, JSON.stringify({}));
  const master = await startMaster(t, { command: [process.execPath, fixture('ops/app.js')], args: ['--config', config] });
  assert.equal((await master.reload()).code, 0);
  writeFileSync(config, JSON.stringify({ metrics: { listen: '127.0.0.1:0' } }));
  const from = master.records.length;
  assert.equal((await master.reload()).code, 0, 'the reload that turns metrics on');
  const serving = await master.waitEvent((r) => r.msg === 'metrics serving', from);
  const v = parseProm(await (await fetch(`http://${String(serving.address)}/metrics`)).text());
  assert.equal(v.get('hitless_reloads_total{result="ok"}'), 2);
  assert.equal(v.get('hitless_reload_duration_seconds_count'), 2);
  assert.equal(v.get('hitless_generation'), 3);
  assert.equal((await master.stop()).code, 0);
});

test('requests a retiring worker answered in its last second are counted: it reports its totals as its drain ends (regression: a reload lost up to a second of traffic from the counters and `hitless status`)', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-metrics-e2e-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'hitless.json');
  writeFileSync(config, JSON.stringify({ metrics: { listen: '127.0.0.1:0' } }));
  const master = await startMaster(t, { command: [process.execPath, fixture('ops/app.js')], workers: 2, args: ['--config', config] });
  const serving = await master.waitEvent((r) => r.msg === 'metrics serving');
  const total = async (): Promise<number> => {
    const v = parseProm(await (await fetch(`http://${String(serving.address)}/metrics`)).text());
    return [...v].filter(([k]) => k.startsWith('hitless_http_requests_total')).reduce((n, [, value]) => n + value, 0);
  };
  const before = await total();
  const n = 300;
  for (let i = 0; i < n; i += 10) {
    const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(master.url('/')).then((r) => r.text())));
    assert.equal(answers.length, 10);
  }
  // At once: the old workers exit well within their reporting interval of 1 s.
  assert.equal((await master.reload()).code, 0);
  assert.equal(await total(), before + n);
  assert.equal((await master.stop()).code, 0);
});
