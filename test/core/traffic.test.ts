/**
 * The master's traffic book (pure): windows, rates, merged histograms and their quantiles,
 * totals that survive a worker's exit, bounded release series; and the stats message
 * parser. Times are plain numbers: no clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage } from '../../src/lib/protocol.js';
import { LATENCY_BOUNDS_MS, bucketOf, statusClass } from '../../src/lib/stats.js';
import { combine, quantile, slowerThan, TrafficBook, zeroCounts } from '../../src/core/traffic.js';
import { counts } from './fake-traffic.js';

const meta = (generation: number, release = `gen-${generation}`) => ({ generation, release, startedAt: 0 });

test('stats helpers: status classes and bucket bounds are the documented ones', () => {
  assert.deepEqual([199, 200, 304, 404, 500, 599, 600].map(statusClass), ['2xx', '2xx', '3xx', '4xx', '5xx', '5xx', '5xx']);
  assert.equal(LATENCY_BOUNDS_MS.length, 16);
  assert.equal(bucketOf(0), 0);
  assert.equal(bucketOf(0.25), 0); // bounds are inclusive
  assert.equal(bucketOf(0.26), 1);
  assert.equal(bucketOf(30_000), 15);
  assert.equal(bucketOf(30_001), 16); // overflow
});

test('quantiles interpolate within a bucket, and the overflow bucket reports the highest bound', () => {
  const c = zeroCounts();
  c.latency[bucketOf(3)] = 100; // all in (2.5, 5]
  assert.equal(quantile(c.latency, 0.5), 3.75);
  assert.equal(quantile(c.latency, 1), 5);
  c.latency[bucketOf(60_000)] = 100;
  assert.equal(quantile(c.latency, 0.99), 30_000);
  assert.equal(quantile(zeroCounts().latency, 0.5), undefined);
  // 90 fast, 10 slow: p50 is fast, p99 slow.
  const mixed = combine(counts(90, 0, 1), counts(10, 0, 300));
  assert.ok((quantile(mixed.latency, 0.5) ?? 0) <= 1);
  assert.ok((quantile(mixed.latency, 0.99) ?? 0) > 250);
});

test('slowerThan counts whole buckets above the limit and a share of the one that holds it', () => {
  const c = zeroCounts();
  c.latency[bucketOf(30)] = 100; // (25, 50]
  c.latency[bucketOf(300)] = 10; // (250, 500]
  assert.equal(slowerThan(c.latency, 100), 10);
  assert.equal(slowerThan(c.latency, 25), 110);
  assert.equal(slowerThan(c.latency, 37.5), 60);
});

test('a worker\'s rate comes from its reports over the window; errors and quantiles too', () => {
  const book = new TrafficBook(10_000);
  for (let s = 1; s <= 20; s++) book.record('a', meta(1), s * 1000, counts(s * 90, s * 10, 3));
  const f = book.worker('a', 20_000);
  assert.ok(f);
  assert.equal(f.windowMs, 10_000);
  assert.equal(f.requests, 1000); // 100 per second over 10 s
  assert.equal(f.rps, 100);
  assert.equal(f.errors, 100);
  assert.equal(f.errorRate, 0.1);
  assert.equal(f.p50Ms, 3.75);
  assert.deepEqual(f.total, { '2xx': 1800, '3xx': 0, '4xx': 0, '5xx': 200 });
  assert.equal(book.worker('nobody', 20_000), undefined);
});

test('a young worker\'s window starts at its start, from zero', () => {
  const book = new TrafficBook(10_000);
  book.record('a', { generation: 1, release: 'r', startedAt: 1000 }, 3000, counts(400));
  const f = book.worker('a', 3000);
  assert.equal(f?.windowMs, 2000);
  assert.equal(f?.rps, 200);
});

test('a generation merges its workers; its totals survive a worker\'s exit', () => {
  const book = new TrafficBook(10_000);
  book.record('a', meta(1), 1000, counts(100));
  book.record('b', meta(1), 1000, counts(50, 50));
  book.record('a', meta(1), 2000, counts(200));
  book.exited('b', 2500);
  const g = book.generation(1, 2500);
  assert.equal(g?.requests, 300);
  assert.equal(g?.errors, 50);
  assert.deepEqual(g?.total, { '2xx': 250, '3xx': 0, '4xx': 0, '5xx': 50 });
  // Long after: b has left the window and the book, but the generation's totals stay.
  book.record('a', meta(1), 30_000, counts(300));
  assert.equal(book.total(1).requests['2xx'], 350);
  assert.equal(book.total(1).requests['5xx'], 50);
  assert.equal(book.generation(2, 30_000), undefined);
});

test('a report that goes backwards is ignored (counters only grow per process)', () => {
  const book = new TrafficBook();
  book.record('a', meta(1), 1000, counts(100));
  book.record('a', meta(1), 2000, counts(10));
  assert.equal(book.total(1).requests['2xx'], 100);
});

test('release series are bounded: the serving release and the most recently seen other one', () => {
  const book = new TrafficBook();
  book.record('a', meta(1, 'v1'), 1000, counts(10));
  book.record('b', meta(2, 'v2'), 2000, counts(20));
  book.record('c', meta(3, 'v3'), 3000, counts(30));
  assert.deepEqual(book.releases('v2').map((r) => r.release).sort(), ['v2', 'v3']);
  // v1 is gone for good, even if asked again with it serving.
  assert.deepEqual(book.releases('v1').map((r) => r.release).sort(), ['v3']);
});

test('stats messages: the documented shape is accepted, anything else ignored', () => {
  const good = { hitless: 1, type: 'stats', requests: { '2xx': 1, '3xx': 0, '4xx': 0, '5xx': 0 }, latency: new Array(17).fill(0), latencySum: 0.5 };
  assert.deepEqual(parseMessage(good, 'worker'), good);
  assert.equal(parseMessage({ ...good, latency: new Array(16).fill(0) }, 'worker'), undefined);
  assert.equal(parseMessage({ ...good, requests: { '2xx': -1, '3xx': 0, '4xx': 0, '5xx': 0 } }, 'worker'), undefined);
  assert.equal(parseMessage({ ...good, requests: { '2xx': 1 } }, 'worker'), undefined);
  assert.equal(parseMessage({ ...good, latencySum: 'x' }, 'worker'), undefined);
  assert.equal(parseMessage({ ...good, latency: [...good.latency.slice(1), 1.5] }, 'worker'), undefined);
});

test('TrafficBook: busy sums what live workers of a generation last said (undefined when none says), served is a worker\'s total of every class', () => {
  const book = new TrafficBook();
  const meta = { generation: 2, release: 'gen-2', startedAt: 0 };
  assert.equal(book.busy(2), undefined);
  assert.equal(book.served('2.0'), 0);
  book.record('2.0', meta, 1000, counts(10, 2), 4);
  assert.equal(book.busy(2), undefined, 'a worker that does not say');
  book.record('2.0', meta, 2000, counts(30, 2), 4, 0);
  book.record('2.1', meta, 2000, counts(5, 0, 1, { '4xx': 1 }), 1, 3);
  assert.equal(book.busy(2), 3);
  assert.equal(book.served('2.0'), 32);
  assert.equal(book.served('2.1'), 6);
  book.exited('2.1', 2500);
  assert.equal(book.busy(2), 0, 'an exited worker holds nothing');
});

test('TrafficBook: reportedAt is the oldest of a generation\'s live workers\' latest reports (undefined until each reported)', () => {
  const book = new TrafficBook();
  const meta = { generation: 3, release: 'gen-3', startedAt: 0 };
  assert.equal(book.reportedAt(3), undefined);
  book.record('3.0', meta, 1000, counts(1));
  book.record('3.0', meta, 2000, counts(2));
  book.record('3.1', meta, 1500, counts(1));
  assert.equal(book.reportedAt(3), 1500);
  book.exited('3.1', 1600);
  assert.equal(book.reportedAt(3), 2000, 'an exited worker is not waited for');
});
