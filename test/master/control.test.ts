import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlServer } from '../../src/control/server.js';
import { controlRequest } from '../../src/control/client.js';
import { createLogger } from '../../src/core/logger.js';
import { HitlessError, isHitlessError } from '../../src/errors.js';
import { waitUntil } from '../helpers/master.js';
import type { MasterEvent, MasterHandle, ReloadOptions, ReloadOutcome, StatusSnapshot } from '../../src/core/types.js';

const logs: string[] = [];
const logger = createLogger({ format: 'json', write: (line) => logs.push(line) });

const snapshot: StatusSnapshot = {
  version: '0.0.0-test', pid: process.pid, startedAt: 0, uptimeMs: 1000, state: 'running', generation: 3,
  release: 'r1', listeners: [], workers: [], lastReload: undefined as ReloadOutcome | undefined, reloadQueued: false,
};

const okOutcome: ReloadOutcome = { ok: true, generation: 4, attempted: 4, reason: 'test', startedAt: 0, durationMs: 12, forced: 0 };
snapshot.lastReload = okOutcome;

/** A MasterHandle whose reload waits until the test releases it, so events can be streamed meanwhile. */
class FakeMaster extends EventEmitter implements MasterHandle {
  stops: boolean[] = [];
  reloads: string[] = [];
  reloadError: Error | undefined;
  /** The running request's own events go here (ReloadOptions.follow): what the control server streams. */
  follow: ((e: MasterEvent) => void) | undefined;
  #release: ((o: ReloadOutcome) => void) | undefined;
  readonly reloadStarted = new EventEmitter();
  status(): StatusSnapshot {
    return snapshot;
  }
  reload(reason: string, options?: ReloadOptions): Promise<ReloadOutcome> {
    this.reloads.push(reason);
    this.follow = options?.follow;
    if (this.reloadError) return Promise.reject(this.reloadError);
    return new Promise((resolve) => {
      this.#release = resolve;
      this.reloadStarted.emit('started');
    });
  }
  finishReload(outcome: ReloadOutcome): void {
    this.#release?.(outcome);
  }
  async stop(force?: boolean): Promise<void> {
    this.stops.push(force === true);
    this.emit('stopped', force === true);
  }
}

async function setup(t: TestContext) {
  const base = mkdtempSync(join(tmpdir(), 'hitless-ctl-'));
  const runDir = join(base, 'run');
  const master = new FakeMaster();
  const server = await startControlServer({ runDir, handle: master, logger });
  t.after(async () => {
    await server.close();
    rmSync(base, { recursive: true, force: true });
  });
  return { base, runDir, master, server };
}

/** Sends raw bytes on a new connection and resolves with the first reply line. */
async function rawExchange(path: string, data: string | Buffer): Promise<{ reply: Record<string, unknown>; socket: Socket }> {
  const socket = connect(path);
  await once(socket, 'connect');
  socket.write(data);
  let buf = '';
  for await (const chunk of socket) {
    buf += String(chunk);
    const nl = buf.indexOf('\n');
    if (nl >= 0) return { reply: JSON.parse(buf.slice(0, nl)) as Record<string, unknown>, socket };
  }
  throw new Error(`connection closed without a reply (got ${JSON.stringify(buf)})`);
}

test('status round trip; the socket is 0600 and the run dir 0700', async (t) => {
  const { runDir, server } = await setup(t);
  assert.equal(server.path, join(runDir, 'control.sock'));
  assert.equal(statSync(server.path).mode & 0o777, 0o600);
  assert.equal(statSync(runDir).mode & 0o777, 0o700);
  assert.deepEqual(await controlRequest(runDir, 'status'), snapshot);
});

test('regression (h10 F1): reload streams its own reload\'s events (ReloadOptions.follow), not the master\'s whole stream, then the outcome', async (t) => {
  const { runDir, master } = await setup(t);
  const events: MasterEvent[] = [];
  const started = once(master.reloadStarted, 'started');
  const pending = controlRequest(runDir, 'reload', { reason: 'deploy 42' }, { onEvent: (e) => events.push(e) });
  await started;
  master.follow?.({ type: 'reload-start', generation: 4, reason: 'deploy 42', workers: 1 });
  // Another reload's or an earlier generation's events reach every listener of the master, not this request.
  master.emit('event', { type: 'reload-drained', generation: 2, forced: 0, ms: 5000, handedOver: 20 } satisfies MasterEvent);
  master.emit('event', { type: 'worker-output', generation: 4, slot: 0, stream: 'stdout', line: 'secret' } satisfies MasterEvent);
  master.follow?.({ type: 'reload-ready', generation: 4, ms: 10 });
  master.finishReload(okOutcome);
  assert.deepEqual(await pending, okOutcome);
  assert.deepEqual(events.map((e) => e.type), ['reload-start', 'reload-ready']);
  assert.deepEqual(master.reloads, ['deploy 42']);
  assert.equal(master.listenerCount('event'), 0, 'the reload subscription ends with the request');
});

test('regression (h16 F2): a --timeout that runs out after the master streamed progress says the command was still running, not that the master did not answer', async (t) => {
  const { runDir, master } = await setup(t);
  // Silent master: nothing came back, "did not answer" is what happened.
  const silentStarted = once(master.reloadStarted, 'started');
  const silent = controlRequest(runDir, 'reload', { reason: 'a' }, { timeoutMs: 100 });
  await silentStarted;
  await assert.rejects(silent, (err: unknown) => isHitlessError(err) && err.code === 'ERR_CONTROL_TIMEOUT'
    && err.message === 'the master did not answer "reload" within 100 ms (it may still be working; see `hitless status`)');
  master.finishReload(okOutcome);
  // The master answered with progress (here "queued behind generation 3") and was still at it.
  const started = once(master.reloadStarted, 'started');
  let heard!: () => void;
  const eventSeen = new Promise<void>((resolve) => { heard = resolve; });
  const pending = controlRequest(runDir, 'reload', { reason: 'b' }, { timeoutMs: 2000, onEvent: () => heard() });
  await started;
  master.follow?.({ type: 'reload-start', generation: 4, reason: 'b', workers: 1 });
  await eventSeen;
  await assert.rejects(pending, (err: unknown) => isHitlessError(err) && err.code === 'ERR_CONTROL_TIMEOUT'
    && err.message === '"reload" was still running in the master at the --timeout of 2 s; it goes on there (see `hitless status`)');
  master.finishReload(okOutcome);
});

test('reload refused by the master comes back as its error code', async (t) => {
  const { runDir, master } = await setup(t);
  master.reloadError = new HitlessError('ERR_STOPPING', 'the master is stopping');
  await assert.rejects(controlRequest(runDir, 'reload'), (e: unknown) => isHitlessError(e, 'ERR_STOPPING') && e.message === 'the master is stopping');
});

test('stop replies first, then calls handle.stop(force)', async (t) => {
  const { runDir, master } = await setup(t);
  const stopped = once(master, 'stopped');
  assert.deepEqual(await controlRequest(runDir, 'stop', { force: true }), { stopping: true, pid: process.pid, force: true, draining: [] });
  assert.deepEqual(await stopped, [true]);
  assert.deepEqual(master.stops, [true]);
});

const garbage: Array<[string, string, string, string]> = [
  ['not JSON', 'hello\n', 'ERR_CONTROL_PROTOCOL', 'not JSON'],
  ['JSON array', '[1,2]\n', 'ERR_CONTROL_PROTOCOL', 'not a JSON object'],
  ['JSON string', '"status"\n', 'ERR_CONTROL_PROTOCOL', 'not a JSON object'],
  ['unknown version', '{"v":2,"id":7,"cmd":"status"}\n', 'ERR_CONTROL_PROTOCOL', 'version 2'],
  ['missing id', '{"v":1,"cmd":"status"}\n', 'ERR_CONTROL_PROTOCOL', '"id"'],
  ['unknown command', '{"v":1,"id":7,"cmd":"explode"}\n', 'ERR_CONTROL_UNKNOWN_COMMAND', '"explode"'],
  // Regression: a string `args` started a real reload, an array one was answered as status.
  ['args a string', '{"v":1,"id":7,"cmd":"reload","args":"zzz"}\n', 'ERR_CONTROL_PROTOCOL', '"args" must be a JSON object'],
  ['args an array', '{"v":1,"id":7,"cmd":"status","args":[1]}\n', 'ERR_CONTROL_PROTOCOL', 'not [1]'],
  ['args a number', '{"v":1,"id":7,"cmd":"stop","args":1}\n', 'ERR_CONTROL_PROTOCOL', '"args" must be a JSON object'],
];
for (const [title, line, code, part] of garbage) {
  test(`garbage (${title}) gets an error reply and the server keeps serving`, { timeout: 20_000 }, async (t) => {
    const { runDir, server, master } = await setup(t);
    const { reply, socket } = await rawExchange(server.path, line);
    socket.destroy();
    assert.equal(reply.ok, false);
    assert.equal((reply.error as { code: string }).code, code);
    assert.ok((reply.error as { message: string }).message.includes(part), JSON.stringify(reply));
    if (line.includes('"id":7')) assert.equal(reply.id, 7);
    assert.deepEqual(master.reloads, []);
    assert.deepEqual(master.stops, []);
    assert.deepEqual(await controlRequest(runDir, 'status'), snapshot);
  });
}

test('args null is no args: the request is served', async (t) => {
  const { server } = await setup(t);
  const { reply, socket } = await rawExchange(server.path, '{"v":1,"id":7,"cmd":"status","args":null}\n');
  socket.destroy();
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.deepEqual(reply.result, snapshot);
});

test('a line over 64 KiB without newline gets an error reply, the connection closes, others are served', async (t) => {
  const { runDir, server } = await setup(t);
  const socket = connect(server.path);
  await once(socket, 'connect');
  socket.on('error', () => {}); // the server may close while we still write
  socket.write(Buffer.alloc(70 * 1024, 'a'));
  let received = '';
  socket.on('data', (chunk) => (received += String(chunk)));
  await once(socket, 'close');
  const reply = JSON.parse(received.split('\n')[0] ?? '') as { ok: boolean; error: { code: string; message: string } };
  assert.equal(reply.ok, false);
  assert.equal(reply.error.code, 'ERR_CONTROL_PROTOCOL');
  assert.match(reply.error.message, /longer than 65536 bytes/);
  assert.deepEqual(await controlRequest(runDir, 'status'), snapshot);
});

test('a connection that sends no whole request line in time gets an error reply and is closed (bytes without a newline do not extend it); one that spoke may wait', { timeout: 30_000 }, async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'hitless-ctl-'));
  const runDir = join(base, 'run');
  const master = new FakeMaster();
  const server = await startControlServer({ runDir, handle: master, logger, firstRequestTimeoutMs: 200 });
  t.after(async () => {
    await server.close();
    rmSync(base, { recursive: true, force: true });
  });
  const silent = connect(server.path);
  silent.on('error', () => {});
  silent.write('{"v":1,"id":1,'); // a partial line does not count, nor bytes that keep coming without a newline
  const trickle = setInterval(() => silent.writable && silent.write(' '), 50);
  t.after(() => clearInterval(trickle));
  let received = '';
  silent.on('data', (chunk) => (received += String(chunk)));
  await once(silent, 'close');
  const reply = JSON.parse(received.split('\n')[0] ?? '') as { ok: boolean; id: null; error: { code: string; message: string } };
  assert.equal(reply.ok, false);
  assert.equal(reply.id, null);
  assert.equal(reply.error.code, 'ERR_CONTROL_PROTOCOL');
  assert.match(reply.error.message, /no request line within 200 ms of connecting/);

  // A client that sent a request keeps its connection between requests.
  const talker = connect(server.path);
  await once(talker, 'connect');
  const lines: string[] = [];
  let pending = '';
  let waiter: (() => void) | undefined;
  talker.on('data', (chunk) => {
    pending += String(chunk);
    let i;
    while ((i = pending.indexOf('\n')) >= 0) {
      lines.push(pending.slice(0, i));
      pending = pending.slice(i + 1);
      waiter?.();
    }
  });
  const nextLine = (n: number) => new Promise<void>((resolve) => {
    waiter = () => { if (lines.length >= n) resolve(); };
    waiter();
  });
  talker.write('{"v":1,"id":1,"cmd":"status"}\n');
  await nextLine(1);
  // Longer than the first-request timeout, measured by the server's own clock: the reply to a
  // second request after it proves the connection stayed open.
  await new Promise((resolve) => setTimeout(resolve, 400));
  talker.write('{"v":1,"id":2,"cmd":"status"}\n');
  await nextLine(2);
  assert.equal((JSON.parse(lines[1] ?? '') as { id: number; ok: boolean }).id, 2);
  talker.destroy();
});

test('a client that disconnects mid-reload does not disturb the server (EPIPE/ECONNRESET on its writes)', async (t) => {
  const { runDir, server, master } = await setup(t);
  const started = once(master.reloadStarted, 'started');
  const socket = connect(server.path);
  await once(socket, 'connect');
  socket.write('{"v":1,"id":1,"cmd":"reload"}\n');
  await started;
  socket.destroy();
  await once(socket, 'close');
  for (let i = 0; i < 100; i++) master.follow?.({ type: 'reload-ready', generation: 4, ms: i });
  master.finishReload(okOutcome);
  assert.deepEqual(await controlRequest(runDir, 'status'), snapshot);
  assert.equal(master.listenerCount('event'), 0);
});

test('no master: ERR_NO_MASTER names the socket and how to start one', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'hitless-ctl-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  await assert.rejects(controlRequest(base, 'status'), (e: unknown) =>
    isHitlessError(e, 'ERR_NO_MASTER') && e.message.includes(join(base, 'control.sock')) &&
    e.message.includes('start it with `hitless start` in the app folder, or pass --run-dir'));
});

test('a stale socket file left by a killed master is replaced', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'hitless-ctl-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const runDir = join(base, 'run');
  mkdirSync(runDir, { mode: 0o700 });
  const path = join(runDir, 'control.sock');
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  await once(child.stdout, 'data');
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.ok(existsSync(path), 'SIGKILL leaves the socket file behind');
  await assert.rejects(controlRequest(runDir, 'status'), (e: unknown) => isHitlessError(e, 'ERR_NO_MASTER'));
  const server = await startControlServer({ runDir, handle: new FakeMaster(), logger });
  t.after(() => server.close());
  assert.deepEqual(await controlRequest(runDir, 'status'), snapshot);
});

test('a second server on a live master socket fails with ERR_MASTER_RUNNING and leaves the first alone', async (t) => {
  const { runDir } = await setup(t);
  await assert.rejects(startControlServer({ runDir, handle: new FakeMaster(), logger }), (e: unknown) => isHitlessError(e, 'ERR_MASTER_RUNNING'));
  assert.deepEqual(await controlRequest(runDir, 'status'), snapshot);
});

test('a run dir writable by others is refused with the fix', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'hitless-ctl-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const runDir = join(base, 'run');
  mkdirSync(runDir);
  chmodSync(runDir, 0o777);
  await assert.rejects(startControlServer({ runDir, handle: new FakeMaster(), logger }), (e: unknown) =>
    isHitlessError(e, 'ERR_CONFIG_INVALID') && e.message.includes('writable by group or others') && e.message.includes('chmod 700'));
});

test('close() removes the socket; afterwards clients get ERR_NO_MASTER', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'hitless-ctl-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const server = await startControlServer({ runDir: base + '/run', handle: new FakeMaster(), logger });
  await server.close();
  assert.equal(existsSync(server.path), false);
  await assert.rejects(controlRequest(base + '/run', 'status'), (e: unknown) => isHitlessError(e, 'ERR_NO_MASTER'));
});

test('a removed run dir (a /tmp cleaner, rm -rf) is made again with the control socket, and commands reach the master again; a connection open meanwhile goes on (regression: status and stop said "no master is running", and start took the folder)', async (t) => {
  const { runDir, server } = await setup(t);
  const path = join(runDir, 'control.sock');
  // A client connected before the removal: its connection stays usable.
  const before = connect(path);
  t.after(() => before.destroy());
  await once(before, 'connect');
  const mark = logs.length;
  rmSync(runDir, { recursive: true, force: true });
  await waitUntil(() => existsSync(path), 'the control socket is made again', 10_000);
  assert.equal(server.path, path);
  assert.equal(statSync(runDir).mode & 0o777, 0o700);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const status = (await controlRequest(runDir, 'status')) as StatusSnapshot;
  assert.equal(status.generation, 3);
  assert.ok(logs.slice(mark).some((l) => l.includes(`control socket ${path} was removed (its run dir deleted?); made it again`)), logs.slice(mark).join('\n'));
  before.write('{"v":1,"id":7,"cmd":"status"}\n');
  const [reply] = await once(before, 'data') as [Buffer];
  assert.equal((JSON.parse(String(reply).split('\n')[0]!) as { id: number; ok: boolean }).ok, true);
});
