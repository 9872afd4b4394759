// Listeners other than IPv4 TCP, and a worker in another language, reloaded under load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, sourceFixture, startMaster } from '../helpers/master.js';
import { startLoad } from '../helpers/load.js';
import { needs } from '../helpers/tools.js';

const RELOADS = 5;

test('a unix-socket listener (with its mode) reloaded under load: zero failed requests; the file is removed only at the final stop', { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-unix-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'app.sock');
  const master = await startMaster(t, {
    command: ['node', fixture('master/app.js')],
    workers: 2,
    listen: [`unix:${path}?mode=0660`],
  });
  assert.equal(statSync(path).mode & 0o777, 0o660);
  const load = startLoad(t, { socketPath: path, connections: 20 });
  for (let i = 0; i < RELOADS; i++) {
    const r = await master.reload();
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(path), 'a reload must not remove the socket file');
  }
  const result = await load.stop();
  assert.ok(result.requests > 200, `too little load: ${result.raw}`);
  assert.equal(result.failed, 0, result.raw);
  assert.ok(result.generations.length >= 2, result.generations.join(','));
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
  assert.equal(existsSync(path), false, 'the final stop removes the socket file');
});

test('an IPv6 listener ([::1]) reloaded under load: zero failed requests', { timeout: 300_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')], workers: 2, listen: ['[::1]:0'] });
  assert.match(master.address(), /^\[::1\]:\d+$/);
  const load = startLoad(t, { url: master.url('/'), connections: 40 });
  for (let i = 0; i < RELOADS; i++) {
    const r = await master.reload();
    assert.equal(r.code, 0, r.stderr);
  }
  const result = await load.stop();
  assert.equal(result.failed, 0, result.raw);
  assert.ok(result.generations.length >= 2);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('a worker written in Python (standard library only) reloaded under keep-alive load: zero failed requests', { skip: needs('python3'), timeout: 300_000 }, async (t) => {
  const master = await startMaster(t, { command: ['python3', sourceFixture('master/worker.py')], workers: 2 });
  const load = startLoad(t, { url: master.url('/'), connections: 40 });
  for (let i = 0; i < RELOADS; i++) {
    const r = await master.reload();
    assert.equal(r.code, 0, r.stderr);
  }
  const result = await load.stop();
  assert.ok(result.requests > 500, result.raw);
  assert.equal(result.failed, 0, result.raw);
  assert.deepEqual(result.generations, ['1', '2', '3', '4', '5', '6']);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
