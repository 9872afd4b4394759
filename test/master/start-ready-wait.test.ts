// While workers start, the master says every few seconds which are not ready yet; when
// they never get ready, or die binding the port themselves, the error gives advice that
// fits what they showed (issue 19: 30 s of silence, then advice about READY=1 that was wrong
// for a preloaded Node app listening on another port; a Python server binding the port
// itself got only its own "Address already in use").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort } from '../helpers/free-port.js';
import { ReadyWatch } from '../../src/master/ready-wait.js';
import type { MasterEvent } from '../../src/core/types.js';
import { fixture, startMaster } from '../helpers/master.js';
import { needs } from '../helpers/tools.js';

/** A clock and one-shot timers the test moves by hand. */
function fakeTime() {
  let now = 0;
  let timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  return {
    now: () => now,
    setTimer: (fn: () => void, ms: number) => {
      const t = { at: now + ms, fn, cancelled: false };
      timers.push(t);
      return { cancel: () => void (t.cancelled = true) };
    },
    advance(ms: number) {
      const end = now + ms;
      for (;;) {
        const due = timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        now = due.at;
        due.cancelled = true;
        due.fn();
      }
      now = end;
      timers = timers.filter((t) => !t.cancelled);
    },
    pending: () => timers.filter((t) => !t.cancelled).length,
  };
}

test('ReadyWatch: every 5 s, one line per starting generation naming its workers not ready yet, with their last status; silent once all are ready', () => {
  const time = fakeTime();
  const out: Extract<MasterEvent, { type: 'ready-wait' }>[] = [];
  const watch = new ReadyWatch({ emit: (e) => out.push(e as never), now: time.now, setTimer: time.setTimer });
  watch.onEvent({ type: 'worker-spawn', generation: 8, slot: 0, pid: 100 });
  time.advance(1000);
  watch.onEvent({ type: 'worker-spawn', generation: 8, slot: 1, pid: 101 });
  time.advance(3000);
  assert.equal(out.length, 0, 'nothing before the first 5 s');
  watch.onEvent({ type: 'worker-ready', generation: 8, slot: 0, pid: 100, ms: 4000 });
  watch.onEvent({ type: 'worker-status', generation: 8, slot: 1, text: 'warming cache 40%' });
  time.advance(1000);
  assert.deepEqual(out, [{ type: 'ready-wait', generation: 8, waitingMs: 5000, workers: [{ slot: 1, pid: 101, ms: 4000, status: 'warming cache 40%' }] }]);
  time.advance(5000);
  assert.equal(out.length, 2);
  assert.equal(out[1]?.waitingMs, 10_000);
  watch.onEvent({ type: 'worker-exit', generation: 8, slot: 1, pid: 101, code: 1, signal: null, planned: false });
  time.advance(20_000);
  assert.equal(out.length, 2, 'no line once no worker is starting');
  assert.equal(time.pending(), 0, 'and no timer left');
  // Two generations at once (a canary beside a crash restart): one line each.
  watch.onEvent({ type: 'worker-spawn', generation: 9, slot: 0, pid: 200 });
  watch.onEvent({ type: 'worker-spawn', generation: 10, slot: 0, pid: 300 });
  time.advance(5000);
  assert.deepEqual(out.slice(2).map((e) => e.generation), [9, 10]);
  watch.onEvent({ type: 'master-stop', reason: 'graceful' });
  time.advance(10_000);
  assert.equal(out.length, 4);
  assert.equal(time.pending(), 0);
});

test('a never-ready app: a progress line after 5 s naming the worker, then the timeout with advice for a program without the preload', { timeout: 60_000 }, async (t) => {
  const master = await startMaster(t, {
    command: ['node', fixture('master/never-ready.js')],
    args: ['--ready-timeout', '7s', '--no-preload'],
    waitReady: false,
  });
  const wait = await master.waitEvent('ready-wait');
  const pid = master.events('worker-spawn')[0]?.pid;
  // "5 s", or more on a busy machine where the timer fires late.
  assert.match(String(wait.msg), new RegExp(`^generation 1 not ready after \\d+ s, waiting for 1\\.0 \\(pid ${String(pid)}\\)$`));
  assert.equal((await master.exited).code, 1);
  const failure = master.records.find((r) => r.code === 'ERR_READY_TIMEOUT' || r.code === 'ERR_START_FAILED');
  assert.match(String(failure?.msg), new RegExp(`worker 1\\.0 \\(pid ${String(pid)}\\) did not announce readiness within 7 s: write READY=1 to the fd in HITLESS_READY_FD once it serves, or, for a program that cannot, set readyAfter \\(--ready-after 2s\\)`));
});

test('a preloaded Node app listening on another port: the progress line carries its status, the timeout says it listens on another port', { timeout: 90_000 }, async (t) => {
  const port = await freePort();
  const other = await freePort();
  const master = await startMaster(t, {
    command: [process.execPath, fixture('preload/other-port.js')],
    listen: [`127.0.0.1:${port}`],
    // Long enough for a second progress line: on a busy machine the app may boot (and the
    // preload say where it listens, 2 s after its listen) after the first one, at 5 s.
    args: ['--ready-timeout', '12s'],
    env: { OTHER_PORT: String(other) },
    waitReady: false,
  });
  const wait = await master.waitEvent((r) => r.event === 'ready-wait' && String(r.msg).includes('listens on'));
  assert.match(String(wait.msg), new RegExp(`^generation 1 not ready after \\d+ s, waiting for 1\\.0 \\(pid ${String(master.events('worker-spawn')[0]?.pid)}: ` +
    `listens on 127\\.0\\.0\\.1:${other}, which the master does not hold \\(it holds http \\(127\\.0\\.0\\.1:${port}\\)\\)\\)$`));
  assert.equal((await master.exited).code, 1);
  const failure = master.records.find((r) => String(r.msg).includes('did not announce readiness'));
  assert.ok(failure, master.stderr);
  assert.match(String(failure.msg), new RegExp(`within 12 s: it listens on another port than the one hitless holds \\(${port}, in PORT\\): the app listens on 127\\.0\\.0\\.1:${other}, which the master does not hold`));
  assert.doesNotMatch(String(failure.msg), /READY=1/);
});

test('a non-Node program binding the port itself (python3 -m http.server): the failure says to serve the inherited fd 3 (LISTEN_FDS)', { timeout: 60_000, skip: needs('python3') }, async (t) => {
  const port = await freePort();
  const master = await startMaster(t, {
    command: ['python3', '-m', 'http.server', String(port), '--bind', '127.0.0.1'],
    listen: [`127.0.0.1:${port}`],
    waitReady: false,
  });
  assert.equal((await master.exited).code, 1);
  const failure = master.records.find((r) => String(r.msg).includes('before it was ready'));
  assert.ok(failure, master.stderr);
  assert.match(String(failure.msg), new RegExp(`exited with code 1 before it was ready: it tried to bind a port itself and found it in use; the hitless master holds port ${port}, ` +
    'so a worker must serve the listening socket it inherits as fd 3 \\(LISTEN_FDS=1, the systemd socket-activation protocol'));
  assert.match(master.stderr, /Address already in use/, 'with the program\'s own last lines');
});

test('an app that adopted the socket with listen() but never called ready(): the progress line and the timeout say to call ready() (regression: "it did neither")', { timeout: 60_000 }, async (t) => {
  const master = await startMaster(t, {
    command: ['node', fixture('master/listen-no-ready.js')],
    args: ['--ready-timeout', '7s'],
    waitReady: false,
  });
  const wait = await master.waitEvent((r) => r.event === 'ready-wait' && String(r.msg).includes('not ready yet'));
  assert.match(String(wait.msg), /: listening on the socket hitless holds, not ready yet \(listener "http", fd 3\): call ready\(\) once it serves\)$/);
  assert.equal((await master.exited).code, 1);
  const failure = master.records.find((r) => String(r.msg).includes('did not announce readiness'));
  assert.ok(failure, master.stderr);
  assert.match(String(failure.msg), /within 7 s: it listens on the socket hitless holds \(listen\(\) from hitless\) but never called ready\(\): call ready\(\) once it serves/);
  assert.doesNotMatch(String(failure.msg), /did neither/);
});
