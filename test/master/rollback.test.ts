// A new version that goes live and then crashes while the old generation still drains (an
// app that fails seconds after READY): `hitless reload` fails, and the master rolls back to
// the old version on its own, as a new generation. Real master from a config file, real
// workers, real signals; the crash is a SIGKILL the test sends once the switch is logged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, fixture, trackMaster } from '../helpers/master.js';

function get(url: string): Promise<{ body: string; generation: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ body: body.trim(), generation: String(res.headers['x-generation'] ?? '') }));
    }).on('error', reject);
  });
}

test('a new version whose worker dies after it went live, while the old generation drains, fails the reload and is rolled back to the old version', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-rollback-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // The old version ignores its stop signal, so its generation drains until drainTimeout: the
  // new version's crash lands inside the reload, however slow the machine.
  const base = { runDir: 'run', logFormat: 'json', listen: ['127.0.0.1:0'], workers: 2, preload: false, drainTimeout: '10s', drain: { reloadWait: '10s' } };
  const write = (command: string[]): void => writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ ...base, command }, null, 2));
  write(['node', fixture('master/ignore-sigterm.js')]);
  const master = trackMaster(t, spawn(process.execPath, [cli, 'start'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }), join(dir, 'run'), dir);
  await master.waitEvent('master-ready');
  assert.equal((await get(master.url('/'))).body, 'stubborn');

  write(['node', fixture('master/app.js')]);
  const reload = master.cli(['reload', '--json']);
  await master.waitEvent((r) => r.event === 'reload-phase' && r.generation === 2 && r.phase === 'switched');
  const victim = master.events('worker-spawn').find((r) => r.generation === 2 && r.slot === 0)?.pid;
  assert.equal(typeof victim, 'number');
  process.kill(victim as number, 'SIGKILL');

  const r = await reload;
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  const outcome = JSON.parse(r.stdout) as { ok: boolean; generation: number; attempted: number; error: { code: string; message: string }; rollback: unknown };
  assert.equal(outcome.ok, false);
  assert.equal(outcome.attempted, 2);
  assert.equal(outcome.error.code, 'ERR_WORKER_EXITED');
  assert.match(outcome.error.message, /^worker 2\.0 \(pid \d+\) was killed by SIGKILL .* after the new generation went live$/);
  assert.deepEqual(outcome.rollback, { generation: 3, version: 1, ok: true });
  assert.equal(outcome.generation, 3);

  // Generation 3 runs the old version; nothing of generation 2 is left.
  const answer = await get(master.url('/'));
  assert.deepEqual(answer, { body: 'stubborn', generation: '3' });
  const st = await master.status();
  assert.equal(st.generation, 3);
  assert.deepEqual(st.workers.map((w) => w.generation), [3, 3]);
  assert.ok(master.records.some((rec) => rec.event === 'reload-rollback' && rec.generation === 2 && rec.to === 3 && rec.version === 1));

  // The text output says the same: a failed reload, and what serves.
  write(['node', fixture('master/app.js')]);
  const text = master.cli(['reload']);
  await master.waitEvent((rec) => rec.event === 'reload-phase' && rec.generation === 4 && rec.phase === 'switched');
  process.kill(master.events('worker-spawn').find((rec) => rec.generation === 4 && rec.slot === 1)?.pid as number, 'SIGKILL');
  const second = await text;
  assert.equal(second.code, 1);
  assert.match(second.stdout, /reload: worker 4\.1 \(pid \d+\) was killed by SIGKILL .* after generation 4 went live, before the reload was done; rolling back: generation 5 starts generation 3's version/);
  assert.match(second.stderr, /hitless: reload failed: worker 4\.1 .* \(ERR_WORKER_EXITED\); rolled back: generation 5 serves generation 3's version/);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
