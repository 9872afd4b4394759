// The master replaces itself (issue 22): a master started from one copy of hitless is
// upgraded to another copy, installed meanwhile where the first one was, under load —
// every socket and every keep-alive connection moves, nothing fails, nobody reconnects —
// and a new copy that cannot serve never takes over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { alive, cli, fixture, runCli, startMaster, waitUntil, type LogRecord } from '../helpers/master.js';
import { establishedTo, startLoad } from '../helpers/load.js';
import type { StatusSnapshot, UpgradeOutcome } from '../../src/core/types.js';
import { copyHitless, pointAt, startFromSymlink } from './upgrade-setup.js';

const NEW_VERSION = '0.1.0-upgrade-test';

async function upgrade(runDir: string, ...args: string[]): Promise<{ code: number | null; outcome: UpgradeOutcome; stderr: string }> {
  const r = await runCli(['upgrade', '--json', '--run-dir', runDir, ...args]);
  return { code: r.code, outcome: JSON.parse(r.stdout) as UpgradeOutcome, stderr: r.stderr };
}

async function status(runDir: string): Promise<StatusSnapshot> {
  const r = await runCli(['status', '--json', '--run-dir', runDir]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as StatusSnapshot;
}

function get(url: string): Promise<{ status: number; body: string; generation: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, generation: String(res.headers['x-generation']) }));
    }).on('error', reject);
  });
}

test('hitless upgrade to the copy now installed, under 1000 paced keep-alive users: 0 failed, connections opened = users, new pid serving, old master gone, pid file updated; status and reload work against the new master', { timeout: 600_000 }, async (t) => {
  // Idle connections kept for a minute: only the upgrade may close them here (KEEP_ALIVE_MS).
  const { master, dir, bin, runDir, pidFile } = await startFromSymlink(t, {
    command: ['node', fixture('master/app.js')], workers: 2, env: { KEEP_ALIVE_MS: '60000' },
  });
  const oldPid = master.pid;
  assert.equal(readFileSync(pidFile, 'utf8'), `${oldPid}\n`);
  const copy = copyHitless(join(dir, 'copy'), NEW_VERSION);
  const users = 1000;
  const load = startLoad(t, {
    url: master.url('/'), connections: users, thinkMs: [0, 1200], method: 'POST', body: '{"user":1}',
    headers: { 'Content-Type': 'application/json' },
  });
  // Every user has its connection before the upgrade (connecting 1000 users takes a while
  // on a busy machine), so the upgrade has exactly these connections to move.
  const port = Number(master.address().split(':')[1]);
  await waitUntil(() => establishedTo(port) >= users, `all ${users} users connected`, 60_000, 50);
  // An install replaces what bin/hitless points at; `hitless upgrade` runs what is there now.
  pointAt(bin, copy);
  const { code, outcome, stderr } = await upgrade(runDir);
  assert.equal(code, 0, `${JSON.stringify(outcome, null, 2)}\n${stderr}`);
  t.diagnostic(`upgrade: ${JSON.stringify({ ms: outcome.durationMs, connections: outcome.connections, forced: outcome.forced })}`);
  assert.equal(outcome.ok, true);
  assert.equal(outcome.version, NEW_VERSION);
  assert.equal(outcome.from.pid, oldPid);
  assert.notEqual(outcome.pid, oldPid);
  assert.equal(outcome.generation, 2);
  assert.match(outcome.to?.exec ?? '', /bin\/hitless → .*\/copy\/build\/src\/cli\/main\.js$/);
  assert.equal(alive(oldPid), false, 'the old master is gone once `hitless upgrade` returns');
  assert.deepEqual(await master.exited, { code: 0, signal: null });
  assert.equal(readFileSync(pidFile, 'utf8'), `${outcome.pid}\n`);
  const c = outcome.connections!;
  assert.deepEqual(c, { handedOver: users, returned: 0, lost: 0, drained: 0, cut: 0 }, 'every user\'s connection moved to the new master\'s workers');

  // The new master answers the control socket, with its own version, and reloads.
  const st = await status(runDir);
  assert.equal(st.pid, outcome.pid);
  assert.equal(st.version, NEW_VERSION);
  assert.equal(st.generation, 2);
  assert.equal(st.upgradedFrom?.pid, oldPid);
  assert.equal(st.workers.filter((w) => w.state === 'ready').length, 2);
  const reload = await runCli(['reload', '--run-dir', runDir]);
  assert.equal(reload.code, 0, reload.stdout + reload.stderr);
  assert.equal((await status(runDir)).generation, 3);

  const result = await load.stop();
  t.diagnostic(`load: ${result.raw}`);
  assert.equal(result.failed, 0, `failed requests: ${result.raw}`);
  assert.equal(result.opened, users, `the users re-opened connections: ${result.raw}`);
  assert.equal(result.idleClosed, 0, result.raw);
  assert.ok(result.requests > users * 2, `too little traffic to mean anything: ${result.raw}`);
  assert.deepEqual(result.generations, ['1', '2', '3']);

  const stop = await runCli(['stop', '--run-dir', runDir]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(alive(outcome.pid), false);
  assert.throws(() => readFileSync(pidFile), /ENOENT/, 'the new master removes the pid file it owns at its stop');
});

test('hitless upgrade under saturating keep-alive load, a 2 s request in flight: 0 failed, no connection re-opened, the slow request completes', { timeout: 450_000 }, async (t) => {
  const { master, dir, runDir } = await startFromSymlink(t, { command: ['node', fixture('master/app.js')], workers: 2 });
  const copy = copyHitless(join(dir, 'copy'), NEW_VERSION);
  const connections = 64;
  const load = startLoad(t, { url: master.url('/'), connections });
  const slow = get(master.url('/slow?ms=2000&id=up'));
  await master.waitStdout('slow-start up ');
  const { code, outcome, stderr } = await upgrade(runDir, '--exec', copy);
  assert.equal(code, 0, `${JSON.stringify(outcome, null, 2)}\n${stderr}`);
  t.diagnostic(`upgrade: ${JSON.stringify({ ms: outcome.durationMs, connections: outcome.connections })}`);
  // Some load on the new master alone.
  const reload = await runCli(['reload', '--run-dir', runDir]);
  assert.equal(reload.code, 0, reload.stderr);
  const result = await load.stop();
  const answer = await slow;
  t.diagnostic(`load: ${result.raw}`);
  assert.equal(result.failed, 0, `failed requests: ${result.raw}`);
  assert.equal(result.opened, connections, `connections re-opened: ${result.raw}`);
  assert.ok(result.requests > 1000, `too little load to mean anything: ${result.raw}`);
  assert.deepEqual(result.generations, ['1', '2', '3']);
  assert.deepEqual(answer, { status: 200, body: 'slow 1\n', generation: '1' });
  assert.equal((await runCli(['stop', '--run-dir', runDir])).code, 0);
});

test('a failing upgrade leaves the old master serving: the new copy crashes at start, then its workers never get ready — exit 1 with the reason, 0 failed, no reconnect; then an upgrade goes through', { timeout: 450_000 }, async (t) => {
  const { master, dir, runDir, pidFile } = await startFromSymlink(t, {
    command: ['node', fixture('master/hang-by-marker.js')], workers: 2, args: ['--ready-timeout', '3s'],
  });
  const oldPid = master.pid;
  const users = 200;
  const load = startLoad(t, { url: master.url('/'), connections: users, thinkMs: [0, 300] });

  const broken = copyHitless(join(dir, 'broken'), '9.9.9-broken', true);
  const crash = await runCli(['upgrade', '--exec', broken, '--run-dir', runDir]);
  assert.equal(crash.code, 1, crash.stdout + crash.stderr);
  assert.match(crash.stderr, /^hitless: upgrade failed: the new master \(pid \d+\) exited with code 1 before its first generation was ready \(its output is in this master's log\) \(ERR_UPGRADE_FAILED\); master pid \d+ \(hitless [^)]+\) keeps serving generation 1\n$/);

  const good = copyHitless(join(dir, 'good'), NEW_VERSION);
  writeFileSync(join(dir, 'hang-2'), '');
  const hang = await upgrade(runDir, '--exec', good);
  assert.equal(hang.code, 1);
  assert.equal(hang.outcome.error?.code, 'ERR_UPGRADE_FAILED');
  assert.match(hang.outcome.error?.message ?? '', /failed: the first generation did not start: worker 2\.\d \(pid \d+\) did not announce readiness within 3 s/);
  assert.ok(hang.outcome.error?.output.some((l) => l.includes('hang-2 present, never ready')), JSON.stringify(hang.outcome.error));
  assert.equal(hang.outcome.pid, oldPid);
  assert.equal(hang.outcome.to?.version, undefined);

  const st = await status(runDir);
  assert.equal(st.pid, oldPid);
  assert.equal(st.state, 'running');
  assert.equal(st.generation, 1);
  assert.equal(st.lastUpgrade?.error?.code, 'ERR_UPGRADE_FAILED');
  assert.equal(readFileSync(pidFile, 'utf8'), `${oldPid}\n`);
  assert.ok(alive(oldPid));

  rmSync(join(dir, 'hang-2'));
  const ok = await upgrade(runDir, '--exec', good);
  assert.equal(ok.code, 0, JSON.stringify(ok.outcome.error));
  assert.equal(ok.outcome.generation, 2, 'the failed attempts used no generation number');
  const result = await load.stop();
  t.diagnostic(`load: ${result.raw}`);
  assert.equal(result.failed, 0, `failed requests: ${result.raw}`);
  assert.equal(result.opened, users, `connections re-opened: ${result.raw}`);
  assert.equal((await runCli(['stop', '--run-dir', runDir])).code, 0);
});

test('where the PID must not change (supervisord runs the master), hitless upgrade and SIGUSR2 are refused with one line; the master serves on', { timeout: 150_000 }, async (t) => {
  const master = await startMaster(t, {
    command: ['node', fixture('master/app.js')], workers: 1, env: { SUPERVISOR_ENABLED: '1', SUPERVISOR_PROCESS_NAME: 'myapp' },
  });
  const r = await master.cli(['upgrade']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^hitless: upgrade refused: supervisord runs this master \(program myapp\) and follows its PID: .*supervisorctl restart myapp.* \(ERR_UPGRADE_REFUSED\); master pid \d+ \(hitless [^)]+\) keeps serving generation 1\n$/);
  const from = master.records.length;
  master.child.kill('SIGUSR2');
  const logged = await master.waitEvent('upgrade-done', from);
  assert.equal(logged.code, 'ERR_UPGRADE_REFUSED');
  assert.equal(logged.reason, 'SIGUSR2');
  assert.equal((await get(master.url('/'))).status, 200);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

/** One sample of a Prometheus text exposition (undefined when absent). */
async function sample(address: string, series: string): Promise<number | undefined> {
  const body = await new Promise<string>((resolve, reject) => {
    http.get(`http://${address}/metrics`, { agent: false }, (res) => {
      let b = '';
      res.setEncoding('utf8').on('data', (c: string) => (b += c)).on('end', () => resolve(b));
    }).on('error', reject);
  });
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('what survives an upgrade: the generation counter, the last reload and the reload counters, the metrics counters and the traffic totals go on in the new master', { timeout: 300_000 }, async (t) => {
  const { master, dir, runDir } = await startFromSymlink(t, {
    command: ['node', fixture('master/app.js')], workers: 1, args: ['--config', 'hitless.json'],
    files: { 'hitless.json': JSON.stringify({ metrics: { listen: '127.0.0.1:0' } }) },
  });
  const reload = await runCli(['reload', '--run-dir', runDir]);
  assert.equal(reload.code, 0, reload.stderr);
  for (let i = 0; i < 30; i++) assert.equal((await get(master.url('/'))).generation, '2');
  const before = String(master.records.find((r) => r.msg === 'metrics serving')?.address);
  const served = 'hitless_http_requests_total{release="gen-2",class="2xx"}';
  // Workers report every second: wait until the old master has counted the 30 responses.
  await waitUntil(async () => (await sample(before, served)) === 30, 'the old master counted 30 responses', 10_000, 100);
  assert.equal(await sample(before, 'hitless_reloads_total{result="ok"}'), 1);

  const from = master.records.length;
  const { code, outcome } = await upgrade(runDir, '--exec', copyHitless(join(dir, 'copy'), NEW_VERSION));
  assert.equal(code, 0, JSON.stringify(outcome.error));
  assert.equal(outcome.generation, 3, 'the generation counter went on');
  // The new master starts its metrics at the takeover, as the old one leaves (whose exit ends waitEvent): poll the log.
  const logged = (): unknown => master.records.slice(from).find((r) => r.msg === 'metrics serving')?.address;
  await waitUntil(() => logged() !== undefined, 'the new master serves metrics', 10_000, 20);
  const after = String(logged());
  assert.equal(await sample(after, served), 30, 'the old generation\'s traffic totals went on');
  assert.equal(await sample(after, 'hitless_reloads_total{result="ok"}'), 1);
  assert.equal(await sample(after, 'hitless_reload_requests_total{outcome="started"}'), 1);
  assert.equal(await sample(after, 'hitless_generation'), 3);
  const st = await status(runDir);
  assert.equal(st.lastReload?.generation, 2);
  assert.deepEqual(st.reloadRequests, { started: 1, queued: 0, merged: 0, refused: 0 });
  // Found from its app folder without --run-dir, and by `hitless list`, as a systemd unit's
  // master is: the kernel lists its control socket under the staged name it was bound as.
  const here = await runCli(['status', '--json'], {}, dir);
  assert.equal(here.code, 0, here.stderr);
  assert.equal((JSON.parse(here.stdout) as StatusSnapshot).pid, outcome.to?.pid);
  const list = await runCli(['list', '--json'], {}, dir);
  assert.ok((JSON.parse(list.stdout) as Array<{ runDir: string }>).some((m) => m.runDir === runDir), list.stdout);
  assert.equal((await runCli(['stop', '--run-dir', runDir])).code, 0);
});

test('a SIGHUP during an upgrade is held and run by the new master once the old workers handed over (h18 N4: not while they still do), and a `hitless reload` then is refused, logged and counted there (regression: the SIGHUP was dropped, the refusal unlogged and uncounted)', { timeout: 300_000 }, async (t) => {
  const { master, dir, runDir } = await startFromSymlink(t, {
    command: ['node', fixture('master/wait-by-marker.js')], workers: 1, args: ['--config', 'hitless.json'],
    files: { 'hitless.json': JSON.stringify({}), 'wait-2': '' },
  });
  const from = master.records.length;
  const upgrading = upgrade(runDir, '--exec', copyHitless(join(dir, 'copy'), NEW_VERSION));
  // The new master's worker of generation 2 waits for wait-2 to go: the upgrade is before its commit.
  await master.waitEvent((r) => r.event === 'worker-spawn' && r.generation === 2, from);
  master.child.kill('SIGHUP');
  await master.waitEvent((r) => r.event === 'reload-queued' && r.behind === 'upgrade', from);
  const refused = await runCli(['reload', '--run-dir', runDir]);
  assert.equal(refused.code, 1, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /reload refused: a master upgrade is under way .*\(ERR_UPGRADE_BUSY\)/);
  await master.waitEvent((r) => r.event === 'reload-refused', from);
  const held = await status(runDir);
  assert.equal(held.pid, master.pid);
  assert.deepEqual(held.queuedReload?.reasons, ['SIGHUP']);
  rmSync(join(dir, 'wait-2'));

  const { code, outcome } = await upgrading;
  assert.equal(code, 0, JSON.stringify(outcome.error));
  assert.equal(outcome.generation, 2);
  assert.equal(outcome.reloadsPassedOn, 1);
  // The new master logs to the same output (it inherited it): it runs the held reload.
  const done = (): LogRecord | undefined => master.records.slice(from).find((r) => r.event === 'reload-done' && r.generation === 3);
  await waitUntil(() => done() !== undefined, 'the new master ran the held reload', 60_000, 50);
  const lines = master.records.slice(from);
  assert.ok(lines.some((r) => r.event === 'sighup' && /passed on to the new master .* once the old workers' connections were handed over/.test(String(r.msg))), 'the old master says where the SIGHUP went');
  // Only once the old master's generation handed over and was gone (h18 N4).
  const drained = lines.findIndex((r) => r.event === 'reload-drained' && r.generation === 1);
  const reloading = lines.findIndex((r) => r.event === 'reload-start' && r.generation === 3);
  assert.ok(drained >= 0 && reloading > drained, 'the new master reloads after the old workers are gone');
  // Reloads that did not run in the old master announced no configuration (it reached the upgrade's client too).
  const committed = lines.findIndex((r) => r.event === 'upgrade-phase' && r.phase === 'committed');
  assert.ok(committed > 0 && !lines.slice(0, committed).some((r) => r.event === 'reload-config'), 'no reload-config before the commit');
  const st = await status(runDir);
  assert.equal(st.pid, outcome.to?.pid);
  assert.equal(st.generation, 3);
  assert.equal(st.lastReload?.reason, 'SIGHUP');
  assert.deepEqual(st.reloadRequests, { started: 1, queued: 0, merged: 0, refused: 1 });
  assert.equal((await runCli(['stop', '--run-dir', runDir])).code, 0);
});

test('a pid file moved in hitless.json before an upgrade: the new master writes the new path, the old master removes the old one as it exits (regression, h13 F1: it was left naming the dead master)', { timeout: 300_000 }, async (t) => {
  const { master, dir, runDir } = await startFromSymlink(t, {
    command: ['node', fixture('master/app.js')], workers: 1, pidFileFlag: false,
    files: { 'hitless.json': JSON.stringify({ pidFile: 'a.pid' }) },
  });
  const [before, after] = [join(dir, 'a.pid'), join(dir, 'b.pid')];
  assert.equal(readFileSync(before, 'utf8'), `${master.pid}\n`);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ pidFile: 'b.pid' }));
  const { code, outcome, stderr } = await upgrade(runDir);
  assert.equal(code, 0, stderr);
  assert.deepEqual(await master.exited, { code: 0, signal: null });
  assert.equal(readFileSync(after, 'utf8'), `${outcome.pid}\n`);
  assert.throws(() => readFileSync(before), /ENOENT/, 'the old pid file, naming the master that exited, is gone');
  const stop = await runCli(['stop', '--run-dir', runDir]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.throws(() => readFileSync(after), /ENOENT/);
});

test('a unix-socket listener and control.sock survive the old master\'s exit (libuv unlinks a bound socket\'s path when its handle closes): the new master serves on the same file, removed only at its stop', { timeout: 300_000 }, async (t) => {
  const { master, dir, runDir } = await startFromSymlink(t, { command: ['node', fixture('master/app.js')], workers: 2, listen: ['unix:app.sock'] });
  const socketPath = join(dir, 'app.sock');
  const users = 100;
  const load = startLoad(t, { socketPath, connections: users, thinkMs: [0, 300] });
  const { code, outcome } = await upgrade(runDir, '--exec', copyHitless(join(dir, 'copy'), NEW_VERSION));
  assert.equal(code, 0, JSON.stringify(outcome.error));
  await master.exited;
  assert.ok(statSync(socketPath).isSocket(), 'the unix socket file is still there after the old master exited');
  assert.ok(statSync(join(runDir, 'control.sock')).isSocket(), 'control.sock is still there after the old master exited');
  assert.equal((await status(runDir)).pid, outcome.pid);
  const result = await load.stop();
  // Connections on a unix socket are drained rather than handed over (as in a reload: hand-over moves TCP connections).
  assert.equal(result.failed, 0, result.raw);
  assert.ok(result.generations.includes('2'), result.raw);
  assert.equal((await runCli(['stop', '--run-dir', runDir])).code, 0);
  assert.throws(() => statSync(socketPath), /ENOENT/, 'the new master removes the socket file at its final stop');
});

test('regression (h15 F5): an upgrade with a generation draining in the background names it and waits for it, says "old workers gone" once, passes a SIGHUP to the old master on to the new one at once, and counts the background generation in its outcome', { timeout: 300_000 }, async (t) => {
  const { master, dir, runDir } = await startFromSymlink(t, {
    command: ['node', fixture('master/app.js')], workers: 1, args: ['--config', 'hitless.json'],
    files: { 'hitless.json': JSON.stringify({ drainTimeout: '120s', drain: { reloadWait: '1s' } }) },
  });
  const release = join(dir, 'release');
  // In flight on generation 1 until the test makes `release`: generation 1 drains in the background after the reload.
  const slow = get(master.url(`/slow?until=${encodeURIComponent(release)}&id=bg`));
  void slow.catch(() => {}); // awaited below; a failed assertion before must not leave it unhandled
  await master.waitStdout('slow-start bg ');
  const reload = await runCli(['reload', '--run-dir', runDir]);
  assert.equal(reload.code, 0, reload.stdout + reload.stderr);
  assert.match(reload.stdout, /generation 1 drains on in the background/);
  const from = master.records.length;
  const upgrading = spawn(process.execPath, [cli, 'upgrade', '--run-dir', runDir, '--exec', copyHitless(join(dir, 'copy'), NEW_VERSION)], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => void upgrading.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  upgrading.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  upgrading.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => upgrading.on('close', resolve));
  await waitUntil(() => /old workers gone/.test(stdout), `"old workers gone" (so far: ${stdout})`, 120_000, 50);
  assert.match(stdout, /^upgrade: also draining generation 1 \(background, drain\.reloadWait 1 s reached\): 1 worker, 1 request in flight, SIGKILL in /m);
  assert.match(stdout, /^upgrade: old workers gone \(.*\); still waiting for generation 1 \(background\), SIGKILL in /m);
  // The new master serves and holds the control socket; a SIGHUP to the old master's pid reloads there now.
  master.child.kill('SIGHUP');
  await master.waitEvent((r) => r.event === 'reload-done' && r.generation === 4, from);
  assert.ok(alive(master.pid), 'the old master still waits for generation 1');
  assert.ok(master.records.slice(from).some((r) => r.event === 'sighup' && /passed on to the new master .* as a SIGHUP/.test(String(r.msg))), 'the old master says where the SIGHUP went');
  writeFileSync(release, '');
  assert.equal((await slow).generation, '1');
  assert.equal(await exited, 0, stdout + stderr);
  t.diagnostic(stdout);
  assert.equal(stdout.match(/old workers gone/g)?.length, 1, stdout);
  assert.match(stdout, /^upgrade: generation 1 \(background\) gone after .*: 1 drained$/m);
  assert.match(stdout, /^upgrade: done in .*; waited for generation 1 draining in the background: 1 drained; old master pid \d+ exited$/m);
  const done = master.records.find((r) => r.event === 'upgrade-done');
  assert.deepEqual(done?.background, { generations: [1], forced: 0, drained: 1, cut: 0 });
  assert.equal((await runCli(['stop', '--run-dir', runDir])).code, 0);
});
