import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fixture, runCli, startMaster } from '../helpers/master.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs the CLI in `cwd` with a private XDG_RUNTIME_DIR, so default run dirs never meet a real master. */
function cli(t: TestContext, cwd: string, args: string[]) {
  return runCli(args, { XDG_RUNTIME_DIR: cwd, HITLESS_DEBUG: '' }, cwd);
}

function assertOneLine(stderr: string, ...parts: string[]): void {
  const lines = stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  assert.ok(lines[0]!.startsWith('hitless: '), stderr);
  assert.ok(!stderr.includes('    at '), `stack trace in:\n${stderr}`);
  for (const part of parts) assert.ok(stderr.includes(part), `stderr lacks ${JSON.stringify(part)}:\n${stderr}`);
}

const usageCases: Array<[string, string[], string[]]> = [
  ['unknown command', ['strat'], ['unknown command "strat"', 'did you mean "start"?']],
  ['unknown command, two letters swapped', ['stauts'], ['unknown command "stauts"', 'did you mean "status"?']],
  ['another tool\'s command', ['restart'], ['unknown command "restart"', 'did you mean "reload"?']],
  ['not a command, a property of every object', ['constructor'], ['unknown command "constructor"', 'hitless --help']],
  ['unknown flag', ['start', '--workrs', '2'], ['unknown flag --workrs', 'did you mean --workers?']],
  ['flag without value', ['start', '--workers'], ['--workers needs a value', 'hitless start --help']],
  ['flag without value before --', ['start', '--workers', '--', 'node', 'x.js'], ['--workers needs a value', 'hitless start --help']],
  // No flag takes a negative number: the equals-sign advice led to a second refusal (--timeout=-5s: not a duration).
  ['negative value after a space (Node: "argument is ambiguous")', ['start', '--boot-nice', '-3', '--', 'node', 'x.js'], ['--boot-nice -3: a negative value is not accepted']],
  ['negative duration', ['reload', '--timeout', '-5s'], ['--timeout -5s: a negative value is not accepted (see `hitless reload --help`)']],
  ['a value starting with a dash after a space', ['start', '--env', '-X=1', '--', 'x'], ['goes after an equals sign: --env=-X=1']],
  ['negative worker count (before: "unknown flag -1")', ['scale', '-1'], ['-1: a negative number is not accepted by `hitless scale`']],
  ['logs -n -1 (before: Node\'s three-line text)', ['logs', '-n', '-1'], ['-n -1: a negative value is not accepted (see `hitless logs --help`)']],
  ['logs, unknown flag', ['logs', '--follw'], ['unknown flag --follw', 'did you mean --follow?']],
  ['duration too long', ['start', '--listen', '0', '--drain-timeout', '1000h', '--', 'x'], ['--drain-timeout', '"1000h"', 'at most "596h"']],
  ['same address twice', ['start', '--listen', '127.0.0.1:8080', '--listen', '127.0.0.1:8080', '--', 'x'], ['--listen', 'takes the same address as "127.0.0.1:8080"']],
  ['stray argument', ['start', 'node', 'server.js'], ['unexpected argument "node"', '-- node server.js']],
  // h16 F7.1: check takes start's worker command, and said so without the hint.
  ['stray argument to check', ['check', '--listen', '127.0.0.1:0', 'node', 'server.js'], ['unexpected argument "node" for `hitless check`', 'put the worker command after --: `hitless check -- node server.js`']],
  ['bad flag value', ['start', '--listen', '127.0.0.1:0', '--ready-timeout', 'soon', '--', 'node', 'x.js'], ['--ready-timeout', '"soon"', '"2s"']],
  ['bad stop signal', ['start', '--listen', '0', '--stop-signal', 'KILL', '--', 'x'], ['--stop-signal', '"KILL"', 'cannot be caught']],
  ['missing command', ['start', '--listen', '127.0.0.1:0'], ['no worker command', '-- node server.js']],
  ['missing --config file', ['status', '--config', 'nope.json'], ['nope.json does not exist']],
  ['bad --timeout', ['reload', '--timeout', 'forever'], ['--timeout', '"forever"']],
  // h16 F2: `reload --timeout 0` started a reload and reported it failed at once (exit 1).
  ['reload --timeout 0', ['reload', '--timeout', '0'], ['--timeout: got "0"; must be more than 0', 'leave --timeout out to wait as long as it takes']],
  ['scale --timeout 0s', ['scale', '2', '--timeout', '0s'], ['--timeout: got "0s"; must be more than 0']],
  ['stop --timeout 0', ['stop', '--timeout', '0'], ['--timeout: got "0"; must be more than 0']],
  ['upgrade --timeout 0ms', ['upgrade', '--timeout', '0ms'], ['--timeout: got "0ms"; must be more than 0']],
  ['--interval without --watch (before looking for a master)', ['status', '--interval', '2s'], ['--interval goes with --watch']],
];
for (const [title, args, parts] of usageCases) {
  test(`usage error (${title}): exit 2 and one line, no stack trace`, async (t) => {
    const dir = tempDir(t);
    const r = await cli(t, dir, args);
    assert.equal(r.code, 2, r.stderr);
    assertOneLine(r.stderr, ...parts);
  });
}

test('bad hitless.json: exit 2 with the key, the value and the fix; bad JSON with line:column', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ command: ['node', 'x.js'], listen: ['127.0.0.1:0'], workers: 'many' }));
  let r = await cli(t, dir, ['start']);
  assert.equal(r.code, 2);
  assertOneLine(r.stderr, '"workers" in hitless.json', '"many"', 'positive integer or "auto"');
  writeFileSync(join(dir, 'hitless.json'), '{\n  "command": ["node", "x.js"],\n  "listen": ["127.0.0.1:0"]\n  "workers": 2\n}\n');
  r = await cli(t, dir, ['start']);
  assert.equal(r.code, 2);
  assertOneLine(r.stderr, 'hitless.json:4:3', 'not valid JSON');
  // Client commands read the same file to find the master: they warn about it and still
  // look for the master (a running one keeps its configuration and must stay reachable).
  r = await cli(t, dir, ['status']);
  assert.equal(r.code, 1, r.stderr);
  const [warning, ...rest] = r.stderr.split('\n').filter(Boolean);
  assert.match(warning ?? '', /^hitless: warning: \S*hitless\.json:4:3: not valid JSON.*\(a running master keeps the configuration it has; fix the file before the next reload\)$/);
  assertOneLine(rest.join('\n'), 'no master is running at', '`hitless list` shows every master on this machine');
});

for (const cmd of ['reload', 'status', 'stop']) {
  test(`${cmd} with no master: ERR_NO_MASTER message, exit 1`, async (t) => {
    const dir = tempDir(t);
    const r = await cli(t, dir, [cmd]);
    assert.equal(r.code, 1, r.stderr);
    assertOneLine(r.stderr, 'no master is running at', 'control.sock', 'start it with `hitless start` in the app folder, or pass --run-dir');
    const explicit = await cli(t, dir, [cmd, '--run-dir', join(dir, 'elsewhere')]);
    assert.equal(explicit.code, 1);
    assertOneLine(explicit.stderr, join(dir, 'elsewhere', 'control.sock'));
    if (cmd === 'stop') return;
    // A script that asked for JSON gets the error as JSON on stdout too.
    const json = await cli(t, dir, [cmd, '--json']);
    assert.equal(json.code, 1);
    const out = JSON.parse(json.stdout) as { ok: boolean; error: { code: string; message: string } };
    assert.deepEqual([out.ok, out.error.code], [false, 'ERR_NO_MASTER']);
    assert.match(out.error.message, /^no master is running at /);
  });
}

test('no master after a kill -9: the message says the socket file was left by a master that did not stop', async (t) => {
  const dir = tempDir(t);
  const runDir = join(dir, 'run');
  mkdirSync(runDir);
  // A process that listens on control.sock and is SIGKILLed leaves the file: what a killed master leaves.
  const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(join(runDir, 'control.sock'))}, () => process.kill(process.pid, 'SIGKILL'))`]);
  const [, signal] = await once(child, 'exit') as [number | null, string | null];
  assert.equal(signal, 'SIGKILL');
  const r = await cli(t, dir, ['status', '--run-dir', runDir]);
  assert.equal(r.code, 1, r.stderr);
  assertOneLine(r.stderr, `no master is running at ${join(runDir, 'control.sock')} (its socket file is left over: the master that made it ended without stopping, killed or crashed); start it with`);
});

test('--help, -h, --version and <cmd> --help exit 0 on stdout', async (t) => {
  const dir = tempDir(t);
  for (const args of [['--help'], ['-h'], ['help', 'reload']]) {
    const r = await cli(t, dir, args);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: hitless/);
  }
  for (const cmd of ['start', 'reload', 'stop', 'status']) {
    const r = await cli(t, dir, [cmd, '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith(`Usage: hitless ${cmd}`), r.stdout);
  }
  const v = await cli(t, dir, ['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  const none = await cli(t, dir, []);
  assert.equal(none.code, 2, 'no command is a usage error');
});

test('against a real master: status table, reload exits 0 with plain progress lines, stop waits for the exit', async (t) => {
  const master = await startMaster(t, { command: [process.execPath, fixture('master/app.js')], workers: 2 });
  const status = await master.cli(['status']);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`^master +pid ${master.pid}, up .*, running`, 'm'));
  // The master's Node version beside hitless's (h23 F4: an upgrade onto another Node could not be confirmed).
  assert.match(status.stdout, new RegExp(`^master .*, hitless [^,]+, node ${process.version.replace(/\./g, '\\.')}(,|$)`, 'm'));
  assert.match(status.stdout, /^listeners +http 127\.0\.0\.1:\d+/m);
  assert.match(status.stdout, /^WORKER +PID +STATE +UPTIME +RESTARTS/m);
  assert.equal(status.stdout.match(/^1\.\d+ +\d+ +ready /gm)?.length, 2, status.stdout);

  const reload = await master.cli(['reload']);
  assert.equal(reload.code, 0, reload.stderr);
  assert.match(reload.stdout, /^reload: spawning generation 2$/m);
  assert.match(reload.stdout, /^reload: generation 2: ready 2\/2/m);
  assert.match(reload.stdout, /^reload: draining 2 workers of generation 1$/m);
  assert.match(reload.stdout, /^reload: done in .*, generation 2 is live$/m);
  assert.ok(!reload.stdout.includes('\x1b['), 'no terminal escapes when stdout is not a TTY');

  const json = await master.cli(['reload', '--json']);
  assert.equal(json.code, 0);
  const outcome = JSON.parse(json.stdout) as { ok: boolean; generation: number };
  assert.deepEqual([outcome.ok, outcome.generation], [true, 3]);

  const after = JSON.parse((await master.cli(['status', '--json'])).stdout) as { generation: number; lastReload: { ok: boolean }; node: string };
  assert.equal(after.generation, 3);
  assert.equal(after.node, process.version);
  assert.equal(after.lastReload.ok, true);

  const stop = await master.cli(['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(stop.stdout, /master stopped/);
  assert.deepEqual(await master.exited, { code: 0, signal: null });
});

test('reload that fails exits 1 with the reason and the new workers\' output', async (t) => {
  const dir = tempDir(t);
  const master = await startMaster(t, {
    command: [process.execPath, fixture('master/crash-if-marker.js')],
    args: ['--ready-timeout', '20s'],
    cwd: dir,
  });
  writeFileSync(join(dir, 'crash'), '');
  const r = await master.cli(['reload']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /^hitless: reload failed: .*\(ERR_WORKER_EXITED\); generation 1 keeps serving/m);
  assert.match(r.stderr, /^ {2}\| crash-if-marker fixture: crash marker present/m);
  assert.ok(!r.stderr.includes('    at '), r.stderr);
});

test('an error hitless has no code for (a file named releases where the folder goes): one line on stderr, and with --json ERR_UNEXPECTED on stdout, exit 1', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-unexpected-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ command: ['node', 'server.js'], listen: '127.0.0.1:0' }));
  mkdirSync(join(dir, 'dist'));
  writeFileSync(join(dir, 'dist', 'server.js'), '');
  writeFileSync(join(dir, 'releases'), 'not a folder');
  for (const json of [false, true]) {
    const r = await runCli(['release', 'dist', ...(json ? ['--json'] : [])], {}, dir);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^hitless: EEXIST: .*releases.* \(unexpected; run with HITLESS_DEBUG=1 for details\)\n$/);
    if (!json) assert.equal(r.stdout, '');
    else {
      const out = JSON.parse(r.stdout) as { ok: boolean; error: { code: string; message: string } };
      assert.deepEqual([out.ok, out.error.code], [false, 'ERR_UNEXPECTED']);
      assert.match(out.error.message, /^EEXIST: .*releases/);
    }
  }
});

test('`hitless stop` says how many workers it killed at drainTimeout (before: only "master stopped", the count was in the log alone)', async (t) => {
  const master = await startMaster(t, {
    command: [process.execPath, fixture('master/ignore-sigterm.js')],
    workers: 2,
    args: ['--drain-timeout', '1s', '--no-preload'],
  });
  const stop = await master.cli(['stop']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(stop.stdout, /^stopping master \(pid \d+\), draining workers\nmaster stopped; 2 workers still running at drainTimeout were killed \(SIGKILL\): requests in flight there were cut\n$/);
  assert.deepEqual(await master.exited, { code: 0, signal: null });
});
