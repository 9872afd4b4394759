// Issue 20 end to end: a listening address no worker accepts on must not be a black hole
// (connections completing their handshake, then waiting in the accept queue forever). An
// address added by a reload, or given at `hitless start`, is either served or refused with
// the listener named; for programs without the hitless channel, a warning names them.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, fixture, trackMaster, type MasterProcess } from '../helpers/master.js';
import { freePort } from '../helpers/free-port.js';

const SERVE_APP = [process.execPath, fixture('master/app.js')];
const FIRST_ONLY = [process.execPath, fixture('master/listen-first.js')];
const NO_CHANNEL = [process.execPath, fixture('master/no-channel.js')];
const EXPRESS = [process.execPath, fixture('preload/express.js')];

interface FileMaster {
  master: MasterProcess;
  write(config: Record<string, unknown>): void;
}

function folder(t: TestContext, config: Record<string, unknown>): { dir: string; write(c: Record<string, unknown>): void } {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-unserved-'));
  const write = (c: Record<string, unknown>): void => {
    writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ runDir: 'run', logFormat: 'json', ...c }, null, 2));
  };
  write(config);
  void t;
  return { dir, write };
}

/** `hitless start` in a folder holding hitless.json; resolves once the first generation serves. */
async function startFromFile(t: TestContext, config: Record<string, unknown>): Promise<FileMaster> {
  const { dir, write } = folder(t, config);
  const child = spawn(process.execPath, [cli, 'start'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const master = trackMaster(t, child, join(dir, 'run'), dir);
  await master.waitEvent('master-ready');
  return { master, write };
}

/** The addresses the master holds, by listener name. */
async function addresses(master: MasterProcess): Promise<Record<string, string>> {
  const st = await master.status();
  return Object.fromEntries((st.listeners as { name: string; address: string }[]).map((l) => [l.name, l.address]));
}

async function body(address: string): Promise<string> {
  const res = await fetch(`http://${address}/`);
  return (await res.text()).trim();
}

/** True when something accepted the connection, else the error code (ECONNREFUSED once the socket is closed). */
function connects(address: string): Promise<true | string> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

test('a reload adding an address to a serve(server) app: the new address is served by the new generation (serve() serves every socket no listen() claims)', { timeout: 60_000 }, async (t) => {
  const { master, write } = await startFromFile(t, { command: SERVE_APP, listen: ['127.0.0.1:0'], workers: 2 });
  write({ command: SERVE_APP, listen: ['127.0.0.1:0', '127.0.0.1:0'], workers: 2 });
  const r = await master.reload();
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /listen\.listen1: added 127\.0\.0\.1:0/);
  assert.doesNotMatch(r.stdout, /warning/);
  const a = await addresses(master);
  assert.equal(await body(a.listen1!), 'hello from generation 2');
  assert.equal(await body(a.http!), 'hello from generation 2');
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('hitless start with two addresses and a serve(server) app: both are served', { timeout: 60_000 }, async (t) => {
  const { master } = await startFromFile(t, { command: SERVE_APP, listen: ['127.0.0.1:0', 'admin=127.0.0.1:0'] });
  const a = await addresses(master);
  assert.deepEqual(await Promise.all([body(a.http!), body(a.admin!)]), ['hello from generation 1', 'hello from generation 1']);
  assert.deepEqual(master.events('warning'), []);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('a reload adding an address an app does not serve (listen(server) adopts only the first) is refused, naming the listener and the fix; the old generation keeps serving and the address is released (refused, not hanging)', { timeout: 60_000 }, async (t) => {
  const { master, write } = await startFromFile(t, { command: FIRST_ONLY, listen: ['127.0.0.1:0'], workers: 2 });
  const before = await addresses(master);
  write({ command: FIRST_ONLY, listen: ['127.0.0.1:0', '127.0.0.1:0'], workers: 2 });
  const from = master.records.length;
  const r = await master.reload();
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^hitless: reload failed: worker 2\.\d \(pid \d+\) does not accept on listener "listen1" \(127\.0\.0\.1:\d+, fd 4\) \(it accepts only on "http"\), so connections to it would wait unanswered: serve it in the app with listen\(server, 'listen1'\) .* \(ERR_LISTENER_UNSERVED\); generation 1 keeps serving$/m);
  const added = master.records.slice(from).find((rec) => rec.event === 'worker-spawn');
  assert.ok(added, 'generation 2 was started and refused');
  const st = await master.status();
  assert.equal(st.generation, 1);
  assert.deepEqual((st.listeners as { name: string }[]).map((l) => l.name), ['http'], 'the added address is released');
  assert.equal(await body(before.http!), 'first only 1');
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('hitless start with two addresses and an app that serves only the first fails at once, naming the listener and the fix, and ends with one hitless: line', { timeout: 60_000 }, async (t) => {
  const { dir } = folder(t, { command: FIRST_ONLY, listen: ['127.0.0.1:0', '127.0.0.1:0'] });
  const child = spawn(process.execPath, [cli, 'start'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const master = trackMaster(t, child, join(dir, 'run'), dir);
  const exit = await master.exited;
  assert.equal(exit.code, 1, master.stderr);
  const failed = master.records.find((r) => r.code === 'ERR_START_FAILED');
  assert.match(failed?.msg ?? master.stderr, /^the first generation did not start: worker 1\.0 \(pid \d+\) does not accept on listener "listen1" \(127\.0\.0\.1:\d+, fd 4\).*listen\(server, 'listen1'\)/);
  // Like every failed command, the start ends with one `hitless:` line: the reason and its code.
  assert.match(master.stderr, /\nhitless: the first generation did not start: worker 1\.0 .*listener "listen1".* \(ERR_START_FAILED\)\n$/);
});

test('a program without the hitless channel (another language), two addresses: it is not refused, but the reload output, the log and hitless status warn, naming each listener', { timeout: 60_000 }, async (t) => {
  const base = { command: NO_CHANNEL, preload: false, readyAfter: '200ms' };
  const { master, write } = await startFromFile(t, { ...base, listen: ['127.0.0.1:0'] });
  write({ ...base, listen: ['127.0.0.1:0', '127.0.0.1:0'] });
  const r = await master.reload();
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const warning = /^reload: warning: generation 2: its workers do not say which sockets they accept on \(no hello on the hitless channel, which would list them in `adopted`\), so hitless cannot check that each of "http" \(127\.0\.0\.1:\d+, fd 3\), "listen1" \(127\.0\.0\.1:\d+, fd 4\) is served; make sure the program accepts on every inherited socket \(fds 3–4, LISTEN_FDS=2\)/m;
  assert.match(r.stdout, warning);
  assert.equal(master.events('warning').length, 1);
  assert.equal(master.events('warning')[0]?.level, 'warn');
  const status = await master.cli(['status']);
  assert.match(status.stdout, /^warning {5}generation 2: its workers do not say which sockets they accept on/m);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('an unmodified app (preload) given a second address on its own port (another host) serves it too', { timeout: 60_000 }, async (t) => {
  const port = await freePort();
  const { master } = await startFromFile(t, { command: EXPRESS, listen: [`127.0.0.1:${port}`, `127.0.0.2:${port}`] });
  const [one, two] = await Promise.all([fetch(`http://127.0.0.1:${port}/`), fetch(`http://127.0.0.2:${port}/`)]);
  assert.deepEqual([one.status, two.status], [200, 200]);
  assert.deepEqual([one.headers.get('x-generation'), two.headers.get('x-generation')], ['1', '1']);
  await Promise.all([one.text(), two.text()]);
  assert.deepEqual(master.events('warning'), []);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('an unmodified app (preload) given an address on a port it never listens on: the reload is refused at readyTimeout, naming the address the app does not listen on', { timeout: 60_000 }, async (t) => {
  const port = await freePort();
  const base = { command: EXPRESS, readyTimeout: '8s' };
  const { master, write } = await startFromFile(t, { ...base, listen: [`127.0.0.1:${port}`] });
  write({ ...base, listen: [`127.0.0.1:${port}`, 'listen1=127.0.0.1:0'] });
  const r = await master.reload();
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /did not announce readiness within 8 s: it did not listen on every socket hitless holds in time: listening on 1 of 2 sockets; waiting for the app to listen on listen1 \(127\.0\.0\.1:\d+\) \(or remove that address from the master's "listen"\) \(ERR_READY_TIMEOUT\)/);
  assert.equal((await master.status()).generation, 1);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
