/**
 * Prometheus series of the workers' traffic per release (src/ops/metrics.ts), from a
 * stand-in master's status: counters by class, 5xx errors, a latency histogram in
 * seconds, and series that disappear when a release is retired from the status.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startMetrics } from '../../src/ops/metrics.js';
import { bucketOf } from '../../src/lib/stats.js';
import type { ReleaseTraffic } from '../../src/core/types.js';
import { FakeMaster, fakeConfig, memoryLogger } from '../ops/fake-master.js';
import { parseProm, scrape } from '../ops/prom.js';


function release(name: string, ok: number, bad: number, ms: number): ReleaseTraffic {
  const latency = new Array<number>(17).fill(0);
  latency[bucketOf(ms)] = ok + bad;
  return { release: name, requests: { '2xx': ok, '3xx': 0, '4xx': 0, '5xx': bad }, latency, latencySumMs: (ok + bad) * ms };
}

test('metrics: per-release requests by class, 5xx errors and a latency histogram; retired releases leave the scrape', async (t) => {
  const master = new FakeMaster();
  master.traffic = { windowMs: 10_000, generations: [], releases: [release('v1', 900, 0, 3), release('v2', 90, 10, 300)] };
  const m = await startMetrics(fakeConfig({ metrics: { listen: '127.0.0.1:0' } }), master, memoryLogger());
  t.after(() => m.close());
  const body = await scrape(m.address);
  assert.match(body, /# TYPE hitless_http_requests_total counter/);
  assert.match(body, /# TYPE hitless_http_request_duration_seconds histogram/);
  const v = parseProm(body);
  assert.equal(v.get('hitless_http_requests_total{release="v1",class="2xx"}'), 900);
  assert.equal(v.get('hitless_http_requests_total{release="v2",class="5xx"}'), 10);
  assert.equal(v.get('hitless_http_errors_total{release="v2"}'), 10);
  assert.equal(v.get('hitless_http_errors_total{release="v1"}'), 0);
  assert.equal(v.get('hitless_http_request_duration_seconds_bucket{release="v1",le="0.0025"}'), 0);
  assert.equal(v.get('hitless_http_request_duration_seconds_bucket{release="v1",le="0.005"}'), 900);
  assert.equal(v.get('hitless_http_request_duration_seconds_bucket{release="v2",le="0.25"}'), 0);
  assert.equal(v.get('hitless_http_request_duration_seconds_bucket{release="v2",le="0.5"}'), 100);
  assert.equal(v.get('hitless_http_request_duration_seconds_bucket{release="v2",le="+Inf"}'), 100);
  assert.equal(v.get('hitless_http_request_duration_seconds_count{release="v2"}'), 100);
  assert.equal(v.get('hitless_http_request_duration_seconds_sum{release="v2"}'), 30);
  master.traffic = { windowMs: 10_000, generations: [], releases: [release('v2', 190, 10, 300)] };
  const after = parseProm(await scrape(m.address));
  assert.equal(after.has('hitless_http_requests_total{release="v1",class="2xx"}'), false);
  assert.equal(after.get('hitless_http_requests_total{release="v2",class="2xx"}'), 190);
});
