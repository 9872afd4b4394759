/**
 * The master under systemd's notify protocol, against a real NOTIFY_SOCKET: a datagram
 * socket bound by python3 (test/fixtures/ops/notify-listener.py) stands in for systemd and
 * reports every message with its sender, and the master talks to it through systemd's own
 * `systemd-notify` (src/master/notify.ts). Checked: READY=1 when the first generation
 * serves, WATCHDOG=1, RELOADING=1 (MONOTONIC_USEC) and READY=1 around a reload, MAINPID= of
 * the new master on an upgrade before the old one is gone, the new master speaking from
 * then on, and workers never seeing NOTIFY_SOCKET. Also: an upgrade hands on the sockets
 * systemd gave the master (LISTEN_FDS), as systemd's; and a NOTIFY_SOCKET that takes no
 * messages (test/fixtures/ops/deaf-notify.py) holds neither an upgrade nor a stop.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, cli, fixture, runCli, sourceFixture, trackMaster } from '../helpers/master.js';
import { startLoad } from '../helpers/load.js';
import { needs } from '../helpers/tools.js';
import { spawnSocketActivated } from '../helpers/socket-activation.js';
import type { StatusSnapshot, UpgradeOutcome } from '../../src/core/types.js';
import { copyHitless, startFromSymlink } from '../master/upgrade-setup.js';

interface Datagram {
  pid: number | null;
  at: number;
  fields: string[];
}

/** The python listener: its datagrams, and a wait for the next one matching. */
async function notifySocket(t: TestContext): Promise<{ path: string; got: Datagram[]; next(pred: (d: Datagram) => boolean, from?: number): Promise<Datagram> }> {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-notify-'));
  const path = join(dir, 'notify.sock');
  const py = spawn('python3', [sourceFixture('ops/notify-listener.py'), path], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    py.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const got: Datagram[] = [];
  const waiters: { pred: (d: Datagram) => boolean; from: number; resolve: (d: Datagram) => void }[] = [];
  let listening: () => void = () => {};
  const ready = new Promise<void>((resolve) => (listening = resolve));
  let partial = '';
  py.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const m = JSON.parse(line) as Datagram & { listening?: string };
      if (m.listening) {
        listening();
        continue;
      }
      got.push(m);
      for (const w of [...waiters]) {
        if (got.length - 1 >= w.from && w.pred(m)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    }
  });
  await ready;
  return {
    path, got,
    next: (pred, from = 0) => {
      const found = got.slice(from).find(pred);
      return found ? Promise.resolve(found) : new Promise((resolve) => waiters.push({ pred, from, resolve }));
    },
  };
}

const has = (field: string) => (d: Datagram): boolean => d.fields.includes(field);
const value = (d: Datagram, key: string): string | undefined => d.fields.find((f) => f.startsWith(`${key}=`))?.slice(key.length + 1);
/** As root, systemd-notify sends with its parent's (the master's) credentials; otherwise with its own. */
const root = process.getuid?.() === 0;

test('the notify protocol against a real NOTIFY_SOCKET: READY, WATCHDOG, RELOADING/READY around a reload, MAINPID of the new master on an upgrade', { skip: needs('python3', 'systemd-notify'), timeout: 450_000 }, async (t) => {
  const sock = await notifySocket(t);
  const { master, dir, runDir } = await startFromSymlink(t, {
    command: ['node', fixture('master/app.js')], workers: 2, env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '400000' },
  });
  const oldPid = master.pid;
  const ready = await sock.next(has('READY=1'));
  assert.equal(value(ready, 'STATUS'), 'generation 1 serving, 2/2 workers ready');
  if (root) assert.equal(ready.pid, oldPid, 'sent with the master\'s credentials');
  await sock.next(has('WATCHDOG=1'));

  let from = sock.got.length;
  const reload = await runCli(['reload', '--run-dir', runDir]);
  assert.equal(reload.code, 0, reload.stderr);
  const reloading = await sock.next(has('RELOADING=1'), from);
  assert.match(value(reloading, 'MONOTONIC_USEC') ?? '', /^\d+$/);
  const reloaded = await sock.next(has('READY=1'), sock.got.indexOf(reloading));
  assert.equal(value(reloaded, 'STATUS'), 'generation 2 serving, 2/2 workers ready');

  from = sock.got.length;
  const copy = copyHitless(join(dir, 'copy'), '0.1.0-notify-test');
  const up = await runCli(['upgrade', '--json', '--exec', copy, '--run-dir', runDir]);
  assert.equal(up.code, 0, up.stdout + up.stderr);
  const outcome = JSON.parse(up.stdout) as UpgradeOutcome;
  const upgrading = await sock.next(has('RELOADING=1'), from);
  assert.match(value(upgrading, 'STATUS') ?? '', /^upgrading: starting /);
  const handed = await sock.next((d) => d.fields.some((f) => f.startsWith('MAINPID=')), from);
  assert.equal(value(handed, 'MAINPID'), String(outcome.pid));
  assert.ok(handed.fields.includes('READY=1'));
  if (root) assert.equal(handed.pid, oldPid, 'the old master told systemd');
  // Before the old master let go of its workers (it waits for systemd to have MAINPID).
  const stopped = master.records.find((r) => r.event === 'master-stop' && r.reason === 'upgraded');
  assert.ok(stopped && handed.at < Date.parse(String(stopped.time)), 'MAINPID= arrived before the old master ended');
  // From then on the new master speaks: its status, its watchdog.
  const after = sock.got.indexOf(handed) + 1;
  await sock.next((d) => value(d, 'STATUS') === 'generation 3 serving, 2/2 workers ready', after);
  const dog = await sock.next((d) => has('WATCHDOG=1')(d) && (!root || d.pid === outcome.pid), after);
  if (root) assert.equal(dog.pid, outcome.pid);
  assert.ok(!sock.got.slice(after).some((d) => root && d.pid === oldPid), 'the old master is silent after MAINPID=');

  // Workers never get systemd's variables: their READY=1 would be taken for the service's.
  const st = JSON.parse((await runCli(['status', '--json', '--run-dir', runDir])).stdout) as StatusSnapshot;
  for (const w of st.workers) {
    const env = readFileSync(`/proc/${String(w.pid)}/environ`, 'utf8').split('\0');
    assert.ok(!env.some((e) => /^(NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID)=/.test(e)), `worker ${String(w.pid)} sees systemd's variables`);
  }
  from = sock.got.length;
  assert.equal((await runCli(['reload', '--run-dir', runDir])).code, 0);
  await sock.next(has('RELOADING=1'), from);
  await sock.next((d) => has('READY=1')(d) && value(d, 'STATUS') === 'generation 4 serving, 2/2 workers ready', from);
  assert.equal((await runCli(['stop', '--run-dir', runDir])).code, 0);
  t.diagnostic(sock.got.filter((d) => !has('WATCHDOG=1')(d)).map((d) => `${String(d.pid)}: ${d.fields.join(' ')}`).join('\n'));
});

test('an upgrade hands on the socket systemd gave the master (LISTEN_FDS, fd 3): the new master holds it as systemd\'s and serves on it, under paced keep-alive users', { skip: needs('python3'), timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-sockact-up-'));
  const runDir = join(dir, 'run');
  // python3 plays systemd (test/helpers/socket-activation.ts): a listening socket at fd 3.
  const child = spawnSocketActivated([process.execPath, cli, 'start', '--log-format', 'json', '--run-dir', runDir,
    '--workers', '2', '--', process.execPath, fixture('master/app.js')], dir);
  t.after(() => {
    for (const r of master.records) if (r.event === 'upgrade-phase' && typeof r.pid === 'number') try { process.kill(r.pid, 'SIGKILL'); } catch { /* gone */ }
  });
  const master = trackMaster(t, child, runDir, dir);
  await master.waitEvent('master-ready');
  const port = Number(/PORT (\d+)/.exec(master.stderr)?.[1]);
  const users = 100;
  const load = startLoad(t, { url: `http://127.0.0.1:${port}/`, connections: users, thinkMs: [0, 500] });
  const copy = copyHitless(join(dir, 'copy'), '0.1.0-sockact-test');
  const up = await runCli(['upgrade', '--json', '--exec', copy, '--run-dir', runDir]);
  assert.equal(up.code, 0, up.stdout + up.stderr);
  const st = JSON.parse((await runCli(['status', '--json', '--run-dir', runDir])).stdout) as StatusSnapshot;
  assert.deepEqual(st.listeners.map((l) => [l.name, l.fd, l.inherited]), [['http', 3, true]]);
  assert.equal(st.version, '0.1.0-sockact-test');
  const result = await load.stop();
  assert.equal(result.failed, 0, result.raw);
  assert.equal(result.opened, users, result.raw);
  assert.deepEqual(result.generations, ['1', '2']);
  assert.equal((await runCli(['stop', '--run-dir', runDir])).code, 0);
});

/** A notify socket whose queue is full and that never reads: every `systemd-notify` blocks in sendmsg. */
async function deafSocket(t: TestContext): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-deaf-'));
  const path = join(dir, 'notify.sock');
  const py = spawn('python3', [sourceFixture('ops/deaf-notify.py'), path], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => {
    py.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve, reject) => {
    py.stdout.setEncoding('utf8').once('data', () => resolve());
    py.once('exit', (code) => reject(new Error(`deaf-notify.py exited with ${String(code)}`)));
  });
  return path;
}

test('a NOTIFY_SOCKET that takes no messages holds neither an upgrade nor a stop: each systemd-notify run is killed after its timeout, one warning (regression: a stopped master stayed for minutes)', { skip: needs('python3', 'systemd-notify'), timeout: 120_000 }, async (t) => {
  const path = await deafSocket(t);
  // A short kill timeout (default 6 s): without one the runs below never end.
  const { master, dir, runDir } = await startFromSymlink(t, {
    command: ['node', fixture('master/app.js')], workers: 2, env: { NOTIFY_SOCKET: path, HITLESS_NOTIFY_TIMEOUT_MS: '300' },
  });
  for (let i = 0; i < 2; i++) assert.equal((await master.reload()).code, 0);
  const copy = copyHitless(join(dir, 'copy'), '0.1.0-deaf-test');
  const up = await runCli(['upgrade', '--json', '--exec', copy, '--run-dir', runDir]);
  assert.equal(up.code, 0, up.stdout + up.stderr);
  const outcome = JSON.parse(up.stdout) as UpgradeOutcome;
  // The old master is gone once its workers moved: its exit waited for no systemd-notify.
  assert.equal((await master.exited).code, 0);
  const stop = await runCli(['stop', '--run-dir', runDir]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.ok(!alive(outcome.pid), 'the new master is gone once `hitless stop` returned');
  const warned = master.records.filter((r) => r.msg.startsWith('systemd notify failed'));
  assert.ok(warned.length >= 1, 'the old master said systemd is not hearing it');
  assert.match(warned[0]!.msg, /did not finish within 300 ms, killed: the notify socket .* takes no messages/);
  // Not one per message: at most one per master (the new master writes to the same output;
  // muted until it has the service, it warns once after its takeover).
  assert.ok(warned.length <= 2, JSON.stringify(warned));
  const committed = master.records.findIndex((r) => r.event === 'upgrade-phase' && r.phase === 'committed');
  assert.equal(master.records.slice(0, committed).filter((r) => warned.includes(r)).length, 1, 'the old master warned once over its two reloads and the upgrade');
});
