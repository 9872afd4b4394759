/**
 * systemd socket activation, for real: Debian's systemd-socket-activate binds the socket,
 * sets LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID and execs the master, as a .socket unit would.
 * A second test plays systemd by hand (python binds, an sh shim sets LISTEN_PID=$$).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { cli, fixture, trackMaster } from '../helpers/master.js';
import { needs } from '../helpers/tools.js';
import { spawnSocketActivated } from '../helpers/socket-activation.js';


function get(target: { socketPath: string } | { port: number }): Promise<{ status: number; generation: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ ...target, host: '127.0.0.1', path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () =>
        resolve({ status: res.statusCode ?? 0, generation: String(res.headers['x-generation']), body }));
    });
    req.on('error', reject).end();
  });
}

test('socket activation: systemd-socket-activate hands the master a socket it serves and keeps across reloads', { skip: needs('systemd-socket-activate'), timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-sockact-'));
  const socketPath = join(dir, 'app.sock');
  const runDir = join(dir, 'run');
  const child = spawn('systemd-socket-activate', ['-l', socketPath, '--fdname=http',
    process.execPath, cli, 'start', '--log-format', 'json', '--run-dir', runDir, '--workers', '2',
    '--', process.execPath, fixture('ops/app.js')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const master = trackMaster(t, child, runDir, dir);
  // Like a .socket unit, it starts the service on the first connection: that request
  // waits in the socket's queue until the first generation is ready, then is served.
  await new Promise<void>((resolve) => {
    let err = '';
    child.stderr?.on('data', (c: Buffer) => { err += c.toString(); if (err.includes('Listening on')) resolve(); });
  });
  const first = await get({ socketPath });
  assert.equal(first.status, 200);
  assert.equal(first.generation, '1');
  const start = await master.waitEvent('master-start');
  assert.deepEqual((start.listeners as { name: string; inherited: boolean }[]).map((l) => [l.name, l.inherited]), [['http', true]]);
  assert.equal((await master.reload()).code, 0);
  const second = await get({ socketPath });
  assert.equal(second.generation, '2');
  assert.equal((await master.stop()).code, 0);
});

test('socket activation: a listening socket at fd 3 with LISTEN_FDS=1 and LISTEN_PID from an exec shim; status shows its address', { skip: needs('python3'), timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-sockact-'));
  const runDir = join(dir, 'run');
  // python3 plays systemd: bind + listen on 127.0.0.1:0, put the socket at fd 3, say the
  // port, then exec the shim, which sets LISTEN_PID to its own pid before exec'ing node.
  const child = spawnSocketActivated([process.execPath, cli, 'start', '--log-format', 'json', '--run-dir', runDir,
    '--workers', '2', '--', process.execPath, fixture('ops/app.js')], dir);
  const master = trackMaster(t, child, runDir, dir);
  await master.waitEvent('master-ready');
  const port = Number(/PORT (\d+)/.exec(master.stderr)?.[1]);
  assert.ok(port > 0, master.stderr);
  assert.equal((await get({ port })).generation, '1');
  // Status names where systemd's socket is bound (it said "fd:3").
  assert.match((await master.cli(['status'])).stdout, new RegExp(`^listeners +http 127\\.0\\.0\\.1:${port} \\(fd 3, from systemd\\)$`, 'm'));
  assert.equal((await master.reload()).code, 0);
  assert.equal((await get({ port })).generation, '2');
  assert.equal((await master.stop()).code, 0);
});

test('socket activation: a listen entry named like systemd\'s socket is that socket; its address is not bound, and the master says so at start', { skip: needs('python3'), timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-sockact-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const runDir = join(dir, 'run');
  const child = spawnSocketActivated([process.execPath, cli, 'start', '--log-format', 'json', '--run-dir', runDir,
    '--listen', '127.0.0.1:0', '--', process.execPath, fixture('ops/app.js')], dir);
  const master = trackMaster(t, child, runDir, dir);
  const start = await master.waitEvent('master-start');
  assert.deepEqual((start.listeners as { name: string; inherited: boolean }[]).map((l) => [l.name, l.inherited]), [['http', true]], 'nothing bound beside it');
  assert.ok(master.records.some((r) => /^listen\.http \(127\.0\.0\.1:0\) is systemd's socket "http" \(fd 3\): that socket serves it, and this address is not bound/.test(String(r.msg))), master.stderr);
  await master.waitEvent('master-ready');
  assert.equal((await master.stop()).code, 0);
});

test('socket activation: an entry at the address of systemd\'s socket under another name (a .socket unit without FileDescriptorName= names it after the unit) fails naming systemd\'s socket and the fixes (regression: "another process listens there")', { skip: needs('python3'), timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-sockact-'));
  const runDir = join(dir, 'run');
  const child = spawnSocketActivated([process.execPath, cli, 'start', '--run-dir', runDir,
    '--listen', '127.0.0.1:{PORT}', '--', process.execPath, fixture('ops/app.js')], dir, 'myapp.socket');
  const master = trackMaster(t, child, runDir, dir);
  const { code } = await master.exited;
  const port = Number(/PORT (\d+)/.exec(master.stderr)?.[1]);
  assert.notEqual(code, 0);
  assert.ok(master.stderr.includes(`hitless: cannot listen on 127.0.0.1:${port}: that address is already systemd's socket "myapp.socket" (fd 3), and this entry is named "http", so it does not stand for it; ` +
    `name the listen entry "myapp.socket=127.0.0.1:${port}" (then it stands for that socket), or set FileDescriptorName=http in the .socket unit (without it systemd names the socket after the unit), or remove the entry`), master.stderr);
  assert.ok(!master.stderr.includes('another process'), master.stderr);
});

test('socket activation: a reload adding an entry at the address of systemd\'s socket is refused naming that socket; the master serves on', { skip: needs('python3'), timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-sockact-'));
  const runDir = join(dir, 'run');
  const config = join(dir, 'hitless.json');
  const command = [process.execPath, fixture('ops/app.js')];
  writeFileSync(config, JSON.stringify({ command, workers: 1 }));
  const child = spawnSocketActivated([process.execPath, cli, 'start', '--log-format', 'json', '--run-dir', runDir, '--config', config], dir, 'myapp.socket');
  const master = trackMaster(t, child, runDir, dir);
  await master.waitEvent('master-ready');
  const port = Number(/PORT (\d+)/.exec(master.stderr)?.[1]);
  writeFileSync(config, JSON.stringify({ command, workers: 1, listen: [`api=127.0.0.1:${port}`] }));
  const reload = await master.reload();
  assert.notEqual(reload.code, 0);
  assert.match(reload.stderr, new RegExp(`cannot listen on api=127\\.0\\.0\\.1:${port}: that address is already systemd's socket "myapp\\.socket" \\(fd 3\\).*name the listen entry "myapp\\.socket=127\\.0\\.0\\.1:${port}"`));
  assert.equal((await get({ port })).generation, '1');
  assert.equal((await master.stop()).code, 0);
});
