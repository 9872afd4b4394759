// `hitless start` before anything runs: bind errors are one clear line, a missing command
// stops the master with its reason, and the pid file lives exactly as long as the master.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, runCli, startMaster } from '../helpers/master.js';
import { freePort } from '../helpers/free-port.js';

test('a port already in use: one line naming the address and the fix, exit 1, no stack trace (regression: libuv defers EADDRINUSE to listen)', { timeout: 30_000 }, async (t) => {
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => taken.close());
  const { port } = taken.address() as net.AddressInfo;
  const dir = mkdtempSync(join(tmpdir(), 'hitless-start-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = await runCli(['start', '--listen', `127.0.0.1:${port}`, '--run-dir', join(dir, 'run'), '--', 'node', fixture('master/app.js')], {}, dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`hitless: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE \\(another process listens there`));
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.doesNotMatch(r.stderr, /worker spawn/, 'no worker may start on a socket that was not bound');
});

test('a missing command at start: the reason and exit 1, the master does not stay up', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-start-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = await runCli(['start', '--listen', '127.0.0.1:0', '--run-dir', join(dir, 'run'), '--', 'hitless-no-such-command'], {}, dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /worker command "hitless-no-such-command" not found .*check "command" and PATH/);
});

test('a workers\' folder (--cwd) that does not exist: one line naming it and the key, exit 1 (not spawn\'s ENOENT naming the program)', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-start-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = await runCli(['start', '--listen', '127.0.0.1:0', '--run-dir', join(dir, 'run'), '--cwd', join(dir, 'nope'), '--', 'node', 'server.js'], {}, dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`the first generation did not start: the workers' folder ${join(dir, 'nope')} does not exist \\("cwd", --cwd\\): create it`));
  assert.doesNotMatch(r.stderr, /ENOENT/);
  // h16 F7.2: it ended (ERR_COMMAND_NOT_FOUND) where every other first-generation failure ends (ERR_START_FAILED).
  assert.match(r.stderr, /\(ERR_START_FAILED\)\n$/);
  // h16 housekeeping: the run dir the failed master made is not left behind, empty.
  assert.equal(existsSync(join(dir, 'run')), false);
});

test('a metrics port in use at start: exit 1 naming metrics.listen before any worker started (regression: the first generation served, then was SIGKILLed)', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-start-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.after(() => busy.close());
  const taken = (busy.address() as net.AddressInfo).port;
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({
    command: ['node', fixture('master/app.js')], listen: ['127.0.0.1:0'], runDir: 'run', metrics: { listen: `127.0.0.1:${taken}` },
  }));
  const r = await runCli(['start', '--log-format', 'json'], {}, dir);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /metrics\.listen.*EADDRINUSE/);
  assert.doesNotMatch(r.stderr, /worker-spawn/, 'no worker was started');
});

test('--pid-file is written with the master pid and removed at the stop', { timeout: 30_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-pid-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'hitless.pid');
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')], args: ['--pid-file', pidFile] });
  assert.equal(readFileSync(pidFile, 'utf8'), `${master.pid}\n`);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
  assert.equal(existsSync(pidFile), false);
});

test('--pid-file of another running master (its own run dir) is refused, exit 1, and stays that master\'s; a stale one is taken over; a master removes only a pid file naming it', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-pid-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'hitless.pid');
  const first = await startMaster(t, { command: ['node', fixture('master/app.js')], args: ['--pid-file', pidFile] });
  const port = await freePort();
  const second = await runCli(['start', '--listen', `127.0.0.1:${port}`, '--run-dir', join(dir, 'run2'), '--pid-file', pidFile, '--', 'node', fixture('master/app.js')], {}, dir);
  assert.equal(second.code, 1, second.stderr);
  assert.equal(second.stderr, `hitless: pidFile (--pid-file): ${pidFile} belongs to the running master pid ${first.pid}; stop that master, or give this one another --pid-file\n`);
  assert.equal(readFileSync(pidFile, 'utf8'), `${first.pid}\n`, 'still the first master\'s');
  // Another program's pid in the file (the master that wrote it died, the pid was reused): not in the way.
  const other = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.after(() => other.kill());
  writeFileSync(pidFile, `${other.pid}\n`);
  // The first master's stop leaves a file that names another process alone.
  assert.deepEqual(await first.stop(), { code: 0, signal: null });
  assert.equal(readFileSync(pidFile, 'utf8'), `${other.pid}\n`);
  const third = await startMaster(t, { command: ['node', fixture('master/app.js')], args: ['--pid-file', pidFile] });
  assert.equal(readFileSync(pidFile, 'utf8'), `${third.pid}\n`);
  assert.deepEqual(await third.stop(), { code: 0, signal: null });
  assert.equal(existsSync(pidFile), false);
});

test('--pid-file in a folder that does not exist: the folder is created; a file in the way: exit 1 naming the flag, nothing left listening (regression: a hung master)', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-pid-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'run', 'deep', 'master.pid');
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')], args: ['--pid-file', pidFile] });
  assert.equal(readFileSync(pidFile, 'utf8'), `${master.pid}\n`);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });

  writeFileSync(join(dir, 'afile'), '');
  const port = await freePort();
  // runCli resolves only once the process exits: before the fix it never did.
  const r = await runCli(['start', '--listen', `127.0.0.1:${port}`, '--run-dir', join(dir, 'run2'), '--pid-file', join(dir, 'afile', 'm.pid'), '--', 'node', fixture('master/app.js')], {}, dir);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `hitless: pidFile (--pid-file): cannot write ${join(dir, 'afile', 'm.pid')}: ${join(dir, 'afile')} is not a folder (a file is in the way); choose another path\n`);
  // The port was never bound: a server can listen there now.
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(port, '127.0.0.1', resolve));
  await new Promise((resolve) => probe.close(resolve));
});
