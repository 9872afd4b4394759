// Keeping it running: crashed workers come back, crash loops stop and show, SIGHUPs are
// never dropped, and a master killed with SIGKILL leaves no orphan behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readOr, statFields } from '../../src/core/procfs.js';
import { alive, fixture, runCli, startMaster, waitUntil } from '../helpers/master.js';
import { startLoad } from '../helpers/load.js';

function appDir(t: { after(fn: () => void): void }, config: object): string {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-supervision-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify(config));
  return dir;
}

test('a crashed worker is restarted in its slot and the restart is counted', { timeout: 150_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')], workers: 2 });
  const before = await master.status();
  const victim = before.workers[0]?.pid ?? 0;
  const from = master.records.length;
  process.kill(victim, 'SIGKILL');
  const crash = await master.waitEvent((r) => r.event === 'worker-exit' && r.pid === victim, from);
  assert.equal(crash.planned, false);
  assert.equal(crash.signal, 'SIGKILL');
  await master.waitEvent((r) => r.event === 'worker-restart', from);
  await master.waitEvent((r) => r.event === 'worker-ready', from);
  const after = await master.status();
  assert.equal(after.generation, 1);
  assert.equal(after.workers.filter((w) => w.state === 'ready').length, 2);
  assert.equal(after.workers.find((w) => w.restarts === 1)?.state, 'ready');
  assert.ok(!after.workers.some((w) => w.pid === victim));
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

/** Has `pid` ended (gone, or a zombie nobody reaps: a container's init may not)? */
function ended(pid: number): boolean {
  const state = statFields(readOr(`/proc/${pid}/stat`))?.[0];
  return state === undefined || state === 'Z';
}

test('a crashed worker\'s children (gunicorn\'s workers when its arbiter is killed) get the stop signal, not left serving as orphans', { timeout: 150_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-supervision-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const childPidFile = join(dir, 'child.pid');
  // A worker that started a child in its process group (which it shares with the child).
  const master = await startMaster(t, {
    command: ['sh', '-c', 'sleep 300 & echo $! > "$0"; exec sleep 300', childPidFile],
    args: ['--ready-after', '100ms'],
  });
  const victim = (await master.status()).workers[0]?.pid ?? 0;
  await waitUntil(() => existsSync(childPidFile) && readFileSync(childPidFile, 'utf8').endsWith('\n'), 'the worker wrote its child\'s pid');
  const child = Number(readFileSync(childPidFile, 'utf8'));
  const from = master.records.length;
  process.kill(victim, 'SIGKILL');
  await master.waitEvent((r) => r.event === 'worker-exit' && r.pid === victim, from);
  await waitUntil(() => ended(child), `the crashed worker's child ${child} ends`);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('a crash loop marks the slot failed, shows it in status, and the master stays up', { timeout: 150_000 }, async (t) => {
  const dir = appDir(t, { restart: { backoffInitial: '10ms', backoffMax: '50ms', maxRestarts: 3, window: '1m' } });
  const master = await startMaster(t, { command: ['node', fixture('master/crash-if-marker.js')], cwd: dir, workers: 2 });
  const victim = (await master.status()).workers[0]?.pid ?? 0;
  writeFileSync(join(dir, 'crash'), '');
  const from = master.records.length;
  process.kill(victim, 'SIGKILL');
  const failed = await master.waitEvent('slot-failed', from);
  assert.equal(master.records.slice(from).filter((r) => r.event === 'worker-restart').length, 3);
  const st = await master.status();
  const slot = st.workers.find((w) => w.state === 'failed');
  assert.ok(slot, `no failed slot in ${JSON.stringify(st.workers)}`);
  assert.equal(failed.slot, (slot as unknown as { slot: number }).slot);
  assert.equal(st.workers.filter((w) => w.state === 'ready').length, 1, 'the other slot keeps serving');
  assert.match(((st.warnings as string[] | undefined) ?? []).join('\n'), new RegExp(`^worker 1\\.${failed.slot} failed in a crash loop .*; 1 of 2 serve; \`hitless reload\` starts a full generation$`, 'm'));
  const listed = await runCli(['list']);
  const row = listed.stdout.split('\n').find((l) => l.includes(` ${master.pid} `));
  assert.match(row ?? '', / running +1 +1\/1 \(1 failed\) /, listed.stdout);
  // The fix is deployed: a reload brings the generation back whole.
  rmSync(join(dir, 'crash'));
  const r = await master.reload();
  assert.equal(r.code, 0, r.stderr);
  const healed = await master.status();
  assert.equal(healed.workers.filter((w) => w.state === 'ready').length, 2);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

// SIGHUPs are never dropped (issue 25); every phase and timing is unit-tested on a fake
// clock (test/master/sighup.test.ts). Here: the real signal path, under load.

test('100 reloads by SIGHUP, each sent the moment the previous reload-done is logged: 100 reloads run, 0 failed requests (regression: a burst rule swallowed SIGHUPs sent just after a reload)', { timeout: 2_250_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')] });
  const load = startLoad(t, { url: master.url('/'), connections: 8, thinkMs: [0, 20] });
  for (let generation = 2; generation <= 101; generation++) {
    const from = master.records.length;
    process.kill(master.pid, 'SIGHUP');
    const done = await master.waitEvent('reload-done', from);
    assert.equal(done.generation, generation, JSON.stringify(done));
  }
  const result = await load.stop();
  assert.equal(master.events('reload-start').length, 100);
  assert.equal(master.events('sighup').length, 100, 'every SIGHUP is logged');
  assert.equal(result.failed, 0, result.raw);
  assert.ok(result.ok > 0, result.raw);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('a SIGHUP during a reload is queued, logged as such, runs next, and shows in status', { timeout: 150_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')], args: ['--drain-timeout', '120s'] });
  // A request in flight keeps generation 1 draining while the second SIGHUP comes, however
  // long generation 2 takes to boot on a busy machine: it ends when the test makes the file.
  const dir = mkdtempSync(join(tmpdir(), 'hitless-hup-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const release = join(dir, 'release');
  const slow = fetch(master.url(`/slow?until=${encodeURIComponent(release)}&id=hup`)).then((r) => r.text());
  await master.waitStdout('slow-start hup ');
  const from = master.records.length;
  process.kill(master.pid, 'SIGHUP');
  await master.waitEvent('reload-draining', from);
  process.kill(master.pid, 'SIGHUP');
  const queued = await master.waitEvent('reload-queued', from);
  // The kernel keeps one pending SIGHUP: the next one goes once the master took this one.
  process.kill(master.pid, 'SIGHUP');
  const merged = await master.waitEvent((r) => r.event === 'reload-queued' && r.merged === true, from);
  assert.equal(queued.msg, 'SIGHUP: reload queued behind generation 2');
  assert.equal(merged.msg, 'SIGHUP: merged into the queued reload');
  const st = await master.cli(['status']);
  assert.match(st.stdout, /\(reload queued for SIGHUP ×2\)/, st.stdout);
  assert.match(st.stdout, /requests {4}3 reloads asked for: 1 started at once, 1 queued behind another, 1 merged into a queued one/, st.stdout);
  writeFileSync(release, '');
  assert.equal(await slow, 'slow 1\n');
  const second = await master.waitEvent((r) => r.event === 'reload-done' && r.generation === 3, from);
  assert.equal(second.level, 'info');
  assert.equal(master.events('reload-start').length, 2, 'three SIGHUPs, the last two merged: two reloads');
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('master SIGKILL: every worker exits by itself within the drain timeout and the port is released', { timeout: 150_000 }, async (t) => {
  const master = await startMaster(t, {
    command: ['node', fixture('master/app.js')],
    workers: 2,
    args: ['--drain-timeout', '5s'],
  });
  const [host, portText] = master.address().split(':') as [string, string];
  const pids = (await master.status()).workers.map((w) => w.pid ?? 0);
  assert.equal(pids.length, 2);
  process.kill(master.pid, 'SIGKILL');
  await master.exited;
  await waitUntil(() => pids.every((pid) => !alive(pid)), 'the orphaned workers exit', 5_000);
  const free = await new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(Number(portText), host, () => s.close(() => resolve(true)));
  });
  assert.ok(free, `port ${portText} still held after the master and its workers died`);
});

test('master SIGKILL while a request is in flight: the worker drains it (its parent-death signal arrives twice and is one stop, regression)', { timeout: 150_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')] });
  const [pid] = (await master.status()).workers.map((w) => w.pid ?? 0);
  assert.ok(pid, 'the worker runs');
  const slow = fetch(master.url('/slow?ms=1500&id=orphan')).then(
    async (r) => ({ status: r.status, body: await r.text() }),
    (err: unknown) => ({ status: 0, body: String((err as Error).cause ?? err) }),
  );
  await master.waitStdout('slow-start orphan ');
  // A Node master has several threads: the kernel sends the worker its parent-death signal
  // (setpriv --pdeathsig) once per re-parenting, to another thread of the dying master, then
  // to init, a few milliseconds apart. Taken as the operator's second signal, it cut the request.
  process.kill(master.pid, 'SIGKILL');
  await master.exited;
  assert.deepEqual(await slow, { status: 200, body: 'slow 1\n' });
  await waitUntil(() => !alive(pid!), 'the orphaned worker exits once drained', 10_000);
});

test('master SIGKILL with a long shutdownDelay: the orphaned worker closes its listener at once (a restarted master can bind the port) and still answers its request in flight (regression: the port was held for the whole delay, and supervisord gave up restarting)', { timeout: 150_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-orphan-delay-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const release = join(dir, 'release');
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')], env: { SHUTDOWN_DELAY_MS: '120000' }, args: ['--drain-timeout', '150s'] });
  const [host, portText] = master.address().split(':') as [string, string];
  const [pid] = (await master.status()).workers.map((w) => w.pid ?? 0);
  const slow = fetch(master.url(`/slow?until=${encodeURIComponent(release)}&id=held`)).then(
    async (r) => ({ status: r.status, body: await r.text() }),
    (err: unknown) => ({ status: 0, body: String((err as Error).cause ?? err) }),
  );
  await master.waitStdout('slow-start held ');
  process.kill(master.pid, 'SIGKILL');
  await master.exited;
  const bindable = (): Promise<boolean> => new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(Number(portText), host, () => s.close(() => resolve(true)));
  });
  // Without the fix the worker's copy of the socket stays open for the 120 s delay.
  await waitUntil(bindable, `port ${portText} released by the orphaned worker`, 30_000);
  assert.ok(alive(pid!), 'the worker still drains its request in flight');
  writeFileSync(release, '');
  assert.deepEqual(await slow, { status: 200, body: 'slow 1\n' });
  await waitUntil(() => !alive(pid!), 'the orphaned worker exits once drained', 10_000);
});

test('stopping the master while a reload drains never signals a draining worker twice: its in-flight request completes (regression)', { timeout: 150_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/app.js')] });
  const slow = fetch(master.url('/slow?ms=1500&id=stop')).then(async (r) => ({ status: r.status, body: await r.text() }));
  await master.waitStdout('slow-start stop ');
  const reload = master.reload();
  await master.waitEvent('reload-draining');
  const stopped = master.stop();
  const answer = await slow;
  assert.equal(answer.status, 200);
  assert.equal(answer.body, 'slow 1\n');
  assert.deepEqual(await stopped, { code: 0, signal: null });
  const exits = master.events('worker-exit');
  assert.ok(exits.every((e) => e.code === 0), JSON.stringify(exits));
  await reload;
});
