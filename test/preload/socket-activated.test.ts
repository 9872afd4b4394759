/**
 * A master that got its socket from systemd knows it only as an fd ("fd:3"): the preload
 * then reads the fd's address itself (getsockname) to match the app's own listen(port).
 * Debian's systemd-socket-activate plays the .socket unit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, fixture, trackMaster } from '../helpers/master.js';
import { freePort } from '../helpers/free-port.js';

const noActivate = spawnSync('systemd-socket-activate', ['--version'], { stdio: 'ignore' }).status !== 0
  && 'systemd-socket-activate is not installed (Debian package systemd)';

test('under systemd socket activation an app\'s own listen(port) adopts the socket the master knows only as fd 3', { skip: noActivate, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-preload-sockact-'));
  const runDir = join(dir, 'run');
  const port = await freePort();
  // The master cannot tell the app's port from "fd:3", so PORT comes from here (-E: the tool
  // passes on only the variables it is told to).
  const child = spawn('systemd-socket-activate', ['-l', `127.0.0.1:${port}`, '--fdname=http', '-E', `PORT=${port}`,
    process.execPath, cli, 'start', '--log-format', 'json', '--run-dir', runDir, '--', process.execPath, fixture('preload/express.js')], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const master = trackMaster(t, child, runDir, dir);
  await new Promise<void>((resolve) => {
    let err = '';
    child.stderr?.on('data', (c: Buffer) => { err += c.toString(); if (err.includes('Listening on')) resolve(); });
  });
  // The first connection starts the master (as a .socket unit does); it waits in the queue.
  const first = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(first.headers.get('x-generation'), '1');
  await first.text();
  const start = await master.waitEvent('master-start');
  assert.deepEqual((start.listeners as { address: string }[]).map((l) => l.address), ['fd:3']);
  assert.equal((await master.reload()).code, 0);
  const second = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(second.headers.get('x-generation'), '2');
  await second.text();
  assert.equal((await master.stop()).code, 0);
});
