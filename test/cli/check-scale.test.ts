// `hitless check` (validate without touching a master) and `hitless scale` (worker count of
// the serving generation) from the command line.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, runCli, startMaster, startMasterIn } from '../helpers/master.js';

/** An app folder, with the server.js its configurations name (check warns about a missing one). */
function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-check-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'server.js'), '');
  return dir;
}

/** The CLI in `cwd` with a private XDG_RUNTIME_DIR, so default run dirs never meet a real master. */
const cli = (cwd: string, args: string[]) => runCli(args, { XDG_RUNTIME_DIR: cwd, HITLESS_DEBUG: '' }, cwd);

const good = { command: ['node', 'server.js'], listen: ['127.0.0.1:3000', 'admin=unix:admin.sock'], workers: 2, env: { NODE_ENV: 'production' } };

test('hitless check on a good file: exit 0 and a short summary (flags over the file, as start would)', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify(good));
  let r = await cli(dir, ['check']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines[0], `${join(dir, 'hitless.json')} is valid`);
  assert.match(r.stdout, /^ {2}command +node server\.js$/m);
  assert.match(r.stdout, new RegExp(`^ {2}listen +http 127\\.0\\.0\\.1:3000, admin unix:${join(dir, 'admin.sock')}$`, 'm'));
  assert.match(r.stdout, /^ {2}workers +2, strategy all, readyTimeout 30 s, drainTimeout 30 s, stayReady 1 s$/m);
  assert.match(r.stdout, /^ {2}env +NODE_ENV$/m, 'env keys only, never values');
  assert.ok(!r.stdout.includes('production'));
  assert.ok(lines.length <= 10, r.stdout);

  r = await cli(dir, ['check', '--workers', '5', '--config', 'hitless.json']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}workers +5,/m);

  r = await cli(dir, ['check', '--json']);
  assert.equal(r.code, 0);
  const json = JSON.parse(r.stdout) as { ok: boolean; config: { workers: number; env: Record<string, string> } };
  assert.equal(json.ok, true);
  assert.equal(json.config.workers, 2);
});

test('hitless check warns when a start flag hides an invalid file value: a master started without the flag would refuse it (regression: h16 F4, it was "valid" with no word)', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ ...good, workers: 'x' }));
  const r = await cli(dir, ['check', '--workers', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}warning +workers: the file's value is invalid and only the flag --workers hides it; a master started without --workers would refuse it \("workers" in hitless\.json: got "x"; expected a positive integer .*\); fix the file$/m);
  assert.match(r.stdout, /^ {2}flags over +--workers \(the file says workers "x", invalid\)$/m);
  const json = await cli(dir, ['check', '--workers', '1', '--json']);
  assert.match((JSON.parse(json.stdout) as { warnings: string[] }).warnings.join('\n'), /^workers: the file's value is invalid/m);
  // Valid file value under the flag: no warning.
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify(good));
  assert.doesNotMatch((await cli(dir, ['check', '--workers', '1'])).stdout, /warning/);
});

test('hitless check names the fetch URL (regression: "fetch every 3 s" only), without its credentials or query string', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ ...good, fetch: { url: 'https://deploy:s3cret@artifacts.example/app.tgz?X-Amz-Signature=abc123', interval: '3s' } }));
  const r = await cli(dir, ['check']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}fetch +https:\/\/artifacts\.example\/app\.tgz\?… every 3 s$/m);
  assert.ok(!r.stdout.includes('s3cret') && !r.stdout.includes('abc123'), r.stdout);
});

test('hitless check on bad files: exit 2 with the key-level message (bad value, unknown key, bad JSON, missing file)', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ ...good, drainTimeout: 'forever' }));
  let r = await cli(dir, ['check']);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^hitless: "drainTimeout" in hitless\.json: got "forever"; expected a duration/);
  assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, r.stderr);

  r = await cli(dir, ['check', '--json']);
  assert.equal(r.code, 2);
  const json = JSON.parse(r.stdout) as { ok: boolean; error: { code: string; message: string; problems: string[] } };
  assert.equal(json.ok, false);
  assert.equal(json.error.code, 'ERR_CONFIG_INVALID');
  assert.match(json.error.message, /"drainTimeout"/);
  // One problem is in `problems` too (before, only several were), so scripts read one field.
  assert.deepEqual(json.error.problems, [json.error.message]);

  writeFileSync(join(dir, 'other.json'), JSON.stringify({ ...good, wokers: 3 }));
  r = await cli(dir, ['check', '--config', 'other.json']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown key "wokers" in other\.json; did you mean "workers"\?/);

  writeFileSync(join(dir, 'broken.json'), '{\n  "command": ["node"]\n  "workers": 2\n}\n');
  r = await cli(dir, ['check', '--config', 'broken.json']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /broken\.json:3:3: not valid JSON/);

  r = await cli(dir, ['check', '--config', 'nope.json']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /nope\.json does not exist/);

  // Several problems: one run shows them all, the first in the message, each other on a line
  // of its own (before, only "(and 2 more problems)" said there were others).
  writeFileSync(join(dir, 'three.json'), JSON.stringify({ ...good, workers: 'x', readyTimeout: -5, drainTimout: 3 }));
  for (const args of [['check', '--config', 'three.json'], ['start', '--config', 'three.json']]) {
    r = await cli(dir, args);
    assert.equal(r.code, 2, r.stderr);
    assert.deepEqual(r.stderr.trimEnd().split('\n').map((l) => l.replace(/:.*/, '')), [
      'hitless', '  "readyTimeout" in three.json', '  unknown key "drainTimout" in three.json; did you mean "drainTimeout"?',
    ], r.stderr);
    assert.match(r.stderr, /^hitless: "workers" in three\.json: got "x"; .* \(and 2 more problems\)\n/);
  }
  // A bad --listen is among them (before, it showed only once the others were fixed), and
  // alone it is in `problems` of --json as well.
  writeFileSync(join(dir, 'ok.json'), JSON.stringify(good));
  r = await cli(dir, ['check', '--config', 'ok.json', '--listen', '127.0.0.1:99999', '--workers', '0', '--ready-timeout', 'abc']);
  assert.equal(r.code, 2);
  assert.deepEqual(r.stderr.trimEnd().split('\n').map((l) => l.replace(/:.*/, '')), ['hitless', '  --ready-timeout', '  --listen'], r.stderr);
  assert.match(r.stderr, /--listen: got "127\.0\.0\.1:99999"; port 99999 is out of range/);
  r = await cli(dir, ['check', '--json', '--config', 'ok.json', '--listen', '127.0.0.1:99999']);
  assert.equal(r.code, 2);
  const one = JSON.parse(r.stdout) as { error: { code: string; message: string; problems: string[] } };
  assert.equal(one.error.code, 'ERR_CONFIG_INVALID');
  assert.deepEqual(one.error.problems, [one.error.message]);
});

test('hitless check refuses a run dir that hitless start refuses, with the same message; a missing one is fine; another user\'s is a warning', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify(good));
  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const file = join(dir, 'a-file');
  writeFileSync(file, '');
  for (const [runDir, message] of [
    [open, `runDir: ${open} is writable by group or others (mode 0777); run \`chmod 700 ${open}\``],
    [file, `runDir: ${file} is not a folder`],
    [join(file, 'run'), `runDir: cannot create ${join(file, 'run')}: ${file} is not a folder`],
  ] as const) {
    const checked = await cli(dir, ['check', '--run-dir', runDir]);
    assert.equal(checked.code, 2, checked.stdout + checked.stderr);
    assert.ok(checked.stderr.startsWith(`hitless: ${message}`), checked.stderr);
    const started = await cli(dir, ['start', '--run-dir', runDir]);
    assert.equal(started.code, 2, started.stderr);
    assert.ok(started.stderr.startsWith(`hitless: ${message}`), `start says what check says:\n${started.stderr}`);
  }
  const fresh = await cli(dir, ['check', '--run-dir', join(dir, 'not', 'yet')]);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.doesNotMatch(fresh.stdout, /warning/);
  if (process.getuid?.() === 0) {
    const theirs = join(dir, 'theirs');
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, 65534, 65534);
    const r = await cli(dir, ['check', '--run-dir', theirs]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^ {2}warning +runDir: ${theirs} belongs to uid 65534: a master started by that user accepts it, one started by you \\(uid 0\\) refuses it$`, 'm'));
  }
});

test('hitless check warns about a command start could not run: a program not on PATH, a script not executable, a missing node entry file; still valid (exit 0)', async (t) => {
  const dir = tempDir(t);
  const typo = await cli(dir, ['check', '--listen', '127.0.0.1:3000', '--', 'nodee', 'server.js']);
  assert.equal(typo.code, 0, typo.stderr);
  assert.match(typo.stdout, /warning +command: "nodee" is not found on PATH \(.*\), or is not executable: `hitless start` from here would fail \(ERR_COMMAND_NOT_FOUND\)/);
  writeFileSync(join(dir, 'run.sh'), '#!/bin/sh\n');
  const script = await cli(dir, ['check', '--json', '--listen', '127.0.0.1:3000', '--', './run.sh']);
  assert.match((JSON.parse(script.stdout) as { warnings: string[] }).warnings.join('\n'), /"\.\/run\.sh" is not found at .*run\.sh, or is not executable/);
  chmodSync(join(dir, 'run.sh'), 0o755);
  assert.equal((JSON.parse((await cli(dir, ['check', '--json', '--listen', '127.0.0.1:3000', '--', './run.sh'])).stdout) as { warnings?: string[] }).warnings, undefined);
  const missing = await cli(dir, ['check', '--listen', '127.0.0.1:3000', '--', 'node', '--enable-source-maps', 'missing.js']);
  assert.match(missing.stdout, /warning +command: node's entry file "missing\.js" does not exist in the workers' folder .*: every worker would exit with "Cannot find module"/);
  // With releases, the workers run in the one `current` points to: the file is looked up there.
  const releases = tempDir(t);
  rmSync(join(releases, 'server.js'));
  mkdirSync(join(releases, 'releases', 'r1'), { recursive: true });
  writeFileSync(join(releases, 'releases', 'r1', 'app.js'), '');
  symlinkSync('releases/r1', join(releases, 'current'));
  const released = await cli(releases, ['check', '--json', '--listen', '127.0.0.1:3000', '--', 'node', 'app.js']);
  assert.equal((JSON.parse(released.stdout) as { warnings?: string[] }).warnings, undefined, released.stdout);
  for (const fine of [['node', 'server.js'], ['node', 'server'], ['node', '-r', 'dotenv/config', 'server.js'], ['node', '-e', 'x']]) {
    const r = await cli(dir, ['check', '--json', '--listen', '127.0.0.1:3000', '--', ...fine]);
    assert.equal((JSON.parse(r.stdout) as { warnings?: string[] }).warnings, undefined, fine.join(' '));
  }
});

test('hitless check warns about a timeout given as a small bare number (milliseconds, surely meant as seconds); still valid', async (t) => {
  const dir = tempDir(t);
  const flag = await cli(dir, ['check', '--listen', '127.0.0.1:3000', '--ready-timeout', '5', '--', 'node', 'server.js']);
  assert.equal(flag.code, 0, flag.stderr);
  assert.match(flag.stdout, /warning +readyTimeout: 5 is 5 ms \(a number without a unit is milliseconds\); write "5s" if you meant seconds/);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ ...good, drainTimeout: 30, stayReady: 3, canary: { duration: 10 } }));
  const file = await cli(dir, ['check', '--json']);
  const warnings = (JSON.parse(file.stdout) as { warnings?: string[] }).warnings ?? [];
  assert.deepEqual(warnings.filter((w) => / ms \(a number/.test(w)).map((w) => w.split(':')[0]), ['drainTimeout', 'stayReady', 'canary.duration']);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ ...good, readyTimeout: '10s', drainTimeout: 30000 }));
  assert.equal((JSON.parse((await cli(dir, ['check', '--json'])).stdout) as { warnings?: string[] }).warnings, undefined);
});

test('hitless start warns about a timeout given as a small bare number too, before the start fails of it (regression: only check said it)', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  // A worker that never says READY: with 5 ms to do it, the start fails at once (and stops it).
  const r = await cli(dir, ['start', '--listen', '127.0.0.1:0', '--ready-timeout', '5', '--', process.execPath, '-e', 'setInterval(() => {}, 1000)']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /readyTimeout: 5 is 5 ms \(a number without a unit is milliseconds\); write "5s" if you meant seconds/);
  assert.ok(r.stderr.indexOf('readyTimeout: 5 is 5 ms') < r.stderr.indexOf('did not announce readiness within 5 ms'), r.stderr);
  // Written with a unit, nothing is said.
  const unit = await cli(dir, ['start', '--listen', '127.0.0.1:0', '--ready-timeout', '5ms', '--', process.execPath, '-e', 'setInterval(() => {}, 1000)']);
  assert.equal(unit.code, 1, unit.stderr);
  assert.ok(!unit.stderr.includes('a number without a unit'), unit.stderr);
});

test('hitless check without any listen address: valid with a warning (systemd socket activation gives the sockets); hitless start by hand refuses it', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ command: ['node', 'server.js'], workers: 2 }));
  const r = await cli(dir, ['check']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}listen +none \(sockets from systemd\)$/m);
  assert.match(r.stdout, /^ {2}warning +no listen address: only a master started by systemd socket activation \(LISTEN_FDS\) can run this/m);
  const json = await cli(dir, ['check', '--json']);
  assert.equal(json.code, 0);
  assert.equal((JSON.parse(json.stdout) as { warnings: string[] }).warnings.length, 1);
  const started = await cli(dir, ['start']);
  assert.equal(started.code, 2);
  assert.match(started.stderr, /no listening address/);
});

test('hitless check warns when canary.warmup is more than half of canary.duration (the master judges latency from half of it)', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ ...good, canary: { duration: '10s', warmup: '6s' } }));
  const r = await cli(dir, ['check']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}warning +canary\.warmup 6 s is more than half of canary\.duration 10 s: a canary reload judges latency from 5 s on$/m);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify(good));
  assert.doesNotMatch((await cli(dir, ['check'])).stdout, /warning/);
});

test('hitless scale usage mistakes exit 2; without a master it exits 1 (ERR_NO_MASTER)', async (t) => {
  const dir = tempDir(t);
  for (const [args, text] of [
    [['scale'], 'needs a worker count'],
    [['scale', '0'], '"0" is not a worker count'],
    [['scale', 'two'], '"two" is not a worker count'],
    // A typo's count started workers until the master ran out of memory (regression).
    [['scale', '1000000000000'], '1000000000000 workers is more than hitless runs \\(at most 1024\\)'],
    [['scale', '99999999999999999999'], '"99999999999999999999" is not a worker count'],
    [['scale', '2', '3'], 'takes one worker count'],
  ] as const) {
    const r = await cli(dir, [...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^hitless: .*${text}`));
  }
  const r = await cli(dir, ['scale', '2']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no master is running/);
});

test('hitless scale up whose new workers fail exits 1 with their output; the generation keeps its count', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const master = await startMaster(t, { command: [process.execPath, fixture('master/crash-if-marker.js')], cwd: dir, workers: 1 });
  writeFileSync(join(dir, 'crash'), '');
  const r = await master.cli(['scale', '3']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^hitless: scale failed: .*\(ERR_WORKER_EXITED\); generation 1 keeps 1 worker$/m);
  assert.match(r.stderr, /^ {2}\| crash-if-marker fixture: crash marker present/m);
  const st = await master.status();
  assert.equal(st.workers.filter((w) => w.state === 'ready').length, 1);
  rmSync(join(dir, 'crash'));
  const up = await master.cli(['scale', '3', '--json']);
  assert.equal(up.code, 0, up.stderr);
  assert.deepEqual((({ ok, from, to }) => ({ ok, from, to }))(JSON.parse(up.stdout) as { ok: boolean; from: number; to: number }), { ok: true, from: 1, to: 3 });
  assert.deepEqual(await master.stop(), { code: 0, signal: null });
});

test('hitless check validates what the user has: start flags alone, with no hitless.json (regression: README flow, issue 19)', async (t) => {
  const dir = tempDir(t);
  const r = await cli(dir, ['check', '--listen', '127.0.0.1:8080', '--workers', '2', '--', 'node', 'server.js']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^the configuration \(flags only, no config file\) is valid\n/);
  assert.match(r.stdout, /^ {2}workers +2,/m);
  const bad = await cli(dir, ['check', '--listen', '127.0.0.1:8080', '--workers', 'many', '--', 'node', 'server.js']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^hitless: --workers: got "many"/);
});

test('hitless check with neither a file nor flags: says there is nothing to check and how to check, exit 2; with a master started here by flags, exit 0 naming it', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const none = await cli(dir, ['check']);
  assert.equal(none.code, 2);
  assert.equal(none.stderr, `hitless: nothing to check in ${dir}: no hitless.json here and no start flags given. ` +
    'Check a file with --config <path>, or the flags you start with: `hitless check --listen 127.0.0.1:8080 -- node server.js`\n');
  assert.doesNotMatch(none.stderr, /no worker command/);
  // --json says the same (regression: it said "no worker command")
  const noneJson = await cli(dir, ['check', '--json']);
  assert.equal(noneJson.code, 2);
  assert.deepEqual((JSON.parse(noneJson.stdout) as { error: { code: string } }).error.code, 'ERR_CONFIG_NOT_FOUND');
  assert.match(noneJson.stdout, /nothing to check in /);
  const master = await startMasterIn(t, dir, ['--listen', '127.0.0.1:0', '--', process.execPath, fixture('master/app.js')]);
  const here = await cli(dir, ['check']);
  assert.equal(here.code, 0, here.stderr);
  assert.match(here.stdout, new RegExp(`^no hitless\\.json in ${dir}: the master running here \\(pid ${master.pid}, generation 1\\) was started with flags only`));
  assert.equal((await master.stop()).code, 0);
});

test('hitless check on a deploy-only file (the deploying machine): valid with a summary, or the key-level message', async (t) => {
  const dir = tempDir(t);
  const deploy = { hosts: ['app1', { name: 'app2', address: '10.0.0.12' }], appDir: '/srv/app', health: 'http://{host}:8080/healthz', batch: 2 };
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ deploy }));
  let r = await cli(dir, ['check']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${join(dir, 'hitless.json')} is valid for \`hitless deploy\` (a deploy section and no master settings: this machine deploys, it runs no master)\n` +
    '  hosts       app1, app2 (app1 first, alone; then 2 at a time)\n' +
    '  app folder  /srv/app on the hosts\n' +
    '  health      app1 http://app1:8080/healthz, app2 http://10.0.0.12:8080/healthz, 2xx for 5 s\n');
  r = await cli(dir, ['check', '--json']);
  assert.equal(r.code, 0);
  assert.deepEqual((JSON.parse(r.stdout) as { deploy: { hosts: { name: string }[] } }).deploy.hosts.map((h) => h.name), ['app1', 'app2']);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ deploy: { ...deploy, helth: 'x' } }));
  r = await cli(dir, ['check']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown key "deploy\.helth" in hitless\.json; did you mean "deploy\.health"\?/);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ deploy: { hosts: ['app1'] } }));
  r = await cli(dir, ['check']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no app folder for host "app1"/);
  // A file with both: the master's settings and the deploy section are both checked.
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ ...good, deploy }));
  r = await cli(dir, ['check']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {2}deploy hosts +app1, app2/m);
});
