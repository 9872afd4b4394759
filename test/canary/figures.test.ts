// Traffic figures end to end, checked against a known load: N requests sent, the workers'
// reports (src/lib/stats.ts) counted by the master say N, in `hitless status --json`, the
// status table, `hitless status --watch` in a pseudo-terminal, and the Prometheus scrape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cli, sourceFixture, startMaster, waitUntil } from '../helpers/master.js';
import { controlRequest } from '../../src/control/client.js';
import type { StatusSnapshot } from '../../src/core/types.js';
import { parseProm } from '../ops/prom.js';
import { startCanaryApp } from './setup.js';

/** Sends `n` requests for `path`, `parallel` at a time, over keep-alive connections; resolves with the statuses seen. */
async function send(url: string, n: number, parallel = 8): Promise<Map<number, number>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: parallel });
  const seen = new Map<number, number>();
  let left = n;
  const one = (): Promise<void> => new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => {
        seen.set(res.statusCode ?? 0, (seen.get(res.statusCode ?? 0) ?? 0) + 1);
        resolve();
      });
    }).on('error', reject);
  });
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (left-- > 0) await one();
  }));
  agent.destroy();
  return seen;
}

function scrape(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(`http://${address}/metrics`, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/** CPU time (user + system) of a process so far, in ms, from /proc. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in clock ticks (USER_HZ 100)
}

test('status, status --watch (pseudo-terminal) and the Prometheus scrape count a known load exactly', { timeout: 60_000 }, async (t) => {
  const app = await startCanaryApp(t, { workers: 2, config: { metrics: { listen: '127.0.0.1:0' } } });
  const url = app.master.url('/');
  const sent = [await send(url, 400), await send(`${url}?code=404`, 100), await send(`${url}?code=500`, 100), await send(`${url}?code=302`, 50)];
  assert.deepEqual(sent.map((m) => [...m.entries()]), [[[200, 400]], [[404, 100]], [[500, 100]], [[302, 50]]]);

  // The reports come every second: wait until they caught up with what was sent.
  const reported = async (): Promise<number> => Object.values((await app.status()).traffic?.generations[0]?.figures.total ?? {}).reduce((a, b) => a + b, 0);
  await waitUntil(async () => (await reported()) === 650, 'the workers reported the load', 10_000, 100);
  const st = await app.status();
  const gen = st.traffic?.generations[0];
  assert.equal(gen?.generation, 1);
  assert.equal(gen?.serving, true);
  assert.deepEqual(gen?.figures.total, { '2xx': 400, '3xx': 50, '4xx': 100, '5xx': 100 });
  assert.equal(gen?.figures.requests, 650); // all within the 10 s window
  assert.equal(gen?.figures.errors, 100);
  assert.ok(Math.abs((gen?.figures.errorRate ?? 0) - 100 / 650) < 1e-9);
  assert.ok((gen?.figures.rps ?? 0) > 0 && gen?.figures.p50Ms !== undefined && gen.figures.p99Ms !== undefined);
  const perWorker = st.workers.map((w) => w.traffic?.total ?? { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 });
  assert.equal(perWorker.reduce((a, w) => a + w['2xx'] + w['3xx'] + w['4xx'] + w['5xx'], 0), 650, 'the workers\' own totals add up');
  assert.deepEqual(st.traffic?.releases.map((r) => [r.release, r.requests, r.latency.reduce((a, b) => a + b, 0)]), [['gen-1', { '2xx': 400, '3xx': 50, '4xx': 100, '5xx': 100 }, 650]]);

  const table = await app.master.cli(['status']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /WORKER +PID +STATE +UPTIME +RESTARTS +RSS +CPU +REQ\/S +5XX +P50 +P99 +STATUS/);
  assert.match(table.stdout, /GENERATION +ROLE +RELEASE +WORKERS +CONNS +REQ\/S +5XX +P50 +P99 +TOTAL 2xx\/3xx\/4xx\/5xx\n1 +serving +- +2 +\d+ +[\d.]+ +15\.4% +[\d.]+ms +[\d.]+ms +400\/50\/100\/100/);

  // Prometheus: the same counts per release.
  const address = String(app.master.records.find((r) => r.msg === 'metrics serving')?.address);
  const prom = parseProm(await scrape(address));
  assert.equal(prom.get('hitless_http_requests_total{release="gen-1",class="2xx"}'), 400);
  assert.equal(prom.get('hitless_http_requests_total{release="gen-1",class="3xx"}'), 50);
  assert.equal(prom.get('hitless_http_requests_total{release="gen-1",class="4xx"}'), 100);
  assert.equal(prom.get('hitless_http_requests_total{release="gen-1",class="5xx"}'), 100);
  assert.equal(prom.get('hitless_http_errors_total{release="gen-1"}'), 100);
  assert.equal(prom.get('hitless_http_request_duration_seconds_count{release="gen-1"}'), 650);
  assert.equal(prom.get('hitless_http_request_duration_seconds_bucket{release="gen-1",le="+Inf"}'), 650);

  // --watch in a pseudo-terminal (script(1) gives it a tty): frames redraw in place.
  // script(1) runs the command through $SHELL -c; `exec` makes the shell become node whatever
  // that shell is (dash, the /bin/sh used when SHELL is unset as under CI, does not exec a
  // lone command by itself), so the script's child is the process to measure and to Ctrl-C.
  const watch = spawn('script', ['-q', '-c', `exec ${process.execPath} ${cli} status --watch --interval 250ms --run-dir ${app.master.runDir}`, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, SHELL: '/bin/sh' },
  });
  t.after(() => {
    try {
      process.kill(-(watch.pid ?? 0), 'SIGKILL');
    } catch {
      // already gone
    }
  });
  let screen = '';
  const frames = (): number => screen.split('\x1b[H').length - 1;
  const waitFrames = (n: number): Promise<void> => new Promise((resolve, reject) => {
    const check = (): void => {
      if (frames() >= n) resolve();
    };
    watch.stdout.on('data', (d: Buffer) => {
      screen += d.toString();
      check();
    });
    watch.once('exit', () => reject(new Error(`watch exited after ${frames()} frames:\n${screen}`)));
    check();
  });
  await waitFrames(3);
  const node = Number(readFileSync(`/proc/${watch.pid}/task/${watch.pid}/children`, 'utf8').trim().split(' ')[0]);
  assert.match(readFileSync(`/proc/${node}/cmdline`, 'utf8'), /status\0--watch/, 'the child of script(1) is the status --watch process');
  const cpuBefore = cpuMs(node);
  const wallBefore = Date.now();
  await waitFrames(11);
  const cpuShare = (cpuMs(node) - cpuBefore) / (Date.now() - wallBefore);
  process.kill(node, 'SIGINT');
  await new Promise((resolve) => watch.once('exit', resolve));
  assert.match(screen, /\x1b\[\?25l/, 'cursor hidden while redrawing');
  assert.match(screen, /\x1b\[\?25h/, 'cursor shown again after Ctrl-C');
  const last = screen.slice(screen.lastIndexOf('\x1b[H')).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
  assert.match(last, /\n1 +serving +- +2 +\d+ +[\d.]+ +15\.4% +[\d.]+ms +[\d.]+ms +400\/50\/100\/100\n/);
  assert.match(last, /every 250 ms, Ctrl-C to quit/);
  assert.ok(cpuShare < 0.15, `--watch used ${(cpuShare * 100).toFixed(1)}% of a CPU`);
  t.diagnostic(`--watch at 250 ms: ${(cpuShare * 100).toFixed(1)}% of one CPU over ${frames() - 3} frames`);
});

test('a worker in another language reports figures with the documented stats lines (Python, NODE_CHANNEL_FD)', { timeout: 30_000 }, async (t) => {
  const master = await startMaster(t, { command: ['python3', sourceFixture('canary/stats-worker.py')], workers: 1 });
  const status = async (): Promise<StatusSnapshot> => (await controlRequest(master.runDir, 'status')) as StatusSnapshot;
  await waitUntil(async () => (await status()).traffic?.generations.length === 1, 'the worker reported', 10_000, 50);
  const gen = (await status()).traffic?.generations[0];
  assert.deepEqual(gen?.figures.total, { '2xx': 7, '3xx': 0, '4xx': 0, '5xx': 3 });
  assert.equal(gen?.figures.errorRate, 0.3);
  assert.ok((gen?.figures.p50Ms ?? 0) > 5 && (gen?.figures.p99Ms ?? 0) <= 10);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
