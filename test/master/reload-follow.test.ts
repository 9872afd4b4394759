/**
 * `hitless reload` follows its own reload (docs/CLI.md), end to end: a second reload queued
 * behind a first one, each client's output has only its own generation's lines (h10 F1).
 * The new workers (boot-app fixture) get ready only when the test sends them SIGUSR2, so the
 * second client is queued while the first reload still spawns, without timing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, startMaster } from '../helpers/master.js';

test('regression (h10 F1): a reload and the one queued behind it each print only their own generation\'s progress', { timeout: 90_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/boot-app.js')], workers: 2, args: ['--boot-concurrency', '2'] });
  const pidsOf = (generation: number): number[] =>
    master.records.filter((r) => r.event === 'worker-spawn' && r.generation === generation).map((r) => Number(r.pid));
  const from = master.records.length;
  const first = master.cli(['reload']);
  await master.waitStdout('generation=2', 2); // both workers of generation 2 booted, not ready
  const second = master.cli(['reload']);
  await master.waitEvent('reload-queued', from);
  for (const pid of pidsOf(2)) process.kill(pid, 'SIGUSR2');
  // The queued reload starts as the first ends: its workers wait for their signal too.
  await master.waitStdout('generation=3', 2);
  for (const pid of pidsOf(3)) process.kill(pid, 'SIGUSR2');
  const [a, b] = await Promise.all([first, second]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);

  const one = a.stdout.trimEnd().split('\n');
  assert.ok(one.includes('reload: spawning generation 2'), a.stdout);
  assert.ok(one.includes('reload: draining 2 workers of generation 1'), a.stdout);
  assert.match(one.at(-1) ?? '', /^reload: done in .*, generation 2 is live$/, a.stdout);
  assert.deepEqual(one.filter((l) => /generation 3|queued|spawning generation 2: [3-9]|\/[3-9]\b/.test(l)), [], `the first client shows nothing of the queued reload:\n${a.stdout}`);

  const two = b.stdout.trimEnd().split('\n');
  assert.deepEqual(two.filter((l) => l.includes('queued')), ['reload: reload queued behind generation 2 (hitless reload)'], b.stdout);
  assert.ok(two.includes('reload: spawning generation 3'), b.stdout);
  assert.ok(two.includes('reload: draining 2 workers of generation 2'), b.stdout);
  assert.match(two.at(-1) ?? '', /^reload: done in .*, generation 3 is live$/, b.stdout);
  assert.deepEqual(two.filter((l) => /generation 1\b|generation 2 ready|generation 2: ready|spawning generation 2|\/[3-9]\b/.test(l)), [], `the second client shows nothing of the first reload:\n${b.stdout}`);
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});
