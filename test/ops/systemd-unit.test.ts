/**
 * The example systemd units are checked by systemd itself (`systemd-analyze verify`, with
 * this machine's paths substituted), and their stop timeout is checked against the
 * example config's drain budget. Running them needs systemd as PID 1, which this machine
 * does not have; socket activation is exercised for real in socket-activation.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, root } from '../helpers/master.js';
import { needs } from '../helpers/tools.js';
import { parseDuration } from '../../src/config/duration.js';
import { loadConfig } from '../../src/config/load.js';
import { reloadBudgetMs, RELOAD_MARGIN_MS } from '../../src/cli/unit.js';

const noAnalyze = needs('systemd-analyze');
const example = (name: string): string => readFileSync(join(root, 'examples', 'systemd', name), 'utf8');

test('examples/systemd: myapp.service and myapp.socket pass systemd-analyze verify with no warning', { skip: noAnalyze }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-systemd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // This machine's node and hitless in place of the example's (a unit must name real, executable paths).
  const service = example('myapp.service')
    .replaceAll('/usr/bin/node /srv/myapp/node_modules/hitless/build/src/cli/main.js', `${process.execPath} ${cli}`)
    .replaceAll('/srv/myapp', dir);
  for (const exec of service.split('\n').filter((l) => l.startsWith('Exec'))) {
    assert.doesNotMatch(exec, /\/usr\/bin\/hitless|npx/, 'no path that a fresh install does not have');
  }
  writeFileSync(join(dir, 'myapp.service'), service);
  writeFileSync(join(dir, 'myapp.socket'), example('myapp.socket'));
  const r = spawnSync('systemd-analyze', ['verify', join(dir, 'myapp.service'), join(dir, 'myapp.socket')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'systemd printed warnings about the units');
});

test('examples/systemd: SIGTERM to the master only, reload waits for the outcome within a start timeout above the longest reload, the run dir kept across restarts, Type=notify with NotifyAccess=all, stop timeout above the drain budget', () => {
  const service = example('myapp.service');
  const config = JSON.parse(example('hitless.json')) as { drainTimeout?: string | number };
  const key = (name: string): string => new RegExp(`^${name}=(.*)$`, 'm').exec(service)?.[1] ?? '';
  assert.equal(key('KillMode'), 'mixed', 'the master, not systemd, must stop the workers');
  assert.equal(key('KillSignal'), 'SIGTERM');
  assert.match(key('ExecReload'), /\/hitless\/build\/src\/cli\/main\.js reload --run-dir \/run\/myapp$/);
  // Upgrades: systemd follows the new master's MAINPID= (src/master/notify.ts).
  assert.equal(key('Type'), 'notify');
  assert.equal(key('NotifyAccess'), 'all', 'the new master and systemd-notify are not the main process');
  // As `hitless startup` writes it (src/cli/unit.ts): a User= master can restore a booting worker's priority.
  assert.equal(key('LimitNICE'), '+0', 'the hand-written example lacked what the generated unit has');
  // As `hitless startup` writes it: the run dir (and the compile cache in it) outlives a restart (h24 F4).
  assert.equal(key('RuntimeDirectoryPreserve'), 'restart');
  // systemd bounds ExecReload= by TimeoutStartSec (h24 F5): above the example config's longest reload on 1 CPU.
  const reloadMs = reloadBudgetMs(loadConfig({ flags: { config: join(root, 'examples', 'systemd', 'hitless.json') } }), 1);
  assert.ok(Number(key('TimeoutStartSec')) * 1000 >= reloadMs + RELOAD_MARGIN_MS, `TimeoutStartSec=${key('TimeoutStartSec')} must cover a reload (${reloadMs} ms) + ${RELOAD_MARGIN_MS} ms`);
  const drainMs = parseDuration(config.drainTimeout ?? '30s');
  assert.ok(Number(key('TimeoutStopSec')) * 1000 > drainMs, `TimeoutStopSec=${key('TimeoutStopSec')} must exceed drainTimeout (${drainMs} ms)`);
});
