// A new version that cannot serve must never take over: each broken build is tried under
// load, `hitless reload` exits non-zero with the reason, and the old generation keeps
// serving with zero failed requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import { join } from 'node:path';
import { fixture, sourceFixture, startMaster } from '../helpers/master.js';
import { startLoad } from '../helpers/load.js';

/** The app folder's `./server` launcher, replaced by rename as a deploy would do. */
function setServer(dir: string, body: string): void {
  const tmp = join(dir, 'server.tmp');
  writeFileSync(tmp, `#!/bin/sh\n${body}\n`);
  chmodSync(tmp, 0o755);
  renameSync(tmp, join(dir, 'server'));
}

test('a failing new version keeps the old one serving with zero failed requests, for each broken build', { timeout: 600_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-failures-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = `exec node ${fixture('master/app.js')}`;
  setServer(dir, good);
  const master = await startMaster(t, {
    command: ['./server'],
    cwd: dir,
    workers: 2,
    args: ['--ready-timeout', '4s', '--drain-timeout', '10s'],
  });
  const port = master.address().split(':').pop() ?? '';
  const load = startLoad(t, { url: master.url('/'), connections: 40 });

  const broken: { name: string; server: string | undefined; code: string; says: RegExp }[] = [
    { name: 'throws at boot', server: `exec node ${fixture('master/throws-at-boot.js')}`, code: 'ERR_WORKER_EXITED', says: /the database URL is missing/ },
    { name: 'syntax error', server: `exec node ${sourceFixture('master/syntax-error.cjs')}`, code: 'ERR_WORKER_EXITED', says: /SyntaxError/ },
    // Without the preload, which announces an app that listens on every held socket (docs/frameworks.md).
    { name: 'never ready', server: `NODE_OPTIONS= exec node ${fixture('master/never-ready.js')}`, code: 'ERR_READY_TIMEOUT', says: /readiness within 4 s: write READY=1 to the fd in HITLESS_READY_FD once it serves, or, for a program that cannot, set readyAfter/ },
    { name: 'exits 0 at once', server: `exec node ${fixture('master/exits-zero.js')}`, code: 'ERR_WORKER_EXITED', says: /exited with code 0/ },
    { name: 'command not found', server: undefined, code: 'ERR_COMMAND_NOT_FOUND', says: /not found/ },
    // Without the preload (NODE_OPTIONS cleared): with it, this is an unmodified app that works.
    { name: 'binds its own port', server: `NODE_OPTIONS= OWN_PORT=${port} exec node ${fixture('master/binds-own-port.js')}`, code: 'ERR_WORKER_EXITED', says: /before it was ready: it tried to bind a port itself and found it in use; .* inherits as fd 3 \(LISTEN_FDS=1,(.|\n)*EADDRINUSE/ },
  ];
  for (const b of broken) {
    if (b.server === undefined) unlinkSync(join(dir, 'server'));
    else setServer(dir, b.server);
    const r = await master.cli(['reload', '--json']);
    assert.equal(r.code, 1, `${b.name}: hitless reload must fail\n${r.stdout}\n${r.stderr}`);
    const outcome = JSON.parse(r.stdout) as { ok: boolean; generation: number; error: { code: string; message: string; output: string[] } };
    assert.equal(outcome.ok, false, b.name);
    assert.equal(outcome.generation, 1, `${b.name}: generation 1 must still serve`);
    assert.equal(outcome.error.code, b.code, `${b.name}: ${outcome.error.message}`);
    assert.match(`${outcome.error.message}\n${outcome.error.output.join('\n')}`, b.says, b.name);
  }
  // The old generation served all along; a good build then goes live.
  setServer(dir, good);
  const ok = await master.reload();
  assert.equal(ok.code, 0, ok.stderr);
  const result = await load.stop();
  assert.equal(result.failed, 0, `failed requests while broken builds were tried:\n${result.raw}`);
  assert.deepEqual(result.generations, ['1', '8']);
  const st = await master.status();
  assert.equal(st.generation, 8);
  assert.equal(st.workers.length, 2);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('a drain that outlives drainTimeout is forced and reported', { timeout: 150_000 }, async (t) => {
  const master = await startMaster(t, {
    command: ['node', fixture('master/ignore-sigterm.js')],
    workers: 2,
    // The preload would drain this app (which listens on fd 3 itself) before its handler runs.
    args: ['--drain-timeout', '1s', '--no-preload'],
  });
  const r = await master.cli(['reload', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const outcome = JSON.parse(r.stdout) as { ok: boolean; forced: number; generation: number };
  assert.equal(outcome.ok, true);
  assert.equal(outcome.forced, 2);
  const drained = await master.waitEvent('reload-drained');
  assert.equal(drained.forced, 2);
  const exits = master.events('worker-exit').filter((e) => e.generation === 1);
  assert.deepEqual(exits.map((e) => e.signal), ['SIGKILL', 'SIGKILL']);
  // The stop at the end forces the new generation too (it ignores SIGTERM as well).
  const stopped = await master.stop();
  assert.equal(stopped.code, 0);
});

test('a new worker that accepts but never says READY gets its stop signal at readyTimeout, not SIGKILL: the request it holds is answered (regression: it was reset)', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-failures-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  setServer(dir, `exec node ${fixture('master/app.js')}`);
  const master = await startMaster(t, { command: ['./server'], cwd: dir, workers: 1, args: ['--ready-timeout', '5s', '--drain-timeout', '20s'] });
  const port = Number(master.address().split(':').pop());
  // Without the preload, which would announce READY for an app that listens (docs/frameworks.md).
  setServer(dir, `NODE_OPTIONS= exec node ${fixture('master/never-ready-holds.js')}`);
  const reload = master.cli(['reload', '--json']);
  await master.waitStdout('never-ready-holds listening');
  // New connections, one at a time, until one lands on the never-ready worker (the serving
  // one answers the others at once): that request is in flight when readyTimeout comes.
  let inFlight: Promise<{ status: number | undefined; body: string }> | undefined;
  for (let id = 0; inFlight === undefined; id++) {
    assert.ok(id < 500, 'no connection reached the new worker');
    const res = get(port, `/?id=${id}`);
    const heldHere = master.waitStdout(`held ${id} `).then(() => 'held' as const);
    if ((await Promise.race([res.then(() => 'answered' as const), heldHere])) === 'held') inFlight = res;
  }
  const r = await reload;
  assert.equal(r.code, 1, r.stdout);
  assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'ERR_READY_TIMEOUT');
  const answer = await inFlight;
  assert.equal(answer.status, 200);
  assert.equal(answer.body, 'answered by generation 2 after its stop signal\n');
  const exit = await master.waitEvent((e) => e.event === 'worker-exit' && e.generation === 2);
  assert.deepEqual([exit.code, exit.signal, exit.planned], [0, null, true]);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

/** One GET on a connection of its own (Connection: close); rejects when the connection is reset. */
function get(port: number, path: string): Promise<{ status: number | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
