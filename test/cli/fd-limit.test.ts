// A low open-files limit (h21 F7): validating a config needed ~100 descriptors (Node's ES
// loader opened zod's ~50 locale modules at once) and failed with a bare "EMFILE … km.js
// (unexpected …)"; running out now says the limit and the fix, and `hitless start` warns.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, fixture, runCli, waitUntil } from '../helpers/master.js';
import { fdLimitError, lowLimitWarning, openFilesLimit } from '../../src/ops/fd-limit.js';
import { HitlessError } from '../../src/errors.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-fdlimit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `hitless <args>` in `dir` under `ulimit -n <limit>` (soft and hard, so Node cannot raise it). */
function cliLimited(dir: string, limit: number, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCli(args, { XDG_RUNTIME_DIR: dir, HITLESS_DEBUG: '' }, dir, { fdLimit: limit });
}

const CONFIG = JSON.stringify({ command: ['node', 'server.js'], listen: ['127.0.0.1:8080'], workers: 2 });

test('hitless check validates a config under ulimit -n 64: zod is loaded without opening its ~50 locale files at once (h21 F7)', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'hitless.json'), CONFIG);
  const r = await cliLimited(dir, 64, ['check']);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /hitless\.json is valid/);
});

test('running out of file descriptors says the limit and how to raise it (ERR_FD_LIMIT, exit 1), not "EMFILE … (unexpected)" (h21 F7)', async (t) => {
  const dir = tempDir(t);
  // 60 listening sockets under a limit of 48: the master runs out as it binds them, on every
  // Node version (how many files loading hitless itself takes differs: Node 22 and later
  // load it within 14, where Node 20 needed ~30, and Node itself cannot run below ~14).
  const listen = Array.from({ length: 60 }, () => ['--listen', '127.0.0.1:0']).flat();
  const r = await cliLimited(dir, 48, ['start', ...listen, '--', 'node', 'x.js']);
  assert.equal(r.code, 1, r.stderr);
  const last = r.stderr.trimEnd().split('\n').at(-1) ?? '';
  // Out of files binding a socket, or loading a module the start loads lazily beside the
  // binds (which comes first varies: a fresh clone's CI run met the module): the same message.
  assert.match(last, /^hitless: too many open files \((?:cannot listen on 127\.0\.0\.1:0: EMFILE|EMFILE: too many open files, open '[^']+')\): this process may open at most 48 files \(ulimit -n, RLIMIT_NOFILE\); raise it: `ulimit -n 65536` in the shell that starts hitless .*, or LimitNOFILE=65536 in the \[Service\] section of its systemd unit$/);
  assert.doesNotMatch(r.stderr, /unexpected/);
});

test('fdLimitError: EMFILE and ENFILE, on the error or its cause or a HitlessError\'s errno; anything else is left alone', () => {
  const emfile = Object.assign(new Error('EMFILE: too many open files, open \'/x\''), { code: 'EMFILE' });
  assert.match(fdLimitError(emfile, 96)?.message ?? '', /at most 96 files/);
  assert.equal(fdLimitError(new HitlessError('ERR_BIND', 'cannot listen', { cause: emfile }), 96)?.code, 'ERR_FD_LIMIT');
  assert.equal(fdLimitError(new HitlessError('ERR_BIND', 'cannot listen: EMFILE', { details: { errno: 'EMFILE' } }), 96)?.code, 'ERR_FD_LIMIT');
  const enfile = fdLimitError(Object.assign(new Error('ENFILE: file table overflow'), { code: 'ENFILE' }), 96);
  assert.match(enfile?.message ?? '', /^the system ran out of open files .*fs\.file-max/);
  assert.equal(fdLimitError(Object.assign(new Error('nope'), { code: 'ENOENT' }), 96), undefined);
  assert.equal(fdLimitError('EMFILE', 96), undefined);
});

test('openFilesLimit reads the soft limit of /proc/<pid>/limits; lowLimitWarning only below 1024', () => {
  assert.equal(openFilesLimit('Limit                     Soft Limit           Hard Limit           Units\nMax open files            110                  110                  files\n'), 110);
  assert.equal(openFilesLimit('Max open files            unlimited            unlimited            files\n'), undefined);
  assert.equal(openFilesLimit(''), undefined);
  assert.match(lowLimitWarning(110) ?? '', /^the open-files limit is 110 \(ulimit -n, RLIMIT_NOFILE\), which the workers inherit: .*raise it: `ulimit -n 65536`/);
  assert.equal(lowLimitWarning(1024), undefined);
  assert.equal(lowLimitWarning(undefined), undefined);
});

test('hitless start under ulimit -n 256 starts and warns that the open-files limit is low, with the fix (h21 F7)', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const r = await cliLimited(dir, 256, ['start', '--detach', '--listen', '127.0.0.1:0', '--workers', '1', '--', process.execPath, fixture('ops/app.js')]);
  const pid = Number(/^hitless master pid (\d+) runs in the background/.exec(r.stdout)?.[1]);
  t.after(async () => {
    if (!Number.isInteger(pid) || !alive(pid)) return;
    // SIGTERM stops it as `hitless stop` does; its folder may be gone already (that hook ran first).
    process.kill(pid, 'SIGTERM');
    await waitUntil(() => !alive(pid), 'the master exited', 30_000);
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /WARN the open-files limit is 256 \(ulimit -n, RLIMIT_NOFILE\), which the workers inherit: .*LimitNOFILE=65536/);
});
