/**
 * The readiness rule for listening sockets (issue 20), on a fake host: a worker that says in
 * its hello which sockets it accepts on, and leaves one of the generation's out, is refused
 * at readiness (ERR_LISTENER_UNSERVED, one line naming the socket and the fix), so the
 * reload fails with the old generation untouched, or the start fails. Workers that do not
 * say cannot be checked: a generation with several sockets gets a warning instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unservedError } from '../../src/core/listening.js';
import { Supervisor } from '../../src/core/supervisor.js';
import type { GenerationSpec } from '../../src/core/spec.js';
import type { MasterEvent } from '../../src/core/types.js';
import { isHitlessError } from '../../src/errors.js';
import { FakeHost, fakeSpec, settle, wellBehaved, type Behaviour } from './fake-host.js';

const TWO = { command: ['node', 'server.js'], fds: [10, 11], fdNames: ['http', 'listen1'], fdAddresses: ['127.0.0.1:3000', '127.0.0.1:42581'] };

/** A worker that says hello with `adopted` (undefined: a hello without the list), then READY. */
const saysHello = (adopted: string[] | undefined): Behaviour => (p) => {
  wellBehaved(p);
  queueMicrotask(() => p.say({ hitless: 1, type: 'hello', handover: true, listeners: ['http'], ...(adopted ? { adopted } : {}) }));
};

function setup(first: Partial<GenerationSpec>, behaviour: (gen: number) => Behaviour) {
  const host = new FakeHost();
  host.behave = (gen) => behaviour(gen);
  let spec = fakeSpec(first);
  const sup = new Supervisor({ stayReady: 0, host, spec: () => spec, version: 'test', listeners: () => [] });
  const events: MasterEvent[] = [];
  sup.on('event', (e: MasterEvent) => events.push(e));
  return { host, sup, events, next: (over: Partial<GenerationSpec>) => (spec = fakeSpec(over)) };
}

test('a reload that adds a listener the new workers do not accept on is refused at readiness, naming it and the fix; the old generation keeps serving, untouched', async () => {
  const { host, sup, next } = setup({}, () => saysHello(['http']));
  await sup.start();
  await settle();
  const old = host.alive(1);
  next(TWO);
  const outcome = await sup.reload('test');
  assert.equal(outcome.ok, false);
  assert.equal(outcome.error?.code, 'ERR_LISTENER_UNSERVED');
  assert.match(outcome.error?.message ?? '', /^worker 2\.\d \(pid \d+\) does not accept on listener "listen1" \(127\.0\.0\.1:42581, fd 4\) \(it accepts only on "http"\), so connections to it would wait unanswered: serve it in the app with listen\(server, 'listen1'\)/);
  assert.equal(outcome.generation, 1);
  assert.deepEqual(host.alive(2), [], 'the refused workers are gone');
  assert.ok(old.every((p) => !p.exited && p.signals.length === 0 && p.sent.length === 0), 'the old generation was never asked to stop');
  assert.equal(sup.status().workers.filter((w) => w.state === 'ready').length, 2);
});

test('ERR_LISTENER_UNSERVED for a worker of another language (Python): the fix is the fd and its LISTEN_FDNAMES entry, not the Node library\'s listen()', () => {
  const three = fakeSpec({ command: ['python3', 'worker.py'], fds: [10, 11, 12], fdNames: ['http', 'admin', 'listen2'], fdAddresses: ['127.0.0.1:3000', '127.0.0.1:3001', '/run/app.sock'] });
  assert.equal(unservedError('2.0 (pid 42)', three, ['listen2'], ['http', 'admin']).message,
    'worker 2.0 (pid 42) does not accept on listener "listen2" (/run/app.sock, fd 5) (it accepts only on "http", "admin"), so connections to it ' +
    'would wait unanswered: accept on fd 5 (LISTEN_FDNAMES entry "listen2") in the program, and list it in the hello\'s "adopted", or remove the address from "listen"');
  assert.match(unservedError('2.0 (pid 42)', three, ['admin', 'listen2'], ['http']).message,
    /: accept on fd 4 \(LISTEN_FDNAMES entry "admin"\) and on fd 5 \(LISTEN_FDNAMES entry "listen2"\) in the program, and list them in the hello's "adopted", or remove/);
  // A Node command keeps the library's advice.
  assert.match(unservedError('2.0 (pid 42)', { ...three, command: ['node', 'server.js'] }, ['listen2'], ['http', 'admin']).message,
    /: serve it in the app with listen\(server, 'listen2'\) \(serve\(server\) without a name serves every socket no listen\(\) claims\), or remove/);
});

test('hitless start with two listeners and workers that accept on one fails with ERR_START_FAILED naming the other; no worker is left', async () => {
  const { host, sup } = setup(TWO, () => saysHello(['http']));
  await assert.rejects(sup.start(), (e) => isHitlessError(e, 'ERR_START_FAILED') && /does not accept on listener "listen1" \(127\.0\.0\.1:42581, fd 4\)/.test(e.message));
  assert.deepEqual(host.alive(), []);
});

test('workers that accept on every listener go live with no warning', async () => {
  const { sup, events, next } = setup({}, () => saysHello(['http', 'listen1']));
  await sup.start();
  await settle();
  next(TWO);
  const outcome = await sup.reload('test');
  assert.equal(outcome.ok, true);
  assert.equal(outcome.warnings, undefined);
  assert.equal(sup.status().warnings, undefined);
  assert.deepEqual(events.filter((e) => e.type === 'warning'), []);
});

test('workers that do not say which sockets they accept on (no channel, or a hello without the list) are not refused: with two listeners the outcome, the log and status warn, naming them', async () => {
  for (const [behaviour, why] of [
    [wellBehaved, 'no hello on the hitless channel, which would list them in `adopted`'],
    // A program that speaks the channel (a hello, stats) without the list: not "no channel" (regression).
    [saysHello(undefined), 'their hello on the hitless channel has no `adopted` list'],
  ] as const) {
    const { sup, events, next } = setup({}, () => behaviour);
    await sup.start();
    await settle();
    assert.deepEqual(events.filter((e) => e.type === 'warning'), [], 'one listener: nothing to warn about');
    next(TWO);
    const outcome = await sup.reload('test');
    assert.equal(outcome.ok, true);
    assert.equal(outcome.warnings?.length, 1);
    assert.ok(outcome.warnings?.[0]?.includes(`they accept on (${why}), so`), outcome.warnings?.[0]);
    assert.match(outcome.warnings?.[0] ?? '', /^generation 2: its workers do not say which sockets they accept on .* each of "http" \(127\.0\.0\.1:3000, fd 3\), "listen1" \(127\.0\.0\.1:42581, fd 4\) is served; make sure the program accepts on every inherited socket \(fds 3–4, LISTEN_FDS=2\)/);
    assert.deepEqual(sup.status().warnings, outcome.warnings);
    assert.deepEqual(events.filter((e) => e.type === 'warning').map((e) => (e as { text: string }).text), outcome.warnings);
  }
});

test('at start, workers without the channel and two listeners: a warning event, and status carries it', async () => {
  const { sup, events } = setup(TWO, () => wellBehaved);
  await sup.start();
  assert.equal(events.filter((e) => e.type === 'warning').length, 1);
  assert.equal(sup.status().warnings?.length, 1);
});
