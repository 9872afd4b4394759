/**
 * The preload's one-line errors, through the real CLI, and its off switch:
 * - `npm start` runs the app in a grandchild of the master, whose pid is not LISTEN_PID:
 *   its listen on the held port fails with one line naming the fix, not EADDRINUSE;
 * - an app that listens only on a port the master does not hold is told so, on one line;
 * - `--no-preload` (and "preload": false) leaves workers without the preload.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, root, runCli, startMaster } from '../helpers/master.js';
import { ownCommand } from '../../src/preload/foreign.js';
import { freePort } from '../helpers/free-port.js';

function appDir(t: import('node:test').TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-npm-start-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, scripts: { start: 'node server.js' } }));
  writeFileSync(join(dir, 'server.js'), "require('node:http').createServer((q, s) => s.end('hi\\n')).listen(Number(process.env.PORT));\n");
  return dir;
}

test('`npm start` as the worker command fails with one line naming the fix, not EADDRINUSE', { timeout: 60_000 }, async (t) => {
  const port = await freePort();
  const master = await startMaster(t, { command: ['npm', 'start'], cwd: appDir(t), listen: [`127.0.0.1:${port}`], waitReady: false });
  const { code } = await master.exited;
  assert.equal(code, 1);
  const all = `${master.stdout}\n${master.stderr}`;
  assert.doesNotMatch(all, /EADDRINUSE/);
  const lines = all.split('\n').filter((l) => l.includes('ERR_LISTEN_IN_CHILD'));
  // Once as the app's stderr, once in the master's failure report.
  assert.ok(lines.length >= 1, all);
  const line = lines[0]!;
  assert.match(line, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the master holds that socket for the worker it started \\(pid \\d+, "npm start"\\)`));
  assert.match(line, /as `npm start`, `npx` and `yarn` do; give hitless the app's own command instead, here: node server\.js$/);
  const failure = master.records.find((r) => r.code === 'ERR_START_FAILED');
  assert.ok(failure, 'the master reports that the first generation did not start');
});

test('an app on the in-app library under `npm start` fails with ERR_LISTEN_IN_CHILD naming the fix, not a readiness-fd error (with and without the preload)', { timeout: 90_000 }, async (t) => {
  for (const preload of [true, false]) {
    const dir = appDir(t);
    const lib = JSON.stringify(join(root, 'build', 'src', 'index.js'));
    writeFileSync(join(dir, 'server.mjs'), `import { serve } from ${lib};\nawait serve((q, s) => s.end('hi\\n'));\n`);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, scripts: { start: 'node server.mjs' } }));
    const master = await startMaster(t, { command: ['npm', 'start'], cwd: dir, waitReady: false, args: preload ? [] : ['--no-preload'] });
    assert.equal((await master.exited).code, 1);
    const all = `${master.stdout}\n${master.stderr}`;
    assert.doesNotMatch(all, /HITLESS_READY_FD|Unsupported fd type|EADDRINUSE/, all);
    assert.match(all, /ERR_LISTEN_IN_CHILD/, all);
    assert.match(all, preload ? /give hitless the app's own command instead/ : /is not the worker the master started \(pid \d+\), which runs the app in a child process.*`node --import tsx server\.ts`/, all);
  }
});

test('ownCommand keeps the Node flags whole: tsx\'s `--import <loader>` (regression: the flag was dropped, its value kept)', () => {
  assert.equal(
    ownCommand(['/usr/bin/node', '/app/plain.mts'], ['--require', '/app/node_modules/tsx/dist/preflight.cjs', '--import', 'file:///app/node_modules/tsx/dist/loader.mjs'], '/app'),
    'node --require /app/node_modules/tsx/dist/preflight.cjs --import file:///app/node_modules/tsx/dist/loader.mjs plain.mts',
  );
});

test('an app listening only on a port the master does not hold is told which ports to use, on one line', { timeout: 60_000 }, async (t) => {
  const port = await freePort();
  const other = await freePort();
  const master = await startMaster(t, {
    command: [process.execPath, fixture('preload/other-port.js')],
    listen: [`127.0.0.1:${port}`],
    args: ['--ready-timeout', '5s'],
    env: { OTHER_PORT: String(other) },
    waitReady: false,
  });
  assert.equal((await master.exited).code, 1);
  const hint = master.stderr.split('\n').find((l) => l.startsWith('hitless: ERR_LISTEN_PORT_NOT_HELD'));
  assert.equal(
    hint,
    `hitless: ERR_LISTEN_PORT_NOT_HELD the app listens on 127.0.0.1:${other}, which the master does not hold (it holds http (127.0.0.1:${port})); ` +
      `start hitless with --listen ${other}, or make the app listen on port ${port} (PORT is set to it)`,
  );
  assert.ok(master.records.some((r) => r.code === 'ERR_START_FAILED' && String(r.msg).includes('did not announce readiness')));
});

test('--no-preload starts workers without the preload: an app binding the held port itself gets EADDRINUSE', { timeout: 60_000 }, async (t) => {
  const port = await freePort();
  const master = await startMaster(t, {
    command: [process.execPath, fixture('preload/own-handler.js')],
    listen: [`127.0.0.1:${port}`],
    args: ['--no-preload'],
    waitReady: false,
  });
  assert.equal((await master.exited).code, 1);
  assert.match(master.stderr, /EADDRINUSE/);
});

test('"preload" is on by default, false in hitless.json or with --no-preload', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-preload-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = async (args: string[]): Promise<unknown> => {
    const r = await runCli(['start', '--print-config', '--listen', '8080', ...args, '--', 'node', 'app.js'], {}, dir);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { preload: unknown }).preload;
  };
  assert.equal(await config([]), true);
  assert.equal(await config(['--no-preload']), false);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ preload: false }));
  assert.equal(await config([]), false);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ preload: 'no' }));
  const bad = await runCli(['start', '--print-config', '--listen', '8080', '--', 'node', 'app.js'], {}, dir);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /preload.*expected true \(default\) or false/);
});
