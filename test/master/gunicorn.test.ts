// gunicorn (Debian's, 20.1) under a real master: the worker contract with a server no one
// here wrote. hitless starts gunicorn's arbiter, which takes fd 3 from LISTEN_FDS (its own
// systemd support, LISTEN_PID is the arbiter's) and forks its own workers; readiness comes
// from a gunicorn.conf.py hook. The config and the hook are docs/frameworks.md's, verbatim.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readOr, statFields } from '../../src/core/procfs.js';
import { root, sourceFixture, startMasterIn, waitUntil, type MasterProcess } from '../helpers/master.js';
import { startLoad, type LoadSummary } from '../helpers/load.js';
import { needs } from '../helpers/tools.js';

/** The fixture folder (app.py, gunicorn.conf.py, hitless.json) copied to a temp folder: Python writes __pycache__ there. */
function appFolder(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-gunicorn-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(sourceFixture('gunicorn'), dir, { recursive: true });
  return dir;
}

/** [pid, nice] of the processes in process group `pgid` (a worker's group: the arbiter and its forked workers), from /proc. */
function groupMembers(pgid: number): [number, number][] {
  const found: [number, number][] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    // Fields after the command name: state, ppid, pgrp, … (proc(5)); none when it exited meanwhile.
    const fields = statFields(readOr(`/proc/${entry}/stat`));
    if (fields !== undefined && Number(fields[2]) === pgid) found.push([Number(entry), Number(fields[16])]);
  }
  return found;
}

async function reloadOk(master: MasterProcess): Promise<void> {
  const r = await master.reload();
  assert.equal(r.code, 0, `hitless reload failed:\n${r.stdout}\n${r.stderr}`);
}

function noLoss(result: LoadSummary): void {
  assert.equal(result.failed, 0, result.raw);
  assert.equal(result.non2xx, 0, result.raw);
}

/** Stops the master and checks that no arbiter and no forked gunicorn worker outlived it. */
async function stopLeavesNothing(master: MasterProcess): Promise<void> {
  const exit = await master.stop();
  assert.equal(exit.code, 0, master.stderr.slice(-3000));
  const left = [...master.workerPids].flatMap((pid) => groupMembers(pid).map(([p]) => p));
  assert.deepEqual(left, [], `gunicorn processes left after hitless stop: ${left.join(', ')}`);
}

test('gunicorn sync workers (the default): 3 reloads under paced load lose nothing, every gunicorn process serves at the master\'s priority, a SIGKILLed arbiter is restarted, nothing is left after stop', { skip: needs('gunicorn'), timeout: 300_000 }, async (t) => {
  const dir = appFolder(t);
  // hitless.json as in the docs; only the port is the test's own (a flag wins over the file).
  const master = await startMasterIn(t, dir, ['--listen', '127.0.0.1:0']);
  const url = master.url('/');
  const paced = startLoad(t, { url, connections: 50, thinkMs: [0, 500] });
  for (let i = 0; i < 3; i++) await reloadOk(master);

  // New arbiters boot at a lower priority (bootNice) and fork their workers meanwhile: on
  // READY the master restores the arbiter and its children, so none serves at the low one.
  const nice = (pid: number): number => Number(statFields(readOr(`/proc/${pid}/stat`))?.[16]);
  const serving = (await master.status()).workers.filter((w) => w.state === 'ready').map((w) => w.pid ?? 0);
  const members = serving.flatMap(groupMembers);
  assert.equal(members.length, 6, `2 arbiters with 2 workers each: ${JSON.stringify(members)}`);
  assert.deepEqual(members.filter(([, n]) => n !== nice(master.pid)), [], 'gunicorn processes left at the boot priority');

  // A crashed arbiter: hitless gives its forked workers, left in its process group, the stop
  // signal (they finish their request and exit) and starts a new arbiter in the slot.
  const victim = serving[0] ?? 0;
  const from = master.records.length;
  process.kill(victim, 'SIGKILL');
  await master.waitEvent((r) => r.event === 'worker-exit' && r.pid === victim && r.planned === false, from);
  await master.waitEvent((r) => r.event === 'worker-ready' && r.generation === 4 && r.pid !== victim, from);
  await waitUntil(() => groupMembers(victim).length === 0, () => `the crashed arbiter's workers exit (left: ${JSON.stringify(groupMembers(victim))})`, 30_000, 100);

  const result = await paced.stop();
  t.diagnostic(result.raw);
  noLoss(result);
  assert.ok(result.generations.includes('4'), `generation 4 served: ${result.raw}`);
  const answer = await (await fetch(url)).text();
  assert.match(answer, /^4:\d+\n$/, answer);
  const restarted = (await master.status()).workers;
  assert.equal(restarted.filter((w) => w.state === 'ready' && w.generation === 4).length, 2, JSON.stringify(restarted));
  await stopLeavesNothing(master);
});

test('gunicorn gthread workers with --keep-alive 0: 3 reloads under saturating load and paced users lose nothing', { skip: needs('gunicorn'), timeout: 300_000 }, async (t) => {
  const dir = appFolder(t);
  // Under saturating load a new arbiter booting at the lower priority (bootNice) gets little
  // CPU: on 2 cores each took 10-14 s to be ready. The reloads lose nothing either way;
  // --boot-nice 0 keeps this test's wall time short.
  const master = await startMasterIn(t, dir, ['--listen', '127.0.0.1:0', '--boot-nice', '0', '--',
    'gunicorn', '--workers', '2', '--worker-class', 'gthread', '--threads', '4', '--keep-alive', '0', 'app:app']);
  const url = master.url('/');
  const saturating = startLoad(t, { url, connections: 10 });
  const paced = startLoad(t, { url, connections: 50, thinkMs: [0, 500] });
  for (let i = 0; i < 3; i++) await reloadOk(master);
  const [s, p] = [await saturating.stop(), await paced.stop()];
  t.diagnostic(`saturating: ${s.raw}`);
  t.diagnostic(`paced: ${p.raw}`);
  noLoss(s);
  noLoss(p);
  assert.ok(s.generations.includes('4') && p.generations.includes('4'), `generation 4 served: ${s.raw}`);
  await stopLeavesNothing(master);
});

test('docs/frameworks.md shows the gunicorn fixture\'s hitless.json and gunicorn.conf.py verbatim', () => {
  const doc = readFileSync(join(root, 'docs', 'frameworks.md'), 'utf8');
  for (const file of ['hitless.json', 'gunicorn.conf.py']) {
    const text = readFileSync(sourceFixture(join('gunicorn', file)), 'utf8');
    assert.ok(doc.includes(text), `docs/frameworks.md does not contain test/fixtures/gunicorn/${file} as it is`);
  }
});
