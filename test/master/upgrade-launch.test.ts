/**
 * How an upgrade starts the new master (src/master/upgrade-launch.ts): the same `hitless
 * start` arguments, and a master started with flags only stays so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { upgradeLaunch, type LaunchContext } from '../../src/master/upgrade-launch.js';

function context(t: { after(fn: () => void): void }, o: Partial<LaunchContext> = {}): LaunchContext {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-launch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const cli = join(dir, 'main.js');
  writeFileSync(cli, '');
  return { startedFrom: cli, startArgv: ['--listen', '127.0.0.1:0', '--', 'node', 'server.js'], cwd: dir, env: {}, execPath: '/usr/bin/node', execArgv: [], inherited: 0, ...o };
}

test('the new master gets the old one\'s `hitless start` arguments as they were', async (t) => {
  const ctx = context(t);
  const { launch } = await upgradeLaunch(undefined, ctx, [10]);
  assert.deepEqual(launch.command.slice(2), ['start', '--listen', '127.0.0.1:0', '--', 'node', 'server.js']);
});

test('regression (h18 N3): the new master of a master started with flags only gets --no-config, so a hitless.json written since is not read (it became a file master)', async (t) => {
  const ctx = context(t, { flagsOnly: true });
  const { launch } = await upgradeLaunch(undefined, ctx, [10]);
  assert.deepEqual(launch.command.slice(2), ['start', '--no-config', '--listen', '127.0.0.1:0', '--', 'node', 'server.js']);
  // Its own upgrade later passes the flag on as it is, once.
  const again = await upgradeLaunch(undefined, { ...ctx, startArgv: launch.command.slice(3) }, [10]);
  assert.deepEqual(again.launch.command.slice(2), ['start', '--no-config', '--listen', '127.0.0.1:0', '--', 'node', 'server.js']);
});

/** Writes a fake hitless package at `dir`: package.json with `version` and an empty CLI. */
function fakeCopy(dir: string, version: string): string {
  mkdirSync(join(dir, 'build/src/cli'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'hitless', version, bin: { hitless: 'build/src/cli/main.js' } }));
  writeFileSync(join(dir, 'build/src/cli/main.js'), '');
  return join(dir, 'build/src/cli/main.js');
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'hitless-layout-')));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** pnpm's layout: each version in node_modules/.pnpm/hitless@<version>/node_modules/hitless, the app's node_modules/hitless a symlink to one, .bin/hitless a shell shim running the store path. */
function pnpmApp(root: string, app: string, versions: string[], linked: string): { store: (v: string) => string } {
  const store = (v: string): string => join(root, 'node_modules/.pnpm', `hitless@${v}`, 'node_modules/hitless');
  for (const v of versions) fakeCopy(store(v), v);
  mkdirSync(join(app, 'node_modules/.bin'), { recursive: true });
  symlinkSync(store(linked), join(app, 'node_modules/hitless'));
  writeFileSync(join(app, 'node_modules/.bin/hitless'), `#!/bin/sh\nexec node "${store(linked)}/build/src/cli/main.js" "$@"\n`, { mode: 0o755 });
  return { store };
}

test('regression (h23 F3): installed with pnpm, the upgrade runs the version the app\'s node_modules/hitless links to now, not the store folder of the version the master was started from', async (t) => {
  const app = tempDir(t);
  const { store } = pnpmApp(app, app, ['0.1.0', '0.2.0'], '0.2.0');
  // The master was started through the shim of 0.1.0: its argv[1] is that version's store path.
  const ctx = context(t, { startedFrom: join(store('0.1.0'), 'build/src/cli/main.js'), cwd: app });
  const { launch, exec, notRun } = await upgradeLaunch(undefined, ctx, [10]);
  const stable = join(app, 'node_modules/hitless/build/src/cli/main.js');
  assert.equal(launch.command[1], stable, 'the new master runs (and later upgrades again) through the stable symlink');
  assert.equal(exec, `${stable} → ${join(store('0.2.0'), 'build/src/cli/main.js')}`);
  assert.equal(notRun, undefined);
  // --exec is run as given.
  const given = await upgradeLaunch(join(store('0.1.0'), 'build/src/cli/main.js'), ctx, [10]);
  assert.equal(given.launch.command[1], join(store('0.1.0'), 'build/src/cli/main.js'));
});

test('regression (h29 N1): after pnpm prune removed the store folder of the version the master runs, the upgrade runs the version node_modules/hitless links to (it failed with a raw ENOENT lstat of that folder); with nothing left to run it says ERR_UPGRADE_EXEC with the --exec advice', async (t) => {
  const app = tempDir(t);
  const { store } = pnpmApp(app, app, ['0.1.0', '0.2.0'], '0.2.0');
  // This master's own modules are in 0.1.0's store folder, which the prune removes.
  const self = join(store('0.1.0'), 'build/src/master/upgrade-launch.js');
  mkdirSync(join(store('0.1.0'), 'build/src/master'));
  writeFileSync(self, '');
  rmSync(join(app, 'node_modules/.pnpm/hitless@0.1.0'), { recursive: true });
  const stable = join(app, 'node_modules/hitless/build/src/cli/main.js');
  // Started through the shim (argv[1] in the removed folder), or by an earlier upgrade through the symlink.
  for (const startedFrom of [join(store('0.1.0'), 'build/src/cli/main.js'), stable]) {
    const out = await upgradeLaunch(undefined, context(t, { startedFrom, cwd: app, self }), [10]);
    assert.equal(out.launch.command[1], stable, startedFrom);
    assert.equal(out.exec, `${stable} → ${join(store('0.2.0'), 'build/src/cli/main.js')}`);
    assert.equal(out.notRun, undefined);
  }
  // No hitless installed any more: the path cannot be run, and the message says what to pass.
  rmSync(join(app, 'node_modules/hitless'));
  rmSync(join(app, 'node_modules/.pnpm'), { recursive: true });
  await assert.rejects(upgradeLaunch(undefined, context(t, { startedFrom: join(store('0.1.0'), 'build/src/cli/main.js'), cwd: app, self }), [10]), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_UPGRADE_EXEC');
    assert.match(err.message, /^cannot run .*hitless@0\.1\.0.*main\.js: ENOENT; pass --exec <path of the hitless to run>$/);
    return true;
  });
});

test('regression (h23 F3): in a pnpm workspace (the store at its root, the app in a package below) the app\'s own node_modules/hitless link is the one run', async (t) => {
  const root = tempDir(t);
  const app = join(root, 'packages/api');
  mkdirSync(app, { recursive: true });
  const { store } = pnpmApp(root, app, ['0.1.0', '0.3.0'], '0.3.0');
  const ctx = context(t, { startedFrom: join(store('0.1.0'), 'build/src/cli/main.js'), cwd: app });
  assert.equal((await upgradeLaunch(undefined, ctx, [10])).launch.command[1], join(app, 'node_modules/hitless/build/src/cli/main.js'));
});

test('regression (h23 F3): a master started from a global hitless runs it again, and the outcome says so when the app folder has another version installed', async (t) => {
  const dir = tempDir(t);
  const global = fakeCopy(join(dir, 'global/lib/node_modules/hitless'), '0.1.0');
  mkdirSync(join(dir, 'global/bin'));
  symlinkSync(global, join(dir, 'global/bin/hitless'));
  const app = join(dir, 'app');
  fakeCopy(join(app, 'node_modules/hitless'), '0.2.0');
  const ctx = context(t, { startedFrom: join(dir, 'global/bin/hitless'), cwd: app, self: global });
  const out = await upgradeLaunch(undefined, ctx, [10]);
  assert.equal(out.launch.command[1], join(dir, 'global/bin/hitless'));
  assert.deepEqual(out.notRun, { version: '0.2.0', exec: join(app, 'node_modules/hitless/build/src/cli/main.js') });
  // The same version in the app (the library beside a global CLI): nothing to say.
  writeFileSync(join(app, 'node_modules/hitless/package.json'), JSON.stringify({ name: 'hitless', version: '0.1.0' }));
  assert.equal((await upgradeLaunch(undefined, ctx, [10])).notRun, undefined);
  // The global hitless was updated since (its symlink moved to another folder): a new copy runs, nothing to say.
  writeFileSync(join(app, 'node_modules/hitless/package.json'), JSON.stringify({ name: 'hitless', version: '0.2.0' }));
  const updated = fakeCopy(join(dir, 'global/lib/node_modules/.hitless-new'), '0.2.0');
  rmSync(join(dir, 'global/bin/hitless'));
  symlinkSync(updated, join(dir, 'global/bin/hitless'));
  const after = await upgradeLaunch(undefined, ctx, [10]);
  assert.equal(after.exec, `${join(dir, 'global/bin/hitless')} → ${updated}`);
  assert.equal(after.notRun, undefined);
});

/** A Yarn Plug'n'Play app: hitless 0.1.0 (the master's) and 0.2.0 (the app's now) in Yarn's cache, a .pnp.cjs resolving hitless to 0.2.0. */
function yarnApp(t: { after(fn: () => void): void }): { ctx: LaunchContext; now: string } {
  const app = tempDir(t);
  const zip = (v: string): string => join(app, `.yarn/__virtual__/hitless-virtual-${v}/0/cache/hitless-${v}.zip/node_modules/hitless`);
  const old = fakeCopy(zip('0.1.0'), '0.1.0');
  const now = fakeCopy(zip('0.2.0'), '0.2.0');
  // What Yarn's .pnp.cjs does for this request, reduced to it: the app's dependency hitless is 0.2.0 now.
  writeFileSync(join(app, 'pnp.cjs'), `const Module = require('node:module'); const orig = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) { return request === 'hitless/package.json' ? ${JSON.stringify(join(zip('0.2.0'), 'package.json'))} : orig.call(this, request, ...rest); };\n`);
  const ctx = context(t, { startedFrom: old, cwd: app, execPath: process.execPath, env: { ...process.env, NODE_OPTIONS: `--require ${join(app, 'pnp.cjs')}` } });
  return { ctx, now };
}

test('regression (h23 F3): under Yarn Plug\'n\'Play the upgrade runs the hitless Yarn resolves from the app folder now; without Yarn\'s runtime it refuses, naming --exec "$(yarn bin hitless)"', async (t) => {
  const { ctx, now } = yarnApp(t);
  assert.equal((await upgradeLaunch(undefined, ctx, [10])).launch.command[1], now);
  await assert.rejects(upgradeLaunch(undefined, { ...ctx, env: { ...process.env, NODE_OPTIONS: '' } }, [10]),
    (e: Error & { code?: string }) => e.code === 'ERR_UPGRADE_EXEC' && /Yarn Plug'n'Play/.test(e.message) && e.message.endsWith('pass --exec "$(yarn bin hitless)"'));
  // A Node that cannot be started is said the same way, with the reason.
  await assert.rejects(upgradeLaunch(undefined, { ...ctx, execPath: join(ctx.cwd, 'no-node') }, [10]),
    (e: Error & { code?: string }) => e.code === 'ERR_UPGRADE_EXEC' && /failed \(spawn \S+no-node ENOENT\); pass --exec/.test(e.message));
});

test('regression (review B6): resolving hitless under Yarn Plug\'n\'Play does not block the master\'s event loop (it was a spawnSync of up to 10 s: no control answers, no worker messages, stalled drains)', async (t) => {
  const { ctx, now } = yarnApp(t);
  const order: string[] = [];
  const resolved = upgradeLaunch(undefined, ctx, [10]).then((r) => {
    order.push('resolved');
    return r;
  });
  // The child `node` takes tens of milliseconds to start: the master's timers run meanwhile.
  setTimeout(() => order.push('timer'), 0);
  assert.equal((await resolved).launch.command[1], now);
  assert.deepEqual(order, ['timer', 'resolved']);
});
