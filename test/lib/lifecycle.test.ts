/**
 * The process lifecycle, against real child processes and real signals: graceful stop on
 * SIGTERM/SIGINT/HITLESS_STOP_SIGNAL, hooks after the drain with their own time limits,
 * a second signal exiting at once, shutdownDelay failing readiness first, and the lifeline.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { RawConnection } from '../helpers/http.js';
import { waitUntil } from '../helpers/master.js';
import { pastSameStop, sendStop, spawnFixture, stoppedWithRequestInFlight } from './helpers/child.js';
import type { ShutdownResult } from '../../src/index.js';

test('standalone SIGTERM: drains, runs hooks in order after the drain, a hanging hook is cut at its limit and reported, exit 0', async (t) => {
  const f = spawnFixture(t, 'server', { env: { HOOKS: 'hang' } });
  await f.next('listening');
  f.child.kill('SIGTERM');
  const first = await f.next<{ n: number; result: ShutdownResult }>('hook');
  assert.equal(first.n, 1);
  assert.equal(first.result.timedOut, false, 'hook 1 ran after the drain had finished');
  assert.equal((await f.next<{ n: number }>('hook')).n, 2);
  assert.equal((await f.next<{ n: number }>('hook')).n, 3, 'the hook after a hanging one still runs');
  assert.equal((await f.exited).code, 0);
  assert.match(f.stderr(), /ERR_SHUTDOWN_HOOK_TIMEOUT/);
});

test('output written just before the graceful exit is not lost (regression: process.exit drops queued pipe writes)', async (t) => {
  const f = spawnFixture(t, 'server', { env: { HOOKS: 'flood' } });
  let lines = 0;
  let partial = '';
  f.child.stdout!.on('data', (chunk: Buffer | string) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) if (line.startsWith('flood ')) lines += 1;
  });
  // Listen for the end of stdout before anything can end it ('close' may come before 'exit').
  const stdoutClosed = new Promise((resolve) => f.child.stdout!.once('close', resolve));
  await f.next('listening');
  f.child.kill('SIGTERM');
  assert.equal((await f.exited).code, 0);
  await stdoutClosed;
  // 20,000 lines (~220 KB) are several pipe buffers: without the flush, most were lost.
  assert.equal(lines, 20_000);
});

test('a throwing hook is reported on stderr and does not block the others', async (t) => {
  const f = spawnFixture(t, 'server', { env: { HOOKS: 'throw' } });
  await f.next('listening');
  f.child.kill('SIGINT');
  await f.next('hook');
  await f.next('hook');
  assert.equal((await f.next<{ n: number }>('hook')).n, 3);
  assert.equal((await f.exited).code, 0);
  assert.match(f.stderr(), /hook two failed on purpose/);
});

test('second stop signal exits at once with 128 + signal number (143 for SIGTERM)', async (t) => {
  const { f } = await stoppedWithRequestInFlight(t, 'hang', { SHUTDOWN_TIMEOUT: '120000' });
  // One within SAME_STOP_MS of the first would be the same stop (the next test).
  await pastSameStop(f);
  f.child.kill('SIGTERM');
  assert.deepEqual(await f.exited, { code: 143, signal: null });
});

test('one Ctrl-C delivered twice (npm forwards SIGINT, the terminal sends it too) is one stop: the request in flight is answered, exit 0 (regression: it exited 130 at once)', async (t) => {
  const f = spawnFixture(t, 'server', { env: { HOOKS: 'ok', SHUTDOWN_TIMEOUT: '120000', SIGINT_TWICE: '1' } });
  const { port } = await f.next<{ port: number }>('listening');
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  conn.send('GET', '/slow');
  await f.next('slow-started');
  f.child.kill('SIGINT');
  await f.next('signal');
  await f.next('signal'); // the second delivery, handled
  f.tell('release');
  assert.equal((await conn.response()).body, 'slow done');
  const { result } = await f.next<{ result: ShutdownResult }>('hook');
  assert.equal(result.forced.connections, 0);
  assert.deepEqual(await f.exited, { code: 0, signal: null });
});

for (const again of ['listen', 'serve'] as const) {
  test(`a failed second ${again}() of a listening server keeps its first registration: SIGTERM still drains the request in flight (regression: it exited at once and cut it)`, async (t) => {
    const { f, conn } = await stoppedWithRequestInFlight(t, 'slow', { LISTEN_AGAIN: again, SHUTDOWN_TIMEOUT: '60000' });
    const second = await f.next<{ code: string; message: string }>('again-error');
    assert.equal(second.code, 'ERR_LISTEN_FAILED', second.message);
    f.tell('release');
    const res = await conn.response();
    assert.equal(res.body, 'slow done');
    assert.equal(res.headers.connection, 'close');
    assert.deepEqual(await f.exited, { code: 0, signal: null });
  });
}

/**
 * A stand-in for the master, whose pid the fixture gets as HITLESS_MASTER_PID: `alive` runs,
 * `gone` was killed and reaped, `dying` is a zombie (exited, never reaped: as the leader
 * thread of a master killed with SIGKILL while its other threads exit).
 */
async function standInMaster(t: TestContext, state: 'alive' | 'gone' | 'dying'): Promise<number> {
  // `head` waits for a byte on fd 3; `sleep`, which the shell execs, never reaps it once it exits: a zombie.
  const sleeper = spawn('sh', ['-c', 'head -c 1 <&3 >/dev/null & echo $!; exec sleep 1000 3<&-'], { stdio: ['ignore', 'pipe', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => sleeper.once('exit', resolve));
  const release = sleeper.stdio[3] as Writable;
  t.after(async () => {
    release.end(); // `head` exits at EOF too
    if (sleeper.exitCode === null && sleeper.signalCode === null) sleeper.kill('SIGKILL');
    await exited;
  });
  const [line] = await once(createInterface({ input: sleeper.stdout! }), 'line') as [string];
  if (state === 'alive') return sleeper.pid!;
  if (state === 'gone') {
    sleeper.kill('SIGKILL');
    await exited;
    return sleeper.pid!;
  }
  const zombie = Number(line);
  // Once the shell became `sleep`, nobody reaps `head` any more: let it exit.
  await waitUntil(() => readFileSync(`/proc/${sleeper.pid}/comm`, 'utf8') === 'sleep\n', 'the shell execs sleep');
  release.end('x');
  await waitUntil(() => /\) Z /.test(readFileSync(`/proc/${zombie}/stat`, 'utf8')), 'the stand-in exits unreaped');
  return zombie;
}

for (const [state, code] of [['alive', 143], ['gone', 0], ['dying', 0]] as const) {
  const what = code === 0 ? 'the same stop (the parent-death signal again): the drain goes on, hooks run, exit 0' : 'the operator\'s: exit at once (143)';
  test(`a second stop signal while the master (HITLESS_MASTER_PID) is ${state} is ${what}`, async (t) => {
    const master = await standInMaster(t, state);
    const { f, conn } = await stoppedWithRequestInFlight(t, 'slow', { HOOKS: 'ok', SHUTDOWN_TIMEOUT: '120000', HITLESS_MASTER_PID: String(master) });
    await pastSameStop(f);
    f.child.kill('SIGTERM');
    if (code === 0) {
      await f.next('signal');
      f.tell('release');
      assert.equal((await conn.response()).body, 'slow done');
      const first = await f.next<{ result: ShutdownResult }>('hook');
      assert.equal(first.result.forced.connections, 0);
    }
    assert.deepEqual(await f.exited, { code, signal: null });
  });
}

test('shutdownDelay: readiness answers 503 while the listener still accepts; a second signal during the delay exits at once', async (t) => {
  const f = spawnFixture(t, 'server', { env: { SHUTDOWN_DELAY: '120000' } });
  const { port } = await f.next<{ port: number }>('listening');
  const before = await RawConnection.connect(port);
  t.after(() => before.destroy());
  assert.equal((await before.request('GET', '/readyz')).status, 200);
  sendStop(f);
  await f.next('signal');
  const during = await RawConnection.connect(port);
  t.after(() => during.destroy());
  assert.equal((await during.request('GET', '/readyz')).status, 503);
  assert.equal((await during.request('GET', '/fast')).body, 'ok', 'still serving during the delay');
  await pastSameStop(f);
  f.child.kill('SIGTERM');
  assert.equal((await f.exited).code, 143);
});

test('HITLESS_STOP_SIGNAL adds the master-chosen stop signal', async (t) => {
  const f = spawnFixture(t, 'server', { env: { HOOKS: 'ok', HITLESS_STOP_SIGNAL: 'SIGQUIT' } });
  await f.next('listening');
  f.child.kill('SIGQUIT');
  await f.next('hook');
  assert.equal((await f.exited).code, 0);
});

test('lifeline: when the master closes HITLESS_READY_FD the worker drains, runs hooks and exits 0; READY is written once, STATUS on one line', async (t) => {
  const f = spawnFixture(t, 'server', { extra: ['pipe'], env: { HOOKS: 'ok', HITLESS_READY_FD: '3' } });
  await f.next('listening');
  const channel = f.child.stdio[3] as Readable & Writable;
  let text = '';
  channel.setEncoding('utf8');
  const statusSeen = new Promise<void>((resolve) =>
    channel.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('STATUS=') && text.endsWith('\n')) resolve();
    }),
  );
  await statusSeen;
  assert.equal(text, 'READY=1\nSTATUS=serving requests\n');
  channel.destroy();
  const { result } = await f.next<{ result: ShutdownResult }>('hook');
  assert.equal(result.timedOut, false);
  assert.equal((await f.exited).code, 0);
});

test('HITLESS_READY_FD may be a pipe (a supervisor of its own): READY and STATUS arrive, and the worker serves until it is stopped', async (t) => {
  // A real pipe (a FIFO: Node gives no pipe(2)), not the socketpair the master uses.
  const dir = mkdtempSync(join(tmpdir(), 'hitless-ready-pipe-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fifo = join(dir, 'ready');
  execFileSync('mkfifo', [fifo]);
  const readEnd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writeEnd = openSync(fifo, constants.O_WRONLY);
  const reader = new net.Socket({ fd: readEnd, readable: true, writable: false });
  t.after(() => reader.destroy());
  let text = '';
  reader.setEncoding('utf8');
  const announced = new Promise<void>((resolve) =>
    reader.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('STATUS=') && text.endsWith('\n')) resolve();
    }),
  );
  const f = spawnFixture(t, 'server', { extra: [writeEnd], env: { HOOKS: 'ok', HITLESS_READY_FD: '3' } });
  closeSync(writeEnd);
  const { port } = await f.next<{ port: number }>('listening');
  const first = await Promise.race([announced.then(() => 'announced'), f.exited.then(() => 'exited')]);
  assert.equal(first, 'announced', `the worker exited before it announced itself: ${f.stderr()}`);
  assert.equal(text, 'READY=1\nSTATUS=serving requests\n');
  const conn = await RawConnection.connect(port);
  t.after(() => conn.destroy());
  assert.equal((await conn.request('GET', '/fast')).status, 200, 'still serving after READY');
  assert.equal(f.child.exitCode, null);
  f.child.kill('SIGTERM');
  const { result } = await f.next<{ result: ShutdownResult }>('hook');
  assert.equal(result.timedOut, false);
  assert.equal((await f.exited).code, 0);
});
