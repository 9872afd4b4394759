/**
 * How an upgrade starts the new master (src/master/upgrade-launch.ts): the same `hitless
 * start` arguments, and a master started with flags only stays so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

test('the new master gets the old one\'s `hitless start` arguments as they were', (t) => {
  const ctx = context(t);
  const { launch } = upgradeLaunch(undefined, ctx, [10]);
  assert.deepEqual(launch.command.slice(2), ['start', '--listen', '127.0.0.1:0', '--', 'node', 'server.js']);
});

test('regression (h18 N3): the new master of a master started with flags only gets --no-config, so a hitless.json written since is not read (it became a file master)', (t) => {
  const ctx = context(t, { flagsOnly: true });
  const { launch } = upgradeLaunch(undefined, ctx, [10]);
  assert.deepEqual(launch.command.slice(2), ['start', '--no-config', '--listen', '127.0.0.1:0', '--', 'node', 'server.js']);
  // Its own upgrade later passes the flag on as it is, once.
  const again = upgradeLaunch(undefined, { ...ctx, startArgv: launch.command.slice(3) }, [10]);
  assert.deepEqual(again.launch.command.slice(2), ['start', '--no-config', '--listen', '127.0.0.1:0', '--', 'node', 'server.js']);
});
