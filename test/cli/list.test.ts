// `hitless list` run by another user than a master's: the row of a master it may not ask
// shows the pid and app folder the master's beacon gives, not its run dir in APP and "-"
// in PID (h16 F5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { identifyMaster, type IdentifyHost } from '../../src/control/identify.js';
import { formatList } from '../../src/cli/commands/list.js';

/** A fake machine: hashes are the folder names prefixed, so a test reads which folder matched. */
function host(over: Partial<IdentifyHost>): IdentifyHost {
  return {
    beacons: [],
    commandLine: () => undefined,
    uidOf: () => 0,
    cwd: '/',
    hashOf: (dir) => `h${dir.replace(/\W/g, '')}`,
    ...over,
  };
}

test('regression (h16 F5): a default run dir leads to its beacon; the app folder is the one its hitless runs from (node_modules on the command line)', () => {
  const h = host({
    beacons: [{ hash: 'hsrvapp', pid: 4208 }, { hash: 'hsrvother', pid: 9120 }],
    commandLine: (pid) => (pid === 4208 ? ['/usr/bin/node', '/srv/app/node_modules/hitless/build/src/cli/main.js', 'start'] : undefined),
  });
  assert.deepEqual(identifyMaster('/tmp/hitless-0/hsrvapp', h), { pid: 4208, appDir: '/srv/app' });
  // Another user's default folder name does not lead there.
  assert.deepEqual(identifyMaster('/tmp/hitless-1000/hsrvapp', h), {});
});

test('regression (h16 F5): a --run-dir on the command line leads to its beacon; the app folder from --config, or from the folder the command runs in', () => {
  const lines: Record<number, string[]> = {
    1: ['node', '/usr/lib/node_modules/hitless/main.js', 'start', '--config', '/srv/api/hitless.json', '--run-dir', '/run/api'],
    2: ['node', 'hitless', 'start', '--run-dir=/run/shop'],
  };
  const h = host({ beacons: [{ hash: 'hsrvapi', pid: 1 }, { hash: 'hsrvshop', pid: 2 }], commandLine: (pid) => lines[pid] });
  assert.deepEqual(identifyMaster('/run/api', h), { pid: 1, appDir: '/srv/api' });
  // Nothing on its command line names /srv/shop: the pid only, unless the command runs there or below.
  assert.deepEqual(identifyMaster('/run/shop', h), { pid: 2 });
  assert.deepEqual(identifyMaster('/run/shop', { ...h, cwd: '/srv/shop/public' }), { pid: 2, appDir: '/srv/shop' });
  // A run dir no beacon leads to (the runDir key of a file this user cannot read).
  assert.deepEqual(identifyMaster('/run/elsewhere', h), {});
});

test('a master upgrade under way (two beacons, one run dir): the app folder, no single pid', () => {
  const h = host({ beacons: [{ hash: 'hsrvapp', pid: 10 }, { hash: 'hsrvapp', pid: 11 }], cwd: '/srv/app' });
  assert.deepEqual(identifyMaster('/tmp/hitless-0/hsrvapp', h), { appDir: '/srv/app' });
});

test('regression (h16 F5): list shows another user\'s master by app folder and pid; its run dir only in --wide', () => {
  const denied = 'permission denied (another user\'s master: run as that user or root)';
  const table = formatList([{ runDir: '/tmp/hitless-0/3f2a', error: denied, pid: 4208, appDir: '/srv/app' }, { runDir: '/run/x', error: denied }], 0, true);
  const [, first, second] = table.split('\n');
  assert.match(first!, /^\/srv\/app +4208 +permission denied .* \/tmp\/hitless-0\/3f2a$/);
  assert.match(second!, /^\? +- +permission denied .* \/run\/x$/);
  assert.doesNotMatch(formatList([{ runDir: '/tmp/hitless-0/3f2a', error: denied, pid: 4208, appDir: '/srv/app' }], 0), /hitless-0/);
});
