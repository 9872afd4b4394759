// HTTP/2 clients through reloads, driven by h2load (nghttp2's load tool, no one here wrote it)
// against an http2 server served by the in-app library under a real master.
//
// An HTTP/2 session cannot be handed over (its state lives in the process): the old worker
// sends GOAWAY (`session.close()`) and the session ends once its open streams are answered.
// Streams the client opened while that GOAWAY was on its way are above its last-stream-id:
// nghttp2 ignores them, and the client may retry them elsewhere (RFC 9113 §6.8). h2load never
// does, and never reconnects an HTTP/2 client after GOAWAY (only after an HTTP/1
// `Connection: close`): the rest of that client's requests count as failed. The tests tell
// those apart from what hitless answers for: every stream the server accepted is answered
// with a 2xx, none times out, nothing is cut at the deadline, and the only started requests
// left unanswered are the few a GOAWAY can find on the wire.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fixture, startMaster, type MasterProcess } from '../helpers/master.js';
import { needs } from '../helpers/tools.js';

interface Summary {
  total: number;
  started: number;
  done: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  status2xx: number;
  non2xx: number;
  out: string;
}

/** h2load's `requests:` and `status codes:` lines. */
function parse(out: string): Summary {
  const r = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const s = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  assert.ok(r && s, `no h2load summary in:\n${out}`);
  const n = (m: RegExpExecArray, i: number): number => Number(m[i]);
  return {
    total: n(r, 1),
    started: n(r, 2),
    done: n(r, 3),
    succeeded: n(r, 4),
    failed: n(r, 5),
    errored: n(r, 6),
    timeout: n(r, 7),
    status2xx: n(s, 1),
    non2xx: n(s, 2) + n(s, 3) + n(s, 4),
    out,
  };
}

/** Starts h2load; `seen(text)` resolves once its stdout shows `text`, `done` with its summary. */
function h2load(t: TestContext, args: string[]): { seen: (text: string) => Promise<void>; done: Promise<Summary> } {
  const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  const onData = (d: Buffer): void => {
    out += d.toString();
    for (const w of waiters.splice(0)) {
      if (out.includes(w.text)) w.resolve();
      else waiters.push(w);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const done = new Promise<Summary>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`h2load exited ${String(code)}:\n${out}`));
      resolve(parse(out));
    });
  });
  const seen = (text: string): Promise<void> =>
    out.includes(text)
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
          waiters.push({ text, resolve });
          done.then(() => reject(new Error(`h2load ended before printing ${text}:\n${out}`)), reject);
        });
  return { seen, done };
}

/** The fixture's `h2-session generation=G streams=N` lines from `from` in the master's stdout. */
function sessions(master: MasterProcess, from: number): { generation: number; streams: number }[] {
  return [...master.stdout.slice(from).matchAll(/h2-session generation=(\d+) streams=(\d+)/g)].map((m) => ({ generation: Number(m[1]), streams: Number(m[2]) }));
}

async function reloadOk(master: MasterProcess): Promise<{ drained: number }> {
  const from = master.records.length;
  const r = await master.reload();
  assert.equal(r.code, 0, `hitless reload failed:\n${r.stdout}\n${r.stderr}`);
  const drained = master.records.slice(from).find((e) => e.event === 'reload-drained');
  assert.ok(drained, 'no reload-drained event');
  assert.equal(drained.forced, 0, 'a worker was killed at the drain deadline');
  assert.equal(drained.cut, 0, 'connections were cut at the drain deadline');
  return { drained: Number(drained.drained) };
}

/**
 * What hitless answers for in one h2load run, given the sessions the server closed (all of
 * them: the run's connections are closed by then): every stream the server accepted reached
 * h2load as a 2xx, and the only started requests h2load did not see answered are the ones it
 * still had on the wire when a GOAWAY came (at most `streams` per GOAWAYed session).
 */
function check(result: Summary, seen: { generation: number; streams: number }[], goawayed: number, streams: number): void {
  assert.equal(result.timeout, 0, result.out);
  assert.equal(result.non2xx, 0, result.out);
  assert.equal(result.status2xx, result.succeeded, result.out);
  const accepted = seen.reduce((sum, s) => sum + s.streams, 0);
  assert.equal(accepted, result.succeeded, `the server accepted ${accepted} streams, h2load saw ${result.succeeded} answered`);
  assert.ok(result.started - result.succeeded <= goawayed * streams, `${result.started - result.succeeded} started requests unanswered, more than the ${goawayed}×${streams} a GOAWAY can find on the wire\n${result.out}`);
  assert.equal(result.failed, result.total - result.succeeded, result.out);
}

/** Waits until the fixture logged `count` closed sessions from `from`. */
async function sessionsClosed(master: MasterProcess, from: number, count: number): Promise<{ generation: number; streams: number }[]> {
  await master.waitStdout('h2-session', (master.stdout.slice(0, from).match(/h2-session/g)?.length ?? 0) + count);
  return sessions(master, from);
}

/**
 * `reloads` times: starts h2load with `args` (its `clients` connections all reach the current
 * generation), reloads once requests flow, and checks the run. h2load stops a client at its
 * GOAWAY, so a run ends soon after the old generation drains; `-n` bounds it otherwise.
 */
async function runPerReload(t: TestContext, master: MasterProcess, reloads: number, clients: number, streams: number, args: string[]): Promise<string[]> {
  const figures: string[] = [];
  for (let i = 0; i < reloads; i++) {
    const from = master.stdout.length;
    const run = h2load(t, args);
    await run.seen('progress: 10% done');
    const { drained } = await reloadOk(master);
    const result = await run.done;
    const seen = await sessionsClosed(master, from, clients);
    const goawayed = seen.filter((s) => s.generation === i + 1).length;
    figures.push(
      `reload ${i + 1}: ${result.total} total, ${result.started} started, ${result.succeeded} succeeded, ${result.failed} failed ` +
        `(${result.total - result.started} never started, ${result.started - result.succeeded} on the wire at GOAWAY), ` +
        `${goawayed}/${clients} sessions GOAWAYed, drained ${drained}`,
    );
    assert.ok(drained > 0, `the reload met no h2load connection (h2load ended first?):\n${result.out}`);
    check(result, seen, goawayed, streams);
  }
  return figures;
}

test('h2load saturating h2c (8 connections × 10 streams), a run per reload: every accepted stream answered, GOAWAY ends the sessions', { skip: needs('h2load'), timeout: 300_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/h2.js')], workers: 2, env: { H2_LOG: '1' } });
  // -n bounds a run (about a minute at full speed on loopback); the reload ends it sooner.
  t.diagnostic((await runPerReload(t, master, 3, 8, 10, ['-c', '8', '-m', '10', '-n', '1000000', master.url('/')])).join('; '));
});

test('h2load paced over TLS (ALPN h2, allowHTTP1; 16 connections, 10 req/s each, idle between), a run per reload: every accepted stream answered', { skip: needs('h2load'), timeout: 300_000 }, async (t) => {
  const master = await startMaster(t, { command: ['node', fixture('master/h2.js')], workers: 2, env: { H2_LOG: '1', H2_TLS: '1' } });
  // 1200 requests per connection, 100 ms apart: two minutes at most, so a reload slowed by a
  // busy machine still meets the run; the reload's GOAWAY ends it sooner.
  t.diagnostic((await runPerReload(t, master, 3, 16, 1, ['-c', '16', '-m', '1', '--rps', '10', '-n', '19200', `https://${master.address()}/`])).join('; '));
});
