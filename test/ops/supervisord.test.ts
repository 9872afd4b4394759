/**
 * supervisord runs the master like any long-running program: the master's PID never
 * changes across reloads (supervisorctl signal HUP, hitless reload), and `supervisorctl
 * stop` sends SIGTERM and waits while the master drains its workers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, cli, fixture, runCli } from '../helpers/master.js';
import { needs } from '../helpers/tools.js';
import { followLog } from '../../src/ops/logtail.js';


function ctl(conf: string, ...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('supervisorctl', ['-c', conf, ...args], (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code ?? 1) : 0, out: stdout + stderr }));
  });
}

test('supervisord: start, reload by SIGHUP and hitless reload with a constant PID, hitless upgrade refused, graceful stop', { skip: needs('supervisord', 'supervisorctl'), timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-supervisord-'));
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  const runDir = join(dir, 'run');
  const conf = join(dir, 'supervisord.conf');
  writeFileSync(conf, `
[unix_http_server]
file=${dir}/supervisor.sock

[supervisord]
nodaemon=true
logfile=${dir}/supervisord.log
pidfile=${dir}/supervisord.pid
childlogdir=${dir}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://${dir}/supervisor.sock

[program:app]
command=${process.execPath} ${cli} start --log-format json --run-dir ${runDir} --workers 2 --listen 127.0.0.1:0 --drain-timeout 10s -- ${process.execPath} ${fixture('ops/app.js')}
directory=${dir}
autostart=false
autorestart=unexpected
startsecs=1
stopsignal=TERM
stopwaitsecs=30
killasgroup=true
stdout_logfile=${logs}/app.out
stderr_logfile=${logs}/workers.log
`);
  const supervisord = spawn('supervisord', ['-c', conf], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let daemonOut = '';
  const up = new Promise<void>((resolve) => {
    const on = (c: Buffer): void => { daemonOut += c.toString(); if (daemonOut.includes('supervisord started with pid')) resolve(); };
    supervisord.stdout.on('data', on);
    supervisord.stderr.on('data', on);
  });
  const daemonExit = new Promise<void>((resolve) => supervisord.once('exit', () => resolve()));
  const follow = new AbortController();
  t.after(async () => {
    follow.abort();
    if (supervisord.exitCode === null) {
      supervisord.kill('SIGTERM');
      await daemonExit;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  await up;

  // The master's JSON event log is the program's stderr: follow it to wait on events.
  const events: { event?: string; [k: string]: unknown }[] = [];
  let waiter: { event: string; resolve: () => void } | undefined;
  const next = (event: string): Promise<void> => new Promise((resolve) => {
    if (events.some((e) => e.event === event)) { events.length = 0; return resolve(); }
    waiter = { event, resolve: () => { events.length = 0; resolve(); } };
  });
  const following = followLog(logs, (line) => {
    try {
      const e = JSON.parse(line) as { event?: string };
      events.push(e);
      if (waiter && e.event === waiter.event) { const w = waiter; waiter = undefined; w.resolve(); }
    } catch { /* not JSON */ }
  }, follow.signal, { pollMs: 50, backlog: 1000 });

  const ready = next('master-ready');
  const started = await ctl(conf, 'start', 'app');
  assert.equal(started.code, 0, started.out);
  assert.match(started.out, /app: started/);
  await ready;
  const pid = Number((await ctl(conf, 'pid', 'app')).out.trim());
  assert.ok(pid > 0);

  const status = async (): Promise<{ pid: number; generation: number; listeners: { address: string }[]; workers: { pid: number }[] }> => {
    const r = await runCli(['status', '--json', '--run-dir', runDir]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as never;
  };
  const s1 = await status();
  assert.equal(s1.pid, pid, 'supervisord\'s pid is the master');
  const url = `http://${s1.listeners[0]!.address}/`;
  assert.equal((await fetch(url)).headers.get('x-generation'), '1');

  const hup = next('reload-done');
  assert.equal((await ctl(conf, 'signal', 'HUP', 'app')).code, 0);
  await hup;
  assert.equal((await fetch(url)).headers.get('x-generation'), '2');
  assert.equal((await runCli(['reload', '--run-dir', runDir])).code, 0);
  const s3 = await status();
  assert.equal(s3.generation, 3);
  // An upgrade would change the PID supervisord follows: refused, with what to do instead.
  const upgrade = await runCli(['upgrade', '--run-dir', runDir]);
  assert.equal(upgrade.code, 1, upgrade.stdout);
  assert.match(upgrade.stderr, /^hitless: upgrade refused: supervisord runs this master \(program app\).*supervisorctl restart app.*\(ERR_UPGRADE_REFUSED\)/);
  assert.equal(Number((await ctl(conf, 'pid', 'app')).out.trim()), pid, 'the master PID never changed');
  assert.match((await ctl(conf, 'status', 'app')).out, /RUNNING/);

  const stopped = await ctl(conf, 'stop', 'app');
  assert.match(stopped.out, /app: stopped/);
  assert.match(readFileSync(join(dir, 'supervisord.log'), 'utf8'), /stopped: app \(exit status 0\)/, 'a graceful exit, not a SIGKILL');
  for (const w of s3.workers) assert.equal(alive(w.pid), false, `worker ${w.pid} is gone`);
  follow.abort();
  await following;
});
