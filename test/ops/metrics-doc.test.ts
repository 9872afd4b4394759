// docs/OPERATIONS.md lists every metric the master exports (regression, issue 19: the table
// left out hitless_reload_connections_total).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMetrics } from '../../src/ops/metrics.js';
import { root } from '../helpers/master.js';
import { FakeMaster, fakeConfig, memoryLogger } from './fake-master.js';
import { scrape } from './prom.js';


test('docs/OPERATIONS.md has a table row for every hitless_* metric /metrics exports, and no row for one it does not', async (t) => {
  const master = new FakeMaster();
  master.traffic = {
    windowMs: 10_000, generations: [],
    releases: [{ release: 'gen-1', requests: { '2xx': 1, '3xx': 0, '4xx': 0, '5xx': 0 }, latency: new Array(17).fill(0), latencySumMs: 0 }],
  };
  const m = await startMetrics(fakeConfig({ metrics: { listen: '0' } }), master, memoryLogger());
  t.after(() => m.close());
  const exported = [...new Set([...(await scrape(m.address)).matchAll(/^# TYPE (hitless_\w+) /gm)].map((x) => x[1]!))].sort();
  assert.ok(exported.includes('hitless_reload_connections_total'), exported.join(', '));
  const doc = readFileSync(join(root, 'docs', 'OPERATIONS.md'), 'utf8');
  const documented = [...new Set([...doc.matchAll(/^\| `(hitless_\w+)/gm)].map((x) => x[1]!))].sort();
  assert.deepEqual(documented, exported);
});
