import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLogFiles } from '../../src/ops/logfiles.js';
import { FakeMaster, fakeConfig, memoryLogger } from './fake-master.js';

const logsModule = fileURLToPath(new URL('../../src/cli/commands/logs.js', import.meta.url));
// Runs the command module the way src/cli/main.ts does, printing thrown errors' codes.
const runner = `import { command } from ${JSON.stringify(logsModule)};
try { process.exitCode = await command.run(process.argv.slice(1)); }
catch (e) { process.stderr.write(e.code + ': ' + e.message + '\\n'); process.exitCode = 1; }`;

function runLogs(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', runner, '--', ...args], { cwd }, (err, stdout, stderr) =>
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr }));
  });
}

async function appWithLogs(t: { after(fn: () => Promise<void>): void }, lines: number): Promise<string> {
  const app = await mkdtemp(join(tmpdir(), 'hitless-logscmd-'));
  t.after(() => rm(app, { recursive: true, force: true }));
  await writeFile(join(app, 'hitless.json'), JSON.stringify({
    command: ['node', 'server.js'], listen: ['127.0.0.1:0'],
    logs: { mode: 'file', dir: 'var/log', maxSize: '1kb', keep: 20, tag: true },
  }));
  const master = new FakeMaster();
  const logs = await startLogFiles(fakeConfig({ logs: { mode: 'file', dir: join(app, 'var/log'), maxSize: 1024, keep: 20, tag: true } }),
    master, memoryLogger());
  for (let i = 0; i < lines; i++) master.emitEvent({ type: 'worker-output', generation: 4, slot: 2, stream: 'stdout', line: `n=${i}` });
  await logs.close();
  return app;
}

test('hitless logs -n N: last lines across rotated files, found through hitless.json', async (t) => {
  const app = await appWithLogs(t, 300);
  const r = await runLogs(['-n', '150'], app);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trimEnd().split('\n'), Array.from({ length: 150 }, (_, i) => `[4.2] n=${150 + i}`));
  const dflt = await runLogs([], app);
  assert.equal(dflt.stdout.trimEnd().split('\n').length, 10);
});

test('hitless logs: bad -n and inherit mode are usage errors with a fix', async (t) => {
  const app = await appWithLogs(t, 3);
  const bad = await runLogs(['-n', 'many'], app);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^ERR_USAGE: .*-n "many"/);
  await writeFile(join(app, 'hitless.json'), JSON.stringify({ command: ['node', 'server.js'], listen: ['127.0.0.1:0'] }));
  const inherit = await runLogs([], app);
  assert.equal(inherit.code, 1);
  assert.match(inherit.stderr, /^ERR_USAGE: .*"inherit"/);
  const missing = await runLogs(['--dir', 'var/logs', '-n', '3'], app);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, `ERR_USAGE: logs: --dir ${join(app, 'var/logs')}: no such folder (the config's logs.dir, relative to the app folder, is where the files are)\n`);
});

test('hitless logs -f: prints lines appended after it started, stops on SIGINT', async (t) => {
  const app = await appWithLogs(t, 5);
  const dir = join(app, 'var/log');
  const master = new FakeMaster();
  const logs = await startLogFiles(fakeConfig({ logs: { mode: 'file', dir, maxSize: 1024, keep: 20, tag: false } }), master, memoryLogger());
  t.after(() => logs.close());
  const child = spawn(process.execPath, ['--input-type=module', '-e', runner, '--', '-f', '-n', '1'], { cwd: app });
  t.after(() => { child.kill('SIGKILL'); });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve) => child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    if (out.includes('[4.2] n=4\n')) resolve(); // printed the tail: now following
  }));
  const done = new Promise<void>((resolve) => child.stdout.on('data', () => { if (out.includes('late 199\n')) resolve(); }));
  for (let i = 0; i < 200; i++) master.emitEvent({ type: 'worker-output', generation: 5, slot: 1, stream: 'stdout', line: `late ${i}` });
  await done;
  child.kill('SIGINT');
  assert.equal(await exited, 0);
  assert.deepEqual(out.trimEnd().split('\n'), ['[4.2] n=4', ...Array.from({ length: 200 }, (_, i) => `late ${i}`)]);
});
