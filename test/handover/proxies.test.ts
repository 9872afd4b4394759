// Hand-over behind real software no one here wrote: nginx with an upstream keep-alive pool
// (reloads must open no new upstream connection), and wrk with think time (a naive client
// that does not notice a connection closed while idle: every close is an error to it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, startMaster, type MasterProcess } from '../helpers/master.js';
import { startLoad } from '../helpers/load.js';
import { needs } from '../helpers/tools.js';
import { startNginx } from '../helpers/nginx.js';

async function reloadOk(master: MasterProcess): Promise<void> {
  const r = await master.reload();
  assert.equal(r.code, 0, `hitless reload failed:\n${r.stdout}\n${r.stderr}`);
}

/** The upstream connections (client ports) seen in a load run: keys of `<gen>:<port>`. */
function ports(answers: string[]): Set<string> {
  return new Set(answers.map((a) => a.split(':')[1] ?? ''));
}

test('nginx in front with an upstream keep-alive pool (keepalive 64, HTTP/1.1): reloads open no new upstream connection', { skip: needs('nginx'), timeout: 300_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/peer-port.js')], workers: 2 });
  // A pool that never retires a connection itself: any new upstream connection is the reloads'.
  const url = `${await startNginx(t, [master.address()], { keepalive: 64, longLived: true })}/`;
  // Warm nginx's pool with the same concurrency, then reload while the same clients go on.
  const warm = await startLoad(t, { url, connections: 16, requests: 3000 }).done;
  assert.equal(warm.failed, 0, warm.raw);
  const load = startLoad(t, { url, connections: 16, thinkMs: [0, 20] });
  for (let i = 0; i < 5; i++) await reloadOk(master);
  const result = await load.stop();
  assert.equal(result.failed, 0, result.raw);
  assert.equal(result.non2xx, 0, result.raw);
  const before = ports(warm.generations);
  const opened = [...ports(result.generations)].filter((p) => !before.has(p));
  const moved = master.events('reload-drained').map((e) => `${String(e.handedOver)}/${String(e.returned)}/${String(e.lost)}/${String(e.drained)}/${String(e.cut)}`);
  t.diagnostic(`upstream connections: ${before.size} in the warm-up; new during 5 reloads: ${opened.length}; per reload handed over/returned/lost/drained/cut: ${moved.join(', ')}; ${result.raw}`);
  assert.deepEqual(opened, [], 'nginx opened new upstream connections during the reloads');
  assert.ok(result.generations.some((g) => g.startsWith('6:')), 'generation 6 served');
});

test('wrk with think time (2000 connections, 0–1.2 s between requests), reloads meanwhile: zero errors', { skip: needs('wrk'), timeout: 300_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')], workers: 2 });
  const dir = mkdtempSync(join(tmpdir(), 'hitless-wrk-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'paced.lua'), 'function delay() return math.random(0, 1200) end\n');
  const wrk = spawn('wrk', ['-t2', '-c2000', '-d20s', '--timeout', '10s', '-s', join(dir, 'paced.lua'), master.url('/')], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => wrk.kill('SIGKILL'));
  let out = '';
  wrk.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => wrk.on('exit', (code) => resolve(code)));
  for (let i = 0; i < 4; i++) await reloadOk(master);
  assert.equal(await exited, 0, out);
  t.diagnostic(out.trim().split('\n').filter((l) => /requests in|Socket errors|Non-2xx/.test(l)).join('; '));
  assert.doesNotMatch(out, /Socket errors/, out);
  assert.doesNotMatch(out, /Non-2xx/, out);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  assert.ok(requests > 10_000, out);
});
