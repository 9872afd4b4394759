// `hitless startup` (issue 19): a systemd unit with the real paths of node and hitless,
// checked by systemd itself (`systemd-analyze verify`), and `--install` driving systemctl.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli as cliPath, runCli } from '../helpers/master.js';
import { needs } from '../helpers/tools.js';
import { quoteArg, reloadBudgetMs, systemdUnit, unitNameFor, UNIT_MARKER, type ReloadBounds } from '../../src/cli/unit.js';
import { DEFAULT_CANARY, DEFAULT_DRAIN } from '../../src/config/defaults.js';
import { unitCliPath } from '../../src/cli/commands/startup.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hitless-startup-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const cli = (dir: string, args: string[], env: Record<string, string> = {}) => runCli(args, { XDG_RUNTIME_DIR: dir, HITLESS_DEBUG: '', ...env }, dir);
const key = (unit: string, name: string): string[] => [...unit.matchAll(new RegExp(`^${name}=(.*)$`, 'gm'))].map((m) => m[1]!);

test('quoteArg and unitNameFor: systemd quoting (%, $, spaces, quotes) and a unit name from a folder', () => {
  assert.equal(quoteArg('/usr/bin/node'), '/usr/bin/node');
  assert.equal(quoteArg('my app.js'), '"my app.js"');
  assert.equal(quoteArg('A=$HOME 50%'), '"A=$$HOME 50%%"');
  assert.equal(quoteArg('say "hi"\\'), '"say \\"hi\\"\\\\"');
  assert.equal(unitNameFor('/srv/My App'), 'my-app');
  assert.equal(unitNameFor('/srv/shop_api/'), 'shop_api');
  assert.equal(unitNameFor('/'), 'app');
});

test('systemdUnit writes each line the way systemd reads that setting: WorkingDirectory= as it is (no quotes) with % doubled, Environment= without $ doubled, control characters escaped (h16 F3)', () => {
  const unit = systemdUnit({
    name: 'a', workingDirectory: '/srv/my "app" 50%', node: '/opt/$v/bin/node', cli: '/srv/a/main.js',
    startArgs: ['--', 'node', 'two\nlines'], runDir: undefined, user: undefined, drainTimeoutMs: 30_000, reloadMs: 60_000, description: 'a',
  });
  assert.deepEqual(key(unit, 'WorkingDirectory'), ['/srv/my "app" 50%%']);
  assert.match(key(unit, 'Environment')[0] ?? '', /^"PATH=\/opt\/\$v\/bin:\/usr\/local\/sbin:/, 'systemd does not expand $ in Environment=: $$ would stay two');
  assert.deepEqual(key(unit, 'ExecStart'), ['"/opt/$$v/bin/node" /srv/a/main.js start --run-dir /run/a -- node "two\\x0alines"']);
  assert.equal(quoteArg('tab\there'), '"tab\\x09here"');
  // What a WorkingDirectory= line cannot hold is refused with the reason, not written broken.
  const unitIn = (workingDirectory: string) => () => systemdUnit({
    name: 'a', workingDirectory, node: '/n', cli: '/c', startArgs: [], runDir: undefined, user: undefined, drainTimeoutMs: 1000, reloadMs: 1000, description: 'a',
  });
  assert.throws(unitIn('/srv/app '), { code: 'ERR_USAGE', message: /^startup: systemd cannot take "\/srv\/app " as WorkingDirectory=: the path ends with a space, which systemd strips; rename the folder/ });
  assert.throws(unitIn('/srv/app\\'), { code: 'ERR_USAGE', message: /ends with a backslash/ });
  assert.throws(unitIn('/srv/a\nb'), { code: 'ERR_USAGE', message: /holds a line break/ });
});

test('hitless startup in a folder whose name ends with a space: refused with the reason (exit 2), no unit written', async (t) => {
  const dir = join(tempDir(t), 'app ');
  mkdirSync(dir);
  const r = await cli(dir, ['startup', '--name', 'app', '--listen', '3000', '--', 'node', 'server.js']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^hitless: startup: systemd cannot take ".*\/app " as WorkingDirectory=: the path ends with a space, which systemd strips; rename the folder/);
  assert.equal(existsSync(join(dir, 'app.service')), false);
});

test('hitless startup writes a unit with the real paths of node and hitless, the start flags, a run dir systemd makes, and a stop timeout above drainTimeout', async (t) => {
  const dir = tempDir(t);
  const r = await cli(dir, ['startup', '--listen', '127.0.0.1:3000', '--workers', '2', '--drain-timeout', '20s', '--boot-concurrency', '1', '--', 'node', 'my server.js']);
  assert.equal(r.code, 0, r.stderr);
  const name = unitNameFor(dir);
  const file = join(dir, `${name}.service`);
  assert.match(r.stdout, new RegExp(`^wrote ${file}\\n`));
  assert.match(r.stdout, new RegExp(`sudo cp ${file} /etc/systemd/system/${name}\\.service && sudo systemctl daemon-reload && sudo systemctl enable --now ${name}\\n`));
  const unit = readFileSync(file, 'utf8');
  assert.ok(unit.startsWith(UNIT_MARKER));
  const node = realpathSync(process.execPath);
  const hitless = realpathSync(cliPath);
  assert.deepEqual(key(unit, 'ExecStart'), [`${node} ${hitless} start --listen 127.0.0.1:3000 --workers 2 --drain-timeout 20s --boot-concurrency 1 --run-dir /run/${name} -- node "my server.js"`]);
  assert.deepEqual(key(unit, 'ExecReload'), [`${node} ${hitless} reload --run-dir /run/${name}`]);
  assert.deepEqual(key(unit, 'WorkingDirectory'), [dir]);
  assert.deepEqual(key(unit, 'RuntimeDirectory'), [name]);
  // h24 F4: without it systemd empties /run/<name> at every restart, compile cache included.
  assert.deepEqual(key(unit, 'RuntimeDirectoryPreserve'), ['restart']);
  assert.deepEqual(key(unit, 'KillMode'), ['mixed']);
  assert.deepEqual(key(unit, 'TimeoutStopSec'), ['35']);
  // h24 F5: 2 workers one at a time, 30 s each to be ready, then drainTimeout 20 s (below drain.reloadWait) = 80 s, + 30 s.
  assert.deepEqual(key(unit, 'TimeoutStartSec'), ['110']);
  assert.ok(key(unit, 'Environment')[0]?.startsWith(`PATH=${join(node, '..')}:`), 'workers started as `node …` find the same node');
  assert.deepEqual(key(unit, 'User'), process.getuid?.() === 0 ? [] : [process.env.USER ?? '']);

  const stdout = await cli(dir, ['startup', '--output', '-', '--name', 'shop', '--listen', '3000', '--', 'node', 'server.js']);
  assert.equal(stdout.code, 0, stdout.stderr);
  assert.match(stdout.stdout, /^ExecReload=.* reload --run-dir \/run\/shop$/m);
});

test('the generated unit passes systemd-analyze verify with no warning, in an app folder whose path has a space (WorkingDirectory= is not unquoted by systemd: h16 F3)', { skip: needs('systemd-analyze') }, async (t) => {
  const dir = join(tempDir(t), 'my app');
  mkdirSync(dir);
  writeFileSync(join(dir, 'hitless.json'), JSON.stringify({ command: ['node', 'server.js'], listen: ['127.0.0.1:3000'], workers: 2 }));
  const r = await cli(dir, ['startup', '--name', 'hitless-verify-test']);
  assert.equal(r.code, 0, r.stderr);
  const file = join(dir, 'hitless-verify-test.service');
  const unit = readFileSync(file, 'utf8');
  assert.ok(unit.includes(`\nExecStart=${quoteArg(realpathSync(process.execPath))} ${quoteArg(realpathSync(cliPath))} start --config "${join(dir, 'hitless.json')}" --run-dir /run/hitless-verify-test\n`), unit);
  assert.deepEqual(key(unit, 'WorkingDirectory'), [dir]);
  const v = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr);
  assert.equal(`${v.stdout}${v.stderr}`.trim(), '', 'systemd printed warnings about the unit');
});

test('hitless startup --install writes the unit where asked and runs systemctl daemon-reload, then enable --now', async (t) => {
  const dir = tempDir(t);
  const units = join(dir, 'units');
  const bin = join(dir, 'bin');
  mkdirSync(units);
  mkdirSync(bin);
  // A systemctl that records how it was called (this machine has no systemd as PID 1).
  writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> ${join(dir, 'systemctl.log')}\n`);
  chmodSync(join(bin, 'systemctl'), 0o755);
  const env = { PATH: `${bin}:${process.env.PATH ?? ''}` };
  const r = await cli(dir, ['startup', '--install', '--unit-dir', units, '--name', 'shop', '--listen', '3000', '--', 'node', 'server.js'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^wrote ${join(units, 'shop.service')}\\nshop is enabled and started: systemctl status shop`));
  assert.match(readFileSync(join(units, 'shop.service'), 'utf8'), /^ExecStart=.* start --listen 3000 --run-dir \/run\/shop -- node server\.js$/m);
  assert.equal(readFileSync(join(dir, 'systemctl.log'), 'utf8'), 'daemon-reload\nenable --now shop.service\n');
  // Run again: its own unit is replaced, and a running service needs a restart to take it.
  const again = await cli(dir, ['startup', '--install', '--unit-dir', units, '--name', 'shop', '--listen', '3001', '--', 'node', 'server.js'], env);
  assert.equal(again.code, 0, again.stderr);
  assert.match(readFileSync(join(units, 'shop.service'), 'utf8'), /--listen 3001/);
  assert.match(again.stdout, /^the unit changed: if shop was running already, it still runs the old command line until `systemctl restart shop`/m);
  const same = await cli(dir, ['startup', '--install', '--unit-dir', units, '--name', 'shop', '--listen', '3001', '--', 'node', 'server.js'], env);
  assert.doesNotMatch(same.stdout, /the unit changed/, 'the same unit again: nothing to restart for');
  // A unit of that name hitless did not write is never overwritten.
  writeFileSync(join(units, 'other.service'), '[Service]\nExecStart=/bin/true\n');
  const foreign = await cli(dir, ['startup', '--install', '--unit-dir', units, '--name', 'other', '--listen', '3000', '--', 'node', 'server.js'], env);
  assert.equal(foreign.code, 2);
  assert.match(foreign.stderr, /a unit named other\.service exists already .* and was not written by hitless startup; choose another name with --name/);
  assert.equal(readFileSync(join(units, 'other.service'), 'utf8'), '[Service]\nExecStart=/bin/true\n');
});

test('hitless startup --install where systemctl fails (no systemd as PID 1): the unit written is taken back, and the message says why when systemd does not run here', async (t) => {
  const dir = tempDir(t);
  const units = join(dir, 'units');
  const bin = join(dir, 'bin');
  mkdirSync(units);
  mkdirSync(bin);
  // What systemctl says in a container.
  writeFileSync(join(bin, 'systemctl'), '#!/bin/sh\necho "System has not been booted with systemd as init system (PID 1). Can\'t operate." >&2\nexit 1\n');
  chmodSync(join(bin, 'systemctl'), 0o755);
  const r = await cli(dir, ['startup', '--install', '--unit-dir', units, '--name', 'shop', '--listen', '3000', '--', 'node', 'server.js'], { PATH: `${bin}:${process.env.PATH ?? ''}` });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, new RegExp(`^wrote ${join(units, 'shop.service')}\\nremoved ${join(units, 'shop.service')}\\n$`));
  assert.equal(existsSync(join(units, 'shop.service')), false);
  const why = existsSync('/run/systemd/system') ? /see `systemctl status`/ : /systemd does not run this machine \(no \/run\/systemd\/system: a container, or another init\)/;
  assert.match(r.stderr, /hitless: startup: systemctl daemon-reload exited with code 1; /);
  assert.match(r.stderr, why);
});

test('hitless startup validates like hitless start: a bad configuration writes nothing, exit 2', async (t) => {
  const dir = tempDir(t);
  const r = await cli(dir, ['startup', '--listen', '127.0.0.1:3000', '--workers', 'many', '--', 'node', 'server.js']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^hitless: --workers: got "many"/);
  assert.equal(existsSync(join(dir, `${unitNameFor(dir)}.service`)), false);
  const noCommand = await cli(dir, ['startup']);
  assert.equal(noCommand.code, 2);
  // Flags that would be dropped or meaningless in a unit are refused, naming what to do.
  const print = await cli(dir, ['startup', '--print-config', '--listen', '3000', '--', 'node', 'server.js']);
  assert.equal(print.code, 2);
  assert.match(print.stderr, /--print-config is for `hitless start`/);
  const unitDir = await cli(dir, ['startup', '--unit-dir', join(dir, 'units'), '--listen', '3000', '--', 'node', 'server.js']);
  assert.equal(unitDir.code, 2);
  assert.match(unitDir.stderr, /--unit-dir goes with --install/);
  const noUser = await cli(dir, ['startup', '--user', 'hitless-no-such-user', '--output', '-', '--listen', '3000', '--', 'node', 'server.js']);
  assert.equal(noUser.code, 2);
  assert.match(noUser.stderr, /--user "hitless-no-such-user": no such user on this machine/);
  // `shop@` would be a template unit, which systemctl can neither enable nor start.
  const template = await cli(dir, ['startup', '--name', 'shop@', '--output', '-', '--listen', '3000', '--', 'node', 'server.js']);
  assert.equal(template.code, 2);
  assert.match(template.stderr, /--name "shop@" is not a unit name/);
  assert.equal(existsSync(join(dir, `${unitNameFor(dir)}.service`)), false);
});

const bounds = (o: Partial<ReloadBounds> = {}): ReloadBounds => ({
  workers: 2, readyTimeout: 30_000, drainTimeout: 30_000, strategy: 'all', canary: { ...DEFAULT_CANARY }, drain: { ...DEFAULT_DRAIN },
  bootConcurrency: 'auto', warmup: [], ...o,
});

test('reloadBudgetMs: a reload\'s longest successful run from the configuration (boot lanes, warm-up, rolling, canary, drain.reloadWait)', () => {
  assert.equal(reloadBudgetMs(bounds(), 2), 2 * 30_000 + 30_000, '"auto" on 2 CPUs boots one worker at a time');
  assert.equal(reloadBudgetMs(bounds(), 8), 30_000 + 30_000, '"auto" on 8 CPUs: 4 at once');
  assert.equal(reloadBudgetMs(bounds({ bootConcurrency: undefined }), 2), 30_000 + 30_000, 'no limit: all at once');
  assert.equal(reloadBudgetMs(bounds({ warmup: ['/'] }), 2), 2 * 60_000 + 30_000, 'a warm-up has readyTimeout again');
  assert.equal(reloadBudgetMs(bounds({ drainTimeout: 10_000 }), 2), 2 * 30_000 + 10_000, 'old workers are gone at drainTimeout');
  assert.equal(reloadBudgetMs(bounds({ strategy: 'rolling', workers: 3 }), 8), 3 * (30_000 + 30_000), 'rolling: one slot after the other');
  assert.equal(reloadBudgetMs(bounds({ strategy: 'canary', workers: 3 }), 2), 30_000 + 30_000 + 2 * 30_000 + 30_000, 'canary, its duration, then the rest');
  assert.equal(reloadBudgetMs(bounds({ strategy: 'canary', workers: 2, canary: { ...DEFAULT_CANARY, then: 'rolling' } }), 8),
    30_000 + 30_000 + 2 * (30_000 + 30_000));
});

test('a reload longer than systemd\'s 90 s default gets a TimeoutStartSec that covers it, and a short one never less than the default (regression: systemctl reload reported a reload that went live as failed, h24 F5)', () => {
  const unit = (reloadMs: number): string[] => key(systemdUnit({
    name: 'a', workingDirectory: '/srv/a', node: '/n', cli: '/c', startArgs: [], runDir: undefined, user: undefined, drainTimeoutMs: 30_000, reloadMs, description: 'a',
  }), 'TimeoutStartSec');
  // 8 workers warming up, one at a time (2 CPUs), then drain.reloadWait: 8 × 60 s + 30 s.
  const long = reloadBudgetMs(bounds({ workers: 8, warmup: ['/'] }), 2);
  assert.equal(long, 510_000);
  assert.deepEqual(unit(long), ['540']);
  assert.deepEqual(unit(10_000), ['90']);
});

test('systemdUnit: a --run-dir given by the user is kept, with no RuntimeDirectory', () => {
  const unit = systemdUnit({
    name: 'a', workingDirectory: '/srv/a', node: '/opt/node/bin/node', cli: '/srv/a/node_modules/hitless/build/src/cli/main.js',
    startArgs: ['--run-dir', '/var/run/a', '--', 'node', 'x.js'], runDir: '/var/run/a', user: 'app', drainTimeoutMs: 30_000, reloadMs: 200_000, description: '/srv/a',
  });
  assert.deepEqual(key(unit, 'ExecStart'), ['/opt/node/bin/node /srv/a/node_modules/hitless/build/src/cli/main.js start --run-dir /var/run/a -- node x.js']);
  assert.deepEqual(key(unit, 'ExecReload'), ['/opt/node/bin/node /srv/a/node_modules/hitless/build/src/cli/main.js reload --run-dir /var/run/a']);
  assert.deepEqual(key(unit, 'RuntimeDirectory'), []);
  assert.deepEqual(key(unit, 'RuntimeDirectoryPreserve'), [], 'a run dir of the user\'s own is none of systemd\'s business');
  assert.deepEqual(key(unit, 'User'), ['app']);
  assert.deepEqual(key(unit, 'TimeoutStopSec'), ['45']);
  assert.deepEqual(key(unit, 'TimeoutStartSec'), ['230'], 'the longest reload (200 s) + 30 s');
});

const repo = join(cliPath, '../../../..');

/** A runnable copy of this hitless at `dir` (a folder named …/node_modules/hitless), saying `version`, its dependencies linked beside it as pnpm and Yarn do. */
function runnableCopy(dir: string, version: string): string {
  cpSync(join(repo, 'build/src'), join(dir, 'build/src'), { recursive: true, filter: (f) => !f.endsWith('.map') });
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string> };
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...pkg, version }));
  for (const dep of Object.keys(pkg.dependencies)) symlinkSync(join(repo, 'node_modules', dep), join(dir, '..', dep));
  return join(dir, 'build/src/cli/main.js');
}

test('regression (h23 F5): run through pnpm\'s shim, hitless startup names the app\'s node_modules/hitless symlink, not one version\'s store folder: after pnpm add of another version and a prune, the unit\'s command runs the new one', async (t) => {
  const app = realpathSync(tempDir(t));
  const store = (v: string): string => join(app, 'node_modules/.pnpm', `hitless@${v}`, 'node_modules/hitless');
  mkdirSync(store('0.1.0'), { recursive: true });
  const oldCli = runnableCopy(store('0.1.0'), '0.1.0');
  mkdirSync(join(app, 'node_modules/.bin'));
  symlinkSync(store('0.1.0'), join(app, 'node_modules/hitless'));
  // pnpm's .bin/hitless: a shell script that runs the store path.
  const shim = join(app, 'node_modules/.bin/hitless');
  writeFileSync(shim, `#!/bin/sh\nexec "${process.execPath}" "${oldCli}" "$@"\n`);
  chmodSync(shim, 0o755);
  const r = spawnSync(shim, ['startup', '--name', 'hitless-pnpm-test', '--listen', '127.0.0.1:3000', '--', 'node', 'server.js'],
    { cwd: app, env: { ...process.env, XDG_RUNTIME_DIR: app, HITLESS_DEBUG: '' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const file = join(app, 'hitless-pnpm-test.service');
  const exec = key(readFileSync(file, 'utf8'), 'ExecStart')[0] ?? '';
  const stable = join(app, 'node_modules/hitless/build/src/cli/main.js');
  assert.equal(exec, `${realpathSync(process.execPath)} ${stable} start --listen 127.0.0.1:3000 --run-dir /run/hitless-pnpm-test -- node server.js`);
  if (!needs('systemd-analyze')) {
    const v = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
  }
  // `pnpm add hitless@0.2.0`, then `pnpm prune`: the link moves, the old folder goes.
  mkdirSync(store('0.2.0'), { recursive: true });
  runnableCopy(store('0.2.0'), '0.2.0');
  rmSync(join(app, 'node_modules/hitless'));
  symlinkSync(store('0.2.0'), join(app, 'node_modules/hitless'));
  rmSync(join(app, 'node_modules/.pnpm/hitless@0.1.0'), { recursive: true });
  const v = spawnSync(realpathSync(process.execPath), [stable, '--version'], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /0\.2\.0/);
});

test('regression (h23 F5): under Yarn Plug\'n\'Play (hitless in a zip archive) hitless startup refuses with the fix instead of writing a unit that cannot start', async (t) => {
  const app = realpathSync(tempDir(t));
  const pkg = join(app, '.yarn/__virtual__/hitless-virtual-0c1/0/cache/hitless-file-21250586b2-10c0.zip/node_modules/hitless');
  mkdirSync(pkg, { recursive: true });
  const main = runnableCopy(pkg, '0.1.0');
  const r = spawnSync(process.execPath, [main, 'startup', '--listen', '127.0.0.1:3000', '--', 'node', 'server.js'],
    { cwd: app, env: { ...process.env, XDG_RUNTIME_DIR: app, HITLESS_DEBUG: '' }, encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /Yarn Plug'n'Play's cache .*a unit naming it could not start.*`nodeLinker: node-modules` in \.yarnrc\.yml/);
  assert.deepEqual(readdirSync(app).filter((f) => f.endsWith('.service')), []);
});

test('unitCliPath: an npm or global path is kept as it is (an install replaces it in place)', () => {
  assert.equal(unitCliPath('/srv/app/node_modules/hitless/build/src/cli/main.js', '/srv/app'), '/srv/app/node_modules/hitless/build/src/cli/main.js');
  assert.equal(unitCliPath('/usr/lib/node_modules/hitless/build/src/cli/main.js', '/srv/app'), '/usr/lib/node_modules/hitless/build/src/cli/main.js');
});
